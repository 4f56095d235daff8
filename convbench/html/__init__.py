"""One self-contained HTML page per run: ``convbench report DIR`` writes ``DIR/report.html``.

The page holds what ran and on what (config, command, commit, the machine
card with the noise probe's verdict), the warnings (cases that did not end
ok, unstable ones, phases that do not add up), the verdicts (the paper's
claims for the paper's config, the best algorithm per layer, network totals,
convbench against the best production peer), every figure of the run, every
case in a table that filters and sorts, and links to the CSVs beside it. It
is one file: style, script and figures are inside (:mod:`.page`), so it
opens offline and travels as an attachment. ``convbench report A B`` writes
a comparison page of two runs instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .content import best_per_layer, case_rows, header, machine, markdown_table, network, warnings
from .page import cases_block, esc, figure, page, table

#: Figures in the order the page shows them, with their captions.
FIGURES = [("headline", "Indirect against im2col + GEMM per layer class"),
           ("speedup", "Speedup over the baseline per layer"), ("gflops", "GFLOP/s per layer (GOP/s on 8-bit panels)"),
           ("phases", "Where the time goes: each call's phases, warm and cold"),
           ("winner_map", "The fastest algorithm per layer"), ("network", "Network totals"),
           ("memory", "Extra memory per layer"), ("accuracy", "Accuracy against the float64 reference (8-bit: in LSB against the exact one)"),
           ("roofline", "Roofline"), ("thread_scaling", "Thread scaling"),
           ("zoo_networks", "The zoo: each network's totals, the oracle first"),
           ("zoo_classes", "The zoo: the paper's pairs against arithmetic intensity")]
#: Files beside the page that it links to, where they exist.
FILES = ["summary.csv", "samples.csv", "summary.parquet", "samples.parquet", "repetitions.csv", "phases.csv",
         "selection.csv", "env.json", "config.yaml", "report.md"]


#: Above this many cases the figures are drawn as PNG only: a big run's SVG (a path per point)
#: is larger than its PNG, so the page would not use it, and drawing it costs seconds.
SVG_MAX_CASES = 2000


def _draw_figures(folder: Path, res: Any) -> Any:
    """Start drawing every figure where ``plots/`` lacks them or is older than the summary;
    returns a handle for :func:`_figures`. Where fork exists the drawing runs in a child
    process while the page's verdicts are computed (each half takes ~10 s on a 25,000-case
    run, and the verdicts are one thread: together they keep both cores busy)."""
    import multiprocessing as mp

    from ..plots import plot_all

    plots = folder / "plots"
    summary_time = (folder / "summary.csv").stat().st_mtime
    pngs = [plots / f"{name}.png" for name, _ in FIGURES]
    if any(p.is_file() and p.stat().st_mtime >= summary_time for p in pngs):
        return None
    kwargs = {"formats": ["png", "svg"] if len(res.summary) <= SVG_MAX_CASES else ["png"], "results": res}
    if "fork" not in mp.get_all_start_methods():
        plot_all(folder, **kwargs)
        return None
    child = mp.get_context("fork").Process(target=plot_all, args=(folder,), kwargs=kwargs, daemon=False)
    child.start()
    return child, kwargs


def _figures(folder: Path, drawing: Any) -> str:
    """The figures section, once the drawing :func:`_draw_figures` started has ended."""
    from ..plots import plot_all

    if drawing is not None:
        child, kwargs = drawing
        child.join()
        if child.exitcode != 0:  # draw again here, so the error (if any) is raised where it can be read
            plot_all(folder, **kwargs)
    plots = folder / "plots"
    out = [figure(plots / f"{name}.png", plots / f"{name}.svg", caption)
           for name, caption in FIGURES if (plots / f"{name}.png").is_file()]
    return "<h2 id=\"figures\">Figures</h2>" + ("".join(out) or "<p class=\"dim\">No figure.</p>")


def _verdicts(res: Any) -> str:
    from ..analysis.peers import network_versus_peers, versus_peers
    from ..analysis.phase_report import warm_only
    from ..analysis.report import evaluate, verdict_table
    from ..analysis.select import network_comparison, select_best
    from ..analysis.zoo_report import html_section as zoo_html

    summary = res.summary
    parts = ["<h2 id=\"verdicts\">Verdicts</h2>"]
    if str(res.env.get("config_name") or "").startswith("paper"):  # paper, and reproduce --dtype u8s8's paper-u8s8
        parts += ["<h3>The Indirect Convolution paper's claims (warm caches)</h3>",
                  markdown_table(verdict_table(evaluate(warm_only(summary), res.samples, res.env)))]
    selection = select_best(summary)
    parts += ["<h3>The fastest correct algorithm per layer</h3>",
              "<p>\"(tie)\": the runner-up's interval overlaps the winner's; margin = runner-up / winner.</p>",
              best_per_layer(selection), "<h3>Network totals (sum of count x median)</h3>",
              network(network_comparison(summary, selection))]
    layers = versus_peers(summary, res.samples, res.env)
    if len(layers):
        net = network_versus_peers(layers, summary, env=res.env)
        rows = [[*(r[k] for k in ("layout", "dtype", "threads", "cache")), f"{r['ratio']:.2f}",
                 f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]", f"{r['layers_compared']}/{r['layers']}"]
                for r in net.to_dict("records")]
        parts += ["<h3>convbench's best against the best production peer</h3>",
                  "<p>Peer time / convbench time over the network (above 1, convbench is faster); the 95% "
                  "interval redoes each side's choice of its fastest in every resample.</p>",
                  table(["layout", "dtype", "threads", "cache", "ratio", "95% CI", "layers"], rows)]
    parts.append(zoo_html(res.path))  # a zoo run's per-network and per-class verdicts ("" otherwise)
    return "".join(parts)


def write_html(results_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the page of a results folder (default ``DIR/report.html``); returns its path."""
    from ..analysis.machines import load
    from ..results import ANALYSIS_SAMPLE_COLUMNS

    folder = Path(results_dir)
    res = load([folder], samples=ANALYSIS_SAMPLE_COLUMNS)  # read once: the figures take it too
    env = res.env
    title = f"convbench: {env.get('config_name') or folder.name}"
    links = " ".join(f"<a href=\"{f}\">{f}</a>" for f in FILES if (folder / f).is_file())
    drawing = _draw_figures(folder, res)
    try:
        verdicts = _verdicts(res)
    except BaseException:
        if drawing is not None:
            drawing[0].kill()
        raise
    cols, rows = case_rows(res.summary)
    body = "".join([
        header(env, title),
        "<nav><a href=\"#machine\">machine</a><a href=\"#warnings\">warnings</a><a href=\"#verdicts\">verdicts"
        "</a><a href=\"#figures\">figures</a><a href=\"#cases\">every case</a><a href=\"#files\">files</a></nav>",
        machine(env), warnings(res.summary, env), verdicts, _figures(folder, drawing),
        f"<h2 id=\"cases\">Every case ({len(rows)})</h2>", cases_block(cols, rows),
        f"<h2 id=\"files\">Files</h2><p>{links}</p>",
    ])
    path = Path(out) if out is not None else folder / "report.html"
    path.write_text(page(title, body))
    return path


def write_comparison_html(a: str | Path, b: str | Path, out: str | Path) -> Path:
    """A page comparing two runs: ``convbench compare``'s verdict on every case, changes first."""
    from ..analysis.machines import compare_folders

    comparison = compare_folders([Path(a), Path(b)])
    t = comparison.table
    order = {"slower": 0, "broken": 1, "faster": 2, "fixed": 3}
    t = t.assign(_o=t["verdict"].map(order).fillna(9)).sort_values(["_o", "layer"])
    rows = [[r["layer"], r["algorithm"], r["layout"], r["threads"], r.get("cache", "warm"), r["verdict"],
             "-" if r["ratio"] != r["ratio"] else f"{r['ratio']:.3f}",
             "-" if r["ci_low"] != r["ci_low"] else f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"]
            for r in t.to_dict("records")]
    counts = t["verdict"].value_counts().to_dict()
    title = f"convbench: {Path(a).name} against {Path(b).name}"
    body = (f"<h1>{esc(title)}</h1><p class=\"sub\">A = {esc(a)}; B = {esc(b)}. Ratio = B / A of the medians "
            f"(in reference-kernel units where both runs have them), 95% CI; a change is called only when its "
            f"interval lies beyond +-10% and beyond both runs' spread.</p><p>"
            + esc(", ".join(f"{n} {v}" for v, n in counts.items())) + "</p>"
            + table(["layer", "algorithm", "layout", "threads", "cache", "verdict", "B / A", "95% CI"], rows))
    path = Path(out)
    path.write_text(page(title, body))
    return path
