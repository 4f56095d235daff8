"""Safe to share, safe to run twice (#17).

- A config's ``plugins:`` run no code without consent: ``layers`` never runs
  them, ``run`` refuses listing them, ``--allow-config-plugins`` (or the same
  ``--plugin``) runs as before. A plugin that leaves a marker file shows
  which paths executed code.
- One writer per results folder: an OS lock; a second writer exits 2 at once
  naming the first (two real processes), and a killed holder leaves no stale lock.
- Readers refuse folders with duplicate keys or stranded samples; ``repair``
  removes exact duplicates and refuses what it cannot decide.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from convbench import registry
from convbench.cli import app
from convbench.config import PluginConsentError, load_config, parse_config
from convbench.results import LOCK_FILE, CorruptResults, FolderLock, FolderLocked, read_results
from convbench.sweep.plan import plan as make_plan
from convbench.sweep.session import plan_plugins, run

cli = CliRunner()
FAST = "timing: {min_samples: 2, min_time_s: 0.0, max_time_s: 0.1, target_ci: null, min_sample_time_s: 0.0, repeat: 1}\n"

MARKER_PLUGIN = '''\
"""Leaves MARKER next to itself when imported: proof that its code ran."""
import pathlib

import convbench

pathlib.Path(__file__).with_name("MARKER").write_text("ran")


class Marked(convbench.Algorithm):
    name = "marker-ok"

    def prepare(self, spec, weight):
        return lambda x: convbench.reference(spec, x, weight).astype(spec.dtype)


convbench.register(Marked)
'''

GATE_PLUGIN = '''\
"""prepare() waits (at most 60 s) until the file named by CONVBENCH_TEST_GATE exists."""
import os
import pathlib
import time

import convbench


class Gated(convbench.Algorithm):
    name = "gated-ok"

    def prepare(self, spec, weight):
        gate, deadline = os.environ.get("CONVBENCH_TEST_GATE"), time.monotonic() + 60
        while gate and not pathlib.Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return lambda x: convbench.reference(spec, x, weight).astype(spec.dtype)


convbench.register(Gated)
'''

LAYERS = "layers:\n  - {name: a, channels: 2, size: 5, kernel: 3}\n  - {name: b, channels: 3, size: 4, kernel: 1}\n"


@pytest.fixture(scope="module", autouse=True)
def _forget_test_plugins():
    """Plugins loaded here in-process must not show up in later files' ``algorithms: all``."""
    registry.list_algorithms()  # built-ins (and entry points) load first: they stay
    before = set(registry._LOADED)
    yield
    for name in ("marker-ok", "gated-ok"):
        registry.unregister(name)
    for target in set(registry._LOADED) - before:
        if target.endswith(".py"):  # this file's plugins; modules a test imported stay imported
            registry._LOADED.discard(target)


def _invoke(*args: str, **env: str):
    return cli.invoke(app, list(args), env={"COLUMNS": "200", **env})


def _one_line(output: str) -> str:
    return " ".join(output.split())


def _clean_exit_2(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return _one_line(result.output)


def _start(args: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "convbench.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200", **env})


# -- 1. consent for code in configs -------------------------------------------------------


@pytest.fixture()
def shared(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A downloaded-looking config whose plugin would leave ``MARKER``: (config, plugin, marker)."""
    (tmp_path / "evil.py").write_text(MARKER_PLUGIN)
    config = tmp_path / "shared.yaml"
    config.write_text(f"name: shared\nplugins: [evil.py]\nalgorithms: [marker-ok, im2col]\n{FAST}{LAYERS}")
    registry.unregister("marker-ok")  # each test's plugin is a new file: its class must not clash
    yield config, (tmp_path / "evil.py").resolve(), tmp_path / "MARKER"
    registry.unregister("marker-ok")


def test_parsing_and_layers_run_no_plugin_code(shared):
    config, plugin, marker = shared
    assert load_config(config).model.plugins == [str(plugin)]  # resolved, recorded, not imported
    result = _invoke("layers", str(config))
    assert result.exit_code == 0, result.output
    text = _one_line(result.output)
    assert "marker-ok" in text and "not loaded" in text and str(plugin) in text
    assert not marker.exists()


def test_run_without_consent_exits_2_listing_the_files(shared, tmp_path):
    config, plugin, marker = shared
    (tmp_path / "other.py").write_text("# a harmless plugin that registers nothing\n")
    for extra in ([], ["--plugin", str(tmp_path / "other.py")]):  # another --plugin is no consent for this one
        text = _clean_exit_2(_invoke("run", str(config), "--quick", "--out", str(tmp_path / "o"), *extra))
        assert f"{config} wants to load plugin code that would run as you: {plugin}" in text
        assert "--allow-config-plugins" in text and "--plugin" in text
    assert not marker.exists() and not (tmp_path / "o").exists()


def test_a_module_plugin_is_listed_with_the_file_it_would_load(tmp_path):
    config = tmp_path / "mod.yaml"
    config.write_text(f"plugins: [json]\nalgorithms: [im2col]\n{FAST}{LAYERS}")
    text = _clean_exit_2(_invoke("run", str(config), "--quick", "--out", str(tmp_path / "o")))
    assert "module json (" in text and "json/__init__.py)" in text


def test_with_consent_it_runs_and_resume_asks_again(shared, tmp_path):
    config, plugin, marker = shared
    out = tmp_path / "out"
    result = _invoke("run", str(config), "--quick", "--out", str(out), "--allow-config-plugins")
    assert result.exit_code == 0, result.output
    assert marker.exists()  # the plugin ran, here and in the isolated worker
    assert set(read_results(out).summary["status"]) == {"ok"}
    # a results folder is data too: resuming it needs the same consent
    text = _clean_exit_2(_invoke("run", "--resume", str(out)))
    assert f"{out / 'config.yaml'} wants to load plugin code" in text and str(plugin) in text
    # the same plugin named with --plugin is consent for it
    result = _invoke("run", "--resume", str(out), "--plugin", str(plugin), "--no-isolation")
    assert result.exit_code == 0 and "nothing was measured" in result.output, result.output


def test_the_library_never_runs_a_config_plugin_it_was_not_told_to(shared, tmp_path):
    config, plugin, marker = shared
    text = config.read_text().replace("algorithms: [marker-ok, im2col]", "algorithms: [im2col]")
    parsed = parse_config(text, str(config), base_dir=config.parent)
    assert not marker.exists()
    with pytest.raises(PluginConsentError, match="load_config_plugins"):
        run(make_plan(parsed, quick=True), tmp_path / "lib", calibration=False)
    with pytest.raises(PluginConsentError):  # nor does the isolated worker, which loads what the run names
        plan_plugins(make_plan(parsed, quick=True))
    assert not marker.exists() and not (tmp_path / "lib").exists()


# -- 2. one writer per results folder --------------------------------------------------------


def test_the_lock_names_its_holder_and_dies_with_it(tmp_path):
    folder = tmp_path / "r"
    with FolderLock(folder):
        with pytest.raises(FolderLocked, match=rf"pid {os.getpid()} on .*started "):
            FolderLock(folder).acquire()
        with FolderLock(tmp_path / "shard-2"):  # another folder (a shard) locks on its own
            pass
    FolderLock(folder).acquire().release()  # released
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from convbench.results.lock import FolderLock; "
                               f"held = FolderLock({str(folder)!r}).acquire(); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderLocked, match=rf"pid {holder.pid} "):
            FolderLock(folder).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    FolderLock(folder).acquire().release()  # a killed holder leaves no stale lock


def test_two_resumes_at_once_the_second_exits_2_and_each_case_is_written_once(tmp_path):
    (tmp_path / "gate.py").write_text(GATE_PLUGIN)
    config = tmp_path / "gate.yaml"
    config.write_text(f"name: gate\nplugins: [gate.py]\nalgorithms: [gated-ok, im2col]\n{FAST}{LAYERS}")
    gate = tmp_path / "go"
    gate.touch()
    out = tmp_path / "run"
    result = _invoke("run", str(config), "--out", str(out), "--no-isolation", "--allow-config-plugins",
                     CONVBENCH_TEST_GATE=str(gate))
    assert result.exit_code == 0, result.output
    full = sorted(read_results(out).summary["case_id"])
    _drop_layer(out, "b")  # interrupted before layer b's group was measured
    gate.unlink()
    resume = ["run", str(config), "--resume", str(out), "--no-isolation", "--allow-config-plugins"]
    first = _start(resume, CONVBENCH_TEST_GATE=str(gate))
    try:
        deadline = time.monotonic() + 60
        while f'"pid": {first.pid},' not in ((out / LOCK_FILE).read_text() if (out / LOCK_FILE).exists() else ""):
            assert first.poll() is None, first.communicate()[0]
            assert time.monotonic() < deadline, "the first resume never locked the folder"
            time.sleep(0.05)
        # the first holds the lock and waits in prepare(): the second must give up at once
        second = _start(resume, CONVBENCH_TEST_GATE=str(gate))
        output, _ = second.communicate(timeout=60)
        assert second.returncode == 2, output
        text = _one_line(output)
        assert f"{out} is being written by another convbench (pid {first.pid} on " in text, text
        assert "started " in text and "Traceback" not in output
    finally:
        gate.touch()
        output, _ = first.communicate(timeout=120)
    assert first.returncode == 0, output
    after = read_results(out).summary
    assert sorted(after["case_id"]) == full and after["case_id"].is_unique


def _drop_layer(folder: Path, layer: str) -> None:
    """Remove every row of ``layer`` from the folder's CSVs, as if it was never measured."""
    import csv
    import io

    for name in ("summary.csv", "repetitions.csv", "samples.csv"):
        rows = list(csv.reader(io.StringIO((folder / name).read_text(), newline="")))
        col = rows[0].index("layer")
        out = io.StringIO(newline="")
        csv.writer(out).writerows([rows[0], *[r for r in rows[1:] if r[col] != layer]])
        (folder / name).write_text(out.getvalue())


# -- 3. readers refuse corrupt folders; repair ---------------------------------------------


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> tuple[Path, Path]:
    """A real, finished results folder of built-ins (no plugins): (config, folder)."""
    folder = tmp_path_factory.mktemp("small")
    config = folder / "small.yaml"
    timing = FAST.replace("repeat: 1", "repeat: 2")  # repetitions.csv with more than one repetition per case
    config.write_text(f"name: small\nalgorithms: [im2col, gemm-direct]\n{timing}{LAYERS}")
    result = _invoke("run", str(config), "--out", str(folder / "run"), "--no-isolation")
    assert result.exit_code == 0, result.output
    return config, folder / "run"


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(LOCK_FILE, "plots", "selection*.csv", "network*.csv"))
    return dst


def _duplicate_rows(folder: Path, n: int) -> list[str]:
    """Append the first ``n`` summary rows and their samples again, byte for byte; their keys."""
    summary = (folder / "summary.csv").read_text().splitlines(keepends=True)
    keys = [line.split(",")[1] for line in summary[1:n + 1]]
    samples = (folder / "samples.csv").read_text().splitlines(keepends=True)
    with open(folder / "samples.csv", "a", newline="") as f:
        f.writelines(line for line in samples[1:] if line.split(",")[1] in keys)
    with open(folder / "summary.csv", "a", newline="") as f:
        f.writelines(summary[1:n + 1])
    return keys


def _readers(folder: Path, good: Path, tmp_path: Path, config: Path) -> dict[str, list[str]]:
    return {
        "plot": ["plot", str(folder), "--out", str(tmp_path / "plots"), "--only", "speedup", "--format", "png"],
        "select": ["select", str(folder)],
        "compare A": ["compare", str(folder), str(good)],
        "compare B": ["compare", str(good), str(folder)],
        "reproduce --from": ["reproduce", "--from", str(folder)],
        "merge": ["merge", str(folder), "--out", str(tmp_path / "merged")],
        "resume": ["run", str(config), "--resume", str(folder), "--no-isolation"],
    }


def test_every_reader_refuses_duplicate_rows_and_repair_fixes_exact_ones(small_run, tmp_path):
    config, good = small_run
    folder = _copy(good, tmp_path / "dup")
    keys = _duplicate_rows(folder, 3)
    before = {name: (folder / name).read_bytes() for name in ("summary.csv", "samples.csv")}
    for what, args in _readers(folder, good, tmp_path, config).items():
        text = _clean_exit_2(_invoke(*args))
        assert f"{folder} is corrupt: summary.csv has 3 duplicate row(s) of 3 case key(s) (first: {keys[0]!r}" in text, \
            (what, text)
        assert f"convbench repair {folder}" in text, (what, text)
    assert not (tmp_path / "merged").exists() and not (tmp_path / "plots").exists()
    assert before == {name: (folder / name).read_bytes() for name in before}  # resume appended nothing
    with pytest.raises(CorruptResults):
        read_results(folder)

    result = _invoke("repair", str(folder))
    assert result.exit_code == 0, result.output
    assert "summary.csv: removed 3 exact duplicate row(s) of 3 key(s)" in _one_line(result.output)
    assert (folder / "summary.csv").read_bytes() == (good / "summary.csv").read_bytes()
    assert (folder / "samples.csv").read_bytes() == (good / "samples.csv").read_bytes()
    log = (folder / "repair.log").read_text()
    assert "convbench repair: summary.csv: removed 3" in log and keys[0] in log
    for what, args in _readers(folder, good, tmp_path, config).items():
        if what in ("select", "resume"):  # the others read through the same check
            assert _invoke(*args).exit_code == 0, what
    result = _invoke("repair", str(folder))
    assert result.exit_code == 0 and "nothing to repair" in result.output


def test_repair_refuses_what_it_cannot_decide(small_run, tmp_path):
    _, good = small_run
    folder = _copy(good, tmp_path / "differ")
    summary = (folder / "summary.csv").read_text().splitlines(keepends=True)
    row = pd.read_csv(folder / "summary.csv").iloc[[0]].copy()
    row["time_median_s"] *= 2  # the same case measured twice, with different numbers
    with open(folder / "summary.csv", "a", newline="") as f:
        row.to_csv(f, header=False, index=False, lineterminator="\r\n")
    before = (folder / "summary.csv").read_bytes()
    text = _clean_exit_2(_invoke("repair", str(folder)))
    key = summary[1].split(",")[1]
    assert (f"cannot repair {folder}: summary.csv has 1 key(s) that appear more than once with different values "
            f"(first: {key!r})") in text
    assert (folder / "summary.csv").read_bytes() == before and not (folder / "repair.log").exists()
    assert "is corrupt" in _clean_exit_2(_invoke("select", str(folder)))
    text = _clean_exit_2(_invoke("repair", str(tmp_path / "nowhere")))
    assert "no such results folder" in text


def test_stranded_samples_are_refused_and_repaired_but_a_torn_groups_are_not(small_run, tmp_path):
    _, good = small_run
    folder = _copy(good, tmp_path / "stray")
    samples = (folder / "samples.csv").read_text().splitlines(keepends=True)
    ghost = samples[1].split(",")
    ghost[1] = "ghost|nchw|float32|t1|im2col"
    stray = ",".join(ghost)
    (folder / "samples.csv").write_text("".join([samples[0], stray, *samples[1:]]))  # in the middle
    text = _clean_exit_2(_invoke("plot", str(folder), "--only", "speedup"))  # a reader of samples
    assert "samples.csv has 1 sample(s) of 1 case(s) that belong to no summary or repetition row" in text
    assert "'ghost|nchw|float32|t1|im2col'" in text
    result = _invoke("repair", str(folder))
    assert result.exit_code == 0 and "removed 1 sample(s) that belonged to no summary or repetition row" in _one_line(result.output)
    assert (folder / "samples.csv").read_bytes() == (good / "samples.csv").read_bytes()
    # the last group's samples without summary rows: a run killed mid-write, read with a warning
    torn = _copy(good, tmp_path / "torn")
    lines = (torn / "summary.csv").read_text().splitlines(keepends=True)
    (torn / "summary.csv").write_text("".join(lines[:-2]))  # the last group's rows never landed
    with pytest.warns(UserWarning, match="no summary row"):
        res = read_results(torn)
    assert len(res.summary) == len(lines) - 3
    assert _invoke("repair", str(torn)).output.strip().endswith("nothing to repair")
