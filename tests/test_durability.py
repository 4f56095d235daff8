"""Robustness: interrupted sweeps (kill -9, Ctrl-C, torn lines) resume, and bad input is one clear paragraph."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from convbench.results import SUMMARY_COLUMNS, ResultsError, ResultsWriter, read_results, sample_row, summary_row
from robust_helpers import FAULTY, _invoke, _one_line, _write, forget_the_faults  # noqa: F401 (a fixture)


@pytest.fixture(scope="module", autouse=True)
def _forget_the_faults(forget_the_faults):
    yield


# -- durability: kill -9, torn lines, resume -----------------------------------------

MANY = f"""\
name: many
algorithms: [fault-ok, fault-wrong-values]
baseline: fault-ok
plugins: [{FAULTY}]
timing: {{min_samples: 3, min_time_s: 0.15, max_time_s: 0.5, target_ci: null, min_sample_time_s: 0.0, repeat: 2}}
sweeps:
  - {{name: g, kernel: 3, padding: 1, grid: {{channels: [2, 3, 4, 5], size: [4, 5, 6]}}}}
"""


def _rows_on_disk(folder: Path) -> int:
    try:
        return max(0, (folder / "summary.csv").read_text().count("\n") - 1)
    except OSError:
        return 0


def _start(args: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "convbench.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"}, **kw)


def _wait_rows(proc: subprocess.Popen, folder: Path, n: int, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while _rows_on_disk(folder) < n:
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the sweep wrote nothing"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def many_config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("many")
    config = _write(folder / "many.yaml", MANY)
    full = folder / "full"
    result = _invoke("run", str(config), "--allow-config-plugins", "--out", str(full), "--no-isolation")
    assert result.exit_code == 0, result.output
    return config, read_results(full)


def _check_consistent(res) -> None:
    assert res.summary["case_id"].is_unique
    counts = res.samples.groupby("case_id").size()
    for r in res.summary.itertuples():
        assert counts.get(r.case_id, 0) == r.n_samples, r.case_id
    assert set(res.samples["case_id"]) <= set(res.summary["case_id"])


def test_kill_9_mid_sweep_then_resume_gives_the_uninterrupted_case_set(tmp_path, many_config):
    config, full = many_config
    out = tmp_path / "killed"
    proc = _start(["run", str(config), "--allow-config-plugins", "--out", str(out)])  # isolated: the worker must die with it
    _wait_rows(proc, out, 4)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    before = read_results(out)
    assert 4 <= len(before.summary) < len(full.summary)
    assert before.env["finished"] is False
    _check_consistent(before)
    time.sleep(0.3)
    orphans = subprocess.run(["pgrep", "-f", f"convbench.sweep.worker .* {proc.pid}$"], capture_output=True, text=True)
    assert orphans.stdout.strip() == "", "the worker outlived its parent"
    # a kill in the middle of a write: a torn summary line, samples of a group whose rows never landed
    missing = sorted(set(full.summary["case_id"]) - set(before.summary["case_id"]))
    with open(out / "samples.csv", "a") as f:
        # (a sample key no row on disk has: the same key twice would be a corrupt folder, refused)
        f.write(f"999,{missing[0]},g,fault-ok,nchw,float32,1,9,0,0,1,0.001,0.001\r\n")
    with open(out / "summary.csv", "a") as f:
        f.write("17,g/c5_hw6|nchw|float32|t1|fault-ok,g/c5_hw6,,many,1x5x6x6")
    result = _invoke("run", str(config), "--allow-config-plugins", "--resume", str(out), "--no-isolation")
    assert result.exit_code == 0, result.output
    assert "resumed" in result.output
    after = read_results(out)
    assert sorted(after.summary["case_id"]) == sorted(full.summary["case_id"])
    _check_consistent(after)
    assert after.env["finished"] is True and after.env["cases_written"] == len(full.summary)
    assert after.env["resumes"][0]["cases_before"] == len(before.summary)
    # measured cases kept their numbers: nothing already on disk was measured again
    kept = before.summary.set_index("case_id")["time_median_s"]
    assert after.summary.set_index("case_id").loc[kept.index, "time_median_s"].equals(kept)
    # resuming a finished folder measures nothing
    result = _invoke("run", str(config), "--allow-config-plugins", "--resume", str(out), "--no-isolation")
    assert result.exit_code == 0 and "nothing was measured" in result.output


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path, many_config):
    config, full = many_config
    out = tmp_path / "stopped"
    # the run gets Ctrl-C's default action, as in a terminal, even where pytest itself was started
    # with SIGINT ignored (a background job of a script): a child inherits an ignored SIGINT
    proc = _start(["run", str(config), "--allow-config-plugins", "--out", str(out), "--no-isolation"],
                  start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_rows(proc, out, 2)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, output
    text = _one_line(output)
    res = read_results(out)
    n = len(res.summary)
    assert f"interrupted: {n} cases written to {out}; resume with: convbench run {config} --allow-config-plugins --no-isolation --resume {out}" \
        in text, text
    assert "Traceback" not in output
    assert res.env["interrupted"] is True and res.env["finished"] is False and res.env["cases_written"] == n
    _check_consistent(res)


def test_resume_refuses_another_config_and_what_is_not_a_results_folder(tmp_path, many_config):
    config, full = many_config
    other = _write(tmp_path / "other.yaml", MANY.replace("size: [4, 5, 6]", "size: [4, 5]"))
    result = _invoke("run", str(other), "--allow-config-plugins", "--resume", str(full.path), "--no-isolation")
    assert result.exit_code == 2
    text = _one_line(result.output)
    assert "was made from a different config ('layers' has 12 layers in the folder, 8 now)" in text
    assert "Traceback" not in result.output
    result = _invoke("run", str(config), "--allow-config-plugins", "--resume", str(full.path), "-a", "fault-ok", "--no-isolation")
    assert result.exit_code == 2 and "'algorithms' is ['fault-ok', 'fault-wrong-values'] in the folder" in _one_line(result.output)
    result = _invoke("run", str(config), "--resume", str(tmp_path), "--no-isolation")
    assert result.exit_code == 2 and "not a convbench results folder (no env.json)" in _one_line(result.output)
    result = _invoke("run", str(config), "--allow-config-plugins", "--resume", str(full.path), "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "give either a new results folder or one to resume" in _one_line(result.output)


def test_a_torn_last_line_is_dropped_with_a_warning(tmp_path):
    w = ResultsWriter(tmp_path / "r")
    row = {c: None for c in SUMMARY_COLUMNS}
    row.update(case_index=0, case_id="L|a", layer="L", algorithm="a", status="ok", n_samples=1)
    w.append([row], [sample_row(case_index=0, case_id="L|a", sample=0, time_s=1.0)])
    w.write_env({"seed": 0})
    w.close()
    with open(tmp_path / "r" / "summary.csv", "a") as f:
        f.write("1,L|b,L,,,,b,o")
    with pytest.warns(UserWarning, match="dropped an incomplete last line"):
        res = read_results(tmp_path / "r")
    assert res.summary["case_id"].tolist() == ["L|a"]


def test_samples_are_on_disk_before_their_summary_rows(tmp_path, monkeypatch):
    order = []
    w = ResultsWriter(tmp_path / "r")
    real = ResultsWriter._flush
    monkeypatch.setattr(ResultsWriter, "_flush", staticmethod(lambda *f: (order.extend(Path(x.name).name for x in f),
                                                                         real(*f))))
    w.append([summary_row(case_id="x")], [sample_row(case_id="x")])
    w.close()
    assert order == ["samples.csv", "summary.csv"]



# -- bad input: one paragraph, exit status 2, never a traceback ---------------------------

GOOD = "layers:\n  - {name: a, channels: 8, size: 10, kernel: 3, padding: 1}\n"

BAD_CONFIGS = {
    "malformed-yaml": ("layers: [\n  {name: a\n", ["line 3, column 1", "malformed YAML"]),
    "unknown-key": ("layers:\n  - {name: a, channels: 8, size: 10, kernal: 3}\n",
                    ["line 2", "unknown field 'kernal'", "Did you mean 'kernel'?"]),
    "wrong-type": ("threads: two\n" + GOOD, ["field 'threads'", "'two'"]),
    "out-of-range": ("layers:\n  - {name: a, channels: 8, size: 10, kernel: -3}\n", ["field 'kernel'", "int >= 1", "-3"]),
    "output-below-1": ("layers:\n  - {name: a, channels: 8, size: 2, kernel: 5}\n", ["layer 'a'", "does not fit"]),
    "groups": ("layers:\n  - {name: a, in_channels: 6, out_channels: 8, groups: 4, size: 10, kernel: 3}\n",
               ["layer 'a'", "divisible by 'groups'"]),
    "unknown-algorithm": ("algorithms: [indirekt]\n" + GOOD,
                          ["unknown algorithm 'indirekt'", "Did you mean 'indirect'?", "Known algorithms:", "im2col, gemm-direct"]),
    "empty": ("name: x\n", ["no 'layers' and no 'sweeps': nothing to run"]),
    "plugins-without-consent": ("plugins: [evil.py, some.module]\n" + GOOD,
                                ["wants to load plugin code that would run as you", "evil.py, module some.module",
                                 "--allow-config-plugins"]),
    "empty-grid": ("sweeps:\n  - {name: g, kernel: 5, channels: 4, grid: {size: [2, 3]}, drop_invalid: true}\n",
                   ["the sweep is empty"]),
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_bad_config_on_the_command_line(tmp_path, name):
    text, fragments = BAD_CONFIGS[name]
    config = _write(tmp_path / "bad.yaml", text)
    result = _invoke("run", str(config), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2, result.output
    message = _one_line(result.output)
    assert message.startswith(f"error: {config}") or name == "unknown-algorithm", message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert "Traceback" not in result.output and "\n\n" not in result.output.strip()
    assert not (tmp_path / "o").exists()


def test_bad_options_on_the_command_line(tmp_path, many_config):
    config, full = many_config
    (tmp_path / "file").write_text("x")
    cases = [
        (["-a", "nope"], ["unknown algorithm 'nope'", "Known algorithms:"]),
        (["--threads", "a"], ["--threads must be comma-separated integers"]),
        (["--shard", "40/40"], ["shard 40/40 is empty: the sweep has only 12 group(s)"]),
        (["--layers", "zzz"], ["no layer matches 'zzz'"]),
        (["--memory-limit", "lots"], ["--memory-limit must be a size such as 2GiB"]),
        (["--case-timeout", "0"], ["--case-timeout must be a positive number of seconds"]),
        (["--out", str(tmp_path / "file")], ["exists and is not a folder"]),
        (["--out", str(tmp_path / "file" / "sub")], ["is a file, not a folder"]),
        (["--out", str(full.path)], ["already exists and is not empty", "--resume"]),
    ]
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        cases.append((["--out", str(ro / "sub")], ["is not writable"]))
    for args, fragments in cases:
        result = _invoke("run", str(config), "--allow-config-plugins", *args)
        assert result.exit_code == 2, (args, result.output)
        message = _one_line(result.output)
        for fragment in fragments:
            assert fragment in message, (args, fragment, message)
        assert "Traceback" not in result.output


def test_results_folders_that_are_not_one(tmp_path, many_config):
    _, full = many_config
    not_one = tmp_path / "empty"
    not_one.mkdir()
    for args in (["merge", str(not_one), "--out", str(tmp_path / "m")], ["plot", str(not_one)],
                 ["compare", str(full.path), str(not_one)]):
        result = _invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "not a convbench results folder" in _one_line(result.output), result.output
        assert "Traceback" not in result.output
    # a CSV edited by hand
    edited = tmp_path / "edited"
    edited.mkdir()
    for name in ("env.json", "config.yaml", "samples.csv"):
        (edited / name).write_text((full.path / name).read_text())
    pd.read_csv(full.path / "summary.csv").drop(columns=["status", "flops"]).to_csv(edited / "summary.csv", index=False)
    result = _invoke("merge", str(edited), "--out", str(tmp_path / "m2"))
    assert result.exit_code == 2
    assert "lacks column(s) status, flops" in _one_line(result.output) and "Traceback" not in result.output
    df = pd.read_csv(full.path / "summary.csv")
    df.loc[0, "status"] = "great"
    df.to_csv(edited / "summary.csv", index=False)
    result = _invoke("merge", str(edited), "--out", str(tmp_path / "m3"))
    assert result.exit_code == 2 and "unknown status value(s) 'great'" in _one_line(result.output)
    (edited / "summary.csv").write_text('a,b\n1,"2\n')
    with pytest.raises(ResultsError):
        read_results(edited)


def test_resume_measures_a_partly_written_group_again_whole(tmp_path, many_config):
    import shutil

    config, full = many_config
    out = tmp_path / "partial"
    shutil.copytree(full.path, out)
    lines = (out / "summary.csv").read_text().splitlines(keepends=True)
    (out / "summary.csv").write_text("".join(lines[:-1]))  # the last group lost its second row
    last_group = set(full.summary["case_id"].tail(2))
    result = _invoke("run", str(config), "--allow-config-plugins", "--resume", str(out), "--no-isolation")
    assert result.exit_code == 0, result.output
    after = read_results(out)
    assert sorted(after.summary["case_id"]) == sorted(full.summary["case_id"])
    _check_consistent(after)
    old = full.summary.set_index("case_id")["time_median_s"]
    new = after.summary.set_index("case_id")["time_median_s"]
    assert all(new[c] == old[c] for c in old.index if c not in last_group)  # kept as measured
    assert after.env["resumes"][0]["cases_to_measure"] == 2
    rows = after.summary[after.summary["case_id"].isin(last_group)]
    assert rows.loc[rows["algorithm"] == "fault-ok", "speedup_vs_baseline"].tolist() == [1.0]


