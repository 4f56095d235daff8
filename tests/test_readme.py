"""The README says what the repository does: its first commands are the ones CI
runs, and every result table in it is rendered from a checked-in output of the
current version of the benchmark that measured it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
sys.path.insert(0, str(ROOT / "benchmarks"))
import readme_tables  # noqa: E402


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


def test_ci_runs_the_readme_install_line_and_test_command_as_written():
    ci = (ROOT / ".ci" / "run").read_text()
    proc = subprocess.run(["bash", "-c", f"cd {ROOT}; source <(sed -n '/^readme_line()/,/^}}/p' .ci/run); "
                          "readme_line 'pip install'; readme_line 'python -m pytest'"],
                          capture_output=True, text=True, check=True)
    install, tests = proc.stdout.splitlines()
    assert install == 'pip install -e ".[test]"' and tests == "python -m pytest -q -n auto"
    assert 'eval "python -m $install' in ci and 'eval "$tests"' in ci
    assert "CONVBENCH_REQUIRE_EXTRAS=1 python -m pytest -q -n auto -m extra" in ci


def test_every_readme_table_is_rendered_from_a_current_benchmark_output():
    new, problems = readme_tables.rendered(README)
    assert not problems, problems
    assert new == README, "README.md's tables differ from their outputs: run python benchmarks/readme_tables.py"


def test_readme_cites_only_outputs_that_exist_and_carry_their_provenance():
    cited = set(re.findall(r"benchmarks/results/([\w.-]+)", README))
    assert cited, "README cites no benchmark output"
    for name in cited:
        path = ROOT / "benchmarks" / "results" / name
        assert path.is_file(), name
        assert name.endswith(".json"), f"{name}: an output without provenance (commit, script hash)"
        prov = json.loads(path.read_text())["provenance"]
        assert prov["commit"] and prov["script_sha256"] and prov["cpu"], name
