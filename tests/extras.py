"""Optional extras the tests need, and the marker that says so.

A test that needs an optional extra is marked ``@needs_extra("dask")``
(or ``needs_extra("peers", "torch")`` for one of the extra's packages).
Where the extra is missing the test is skipped with a reason that names
the install command; with ``CONVBENCH_REQUIRE_EXTRAS=1`` (CI's extras
run) it fails instead, so a missing extra cannot hide behind a skip.
``python -m pytest -m extra`` runs just these tests.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

#: extra -> (the modules it provides, how to install it)
EXTRAS: dict[str, tuple[tuple[str, ...], str]] = {
    "peers": (("torch", "onnx", "onnxruntime"), 'pip install -e ".[peers]"'),
    "dask": (("dask", "distributed"), 'pip install -e ".[dask]"'),
    "slurm": (("submitit",), 'pip install -e ".[slurm]"'),
    "parquet": (("pyarrow",), 'pip install -e ".[parquet]"'),
    "example-plugin": (("convbench_scipy_correlate",),
                       "pip install -e examples/plugins/convbench-scipy-correlate"),
    "browser": (("selenium",), 'apt-get install chromium chromium-driver; pip install -e ".[browser]"'),
}
#: extra -> programs it needs besides its modules (Debian's paths: nothing downloads a browser of its own)
PROGRAMS: dict[str, tuple[str, ...]] = {"browser": ("/usr/bin/chromium", "/usr/bin/chromedriver")}
REQUIRE_ENV = "CONVBENCH_REQUIRE_EXTRAS"


def needs_extra(extra: str, *modules: str) -> pytest.MarkDecorator:
    """Mark a test (or a module, as ``pytestmark``) as needing ``extra``
    (only ``modules`` of it, if given)."""
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    return pytest.mark.extra(extra, *modules)


def missing(extra: str, modules: tuple[str, ...] = ()) -> list[str]:
    """The modules of ``extra`` (or just ``modules``) that cannot be imported here."""
    wanted = modules or EXTRAS[extra][0]
    absent = [m for m in wanted if importlib.util.find_spec(m) is None]
    return absent + [p for p in PROGRAMS.get(extra, ()) if not os.access(p, os.X_OK)]


def have(extra: str, *modules: str) -> bool:
    """Whether ``extra`` (or its ``modules``) is installed."""
    return not missing(extra, modules)


def skip_or_fail_without_extras(item: pytest.Item) -> None:
    """Skip (or, under ``CONVBENCH_REQUIRE_EXTRAS=1``, fail) ``item`` if an extra it needs is missing."""
    for mark in item.iter_markers("extra"):
        extra, modules = mark.args[0], tuple(mark.args[1:])
        absent = missing(extra, modules)
        if absent:
            why = (f"needs the '{extra}' extra ({', '.join(absent)} not installed): "
                   f"{EXTRAS[extra][1]}")
            if os.environ.get(REQUIRE_ENV) == "1":
                pytest.fail(f"{REQUIRE_ENV}=1 but this test {why}", pytrace=False)
            pytest.skip(why)
