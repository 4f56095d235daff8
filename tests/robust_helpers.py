"""Shared by the robustness tests (test_faults.py, test_durability.py): the fault plugin and CLI helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from convbench.cli import app
from convbench.registry import unregister

FAULTY = str(Path(__file__).resolve().parent / "plugins" / "faulty.py")
cli = CliRunner()
FAST_TIMING = "timing: {min_samples: 3, min_time_s: 0.0, max_time_s: 0.2, target_ci: null, min_sample_time_s: 0.0, repeat: 2}\n"


@pytest.fixture(scope="module")
def forget_the_faults():
    """The fault plugin is loaded into this process by several tests; later test
    files (sweeps with ``algorithms: all``) must not see it."""
    yield
    from convbench import registry

    for name in [n for n in registry.list_algorithms() if n.startswith("fault-")]:
        unregister(name)
    registry._LOADED.discard(FAULTY)


def _invoke(*args: str):
    return cli.invoke(app, list(args), env={"COLUMNS": "200"})


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _one_line(output: str) -> str:
    return " ".join(output.split())


