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


_RUN_AND_COUNT_MISSES = """
import gc, json
import convbench
from numba.core.dispatcher import Dispatcher

for name, groups in (("direct-blocked", 1), ("im2col-numba", 4)):  # closures of jitted functions
    spec = convbench.ConvSpec(batch=1, in_channels=4, out_channels=4, height=5, width=5, kernel=3,
                              padding=1, groups=groups, layout="nhwc")
    x, w = spec.random_inputs(0)
    convbench.get_algorithm(name).prepare(spec, w)(x)
kernels = [d for d in gc.get_objects() if isinstance(d, Dispatcher)
           and d.py_func.__module__.startswith("convbench.kernels") and d._cache.__class__.__name__ != "NullCache"]
print(json.dumps({d.py_func.__qualname__: sum(d.stats.cache_misses.values()) for d in kernels}))
"""


def test_a_second_process_finds_every_kernel_in_the_cache_closures_of_jitted_functions_too(tmp_path):
    """numba keys a closure by its pickled cells, and a jitted function pickles with an id new
    in every process: direct-blocked's jobs kernel and the depthwise band kernel compiled again
    in every process until the guard keyed them by name and code."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("NUMBA_DISABLE_JIT", None)
    runs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", _RUN_AND_COUNT_MISSES], env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        runs.append(__import__("json").loads(proc.stdout.strip().splitlines()[-1]))
    first, second = runs
    for factory in ("_build.<locals>.direct_blocked_jobs", "_banded.<locals>.banded_jobs"):
        assert sum(n for name, n in first.items() if name.startswith(factory)) > 0
    assert {name: n for name, n in second.items() if n} == {}


def test_kernels_a_factory_builds_for_different_values_bear_different_names():
    """numba names compiled code by qualified name and a counter of the process; with the cache
    the counters come from different processes, so two kernels of one factory named alike could
    share a symbol and one run the other's code (under two test workers, direct-blocked's
    one-pixel tile ran in place of its five-pixel one). Each set of values names its own."""
    from convbench.kernels import depthwise, direct_blocked, gemm, winograd_tiled

    built = [(direct_blocked._build_tile(5, 1, 32, 8), direct_blocked._build_tile(1, 1, 32, 8)),
             (direct_blocked._compiled(5, 1, 32, 8), direct_blocked._compiled(3, 2, 32, 0)),
             (depthwise._compiled(4, 2, 32), depthwise._compiled(2, 1, 16)),
             (gemm._compiled(5, 2, 32), gemm._compiled(4, 2, 32)),
             (winograd_tiled._compiled(4, "float32", 32)[0], winograd_tiled._compiled(6, "float32", 32)[0])]
    for one, other in built:
        assert one.py_func.__qualname__ != other.py_func.__qualname__
    assert direct_blocked._build_tile(5, 1, 32, 8).py_func.__qualname__.endswith("tile_5_1_32_8")
