"""``convbench run --executor dask|slurm``: submit, show progress across tasks, merge.

The command-line side of :mod:`convbench.executors`: it builds the executor
from the options, renders the driver's progress and the merged result, and
turns every user error into a one-paragraph message with exit status 2.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from .app import console, err_console, fail

#: Executor options a resume takes from the run it continues when not given again.
RESUMED_OPTIONS = ("dask_scheduler", "slurm_cluster", "slurm_partition", "slurm_time", "slurm_cpus")


def plan_for_executor(config: str | None, resume: str | None, plugins: list[str] | None, **overrides: Any) -> Any:
    """The whole sweep's plan (plugins loaded): from ``config``, or from the folder being
    resumed (its config.yaml); any user error ends the command."""
    from ..config import ConfigError, load_config
    from ..registry import PluginError, load_plugin, plugin_target
    from ..sweep.plan import plan

    try:
        targets = [plugin_target(p, Path.cwd()) for p in plugins or []]
        for target in targets:
            load_plugin(target)
        source = config if config is not None else (str(Path(resume) / "config.yaml") if resume else None)
        return plan(load_config(source), plugins=targets, **overrides)
    except (ConfigError, PluginError, ValueError) as exc:
        fail(str(exc))


def run_on_executor(plan: Any, executor: str | None, *, out: str | None, resume: str | None, tasks: int | None,
                    options: dict[str, Any], run_options: dict[str, Any]) -> None:
    """Run ``plan`` on ``executor`` into ``out`` (or continue ``resume``); print the outcome.

    ``options`` are the executor's (see :func:`convbench.executors.get_executor`);
    ``run_options`` go to every task's :func:`convbench.sweep.session.run`.
    """
    import typer
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..config import ConfigError
    from ..executors import ClusterInterrupted, ExecutorError, execute, get_executor, read_cluster
    from ..results import ResultsError, default_out_dir

    options = dict(options)
    if resume:
        try:
            last = read_cluster(resume)["submissions"][-1]
        except (ExecutorError, KeyError, IndexError) as exc:
            fail(f"cannot resume {resume}: {exc}")
        executor = executor or last.get("executor")
        recorded = {"dask_scheduler": last.get("dask_scheduler") if "LocalCluster" not in str(last.get("dask_scheduler")) else None,
                    "slurm_cluster": last.get("slurm_cluster"), "slurm_partition": last.get("slurm_partition"),
                    "slurm_time": last.get("slurm_time_min"), "slurm_cpus": last.get("slurm_cpus")}
        for key in RESUMED_OPTIONS:
            if options.get(key) is None and recorded.get(key) is not None:
                options[key] = recorded[key]
    executor = executor or "local"
    if options.get("slurm_cpus") is None:
        options["slurm_cpus"] = max(plan.threads)  # a task needs as many cores as its widest case
    out_dir = Path(resume or out or default_out_dir(plan.config.name))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with get_executor(executor, out_dir, **options) as ex, \
                Progress(*columns, console=err_console, transient=False) as bar:
            task = bar.add_task(f"starting ({executor})", total=plan.n_cases)

            def progress(p: Any) -> None:
                c = p.counts()
                bar.update(task, completed=p.cases_done, description=(
                    f"{executor}: {c['pending']} task(s) pending, {c['done']} done, {c['failed']} failed"))

            outcome = execute(plan, out_dir, ex, tasks=tasks, run_options=run_options, resume=bool(resume),
                              on_progress=progress)
    except (ExecutorError, ResultsError, ConfigError, ValueError) as exc:
        fail(str(exc))
    except ClusterInterrupted as exc:
        err_console.print(
            f"interrupted: every shard keeps what its task wrote under {exc.out_dir / 'shards'} (SLURM jobs keep "
            f"running); finish and merge with: convbench run --resume {shlex.quote(str(exc.out_dir))}",
            highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    _print_outcome(outcome, resume)


def _print_outcome(outcome: Any, resume: str | None) -> None:
    import typer
    from rich.table import Table

    from ..machine.identity import MACHINE_COLUMN
    from .render import print_table
    from ..results import STATUSES

    rows = outcome.rows
    for key, state in sorted(outcome.states.items()):
        if state.state == "failed":
            err_console.print(f"[red]task {key} failed[/]: {state.reason}", highlight=False, soft_wrap=True)
    if resume:
        console.print(f"resumed {outcome.out_dir}: submitted {outcome.submitted} task(s) with missing cases",
                      highlight=False)
    machines = sorted({r.get(MACHINE_COLUMN) for r in rows if r.get(MACHINE_COLUMN)})
    if len(machines) == 1:
        import pandas as pd

        from ..analysis.select import network_totals, select_best
        from . import render

        df = pd.DataFrame([r for r in rows if r["status"] != "missing"])
        if len(df):
            best = select_best(df)
            render.run_summary(best[best["algorithm"] != ""], network_totals(df))  # no winner where no case is ok
    elif machines:
        table = Table(title="cases per machine")
        for col in ("machine", "cases", "ok"):
            table.add_column(col, justify="left" if col == "machine" else "right")
        for m in machines:
            mine = [r for r in rows if r.get(MACHINE_COLUMN) == m]
            table.add_row(m, str(len(mine)), str(sum(r["status"] == "ok" for r in mine)))
        print_table(table)
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    console.print(f"{len(rows)} cases: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n or s == "ok")
                  + f"\nresults: {outcome.out_dir} (shards: {outcome.out_dir / 'shards'})", highlight=False)
    if outcome.missing:
        err_console.print(f"{outcome.missing} case(s) missing: measure them with: "
                          f"convbench run --resume {shlex.quote(str(outcome.out_dir))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
