"""Executors (Dask, SLURM through submitit) and results across machines.

The distributed runs are real: a Dask LocalCluster on 127.0.0.1 with two
workers, and submitit's local executor. Sweeps are two groups of
configs/smoke.yaml (one layer, both layouts) with --quick, so each test takes
seconds; a killed task is a real SIGKILL of the process measuring a shard.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from convbench.cli import app
from convbench.config import load_config
from convbench.executors import LocalExecutor, execute, shard_plan
from convbench.machine.identity import MACHINE_COLUMN, machine_name
from convbench.results import read_results
from convbench.sweep.plan import plan
from extras import needs_extra

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs" / "smoke.yaml")
GATE_PLUGIN = str(ROOT / "tests" / "plugins" / "gate.py")
#: two groups (conv3x3 in NCHW and NHWC), two algorithms without a JIT to wait for
SWEEP = [SMOKE, "--quick", "-l", "conv3x3", "-a", "im2col,gemm-direct"]

cli = CliRunner()


def _run(*args: str):
    return cli.invoke(app, ["run", *args], env={"COLUMNS": "200"})


def _case_ids(folder: Path) -> set[str]:
    return set(read_results(folder).summary["case_id"])


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "run"
    result = _run(*SWEEP, "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


# -- the driver ----------------------------------------------------------------------


def test_shards_of_the_driver_are_those_of_run_shard():
    config = load_config(SMOKE)
    whole = plan(config, algorithms=["im2col"], quick=True)
    for i in (1, 2, 3):
        mine = shard_plan(whole, i, 3)
        theirs = plan(config, algorithms=["im2col"], quick=True, shard=(i, 3))
        assert [c.case_id for c in mine.cases] == [c.case_id for c in theirs.cases]
        assert mine.shard == (i, 3) and mine.timing == theirs.timing


def _fast(out: Path, **kw):
    """A distributed run through the driver, in this process (no isolation, no calibration)."""
    the_plan = plan(load_config(SMOKE), algorithms=["im2col"], layers=["conv3x3"], quick=True)
    options = {"isolation": False, "calibration": False, **kw.pop("run_options", {})}
    return execute(the_plan, out, LocalExecutor(), run_options=options, **kw)


def test_a_failed_task_is_missing_rows_with_the_reason_and_resume_measures_them(tmp_path):
    out = tmp_path / "run"
    first = _fast(out, tasks=2, run_options={"case_timeout": -1})  # run() refuses it: both tasks fail
    assert first.missing == 2 and {s.state for s in first.states.values()} == {"failed"}
    summary = read_results(out).summary
    assert (summary["status"] == "missing").all()
    assert summary["reason"].str.contains("ValueError: must be a positive number of seconds").all()
    assert summary["reason"].str.contains("convbench run --resume").all()
    again = _fast(out, resume=True)
    assert again.missing == 0 and again.submitted == 2
    summary = read_results(out).summary
    assert (summary["status"] == "ok").all() and len(summary) == 2
    assert read_results(out).env["complete"] is True
    third = _fast(out, resume=True)  # nothing missing: nothing submitted
    assert third.submitted == 0 and len(read_results(out).summary) == 2


def test_a_shard_resumed_on_another_machine_gets_its_own_folder(tmp_path):
    out = tmp_path / "run"
    _fast(out, tasks=1)
    shard = out / "shards" / "001-of-001"
    # the shard was started on another node, which measured only the first group
    env = json.loads((shard / "env.json").read_text())
    env["system"]["hostname"] = "node-elsewhere"
    (shard / "env.json").write_text(json.dumps(env))
    lines = (shard / "summary.csv").read_text().splitlines(keepends=True)
    (shard / "summary.csv").write_text("".join(lines[:2]))
    outcome = _fast(out, resume=True)
    assert outcome.missing == 0
    assert sorted(p.name for p in (out / "shards").iterdir() if p.is_dir()) == ["001-of-001", "001-of-001-r2"]
    assert len(read_results(out / "shards" / "001-of-001-r2").summary) == 1  # only what was missing
    merged = read_results(out).summary
    assert merged["case_id"].is_unique and (merged["status"] == "ok").all()
    assert merged[MACHINE_COLUMN].str.startswith("node-elsewhere").sum() == 1  # each row names its machine
    # without the driver, `convbench merge` joins the shard folders the same way
    result = cli.invoke(app, ["merge", *map(str, sorted((out / "shards").glob("*/"))), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    by_hand = read_results(tmp_path / "m").summary
    assert sorted(by_hand["case_id"]) == sorted(merged["case_id"]) and by_hand[MACHINE_COLUMN].nunique() == 2


def test_run_refuses_shard_with_an_executor_and_unknown_executors(tmp_path):
    result = _run(*SWEEP, "--executor", "slurm", "--shard", "1/2", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "--shard and --executor do not mix" in result.output
    result = _run(*SWEEP, "--executor", "mpi", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "--executor must be one of local, dask, slurm" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


@pytest.mark.parametrize("executor, module, extra", [("dask", "distributed", "dask"), ("slurm", "submitit", "slurm")])
def test_a_missing_extra_names_the_pip_command(executor, module, extra, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    result = _run(*SWEEP, "--executor", executor, "--out", str(tmp_path / "o"))
    assert result.exit_code == 2, result.output
    assert f'pip install -e ".[{extra}]"' in result.output.replace("\n", "")
    assert "Traceback" not in result.output


# -- real executors --------------------------------------------------------------------


@needs_extra("dask")
def test_a_dask_scheduler_without_the_bench_resource_is_refused_not_waited_on(tmp_path):
    from distributed import LocalCluster

    # in-process workers start in a second; none offers `bench`, so tasks would queue forever
    with LocalCluster(n_workers=1, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as cluster:
        result = _run(*SWEEP, "--executor", "dask", "--dask-scheduler", cluster.scheduler_address,
                      "--out", str(tmp_path / "o"))
    assert result.exit_code == 2, result.output
    assert "--resources bench=1" in result.output.replace("\n", "") and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def _check_like_local(out: Path, local: Path) -> None:
    """The merged folder holds the local run's cases, with shards and a machine column;
    plot, select and compare read it."""
    res = read_results(out)
    assert set(res.summary["case_id"]) == _case_ids(local)
    assert res.summary["case_id"].is_unique and (res.summary["status"] == "ok").all()
    assert set(res.summary[MACHINE_COLUMN]) == {machine_name(res.env)}
    assert res.env["complete"] is True and res.env["missing_cases"] == 0
    shards = sorted(p for p in (out / "shards").iterdir() if p.is_dir())
    assert [p.name for p in shards] == ["001-of-002", "002-of-002"]
    for s in shards:
        assert read_results(s).env["cpu"]["model"]  # each shard has its own env.json
    result = cli.invoke(app, ["select", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    result = cli.invoke(app, ["plot", str(out), "--only", "speedup,winner_map", "--format", "png"])
    assert result.exit_code == 0, result.output
    assert (out / "plots" / "speedup.png").is_file() and (out / "plots" / "winner_map.png").is_file()
    result = cli.invoke(app, ["compare", str(local), str(out), "--all"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"{len(res.summary)} cases" in result.output


@needs_extra("dask")
def test_dask_local_cluster_gives_the_cases_of_a_local_run(local_run, tmp_path):
    out = tmp_path / "dask"
    result = _run(*SWEEP, "--executor", "dask", "--dask-workers", "2", "--tasks", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    cluster = json.loads((out / "cluster.json").read_text())
    assert cluster["submissions"][0]["executor"] == "dask" and cluster["submissions"][0]["resource"] == "bench=1"
    _check_like_local(out, local_run)


@needs_extra("slurm")
def test_slurm_local_cluster_gives_the_cases_of_a_local_run(local_run, tmp_path):
    out = tmp_path / "slurm"
    result = _run(*SWEEP, "--executor", "slurm", "--slurm-cluster", "local", "--slurm-time", "5",
                  "--tasks", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    states = json.loads((out / "cluster.json").read_text())["submissions"][0]["states"]
    assert {s["state"] for s in states.values()} == {"done"} and all(s["job_id"] for s in states.values())
    _check_like_local(out, local_run)


def _kill_when_measuring(out: Path, gate: Path, done: list, timeout: float = 240.0) -> None:
    """SIGKILL the process measuring the shard once its first group is on disk.

    On timeout it opens the gate instead, so the run ends and the test fails
    rather than hangs."""
    shards = out / "shards"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        info, summary = shards / "001-of-001.task.json", shards / "001-of-001" / "summary.csv"
        if info.is_file() and summary.is_file() and len(summary.read_text().splitlines()) >= 3:
            os.kill(json.loads(info.read_text())["pid"], signal.SIGKILL)
            done.append(True)
            return
        time.sleep(0.1)
    gate.unlink(missing_ok=True)


@needs_extra("slurm")
def test_a_task_killed_midway_is_missing_and_resume_completes_it(tmp_path, monkeypatch):
    out, gate = tmp_path / "run", tmp_path / "gate"
    gate.touch()
    monkeypatch.setenv("CONVBENCH_TEST_GATE", str(gate))  # inherited by the job and its worker
    args = [SMOKE, "--quick", "-l", "conv3x3", "-a", "im2col,gate-wait", "--plugin", GATE_PLUGIN,
            "--executor", "slurm", "--slurm-cluster", "local", "--slurm-time", "5", "--tasks", "1"]
    killed: list = []
    killer = threading.Thread(target=_kill_when_measuring, args=(out, gate, killed), daemon=True)
    killer.start()
    result = _run(*args, "--out", str(out))
    killer.join(5)
    assert killed, "the task was never seen measuring"
    assert result.exit_code == 1, result.output
    assert "task 001-of-001 failed" in result.output and "2 case(s) missing" in result.output
    summary = read_results(out).summary
    missing = summary[summary["status"] == "missing"]
    assert set(missing["layout"]) == {"nhwc"} and len(missing) == 2  # the group it was killed in
    assert (summary.loc[summary["layout"] == "nchw", "status"] == "ok").all()  # what it finished is kept
    assert missing["reason"].str.contains("failed before measuring this case").all()

    gate.unlink()
    result = _run("--resume", str(out), "--plugin", GATE_PLUGIN)
    assert result.exit_code == 0, result.output
    summary = read_results(out).summary
    assert (summary["status"] == "ok").all() and len(summary) == 4 and summary["case_id"].is_unique
    assert [p.name for p in (out / "shards").iterdir() if p.is_dir()] == ["001-of-001"]  # resumed in place
    assert len(json.loads((out / "cluster.json").read_text())["submissions"]) == 2


# -- across machines ------------------------------------------------------------------------


@pytest.fixture
def two_machines(local_run, tmp_path):
    """The local run, and a copy that claims another machine where gemm-direct wins everywhere."""
    other = tmp_path / "other"
    shutil.copytree(local_run, other)
    env = json.loads((other / "env.json").read_text())
    env["system"]["hostname"], env["cpu"]["model"] = "phone-b", "Cortex-X1"
    (other / "env.json").write_text(json.dumps(env))
    s = pd.read_csv(other / "summary.csv")
    base = s["algorithm"] == "im2col"
    s.loc[base, ["time_median_s", "time_ci_low_s", "time_ci_high_s"]] *= 1000.0
    s.to_csv(other / "summary.csv", index=False)
    p = pd.read_csv(other / "samples.csv")
    p.loc[p["algorithm"] == "im2col", "time_s"] *= 1000.0
    p.to_csv(other / "samples.csv", index=False)
    return local_run, other


def test_two_machines_compare_per_machine(two_machines, tmp_path):
    a, b = two_machines
    result = cli.invoke(app, ["compare", str(a), str(b), "--all"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "each machine against" in result.output and "phone-b (Cortex-X1)" in result.output
    assert "fastest algorithm per layer on each machine" in result.output
    # one merged folder of both machines compares the same way
    merged = tmp_path / "merged"
    assert cli.invoke(app, ["merge", str(a), str(b), "--out", str(merged)]).exit_code == 0
    res = read_results(merged)
    assert res.summary[MACHINE_COLUMN].nunique() == 2 and len(res.env["machines"]) == 2
    result = cli.invoke(app, ["compare", str(merged), "--csv", str(tmp_path / "m.csv")], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "m.csv")
    im2col = table[table["algorithm"] == "im2col"]
    assert (im2col["machine"] == "phone-b (Cortex-X1)").all() and (im2col["ratio"] > 100).all()


def test_two_machines_select_and_report_per_machine(two_machines, tmp_path):
    from convbench.analysis.machines import load, machines_section
    from convbench.analysis.report import REFERENCE_LABEL, evaluate

    a, b = two_machines
    result = cli.invoke(app, ["select", str(a), str(b), "--out", str(tmp_path / "sel")], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    sel = pd.read_csv(tmp_path / "sel" / "selection.csv")
    assert sel["machine"].nunique() == 2 and len(sel) == 2 * 2  # two layer variants on each machine
    assert (sel.loc[sel["machine"] == "phone-b (Cortex-X1)", "algorithm"] == "gemm-direct").all()
    # several folders and no --out: a message, not a file written somewhere surprising
    result = cli.invoke(app, ["select", str(a), str(b)])
    assert result.exit_code == 2 and "--out" in result.output
    section = "\n".join(machines_section(load([a, b]), evaluate, REFERENCE_LABEL))
    assert "## Across machines" in section and "phone-b (Cortex-X1)" in section
    # the reproduce report of a merged folder judges the first machine and adds the section
    from convbench.analysis.report import write_report

    merged = tmp_path / "merged"
    assert cli.invoke(app, ["merge", str(a), str(b), "--out", str(merged)]).exit_code == 0
    text = write_report(merged, draw=False).report.read_text()
    assert "## Across machines" in text and "The verdicts above are those of" in text


def test_two_machines_plot_a_machine_panel_and_each_machine(two_machines, tmp_path):
    a, b = two_machines
    out = tmp_path / "plots"
    result = cli.invoke(app, ["plot", str(a), str(b), "--out", str(out), "--only", "machines,speedup",
                              "--format", "png"])
    assert result.exit_code == 0, result.output
    assert (out / "machines.png").is_file()
    per_machine = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(per_machine) == 2 and any(n.startswith("phone-b") for n in per_machine)
    assert all((out / n / "speedup.png").is_file() for n in per_machine)
