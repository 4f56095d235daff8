"""``convbench plot``, ``compare``, ``convert``, ``select`` and ``reproduce``: figures and judgements from results folders."""

from __future__ import annotations

import typer

from .app import FormatOption, app, console, err_console, fail, option_error, output_format, run_folder
from .options import plan_overrides


def write_page(folder: object) -> None:
    """The run's HTML page, written at the end of ``run`` and ``reproduce``; a failure there
    is a warning, never the loss of the run (the rows are on disk already)."""
    from ..html import write_html
    from .render import say

    try:
        say(console, f"page: {write_html(folder)}")  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - the measurements are written; say what failed and go on
        err_console.print(f"warning: the HTML page was not written: {type(exc).__name__}: {exc}",
                          highlight=False, soft_wrap=True)


def _read(folder: str, samples: bool | list[str] = True):  # type: ignore[no-untyped-def]
    from ..results import ResultsError, read_results

    try:
        return read_results(folder, samples=samples)
    except ResultsError as exc:
        fail(str(exc))


@app.command()
def plot(
    results_dirs: list[str] = typer.Argument(..., help="A results folder written by `convbench run` (or results/<config>: its newest run); or results of several machines (a merged folder, or a folder per machine, with --out): a machine panel, and the figures per machine."),
    out: str = typer.Option(None, "--out", "-o", help="Folder for the figures (default: RESULTS_DIR/plots/)."),
    only: str = typer.Option(None, "--only", help="Comma-separated figures: speedup, gflops, memory, accuracy, roofline, winner_map, thread_scaling, network, headline, machines."),
    formats: str = typer.Option("png", "--format", help="Comma-separated file formats: png (default), svg, pdf; e.g. png,svg."),
) -> None:
    """Draw the figures of a results folder (PNG; SVG or PDF on request) from its tables."""
    from ..plots import plot_all
    from ..results import ResultsError
    from .options import parse_names
    from .render import say

    folders = [run_folder(d) for d in results_dirs]
    fmts = [f.lower() for f in parse_names(formats) or []]
    try:
        with console.status("drawing ..."):
            paths = plot_all(folders if len(folders) > 1 else folders[0], out, only=parse_names(only), formats=fmts)
    except (ResultsError, ValueError) as exc:
        fail(str(exc))
    for p in paths:
        say(console, str(p))
    say(console, f"{len(paths)} files")


@app.command()
def compare(
    folders: list[str] = typer.Argument(..., help="A B: the reference run and the run compared with it (or results/<config>: its newest run). Or results of several machines (one merged folder, or a folder per machine): each machine against the first."),
    threshold: float = typer.Option(0.10, "--threshold", help="Smallest relative change that counts (0.10 = 10%): a change counts when its whole 95% CI lies beyond it and it exceeds both runs' spread between repetitions."),
    raw: bool = typer.Option(False, "--raw", help="Compare plain times instead of times in units of the reference kernel timed beside each sample (which divide out a machine running at another speed). Machines against each other always compare plain times."),
    fail_on_regression: bool = typer.Option(False, "--fail-on-regression", help="Exit with status 1 if any case is slower or broke (run against run only: another machine is not a regression)."),
    show_all: bool = typer.Option(False, "--all", help="List every case, not only the changed ones."),
    csv_out: str = typer.Option(None, "--csv", help="Also write the per-case table to this CSV file."),
    fmt: str = FormatOption,
) -> None:
    """Per matching case: B/A of the medians with a 95% CI, and a verdict that tells drift from change.

    Two runs of the same machine(s) compare run against run (per machine).
    Results of several machines compare each machine with the first, on the
    cases both measured, and list the layers whose fastest algorithm changes.
    """
    from ..analysis.compare import CompareError
    from ..analysis.machines import compare_folders
    from ..results import ResultsError
    from .render import MAX_TABLE_ROWS, compare_table, more_rows, print_table, say, winners_table

    fmt = output_format(fmt)
    folders = [run_folder(f) for f in folders]
    try:
        result = compare_folders(folders, threshold=threshold, raw=raw)
    except (CompareError, ResultsError) as exc:
        fail(str(exc))
    except ValueError as exc:  # "threshold must be >= 0, ...": the parameter is the option's name
        fail(f"--{exc}")
    for note in result.notes:
        say(err_console, f"note: {note}")
    df = result.table
    if csv_out:
        df.to_csv(csv_out, index=False)
    shown = df if show_all else df[df["verdict"].isin(["slower", "faster", "broken", "fixed"])]
    if fmt != "table":  # the per-case table with its raw numbers
        print_table(compare_table(shown, ""), fmt, shown.to_dict("records"))
    else:
        what = "time in reference-kernel units" if result.normalised else "time"
        for machine, part in (shown.groupby("machine", sort=False) if "machine" in shown.columns else [(None, shown)]):
            if result.mode == "runs":
                a, b = folders
                title = (f"B / A {what}: {b} against {a}" + (f" on {machine}" if machine else "")
                         + f" (a change counts when its CI is beyond +-{threshold:.0%} and above both runs' "
                         "repetition spread)")
            else:
                title = f"{machine} / {result.reference} {what} (a change counts when its CI is beyond +-{threshold:.0%})"
            if len(part):
                print_table(compare_table(part if show_all else part.head(MAX_TABLE_ROWS), title))
                more = None if show_all else more_rows(len(part), "see them all with --all, or every case with --csv FILE")
                if more:
                    say(console, more)
    counts = df["verdict"].value_counts().to_dict()
    # with csv/json, stdout holds only the data; the tally goes to stderr
    say(console if fmt == "table" else err_console, f"{len(df)} cases: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    if fmt == "table" and result.winners is not None and len(result.winners):
        print_table(winners_table(result.winners))
    if fail_on_regression and len(result.regressions):
        err_console.print(f"[red]{len(result.regressions)} regression(s)[/]", highlight=False)
        raise typer.Exit(1)


@app.command()
def convert(
    results_dir: str = typer.Argument(..., help="A results folder written by `convbench run`."),
    to: str = typer.Option("parquet", "--to", help="parquet: write summary.parquet and samples.parquet beside the CSVs (needs the `parquet` extra); csv: write the CSVs back from them."),
) -> None:
    """Write a results folder's tables as Parquet (read by every command, far faster for big runs), or back to CSV."""
    from ..results import ResultsError
    from ..results.convert import convert as convert_tables

    try:
        with console.status(f"converting to {to} ..."):
            paths = convert_tables(results_dir, to.strip().lower())
    except ResultsError as exc:
        fail(str(exc))
    for p in paths:
        console.print(f"wrote {p} ({p.stat().st_size / 2**20:.1f} MiB)", highlight=False, soft_wrap=True)


@app.command("select")
def select_cmd(
    results_dirs: list[str] = typer.Argument(..., help="A results folder written by `convbench run` (or results/<config>: its newest run); or results of several machines (a merged folder, or a folder per machine): the best per layer on each."),
    out: str = typer.Option(None, "--out", "-o", help="Folder for selection.csv (default: the results folder; needed with several folders)."),
    fmt: str = FormatOption,
) -> None:
    """The best algorithm per layer (fastest ok case within tolerance) -> RESULTS_DIR/selection.csv."""
    from ..analysis.machines import write_selections
    from ..results import ResultsError
    from .render import more_rows, print_table, say, selection_tables

    fmt = output_format(fmt)
    folders = [run_folder(d) for d in results_dirs]
    try:
        path, selection, network = write_selections(folders, out)
    except ResultsError as exc:
        fail(str(exc))
    if fmt != "table":  # the selection itself, raw numbers; the network table is in selection_network.csv
        print_table(selection_tables(selection, network)[0], fmt, selection.to_dict("records"))
        say(err_console, f"wrote {path}")
        return
    if "machine" not in selection.columns:
        parts = [(None, selection, network)]
    else:  # one pair of tables per machine
        parts = [(m, sel, network[network["machine"] == m]) for m, sel in selection.groupby("machine", sort=False)]
    for machine, sel, net in parts:
        if machine:
            console.print(f"[bold]{machine}[/]", highlight=False)
        best, totals = selection_tables(sel, net)
        print_table(best)
        more = more_rows(len(sel), f"every layer is in {path}")
        if more:
            say(console, more)
        print_table(totals)
    say(console, f"wrote {path}")
    if len(folders) == 1:
        _print_versus_peers(folders[0])


def _print_versus_peers(results_dir: str) -> None:
    """select's third table: the best convbench algorithm against the best peer (when peers ran)."""
    from ..analysis.peers import write_versus_peers
    from .render import print_table, say, versus_peers_table

    from ..analysis.peers import peer_names
    from ..results import ANALYSIS_SAMPLE_COLUMNS

    summary_only = _read(results_dir, samples=False)
    if not peer_names(summary_only.summary["algorithm"].unique(), summary_only.env):
        return  # no peer ran: nothing to compare, and no need to read the samples
    written = write_versus_peers(_read(results_dir, samples=ANALYSIS_SAMPLE_COLUMNS))
    if written is None:
        return
    path, layers, network = written
    print_table(versus_peers_table(layers, network))
    say(console, f"wrote {path}")


@app.command()
def reproduce(
    out: str = typer.Option(None, "--out", "-o", help="Results folder to create (default: results/paper/<timestamp>/)."),
    quick: bool = typer.Option(False, "--quick", help="A few layers, the three algorithms of the claims, few samples: checks it all runs (well under 2 minutes)."),
    from_results: str = typer.Option(None, "--from", help="Do not run: redraw the figures and rewrite report.md of this existing results folder."),
    cache: str = typer.Option(None, "--cache", help="Cache states: warm (default), cold or warm,cold; with both, report.md judges the claims warm and cold."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 (default) or u8s8: every layer 8-bit (u8 activations, s8 weights), plus a channel grid judging where ONNX Runtime's int8 indirect convolution starts to pay (claim 4)."),
    threads: str = typer.Option(None, "--threads", "-t", help="Thread counts, e.g. 1,2 (default: the config's); report.md judges the claims at each and draws the thread-scaling figure."),
) -> None:
    """Run configs/paper.yaml, draw its figures and write report.md judging the paper's claims."""
    from ..analysis.report import reproduce as run_reproduce, write_report
    from ..config import ConfigError
    from ..results import ResultsError, check_new_dir
    from .render import say

    if dtype not in ("float32", "u8s8"):
        option_error("--dtype", ValueError(f"must be float32 or u8s8, got {dtype!r}"))
    if from_results and dtype != "float32":
        option_error("--dtype", ValueError("does not go with --from, which judges the folder's own rows; drop it"))
    if from_results and threads:
        option_error("--threads", ValueError("does not go with --from, which judges the folder's own thread counts; drop it"))
    try:
        if from_results:
            _read(from_results, samples=False)  # a clear error for a bad folder, before drawing
            with console.status("drawing and judging ..."):
                outcome = write_report(from_results)
        else:
            try:
                check_new_dir(out)
            except ResultsError as exc:
                option_error("--out", exc)
            what = "configs/paper.yaml" + (" in u8s8" if dtype == "u8s8" else "") + (" (quick)" if quick else "")
            with console.status(f"running {what} ..."):
                over = plan_overrides(None, threads, None, cache)
                outcome = run_reproduce(out, quick=quick, cache=over["cache"], dtype=dtype, threads=over["threads"])
    except (ConfigError, ResultsError, ValueError) as exc:
        fail(str(exc))
    for f in outcome.findings:
        color = {"holds": "green", "does not hold": "red", "mixed": "yellow"}.get(f.verdict, "dim")
        say(console, f"claim {f.claim} vs {f.reference}: [{color}]{f.verdict}[/] - {f.headline}")
    say(console, f"report: {outcome.report}")
    say(console, f"figures: {outcome.report.parent / 'plots'}")
    write_page(outcome.out_dir)


@app.command("report")
def report_html(
    folders: list[str] = typer.Argument(..., help="A results folder (or results/<config>: its newest run); two folders A B: a page comparing them."),
    out: str = typer.Option(None, "--out", "-o", help="The page to write (default: DIR/report.html; for two folders, B/compare.html)."),
) -> None:
    """One self-contained HTML page of a run (verdicts, figures, machine, every case), or of two runs compared."""
    from ..html import write_comparison_html, write_html
    from ..analysis.compare import CompareError
    from ..results import ResultsError
    from .render import say

    dirs = [run_folder(d) for d in folders]
    if len(dirs) > 2:
        fail(f"give one results folder, or two to compare; got {len(dirs)}")
    try:
        with console.status("writing the page ..."):
            if len(dirs) == 1:
                path = write_html(dirs[0], out)
            else:
                path = write_comparison_html(dirs[0], dirs[1], out or f"{dirs[1]}/compare.html")
    except (ResultsError, CompareError, ValueError) as exc:
        fail(str(exc))
    say(console, f"page: {path}")
