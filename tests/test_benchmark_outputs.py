"""The verdicts, counts and README tables of the benchmarks (benchmarks/outputs.py,
benchmarks/readme_tables.py), on synthetic checks."""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import outputs  # noqa: E402
import readme_tables  # noqa: E402
from outputs import Check, exit_code, fraction, judge  # noqa: E402


@pytest.mark.parametrize("lo, hi, verdict", [(1.01, 1.2, "pass"), (0.95, 1.1, "undecided"), (0.8, 0.99, "fail"),
                                             (1.0, 1.0, "pass"), (math.nan, math.nan, "undecided")])
def test_a_floor_passes_only_when_the_whole_interval_clears_it(lo, hi, verdict):
    assert judge(lo, hi, 1.0) == verdict


def test_a_ceiling_is_judged_the_other_way():
    assert judge(20, 24, 25, "ceiling") == "pass"
    assert judge(24, 27, 25, "ceiling") == "undecided"
    assert judge(26, 27, 25, "ceiling") == "fail"


def test_a_count_never_rounds_across_its_floor():
    assert fraction(36, 38, 95) == "36/38 (94.7%)"  # not "95%"
    assert fraction(9499, 10000, 95) == "9499/10000 (94.9%)"  # not "95.0%"
    assert fraction(19, 20, 95) == "19/20 (95.0%)"
    assert fraction(10, 38, 95) == "10/38 (26%)"


def test_unmeasured_and_unjudged_checks_are_counted_apart_never_as_passes():
    checks = [Check("a", value=1.2, lo=1.1, hi=1.3, bound=1.0), Check("b", measured=False, note="torch missing"),
              Check("c", value=0.5, lo=0.4, hi=0.6, bound=1.0, judged=False, note="sgemm does not scale")]
    assert [c.verdict for c in checks] == ["pass", "not measured", "not judged"]
    lines = outputs.summary_lines(checks)
    assert lines[0].startswith("summary: 1 pass, 0 undecided, 0 fail of 1 judged checks; 1 not judged, 1 not measured")
    assert any("torch missing" in line for line in lines) and any("sgemm does not scale" in line for line in lines)


def test_a_failed_floor_exits_1_unless_exploring():
    ok = Check("a", value=1.2, lo=1.1, hi=1.3, bound=1.0)
    undecided = Check("b", value=1.0, lo=0.9, hi=1.1, bound=1.0)
    bad = Check("c", value=0.5, lo=0.4, hi=0.6, bound=1.0)
    assert exit_code([ok, undecided]) == 0
    assert exit_code([ok, bad]) == 1 and exit_code([ok, bad], explore=True) == 0


def _write(tmp_path, script, checks):
    path = outputs.write_output("x", script, checks, "text", out=tmp_path / "x.json")
    return outputs.read_output(path)


def test_an_output_is_stale_once_its_script_changes(tmp_path, monkeypatch):
    script = tmp_path / "bench.py"
    script.write_text("print(1)\n")
    monkeypatch.setattr(outputs, "ROOT", tmp_path)
    monkeypatch.setattr(readme_tables, "ROOT", tmp_path)
    payload = _write(tmp_path, script, [Check("a", value=1.2, lo=1.1, hi=1.3, bound=1.0)])
    assert payload["provenance"]["script"] == "bench.py"
    assert readme_tables.stale(payload) is None
    script.write_text("print(2)\n")
    assert "changed since" in readme_tables.stale(payload)


def test_the_rendered_table_lists_every_check_that_did_not_pass_with_its_number(tmp_path, monkeypatch):
    script = tmp_path / "bench.py"
    script.write_text("")
    monkeypatch.setattr(outputs, "ROOT", tmp_path)
    checks = [Check("gemm", "1024", 1.2, 1.1, 1.3, 0.8), Check("gemm", "512", 0.7, 0.6, 0.75, 0.8),
              Check("peers", measured=False, note="no peer installed"),
              Check("share", value=36 / 38, lo=36 / 38, hi=36 / 38, bound=0.95, extra={"k": 36, "n": 38})]
    table = readme_tables.render(_write(tmp_path, script, checks))
    assert "| gemm (2 checks) | 0.7-1.2 (lowest CI bound 0.6) | >= 0.8 | **fail**: 1 pass, 0 undecided, 1 fail of 2 |" in table
    assert "| gemm | 512 | 0.7 [0.6, 0.75] | >= 0.8 | fail |" in table
    assert "| peers | - | no peer installed |  | not measured |" in table
    assert "36/38 (94.7%)" in table and "(95%)" not in table


def test_a_missed_scaling_check_lists_its_steps_with_their_share_and_speedup(tmp_path, monkeypatch):
    script = tmp_path / "bench.py"
    script.write_text("")
    monkeypatch.setattr(outputs, "ROOT", tmp_path)
    phases = {"pack": [0.125, 1.17], "gemm": [0.875, 1.87]}
    checks = [Check("3 threads", "im2col, big", 1.5, 1.4, 1.55, 1.6, extra={"phases": phases})]
    table = readme_tables.render(_write(tmp_path, script, checks))
    assert "| 3 threads | im2col, big | 1.5 [1.4, 1.55]; phases pack 12% 1.17x, gemm 88% 1.87x | >= 1.6 | fail |" in table


def test_an_output_is_stale_once_a_module_it_lists_changes(tmp_path, monkeypatch):
    script = tmp_path / "bench.py"
    script.write_text("")
    module = tmp_path / "bench_part.py"
    module.write_text("x = 1\n")
    monkeypatch.setattr(outputs, "ROOT", tmp_path)
    monkeypatch.setattr(readme_tables, "ROOT", tmp_path)
    digest = hashlib.sha256(module.read_bytes()).hexdigest()
    path = outputs.write_output("x", script, [], "text", data={"modules": {"bench_part.py": digest}},
                                out=tmp_path / "x.json")
    assert readme_tables.stale(outputs.read_output(path)) is None
    module.write_text("x = 2\n")
    assert "bench_part.py, a module of bench.py, changed" in readme_tables.stale(outputs.read_output(path))
    module.unlink()
    assert "changed" in readme_tables.stale(outputs.read_output(path))


def test_readme_tables_rewrites_only_the_marked_blocks(tmp_path, monkeypatch):
    script = tmp_path / "bench.py"
    script.write_text("")
    monkeypatch.setattr(outputs, "ROOT", tmp_path)
    monkeypatch.setattr(readme_tables, "ROOT", tmp_path)
    _write(tmp_path, script, [Check("gemm", "1024", 1.2, 1.1, 1.3, 0.8)])
    text = "intro\n<!-- table: x.json -->\nold numbers\n<!-- /table -->\nafter\n"
    new, problems = readme_tables.rendered(text)
    assert problems == [] and new.startswith("intro\n<!-- table: x.json -->\nMeasured on ")
    assert "old numbers" not in new and new.endswith("<!-- /table -->\nafter\n")
    assert json.loads((tmp_path / "x.json").read_text())["checks"][0]["verdict"] == "pass"


def test_repeatability_counts_a_case_outside_the_band_as_said_when_it_is_flagged_contended():
    import pandas as pd
    import repeatability

    def run(speedups, contended):
        n = len(speedups)
        return pd.DataFrame({"layer": [f"L{i}" for i in range(n)], "algorithm": "x", "layout": "nhwc",
                             "dtype": "float32", "threads": 1, "cache": "warm", "status": "ok", "baseline": "b",
                             "time_median_s": 1.0, "speedup_vs_baseline": speedups, "contended": contended,
                             "retaken": [3] * n})

    a = run([1.0, 1.0, 1.0, 1.0], [False] * 4)
    b = run([1.0, 1.5, 1.5, 1.05], [False, True, False, False])
    st = repeatability.agreement(a, b)
    assert st["speedups"] == 4 and st["speedup_within"] == 2 and st["speedup_within_or_flagged"] == 3
    assert st["contended_b"] == 1 and st["retaken_b"] == 12
