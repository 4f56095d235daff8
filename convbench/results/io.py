"""Results folders: writing row by row, reading back, resuming (the columns: :mod:`.schema`).

A results folder holds::

    summary.csv      one row per case (SUMMARY_COLUMNS, in that order)
    repetitions.csv  one row per case and repetition (REPETITION_COLUMNS)
    samples.csv      one row per timed sample (SAMPLE_COLUMNS)
    env.json      the machine, libraries, calibration, seed, times, schema_version
    config.yaml   the config as run, every layer explicit

CSV rows are appended, flushed and fsynced as each repetition of a group
of cases (one layer variant at one thread count) finishes, samples before
their repetition rows, and a case's summary row after its last
repetition, so a run killed at any moment keeps every finished repetition. A torn last
line (a kill in the middle of a write) is dropped with a warning when the
folder is read or resumed. A folder is never overwritten; ``convbench run
--resume DIR`` appends the missing cases to it (:mod:`.resume`).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

from .integrity import SAMPLE_KEY_COLUMNS, check_integrity
from .schema import (
    LOCK_FILE, PHASE_COLUMNS, REPETITION_COLUMNS, SAMPLE_COLUMNS, SCHEMA_VERSION, STATUSES, SUMMARY_COLUMNS, added_since, check_rows,
)
from .errors import FolderNotEmpty, ResultsError  # defined apart (the lock raises it too); imported from here as before
from .tables import csv_text, read_csv, read_table  # noqa: F401  (csv_text, read_csv: resume reads through io)

# -- writing -------------------------------------------------------------------


def timestamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def default_out_dir(config_name: str, root: str | Path = "results") -> Path:
    """``results/<config name>/<timestamp>/``, made unique if it already exists."""
    base = Path(root) / config_name / timestamp()
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def _cell(value: Any) -> Any:
    """A CSV cell: empty for missing, floats exact (numpy scalars as plain Python numbers)."""
    if value is None:
        return ""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # a numpy scalar
        value = value.item()
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


def check_new_dir(out_dir: str | Path | None) -> None:
    """Raise :class:`ResultsError` unless ``out_dir`` is an empty folder or can be created."""
    if out_dir is None:
        return
    path = Path(out_dir)
    if path.exists():
        if not path.is_dir():
            raise ResultsError(f"{path} exists and is not a folder; choose another results folder")
        if any(p.name != LOCK_FILE for p in path.iterdir()):  # a lock file alone: a run that never wrote
            raise FolderNotEmpty(
                f"{path} already exists and is not empty; results are never overwritten. "
                "Choose another results folder (or none, for results/<config>/<timestamp>/), "
                "or resume the interrupted run it holds"
            )
    check_writable(path)


def check_writable(path: Path) -> None:
    """Raise :class:`ResultsError` if ``path`` (or its nearest existing parent) cannot be written."""
    probe = path.absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ResultsError(f"cannot create {path}: {probe} is a file, not a folder; choose another results folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ResultsError(f"cannot create {path}: the folder {probe} is not writable; choose another results folder")


class ResultsWriter:
    """Creates a results folder and appends rows to its CSVs (flushed and fsynced per call).

    ``resume=True`` appends to an existing folder instead (after
    :func:`open_resume` has checked and repaired it). One writer per folder:
    the caller holds the folder's :class:`~convbench.results.lock.FolderLock`
    (a run, a merge), taken before it looks at what the folder holds.
    """

    def __init__(self, out_dir: str | Path, resume: bool = False):
        self.dir = Path(out_dir)
        if not resume:
            check_new_dir(self.dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            mode = "a" if resume else "w"
            self._summary = open(self.dir / "summary.csv", mode, newline="")
            self._samples = open(self.dir / "samples.csv", mode, newline="")
            self._reps = open(self.dir / "repetitions.csv", mode, newline="")
            # appended to even on resume: a folder from before phases.csv gets one with its header
            self._phases = open(self.dir / "phases.csv", "a" if resume else "w", newline="")
        except OSError as exc:
            raise ResultsError(f"cannot write to {self.dir}: {exc.strerror or exc}") from None
        self._sw = csv.DictWriter(self._summary, SUMMARY_COLUMNS)
        self._pw = csv.DictWriter(self._samples, SAMPLE_COLUMNS)
        self._rw = csv.DictWriter(self._reps, REPETITION_COLUMNS)
        self._phw = csv.DictWriter(self._phases, PHASE_COLUMNS)
        if not resume:
            self._sw.writeheader()
            self._pw.writeheader()
            self._rw.writeheader()
        if self._phases.tell() == 0:
            self._phw.writeheader()
        self._flush(self._summary, self._samples, self._reps, self._phases)

    @staticmethod
    def _flush(*files: Any) -> None:
        for f in files:
            f.flush()
            os.fsync(f.fileno())

    def append(self, rows: Iterable[Mapping[str, Any]], samples: Iterable[Mapping[str, Any]] = ()) -> None:
        """Samples first, then the summary rows, each file flushed and fsynced:
        a summary row on disk always has its samples on disk. A row with a
        missing or unknown column is a :class:`~.schema.SchemaError` (nothing is written)."""
        self._write_pair(rows, samples, self._sw, self._summary, SUMMARY_COLUMNS, "summary.csv")

    def append_repetition(self, rows: Iterable[Mapping[str, Any]], samples: Iterable[Mapping[str, Any]]) -> None:
        """One repetition of a group: its samples, then its rows (``repetitions.csv``), each fsynced."""
        self._write_pair(rows, samples, self._rw, self._reps, REPETITION_COLUMNS, "repetitions.csv")

    def append_phases(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """``phases.csv`` rows (see :mod:`convbench.sweep.phasing`), fsynced."""
        rows = list(rows)
        check_rows(rows, PHASE_COLUMNS, "phases.csv")
        for row in rows:
            self._phw.writerow({k: _cell(row.get(k)) for k in PHASE_COLUMNS})
        self._flush(self._phases)

    def _write_pair(self, rows: Iterable[Mapping[str, Any]], samples: Iterable[Mapping[str, Any]],
                    writer: Any, file: Any, columns: list[str], name: str) -> None:
        """Check every row first (nothing is written on a schema error), then the
        samples and the rows, each file fsynced, samples before their rows."""
        rows, samples = list(rows), list(samples)
        check_rows(samples, SAMPLE_COLUMNS, "samples.csv")
        check_rows(rows, columns, name)
        for s in samples:
            self._pw.writerow({k: _cell(s.get(k)) for k in SAMPLE_COLUMNS})
        self._flush(self._samples)
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})
        self._flush(file)

    def write_env(self, env: Mapping[str, Any]) -> None:
        write_json(self.dir / "env.json", {"schema_version": SCHEMA_VERSION, **env})

    def write_config(self, text: str) -> None:
        write_text_atomic(self.dir / "config.yaml", text)

    def close(self) -> None:
        self._summary.close()
        self._samples.close()
        self._reps.close()
        self._phases.close()

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file, fsync it, then rename it over ``path``."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


# -- reading -------------------------------------------------------------------


@dataclass
class Results:
    """A results folder read back: DataFrames for the CSVs, dicts for the rest."""

    path: Path
    summary: Any  # pandas.DataFrame
    samples: Any  # pandas.DataFrame
    env: dict[str, Any]
    config: dict[str, Any]


def read_env(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    env_path = folder / "env.json"
    if not folder.is_dir():
        raise ResultsError(f"{folder}: no such results folder")
    if not env_path.is_file():
        raise ResultsError(
            f"{folder} is not a convbench results folder (no env.json); "
            "give a folder written by `convbench run`"
        )
    try:
        env = json.loads(env_path.read_text())
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{env_path}: not valid JSON ({exc})") from None
    version = env.get("schema_version")
    if not isinstance(version, int):
        raise ResultsError(f"{env_path}: no schema_version; not written by convbench run")
    if version > SCHEMA_VERSION:
        raise ResultsError(
            f"{folder} uses results schema {version}, newer than this convbench reads "
            f"({SCHEMA_VERSION}); upgrade convbench"
        )
    return env


def read_phases(folder: str | Path) -> Any:
    """``phases.csv`` of a results folder as a DataFrame (empty, with the columns,
    for a folder from before phases were timed or a run with ``--no-phases``)."""
    import pandas as pd

    path = Path(folder) / "phases.csv"
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in PHASE_COLUMNS})
    return read_csv(path, PHASE_COLUMNS)


#: The sample columns the analysis commands (plot, report) need.
ANALYSIS_SAMPLE_COLUMNS = ["case_id", "time_s"]


def read_results(folder: str | Path, *, samples: bool | Sequence[str] = True) -> Results:
    """Read a results folder, checking its schema version and columns.

    ``samples``: ``True`` reads every sample column, ``False`` none (an empty
    frame, for commands that need only the summary; the summary and
    repetitions are still checked), a list of column names only those (plus
    ``case_id``, and ``machine`` in a merged folder), with string keys as
    categoricals. Each table is read from ``<name>.parquet`` when ``convbench convert`` wrote an
    up-to-date one (:mod:`.tables`), else from ``<name>.csv``.
    """
    import pandas as pd

    folder, samples_arg = Path(folder), samples
    env = read_env(folder)

    def added(name: str) -> list[str]:
        return added_since(name, env["schema_version"])

    summary = read_table(folder, "summary", SUMMARY_COLUMNS, added("summary.csv"))
    for col in ("reason", "layer_class", "network", "description", "implementation", "memory_method", "machine"):
        if col in summary.columns:
            summary[col] = summary[col].astype(object).where(summary[col].notna(), "").astype(str)
    frames = {"summary.csv": summary}
    if samples is False:  # a command of the summary only: what it does not read cannot mislead it
        frames["samples.csv"] = pd.DataFrame({c: pd.Series(dtype=float if c == "time_s" else object)
                                              for c in SAMPLE_COLUMNS})
    elif samples is True:
        frames["samples.csv"] = read_table(folder, "samples", SAMPLE_COLUMNS, added("samples.csv"))
    else:  # the keys too: a reader of samples refuses stray or doubled ones (integrity)
        cols = list(dict.fromkeys([*SAMPLE_KEY_COLUMNS, *samples]))
        keys = [c for c in cols if c in ("case_id", "layer", "algorithm", "layout", "dtype")]
        frames["samples.csv"] = read_table(folder, "samples", SAMPLE_COLUMNS, added("samples.csv"), usecols=cols,
                                           categorical=keys)
    # rows are written as groups finish, in the run's shuffled schedule; read them in sweep order
    summary = frames["summary.csv"].sort_values("case_index", kind="stable").reset_index(drop=True)
    samples = frames["samples.csv"]
    bad = sorted(set(summary["status"].dropna().astype(str)) - set(STATUSES))
    if bad:
        raise ResultsError(
            f"{folder / 'summary.csv'} has unknown status value(s) {', '.join(map(repr, bad))}; "
            f"a status is one of {', '.join(STATUSES)}"
        )
    reps_path = folder / "repetitions.csv"  # a schema-1 folder has none
    reps = read_csv(reps_path, ["case_id", "repetition"]) if reps_path.is_file() else None
    samples = check_integrity(folder, summary, samples, reps)  # duplicates refused; unfinished cases' samples set aside
    if samples_arg is not True and samples_arg is not False:  # the keys were read for the check; keep what was asked
        asked = ["machine", *dict.fromkeys(["case_id", *samples_arg])]
        samples = samples[[c for c in asked if c in samples.columns]]
    config_path = folder / "config.yaml"
    try:
        # the C safe loader where libyaml is there: as safe (no tags run code), ten times faster
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        config = yaml.load(config_path.read_text(), Loader=loader) if config_path.is_file() else {}
    except yaml.YAMLError as exc:
        raise ResultsError(f"{config_path}: not valid YAML ({exc})") from None
    return Results(folder, summary, samples, env, config or {})
