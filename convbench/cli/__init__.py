"""The ``convbench`` command line (``convbench.cli:app``)."""

from .commands import app

__all__ = ["app"]
