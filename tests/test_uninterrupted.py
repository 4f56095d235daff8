"""convbench/sweep/uninterrupted.py: Ctrl-C waits for the block, then reaches its handler."""

from __future__ import annotations

import os
import signal

import pytest

from convbench.sweep.uninterrupted import uninterrupted


def test_ctrl_c_inside_the_block_is_raised_after_it():
    # Python's own handler, as a user's process has it (a test worker's may be another one)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    done = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with uninterrupted():
                os.kill(os.getpid(), signal.SIGINT)
                done.append("rest of the block")
        assert done == ["rest of the block"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_ignored_ctrl_c_stays_ignored_and_no_signal_means_nothing_raised():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with uninterrupted():
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
    with uninterrupted():
        pass
