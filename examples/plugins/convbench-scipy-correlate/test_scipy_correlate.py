"""The plugin's own test: convbench's conformance battery in one line."""

from convbench.testing import parametrize_conformance


@parametrize_conformance("scipy-correlate")
def test_conformance(algorithm, spec, check):
    check(algorithm, spec)
