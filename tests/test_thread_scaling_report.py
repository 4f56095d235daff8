"""Issue 31, shown: the thread-scaling figure per layer class against the machine's
sgemm, report.md judging the claims at each thread count, reproduce --threads,
and the machine's sgemm scaling always in env.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from convbench import plots
from convbench.analysis.phase_report import headline_cases, thread_sections
from convbench.analysis.report import evaluate, render_report, verdict_table
from convbench.results import read_results

DATA = Path(__file__).parent / "data" / "synthetic_run"


@pytest.fixture(scope="module")
def run():
    return read_results(DATA)


def _texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


def test_scaling_figure_has_a_row_per_layer_class_and_the_sgemm_line(run):
    assert set(run.summary["threads"]) == {1, 2}
    fig = plots.figure_thread_scaling(run.summary, run.env)
    classes = list(dict.fromkeys(run.summary["layer_class"]))
    titled = [ax.get_title(loc="left") for ax in fig.axes if ax.get_ylabel().startswith("speedup")]
    assert len(titled) == len(classes) and all(any(t.startswith(c) for t in titled) for c in classes)
    text = _texts(fig)
    assert "this machine's sgemm" in text and "perfect scaling" in text
    # the reference line is the calibration's 2-thread / 1-thread rate
    cal = run.env["calibration"]["sgemm_gflops"]
    want = cal["2"] / cal["1"]
    sgemm_lines = [ln for ln in fig.axes[0].get_lines() if ln.get_linestyle() == "-."]
    assert sgemm_lines and sgemm_lines[0].get_ydata()[-1] == pytest.approx(want)


def test_scaling_figure_says_when_there_is_no_calibration(run):
    env = {k: v for k, v in run.env.items() if k != "calibration"}
    text = _texts(plots.figure_thread_scaling(run.summary, env))
    assert "no sgemm calibration" in text and "this machine's sgemm" not in text


def test_headline_verdicts_are_at_the_lowest_thread_count(run):
    cases = headline_cases(run.summary)
    assert set(cases["threads"]) == {1}


def test_report_judges_the_claims_at_each_thread_count(run):
    lines = thread_sections(run.summary, run.samples, evaluate, verdict_table)
    text = "\n".join(lines)
    assert "## Verdicts at each thread count" in text
    assert "### 1 thread\n" in text and "### 2 threads\n" in text
    one = run.summary[run.summary["threads"] == 1]
    assert thread_sections(one, run.samples, evaluate, verdict_table) == []  # one count: nothing to add
    assert "## Verdicts at each thread count" in render_report(run)


def test_reproduce_refuses_threads_with_from(tmp_path):
    from typer.testing import CliRunner

    from convbench.cli import app

    res = CliRunner().invoke(app, ["reproduce", "--from", str(DATA), "--threads", "1,2"])
    assert res.exit_code != 0 and "--threads" in res.output


def test_reproduce_passes_its_thread_counts_to_the_plan(monkeypatch, tmp_path):
    from convbench.analysis import report

    seen = {}

    def fake_run(the_plan, out_dir, **kw):
        seen["threads"] = sorted({g.threads for g in the_plan.groups})
        raise SystemExit  # the plan is what this test is about

    monkeypatch.setattr("convbench.sweep.session.run", fake_run)
    with pytest.raises(SystemExit):
        report.reproduce(tmp_path / "out", quick=True, threads=[1, 2])
    assert seen["threads"] == [1, 2]


def test_calibration_always_has_one_thread_and_numba_s_maximum():
    from convbench.machine.metadata import calibrate
    from convbench.machine.threads import max_threads

    cal = calibrate(threads=[1], n=32, mem_mib=1, repeat=1, runs=1)
    assert set(cal["sgemm_gflops"]) == {"1", str(max_threads())}
