"""``convbench tune``: the kernel configuration for this CPU (logic in :mod:`convbench.kernels.tune`)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import typer

from ..machine.malloc_policy import BLAS_ENV
from .app import app, console, err_console
from .render import Grid, print_table


@app.command()
def tune(
    seconds: float = typer.Option(60.0, "--seconds", "-s", min=1.0, help="Timing budget after compiling (the whole command takes about 20 s more)."),
    clear: bool = typer.Option(False, "--clear", help="Forget this CPU's tuned choice and use the table's default again."),
) -> None:
    """Time the kernel configurations for this CPU, keep the fastest, cache it for later runs."""
    from ..kernels import tune as tuning

    if clear:
        gone = tuning.clear()
        console.print(f"{'forgot the' if gone else 'no'} tuned choice for {tuning.cpu_key()}", highlight=False)
        return
    missing = {k: v for k, v in BLAS_ENV.items() if k not in os.environ}
    if missing:
        # measure as a sweep's workers run (OpenBLAS reads this when it loads): its threads
        # otherwise spin between calls, and BLAS's two threads beat its one on products of
        # 14 MFLOP here where the workers' sleeping threads lost up to 116 MFLOP (Zen 3 VM)
        proc = subprocess.run([sys.executable, "-c", "from convbench.cli import app; app()", "tune",
                               "--seconds", str(seconds)], env={**os.environ, **missing})
        raise typer.Exit(proc.returncode)
    with err_console.status("tuning ...") as status:
        result = tuning.tune(seconds, progress=lambda msg: status.update(msg))
    print_table(tune_table(result))
    if getattr(result, "quant", None) is not None:  # the u8s8 tile, tuned after the float one
        print_table(tune_table(result.quant))
        console.print(f"chose {result.quant.chosen} for u8s8", highlight=False)
    if getattr(result, "grain", None):  # issue 31: the work that pays for one more thread
        g = result.grain
        console.print(f"grain: {g['flops']:.3g} flops or {g['nbytes']:.3g} bytes a thread; steps of Python "
                      f"calls {g.get('python', 1.0):.2g}x that", highlight=False)
    if getattr(result, "split", None):  # issue 31: one BLAS product on two threads
        sp = result.split
        least = sp.get("blas_flops")
        floor = (f"; BLAS's threads from {least:.3g} flops a product" if least is not None
                 else "; BLAS's two threads never beat its one" if "blas_flops" in sp else "")
        console.print(f"one BLAS product on two threads: {sp['mode']} (BLAS's threads / the pool's blocks: "
                      f"{sp['blas_over_blocks_quiet']:.2f} quiet, {sp['blas_over_blocks_busy']:.2f} with a core busy"
                      f"{floor})", highlight=False)
    console.print(f"chose {result.chosen} in {result.seconds:.0f} s; cached in {result.cache_file}", highlight=False)


def tune_table(result: Any) -> Grid:
    """The candidates ``convbench tune`` timed, fastest first (a :class:`~convbench.kernels.tune.TuneResult`)."""
    table = Grid(title=f"convbench tune: {result.key}")
    shapes = list(next(iter(result.times.values())))
    for col in ("configuration", *shapes, "time / default"):
        table.add_column(col, "left" if col == "configuration" else "right")
    for name, rel in sorted(result.relative.items(), key=lambda kv: kv[1]):
        mark = " (chosen)" if name == result.chosen else " (default)" if name == result.default else ""
        table.add_row(name + mark, *(f"{result.times[name][s] * 1e3:.3f} ms" for s in shapes), f"{rel:.3f}")
    return table
