"""How steady is this machine? The measurements behind ``convbench doctor``.

A benchmark's spread comes from the machine as much as from the code: on a
shared VM the vCPUs change speed independently, over seconds, and none of it
shows as steal time. This module times a small sgemm (numpy's BLAS, one
thread) pinned to each core in turn, again right after a short sleep, reads
the load and the frequency policy where the kernel exposes them, and turns
the numbers into a verdict: how much two runs of the same sweep may differ,
and how many repetitions to use.

:func:`probe` is the short version every run records in ``env.json``;
:func:`diagnose` is the doctor's, 20-30 s. :func:`verdict` is a pure function
of the findings, so its thresholds are tested on synthetic numbers.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from .contention import RAN_MIN, LoadMeter, ran_share
from .threads import allowed_cores, limit_threads, pinned
from ..timing import drift

#: sgemm size of the probe: 2*192^3 = 14 MFLOP, ~0.2 ms on one modern core,
#: small enough to fit L2 and so to measure the core, not the memory.
PROBE_N = 192


class _Sgemm:
    def __init__(self, n: int = PROBE_N):
        rng = np.random.default_rng(0)
        self.a = rng.standard_normal((n, n), dtype=np.float32)
        self.b = rng.standard_normal((n, n), dtype=np.float32)
        self.c = np.empty((n, n), np.float32)
        self.flops = 2.0 * n**3

    def rate(self, min_time_s: float = 0.02) -> float:
        """GFLOP/s of back-to-back calls lasting at least ``min_time_s``."""
        calls, t0 = 0, time.perf_counter()
        while True:
            np.matmul(self.a, self.b, out=self.c)
            calls += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= min_time_s:
                return calls * self.flops / elapsed / 1e9


def _series(kernel: _Sgemm, seconds: float, step_s: float = 0.05) -> list[float]:
    out: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        out.append(kernel.rate(step_s))
    return out


def _core_stats(rates: list[float]) -> dict[str, float]:
    x = np.asarray(rates)
    p10, med, p90 = np.percentile(x, [10, 50, 90])
    return {"median_gflops": round(float(med), 2), "p10_gflops": round(float(p10), 2),
            "p90_gflops": round(float(p90), 2), "spread": round(float(p90 / p10 - 1.0), 4),
            "drift": round(drift(rates), 4), "n": int(x.size)}


def per_core(seconds_per_core: float) -> dict[str, dict[str, float]]:
    """The probe's rate over ``seconds_per_core`` pinned to each core, one thread."""
    kernel = _Sgemm()
    out = {}
    with limit_threads(1):
        for cpu in allowed_cores():
            with pinned(cpu):
                kernel.rate(0.05)  # warm the caches and the BLAS code path
                out[str(cpu)] = _core_stats(_series(kernel, seconds_per_core))
    return out


def sleep_effect(sleep_s: float = 1.0) -> dict[str, float]:
    """The rate just after ``sleep_s`` of idling against the rate before it
    (a VM whose core slows down after a pause makes a sweep's first sample lie)."""
    kernel = _Sgemm()
    with limit_threads(1), pinned(allowed_cores()[0]):
        before = float(np.median(_series(kernel, 0.5)))
        time.sleep(sleep_s)
        after = kernel.rate(0.02)
        settled = float(np.median(_series(kernel, 0.5)))
    return {"sleep_s": sleep_s, "before_gflops": round(before, 2), "after_gflops": round(after, 2),
            "settled_gflops": round(settled, 2), "change": round(after / before - 1.0, 4)}


def other_load(seconds: float = 0.5) -> dict[str, Any]:
    """CPU used by other processes while this one sleeps, the hypervisor's steal, and the load average."""
    out: dict[str, Any] = {}
    try:
        out["loadavg_1min"] = float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    meter = LoadMeter().start()
    time.sleep(seconds)
    got = meter.stop()
    if got["other_load"] is not None:
        out["others_busy_cores"] = round(got["other_load"], 3)
        out["steal"] = round(got["steal"] or 0.0, 4)
    return out


def preemption(seconds: float = 1.0, slice_s: float = 0.005) -> dict[str, Any]:
    """A busy loop on this thread, in slices: the share of slices another process preempted
    (their thread CPU time short of the wall time by more than 10%), as a sweep's samples see it."""
    slices = preempted = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        c0, t0 = time.thread_time(), time.perf_counter()
        while time.perf_counter() - t0 < slice_s:
            pass
        slices += 1
        preempted += ran_share(time.thread_time() - c0, time.perf_counter() - t0, 1) < RAN_MIN
    return {"slices": slices, "preempted": preempted, "share": round(preempted / max(slices, 1), 4)}


def frequency_policy() -> dict[str, Any]:
    """The CPU governor and turbo setting where the kernel exposes them (often not on a VM)."""
    def read(path: str) -> str | None:
        try:
            return Path(path).read_text().strip()
        except OSError:
            return None

    governors = sorted({g for g in (read(f"/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_governor")
                                    for c in allowed_cores()) if g})
    no_turbo = read("/sys/devices/system/cpu/intel_pstate/no_turbo")
    boost = read("/sys/devices/system/cpu/cpufreq/boost")
    return {
        "governor": ",".join(governors) or None,
        "turbo": None if no_turbo is None and boost is None else (no_turbo == "0" if no_turbo is not None else boost == "1"),
    }


def verdict(findings: dict[str, Any]) -> dict[str, Any]:
    """A verdict on steadiness from :func:`probe`/:func:`diagnose`'s numbers.

    ``noise``: the worst per-core spread (p90/p10 - 1) or drift; ``imbalance``:
    fastest core's median over the slowest's, minus 1; plus the sleep effect
    and other processes' load where measured. Quiet machines need one
    repetition; the thresholds follow the ±10% a comparison tolerates.
    """
    cores = list(findings.get("per_core", {}).values())
    noise = max([c["spread"] for c in cores] + [abs(c["drift"]) for c in cores if not math.isnan(c["drift"])],
                default=math.nan)
    meds = [c["median_gflops"] for c in cores]
    imbalance = max(meds) / min(meds) - 1.0 if len(meds) > 1 and min(meds) > 0 else 0.0
    sleep = abs(findings.get("sleep", {}).get("change", 0.0))
    busy = findings.get("load", {}).get("others_busy_cores", 0.0) or 0.0
    worst = max(noise if not math.isnan(noise) else 0.0, imbalance, sleep)
    advice = []
    if busy > 0.2:
        advice.append(f"other processes keep {busy:.1f} cores busy: stop them, or expect their noise")
    if imbalance > 0.1:
        advice.append(f"cores differ by {imbalance:.0%}: one-thread cases are pinned; compare speedups, not times")
    if sleep > 0.1:
        advice.append(f"the core is {sleep:.0%} off right after a pause: keep warm-up calls")
    if worst <= 0.03 and busy <= 0.2:
        level, repeat = "quiet", 1
    elif worst <= 0.10:
        level, repeat = "noisy", 3
    else:
        level, repeat = "very noisy", 5
    if level != "quiet":
        advice.append(f"use --repeat {repeat} (or more) and judge changes by compare's verdicts, not single medians")
    return {"level": level, "noise": round(noise, 4) if not math.isnan(noise) else None,
            "imbalance": round(imbalance, 4), "suggested_repeat": repeat, "advice": advice}


def probe(seconds_per_core: float = 0.6) -> dict[str, Any]:
    """The short check every run records in ``env.json`` (about a second per core)."""
    findings: dict[str, Any] = {"per_core": per_core(seconds_per_core), "load": other_load(0.2),
                                "frequency": frequency_policy(), "probe": f"f32 sgemm {PROBE_N}^3, 1 thread, pinned"}
    findings["verdict"] = verdict(findings)
    return findings


def diagnose(seconds: float = 24.0) -> dict[str, Any]:
    """``convbench doctor``: per-core rates and their drift over most of
    ``seconds``, the effect of a 1 s sleep, other processes' load, the
    frequency policy, and a verdict with advice."""
    n = len(allowed_cores())
    per = max(1.0, (seconds - 5.0) / n)
    findings: dict[str, Any] = {"load": other_load(1.0), "preemption": preemption(1.0), "per_core": per_core(per),
                                "sleep": sleep_effect(1.0), "frequency": frequency_policy(),
                                "probe": f"f32 sgemm {PROBE_N}^3, 1 thread, pinned"}
    findings["verdict"] = verdict(findings)
    return findings
