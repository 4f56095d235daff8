"""``convbench tune``: pick the fastest kernel configurations for this CPU and remember them.

:func:`tune` times the candidates of this CPU's instruction set
(:data:`convbench.kernels.configs.CANDIDATES`) on a few layer shapes, one
thread, interleaved round by round so a drift of the machine hits every
candidate alike, and keeps the one with the lowest geometric-mean time (a
candidate is a whole configuration: the GEMM's tile and blocking on
:data:`WORKLOAD`, direct-blocked's register tile on :data:`DB_WORKLOAD`). The
choice is cached per CPU model in the user's cache folder
(``$XDG_CACHE_HOME/convbench`` or ``~/.cache/convbench``,
:func:`cache_file`); :func:`cached_choice` returns it to
:func:`convbench.kernels.configs.active_config`, so later runs use it and
``env.json`` says ``"source": "tuned"``. The u8s8 tile
(:data:`~convbench.kernels.configs.QUANT_CANDIDATES`) is tuned the same way
on :data:`QUANT_WORKLOAD`, after the float one, and cached under its own key
(:func:`cpu_key` + ``" | u8s8"``). Remove the file (or
``convbench tune --clear``) to go back to the table.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .configs import (CACHE_NAME, CANDIDATES, QUANT_CANDIDATES, KernelConfig,  # noqa: F401
                      QuantKernelConfig, cache_dir, cache_file, cached_choice, compile_target,
                      cpu_key, cpu_model, isa_for, quant_isa_for, read_tuned_cache, write_tuned_cache)

#: Shapes timed per candidate: (name, M pixels, K reduction, N channels, taps).
#: A 3x3 layer through the indirection path and two 1x1 GEMMs of MobileNet /
#: ResNet size: the kernel shapes the algorithms run.
WORKLOAD = [("3x3 28x28 128->128", 28, 128, 128, 9),
            ("1x1 28x28 256->256", 28, 256, 256, 1),
            ("1x1 7x7 1024->1024", 7, 1024, 1024, 1)]
#: The u8s8 tile's shapes (a layer with few channels too: 8-bit tiles are four channels deep).
QUANT_WORKLOAD = [("3x3 28x28 128->128", 28, 128, 128, 9),
                  ("1x1 56x56 64->128", 56, 64, 128, 1),
                  ("1x1 7x7 1024->1024", 7, 1024, 1024, 1)]
#: The float tile's share of the budget when the u8s8 one is tuned too.
FLOAT_SHARE = 0.7


def clear() -> bool:
    """Forget this CPU's tuned choices (float and u8s8 tiles, grain, BLAS split); True if there was one."""
    from .configs import QUANT_KEY_SUFFIX, forget_tuned_entry, reset_active_config
    from .grain_tune import forget_grain
    from .split_tune import forget_split

    tiles = [forget_tuned_entry(""), forget_tuned_entry(QUANT_KEY_SUFFIX)]
    if any(tiles):
        reset_active_config()
    return any([forget_grain(), forget_split(), *tiles])


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
    #: the u8s8 tile's own result (same fields), when it was tuned too
    quant: "TuneResult | None" = None
    #: the measured grain (``convbench.kernels.grain_tune.tune_grain``), None if not measured
    grain: dict[str, Any] | None = None
    #: how one BLAS product uses two threads (``convbench.kernels.split_tune.tune_split``), None if not measured
    split: dict[str, Any] | None = None


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
    calls.update(_direct_blocked_callables(cfg, rng))
    return calls


#: direct-blocked's shapes for its register tile (``db_pixels`` x ``db_blocks``): (name, size, C = K,
#: kernel). A 1x1 layer too: its reduction has no taps, and on the Zen 3 VM the tile that ran the
#: 3x3 layers fastest ran MobileNet's 1x1 layers 20-30% slower than another.
DB_WORKLOAD = [("direct-blocked 3x3 28x28 128->128", 28, 128, 3), ("direct-blocked 3x3 14x14 256->256", 14, 256, 3),
               ("direct-blocked 1x1 28x28 256->256", 28, 256, 1)]


def _direct_blocked_callables(cfg: KernelConfig, rng: np.random.Generator) -> dict[str, Callable[[], None]]:
    """direct-blocked's kernel on blocked arrays, with ``cfg``'s tile (stride 1, the 3x3 layers
    padded by 1), as the algorithm runs it: rows of tiles of ``cfg``'s pixels and shorter ones,
    padding taps skipped."""
    from .direct_blocked import block_channels, direct_blocked, tile_shape

    calls: dict[str, Callable[[], None]] = {}
    wdt = block_channels(cfg.vector_bytes, np.float32)
    for name, hw, c, r in DB_WORKLOAD:
        blocks, pad = -(-c // wdt), r // 2
        pixels, bt = tile_shape(blocks, cfg.db_pixels, cfg.db_blocks)
        x = rng.uniform(-1, 1, (1, 1, blocks, hw + 2 * pad, hw + 2 * pad, wdt)).astype(np.float32)
        w = rng.uniform(-1, 1, (1, blocks // bt, blocks, r, r, wdt, bt * wdt)).astype(np.float32)
        out = np.empty((1, 1, blocks, hw, hw, wdt), np.float32)

        def call(x=x, w=w, out=out, pixels=pixels, r=r, image=(pad, hw + pad)) -> None:
            direct_blocked(x, w, out, (r, r), (1, 1), (1, 1), pixels, cfg.vector_bytes, rows=image, cols=image)

        calls[name] = call
    return calls


def _quant_callables(cfg: QuantKernelConfig, rng: np.random.Generator) -> dict[str, Callable[[], None]]:
    from ..spec import ConvSpec
    from .indirection import indirection_buffer
    from .qgemm import qgemm_kernel

    calls: dict[str, Callable[[], None]] = {}
    kern = qgemm_kernel(cfg)
    for name, hw, c, k, taps in QUANT_WORKLOAD:
        r = 3 if taps == 9 else 1
        spec = ConvSpec(batch=1, in_channels=c, out_channels=k, height=hw, width=hw, kernel=r,
                        padding=r // 2, layout="nhwc")
        x = rng.integers(0, 256, hw * hw * c, dtype=np.uint8)
        packed = kern.pack(rng.integers(-128, 128, (k, c, r, r), dtype=np.int8), 1)
        offs, zero = indirection_buffer(spec), np.full(c + 3, 128, np.uint8)
        corr, mult = np.zeros(k, np.int32), np.full(k, 1e-3, np.float32)
        out = np.empty(hw * hw * k, np.uint8)

        def call(x=x, offs=offs, packed=packed, zero=zero, corr=corr, mult=mult, out=out, c=c, k=k) -> None:
            kern.run(x, zero, offs, 1, 0, 1, c, k, packed, corr, mult, 128, out)

        calls[name] = call
    return calls


def _time(calls: dict[str, dict[str, Callable[[], None]]], budget_s: float
          ) -> tuple[dict[str, dict[str, float]], int]:
    """Median seconds per candidate and shape: every round runs every candidate on every
    shape (the order reversed every other round), one thread, for ``budget_s`` or 200 rounds."""
    from ..machine.threads import limit_threads

    times: dict[str, dict[str, list[float]]] = {n: {s: [] for s in c} for n, c in calls.items()}
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
    return {n: {s: float(np.median(v)) for s, v in per.items()} for n, per in times.items()}, rounds


def _choose(candidates: list[Any], default: Any, make: Callable[[Any, np.random.Generator], dict],
            budget_s: float, key: str, say: Callable[[str], None], save: bool) -> TuneResult:
    """Compile and time ``candidates``, keep the fastest (geometric mean over shapes of the
    median time relative to ``default``), cache it under ``key``."""
    t_start = time.perf_counter()
    rng = np.random.default_rng(0)
    calls = {}
    for cfg in candidates:
        say(f"compiling {cfg.name}")
        calls[cfg.name] = make(cfg, rng)
        for f in calls[cfg.name].values():
            f()  # compile and warm up
    say(f"timing {len(candidates)} candidates for {budget_s:.0f} s")
    med, rounds = _time(calls, budget_s)
    base = med[default.name]
    rel = {n: float(np.exp(np.mean([np.log(per[s] / base[s]) for s in per]))) for n, per in med.items()}
    chosen = min(rel, key=rel.__getitem__)
    result = TuneResult(key=key, chosen=chosen, default=default.name, times=med, relative=rel,
                        seconds=time.perf_counter() - t_start, cache_file=str(cache_file()))
    if save:
        data = read_tuned_cache()
        data[key] = {"name": chosen, "default": default.name, "relative": rel,
                     "rounds": rounds, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        write_tuned_cache(data)
    return result


def tune(budget_s: float = 60.0, progress: Callable[[str], None] | None = None,
         save: bool = True, quant: bool = True) -> TuneResult:
    """Time this CPU's candidate configurations, keep the fastest, cache it.

    The float32 tile first, for :data:`FLOAT_SHARE` of ``budget_s`` (or 200
    rounds, whichever ends first, after compiling each candidate, a few
    seconds apiece); then (``quant``) the u8s8 tile for the rest, whose
    result is the returned one's ``quant``. One thread; every round runs
    every candidate on every shape; the score is the geometric mean over
    shapes of the median time relative to the table's default, so no one
    shape dominates.
    """
    from .configs import QUANT_KEY_SUFFIX, QUANT_TABLE, TABLE, reset_active_config

    say = progress or (lambda msg: None)
    t_start = time.perf_counter()
    _, feats = compile_target()
    isa = isa_for(feats, platform.machine())
    share = FLOAT_SHARE if quant else 1.0
    result = _choose(list(dict.fromkeys(CANDIDATES[isa])), TABLE[isa], _callables, budget_s * share,
                     cpu_key(), say, save)
    if quant:
        qisa = quant_isa_for(feats)
        result.quant = _choose(list(dict.fromkeys(QUANT_CANDIDATES[qisa])), QUANT_TABLE[qisa],
                               _quant_callables, budget_s * (1 - share), cpu_key() + QUANT_KEY_SUFFIX,
                               say, save)
    from .grain_tune import tune_grain  # how much work pays for a second thread (issue 31)

    say("measuring the grain (1 against 2 threads)")
    result.grain = tune_grain(min(8.0, budget_s / 4), save=save)
    from .split_tune import tune_split  # the pool's blocks or BLAS's own threads (issue 31)

    say("timing one BLAS product on two threads: the pool's blocks against BLAS's threads")
    result.split = tune_split(min(6.0, budget_s / 6), save=save)
    result.seconds = time.perf_counter() - t_start
    if save:
        reset_active_config()
    return result
