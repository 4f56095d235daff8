"""``convbench plot``, ``compare``, ``select`` and ``reproduce``: figures and judgements from results folders."""

from __future__ import annotations

import typer

from .app import FormatOption, app, console, err_console, fail, option_error, output_format, run_folder


def _read(folder: str, samples: bool | list[str] = True):  # type: ignore[no-untyped-def]
    from ..results import ResultsError, read_results

    try:
        return read_results(folder, samples=samples)
    except ResultsError as exc:
        fail(str(exc))


@app.command()
def plot(
    results_dir: str = typer.Argument(..., help="A results folder written by `convbench run` (or results/<config>: its newest run)."),
    out: str = typer.Option(None, "--out", "-o", help="Folder for the figures (default: RESULTS_DIR/plots/)."),
    only: str = typer.Option(None, "--only", help="Comma-separated figures: speedup, gflops, memory, accuracy, roofline, winner_map, thread_scaling, network, headline."),
    formats: str = typer.Option("png", "--format", help="Comma-separated file formats: png (default), svg, pdf; e.g. png,svg."),
) -> None:
    """Draw the figures of a results folder (PNG; SVG or PDF on request) from its tables."""
    from ..plots import plot_all
    from ..results import ResultsError
    from .options import parse_names
    from .render import say

    results_dir = run_folder(results_dir)
    fmts = [f.lower() for f in parse_names(formats) or []]
    try:
        with console.status("drawing ..."):
            paths = plot_all(results_dir, out, only=parse_names(only), formats=fmts)
    except (ResultsError, ValueError) as exc:
        fail(str(exc))
    for p in paths:
        say(console, str(p))
    say(console, f"{len(paths)} files")


@app.command()
def compare(
    a: str = typer.Argument(..., help="The reference run (results folder)."),
    b: str = typer.Argument(..., help="The run compared with it (results folder)."),
    threshold: float = typer.Option(0.10, "--threshold", help="Smallest relative change that counts (0.10 = 10%): a change counts when its whole 95% CI lies beyond it and it exceeds both runs' spread between repetitions."),
    raw: bool = typer.Option(False, "--raw", help="Compare plain times instead of times in units of the reference kernel timed beside each sample (which divide out a machine running at another speed)."),
    fail_on_regression: bool = typer.Option(False, "--fail-on-regression", help="Exit with status 1 if any case is slower or broke."),
    show_all: bool = typer.Option(False, "--all", help="List every case, not only the changed ones."),
    csv_out: str = typer.Option(None, "--csv", help="Also write the per-case table to this CSV file."),
    fmt: str = FormatOption,
) -> None:
    """Per matching case: B/A of the medians with a 95% CI, and a verdict that tells drift from change."""
    from ..analysis.compare import CompareError, compare_runs
    from .render import MAX_TABLE_ROWS, compare_table, more_rows, print_table, say

    fmt = output_format(fmt)
    a, b = run_folder(a), run_folder(b)
    ra, rb = _read(a, samples=False), _read(b, samples=False)  # the verdicts use the summaries only
    try:
        result = compare_runs(ra, rb, threshold=threshold, raw=raw, label_a=a, label_b=b)
    except CompareError as exc:
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
    elif len(shown):
        what = "time in reference-kernel units" if result.normalised else "time"
        print_table(compare_table(shown if show_all else shown.head(MAX_TABLE_ROWS),
                                  f"B / A {what}: {b} against {a} (a change counts when its CI is beyond "
                                  f"+-{threshold:.0%} and above both runs' repetition spread)"))
        more = None if show_all else more_rows(len(shown), "see them all with --all, or every case with --csv FILE")
        if more:
            console.print(more, highlight=False)
    counts = df["verdict"].value_counts().to_dict()
    # with csv/json, stdout holds only the data; the tally goes to stderr
    say(console if fmt == "table" else err_console, f"{len(df)} cases: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
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
        console.print(f"wrote {p} ({p.stat().st_size / 2**20:.1f} MiB)", highlight=False)


@app.command("select")
def select_cmd(
    results_dir: str = typer.Argument(..., help="A results folder written by `convbench run` (or results/<config>: its newest run)."),
    fmt: str = FormatOption,
) -> None:
    """The best algorithm per layer (fastest ok case within tolerance) -> RESULTS_DIR/selection.csv."""
    from ..analysis.select import write_selection
    from ..results import ResultsError
    from .render import more_rows, print_table, say, selection_tables

    fmt = output_format(fmt)
    results_dir = run_folder(results_dir)
    try:
        path, selection, network = write_selection(results_dir)
    except ResultsError as exc:
        fail(str(exc))
    best, net = selection_tables(selection, network)
    if fmt != "table":  # the selection itself, raw numbers; the network table is in selection_network.csv
        print_table(best, fmt, selection.to_dict("records"))
        say(err_console, f"wrote {path}")
        return
    print_table(best)
    more = more_rows(len(selection), f"every layer is in {path}")
    if more:
        say(console, more)
    print_table(net)
    say(console, f"wrote {path}")
    _print_versus_peers(results_dir)


def _print_versus_peers(results_dir: str) -> None:
    """select's third table: the best convbench algorithm against the best peer (when peers ran)."""
    from ..analysis.peers import write_versus_peers
    from .render import print_table, say, versus_peers_table

    written = write_versus_peers(_read(results_dir))
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
) -> None:
    """Run configs/paper.yaml, draw its figures and write report.md judging the paper's claims."""
    from ..analysis.report import reproduce as run_reproduce, write_report
    from ..config import ConfigError
    from ..results import ResultsError, check_new_dir
    from .render import say

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
            with console.status("running configs/paper.yaml" + (" (quick)" if quick else "") + " ..."):
                outcome = run_reproduce(out, quick=quick)
    except (ConfigError, ResultsError, ValueError) as exc:
        fail(str(exc))
    for f in outcome.findings:
        color = {"holds": "green", "does not hold": "red", "mixed": "yellow"}.get(f.verdict, "dim")
        say(console, f"claim {f.claim} vs {f.reference}: [{color}]{f.verdict}[/] - {f.headline}")
    say(console, f"report: {outcome.report}")
    say(console, f"figures: {outcome.report.parent / 'plots'}")
