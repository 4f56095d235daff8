"""``convbench zoo``: nine real networks from the onnx wheel, measured as one sweep, judged as networks.

The command builds the zoo's config (:mod:`convbench.zoo`), runs it through
``convbench run`` itself (so every option of ``run`` works on it: layers,
cache, repetitions, shards, executors, resume, plugins ...), writes
``zoo.json`` beside the results, and ends with the zoo's report
(:mod:`convbench.analysis.zoo_report`): per-network totals, the gain of
choosing per layer, per-class verdicts, the paper's claims on the zoo.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import typer

from .app import app, console, err_console, fail, option_error
from .options import parse_dtypes, parse_ints, parse_names


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def zoo(
    ctx: typer.Context,
    networks: str = typer.Option(None, "--networks", "-n", help="Comma-separated networks (default: all nine): alexnet, zfnet512, vgg19, inception_v1, inception_v2, resnet50, densenet121, squeezenet, shufflenet."),
    quick: bool = typer.Option(False, "--quick", help="Every layer of every network, few samples, one repetition, no phase pass, a case memory cap of 160MiB (skips FFT on its 40 largest layers), the built-ins without naive and winograd-f6 (plus the peers where installed): a smoke run of about 10 minutes on 2 cores, not a measurement."),
    layouts: str = typer.Option(None, "--layouts", help="Comma-separated layouts to measure every layer in: nhwc (default), nchw or nchw,nhwc (ONNX Runtime runs NCHW only)."),
    algorithms: str = typer.Option(None, "--algorithms", "-a", help="Comma-separated algorithms (default: every built-in that runs the dtype, plugins left out; --quick: fewer, see there)."),
    dtype: str = typer.Option(None, "--dtype", help="Comma-separated dtypes: float32 (default), float64, u8s8."),
    threads: str = typer.Option(None, "--threads", "-t", help="Comma-separated thread counts (default 1)."),
    out: str = typer.Option(None, "--out", "-o", help="Results folder to create (default: results/zoo/<timestamp>/, results/zoo-quick/... with --quick)."),
    resume: str = typer.Option(None, "--resume", help="Finish an interrupted zoo run in this folder (its own config; the zoo's options are its own)."),
    from_results: str = typer.Option(None, "--from", help="Do not run: redo the report, tables and figures of this zoo results folder."),
    paper: str = typer.Option(None, "--paper", help="A `convbench reproduce` folder whose verdicts on the paper's own layers the zoo's are set beside (default: results/paper where it exists)."),
    write_config: str = typer.Option(None, "--write-config", help="Do not run: write the zoo's config to this file (then `convbench run FILE` runs it)."),
) -> None:
    """Measure the nine CNNs the onnx package ships (AlexNet ... ShuffleNet) as one sweep, each shared
    shape once, and report per network the gain of choosing the algorithm per layer.

    Every other option is `convbench run`'s and is passed to it: -l/--layers,
    --cache, --repeat, --shard, --executor (and its options), --plugin,
    --phases/--no-phases, --wait-quiet, --case-timeout, --memory-limit,
    --no-isolation. Needs the onnx package (the peers extra).
    """
    extra = list(ctx.args)  # run's options, checked by run itself
    if from_results:
        given = [flag for flag, v in (("--networks", networks), ("--layouts", layouts), ("--resume", resume),
                                      ("--write-config", write_config), ("--quick", quick or None)) if v]
        if given or extra:
            fail(f"--from only redoes the report of a finished run; drop {', '.join(given + extra)}")
        _report(Path(from_results), paper)
        return
    if resume:
        given = [flag for flag, v in (("--networks", networks), ("--layouts", layouts), ("-a", algorithms),
                                      ("--dtype", dtype), ("-t", threads), ("--out", out),
                                      ("--write-config", write_config)) if v]
        if given:
            fail(f"--resume finishes the run with its own config; drop {', '.join(given)}")
        out_dir, args, quick = Path(resume), ["--resume", resume], quick or _was_quick(resume)
        the_zoo = None
    else:
        the_zoo, text = _build(networks, quick, layouts, algorithms, dtype, threads)
        if write_config:
            _write_config(Path(write_config), text)
            return
        out_dir = _new_folder(out, quick)
        args = [str(_stash(text)), "--out", str(out_dir)]
    from ..zoo import QUICK_MEMORY_LIMIT

    # quick's own settings first: the same options given by the user come later and win
    args += (["--quick", "--no-phases", "--memory-limit", QUICK_MEMORY_LIMIT] if quick else []) + extra
    code = _run(args)
    if the_zoo is not None and out_dir.is_dir():
        from ..zoo import MANIFEST_FILE

        (out_dir / MANIFEST_FILE).write_text(json.dumps(the_zoo.manifest(), indent=1) + "\n")
    if code == 130:
        err_console.print(f"resume the zoo with: convbench zoo --resume {out_dir}", highlight=False, soft_wrap=True)
    if code:
        raise typer.Exit(code)
    _report(out_dir, paper)


def _build(networks: str | None, quick: bool, layouts: str | None, algorithms: str | None, dtype: str | None,
           threads: str | None) -> tuple[Any, str]:
    """The zoo (imported from the onnx package) and its config text; bad options fail with their name."""
    from ..machine.threads import check_thread_count
    from ..spec import LAYOUTS
    from ..zoo import ZooError, build_zoo, default_algorithms, pick_networks

    try:
        dtypes = parse_dtypes(dtype) or ["float32"]
        counts = parse_ints(threads, "--threads")
        for t in counts or []:
            check_thread_count(t)
    except ValueError as exc:
        fail(str(exc))
    chosen = parse_names(layouts)
    if chosen is not None and (not chosen or any(lo not in LAYOUTS for lo in chosen)):
        option_error("--layouts", ValueError(f"takes {', '.join(LAYOUTS)} (comma-separated); got {layouts!r}"))
    try:
        nets = pick_networks(networks)
        with err_console.status("importing the networks from the onnx package ..."):
            the_zoo = build_zoo(nets)
        names = parse_names(algorithms) or default_algorithms(quick, dtypes)
    except ZooError as exc:
        fail(str(exc))
    text = the_zoo.config_text(algorithms=names, layouts=chosen, dtype=dtypes, threads=counts)
    total = sum(layer.count for layer in the_zoo.layers)
    err_console.print(f"zoo: {len(the_zoo.networks)} networks, {total} convolutions, {len(the_zoo.layers)} distinct "
                      f"shapes ({len(the_zoo.shared)} shared by several networks: measured once)",
                      highlight=False, soft_wrap=True)
    return the_zoo, text


def _write_config(path: Path, text: str) -> None:
    if path.exists():
        fail(f"{path} exists; choose another --write-config file")
    try:
        path.write_text(text)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")
    err_console.print(f"wrote {path}\nnext: convbench run {path}   (then convbench zoo --from THE_RESULTS_FOLDER)",
                      highlight=False, soft_wrap=True)


def _new_folder(out: str | None, quick: bool) -> Path:
    from ..results import ResultsError, check_new_dir, default_out_dir
    from ..zoo import CONFIG_NAME

    path = Path(out) if out else default_out_dir(CONFIG_NAME + ("-quick" if quick else ""))
    try:
        check_new_dir(path)
    except ResultsError as exc:
        option_error("--out", exc)
    return path


def _stash(text: str) -> Path:
    """The config where ``run`` (and its printed resume line) finds it: a file named by its content."""
    import os

    # per user: another user's folder of the same name would not be writable
    folder = Path(tempfile.gettempdir()) / f"convbench-zoo-{getattr(os, 'getuid', lambda: 'user')()}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"zoo-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    if not path.is_file():
        path.write_text(text)
    return path


def _was_quick(folder: str) -> bool:
    from ..results import ResultsError, read_env

    try:
        return bool(read_env(folder).get("quick"))
    except ResultsError as exc:
        fail(f"--resume {exc}")


def _run(args: list[str]) -> int:
    """``convbench run ARGS`` in this process, as the command line would run it; its exit status."""
    from typer.main import get_command

    command = get_command(app)
    run_command = getattr(command, "commands", {}).get("run", command)
    try:  # standalone: run's own messages for bad options, Ctrl-C and failures, then SystemExit
        run_command.main(args=args, prog_name="convbench zoo", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


# -- the report at the end -------------------------------------------------------------


def _report(folder: Path, paper: str | None) -> None:
    from ..analysis.zoo_report import write_zoo
    from ..results import ResultsError
    from .analysis import write_page
    from .render import say

    try:
        with console.status("judging the networks and drawing ..."):
            outcome = write_zoo(folder, paper=paper)
    except ResultsError as exc:
        fail(str(exc))
    for warning in outcome.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    a = outcome.analysis
    _gains_table(a.gains)
    _classes_lines(a.classes)
    for r in a.claims:
        say(console, f"claim {r['claim']} vs {r['reference']}: on the zoo {r['zoo']}; on the paper's layers "
                     f"{r['paper']} ({r['agreement']})")
    say(console, f"report: {outcome.report}")
    say(console, f"figures: {folder / 'plots'} (zoo_networks.png, zoo_classes.png)")
    write_page(folder)


def _ratio(r: dict) -> str:
    if not math.isfinite(r["gain"]):
        return "-"
    ci = f" [{r['ci_low']:.2f}, {r['ci_high']:.2f}]" if math.isfinite(r["ci_low"]) else " [no CI]"
    return f"{r['gain']:.2f}x{ci}"


def _gains_table(gains: Any) -> None:
    from ..zoo import title_of
    from .render import Grid, fmt_time, print_table

    table = Grid(title="per network: the best single algorithm against the best per layer (gain = single / "
                       "oracle, 95% CI)")
    for col in ("network", "layout", "dtype", "threads", "cache", "best single", "total", "oracle", "gain",
                "peers' gain", "convbench / peers"):
        table.add_column(col, "left" if col in ("network", "best single") else "right",
                         hoist=col in ("layout", "dtype", "threads", "cache"))
    for (net, *variant), part in gains.groupby(["network", "layout", "dtype", "threads", "cache"], sort=False):
        by = {r["side"]: r for r in part.to_dict("records")}
        own = by["convbench"]
        table.add_row(title_of(net), *map(str, variant), own["single"] or f"- ({own['note']})",
                      fmt_time(own["single_s"]), fmt_time(own["oracle_s"]), _ratio(own),
                      _ratio(by["peers"]), _ratio(by["convbench vs peers"]))
    print_table(table)


def _classes_lines(classes: Any) -> None:
    from .render import say

    if not len(classes):
        say(console, "per class: no pair of the paper ran ok on the same layer")
        return
    say(console, "per layer class (wins: faster on >= 2/3 of the class's layers, slower on none):")
    for (pair, *variant), part in classes.groupby(["pair", "layout", "dtype", "threads", "cache"], sort=False):
        every = part[part["layer_class"] == "all"].iloc[0]
        words = {v: [f"{r['layer_class']} ({r['faster']}/{r['layers']})" for r in part.to_dict("records")
                     if r["layer_class"] != "all" and r["verdict"] == v] for v in ("wins", "loses", "mixed")}
        detail = "; ".join(f"{v} on {', '.join(names)}" for v, names in words.items() if names)
        say(console, f"  {pair} ({', '.join(map(str, variant))}): faster on {every['faster']}/{every['layers']} "
                     f"layers, geometric mean {every['geomean']:.2f}x; {detail}")
