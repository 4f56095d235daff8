"""A small, synthetic, schema-correct results folder (for plot/compare/select tests).

The numbers are invented but shaped like a real ``convbench run`` of a
paper-like sweep: a 3x3 grid (channels x size), two 1x1 layers and a strided
first layer; im2col is the baseline; indirect beats im2col-numba by ~30% on
layers that need im2col and is ~5% slower on 1x1; winograd skips what it
cannot do; fft fails once (wrong answer). Everything is seeded.

Regenerate the checked-in folder (``tests/data/synthetic_run``) with::

    python tests/data/make_synthetic.py
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Iterable

import numpy as np

from convbench.config import dump_config
from convbench.results import ResultsWriter, sample_row, summary_row
from convbench.spec import ConvSpec
from convbench.timing import summarize

HERE = Path(__file__).resolve().parent
FOLDER = HERE / "synthetic_run"

#: (name, layer_class, count, ConvSpec kwargs)
LAYERS = [
    ("conv1", "first", 1, dict(in_channels=3, out_channels=16, height=32, width=32, kernel=3, stride=2, padding=1)),
    *[
        (f"g3x3/c{c}_hw{s}", "3x3", 2, dict(in_channels=c, out_channels=c, height=s, width=s, kernel=3, padding=1))
        for c in (16, 32, 64) for s in (8, 16)
    ],
    ("pw/c32", "1x1", 3, dict(in_channels=32, out_channels=64, height=16, width=16, kernel=1)),
    ("pw/c64", "1x1", 1, dict(in_channels=64, out_channels=64, height=8, width=8, kernel=1)),
]

#: Synthetic GFLOP/s per algorithm at 1 thread (indirect's edge depends on the layer).
GFLOPS = {"naive": 2.0, "im2col": 30.0, "im2col-numba": 20.0, "gemm-direct": 24.0,
          "winograd": 40.0, "fft": 8.0, "indirect": 26.0}
ALGORITHMS = list(GFLOPS)
TOLERANCE = {"winograd": 5e-4, "fft": 5e-4}


def _needs_im2col(spec: ConvSpec) -> bool:
    return not (spec.kernel == (1, 1) and spec.stride == (1, 1) and spec.padding == (0, 0, 0, 0))


def _workspace(algo: str, spec: ConvSpec) -> int:
    m = spec.output_height * spec.output_width * spec.batch
    taps = spec.kernel_h * spec.kernel_w
    if algo == "im2col":
        return m * taps * spec.in_channels * spec.itemsize if _needs_im2col(spec) else 0
    if algo == "im2col-numba":
        return m * taps * spec.in_channels * spec.itemsize + m * 8
    if algo == "indirect":
        return m * taps * 8 + spec.in_channels * spec.itemsize
    if algo == "winograd":
        tiles = math.ceil(spec.output_height / 2) * math.ceil(spec.output_width / 2)
        return 16 * tiles * (spec.in_channels + spec.out_channels) * spec.itemsize
    if algo == "fft":
        return (spec.height + 2) * (spec.width // 2 + 2) * (spec.in_channels + spec.out_channels) * 8
    return 0


def make_results(
    folder: str | Path,
    *,
    seed: int = 0,
    threads: Iterable[int] = (1, 2),
    scale: float = 1.0,
    n_samples: int = 15,
    noise: float = 0.02,
    layers: list | None = None,
    algorithms: list[str] | None = None,
) -> Path:
    """Write a synthetic results folder; ``scale`` multiplies every time."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    threads = list(threads)
    layers = LAYERS if layers is None else layers
    algorithms = ALGORITHMS if algorithms is None else algorithms
    rows, samples = [], []
    case_index = 0
    with ResultsWriter(folder) as writer:
        for name, layer_class, count, shape in layers:
            spec = ConvSpec(batch=1, layout="nhwc", dtype="float32", **shape)
            for t in threads:
                base_median = None
                layer_rows = []
                for algo in algorithms:
                    case_id = f"{name}|{algo}|nhwc|float32|t{t}"
                    row = summary_row(
                        case_index=case_index, case_id=case_id, layer=name, layer_class=layer_class,
                        network="Synthetic", description=spec.describe(), count=count, algorithm=algo,
                        status="ok", reason="", layout=spec.layout, dtype=spec.dtype, threads=t,
                        batch=spec.batch, in_channels=spec.in_channels, out_channels=spec.out_channels,
                        height=spec.height, width=spec.width, kernel_h=spec.kernel_h, kernel_w=spec.kernel_w,
                        stride_h=spec.stride_h, stride_w=spec.stride_w, pad_top=spec.pad_top,
                        pad_bottom=spec.pad_bottom, pad_left=spec.pad_left, pad_right=spec.pad_right,
                        dilation_h=spec.dilation_h, dilation_w=spec.dilation_w, groups=spec.groups,
                        output_height=spec.output_height, output_width=spec.output_width, flops=spec.flops,
                        baseline="im2col", error_tolerance=TOLERANCE.get(algo, 1e-4), seed=seed,
                        numba_threads=t, blas_threads=t, fft_workers=t,
                    )
                    case_index += 1
                    if algo == "winograd" and (spec.kernel != (3, 3) or spec.stride != (1, 1)):
                        row.update(status="skipped", reason="winograd F(2x2,3x3) needs a 3x3 kernel, stride 1")
                        layer_rows.append(row)
                        continue
                    gf = GFLOPS[algo] * (1.0 + 0.8 * (t - 1))
                    if algo == "indirect" and not _needs_im2col(spec):
                        gf = GFLOPS["im2col-numba"] * 0.95 * (1.0 + 0.8 * (t - 1))
                    if algo == "im2col" and not _needs_im2col(spec):
                        gf *= 1.5
                    median = spec.flops / (gf * 1e9) * scale
                    times = median * np.exp(rng.normal(0.0, noise, n_samples))
                    stats = summarize(times)
                    err = 10 ** rng.uniform(-7.5, -6.5)
                    if algo in TOLERANCE:
                        err = 10 ** rng.uniform(-5.5, -4.5)
                    if algo == "fft" and name == "g3x3/c64_hw16":
                        err = 3e-2
                        row.update(status="failed", reason=f"max relative error {err:.1e} > tolerance 5e-04")
                    ws = _workspace(algo, spec)
                    row.update(
                        prepare_s=median * 0.5, compile_s=0.3 + median, loops=1,
                        gflops=spec.flops / stats["time_median_s"] / 1e9,
                        workspace_bytes=ws, measured_workspace_bytes=int(ws * 1.02) + (4096 if ws else 0),
                        peak_bytes=spec.output_bytes + ws, prepare_bytes=spec.weight_bytes,
                        max_rel_err=err, numba_allocs=0, **stats,
                    )
                    if algo == "im2col":
                        base_median = stats["time_median_s"]
                    layer_rows.append(row)
                    for i, x in enumerate(times):
                        samples.append(sample_row(case_index=row["case_index"], case_id=case_id, layer=name,
                                            algorithm=algo, layout="nhwc", dtype="float32", threads=t,
                                            round=i, sample=i, loops=1, time_s=float(x)))
                for row in layer_rows:
                    if row["status"] == "ok" and base_median:
                        row["speedup_vs_baseline"] = base_median / row["time_median_s"]
                rows += layer_rows
        writer.append(rows, samples)
        writer.write_env({
            "system": {"hostname": "synthetic", "os": "Linux"},
            "cpu": {"model": "Synthetic CPU (test data)", "logical_cores": 2, "available_cores": 2,
                    "simd": ["avx2", "fma"]},
            "threads": {"blas": "openblas", "blas_version": "0.3.0"},
            "calibration": {"sgemm_gflops": {"1": 80.0, "2": 140.0}, "sgemm_size": 1024,
                            "memory_copy_gbs": 12.0, "memory_copy_mib": 128},
            "convbench": {"version": "0.1.0", "commit": None},
            "seed": seed, "start_time": "2025-01-01T00:00:00", "end_time": "2025-01-01T00:01:00",
        })
        writer.write_config(dump_config({
            "name": "synthetic", "network": "Synthetic", "seed": seed, "algorithms": algorithms,
            "baseline": "im2col", "threads": threads,
            "layers": [{"name": n, "layer_class": c, "count": k, **s} for n, c, k, s in layers],
        }))
    return folder


if __name__ == "__main__":
    if FOLDER.exists():
        shutil.rmtree(FOLDER)
    make_results(FOLDER, threads=(1, 2), n_samples=8)
    print(f"wrote {FOLDER}")
