"""Test-session hooks: the ``extra`` marker (see ``extras.py``)."""

from __future__ import annotations

import pytest

from extras import skip_or_fail_without_extras


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "extra(name, *modules): needs the optional extra NAME (see tests/extras.py)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    skip_or_fail_without_extras(item)
