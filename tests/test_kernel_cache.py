"""A cached kernel is recompiled when a file it calls into changes, not only its own.

Each case is a toy package of two files (a helper, and a cached kernel that calls
it) run in fresh processes: the first run compiles and caches, then the helper
changes and a second run says which code it got.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import convbench.kernels
from convbench.kernels._cache_guard import fingerprint

ROOT = Path(__file__).resolve().parents[1]


def _toy(root: Path, guarded: bool) -> Path:
    pkg = root / "toy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "import os\nfrom convbench.kernels._cache_guard import guard\nguard(os.path.dirname(__file__))\n"
        if guarded else "")
    (pkg / "helper.py").write_text(textwrap.dedent("""
        from numba import njit

        @njit
        def value():
            return 1
    """))
    (pkg / "kernel.py").write_text(textwrap.dedent("""
        from numba import njit
        from .helper import value

        @njit(cache=True)
        def kernel():
            return value()
    """))
    return pkg


def _value(root: Path) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(ROOT)]))
    env.pop("NUMBA_CACHE_DIR", None)  # the in-tree cache, beside the toy's files
    env.pop("NUMBA_DISABLE_JIT", None)
    proc = subprocess.run([sys.executable, "-c", "from toy.kernel import kernel; print(kernel())"],
                          check=False, env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip()


def _change_helper(pkg: Path) -> None:
    helper = pkg / "helper.py"
    helper.write_text(helper.read_text().replace("return 1", "return 22"))


@pytest.mark.parametrize("guarded, after", [(False, "1"), (True, "22")],
                         ids=["numba-alone-hands-back-stale-code", "guarded-recompiles"])
def test_a_change_to_a_called_file_reaches_the_cached_kernel_only_when_guarded(tmp_path, guarded, after):
    pkg = _toy(tmp_path, guarded)
    assert _value(tmp_path) == "1"
    assert list(pkg.glob("__pycache__/kernel.kernel-*.nbi"))  # the first run cached the kernel
    _change_helper(pkg)
    assert _value(tmp_path) == after


def test_the_kernels_package_guards_its_own_folder():
    from convbench.kernels import _cache_guard

    folder = os.path.realpath(os.path.dirname(convbench.kernels.__file__))
    assert _cache_guard._GUARDED[folder] == fingerprint(folder)
    assert any(name == "_intrinsics.py" for name, _, _ in _cache_guard._GUARDED[folder])


def test_the_fingerprint_changes_with_any_file_of_the_folder(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 1\n")
    before = fingerprint(tmp_path)
    (tmp_path / "b.py").write_text("y = 22\n")
    assert fingerprint(tmp_path) != before
