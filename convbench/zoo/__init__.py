"""The zoo: nine real CNN architectures from the ``onnx`` wheel, measured as one sweep, judged as networks.

:mod:`.networks` finds the graphs in the installed ``onnx`` package (no
download) and picks some by name; :mod:`.build` imports them and merges
their convolutions into one sweep in which a shape shared by several
networks is measured once and credited to each (the rows' ``network``
column: ``zoo:NETWORK=OCCURRENCES,...``). ``convbench zoo``
(:mod:`convbench.cli.zoo`) writes that sweep as a config and runs it
through ``convbench run``; :mod:`convbench.analysis.zoo` turns the rows into
per-network totals and the gain of choosing per layer, and
:mod:`convbench.analysis.zoo_classes` into per-class verdicts.
"""

from .build import (
    CONFIG_NAME, CREDIT_PREFIX, DEFAULT_LAYOUTS, QUICK_ALGORITHMS, QUICK_MEMORY_LIMIT, NetworkInfo, Zoo, ZooLayer, build_zoo,
    default_algorithms, format_credits, parse_credits, zoo_class,
)
from .networks import NETWORKS, Network, ZooError, models_folder, pick_networks, title_of

#: The file beside a zoo run's results that keeps each network's layers (:meth:`Zoo.manifest`).
MANIFEST_FILE = "zoo.json"

__all__ = [
    "CONFIG_NAME", "CREDIT_PREFIX", "DEFAULT_LAYOUTS", "MANIFEST_FILE", "NETWORKS", "QUICK_ALGORITHMS", "QUICK_MEMORY_LIMIT",
    "Network",
    "NetworkInfo", "Zoo", "ZooError", "ZooLayer", "build_zoo", "default_algorithms", "format_credits",
    "models_folder", "parse_credits", "pick_networks", "title_of", "zoo_class",
]
