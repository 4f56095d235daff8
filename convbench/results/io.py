"""Results folders: the one schema, writing row by row, reading back, merging.

A results folder holds::

    summary.csv   one row per case (SUMMARY_COLUMNS, in that order)
    samples.csv   one row per timed sample (SAMPLE_COLUMNS)
    env.json      the machine, libraries, calibration, seed, times, schema_version
    config.yaml   the config as run, every layer explicit

CSV rows are appended, flushed and fsynced as each group of cases (one
layer variant at one thread count) finishes, samples before their summary
rows, so a run killed at any moment keeps every finished case. A torn last
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

#: Version of the results format; bump when a column changes meaning or goes.
SCHEMA_VERSION = 1

#: Columns ``summary.csv`` must have (the documented contract).
REQUIRED_COLUMNS = [
    "layer", "layer_class", "network", "count", "algorithm", "status", "reason",
    "layout", "dtype", "threads", "batch", "in_channels", "out_channels", "height", "width",
    "kernel_h", "kernel_w", "stride_h", "stride_w", "pad_top", "pad_bottom", "pad_left",
    "pad_right", "dilation_h", "dilation_w", "groups", "output_height", "output_width",
    "flops", "prepare_s", "compile_s", "n_samples", "time_median_s", "time_iqr_s",
    "time_min_s", "time_ci_low_s", "time_ci_high_s", "gflops", "speedup_vs_baseline",
    "workspace_bytes", "peak_bytes", "max_rel_err",
]

#: Every column of ``summary.csv``, in order: the single source of the schema.
#: Beyond the required ones: ``case_index`` (position in the unsharded sweep),
#: ``case_id`` (stable key), ``description`` (ConvSpec.describe()),
#: ``baseline`` (the algorithm speedups refer to), ``error_tolerance``,
#: ``time_mean_s``, ``time_std_s``, ``ci_rel_halfwidth`` (CI half-width / median),
#: ``loops`` (calls per sample), ``prepare_bytes`` (memory the prepared call
#: keeps), ``measured_workspace_bytes`` (prepare_bytes beyond the weights +
#: peak_bytes beyond the output: comparable to ``workspace_bytes``),
#: ``numba_allocs`` (NRT allocations in one call), the thread pools as
#: verified during the case (``numba_threads``, ``blas_threads``,
#: ``fft_workers``) and ``seed``.
SUMMARY_COLUMNS = [
    "case_index", "case_id", *REQUIRED_COLUMNS[:3], "description", *REQUIRED_COLUMNS[3:],
    "baseline", "error_tolerance", "time_mean_s", "time_std_s", "ci_rel_halfwidth", "loops",
    "prepare_bytes", "measured_workspace_bytes", "numba_allocs",
    "numba_threads", "blas_threads", "fft_workers", "seed",
]

#: Merged folders (``convbench merge``, ``run --executor``) add a ``machine``
#: column (:data:`convbench.machine.identity.MACHINE_COLUMN`) to both CSVs: the
#: machine each row was measured on. A single run's folder has none; its
#: machine is its env.json's.

#: Columns of ``samples.csv``: one row per timed sample; ``time_s`` is per call.
SAMPLE_COLUMNS = [
    "case_index", "case_id", "layer", "algorithm", "layout", "dtype", "threads",
    "round", "sample", "loops", "time_s",
]

#: ``ok``: measured and right; ``skipped``: not run (unsupported, the memory
#: guard, too many threads), ``failed``: a wrong answer; ``error``: raised;
#: ``crashed``: killed the worker process (the reason names the signal);
#: ``timeout``: no progress within ``--case-timeout``; ``missing``: the task of a
#: distributed run (``run --executor``) that was to measure it failed or was
#: lost (the reason says how); ``run --resume`` measures it.
STATUSES = ("ok", "skipped", "failed", "error", "crashed", "timeout", "missing")

FILES = ("summary.csv", "samples.csv", "env.json", "config.yaml")


class ResultsError(Exception):
    """A results folder cannot be written or read; the message says why."""


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
    if value is None:
        return ""
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
            raise ResultsError(f"--out {path} exists and is not a folder; choose another --out")
        if any(path.iterdir()):
            raise ResultsError(
                f"{path} already exists and is not empty; results are never overwritten. "
                "Choose another --out (or leave it out for results/<config>/<timestamp>/), "
                f"or resume an interrupted run with --resume {path}."
            )
    check_writable(path)


def check_writable(path: Path) -> None:
    """Raise :class:`ResultsError` if ``path`` (or its nearest existing parent) cannot be written."""
    probe = path.absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ResultsError(f"cannot create {path}: {probe} is a file, not a folder; choose another --out")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ResultsError(f"cannot create {path}: the folder {probe} is not writable; choose another --out")


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
        except OSError as exc:
            raise ResultsError(f"cannot write to {self.dir}: {exc.strerror or exc}") from None
        self._sw = csv.DictWriter(self._summary, SUMMARY_COLUMNS, extrasaction="ignore")
        self._pw = csv.DictWriter(self._samples, SAMPLE_COLUMNS, extrasaction="ignore")
        if not resume:
            self._sw.writeheader()
            self._pw.writeheader()
        self._flush(self._summary, self._samples)

    @staticmethod
    def _flush(*files: Any) -> None:
        for f in files:
            f.flush()
            os.fsync(f.fileno())

    def append(self, rows: Iterable[Mapping[str, Any]], samples: Iterable[Mapping[str, Any]] = ()) -> None:
        """Samples first, then the summary rows, each file flushed and fsynced:
        a summary row on disk always has its samples on disk."""
        for s in samples:
            self._pw.writerow({k: _cell(s.get(k)) for k in SAMPLE_COLUMNS})
        self._flush(self._samples)
        for row in rows:
            self._sw.writerow({k: _cell(row.get(k)) for k in SUMMARY_COLUMNS})
        self._flush(self._summary)

    def write_env(self, env: Mapping[str, Any]) -> None:
        write_json(self.dir / "env.json", {"schema_version": SCHEMA_VERSION, **env})

    def write_config(self, text: str) -> None:
        write_text_atomic(self.dir / "config.yaml", text)

    def close(self) -> None:
        self._summary.close()
        self._samples.close()

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


def read_csv(path: str | Path, columns: list[str]) -> Any:
    """A results CSV as a DataFrame: torn last line dropped, every column of ``columns`` required."""
    import pandas as pd

    path = Path(path)
    text, _ = _csv_text(path)
    try:
        df = pd.read_csv(io.StringIO(text), keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise ResultsError(f"{path} is empty (not even a header)") from None
    except pd.errors.ParserError as exc:
        raise ResultsError(f"{path} is not a well-formed CSV ({str(exc).strip()}); was it edited by hand?") from None
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
        df = read_csv(path, columns)
        for col in ("reason", "layer_class", "network", "description", "machine"):
            if col in df.columns:
                df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
        frames[name] = df
    summary, samples = frames["summary.csv"], frames["samples.csv"]
    bad = sorted(set(summary["status"].dropna().astype(str)) - set(STATUSES))
    if bad:
        raise ResultsError(
            f"{folder / 'summary.csv'} has unknown status value(s) {', '.join(map(repr, bad))}; "
            f"a status is one of {', '.join(STATUSES)}"
        )
    orphans = ~samples["case_id"].isin(set(summary["case_id"]))
    if orphans.any():  # samples of a group whose summary rows never made it to disk
        warnings.warn(f"{folder / 'samples.csv'}: ignored {int(orphans.sum())} samples of cases that have "
                      "no summary row (the run was killed while writing them)", stacklevel=2)
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
                complete_groups: Any = None) -> ResumeState:
    """Check that ``folder`` is a results folder of this very config and repair it for appending.

    Refuses (:class:`ResultsError`) a folder that is not a results folder, or
    whose ``config.yaml`` differs from ``config_as_run`` (the config as it
    would be run now; ``--out`` plays no part) or whose shard differs.
    Repairs: a torn last line is cut off each CSV; samples without a summary
    row are dropped; ``complete_groups(done_ids) -> keep_ids`` may drop the
    rows of partly written groups so they are measured again whole.
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
    from ..config import dump_config

    now = yaml.safe_load(dump_config(dict(config_as_run)))
    diff = _config_diff(stored, now)
    if diff:
        raise ResultsError(
            f"cannot resume {folder}: it was made from a different config ({diff}). Resume with the same "
            f"config and options, or with the folder's own: convbench run {config_path} --resume {folder}"
        )
    if (env.get("shard") or None) != (shard or None):
        raise ResultsError(
            f"cannot resume {folder}: it holds shard {env.get('shard')} of the sweep, not {shard}; "
            "give the same --shard (or none, to take the folder's)"
        )
    paths = {name: folder / name for name in ("summary.csv", "samples.csv")}
    texts = {}
    for name, path in paths.items():
        text, torn = _csv_text(path)
        columns = SUMMARY_COLUMNS if name == "summary.csv" else SAMPLE_COLUMNS
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
    done = set(summary["case_id"].astype(str))
    keep = set(complete_groups(done)) if complete_groups is not None else done
    if keep != done:
        summary = summary[summary["case_id"].astype(str).isin(keep)]
        _rewrite(paths["summary.csv"], texts["summary.csv"], keep)
        done = keep
    orphan = ~samples["case_id"].astype(str).isin(done)
    if orphan.any():
        _rewrite(paths["samples.csv"], texts["samples.csv"], done)
    return ResumeState(folder, env, summary.reset_index(drop=True), done)


def _rewrite(path: Path, text: str, keep: set[str]) -> None:
    """Rewrite a results CSV keeping the header and the rows whose case_id is in ``keep``."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    col = header.index("case_id")
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(header)
    for record in reader:
        if len(record) > col and record[col] in keep:
            writer.writerow(record)
    write_text_atomic(path, out.getvalue())


# -- merging shards ------------------------------------------------------------


def merge_results(folders: list[str | Path], out_dir: str | Path) -> Path:
    """Join shard folders of one sweep into ``out_dir``; refuses different configs.

    Every row gets a ``machine`` column (its folder's machine, or the one it
    already has), and a case may appear once per machine: shards of one
    sweep from several nodes, or whole runs of one config on several
    machines, merge into one folder that the analysis splits by machine.
    """
    import pandas as pd

    from ..machine.identity import MACHINE_COLUMN, machine_env, machine_name

    if not folders:
        raise ResultsError("merge needs at least one results folder")
    parts = [read_results(f) for f in folders]
    for i, p in enumerate(parts):  # a folder of one run names no machine in its rows: its env.json does
        for df in (p.summary, p.samples):
            if MACHINE_COLUMN not in df.columns:
                df[MACHINE_COLUMN] = machine_name(p.env)
            df["_part"] = i  # the same case of two machines: in the order the folders were given
    first = parts[0]
    for other in parts[1:]:
        if other.config != first.config:
            raise ResultsError(
                f"{other.path} was run with a different config than {first.path} "
                "(compare their config.yaml); only shards of one sweep can be merged"
            )
    summary = pd.concat([p.summary for p in parts], ignore_index=True)
    dup = summary[summary.duplicated(["case_id", MACHINE_COLUMN])]
    if len(dup):
        case, machine = dup["case_id"].iloc[0], dup[MACHINE_COLUMN].iloc[0]
        owners = [str(p.path) for p in parts
                  if ((p.summary["case_id"] == case) & (p.summary[MACHINE_COLUMN] == machine)).any()]
        raise ResultsError(
            f"case {case!r} on {machine} appears in more than one folder ({', '.join(owners)}); "
            "shards must not overlap"
        )
    summary = summary.sort_values(["case_index", "_part"], kind="stable")
    samples = pd.concat([p.samples for p in parts], ignore_index=True)
    samples = samples.sort_values(["case_index", "_part", "sample"], kind="stable")

    writer = ResultsWriter(out_dir)
    writer.close()
    summary[[*SUMMARY_COLUMNS, MACHINE_COLUMN]].to_csv(writer.dir / "summary.csv", index=False)
    samples[[*SAMPLE_COLUMNS, MACHINE_COLUMN]].to_csv(writer.dir / "samples.csv", index=False)
    (writer.dir / "config.yaml").write_text((first.path / "config.yaml").read_text())
    shards = [p.env.get("shard") for p in parts]
    totals = {s.get("count") for s in shards if s}
    expected = totals.pop() if len(totals) == 1 else None
    got = sorted(s["index"] for s in shards if s)
    complete = expected is not None and got == list(range(1, expected + 1))
    env = {k: v for k, v in first.env.items() if k not in ("shard", "schema_version")}
    env.update(
        merged_from=[str(p.path) for p in parts],
        shard=None,
        shards=[{"folder": str(p.path), "shard": p.env.get("shard"), "host": p.env.get("system", {}).get("hostname"),
                 "cpu": p.env.get("cpu", {}).get("model"), "start_time": p.env.get("start_time"),
                 "end_time": p.env.get("end_time")} for p in parts],
        complete=bool(complete) or all(s is None for s in shards),
        # each machine's own CPU, calibration, ...: the figures of one machine need its own roof
        machines={k: v for p in parts
                  for k, v in (p.env.get("machines") or {machine_name(p.env): machine_env(p.env)}).items()},
        start_time=min((p.env.get("start_time") or "" for p in parts), default=None),
        end_time=max((p.env.get("end_time") or "" for p in parts), default=None),
    )
    writer.write_env(env)
    return writer.dir


# -- the summaries shown at the end of a run (and reusable by plots) -----------------


def network_totals(summary: Any) -> Any:
    """Per algorithm x layout x dtype x threads: sum of ``count * median`` over layers.

    ``complete`` says whether the algorithm was ``ok`` on every layer; an
    incomplete total leaves out layers it skipped or failed, so it is not a
    network time (``layers_ok`` / ``layers`` say how many it covers).
    """
    import pandas as pd

    df = summary.copy()
    df["weighted_s"] = df["count"] * df["time_median_s"]
    df["weighted_flops"] = df["count"] * df["flops"]
    df["is_ok"] = df["status"] == "ok"
    rows = []
    for key, g in df.groupby(["algorithm", "layout", "dtype", "threads"], sort=False):
        ok = g[g["is_ok"]]
        total = float(ok["weighted_s"].sum())
        rows.append({
            "algorithm": key[0], "layout": key[1], "dtype": key[2], "threads": key[3],
            "total_s": total if len(ok) else math.nan,
            "gflops": float(ok["weighted_flops"].sum()) / total / 1e9 if total > 0 else math.nan,
            "layers_ok": int(len(ok)), "layers": int(len(g)), "complete": bool(len(ok) == len(g)),
        })
    return pd.DataFrame(rows)
