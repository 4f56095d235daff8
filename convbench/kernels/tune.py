"""Placeholder until ``convbench tune`` lands: no cached choice."""

from __future__ import annotations

from .configs import KernelConfig


def cached_choice() -> KernelConfig | None:
    return None
