"""What a non-editable ``pip install .`` gets: the configs travel with the package.

The wheel is built from a copy of the sources (so the checkout gets no
``build/`` or ``*.egg-info``), without build isolation (no network), and
only its file list is checked: a few seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from convbench.config import find_config, load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIG_NAMES = sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory) -> set[str]:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "*.pyc")
    shutil.copytree(ROOT / "configs", src / "configs", ignore=ignore)
    shutil.copytree(ROOT / "convbench", src / "convbench", ignore=ignore)
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(dist), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    if proc.returncode != 0 and "No module named pip" in proc.stderr:
        pytest.skip("pip is not installed in this environment")
    assert proc.returncode == 0, proc.stderr
    (wheel,) = dist.glob("convbench-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_the_wheel_ships_every_config_and_the_default_sweep(wheel_files):
    assert CONFIG_NAMES, "no configs/*.yaml in the checkout"
    for name in CONFIG_NAMES:
        assert f"convbench/configs/{name}" in wheel_files
    assert "convbench/data/default.yaml" in wheel_files
    assert "convbench/cli/render.py" in wheel_files


def test_a_config_name_is_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./configs here
    for name in CONFIG_NAMES:
        stem = name.removesuffix(".yaml")
        assert find_config(stem).name == name
    assert load_config("smoke").name == "smoke"


def test_config_paths_still_work(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert find_config("configs/smoke.yaml") == Path("configs/smoke.yaml")


def test_the_installed_copy_is_searched(tmp_path, monkeypatch):
    # A site-packages install has no ./configs and no checkout above the package,
    # only convbench/configs/ inside it: a name found only there must resolve.
    from convbench.config import load as schema

    shipped = tmp_path / "pkg" / "configs"
    shipped.mkdir(parents=True)
    shutil.copy(ROOT / "configs" / "smoke.yaml", shipped / "only_shipped.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(schema, "_installed_configs", lambda: shipped)
    assert find_config("only_shipped") == shipped / "only_shipped.yaml"
