"""The ``convbench`` command line: one module per command group, tables in :mod:`.render`.

A command parses its options (:mod:`.options`), calls the library, and
renders what it got back; it holds no program logic.
"""

from . import algorithms, analysis, importer, kernels, sweep  # noqa: F401  (each registers its commands on app)
from . import zoo  # noqa: F401  (convbench zoo)
from .app import app

__all__ = ["app"]
