"""What the command line prints when it is piped, redirected or read by programs.

A newcomer's `convbench list | grep`, `convbench run ... | tee log` and CI
logs see plain, unwrapped lines; `--format csv|json` gives the same rows to
programs; names are whole in every mode.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from convbench.cli import app
from convbench.cli.progress import LineProgress
from convbench.cli.render import Grid, plain_text, show
from convbench.registry import list_algorithms

cli = CliRunner()
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _invoke(*args: str, columns: int = 80):
    return cli.invoke(app, list(args), env={"COLUMNS": str(columns)})


def test_list_redirected_to_a_file_keeps_every_name_on_one_line(tmp_path):
    # A real process with stdout to a file at an 80-column COLUMNS: what `| cat` and `> file` see.
    out = tmp_path / "list.txt"
    with open(out, "w") as f:
        proc = subprocess.run([sys.executable, "-m", "convbench.cli", "list"], stdout=f, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "COLUMNS": "80"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    first_words = [line.split()[0] for line in lines if line.strip()]
    for name in ("gemm-direct", "im2col-numba", "winograd", "indirect"):
        assert name in first_words, f"{name!r} is not whole at the start of a line:\n" + "\n".join(lines)
    row = next(line for line in lines if line.startswith("winograd "))
    assert "3x3 kernel, stride 1, dilation 1" in row  # the whole row on one line
    assert not any(c in out.read_text() for c in "│┃━"), "box drawing in piped output"


def test_list_csv_and_json_hold_every_algorithm():
    result = _invoke("list", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["name"] for r in rows] == list_algorithms()
    assert rows[0].keys() >= {"name", "description", "natural layout", "constraints", "float32 tol", "source"}
    result = _invoke("list", "-f", "json")
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.stdout)] == list_algorithms()


def test_an_unknown_format_is_a_clear_error():
    result = _invoke("list", "--format", "xml")
    assert result.exit_code == 2
    assert "--format must be one of table, csv, json" in result.output and "Traceback" not in result.output


def test_layers_as_csv_has_raw_numbers_and_whole_names():
    result = _invoke("layers", str(CONFIGS / "smoke.yaml"), "-a", "im2col,indirect", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["layer"] for r in rows} == {"conv3x3", "conv3x3_s2", "dw3x3", "pw1x1", "conv5x5"}
    assert all(int(r["flops"]) > 0 for r in rows)
    assert "workspace_bytes:indirect" in rows[0]


def test_constant_columns_move_to_a_header_line_and_long_names_stay_whole():
    grid = Grid(title="t")
    grid.add_column("layer")
    grid.add_column("dtype", hoist=True)
    grid.add_column("threads", "right", hoist=True)
    grid.add_column("layout", hoist=True)
    name = "a-very-long-layer-name/" + "x" * 90
    grid.add_row(name, "float32", "1", "nchw")
    grid.add_row("short", "float32", "1", "nhwc")
    text = plain_text(*grid.hoisted())
    assert "dtype: float32, threads: 1" in text.splitlines()[1]
    assert "layout" in text.splitlines()[2]  # it varies: stays a column
    assert any(line.startswith(name) for line in text.splitlines())
    # on a narrow terminal too: rich may wrap prose, never a name
    buf = io.StringIO()
    show(grid, Console(file=buf, force_terminal=True, width=60, color_system=None))
    assert name in buf.getvalue()
    assert "dtype: float32, threads: 1" in buf.getvalue()


def test_line_progress_prints_every_few_seconds_with_count_case_and_eta():
    now = [0.0]
    lines: list[str] = []
    p = LineProgress(10, every=5.0, write=lines.append, clock=lambda: now[0])
    for i in range(10):
        now[0] += 2.0
        p.update(f"layer{i}: im2col", advance=1)
    # the first case, then at most one line per 5 s, and always the last
    assert lines[0].startswith("[1/10]") and "layer0: im2col" in lines[0]
    assert lines[-1].startswith("[10/10] 100%") and "ETA 0:00" in lines[-1]
    assert 3 <= len(lines) <= 6
    assert "ETA 0:18" in lines[0]  # 9 cases left at 2 s each


def test_line_progress_on_resume_starts_at_the_cases_already_done():
    now = [0.0]
    lines: list[str] = []
    p = LineProgress(266, start=182, every=0.0, write=lines.append, clock=lambda: now[0])
    now[0] = 1.0
    p.update("x", advance=1)
    assert lines[0].startswith("[183/266]")
    assert "ETA 1:23" in lines[0]  # 83 left at the rate of this run (1 s/case), not of 183 cases


FAST = """\
name: fast
algorithms: [im2col, gemm-direct]
baseline: im2col
timing: {min_samples: 2, min_time_s: 0.0, max_time_s: 0.1, target_ci: null, min_sample_time_s: 0.0, repeat: 1}
sweeps:
  - {name: g, kernel: 3, padding: 1, grid: {channels: [2, 3, 4], size: [4, 5]}}
"""


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fast")
    config = folder / "fast.yaml"
    config.write_text(FAST)
    out = folder / "runs" / "20260101-000000"
    result = _invoke("run", str(config), "--out", str(out), "--no-isolation", columns=200)
    assert result.exit_code == 0, result.output
    return config, out, result


def test_a_piped_run_prints_progress_lines_and_the_next_steps(fast_run):
    config, out, result = fast_run
    assert "[12/12] 100%" in result.output and "ETA" in result.output
    # the current case is named (the order is shuffled)
    assert re.search(r"^\[\d+/12\] .* g/c\d_hw\d nchw/float32 t1: (im2col|gemm-direct) ", result.output, re.M)
    assert f"next: convbench plot {out}" in result.output
    assert f"convbench select {out}" in result.output


def test_resume_progress_starts_at_the_cases_already_done(fast_run, tmp_path):
    config, full, _ = fast_run
    out = tmp_path / "partial"
    shutil.copytree(full, out)
    lines = (out / "summary.csv").read_text().splitlines(keepends=True)
    (out / "summary.csv").write_text("".join(lines[:1 + 8]))  # header + 4 whole groups of 2 cases
    kept = [line.split(",")[1] for line in lines[1:9]]  # their case ids; the rest is measured again
    reps = (out / "repetitions.csv").read_text().splitlines(keepends=True)
    (out / "repetitions.csv").write_text(reps[0] + "".join(r for r in reps[1:] if any(k in r for k in kept)))
    samples = (out / "samples.csv").read_text().splitlines(keepends=True)  # as a run killed after 4 groups left it
    (out / "samples.csv").write_text(samples[0] + "".join(r for r in samples[1:] if any(k in r for k in kept)))
    result = _invoke("run", str(config), "--resume", str(out), "--no-isolation", columns=200)
    assert result.exit_code == 0, result.output
    assert "resuming: 8/12 already done" in result.output
    progress = [line for line in result.output.splitlines() if line.startswith("[")]
    assert progress[0].startswith("[8/12]") or progress[0].startswith("[9/12]"), progress
    assert progress[-1].startswith("[12/12]")


def test_a_quick_run_says_so(tmp_path):
    result = _invoke("run", str(CONFIGS / "smoke.yaml"), "--quick", "-a", "im2col", "-l", "pw1x1",
                     "--no-isolation", "--out", str(tmp_path / "q"), columns=200)
    assert result.exit_code == 0, result.output
    assert "quick run: few samples" in result.output and "(quick run: not a measurement)" in result.output


def test_plot_select_compare_take_the_newest_run_of_a_config_folder(fast_run, tmp_path):
    config, full, _ = fast_run
    runs = tmp_path / "fast"
    shutil.copytree(full, runs / "20260101-000000")
    shutil.copytree(full, runs / "20260102-000000")
    result = _invoke("select", str(runs), "--format", "json", columns=200)
    assert result.exit_code == 0, result.output
    assert f"using the newest: {runs / '20260102-000000'}" in result.output
    assert (runs / "20260102-000000" / "selection.csv").is_file()
    assert not (runs / "20260101-000000" / "selection.csv").exists()
    layers = {r["layer"] for r in json.loads(result.stdout)}
    assert layers == {f"g/c{c}_hw{s}" for c in (2, 3, 4) for s in (4, 5)}
    result = _invoke("compare", str(runs / "20260101-000000"), str(runs), "--all", "--format", "csv", columns=200)
    assert result.exit_code == 0, result.output
    assert len(list(csv.DictReader(io.StringIO(result.stdout)))) == 12
    result = _invoke("plot", str(runs), "--only", "speedup", "--format", "png", columns=200)
    assert result.exit_code == 0, result.output
    assert (runs / "20260102-000000" / "plots" / "speedup.png").is_file()


def test_help_accepts_h_and_shows_flags_without_a_type():
    result = _invoke("run", "-h", columns=200)
    assert result.exit_code == 0, result.output
    assert "--quick" in result.output
    quick = next(line for line in result.output.splitlines() if "--quick" in line)
    assert "<bool>" not in quick and "bool" not in quick.split("Few")[0]
    assert "<str>" in result.output  # options with values keep their type


def test_verify_suggests_the_nearest_algorithm():
    result = _invoke("verify", "-a", "im2cl", columns=200)
    assert result.exit_code == 2
    assert "unknown algorithm 'im2cl'. Did you mean 'im2col'?" in result.output


def test_a_missing_config_path_suggests_nothing_unrelated(tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    result = _invoke("run", "configs/nope.yaml", columns=200)
    assert result.exit_code == 2
    assert "no such config file" in result.output and "smoke" not in result.output.split("file")[-1].split("Configs")[0]
    assert "Did you mean" not in result.output
    result = _invoke("run", "configs/mobilnet.yaml", columns=200)
    assert "Did you mean 'mobilenet.yaml'?" in result.output


def test_new_plugin_hint_is_one_line_that_works_from_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _invoke("new-plugin", "my-very-long-algorithm-name-for-wrapping", columns=40)
    assert result.exit_code == 0, result.output
    hint = next(line for line in result.output.splitlines() if line.startswith("next:"))
    assert hint == "next: convbench verify --plugin my_very_long_algorithm_name_for_wrapping.py " \
                   "-a my-very-long-algorithm-name-for-wrapping"
    assert (tmp_path / "my_very_long_algorithm_name_for_wrapping.py").is_file()
    text = (tmp_path / "my_very_long_algorithm_name_for_wrapping.py").read_text()
    assert "convbench run smoke --plugin" in text  # a config name, found from any folder


def test_the_eta_starts_from_the_plan_until_a_tenth_is_measured():
    from convbench.cli.progress import LineProgress, plan_seconds
    from convbench.config import load_config
    from convbench.sweep.plan import plan

    now = [0.0]
    p = LineProgress(100, every=0.0, write=lambda line: None, clock=lambda: now[0], expected_s=200.0)
    now[0] = 300.0  # the first case paid the JIT
    p.update("a", advance=1)
    assert p.eta() == pytest.approx(99 * 2.0)  # not 99 * 300
    for _ in range(20):
        now[0] += 1.0
        p.update("b", advance=1)
    assert p.eta() == pytest.approx(79 * 1.0)  # the rate measured since the first case, without its JIT
    assert plan_seconds(plan(load_config("smoke"))) > 0


def test_notes_on_noise_and_other_processes():
    from convbench.cli.progress import contention_note, noise_note

    assert noise_note({"noise": {"verdict": {"level": "quiet"}}}) == ""
    note = noise_note({"noise": {"verdict": {"level": "noisy", "advice": ["stop them"]}}})
    assert "noisy" in note and "stop them" in note
    quiet = contention_note([{"retaken": 0, "contended": False, "other_load": 0.1}])
    assert "no sample was preempted" in quiet and "0.1 cores" in quiet
    busy = contention_note([{"retaken": 7, "contended": True, "other_load": 1.5}, {"retaken": 2}])
    assert "9 preempted sample(s) retaken, 1 case(s) still contended" in busy


def test_the_live_bar_shows_the_plan_eta_not_a_rate_inflated_by_the_first_case():
    import io

    from rich.console import Console

    from convbench.cli.progress import sweep_progress

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    with sweep_progress(console, 100, expected_s=200.0) as progress:
        progress.monitor.finished(-1, {}, [])
        progress.stop()
    assert "ETA 3:18" in buf.getvalue()  # 99 cases left at the plan's 2 s each
