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
--resume DIR`` appends the missing cases to it (:func:`open_resume`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from .schema import (
    ADDED_IN_2, REPETITION_COLUMNS, SAMPLE_COLUMNS, SCHEMA_VERSION, STATUSES, SUMMARY_COLUMNS, check_rows,
)

class ResultsError(Exception):
    """A results folder cannot be written or read; the message says why."""


class FolderNotEmpty(ResultsError):
    """The folder to write already holds something (perhaps a run to resume)."""


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
        if any(path.iterdir()):
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
    :func:`open_resume` has checked and repaired it).
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
        except OSError as exc:
            raise ResultsError(f"cannot write to {self.dir}: {exc.strerror or exc}") from None
        self._sw = csv.DictWriter(self._summary, SUMMARY_COLUMNS)
        self._pw = csv.DictWriter(self._samples, SAMPLE_COLUMNS)
        self._rw = csv.DictWriter(self._reps, REPETITION_COLUMNS)
        if not resume:
            self._sw.writeheader()
            self._pw.writeheader()
            self._rw.writeheader()
        self._flush(self._summary, self._samples, self._reps)

    @staticmethod
    def _flush(*files: Any) -> None:
        for f in files:
            f.flush()
            os.fsync(f.fileno())

    def append(self, rows: Iterable[Mapping[str, Any]], samples: Iterable[Mapping[str, Any]] = ()) -> None:
        """Samples first, then the summary rows, each file flushed and fsynced:
        a summary row on disk always has its samples on disk. A row with a
        missing or unknown column is a :class:`~.schema.SchemaError` (nothing is written)."""
        rows, samples = list(rows), list(samples)
        check_rows(samples, SAMPLE_COLUMNS, "samples.csv")
        check_rows(rows, SUMMARY_COLUMNS, "summary.csv")
        for s in samples:
            self._pw.writerow({k: _cell(s.get(k)) for k in SAMPLE_COLUMNS})
        self._flush(self._samples)
        for row in rows:
            self._sw.writerow({k: _cell(row.get(k)) for k in SUMMARY_COLUMNS})
        self._flush(self._summary)

    def append_repetition(self, rows: Iterable[Mapping[str, Any]], samples: Iterable[Mapping[str, Any]]) -> None:
        """One repetition of a group: its samples, then its rows (``repetitions.csv``), each fsynced."""
        rows, samples = list(rows), list(samples)
        check_rows(samples, SAMPLE_COLUMNS, "samples.csv")
        check_rows(rows, REPETITION_COLUMNS, "repetitions.csv")
        for s in samples:
            self._pw.writerow({k: _cell(s.get(k)) for k in SAMPLE_COLUMNS})
        self._flush(self._samples)
        for row in rows:
            self._rw.writerow({k: _cell(row.get(k)) for k in REPETITION_COLUMNS})
        self._flush(self._reps)

    def write_env(self, env: Mapping[str, Any]) -> None:
        write_json(self.dir / "env.json", {"schema_version": SCHEMA_VERSION, **env})

    def write_config(self, text: str) -> None:
        write_text_atomic(self.dir / "config.yaml", text)

    def close(self) -> None:
        self._summary.close()
        self._samples.close()
        self._reps.close()

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


def _csv_text(path: Path) -> tuple[str, bool]:
    """The text of a CSV without a torn last line (``True`` if one was dropped, with a warning)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None
    torn = bool(data) and not data.endswith(b"\n")
    if torn:
        cut = data.rfind(b"\n") + 1
        warnings.warn(
            f"{path}: dropped an incomplete last line ({len(data) - cut} bytes; the run was "
            "killed while writing it)", stacklevel=3,
        )
        data = data[:cut]
    try:
        return data.decode("utf-8"), torn
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path} is not UTF-8 text (byte {exc.start}); not a convbench CSV") from None


def read_csv(path: str | Path, columns: list[str], added: list[str] = ()) -> Any:
    """A results CSV as a DataFrame: torn last line dropped, every column of ``columns`` required
    except ``added`` (columns newer than the folder's schema), which are filled in empty."""
    import pandas as pd

    path = Path(path)
    text, _ = _csv_text(path)
    try:
        df = pd.read_csv(io.StringIO(text), keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise ResultsError(f"{path} is empty (not even a header)") from None
    except pd.errors.ParserError as exc:
        raise ResultsError(f"{path} is not a well-formed CSV ({str(exc).strip()}); was it edited by hand?") from None
    for col in added:
        if col not in df.columns:
            df[col] = 0 if col == "repetition" else math.nan
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ResultsError(
            f"{path} lacks column(s) {', '.join(missing)}; not a schema-{SCHEMA_VERSION} convbench file "
            "(edited by hand?). Restore the columns or rerun."
        )
    return df


def read_results(folder: str | Path) -> Results:
    """Read a results folder, checking its schema version and columns."""
    folder = Path(folder)
    env = read_env(folder)
    frames = {}
    for name, columns in (("summary.csv", SUMMARY_COLUMNS), ("samples.csv", SAMPLE_COLUMNS)):
        path = folder / name
        if not path.is_file():
            raise ResultsError(f"{folder} has no {name}; the run may have failed before writing it")
        df = read_csv(path, columns, ADDED_IN_2[name] if env["schema_version"] < 2 else [])
        for col in ("reason", "layer_class", "network", "description", "machine"):
            if col in df.columns:
                df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
        frames[name] = df
    # rows are written as groups finish, in the run's shuffled schedule; read them in sweep order
    summary = frames["summary.csv"].sort_values("case_index", kind="stable").reset_index(drop=True)
    samples = frames["samples.csv"]
    bad = sorted(set(summary["status"].dropna().astype(str)) - set(STATUSES))
    if bad:
        raise ResultsError(
            f"{folder / 'summary.csv'} has unknown status value(s) {', '.join(map(repr, bad))}; "
            f"a status is one of {', '.join(STATUSES)}"
        )
    orphans = ~samples["case_id"].isin(set(summary["case_id"]))
    if orphans.any():  # repetitions of groups whose last repetition is still to come
        warnings.warn(f"{folder / 'samples.csv'}: ignored {int(orphans.sum())} samples of cases that have "
                      "no summary row yet (an unfinished run: resume it to finish them)", stacklevel=2)
        samples = samples[~orphans].reset_index(drop=True)
    config_path = folder / "config.yaml"
    try:
        config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else {}
    except yaml.YAMLError as exc:
        raise ResultsError(f"{config_path}: not valid YAML ({exc})") from None
    return Results(folder, summary, samples, env, config or {})


# -- resuming an interrupted run -----------------------------------------------


@dataclass
class ResumeState:
    """What an interrupted results folder already holds (after :func:`open_resume`)."""

    path: Path
    env: dict[str, Any]
    summary: Any  # DataFrame of the rows kept
    done: set[str]  # case_id of every case kept
    repetitions: Any = None  # DataFrame: repetition rows of cases not done, whole group-repetitions only
    samples: Any = None  # DataFrame: the samples of those repetitions


def _config_diff(a: Any, b: Any, where: str = "") -> str | None:
    """A short description of the first difference of two config dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(dict.fromkeys([*a, *b])):
            if key not in a or key not in b:
                return f"'{where}{key}' is only in {'the folder' if key in a else 'the config now'}"
            d = _config_diff(a[key], b[key], f"{where}{key}.")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and where.rstrip(".") == "layers":
        if len(a) != len(b):
            return f"'layers' has {len(a)} layers in the folder, {len(b)} now"
        for i, (x, y) in enumerate(zip(a, b)):
            d = _config_diff(x, y, f"layers[{i}].")
            if d:
                return d
        return None
    if a != b:
        return f"'{where.rstrip('.')}' is {a!r} in the folder, {b!r} now"
    return None


def open_resume(folder: str | Path, config_as_run: dict[str, Any], shard: Any = None,
                complete_groups: Any = None, complete_reps: Any = None) -> ResumeState:
    """Check that ``folder`` is a results folder of this very config and repair it for appending.

    Refuses (:class:`ResultsError`) a folder that is not a results folder, or
    whose ``config.yaml`` differs from ``config_as_run`` (the config as it
    would be run now; the folder's name plays no part) or whose shard differs.
    Repairs: a torn last line is cut off each CSV; samples of no kept
    summary or repetition row are dropped; ``complete_groups(done_ids) -> keep_ids`` may drop the
    rows of partly written groups so they are measured again whole, and
    ``complete_reps({(case_id, repetition)}) -> keep`` likewise the rows of
    partly written repetitions; samples follow the rows they belong to.
    """
    folder = Path(folder)
    env = read_env(folder)
    config_path = folder / "config.yaml"
    for name in ("summary.csv", "samples.csv", "config.yaml"):
        if not (folder / name).is_file():
            raise ResultsError(f"cannot resume {folder}: it has no {name}; not a results folder written by convbench run")
    try:
        stored = yaml.safe_load(config_path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ResultsError(f"cannot resume {folder}: its config.yaml is not valid YAML ({exc})") from None
    from ..config.load import dump_config

    now = yaml.safe_load(dump_config(dict(config_as_run)))
    diff = _config_diff(stored, now)
    if diff:
        raise ResultsError(
            f"cannot resume {folder}: it was made from a different config ({diff}). Resume with the same "
            f"config and options, or with the folder's own config, {config_path}"
        )
    if (env.get("shard") or None) != (shard or None):
        raise ResultsError(
            f"cannot resume {folder}: it holds shard {env.get('shard')} of the sweep, not {shard}; "
            "give the same shard (or none, to take the folder's)"
        )
    paths = {name: folder / name for name in ("summary.csv", "samples.csv", "repetitions.csv")}
    if not paths["repetitions.csv"].is_file():  # killed before the writer made it
        write_text_atomic(paths["repetitions.csv"], ",".join(REPETITION_COLUMNS) + "\r\n")
    texts = {}
    for name, path in paths.items():
        text, torn = _csv_text(path)
        columns = {"summary.csv": SUMMARY_COLUMNS, "samples.csv": SAMPLE_COLUMNS,
                   "repetitions.csv": REPETITION_COLUMNS}[name]
        header = ",".join(columns)
        if not text.strip():  # killed before even the header was flushed
            text, torn = header + "\r\n", True
        elif text.splitlines()[0] != header:
            raise ResultsError(f"cannot resume {folder}: the header of {name} is not that of this convbench "
                               f"(schema {SCHEMA_VERSION}); was it edited by hand?")
        if torn:
            write_text_atomic(path, text)
        texts[name] = text
    summary = read_csv(paths["summary.csv"], SUMMARY_COLUMNS)
    samples = read_csv(paths["samples.csv"], SAMPLE_COLUMNS)
    reps = read_csv(paths["repetitions.csv"], REPETITION_COLUMNS)
    done = set(summary["case_id"].astype(str))
    keep = set(complete_groups(done)) if complete_groups is not None else done
    if keep != done:
        summary = summary[summary["case_id"].astype(str).isin(keep)]
        _rewrite(paths["summary.csv"], texts["summary.csv"], lambda r: r["case_id"] in keep)
        done = keep
    # repetitions of unfinished cases are kept where the whole group's repetition is on disk
    rep_keys = set(zip(reps["case_id"].astype(str), reps["repetition"].astype(int)))
    kept_reps = set(complete_reps(rep_keys)) if complete_reps is not None else rep_keys
    if kept_reps != rep_keys:
        _rewrite(paths["repetitions.csv"], texts["repetitions.csv"],
                 lambda r: (r["case_id"], int(r["repetition"])) in kept_reps)
    sample_keys = list(zip(samples["case_id"].astype(str), samples["repetition"].astype(int)))
    wanted = [cid in done or key in kept_reps for key, cid in zip(sample_keys, samples["case_id"].astype(str))]
    if not all(wanted):
        _rewrite(paths["samples.csv"], texts["samples.csv"],
                 lambda r: r["case_id"] in done or (r["case_id"], int(r["repetition"])) in kept_reps)
    open_reps = reps[[(c, int(r)) in kept_reps and c not in done
                      for c, r in zip(reps["case_id"].astype(str), reps["repetition"])]]
    open_samples = samples[[w and c not in done for w, c in zip(wanted, samples["case_id"].astype(str))]]
    return ResumeState(folder, env, summary.reset_index(drop=True), done,
                       open_reps.reset_index(drop=True), open_samples.reset_index(drop=True))


def _rewrite(path: Path, text: str, keep: Any) -> None:
    """Rewrite a results CSV keeping the header and the rows (as dicts of strings) where ``keep(row)``."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(header)
    for record in reader:
        if len(record) == len(header) and keep(dict(zip(header, record))):
            writer.writerow(record)
    write_text_atomic(path, out.getvalue())
