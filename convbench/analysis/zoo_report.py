"""A zoo run's report: ``report.md``, the ``zoo_*.csv`` tables and the zoo figures of a results folder.

:func:`analyse` reads a zoo run and computes everything once
(:mod:`.zoo` per network, :mod:`.zoo_classes` per layer class, and the
paper's claims of :mod:`.report` judged on the zoo's layers beside the same
claims on the paper's own layers, from a ``convbench reproduce`` folder,
``results/paper`` by default); :func:`write_zoo` writes the tables, the
figures and ``report.md``; :func:`html_section` gives the run's HTML page
its zoo section from the tables written. The first table under
``## Verdicts`` is the per-network one, so README can copy it from a
checked-in run's ``report.md`` as it copies a reproduce run's verdicts
(``benchmarks/readme_tables.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .findings import fmt_pct, md_table

#: The tables :func:`write_zoo` writes beside the results.
FILES = {"table": "zoo_networks.csv", "gains": "zoo_gains.csv", "speedups": "zoo_layers.csv",
         "classes": "zoo_classes.csv", "trends": "zoo_trends.csv"}
#: The paper's own layers, judged by ``convbench reproduce`` (checked in with the repository).
PAPER_FOLDER = Path("results") / "paper"
FIGURES = [("zoo_networks", "Each network's time per algorithm, stacked by layer class, the oracle first"),
           ("zoo_classes", "The paper's pairs on every zoo layer: speedup against arithmetic intensity")]


@dataclass
class ZooAnalysis:
    """Everything a zoo report says, computed once from a results folder."""

    path: Path
    env: dict
    summary: Any
    manifest: dict
    table: Any  # analysis.zoo.network_table
    gains: Any  # analysis.zoo.selection_gains
    speedups: Any  # analysis.zoo_classes.pair_speedups
    classes: Any  # analysis.zoo_classes.class_verdicts
    trends: Any  # analysis.zoo_classes.trends
    claims: list[dict] = field(default_factory=list)  # analysis.zoo_classes.claims_against_paper
    paper: str = ""  # the folder the paper's own verdicts come from ("" when none)
    paper_cpu: str = ""


def read_manifest(folder: str | Path) -> dict:
    """``zoo.json`` of a results folder (``{}`` when absent: the rows alone then say what was measured)."""
    import json

    from ..zoo import MANIFEST_FILE

    path = Path(folder) / MANIFEST_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def _paper_findings(paper: str | Path | None) -> tuple[list, str, str]:
    """The paper's claims judged on a reproduce folder: (findings, folder, its CPU); none when absent."""
    from ..results import ANALYSIS_SAMPLE_COLUMNS, ResultsError, read_results
    from .phase_report import warm_only
    from .report import evaluate

    folder = Path(paper) if paper else PAPER_FOLDER
    if not (folder / "summary.csv").is_file() and not (folder / "summary.parquet").is_file():
        if paper:
            raise ResultsError(f"--paper {folder}: not a results folder (no summary.csv); give the folder "
                               "`convbench reproduce` wrote")
        return [], "", ""
    res = read_results(folder, samples=ANALYSIS_SAMPLE_COLUMNS)
    return (evaluate(warm_only(res.summary), res.samples, res.env), str(folder),
            str((res.env.get("cpu") or {}).get("model") or "an unknown CPU"))


def analyse(folder: str | Path, *, paper: str | Path | None | bool = None) -> ZooAnalysis:
    """Read a zoo run and compute its per-network, per-class and per-claim results.

    ``paper``: the ``convbench reproduce`` folder whose verdicts the zoo's are set beside
    (default ``results/paper`` where it exists; ``False``: none).
    """
    from ..results import ANALYSIS_SAMPLE_COLUMNS, ResultsError, read_results
    from .machines import headline_results
    from .phase_report import warm_only
    from .report import evaluate
    from .zoo import is_zoo, network_table, selection_gains
    from .zoo_classes import claims_against_paper, class_verdicts, pair_speedups, trends

    res = headline_results(read_results(folder, samples=ANALYSIS_SAMPLE_COLUMNS))
    if not is_zoo(res.summary):
        raise ResultsError(f"{folder}: not a zoo run (no row's network column holds zoo credits); "
                           "run `convbench zoo` to make one")
    manifest = read_manifest(folder)
    speedups = pair_speedups(res.summary, res.samples)
    out = ZooAnalysis(Path(folder), res.env, res.summary, manifest, network_table(res.summary, manifest),
                      selection_gains(res.summary, manifest, res.env), speedups, class_verdicts(speedups),
                      trends(speedups))
    findings = evaluate(warm_only(res.summary), res.samples, res.env)
    paper_findings, out.paper, out.paper_cpu = _paper_findings(paper) if paper is not False else ([], "", "")
    out.claims = claims_against_paper(findings, paper_findings)
    return out


# -- the markdown -------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return "-" if seconds is None or not math.isfinite(seconds) else f"{seconds * 1e3:.3g} ms"


def _ratio(r: dict) -> str:
    g, lo, hi = r["gain"], r["ci_low"], r["ci_high"]
    if not math.isfinite(g):
        return f"- ({r['note']})" if r.get("note") else "-"
    ci = f" [{lo:.2f}, {hi:.2f}]" if math.isfinite(lo) and math.isfinite(hi) else " [no CI]"
    mark = " (excludes 1)" if math.isfinite(lo) and (lo > 1 or hi < 1) else ""
    return f"{g:.2f}x{ci}{mark}"


def _variant(r: dict, many: bool) -> str:
    if not many:
        return ""
    return f" ({r['layout']}, {r['dtype']}, {r['threads']}t, {r['cache']})"


def networks_lines(a: ZooAnalysis) -> list[str]:
    """The networks, and what choosing per layer gains on each."""
    from ..zoo import title_of
    from .zoo import network_summary

    info = network_summary(a.summary, a.manifest)
    many = len(info.drop_duplicates(["layout", "dtype", "threads", "cache"])) > 1 if len(info) else False
    rows = [[title_of(r["network"]) + _variant(r, many), r["convs"], f"{r['layers']}/{r['expected_layers']}",
             f"{r['gflop']:.3g}", r["shared"]] for r in info.to_dict("records")]
    lines = ["## The networks", "",
             "Every distinct convolution shape of each network is a layer; a shape several networks share is "
             "measured once and counted in each as often as it occurs there. GFLOP: direct-equivalent, one "
             "inference, convolutions only.", "",
             *md_table(["network", "convolutions", "distinct shapes measured", "GFLOP", "shapes shared with "
                        "another network"], rows), ""]
    g = a.gains
    lines += ["## Verdicts: what choosing per layer gains", "",
              "Per network: the oracle selection (the fastest correct algorithm on each layer) against the one "
              "algorithm that is fastest over the whole network, among convbench's own algorithms and among the "
              "production peers; gain = that algorithm's total / the oracle's total (above 1: choosing per layer "
              "is faster). Last column: convbench's oracle against the peers' (above 1: convbench's is faster). "
              "95% intervals draw every candidate's median from its interval and redo the oracle's choice on "
              "every layer in every resample (the winner's curse of picking the fastest of many is in them); "
              "the choice of the best single algorithm is made once. A network where the oracle or every "
              "single algorithm leaves a layer out has no gain: a partial total is never compared.", ""]
    rows = []
    for (net, *variant), part in g.groupby(["network", "layout", "dtype", "threads", "cache"], sort=False):
        by = {r["side"]: r for r in part.to_dict("records")}
        own, peer, versus = by.get("convbench", {}), by.get("peers", {}), by.get("convbench vs peers", {})
        head = dict(zip(["layout", "dtype", "threads", "cache"], variant))
        rows.append([title_of(net) + _variant(head, many),
                     f"{own.get('single') or '-'} {_ms(own.get('single_s', math.nan))}",
                     _ms(own.get("oracle_s", math.nan)), _ratio(own) if own else "-",
                     f"{peer.get('single') or '-'} {_ms(peer.get('single_s', math.nan))}" if peer else "-",
                     _ms(peer.get("oracle_s", math.nan)) if peer else "-", _ratio(peer) if peer else "-",
                     _ratio(versus) if versus else "-"])
    lines += md_table(["network", "best single convbench algorithm", "convbench oracle", "gain [95% CI]",
                       "best single peer", "peers' oracle", "gain [95% CI]", "convbench oracle / peers' oracle"],
                      rows) + [""]
    return lines + totals_lines(a)


def totals_lines(a: ZooAnalysis) -> list[str]:
    """Every choice's total on every network (columns), complete and partial apart."""
    from ..timing import geomean
    from ..zoo import title_of

    t = a.table
    if not len(t):
        return []
    lines = ["## Network totals", "",
             "Sum of count x median per network (ms per inference); xN = total / the best-per-layer total. "
             "A partial total (in parentheses, with the layers it covers) leaves layers out: it is not a "
             "network time and is never ranked. Rows: complete on the most networks first, then by the "
             "geometric mean of xN.", ""]
    for variant, part in t.groupby(["layout", "dtype", "threads", "cache"], sort=False):
        nets = list(dict.fromkeys(part["network"]))
        cells: dict[str, dict[str, str]] = {}
        score: dict[str, tuple] = {}
        for choice, g in part.groupby("choice", sort=False):
            done = g[g["complete"].astype(bool)]
            score[choice] = (choice != "best per layer", -len(done), geomean(done["vs_best"].to_numpy(float)))
            for r in g.to_dict("records"):
                cells.setdefault(choice, {})[r["network"]] = (
                    f"{_ms(r['total_s'])}" + (f" x{r['vs_best']:.2f}" if math.isfinite(r["vs_best"]) else "")
                    if r["complete"] else f"({_ms(r['total_s'])}, {r['layers_ok']}/{r['layers']})")
        order = sorted(cells, key=lambda ch: (*score[ch][:2], _nan_last(score[ch][2])))
        lines += [f"{', '.join(str(v) for v in variant)}:", ""]
        lines += md_table(["choice", *(title_of(n) for n in nets)],
                          [[ch, *(cells[ch].get(n, "-") for n in nets)] for ch in order]) + [""]
    return lines


def _nan_last(value: float) -> float:
    return math.inf if not math.isfinite(value) else value


def classes_lines(a: ZooAnalysis) -> list[str]:
    """Per algorithm of the paper's pairs: a table of classes x references."""
    from .zoo_classes import CLASS_RULE, TREND_COLUMNS

    cv = a.classes
    lines = ["## Per layer class across the zoo", "", f"Rule: {CLASS_RULE}", "",
             "Cell: verdict, layers faster / slower of all, geometric-mean speedup (t(reference) / t(algorithm)).",
             ""]
    if not len(cv):
        return lines + ["_No pair of the paper ran ok on the same layer._", ""]
    cv = cv.assign(algorithm=cv["pair"].str.split(" vs ").str[0], reference=cv["pair"].str.split(" vs ").str[1])
    for (algo, *variant), part in cv.groupby(["algorithm", "layout", "dtype", "threads", "cache"], sort=False):
        refs = list(dict.fromkeys(part["reference"]))
        table: dict[str, dict[str, str]] = {}
        for r in part.to_dict("records"):
            table.setdefault(r["layer_class"], {})[r["reference"]] = (
                f"**{r['verdict']}**: {r['faster']}/{r['layers']} faster, {r['slower']} slower; "
                f"{fmt_pct(r['geomean'])}")
        lines += [f"### {algo} ({', '.join(str(v) for v in variant)})", ""]
        lines += md_table(["class", *(f"against {ref}" for ref in refs)],
                          [[cls, *(cells.get(ref, "-") for ref in refs)] for cls, cells in table.items()]) + [""]
    tr = a.trends
    if len(tr):
        lines += ["### How the speedup moves with the layer", "",
                  "Spearman's rank correlation of each pair's speedup with the layer's "
                  + ", ".join(f"{v} ({k})" for k, v in TREND_COLUMNS.items())
                  + " over its layers: above 0, the algorithm gains on larger values.", ""]
        rows = [[r["pair"], r["layers"], *(_rho(r[f"rho_{k}"]) for k in TREND_COLUMNS)] for r in tr.to_dict("records")]
        lines += md_table(["pair", "layers", *TREND_COLUMNS], rows) + [""]
    return lines


def _rho(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:+.2f}"


def claims_lines(a: ZooAnalysis) -> list[str]:
    """The paper's claims on the zoo, beside the same claims on the paper's own layers."""
    from .report import CLAIMS, REFERENCE_LABEL

    lines = ["## The paper's claims on the zoo's layers", "",
             "The rules of `convbench reproduce` (report.md of a reproduce run states them) applied to every "
             "zoo layer, beside the verdicts on the paper's own layers"
             + (f" from `{a.paper}` (measured on {a.paper_cpu})." if a.paper else
                " (no reproduce folder was found: run `convbench reproduce`, or give --paper DIR)."), ""]
    rows = [[r["claim"], CLAIMS[r["claim"]], REFERENCE_LABEL.get(r["reference"], r["reference"]),
             f"**{r['zoo']}**: {r['zoo_headline']}", f"**{r['paper']}**" if r["paper"] != "-" else "-",
             r["agreement"]] for r in a.claims]
    lines += md_table(["#", "claim", "against", "on the zoo", "on the paper's layers", "agreement"], rows) + [""]
    differ = [r for r in a.claims if r["agreement"] == "differs"]
    agree = [r for r in a.claims if r["agreement"] == "agrees"]
    if a.paper:
        lines += [f"The zoo agrees with the paper's layers on {len(agree)} of {len(agree) + len(differ)} judged "
                  "verdicts" + (": it differs on " + "; ".join(
                      f"claim {r['claim']} against {r['reference']} ({r['paper']} there, {r['zoo']} here)"
                      for r in differ) if differ else "") + ".", ""]
    return lines


def render_markdown(a: ZooAnalysis, plots_dir: str = "plots") -> str:
    """The markdown of a zoo run's ``report.md``."""
    from ..zoo import QUICK_MEMORY_LIMIT
    from .machine_card import machine_lines

    env = a.env
    cpu = (env.get("cpu") or {}).get("model") or "an unknown CPU"
    lines = [f"# The zoo: real networks, measured as networks, on {cpu}", "",
             f"Results folder: `{a.path}`; generated {datetime.now():%Y-%m-%d %H:%M}. Networks: the onnx "
             f"{a.manifest.get('onnx', '?')} package's backend test graphs (weights are placeholders; the shapes "
             "are the real networks').", ""]
    if env.get("quick"):
        lines += ["> **Quick run** (`--quick`): 3 samples per case, one repetition, no phase pass; `convbench zoo "
                  "--quick` also leaves out naive and winograd-f6 and caps a case's memory at "
                  f"{QUICK_MEMORY_LIMIT}, which skips FFT on its largest layers (their rows say so). It checks "
                  "that everything runs; its intervals are wide and its verdicts are not a measurement.", ""]
    counts = a.summary["status"].value_counts().to_dict()
    lines += ["## Machine", "", *machine_lines(env), "",
              f"{len(a.summary)} cases ({', '.join(f'{v} {k}' for k, v in counts.items())}), "
              f"{a.summary['layer'].nunique()} layers.", ""]
    lines += networks_lines(a) + classes_lines(a) + claims_lines(a)
    present = [(n, cap) for n, cap in FIGURES if (a.path / "plots" / f"{n}.png").is_file()]
    if present:
        lines += ["## Figures", "", *(f"![{cap}]({plots_dir}/{n}.png)" for n, cap in present), ""]
    lines += ["## How this was measured", "",
              "One sweep of every distinct shape (`convbench zoo`, which runs `convbench run` on the zoo's "
              "config: config.yaml beside this report). Totals are sums of count x median over a network's "
              "layers, count being how often that network has the shape. Per-layer speedups are ratios of medians "
              "of algorithms measured interleaved, with 95% percentile-bootstrap intervals. Regenerate this "
              "report with `convbench zoo --from DIR`.", ""]
    return "\n".join(lines)


# -- writing ------------------------------------------------------------------------------


@dataclass
class ZooOutcome:
    """What :func:`write_zoo` wrote."""

    report: Path
    analysis: ZooAnalysis
    plots: list[Path]
    warnings: list[str] = field(default_factory=list)


def write_zoo(folder: str | Path, *, paper: str | Path | None | bool = None, draw: bool = True,
              formats: Any = None) -> ZooOutcome:
    """Write the ``zoo_*.csv`` tables, the figures (the run's usual ones and the zoo's) and ``report.md``."""
    from ..plots import plot_all
    from ..plots.zoo import plot_zoo

    a = analyse(folder, paper=paper)
    for name, path in FILES.items():
        getattr(a, name).to_csv(a.path / path, index=False)
    plots: list[Path] = []
    warnings: list[str] = []
    if draw:
        try:
            plots = plot_all(a.path, formats=formats)
        except Exception as exc:  # noqa: BLE001 - the run's usual figures; the zoo's own still get drawn
            warnings.append(f"the run's usual figures were not drawn: {type(exc).__name__}: {exc}")
        plots += plot_zoo(a.summary, a.speedups, a.env, a.path / "plots", manifest=a.manifest, formats=formats)
    path = a.path / "report.md"
    path.write_text(render_markdown(a))
    return ZooOutcome(path, a, plots, warnings)


#: The sections of ``report.md`` the run's HTML page repeats.
HTML_SECTIONS = ("Verdicts: what choosing per layer gains", "Network totals", "Per layer class across the zoo",
                 "The paper's claims on the zoo's layers")


def html_section(folder: str | Path) -> str:
    """The zoo section of a run's HTML page: :data:`HTML_SECTIONS` of ``report.md``, its prose as
    paragraphs and its tables as tables; ``""`` for a folder :func:`write_zoo` has not written."""
    from ..html.content import markdown_table
    from ..html.page import esc

    path = Path(folder) / "report.md"
    if not (Path(folder) / FILES["gains"]).is_file() or not path.is_file():
        return ""
    parts = ["<h2 id=\"zoo\">The zoo</h2>"]
    for block in path.read_text().split("\n## ")[1:]:
        head, _, body = block.partition("\n")
        if head not in HTML_SECTIONS:
            continue
        parts.append(f"<h3>{esc(head)}</h3>")
        table: list[str] = []
        for line in [*body.splitlines(), ""]:
            if line.startswith("|"):
                table.append(line)
                continue
            if table:
                parts.append(markdown_table(table))
                table = []
            if line.startswith("### "):
                parts.append(f"<h4>{esc(line[4:])}</h4>")
            elif line.strip():
                parts.append(f"<p>{esc(line.replace('**', ''))}</p>")
    return "".join(parts)
