"""Suggestions for a mistyped name, shared by every message that lists valid choices."""

from __future__ import annotations

import difflib
from typing import Iterable


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """``". Did you mean 'x'?"`` for the closest of ``options``, or ``""``."""
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f". Did you mean {match[0]!r}?" if match else ""
