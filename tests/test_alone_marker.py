"""The ``alone`` marker's turns (tests/conftest.py): under pytest-xdist an ``alone`` test
runs while no other test does, and tests that start after it waits wait for it."""

from __future__ import annotations

import threading
import time

from conftest import _turn


def _in_turn(folder, alone: bool, hold_s: float, spans: dict[str, tuple[float, float]], name: str) -> None:
    with _turn(alone, folder):
        start = time.monotonic()
        time.sleep(hold_s)
        spans[name] = (start, time.monotonic())


def test_an_alone_turn_waits_for_running_tests_and_later_tests_wait_for_it(tmp_path):
    spans: dict[str, tuple[float, float]] = {}
    running = threading.Thread(target=_in_turn, args=(tmp_path, False, 0.4, spans, "running"))
    alone = threading.Thread(target=_in_turn, args=(tmp_path, True, 0.4, spans, "alone"))
    later = threading.Thread(target=_in_turn, args=(tmp_path, False, 0.0, spans, "later"))
    running.start()
    time.sleep(0.1)
    alone.start()  # waits for `running` to end
    time.sleep(0.1)
    later.start()  # asked after `alone`: waits for it, though `running` still shares
    for t in (running, alone, later):
        t.join(10)
    assert spans["alone"][0] >= spans["running"][1]
    assert spans["later"][0] >= spans["alone"][1]


def test_two_shared_turns_overlap(tmp_path):
    spans: dict[str, tuple[float, float]] = {}
    a = threading.Thread(target=_in_turn, args=(tmp_path, False, 0.3, spans, "a"))
    b = threading.Thread(target=_in_turn, args=(tmp_path, False, 0.3, spans, "b"))
    a.start()
    b.start()
    a.join(10)
    b.join(10)
    assert max(spans["a"][0], spans["b"][0]) < min(spans["a"][1], spans["b"][1])
