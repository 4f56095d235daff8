"""Which machine a results folder (or a row of a merged one) was measured on.

A machine is named ``hostname (CPU model)``: the hostname tells nodes of a
cluster apart, the CPU model tells a reader what the numbers mean (two
nodes of one partition are still two machines: they drift independently).
The name is the value of the ``machine`` column that merging writes
(:func:`convbench.results.merge_results`) and that the cross-machine
analysis groups by (:mod:`convbench.analysis.machines`).
"""

from __future__ import annotations

from typing import Any, Mapping

#: The column of a merged ``summary.csv`` / ``samples.csv`` naming each row's machine.
MACHINE_COLUMN = "machine"

#: env.json topics that describe the machine itself (kept per machine when merging).
MACHINE_TOPICS = ("system", "cpu", "memory", "threads", "calibration")


def machine_name(env: Mapping[str, Any] | None) -> str:
    """``node17 (AMD EPYC 7B13 64-Core Processor)`` from an env.json dict.

    Unknown parts read ``unknown host`` / ``unknown CPU``, never an empty
    string, so rows of a folder without metadata still group together.
    """
    env = env or {}
    host = (env.get("system") or {}).get("hostname") or "unknown host"
    cpu = (env.get("cpu") or {}).get("model") or "unknown CPU"
    return f"{host} ({cpu})"


def machine_env(env: Mapping[str, Any] | None) -> dict[str, Any]:
    """The part of an env.json that is about the machine (:data:`MACHINE_TOPICS`)."""
    env = env or {}
    return {k: env[k] for k in MACHINE_TOPICS if k in env}
