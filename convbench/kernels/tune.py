"""``convbench tune``: pick the fastest kernel configuration for this CPU and remember it.

:func:`tune` times the candidates of this CPU's instruction set
(:data:`convbench.kernels.configs.CANDIDATES`) on a few layer shapes, one
thread, interleaved round by round so a drift of the machine hits every
candidate alike, and keeps the one with the lowest geometric-mean time. The
choice is cached per CPU model in the user's cache folder
(``$XDG_CACHE_HOME/convbench`` or ``~/.cache/convbench``,
:func:`cache_file`); :func:`cached_choice` returns it to
:func:`convbench.kernels.configs.active_config`, so later runs use it and
``env.json`` says ``"source": "tuned"``. Remove the file (or
``convbench tune --clear``) to go back to the table.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .configs import (CACHE_NAME, CANDIDATES, KernelConfig, cache_dir, cache_file,  # noqa: F401
                      cached_choice, compile_target, cpu_key, cpu_model, isa_for,
                      read_tuned_cache)

#: Shapes timed per candidate: (name, M pixels, K reduction, N channels, taps).
#: A 3x3 layer through the indirection path and two 1x1 GEMMs of MobileNet /
#: ResNet size: the kernel shapes the algorithms run.
WORKLOAD = [("3x3 28x28 128->128", 28, 128, 128, 9),
            ("1x1 28x28 256->256", 28, 256, 256, 1),
            ("1x1 7x7 1024->1024", 7, 1024, 1024, 1)]


def clear() -> bool:
    """Forget this CPU's tuned choice; True if there was one."""
    data = read_tuned_cache()
    if data.pop(cpu_key(), None) is None:
        return False
    _write_cache(data)
    from .configs import reset_active_config

    reset_active_config()
    return True


def _write_cache(data: dict[str, Any]) -> None:
    path = cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)  # atomic: a concurrent reader sees the old or the new file


@dataclass
class TuneResult:
    """What :func:`tune` measured and chose."""

    key: str
    chosen: str
    default: str
    #: candidate name -> shape name -> median seconds
    times: dict[str, dict[str, float]] = field(default_factory=dict)
    #: candidate name -> geometric-mean time relative to the default (lower is faster)
    relative: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    cache_file: str = ""


def _callables(cfg: KernelConfig, rng: np.random.Generator) -> dict[str, Callable[[], None]]:
    from ..spec import ConvSpec
    from .gemm import gemm_kernel
    from .indirection import indirection_buffer

    calls: dict[str, Callable[[], None]] = {}
    kern = gemm_kernel(np.float32, cfg)
    for name, hw, c, k, taps in WORKLOAD:
        r = 3 if taps == 9 else 1
        spec = ConvSpec(batch=1, in_channels=c, out_channels=k, height=hw, width=hw, kernel=r,
                        padding=r // 2, layout="nhwc")
        x = rng.uniform(-1, 1, hw * hw * c).astype(np.float32)
        w = rng.uniform(-1, 1, (k, c, r, r)).astype(np.float32)
        offs = indirection_buffer(spec)
        packed, kb, zero = kern.pack(w, 1), kern.k_blocks(taps, c), np.zeros(c, np.float32)
        out = np.empty(hw * hw * k, np.float32)

        def call(x=x, offs=offs, packed=packed, kb=kb, zero=zero, out=out, c=c, k=k) -> None:
            kern.run(x, zero, offs, 1, 0, 1, c, k, packed, kb, out)

        calls[name] = call
    return calls


def tune(budget_s: float = 60.0, progress: Callable[[str], None] | None = None,
         save: bool = True) -> TuneResult:
    """Time this CPU's candidate configurations for up to ``budget_s`` seconds
    or 200 rounds, whichever ends first (after compiling each, a few seconds
    apiece), keep the fastest, cache it.

    One thread, float32; every round runs every candidate on every shape;
    the score is the geometric mean over shapes of the median time relative
    to the table's default, so no one shape dominates.
    """
    from ..machine.threads import limit_threads
    from .configs import TABLE, reset_active_config

    say = progress or (lambda msg: None)
    t_start = time.perf_counter()
    _, feats = compile_target()
    isa = isa_for(feats, platform.machine())
    default = TABLE[isa]
    candidates = list(dict.fromkeys(CANDIDATES[isa]))
    rng = np.random.default_rng(0)
    calls = {}
    for cfg in candidates:
        say(f"compiling {cfg.name}")
        calls[cfg.name] = _callables(cfg, rng)
        for f in calls[cfg.name].values():
            f()  # compile and warm up
    times: dict[str, dict[str, list[float]]] = {n: {s: [] for s in c} for n, c in calls.items()}
    say(f"timing {len(candidates)} candidates for {budget_s:.0f} s")
    with limit_threads(1):
        deadline = time.perf_counter() + budget_s
        rounds = 0
        while rounds < 3 or (time.perf_counter() < deadline and rounds < 200):
            order = list(calls) if rounds % 2 == 0 else list(reversed(list(calls)))
            for name in order:
                for shape, f in calls[name].items():
                    t0 = time.perf_counter()
                    f()
                    times[name][shape].append(time.perf_counter() - t0)
            rounds += 1
    med = {n: {s: float(np.median(v)) for s, v in per.items()} for n, per in times.items()}
    base = med[default.name]
    rel = {n: float(np.exp(np.mean([np.log(per[s] / base[s]) for s in per]))) for n, per in med.items()}
    chosen = min(rel, key=rel.__getitem__)
    result = TuneResult(key=cpu_key(), chosen=chosen, default=default.name, times=med, relative=rel,
                        seconds=time.perf_counter() - t_start, cache_file=str(cache_file()))
    if save:
        data = read_tuned_cache()
        data[result.key] = {"name": chosen, "default": default.name, "relative": rel,
                            "rounds": rounds, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        _write_cache(data)
        reset_active_config()
    return result
