"""convbench: benchmark convolution algorithms against each other, honestly.

The public surface::

    spec = convbench.ConvSpec(batch=1, in_channels=64, out_channels=64,
                              height=56, width=56, kernel=3, padding=1,
                              layout="nhwc")
    algo = convbench.get_algorithm("indirect")
    conv = algo.prepare(spec, weight)   # weight OIHW
    y = conv(x)                          # x, y in spec.layout
    err = convbench.relative_error(y, convbench.reference(spec, x, weight))
"""

from .algorithm import Algorithm
from .reference import reference, relative_error
from .registry import PluginError, get_algorithm, list_algorithms, load_plugin, register
from .spec import ConvSpec

__version__ = "0.1.0"

__all__ = [
    "Algorithm",
    "ConvSpec",
    "PluginError",
    "get_algorithm",
    "list_algorithms",
    "load_plugin",
    "reference",
    "register",
    "relative_error",
    "__version__",
]
