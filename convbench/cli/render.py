"""Tables and number formats of the command line: everything a command prints, built from library data."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table

from .app import console


def print_table(table: Table) -> None:
    """A wide table stays readable when piped (rich assumes 80 columns there)."""
    if not console.is_terminal:
        console.width = max(console.width, 200)
    console.print(table)


def fmt_time(seconds: Any) -> str:
    if seconds is None or seconds != seconds:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt(value: Any, spec: str = ".3g", empty: str = "-") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return empty
    return format(value, spec)


def _table(title: str, columns: tuple[str, ...], left: tuple[str, ...]) -> Table:
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="left" if col in left else "right")
    return table


def algorithms_table(rows: list[dict[str, str]]) -> Table:
    table = Table(title="convbench algorithms")
    for column in ("name", "description", "natural layout", "constraints", "float32 tol", "source"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(*r.values())
    return table


def verify_table() -> Table:
    return _table("convbench verify: every algorithm against the float64 reference",
                  ("algorithm", "cases", "passed", "skipped", "failed", "worst error"), ("algorithm",))


def run_summary(best: Any, totals: Any) -> None:
    """The best algorithm per layer and the network totals at the end of a run."""
    if len(best):
        table = _table("best algorithm per layer",
                       ("layer", "layout", "dtype", "threads", "best", "median", "GFLOP/s", "vs baseline"),
                       ("layer", "best"))
        for r in best.itertuples():
            table.add_row(r.layer, r.layout, r.dtype, str(r.threads), r.algorithm, fmt_time(r.time_median_s),
                          fmt(r.gflops, ".1f"), fmt(r.speedup_vs_baseline, ".2f") + "x")
        print_table(table)
    if len(totals):
        table = _table("network total per algorithm (sum of count x median)",
                       ("algorithm", "layout", "dtype", "threads", "total", "GFLOP/s", "layers ok"), ("algorithm",))
        for r in totals.sort_values(["layout", "dtype", "threads", "total_s"]).itertuples():
            total = fmt_time(r.total_s) if r.complete else f"[dim]({fmt_time(r.total_s)}, partial)[/]"
            table.add_row(r.algorithm, r.layout, r.dtype, str(r.threads), total,
                          fmt(r.gflops, ".1f"), f"{r.layers_ok}/{r.layers}")
        print_table(table)


def layers_table(name: str, n_layers: int, algorithms: list[str], rows: list[dict[str, Any]]) -> Table:
    table = _table(f"{name}: {n_layers} layers, workspace in KiB (- = unsupported)",
                   ("layer", "class", "count", "shape", "MFLOP", *algorithms), ("layer", "class", "shape"))
    for r in rows:
        ws = [fmt(None if b is None else b / 1024, ".1f") for b in r["workspace_bytes"].values()]
        table.add_row(r["layer"], r["layer_class"], str(r["count"]), r["description"], f"{r['flops'] / 1e6:.1f}", *ws)
    return table


def info_table(env: dict[str, Any]) -> Table:
    cpu, sysinfo, th, cal = env["cpu"], env["system"], env["threads"], env.get("calibration", {})
    table = Table(title="convbench info", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    for what, value in (
        ("CPU", cpu.get("model")), ("cores (available / logical)", f"{cpu.get('available_cores')} / {cpu.get('logical_cores')}"),
        ("SIMD", ", ".join(cpu.get("simd") or [])), ("memory", f"{env['memory'].get('total_gib')} GiB"),
        ("OS", sysinfo.get("platform")), ("Python", env["python"].get("version")),
        ("libraries", ", ".join(f"{k} {v}" for k, v in env["libraries"].items() if v)),
        ("BLAS", f"{th.get('blas')} {th.get('blas_version')}"),
        ("thread pools", "; ".join(f"{p['internal_api']}: {p['num_threads']}" for p in th.get("pools", []))),
        ("numba", f"{th.get('numba_max_threads')} threads, layer {th.get('numba_threading_layer')}"),
        ("sgemm GFLOP/s by threads", ", ".join(f"{t}: {g}" for t, g in (cal.get("sgemm_gflops") or {}).items())),
        ("memory copy GB/s", str(cal.get("memory_copy_gbs"))),
        ("convbench", f"{env['convbench'].get('version')} {env['convbench'].get('commit') or ''}"
                      f"{' (dirty)' if env['convbench'].get('dirty') else ''}"),
    ):
        table.add_row(what, str(value))
    return table


def doctor_table(findings: dict) -> Table:
    table = _table("this machine's steadiness (f32 sgemm 192^3, one thread, pinned to each core)",
                   ("core", "median GFLOP/s", "p10", "p90", "spread p90/p10", "drift"), ("core",))
    for core, c in findings.get("per_core", {}).items():
        table.add_row(core, fmt(c["median_gflops"], ".1f"), fmt(c["p10_gflops"], ".1f"), fmt(c["p90_gflops"], ".1f"),
                      fmt(c["spread"], ".0%"), fmt(c["drift"], "+.0%"))
    sleep, load, freq = findings.get("sleep", {}), findings.get("load", {}), findings.get("frequency", {})
    if sleep:
        table.add_row("after 1 s sleep", fmt(sleep.get("after_gflops"), ".1f"), "", "", "", fmt(sleep.get("change"), "+.0%"))
    table.caption = (f"load average {load.get('loadavg_1min', '-')}, other processes busy on "
                     f"{load.get('others_busy_cores', '-')} cores; governor {freq.get('governor') or 'not exposed'}, "
                     f"turbo {freq.get('turbo') if freq.get('turbo') is not None else 'not exposed'}")
    return table


def compare_table(shown: Any, title: str) -> Table:
    table = _table(title, ("layer", "algorithm", "layout", "dtype", "threads", "A median", "B median",
                           "B/A [95% CI]", "spread A/B", "verdict"), ("layer", "algorithm", "verdict"))
    style = {"slower": "red", "broken": "bold red", "faster": "green", "fixed": "green"}
    for r in shown.to_dict("records"):
        ratio = "-" if r["ratio"] != r["ratio"] else f"{r['ratio']:.3f} [{fmt(r['ci_low'], '.3f')}, {fmt(r['ci_high'], '.3f')}]"
        verdict = r["verdict"] if r["verdict"] not in style else f"[{style[r['verdict']]}]{r['verdict']}[/]"
        table.add_row(str(r["layer"]), r["algorithm"], r["layout"], r["dtype"], str(r["threads"]),
                      fmt_time(r["time_a_s"]), fmt_time(r["time_b_s"]), ratio,
                      f"{fmt(r['spread_a'], '.0%')}/{fmt(r['spread_b'], '.0%')}", verdict)
    return table


def winners_table(winners: Any) -> Table:
    """The fastest algorithm per layer variant on each machine; the rows where machines differ first."""
    machines = [c for c in winners.columns if c not in ("layer", "layout", "dtype", "threads", "agree")]
    table = _table("fastest algorithm per layer on each machine (yellow: the machines differ)",
                   ("layer", "layout", "dtype", "threads", *machines), ("layer", *machines))
    for r in winners.sort_values("agree", kind="stable").to_dict("records"):
        cells = [str(r[m]) if isinstance(r[m], str) and r[m] else "-" for m in machines]
        table.add_row(str(r["layer"]), r["layout"], r["dtype"], str(r["threads"]),
                      *[c if r["agree"] else f"[yellow]{c}[/]" for c in cells])
    return table


def selection_tables(selection: Any, network: Any) -> tuple[Table, Table]:
    table = _table("best algorithm per layer (fastest ok case within its error tolerance)",
                   ("layer", "layout", "dtype", "threads", "best", "median", "GFLOP/s", "runner-up", "margin"),
                   ("layer", "best", "runner-up"))
    for r in selection.to_dict("records"):
        margin = "-" if r["margin"] != r["margin"] else f"x{r['margin']:.2f}" + ("" if r["clear_winner"] else " (tie)")
        table.add_row(str(r["layer"]), r["layout"], r["dtype"], str(r["threads"]), r["algorithm"] or "[red]none ok[/]",
                      fmt_time(r["time_median_s"]), fmt(r["gflops"], ".1f"), r["runner_up"] or "-", margin)
    net = _table("network time (sum of count x median): best per layer vs one algorithm everywhere",
                 ("choice", "layout", "dtype", "threads", "total", "vs best", "layers ok"), ("choice",))
    for r in network.to_dict("records"):
        vs = fmt(r["vs_best"], ".2f") + "x" if r["vs_best"] == r["vs_best"] else ("-" if r["complete"] else "incomplete")
        net.add_row(r["choice"], r["layout"], r["dtype"], str(r["threads"]), fmt_time(r["total_s"]), vs,
                    f"{r['layers_ok']}/{r['layers']}")
    return table, net


def resume_command(config: str | None, options: dict[str, Any], out_dir: Any) -> list[str]:
    """The ``convbench run`` line that resumes an interrupted run with the same options."""
    again = ["convbench", "run", *([config] if config else [])]
    for flag in ("-a", "-t", "-l", "--memory-limit"):
        again += [flag, options[flag]] if options.get(flag) else []
    again += ["--quick"] if options.get("--quick") else []
    again += [x for p in options.get("--plugin") or [] for x in ("--plugin", p)]
    again += ["--no-isolation"] if options.get("--no-isolation") else []
    again += ["--case-timeout", options["--case-timeout"]] if options.get("--case-timeout") else []
    return again + ["--resume", str(out_dir)]
