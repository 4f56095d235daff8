"""Ctrl-C that waits for a block to end: what a sweep writes and what it counts agree."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Run the block with SIGINT held back, then deliver it to the handler that was there.

    A sweep writes a step's rows (flushed, synced) and then counts them; a Ctrl-C between
    the two left rows in the folder that "interrupted: N cases written" did not count
    (seen when the machine was busy: 2 rows on disk, 0 counted). Held back, the signal is
    raised again after the block, so the default handler's KeyboardInterrupt, an ignored
    SIGINT or a terminal's default action all behave as before. Outside the main thread
    (where no handler can be set) the block runs as is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            signal.raise_signal(signal.SIGINT)
