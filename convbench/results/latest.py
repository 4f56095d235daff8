"""``results/<config>/`` (a folder of timestamped runs) -> its newest run.

`convbench run` writes ``results/<config>/<timestamp>/``; a user naturally
types the config's folder. Commands that read one run take the newest run
in it (and say so) instead of refusing it as "not a results folder".
"""

from __future__ import annotations

from pathlib import Path


def runs_in(folder: str | Path) -> list[Path]:
    """Results folders (holding ``env.json``) directly inside ``folder``, oldest first.

    Timestamped names (``20261126-150000``, ``...-2`` for a second run in the
    same second) sort in time order; a run's name is its start time.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    runs = [p for p in folder.iterdir() if p.is_dir() and (p / "env.json").is_file()]
    return sorted(runs, key=lambda p: (p.name.split("-")[:2], len(p.name), p.name))


def newest_run(folder: str | Path) -> Path | None:
    """The newest run in ``folder`` if it is a folder of runs rather than a run; else ``None``."""
    folder = Path(folder)
    if (folder / "env.json").is_file():
        return None
    runs = runs_in(folder)
    return runs[-1] if runs else None
