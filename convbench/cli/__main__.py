"""``python -m convbench.cli``."""

from . import app

app()
