"""The machine a run was measured on, in words: the "Machine" section of a report."""

from __future__ import annotations


def machine_lines(env: dict) -> list[str]:
    """A results folder's machine, as markdown bullet lines (report.md's "Machine" section)."""
    cpu = env.get("cpu") or {}
    cal = env.get("calibration") or {}
    thr = env.get("threads") or {}
    sgemm = ", ".join(f"{v} GFLOP/s on {k} thread{'s' if str(k) != '1' else ''}"
                      for k, v in (cal.get("sgemm_gflops") or {}).items())
    return [
        f"- CPU: **{cpu.get('model') or 'unknown'}**, {cpu.get('available_cores') or cpu.get('logical_cores') or '?'} "
        f"cores available, SIMD: {', '.join(cpu.get('simd') or []) or 'unknown'}",
        f"- BLAS: {thr.get('blas') or 'unknown'} {thr.get('blas_version') or ''}".rstrip(),
        f"- calibration: sgemm {sgemm or 'not measured'}; memory copy {cal.get('memory_copy_gbs', 'not measured')} GB/s",
        f"- host: {(env.get('system') or {}).get('hostname', '?')}; convbench "
        f"{(env.get('convbench') or {}).get('version', '?')} ({source_state(env.get('convbench') or {})})",
        f"- run: {env.get('start_time') or '?'} to {env.get('end_time') or '?'}",
    ]


def source_state(info: dict) -> str:
    """The commit, and whether the tree had uncommitted changes (then the commit alone cannot reproduce it)."""
    dirty = {True: ", **with uncommitted changes (dirty tree): not reproducible from the commit alone**",
             False: ", clean tree"}.get(info.get("dirty"), ", tree state unknown")
    return f"commit {info.get('commit') or 'unknown'}{dirty}"
