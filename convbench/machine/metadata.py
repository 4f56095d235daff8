"""What ``env.json`` says about the machine: one collector function per topic.

Each ``collect_*`` returns a dict and never raises (a collector that cannot
find something records ``None`` or an ``"error"`` entry), so metadata can
never stop a run. :func:`collect_all` puts them together.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Callable

LIBRARIES = ("numpy", "scipy", "numba", "llvmlite", "pandas", "threadpoolctl", "pydantic",
             "typer", "rich", "pyyaml", "matplotlib", "py-cpuinfo", "torch")


def _safe(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except Exception as exc:  # metadata must never stop a run
        return {"error": f"{type(exc).__name__}: {exc}"}


def collect_system() -> dict[str, Any]:
    uname = platform.uname()
    return {
        "hostname": socket.gethostname(),
        "os": uname.system,
        "os_release": uname.release,
        "os_version": uname.version,
        "platform": platform.platform(),
        "machine": uname.machine,
    }


def collect_cpu() -> dict[str, Any]:
    import cpuinfo

    from .cache import cache_sizes

    from .threads import available_cores

    info = cpuinfo.get_cpu_info()
    return {
        "model": info.get("brand_raw"),
        "vendor": info.get("vendor_id_raw"),
        "arch": info.get("arch"),
        "hz_advertised": info.get("hz_advertised_friendly"),
        "logical_cores": os.cpu_count(),
        "available_cores": available_cores(),
        # py-cpuinfo's sizes (on a Zen 4 VM it said L2 2 MiB, L3 1 MiB; sysfs: 1 MiB per core, 32 MiB):
        # kept for older readers, beside the OS's own table, which the cold cache is sized from
        "l2_cache_size": info.get("l2_cache_size"),
        "l3_cache_size": info.get("l3_cache_size"),
        "caches": cache_sizes(),
        "flags": sorted(info.get("flags", [])),
        "simd": [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "neon")
                 if f in info.get("flags", [])],
        "governor": _read_first("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
    }


def collect_memory() -> dict[str, Any]:
    total = None
    if hasattr(os, "sysconf"):
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            total = None
    return {"total_bytes": total, "total_gib": round(total / 2**30, 2) if total else None}


def collect_python() -> dict[str, Any]:
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "compiler": platform.python_compiler(),
    }


def collect_libraries() -> dict[str, Any]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def collect_threads() -> dict[str, Any]:
    """BLAS / OpenMP pools (threadpoolctl), numba's pool and threading layer."""
    import numba
    import numpy as np

    from .threads import max_threads, thread_report

    report = thread_report()
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                          "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "CONVBENCH_GRAIN",
                                          "CONVBENCH_BLAS_SPLIT",
                                          "OPENBLAS_THREAD_TIMEOUT", "OPENBLAS_CORETYPE")}
    blas = [p for p in report["pools"] if p["user_api"] == "blas"]
    return {
        "blas": blas[0]["internal_api"] if blas else None,
        "blas_version": blas[0]["version"] if blas else None,
        "pools": report["pools"],
        "numba_max_threads": max_threads(),
        "numba_threading_layer": report["numba_threading_layer"],
        "grain": report.get("grain"),  # how much work a step needs per thread (convbench.kernels.grain)
        "blas_split": report.get("blas_split"),  # one BLAS product's threads (convbench.kernels.split_gemm)
        "numba_config_threading_layer": numba.config.THREADING_LAYER,
        "numpy_show_config": _numpy_config(np),
        "env": env,
    }


def _numpy_config(np: Any) -> Any:
    try:
        cfg = np.show_config(mode="dicts")
        return cfg.get("Build Dependencies", cfg)
    except Exception:
        return None


def collect_convbench() -> dict[str, Any]:
    from .._version import __version__

    root = Path(__file__).resolve().parents[2]
    commit = dirty = None
    if (root / ".git").exists():
        commit = _git(root, "rev-parse", "HEAD")
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
        dirty = bool(status) if status is not None else None
    return {"version": __version__, "commit": commit, "dirty": dirty, "source": str(root)}


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _read_first(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


# -- calibration -----------------------------------------------------------------


def _best_of(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def calibrate(threads: list[int] | None = None, n: int = 1024, mem_mib: int = 128, repeat: int = 3,
              runs: int = 5) -> dict[str, Any]:
    """Machine ceilings: numpy sgemm GFLOP/s per thread count (``threads``, and always 1
    and numba's maximum, so the machine's own scaling is on record), copy GB/s.

    The sgemm rate is measured ``runs`` times (each the best of ``repeat``
    ``n x n`` float32 matmuls), a quarter second apart, since one reading on
    a shared machine can be off by half: ``sgemm_gflops`` is their median,
    ``sgemm_gflops_best`` the best (the roof a figure may draw) and
    ``sgemm_gflops_runs`` all of them. Memory bandwidth is a ``mem_mib``
    array copy counted as read + write, best of ``repeat``.
    """
    import numpy as np

    from .threads import check_threads, limit_threads, max_threads

    # 1 and all of numba's threads always, so every env.json says how the machine's sgemm scales
    counts = sorted(set(threads or []) | {1, max_threads()})
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    readings: dict[str, list[float]] = {}
    for run in range(runs):
        if run:
            time.sleep(0.25)
        for t in counts:
            if check_threads(t):
                continue
            with limit_threads(t):
                best = _best_of(lambda: np.matmul(a, b, out=c), repeat)
            readings.setdefault(str(t), []).append(round(2 * n**3 / best / 1e9, 2))
    src = np.ones(mem_mib * 2**20 // 8)
    dst = np.empty_like(src)
    with limit_threads(1):
        best = _best_of(lambda: np.copyto(dst, src), repeat)
    return {
        "sgemm_gflops": {t: round(float(np.median(r)), 2) for t, r in readings.items()},
        "sgemm_gflops_best": {t: max(r) for t, r in readings.items()},
        "sgemm_gflops_runs": readings,
        "sgemm_size": n,
        "memory_copy_gbs": round(2 * src.nbytes / best / 1e9, 2),
        "memory_copy_mib": mem_mib,
    }


def collect_measurement_policy() -> dict[str, Any]:
    """Allocator and BLAS settings of the process that measures (see memory_policy)."""
    from .malloc_policy import BLAS_ENV

    return {
        "malloc": "glibc mallopt in the measuring process: no heap trimming, mmap threshold "
                  "32 MiB, top pad 64 MiB (temporaries are reused, not page-faulted, every call)",
        "worker_env_defaults": BLAS_ENV,
    }


def collect_kernel_config() -> dict[str, Any]:
    """The numba kernels' tile and blocking (``convbench.kernels.configs``) and
    whether a ``convbench tune`` choice was used."""
    from ..kernels.configs import active_config_info

    return active_config_info()


COLLECTORS: dict[str, Callable[[], dict[str, Any]]] = {
    "system": collect_system,
    "cpu": collect_cpu,
    "memory": collect_memory,
    "python": collect_python,
    "libraries": collect_libraries,
    "threads": collect_threads,
    "convbench": collect_convbench,
    "measurement": collect_measurement_policy,
    "kernel_config": collect_kernel_config,
}


def collect_all(calibration: bool = True, threads: list[int] | None = None) -> dict[str, Any]:
    """Every collector's dict under its topic name, plus ``calibration``."""
    env = {name: _safe(fn) for name, fn in COLLECTORS.items()}
    if calibration:
        from .noise import probe

        env["calibration"] = _safe(lambda: calibrate(threads))
        env["noise"] = _safe(probe)
    return env
