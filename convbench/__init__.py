"""convbench: benchmark convolution algorithms against each other, honestly.

The public surface, for a notebook or a plugin::

    spec = convbench.ConvSpec(batch=1, in_channels=64, out_channels=64,
                              height=56, width=56, kernel=3, padding=1,
                              layout="nhwc")
    algo = convbench.get_algorithm("indirect")
    conv = algo.prepare(spec, weight)   # weight OIHW
    y = conv(x)                          # x, y in spec.layout
    err = convbench.relative_error(y, convbench.reference(spec, x, weight))

    plan = convbench.plan(convbench.load_config("mobilenet"), threads=[1])
    outcome = convbench.run(plan, "results/mine")
    results = convbench.read_results(outcome.out_dir)   # DataFrames + env

A plugin subclasses :class:`Algorithm`, decorates it with :func:`register`,
and wraps a one-layout call with :func:`adapt`; a call split into named
steps (:func:`phased`) has each step timed too (``phases.csv``). ``docs/architecture.md``
says where each idea lives.
"""

from importlib import import_module
from typing import Any

from ._version import __version__
from .algorithm import Algorithm
from .layouts import adapt
from .phases import PHASES, PhasedCall, phased
from .reference import reference, relative_error
from .registry import PluginError, get_algorithm, list_algorithms, load_plugin, register
from .spec import ConvSpec

#: Loaded on first use, so that a plugin's ``import convbench`` (and the
#: worker's) does not pull in pydantic, YAML and the sweep machinery.
_LAZY = {
    "load_config": "convbench.config.load",
    "plan": "convbench.sweep.plan",
    "run": "convbench.sweep.session",
    "read_results": "convbench.results.io",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'convbench' has no attribute {name!r}")

__all__ = [
    "Algorithm",
    "PHASES",
    "PhasedCall",
    "ConvSpec",
    "PluginError",
    "adapt",
    "get_algorithm",
    "list_algorithms",
    "load_config",
    "load_plugin",
    "phased",
    "plan",
    "read_results",
    "reference",
    "register",
    "relative_error",
    "run",
    "__version__",
]
