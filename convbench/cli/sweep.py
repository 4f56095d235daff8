"""``convbench run``, ``layers``, ``info``, ``merge`` and ``repair``: measuring sweeps, describing them,
and the folders they write."""

from __future__ import annotations

from typing import Any

import typer

from ..sweep.isolation import DEFAULT_CASE_TIMEOUT
from .app import (AllowConfigPluginsOption, FormatOption, PluginOption, app, console, err_console, fail,
                  load_plugins, option_error, output_format)
from .options import parse_names, parse_shard, plan_overrides


@app.command()
def run(
    config: str = typer.Argument(None, help="Config YAML, or a name in configs/ (e.g. mobilenet). Default: a small embedded sweep (with --resume: the folder's config.yaml)."),
    out: str = typer.Option(None, "--out", "-o", help="Results folder to create (must not exist or be empty). Default: results/<config>/<timestamp>/."),
    algorithms: str = typer.Option(None, "--algorithms", "-a", help="Comma-separated algorithms (default: the config's). The baseline is always added."),
    threads: str = typer.Option(None, "--threads", "-t", help="Comma-separated thread counts, e.g. 1,2 (default: the config's)."),
    layers: str = typer.Option(None, "--layers", "-l", help="Only layers whose name matches these comma-separated globs."),
    dtype: str = typer.Option(None, "--dtype", help="Comma-separated dtypes every layer is swept over: float32, float64, u8s8 (8-bit quantized, ONNX QLinearConv), e.g. float32,u8s8 (default: the config's)."),
    cache: str = typer.Option(None, "--cache", help="Cache states to measure: warm, cold or warm,cold (default: the config's, warm). Cold evicts every operand from every cache level before each timed call."),
    wait_quiet: float = typer.Option(0.0, "--wait-quiet", help="Before each repetition of a layer, wait up to this many seconds until other processes leave the cores free (default 0: do not wait)."),
    phases: bool = typer.Option(True, "--phases/--no-phases", help="Time the steps of every call (pack, transform_in, gemm, transform_out, other) in a pass of their own and write phases.csv (default on)."),
    quick: bool = typer.Option(False, "--quick", help="Few samples: a smoke run, not a measurement (marked in env.json)."),
    repeat: int = typer.Option(None, "--repeat", "-r", help="Repetitions of every case, each in a fresh worker process at another moment of the sweep (default: the config's timing.repeat, 5 unless set; 1 with --quick)."),
    shard: str = typer.Option(None, "--shard", help="Run shard I of N (1-based, e.g. 2/4): a deterministic 1/N of the layers; join with `convbench merge`."),
    plugin: list[str] = PluginOption,
    allow_config_plugins: bool = AllowConfigPluginsOption,
    resume: str = typer.Option(None, "--resume", help="Finish an interrupted run: measure only the cases missing from this results folder and append them. Refused if the folder was made from a different config (or options)."),
    case_timeout: float = typer.Option(DEFAULT_CASE_TIMEOUT, "--case-timeout", help="Seconds a case may go without progress (its set-up, or any one sample) before it is stopped and written as a `timeout` row."),
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

    from ..analysis.select import network_totals, select_best
    from ..config import ConfigError
    from ..machine.memory import parse_size
    from ..registry import PluginError
    from ..results import FolderNotEmpty, ResultsError
    from ..sweep.isolation import WorkerError, check_case_timeout
    from ..sweep.session import RunInterrupted, prepare_run, run as run_setup
    from . import render
    from .progress import plan_seconds, sweep_progress, work_done

    try:
        limit = parse_size(memory_limit)
    except ValueError as exc:
        option_error("--memory-limit", exc)
    try:
        check_case_timeout(case_timeout)
    except ValueError as exc:
        option_error("--case-timeout", exc)
    from ..executors import EXECUTORS, is_cluster_run

    if executor not in (None, *EXECUTORS):
        fail(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if (executor or "local") != "local" or (resume and is_cluster_run(resume)):
        from .cluster import plan_for_executor, run_on_executor

        if shard:
            fail("--shard and --executor do not mix: the executor makes the shards itself (see --tasks)")
        try:
            overrides = plan_overrides(algorithms, threads, layers, cache, phases, dtype)
        except ValueError as exc:
            fail(str(exc))
        the_plan = plan_for_executor(config, resume, plugin, quick=quick, repeat=repeat, **overrides)
        run_on_executor(the_plan, executor, out=out, resume=resume, tasks=tasks, options=dict(
            dask_scheduler=dask_scheduler, dask_workers=dask_workers, slurm_cluster=slurm_cluster,
            slurm_partition=slurm_partition, slurm_time=slurm_time, slurm_cpus=slurm_cpus,
            slurm_exclusive=slurm_exclusive), run_options=dict(
            isolation=isolation, case_timeout=case_timeout, memory_limit=limit))
        return
    try:
        setup = prepare_run(config, out=out, resume=resume, plugins=plugin, allow_config_plugins=allow_config_plugins,
                            quick=quick, shard=parse_shard(shard), repeat=repeat, **plan_overrides(algorithms, threads, layers, cache, phases, dtype))
    except FolderNotEmpty as exc:
        fail(f"{exc} with --resume {out}")
    except (ConfigError, ResultsError, PluginError, ValueError) as exc:
        fail(str(exc))
    if wait_quiet < 0:
        option_error("--wait-quiet", ValueError(f"must be a number of seconds >= 0, got {wait_quiet}"))
    setup.plan.wait_quiet_s = wait_quiet
    again = resume_command(config, {
        "-a": algorithms, "-t": threads, "-l": layers, "--dtype": dtype, "--cache": cache, "--no-phases": not phases,
        "--memory-limit": memory_limit, "--quick": quick,
        "--repeat": str(repeat) if repeat is not None else None,
        "--plugin": plugin, "--allow-config-plugins": allow_config_plugins, "--no-isolation": not isolation,
        "--case-timeout": f"{case_timeout:g}" if case_timeout != DEFAULT_CASE_TIMEOUT else None,
    }, setup.out_dir)
    if quick:
        render.say(err_console, "quick run: few samples per case; a smoke test of the sweep, not a measurement")
    total = setup.plan.n_cases * setup.plan.timing.repeat
    start = work_done(setup.plan, setup.out_dir) if setup.resume else 0
    with sweep_progress(err_console, total, start, expected_s=plan_seconds(setup.plan)) as bar:
        try:
            with warnings.catch_warnings():  # e.g. a torn line repaired on resume: one line, no source
                warnings.showwarning = lambda msg, *a, **k: err_console.print(
                    f"[yellow]warning:[/] {msg}", highlight=False, soft_wrap=True)
                outcome = run_setup(setup, monitor=bar.monitor, isolation=isolation,
                                    case_timeout=case_timeout, memory_limit=limit)
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
    if setup.resume:
        measured = outcome.cases_measured
        render.say(console, f"resumed {setup.out_dir}: measured the {measured} missing cases"
                   if measured else f"{setup.out_dir} already holds every case; nothing was measured")
    if outcome.rows:
        import pandas as pd

        # the config's layer order (rows arrive in the shuffled measuring order), by layout
        df = pd.DataFrame(outcome.rows).sort_values("case_index", kind="stable")
        best = select_best(df)
        render.run_summary(best[best["algorithm"] != ""], network_totals(df))  # no winner where no case is ok
    from .progress import contention_note, noise_note

    for note in (noise_note(outcome.env), contention_note(outcome.rows) if outcome.rows else ""):
        if note:
            render.say(console, note)
    counts = outcome.status_counts
    render.say(console, f"{len(outcome.rows)} cases: "
               + ", ".join(f"{n} {s}" for s, n in counts.items() if n or s == "ok"))
    render.say(console, f"results: {outcome.out_dir}" + (" (quick run: not a measurement)" if quick else ""))
    if outcome.rows and not quick:  # a quick run is a smoke test: its page is one command away
        from .analysis import write_page

        write_page(outcome.out_dir)
    folder = shlex.quote(str(outcome.out_dir))
    render.say(console, f"next: convbench plot {folder}   (figures in {outcome.out_dir / 'plots'})")
    render.say(console, f"      convbench select {folder}   (the best algorithm per layer)")


@app.command()
def layers(
    config: str = typer.Argument(None, help="Config YAML, or a name in configs/. Default: the embedded sweep."),
    algorithms: str = typer.Option(None, "--algorithms", "-a", help="Comma-separated algorithms (default: the config's)."),
    layers: str = typer.Option(None, "--layers", "-l", help="Only layers whose name matches these comma-separated globs."),
    dtype: str = typer.Option(None, "--dtype", help="Comma-separated dtypes every layer is swept over: float32, float64, u8s8 (8-bit quantized, ONNX QLinearConv), e.g. float32,u8s8 (default: the config's)."),
    plugin: list[str] = PluginOption,
    fmt: str = FormatOption,
) -> None:
    """Show the expanded layer table: shapes, FLOPs (integer operations for u8s8), each algorithm's workspace.

    Never runs the config's plugins (a look at a config runs no code): their
    algorithms show as "not loaded" unless the same plugin is given with --plugin.
    """
    from ..config import ConfigError, load_config
    from ..config.consent import describe_target, pending_plugins, set_aside_plugin_algorithms
    from ..sweep.plan import describe_layers, plan
    from ..quant import QUANT_DTYPES
    from .options import parse_dtypes
    from .render import layers_table, print_table, say

    fmt = output_format(fmt)
    load_plugins(plugin)
    try:
        the_config, names, aside = set_aside_plugin_algorithms(load_config(config), parse_names(algorithms))
        the_plan = plan(the_config, algorithms=names, layers=parse_names(layers), dtypes=parse_dtypes(dtype))
    except (ConfigError, ValueError) as exc:
        fail(str(exc))
    rows = describe_layers(the_plan)
    records = [{"layer": r["layer"], "class": r["layer_class"], "count": r["count"], "shape": r["description"],
                "layout": r["layout"], "dtype": r["dtype"], "flops": r["flops"],
                **{f"workspace_bytes:{a}": b for a, b in r["workspace_bytes"].items()}} for r in rows]
    print_table(layers_table(the_plan.config.name, len(the_plan.config.layers), the_plan.algorithms, rows, aside), fmt,
                records if fmt != "table" else None)
    if fmt == "table":
        pending = pending_plugins(the_plan.config.model.plugins)
        if pending:
            say(console, f"not loaded: the config's plugins {', '.join(map(describe_target, pending))} "
                         "(layers never runs a config's code; `convbench run` asks for --allow-config-plugins)")
        for unit, quantized in (("GFLOP", False), ("GOP (8-bit)", True)):
            total = sum(r["flops"] * r["count"] for r in rows if (r["dtype"] in QUANT_DTYPES) == quantized)
            if total:
                say(console, f"total (weighted by count, summed over variants): {total / 1e9:.3f} {unit}")


@app.command()
def info(
    as_json: bool = typer.Option(False, "--json", help="Print everything env.json would hold, as JSON."),
) -> None:
    """Describe this machine: CPU, memory, libraries, BLAS and thread pools, a quick calibration."""
    import json

    from ..machine.metadata import collect_all
    from .render import print_table
    from .render_machine import info_table

    with err_console.status("collecting metadata and calibrating ..."):
        env = collect_all(calibration=True)
    if as_json:
        console.print_json(json.dumps(env, default=str))
        return
    print_table(info_table(env))


@app.command()
def doctor(
    seconds: float = typer.Option(24.0, "--seconds", help="How long to measure (at least 10)."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
) -> None:
    """How steady is this machine? Per-core sgemm rate and drift, the effect of a
    short sleep, other processes' load, the frequency policy, and advice."""
    import json

    from ..machine.noise import diagnose
    from .render import print_table
    from .render_machine import doctor_table

    if not seconds >= 10:
        fail(f"--seconds must be at least 10, got {seconds:g}")
    with err_console.status(f"measuring this machine for about {seconds:g} s ..."):
        findings = diagnose(seconds)
    if as_json:
        console.print_json(json.dumps(findings, default=str))
        return
    print_table(doctor_table(findings))
    verdict = findings["verdict"]
    console.print(f"verdict: {verdict['level']} (suggested --repeat {verdict['suggested_repeat']})", highlight=False)
    for line in verdict["advice"]:
        console.print(f"  - {line}", highlight=False)


@app.command()
def merge(
    folders: list[str] = typer.Argument(..., help="Shard results folders of one sweep, or runs of one config on several machines (rows get a `machine` column)."),
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
    console.print(f"merged {len(folders)} folders into {path}{note}", highlight=False, soft_wrap=True)


@app.command()
def repair(
    results_dir: str = typer.Argument(..., help="A results folder that readers refuse as corrupt."),
) -> None:
    """Remove exact duplicate rows (keeping the first) from a results folder and log it in DIR/repair.log.

    Refuses, changing nothing, what it cannot decide: one case written twice
    with different values.
    """
    from ..results import ResultsError, repair as repair_folder

    try:
        report = repair_folder(results_dir)
    except ResultsError as exc:
        fail(str(exc))
    if not report.changed:
        console.print(f"{results_dir}: nothing to repair", highlight=False)
        return
    for line in report.lines():
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"repaired {results_dir}; logged in {report.log}", highlight=False)


def resume_command(config: str | None, options: dict[str, Any], out_dir: Any) -> list[str]:
    """The ``convbench run`` line that resumes an interrupted run with the same options."""
    again = ["convbench", "run", *([config] if config else [])]
    for flag in ("-a", "-t", "-l", "--dtype", "--repeat", "--memory-limit"):
        again += [flag, options[flag]] if options.get(flag) else []
    again += ["--quick"] if options.get("--quick") else []
    again += [x for p in options.get("--plugin") or [] for x in ("--plugin", p)]
    again += ["--allow-config-plugins"] if options.get("--allow-config-plugins") else []
    again += ["--no-isolation"] if options.get("--no-isolation") else []
    again += ["--case-timeout", options["--case-timeout"]] if options.get("--case-timeout") else []
    return again + ["--resume", str(out_dir)]
