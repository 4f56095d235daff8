"""The ``convbench`` command line: a thin typer layer over the library.

One function per subcommand; each parses arguments, calls library code and
prints. Bad input ends with a one-paragraph message and exit status 2.
"""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="convbench",
    help="Benchmark convolution algorithms against each other, with every answer checked.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """Print a one-paragraph error and exit (status 2 = bad input)."""
    from rich.markup import escape

    # escaped: a message may hold brackets that are not markup (pip install -e ".[dask]")
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


PluginOption = typer.Option(
    None, "--plugin", "-p", help="Plugin module or .py file registering algorithms (repeatable)."
)


def plugin_targets(plugins: list[str] | None) -> list[str]:
    """``--plugin`` values with file paths made absolute (as config plugins are), so a
    results folder's config.yaml names them wherever it is read from."""
    from pathlib import Path

    out = []
    for target in plugins or []:
        is_file = target.endswith(".py") or "/" in target or "\\" in target
        out.append(str(Path(target).resolve()) if is_file and not Path(target).is_absolute() else target)
    return out


def load_plugins(plugins: list[str] | None) -> None:
    """Load ``--plugin`` targets; a broken plugin is a clear error, not a traceback."""
    from ..registry import PluginError, load_plugin

    for target in plugin_targets(plugins):
        try:
            load_plugin(target)
        except PluginError as exc:
            fail(str(exc))


def resolve_algorithms(names: list[str] | None) -> list[str]:
    """Validated algorithm names (all registered ones when ``names`` is empty)."""
    from ..registry import list_algorithms

    known = list_algorithms()
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        fail(f"Unknown algorithm{plural} {', '.join(map(repr, unknown))}. Known algorithms: {', '.join(known)}.")
    return list(names) if names else known


@app.command("list")
def list_cmd(plugin: list[str] = PluginOption) -> None:
    """List every registered algorithm with its description, layout and constraints."""
    from rich.table import Table

    from ..registry import get_algorithm, list_algorithms, source_of

    load_plugins(plugin)
    table = Table(title="convbench algorithms")
    for column in ("name", "description", "natural layout", "constraints", "float32 tol", "source"):
        table.add_column(column, overflow="fold")
    for name in list_algorithms():
        algo = get_algorithm(name)
        table.add_row(
            name, algo.description, algo.natural_layout or "both", algo.constraints,
            f"{algo.tolerance_for('float32'):.0e}", source_of(name),
        )
    console.print(table)


@app.command()
def verify(
    algorithm: list[str] = typer.Option(None, "--algorithm", "-a", help="Algorithm to check (repeatable; default all)."),
    plugin: list[str] = PluginOption,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print every failed or errored case."),
) -> None:
    """Run the correctness battery (convbench.testing) and print a table; exit 1 on any failure."""
    from rich.table import Table

    from ..testing import check_algorithm

    load_plugins(plugin)
    names = resolve_algorithms(algorithm)
    table = Table(title="convbench verify: every algorithm against the float64 reference")
    for column in ("algorithm", "cases", "passed", "skipped", "failed", "worst error"):
        table.add_column(column, justify="right" if column != "algorithm" else "left")
    any_bad = False
    for name in names:
        with console.status(f"checking {name} ..."):
            results = check_algorithm(name)
        counts = {s: sum(r.status == s for r in results) for s in ("passed", "skipped", "failed", "error")}
        errors = [r.error for r in results if r.error is not None]
        bad = [r for r in results if r.status in ("failed", "error")]
        any_bad |= bool(bad)
        table.add_row(
            name, str(len(results)), str(counts["passed"]), str(counts["skipped"]),
            f"[red]{len(bad)}[/]" if bad else "0",
            f"{max(errors):.1e}" if errors else "-",
        )
        for r in bad if verbose else bad[:3]:
            err_console.print(f"[red]{r.status}[/] {name} {r.check} {r.spec_id}: {r.message}", highlight=False)
    console.print(table)
    if any_bad:
        raise typer.Exit(1)


@app.command("new-plugin")
def new_plugin(
    name: str = typer.Argument(..., help="Algorithm name, e.g. my-algo."),
    out: str = typer.Option(None, "--out", "-o", help="File or folder to write (default ./<name>.py)."),
) -> None:
    """Write a commented, working plugin skeleton that passes `convbench verify` as is."""
    from pathlib import Path

    from ..scaffold import write_plugin_skeleton

    try:
        path = write_plugin_skeleton(name, Path(out) if out else None)
    except (ValueError, FileExistsError, OSError) as exc:
        fail(str(exc))
    console.print(f"wrote {path}\nnext: convbench verify --plugin {path} -a {name}", highlight=False)


# -- sweeps: run, layers, info, merge --------------------------------------------------


def _plan(config: str | None, plugin: list[str] | None, **overrides):  # type: ignore[no-untyped-def]
    """Load a config and plan it; any user error ends in ``fail``."""
    from ..config import ConfigError, load_config
    from ..sweep.measure import plan

    load_plugins(plugin)
    try:
        return plan(load_config(config), **overrides)
    except (ConfigError, ValueError) as exc:
        fail(str(exc))


def _print_table(table) -> None:  # type: ignore[no-untyped-def]
    """A wide table stays readable when piped (rich assumes 80 columns there)."""
    if not console.is_terminal:
        console.width = max(console.width, 200)
    console.print(table)


def _fmt_time(seconds) -> str:  # type: ignore[no-untyped-def]
    if seconds is None or seconds != seconds:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _fmt(value, spec: str = ".3g", empty: str = "-") -> str:  # type: ignore[no-untyped-def]
    import math

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return empty
    return format(value, spec)


@app.command()
def run(
    config: str = typer.Argument(None, help="Config YAML, or a name in configs/ (e.g. mobilenet). Default: a small embedded sweep (with --resume: the folder's config.yaml)."),
    out: str = typer.Option(None, "--out", "-o", help="Results folder to create (must not exist or be empty). Default: results/<config>/<timestamp>/."),
    algorithms: str = typer.Option(None, "--algorithms", "-a", help="Comma-separated algorithms (default: the config's). The baseline is always added."),
    threads: str = typer.Option(None, "--threads", "-t", help="Comma-separated thread counts, e.g. 1,2 (default: the config's)."),
    layers: str = typer.Option(None, "--layers", "-l", help="Only layers whose name matches these comma-separated globs."),
    quick: bool = typer.Option(False, "--quick", help="Few samples: a smoke run, not a measurement (marked in env.json)."),
    shard: str = typer.Option(None, "--shard", help="Run shard I of N (1-based, e.g. 2/4): a deterministic 1/N of the layers; join with `convbench merge`."),
    plugin: list[str] = PluginOption,
    resume: str = typer.Option(None, "--resume", help="Finish an interrupted run: measure only the cases missing from this results folder and append them. Refused if the folder was made from a different config (or options)."),
    case_timeout: float = typer.Option(300.0, "--case-timeout", help="Seconds a case may go without progress (its set-up, or any one sample) before it is stopped and written as a `timeout` row."),
    memory_limit: str = typer.Option(None, "--memory-limit", help="Most memory a case may hold, e.g. 2GiB or 500MB (default: what the system has available). A case whose input + output + weights + workspace exceeds it is a `skipped` row; the worker cannot allocate much beyond it."),
    isolation: bool = typer.Option(True, "--isolation/--no-isolation", help="Measure in a worker process (default), so a crash (segfault, abort, out of memory) becomes a `crashed` row and the sweep goes on. --no-isolation measures in this process: needed for algorithms registered only at runtime; a crash then ends the sweep and --case-timeout does not apply."),
    executor: str = typer.Option(None, "--executor", help="Where the sweep runs: local (default: here, as one run), dask or slurm (shards as tasks, each node writing its own shard folder under OUT/shards/, merged into OUT with a `machine` column). See docs/cluster.md."),
    tasks: int = typer.Option(None, "--tasks", help="--executor dask|slurm: number of shards (tasks); default one per group (layer variant x thread count)."),
    dask_scheduler: str = typer.Option(None, "--dask-scheduler", help="--executor dask: a running scheduler, tcp://HOST:PORT, whose workers offer the resource bench=1 (one per node). Default: a LocalCluster on this machine."),
    dask_workers: int = typer.Option(1, "--dask-workers", help="--executor dask without a scheduler: LocalCluster workers. More than 1 measures side by side on this machine's cores."),
    slurm_cluster: str = typer.Option(None, "--slurm-cluster", help="--executor slurm: slurm (default; sbatch a job array) or local (submitit's local executor: tasks one after another here, for tests and machines without SLURM)."),
    slurm_partition: str = typer.Option(None, "--slurm-partition", help="--executor slurm: the partition to submit to."),
    slurm_time: int = typer.Option(None, "--slurm-time", help="--executor slurm: minutes per task (default 60)."),
    slurm_cpus: int = typer.Option(None, "--slurm-cpus", help="--executor slurm: cores per task (default: the largest thread count)."),
    slurm_exclusive: bool = typer.Option(True, "--slurm-exclusive/--slurm-shared", help="--executor slurm: a whole node per task (default), so no other job shares its cores while it measures."),
) -> None:
    """Measure a sweep, check every answer, and write a results folder.

    Every finished group of cases is on disk at once: a sweep stopped at any
    moment (Ctrl-C, kill, power loss) keeps them, and `--resume DIR`
    measures only the rest. Each case ends as one row: ok, skipped, failed
    (wrong answer), error (raised), crashed (killed the worker; the reason
    names the signal) or timeout.
    """
    import shlex
    import warnings
    from pathlib import Path

    config_arg = config

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..config import ConfigError
    from ..machine.memory import parse_size
    from ..results import ResultsError, check_new_dir, default_out_dir, read_env
    from ..sweep.measure import RunInterrupted, run as run_plan
    from ..sweep.isolation import WorkerError

    try:
        limit = parse_size(memory_limit)
    except ValueError as exc:
        fail(str(exc))
    if not case_timeout > 0:
        fail(f"--case-timeout must be a positive number of seconds, got {case_timeout:g}")
    from ..executors import EXECUTORS, is_cluster_run

    if executor not in (None, *EXECUTORS):
        fail(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if (executor or "local") != "local" or (resume and is_cluster_run(resume)):
        from .cluster import run_on_executor

        if shard:
            fail("--shard and --executor do not mix: the executor makes the shards itself (see --tasks)")
        the_plan = _plan(config or (str(Path(resume) / "config.yaml") if resume else None), plugin,
                         algorithms=algorithms, threads=threads, layers=layers, quick=quick,
                         plugins=plugin_targets(plugin))
        run_on_executor(the_plan, executor, out=out, resume=resume, tasks=tasks, options=dict(
            dask_scheduler=dask_scheduler, dask_workers=dask_workers, slurm_cluster=slurm_cluster,
            slurm_partition=slurm_partition, slurm_time=slurm_time, slurm_cpus=slurm_cpus,
            slurm_exclusive=slurm_exclusive), run_options=dict(
            isolation=isolation, case_timeout=case_timeout, memory_limit=limit))
        return
    if resume:
        if out and Path(out).resolve() != Path(resume).resolve():
            fail(f"give either --out (a new folder) or --resume (an interrupted one), not both: {out} and {resume}")
        try:
            env = read_env(resume)
        except ResultsError as exc:
            fail(f"cannot resume: {exc}")
        if config is None:
            config_arg, config = None, str(Path(resume) / "config.yaml")
        if shard is None and env.get("shard"):
            shard = f"{env['shard']['index']}/{env['shard']['count']}"
    the_plan = _plan(config, plugin, algorithms=algorithms, threads=threads, layers=layers, quick=quick, shard=shard,
                     plugins=plugin_targets(plugin))
    try:
        if not resume:
            check_new_dir(out)
    except ResultsError as exc:
        fail(str(exc))
    out_dir = Path(resume or out or default_out_dir(the_plan.config.name))
    again = ["convbench", "run", *([config_arg] if config_arg else [])]
    for flag, value in (("-a", algorithms), ("-t", threads), ("-l", layers), ("--memory-limit", memory_limit)):
        again += [flag, value] if value else []
    again += ["--quick"] if quick else []
    again += [x for p in plugin or [] for x in ("--plugin", p)]
    again += ["--no-isolation"] if not isolation else []
    again += ["--case-timeout", f"{case_timeout:g}"] if case_timeout != 300.0 else []
    again += ["--resume", str(out_dir)]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task("starting (worker, machine metadata)", total=the_plan.n_cases)

        def progress(case, done: bool) -> None:  # type: ignore[no-untyped-def]
            label = f"{case.layer.name} {case.spec.layout}/{case.spec.dtype} t{case.threads}: {case.algorithm}"
            bar.update(task, description=label, advance=1 if done else 0)

        try:
            with warnings.catch_warnings():  # e.g. a torn line repaired on resume: one line, no source
                warnings.showwarning = lambda msg, *a, **k: err_console.print(
                    f"[yellow]warning:[/] {msg}", highlight=False, soft_wrap=True)
                outcome = run_plan(the_plan, out_dir, progress=progress, isolation=isolation,
                                   case_timeout=case_timeout, memory_limit=limit, resume=bool(resume))
        except (ResultsError, WorkerError, ConfigError, ValueError) as exc:
            fail(str(exc))
        except RunInterrupted as exc:
            bar.stop()
            err_console.print(
                f"interrupted: {exc.cases_written} cases written to {exc.out_dir}; "
                f"resume with: {shlex.join(again)}", highlight=False, soft_wrap=True)
            raise typer.Exit(130)
        except KeyboardInterrupt:
            bar.stop()
            err_console.print("interrupted before any case was measured", highlight=False)
            raise typer.Exit(130)
    if resume:
        measured = (outcome.env.get("resumes") or [{}])[-1].get("cases_to_measure", 0)
        console.print(f"resumed {out_dir}: measured the {measured} missing cases"
                      if measured else f"{out_dir} already holds every case; nothing was measured", highlight=False)
    _print_run_summary(outcome.rows)
    from ..results import STATUSES

    counts = {s: sum(r["status"] == s for r in outcome.rows) for s in STATUSES}
    console.print(
        f"{len(outcome.rows)} cases: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n or s == "ok")
        + f"\nresults: {outcome.out_dir}", highlight=False,
    )


def _print_run_summary(rows: list[dict]) -> None:
    import pandas as pd
    from rich.table import Table

    from ..results import network_totals
    from ..analysis.select import select_best

    if not rows:
        return
    df = pd.DataFrame(rows)
    best = select_best(df)
    best = best[best["algorithm"] != ""]  # layers where no case is ok have no winner
    if len(best):
        table = Table(title="best algorithm per layer")
        for col in ("layer", "layout", "dtype", "threads", "best", "median", "GFLOP/s", "vs baseline"):
            table.add_column(col, justify="left" if col in ("layer", "best") else "right")
        for r in best.itertuples():
            table.add_row(r.layer, r.layout, r.dtype, str(r.threads), r.algorithm,
                          _fmt_time(r.time_median_s), _fmt(r.gflops, ".1f"),
                          _fmt(r.speedup_vs_baseline, ".2f") + "x")
        _print_table(table)
    totals = network_totals(df)
    if len(totals):
        table = Table(title="network total per algorithm (sum of count x median)")
        for col in ("algorithm", "layout", "dtype", "threads", "total", "GFLOP/s", "layers ok"):
            table.add_column(col, justify="left" if col == "algorithm" else "right")
        for r in totals.sort_values(["layout", "dtype", "threads", "total_s"]).itertuples():
            total = _fmt_time(r.total_s) if r.complete else f"[dim]({_fmt_time(r.total_s)}, partial)[/]"
            table.add_row(r.algorithm, r.layout, r.dtype, str(r.threads), total,
                          _fmt(r.gflops, ".1f"), f"{r.layers_ok}/{r.layers}")
        _print_table(table)


@app.command()
def layers(
    config: str = typer.Argument(None, help="Config YAML, or a name in configs/. Default: the embedded sweep."),
    algorithms: str = typer.Option(None, "--algorithms", "-a", help="Comma-separated algorithms (default: the config's)."),
    layers: str = typer.Option(None, "--layers", "-l", help="Only layers whose name matches these comma-separated globs."),
    plugin: list[str] = PluginOption,
) -> None:
    """Show the expanded layer table: shapes, FLOPs, and each algorithm's workspace."""
    from rich.table import Table

    from ..sweep.measure import describe_layers

    the_plan = _plan(config, plugin, algorithms=algorithms, layers=layers)
    rows = describe_layers(the_plan)
    table = Table(title=f"{the_plan.config.name}: {len(the_plan.config.layers)} layers, workspace in KiB (- = unsupported)")
    for col in ("layer", "class", "count", "shape", "MFLOP", *the_plan.algorithms):
        table.add_column(col, justify="left" if col in ("layer", "class", "shape") else "right")
    for r in rows:
        ws = [_fmt(None if b is None else b / 1024, ".1f") for b in r["workspace_bytes"].values()]
        table.add_row(r["layer"], r["layer_class"], str(r["count"]), r["description"], f"{r['flops'] / 1e6:.1f}", *ws)
    _print_table(table)
    total = sum(r["flops"] * r["count"] for r in rows)
    console.print(f"total (weighted by count, summed over variants): {total / 1e9:.3f} GFLOP", highlight=False)


@app.command()
def info(
    as_json: bool = typer.Option(False, "--json", help="Print everything env.json would hold, as JSON."),
) -> None:
    """Describe this machine: CPU, memory, libraries, BLAS and thread pools, a quick calibration."""
    import json

    from rich.table import Table

    from ..machine.metadata import collect_all

    with err_console.status("collecting metadata and calibrating ..."):
        env = collect_all(calibration=True)
    if as_json:
        console.print_json(json.dumps(env, default=str))
        return
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
    console.print(table)


@app.command()
def merge(
    folders: list[str] = typer.Argument(..., help="Shard results folders of one sweep."),
    out: str = typer.Option(..., "--out", "-o", help="Folder to create for the merged results."),
) -> None:
    """Join shard folders (from `run --shard I/N`) into one; refuses different configs."""
    from ..results import ResultsError, merge_results, read_env

    try:
        path = merge_results(folders, out)
        env = read_env(path)
    except ResultsError as exc:
        fail(str(exc))
    note = "" if env.get("complete") else " (not every shard 1..N is present)"
    console.print(f"merged {len(folders)} folders into {path}{note}", highlight=False)


# -- figures and judgements: plot, compare, select, reproduce ---------------------------


def _read(folder: str):  # type: ignore[no-untyped-def]
    from ..results import ResultsError, read_results

    try:
        return read_results(folder)
    except ResultsError as exc:
        fail(str(exc))


@app.command()
def plot(
    results_dirs: list[str] = typer.Argument(..., help="A results folder written by `convbench run`; or results of several machines (a merged folder, or a folder per machine, with --out): a machine panel, and the figures per machine."),
    out: str = typer.Option(None, "--out", "-o", help="Folder for the figures (default: RESULTS_DIR/plots/)."),
    only: str = typer.Option(None, "--only", help="Comma-separated figures: speedup, gflops, memory, accuracy, roofline, winner_map, thread_scaling, network, machines."),
    formats: str = typer.Option("png,svg", "--format", help="Comma-separated file formats (png, svg, pdf)."),
) -> None:
    """Draw the figures of a results folder (PNG + SVG) from its CSVs."""
    from ..plots import plot_all
    from ..results import ResultsError

    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    fmts = [f.strip().lower() for f in formats.split(",") if f.strip()]
    try:
        with console.status("drawing ..."):
            paths = plot_all(results_dirs, out, only=names, formats=fmts)
    except (ResultsError, ValueError) as exc:
        fail(str(exc))
    for p in paths:
        console.print(str(p), highlight=False)
    console.print(f"{len(paths)} files", highlight=False)


@app.command()
def compare(
    folders: list[str] = typer.Argument(..., help="A B: the reference run and the run compared with it. Or results from several machines (one merged folder, or a folder per machine): each machine against the first."),
    threshold: float = typer.Option(0.05, "--threshold", help="Smallest relative change that counts (0.05 = 5%)."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the Mann-Whitney U test."),
    fail_on_regression: bool = typer.Option(False, "--fail-on-regression", help="Exit with status 1 if any case is significantly slower or broke."),
    show_all: bool = typer.Option(False, "--all", help="List every case, not only the changed ones."),
    csv_out: str = typer.Option(None, "--csv", help="Also write the per-case table to this CSV file."),
) -> None:
    """Per matching case: ratio of medians B/A with a 95% CI, Mann-Whitney U, and a verdict.

    Two runs of the same machine(s) compare run against run (per machine).
    Results of several machines compare each machine with the first, on the
    cases both measured, and list the layers whose fastest algorithm changes.
    """
    from rich.table import Table

    from ..analysis.compare import CompareError
    from ..analysis.machines import compare_folders
    from ..results import ResultsError

    if threshold < 0 or not 0 < alpha < 1:
        fail(f"--threshold must be >= 0 and --alpha in (0, 1); got {threshold} and {alpha}")
    try:
        result = compare_folders(folders, threshold=threshold, alpha=alpha)
    except (CompareError, ResultsError) as exc:
        fail(str(exc))
    df = result.table
    if csv_out:
        df.to_csv(csv_out, index=False)
    shown = df if show_all else df[df["verdict"].isin(["slower", "faster", "broken", "fixed"])]
    by_machine = "machine" in df.columns
    if result.mode == "runs":
        a, b = folders
        title = f"B / A time: {b} against {a} (change > {threshold:.0%} and p < {alpha} to count)"
    else:
        title = (f"time on each machine / time on the first (change > {threshold:.0%} and p < {alpha} to count)")
    table = Table(title=title)
    for col in ("machine",) * by_machine + ("layer", "algorithm", "layout", "dtype", "threads", "A median", "B median", "B/A [95% CI]", "p", "verdict"):
        table.add_column(col, justify="left" if col in ("machine", "layer", "algorithm", "verdict") else "right")
    style = {"slower": "red", "broken": "bold red", "faster": "green", "fixed": "green"}
    for r in shown.to_dict("records"):
        ratio = "-" if r["ratio"] != r["ratio"] else f"{r['ratio']:.3f} [{_fmt(r['ci_low'], '.3f')}, {_fmt(r['ci_high'], '.3f')}]"
        verdict = r["verdict"] if r["verdict"] not in style else f"[{style[r['verdict']]}]{r['verdict']}[/]"
        table.add_row(*([str(r["machine"])] if by_machine else []), str(r["layer"]), r["algorithm"], r["layout"], r["dtype"], str(r["threads"]),
                      _fmt_time(r["time_a_s"]), _fmt_time(r["time_b_s"]), ratio, _fmt(r["p_value"], ".2g"), verdict)
    if len(shown):
        _print_table(table)
    counts = df["verdict"].value_counts().to_dict()
    console.print(f"{len(df)} cases: " + ", ".join(f"{n} {v}" for v, n in counts.items()), highlight=False)
    if result.winners is not None and len(result.winners):
        _print_winners(result.winners)
    for note in result.notes:
        err_console.print(f"note: {note}", highlight=False)
    if fail_on_regression and len(result.regressions):
        err_console.print(f"[red]{len(result.regressions)} regression(s)[/]", highlight=False)
        raise typer.Exit(1)


def _print_winners(winners) -> None:  # type: ignore[no-untyped-def]
    """The fastest algorithm per layer variant on each machine; rows that differ first."""
    from rich.table import Table

    machines = [c for c in winners.columns if c not in ("layer", "layout", "dtype", "threads", "agree")]
    table = Table(title="fastest algorithm per layer on each machine")
    for col in ("layer", "layout", "dtype", "threads", *machines):
        table.add_column(col, justify="right" if col == "threads" else "left")
    for r in winners.sort_values("agree", kind="stable").to_dict("records"):
        cells = [str(r[m]) if isinstance(r[m], str) and r[m] else "-" for m in machines]
        style = "" if r["agree"] else "[yellow]"
        table.add_row(str(r["layer"]), r["layout"], r["dtype"], str(r["threads"]),
                      *[f"{style}{c}[/]" if style else c for c in cells])
    _print_table(table)


@app.command("select")
def select_cmd(
    results_dirs: list[str] = typer.Argument(..., help="A results folder written by `convbench run`; or results of several machines (a merged folder, or a folder per machine): the best per layer on each."),
    out: str = typer.Option(None, "--out", "-o", help="Folder for selection.csv (default: the results folder; needed with several folders)."),
) -> None:
    """The best algorithm per layer (fastest ok case within tolerance) -> RESULTS_DIR/selection.csv."""
    from rich.table import Table

    from ..results import ResultsError
    from ..analysis.machines import write_selections

    try:
        path, selection, network = write_selections(results_dirs, out)
    except ResultsError as exc:
        fail(str(exc))
    by_machine = ("machine",) if "machine" in selection.columns else ()
    table = Table(title="best algorithm per layer (fastest ok case within its error tolerance)")
    for col in (*by_machine, "layer", "layout", "dtype", "threads", "best", "median", "GFLOP/s", "runner-up", "margin"):
        table.add_column(col, justify="left" if col in ("machine", "layer", "best", "runner-up") else "right")
    for r in selection.to_dict("records"):
        margin = "-" if r["margin"] != r["margin"] else f"x{r['margin']:.2f}" + ("" if r["clear_winner"] else " (tie)")
        table.add_row(*[str(r[c]) for c in by_machine], str(r["layer"]), r["layout"], r["dtype"], str(r["threads"]),
                      r["algorithm"] or "[red]none ok[/]",
                      _fmt_time(r["time_median_s"]), _fmt(r["gflops"], ".1f"), r["runner_up"] or "-", margin)
    _print_table(table)
    net = Table(title="network time (sum of count x median): best per layer vs one algorithm everywhere")
    for col in (*by_machine, "choice", "layout", "dtype", "threads", "total", "vs best", "layers ok"):
        net.add_column(col, justify="left" if col in ("machine", "choice") else "right")
    for r in network.to_dict("records"):
        vs = _fmt(r["vs_best"], ".2f") + "x" if r["vs_best"] == r["vs_best"] else ("-" if r["complete"] else "incomplete")
        net.add_row(*[str(r[c]) for c in by_machine], r["choice"], r["layout"], r["dtype"], str(r["threads"]),
                    _fmt_time(r["total_s"]), vs, f"{r['layers_ok']}/{r['layers']}")
    _print_table(net)
    console.print(f"wrote {path}", highlight=False)


@app.command()
def reproduce(
    out: str = typer.Option(None, "--out", "-o", help="Results folder to create (default: results/paper/<timestamp>/)."),
    quick: bool = typer.Option(False, "--quick", help="A few layers, the three algorithms of the claims, few samples: checks it all runs (well under 2 minutes)."),
    from_results: str = typer.Option(None, "--from", help="Do not run: redraw the figures and rewrite report.md of this existing results folder."),
) -> None:
    """Run configs/paper.yaml, draw its figures and write report.md judging the paper's claims."""
    from ..config import ConfigError
    from ..analysis.report import reproduce as run_reproduce, write_report
    from ..results import ResultsError, check_new_dir

    try:
        if from_results:
            _read(from_results)
            with console.status("drawing and judging ..."):
                outcome = write_report(from_results)
        else:
            check_new_dir(out)
            with console.status("running configs/paper.yaml" + (" (quick)" if quick else "") + " ..."):
                outcome = run_reproduce(out, quick=quick)
    except (ConfigError, ResultsError, ValueError) as exc:
        fail(str(exc))
    for f in outcome.findings:
        color = {"holds": "green", "does not hold": "red", "mixed": "yellow"}.get(f.verdict, "dim")
        console.print(f"claim {f.claim} vs {f.reference}: [{color}]{f.verdict}[/] - {f.headline}", highlight=False)
    console.print(f"report: {outcome.report}\nfigures: {outcome.report.parent / 'plots'}", highlight=False)


