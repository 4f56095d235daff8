"""Test-session hooks: the ``extra`` marker (see ``extras.py``), the ``alone`` marker,
and the BLAS split every test runs under unless it forces another."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# A machine where `convbench tune` chose BLAS's own threads (convbench.kernels.split_gemm)
# would otherwise run the tests that count the pool's blocks on another path than CI's
# untuned machine; the tests of the `blas` split force it.
os.environ.setdefault("CONVBENCH_BLAS_SPLIT", "blocks")

from extras import skip_or_fail_without_extras

try:
    import fcntl
except ImportError:  # not POSIX: no file locks, and `alone` tests share the machine
    fcntl = None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "extra(name, *modules): needs the optional extra NAME (see tests/extras.py)")
    config.addinivalue_line("markers", "alone: holds only while no other test runs (pytest-xdist's other "
                                       "workers wait): it needs both cores, or no other process's load")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    skip_or_fail_without_extras(item)


@contextlib.contextmanager
def _turn(alone: bool, folder: Path | None) -> Iterator[None]:
    """A test's turn to run: shared with the tests of the other workers, or the whole
    machine for an ``alone`` test. A read-write lock of two files in ``folder`` (``None``:
    no other workers, no lock): the gate keeps new shared turns out while an ``alone``
    test waits for the running ones to end."""
    if folder is None or fcntl is None:
        yield
        return
    with open(folder / "turn.gate", "a") as gate, open(folder / "turn.lock", "a") as turn:
        fcntl.flock(gate, fcntl.LOCK_EX)
        fcntl.flock(turn, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        fcntl.flock(gate, fcntl.LOCK_UN)
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    # around set-up, call and tear-down: a module's fixture (a battery of subprocesses) is set up
    # in its first test's turn. The workers' temporary folders share a parent, one per session,
    # that pytest cleans up: the lock's files live there.
    xdist = "PYTEST_XDIST_TESTRUNUID" in os.environ
    folder = item.config._tmp_path_factory.getbasetemp().parent if xdist else None
    with _turn(item.get_closest_marker("alone") is not None, folder):
        yield
