"""The tables of ``convbench info`` and ``convbench doctor``: this machine, and how steady it is."""

from __future__ import annotations

from typing import Any

from .render import Grid, _table, fmt


def info_table(env: dict[str, Any]) -> Grid:
    cpu, sysinfo, th, cal = env["cpu"], env["system"], env["threads"], env.get("calibration", {})
    table = Grid(title="convbench info")
    table.add_column("what")
    table.add_column("value", wrap=True)
    for what, value in (
        ("CPU", cpu.get("model")), ("cores (available / logical)", f"{cpu.get('available_cores')} / {cpu.get('logical_cores')}"),
        ("SIMD", ", ".join(cpu.get("simd") or [])), ("memory", f"{env['memory'].get('total_gib')} GiB"),
        ("OS", sysinfo.get("platform")), ("Python", env["python"].get("version")),
        ("libraries", ", ".join(f"{k} {v}" for k, v in env["libraries"].items() if v)),
        ("BLAS", f"{th.get('blas')} {th.get('blas_version')}"),
        ("thread pools", "; ".join(f"{p['internal_api']}: {p['num_threads']}" for p in th.get("pools", []))),
        ("numba", f"{th.get('numba_max_threads')} threads, layer {th.get('numba_threading_layer')}"),
        ("kernel configuration", f"{env.get('kernel_config', {}).get('name')} "
                                 f"({env.get('kernel_config', {}).get('source')})"),
        ("sgemm GFLOP/s by threads", ", ".join(f"{t}: {g}" for t, g in (cal.get("sgemm_gflops") or {}).items())),
        ("memory copy GB/s", str(cal.get("memory_copy_gbs"))),
        ("convbench", f"{env['convbench'].get('version')} {env['convbench'].get('commit') or ''}"
                      f"{' (dirty)' if env['convbench'].get('dirty') else ''}"),
    ):
        table.add_row(what, str(value))
    return table


def doctor_table(findings: dict) -> Grid:
    table = _table("this machine's steadiness (f32 sgemm 192^3, one thread, pinned to each core)",
                   ("core", "median GFLOP/s", "p10", "p90", "spread p90/p10", "drift"), ("core",))
    for core, c in findings.get("per_core", {}).items():
        table.add_row(core, fmt(c["median_gflops"], ".1f"), fmt(c["p10_gflops"], ".1f"), fmt(c["p90_gflops"], ".1f"),
                      fmt(c["spread"], ".0%"), fmt(c["drift"], "+.0%"))
    sleep, load, freq = findings.get("sleep", {}), findings.get("load", {}), findings.get("frequency", {})
    if sleep:
        table.add_row("after 1 s sleep", fmt(sleep.get("after_gflops"), ".1f"), "", "", "", fmt(sleep.get("change"), "+.0%"))
    pre = findings.get("preemption", {})
    table.caption = (f"load average {load.get('loadavg_1min', '-')}, other processes busy on "
                     f"{load.get('others_busy_cores', '-')} cores, steal {fmt(load.get('steal'), '.1%')}; "
                     f"{fmt(pre.get('share'), '.1%')} of 5 ms slices of a busy loop preempted (a sweep retakes "
                     f"such samples); governor {freq.get('governor') or 'not exposed'}, "
                     f"turbo {freq.get('turbo') if freq.get('turbo') is not None else 'not exposed'}")
    return table
