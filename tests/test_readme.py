"""The README says what the repository does: its first commands work as
written, and its speed table says what the checked-in benchmark output says."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_first_block_installs_the_test_extra_before_running_the_tests():
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    install = next(i for i, c in enumerate(commands) if c.startswith("pip install"))
    tests = next(i for i, c in enumerate(commands) if "pytest" in c)
    assert install < tests
    assert '".[test]"' in commands[install] or "'.[test]'" in commands[install]
    from convbench.config import find_config

    for c in commands:  # a config named in the first block exists
        if c.startswith("convbench run "):
            assert find_config(c.split()[2]).is_file()


#: README speed-table rows (by their first words) -> the benchmark checks they summarise.
ROWS = {
    "numba GEMM / OpenBLAS sgemm": ["gemm numba/BLAS >=0.6x"],
    "indirect / im2col-numba, 3x3 s1": ["indirect/im2col-numba >=1.15"],
    "indirect / im2col (BLAS), same layers": ["indirect/im2col(BLAS) >=0.8"],
    "winograd / im2col (BLAS)": ["winograd/im2col(BLAS) >=1.2"],
    "indirect / im2col-numba, 1x1 stride 1": ["1x1 s1 indirect/im2col-numba >=0.9"],
    "indirect / im2col-numba, 1x1 stride 2": ["1x1 s2 indirect/im2col-numba >=1.0"],
    "best convbench / torch conv2d": ["best/torch geomean >=0.9"],
    "depthwise MobileNet v1 layers": ["depthwise >=5 GFLOP/s"],
    "naive, 3x3": ["naive 3x3 >=2 GFLOP/s"],
    "2 threads / 1 thread": ["2 threads/1 thread >=1.7x"],
    "compile every kernel": ["cold: compile every kernel <=20 s"],
    "first result with a warm cache": ["warm cache: first result <=2 s"],
}


def _benchmark_judgements() -> dict[str, Counter]:
    """Per check of the file the README cites: pass / undecided / below, judged on the CI."""
    name = re.search(r"benchmarks/results/(kernels-[\w.-]+\.txt)", README).group(1)
    out: dict[str, Counter] = {}
    for line in (ROOT / "benchmarks" / "results" / name).read_text().splitlines():
        m = re.match(r"^(.*?)\s{2,}.*\s(\S+)\s+\[\s*([\d.]+),\s*([\d.]+)\]\s+([\d.]+)\s+(yes|NO)\s*$", line)
        if not m:
            continue
        check, lo, hi, bound = m.group(1).strip(), float(m.group(3)), float(m.group(4)), float(m.group(5))
        ceiling = "<=" in check  # seconds: a ceiling, not a floor
        if ceiling:
            verdict = "pass" if hi <= bound else ("below" if lo > bound else "undecided")
        else:
            verdict = "pass" if lo >= bound else ("below" if hi < bound else "undecided")
        for key in ROWS.values():
            for prefix in key:
                if check.startswith(prefix):
                    out.setdefault(prefix, Counter())[verdict] += 1
    return out


def test_speed_table_pass_fail_is_what_the_benchmark_output_says_on_the_ci():
    judged = _benchmark_judgements()
    table = [line for line in README.splitlines() if line.startswith("| ") and "judged on the CI" not in line]
    seen = 0
    for first_words, checks in ROWS.items():
        row = next((line for line in table if line.startswith(f"| {first_words}")), None)
        assert row is not None, f"no README speed row starting {first_words!r}"
        cell = [c.strip() for c in row.strip().strip("|").split("|")][-1]
        counts = sum((judged[c] for c in checks), Counter())
        n = sum(counts.values())
        assert n, checks
        if counts["pass"] == n:
            expected = f"pass ({n}/{n})"
        else:
            expected = f"**fail** ({counts['pass']}/{n} pass, {counts['undecided']} undecided, {counts['below']} below)"
        assert cell == expected, (first_words, cell, expected)
        seen += 1
    assert seen == len(ROWS)
