"""Test-session hooks: the ``extra`` marker (see ``extras.py``), and the BLAS split
every test runs under unless it forces another."""

from __future__ import annotations

import os

import pytest

# A machine where `convbench tune` chose BLAS's own threads (convbench.kernels.split_gemm)
# would otherwise run the tests that count the pool's blocks on another path than CI's
# untuned machine; the tests of the `blas` split force it.
os.environ.setdefault("CONVBENCH_BLAS_SPLIT", "blocks")

from extras import skip_or_fail_without_extras


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "extra(name, *modules): needs the optional extra NAME (see tests/extras.py)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    skip_or_fail_without_extras(item)
