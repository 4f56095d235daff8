"""Combining repetitions into a case's row: per-round speedups, pooled CIs, status."""

import math

import numpy as np
import pytest

from convbench.sweep.repeats import combine, repetition_drift

REF_FLOPS = 1e6


def _group(speeds, ratio=2.0, rounds=20, noise=0.01, seed=0, statuses=None):
    """Baseline 'b' and algorithm 'x' (``ratio`` times faster), one repetition per
    entry of ``speeds`` (the machine's speed factor during it)."""
    rng = np.random.default_rng(seed)
    rows, samples = [], []
    for rep, speed in enumerate(speeds):
        for alg, t in (("b", 1e-3), ("x", 1e-3 / ratio)):
            cid = f"L|nhwc|float32|t1|{alg}"
            status = (statuses or {}).get((rep, alg), "ok")
            rows.append({"case_id": cid, "algorithm": alg, "repetition": rep, "status": status,
                         "reason": "" if status == "ok" else "boom", "flops": 2e6, "max_rel_err": 1e-6 * (rep + 1),
                         "pinned_cpu": rep % 2, "ref_drift": 0.01 * rep})
            for k in range(rounds):
                drift = 1 + 0.3 * math.sin(k)  # the machine moves from round to round...
                ref = 1e-4 * drift / speed
                samples.append({"case_id": cid, "repetition": rep, "round": k,
                                "time_s": t * drift / speed * (1 + noise * rng.standard_normal()),
                                "ref_time_s": ref})
    return rows, samples


def test_speedup_is_the_per_round_ratio_so_drift_cancels():
    rows, samples = _group([1.0, 0.5, 0.8], ratio=2.0)
    b, x = combine(rows, samples, "b", REF_FLOPS)
    # ...and between repetitions, so times disagree, but each round's ratio is 2
    assert x["rep_spread"] > 0.5
    assert x["speedup_vs_baseline"] == pytest.approx(2.0, rel=0.02)
    assert x["speedup_ci_low"] <= 2.0 <= x["speedup_ci_high"] and x["speedup_ci_high"] - x["speedup_ci_low"] < 0.1
    assert b["speedup_vs_baseline"] == pytest.approx(1.0)
    # the time's CI carries the spread between repetitions
    assert x["time_ci_high_s"] / x["time_ci_low_s"] > 1.5


def test_normalised_time_divides_out_the_reference_kernel():
    rows_a, samples_a = _group([1.0, 1.0, 1.0], seed=1)
    rows_b, samples_b = _group([0.5, 0.5, 0.5], seed=2)
    xa = combine(rows_a, samples_a, "b", REF_FLOPS)[1]
    xb = combine(rows_b, samples_b, "b", REF_FLOPS)[1]
    assert xb["time_median_s"] / xa["time_median_s"] == pytest.approx(2.0, rel=0.05)
    assert xb["time_norm_median"] / xa["time_norm_median"] == pytest.approx(1.0, rel=0.03)
    assert xb["ref_gflops"] == pytest.approx(xa["ref_gflops"] / 2, rel=0.05)


def test_rows_keep_what_every_repetition_says():
    rows, samples = _group([1.0, 1.0, 1.0])
    b, x = combine(rows, samples, "b", REF_FLOPS)
    assert x["n_repetitions"] == 3 and x["reps_agree"] == 3
    assert x["max_rel_err"] == pytest.approx(3e-6)
    assert x["pinned_cpus"] == "0,1"
    assert x["ref_drift"] == pytest.approx(0.02)
    assert x["gflops"] == pytest.approx(2e6 / x["time_median_s"] / 1e9)
    assert "repetition" not in x


def test_a_case_is_ok_only_if_every_repetition_was():
    rows, samples = _group([1.0, 1.0, 1.0], statuses={(1, "x"): "failed"})
    b, x = combine(rows, samples, "b", REF_FLOPS)
    assert x["status"] == "failed" and x["reason"] == "repetition 2 of 3: boom"
    assert math.isnan(x.get("speedup_vs_baseline", math.nan))


def test_no_speedup_without_an_ok_baseline():
    rows, samples = _group([1.0, 1.0], statuses={(0, "b"): "crashed"})
    b, x = combine(rows, samples, "b", REF_FLOPS)
    assert b["status"] == "crashed" and x["status"] == "ok"
    assert "speedup_vs_baseline" not in x


def test_drift_of_one_repetition_reads_the_reference_round_by_round():
    samples = [{"round": k, "ref_time_s": 1.0 if k < 5 else 1.3, "case_id": c}
               for k in range(10) for c in ("a", "b")]
    assert repetition_drift(samples) == pytest.approx(0.3)
