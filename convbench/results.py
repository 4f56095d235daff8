"""Results folders: the one schema, writing row by row, reading back, merging.

A results folder holds::

    summary.csv   one row per case (SUMMARY_COLUMNS, in that order)
    samples.csv   one row per timed sample (SAMPLE_COLUMNS)
    env.json      the machine, libraries, calibration, seed, times, schema_version
    config.yaml   the config as run, every layer explicit

CSV rows are appended and flushed as each layer finishes, so an interrupted
run keeps everything measured so far. A folder is never overwritten.
"""

from __future__ import annotations

import csv
import json
import math
import os
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

#: Columns of ``samples.csv``: one row per timed sample; ``time_s`` is per call.
SAMPLE_COLUMNS = [
    "case_index", "case_id", "layer", "algorithm", "layout", "dtype", "threads",
    "round", "sample", "loops", "time_s",
]

STATUSES = ("ok", "skipped", "failed", "error")

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
    """Raise :class:`ResultsError` unless ``out_dir`` is absent or an empty folder."""
    if out_dir is None:
        return
    path = Path(out_dir)
    if path.exists():
        if not path.is_dir():
            raise ResultsError(f"{path} exists and is not a folder; choose another --out")
        if any(path.iterdir()):
            raise ResultsError(
                f"{path} already exists and is not empty; results are never overwritten. "
                "Choose another --out (or leave it out for results/<config>/<timestamp>/)."
            )


class ResultsWriter:
    """Creates a results folder and appends rows to its CSVs (flushed per call)."""

    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        check_new_dir(self.dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsError(f"cannot create {self.dir}: {exc.strerror or exc}") from None
        self._summary = open(self.dir / "summary.csv", "w", newline="")
        self._samples = open(self.dir / "samples.csv", "w", newline="")
        self._sw = csv.DictWriter(self._summary, SUMMARY_COLUMNS, extrasaction="ignore")
        self._pw = csv.DictWriter(self._samples, SAMPLE_COLUMNS, extrasaction="ignore")
        self._sw.writeheader()
        self._pw.writeheader()
        self._flush()

    def _flush(self) -> None:
        for f in (self._summary, self._samples):
            f.flush()
            os.fsync(f.fileno())

    def append(self, rows: Iterable[Mapping[str, Any]], samples: Iterable[Mapping[str, Any]] = ()) -> None:
        for row in rows:
            self._sw.writerow({k: _cell(row.get(k)) for k in SUMMARY_COLUMNS})
        for s in samples:
            self._pw.writerow({k: _cell(s.get(k)) for k in SAMPLE_COLUMNS})
        self._flush()

    def write_env(self, env: Mapping[str, Any]) -> None:
        write_json(self.dir / "env.json", {"schema_version": SCHEMA_VERSION, **env})

    def write_config(self, text: str) -> None:
        (self.dir / "config.yaml").write_text(text)

    def close(self) -> None:
        self._summary.close()
        self._samples.close()

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


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


def read_results(folder: str | Path) -> Results:
    """Read a results folder, checking its schema version and columns."""
    import pandas as pd

    folder = Path(folder)
    env = read_env(folder)
    frames = {}
    for name, columns in (("summary.csv", SUMMARY_COLUMNS), ("samples.csv", SAMPLE_COLUMNS)):
        path = folder / name
        if not path.is_file():
            raise ResultsError(f"{folder} has no {name}; the run may have failed before writing it")
        try:
            df = pd.read_csv(path, keep_default_na=True)
        except pd.errors.EmptyDataError:
            raise ResultsError(f"{path} is empty (not even a header)") from None
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise ResultsError(f"{path} lacks column(s) {', '.join(missing)}; not a schema-{SCHEMA_VERSION} convbench file")
        for col in ("reason", "layer_class", "network", "description"):
            if col in df.columns:
                df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
        frames[name] = df
    config_path = folder / "config.yaml"
    config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else {}
    return Results(folder, frames["summary.csv"], frames["samples.csv"], env, config or {})


# -- merging shards ------------------------------------------------------------


def merge_results(folders: list[str | Path], out_dir: str | Path) -> Path:
    """Join shard folders of one sweep into ``out_dir``; refuses different configs."""
    import pandas as pd

    if not folders:
        raise ResultsError("merge needs at least one results folder")
    parts = [read_results(f) for f in folders]
    first = parts[0]
    for other in parts[1:]:
        if other.config != first.config:
            raise ResultsError(
                f"{other.path} was run with a different config than {first.path} "
                "(compare their config.yaml); only shards of one sweep can be merged"
            )
    summary = pd.concat([p.summary for p in parts], ignore_index=True)
    dup = summary["case_id"][summary["case_id"].duplicated()]
    if len(dup):
        owners = [str(p.path) for p in parts if dup.iloc[0] in set(p.summary["case_id"])]
        raise ResultsError(
            f"case {dup.iloc[0]!r} appears in more than one folder ({', '.join(owners)}); "
            "shards must not overlap"
        )
    summary = summary.sort_values("case_index", kind="stable")
    samples = pd.concat([p.samples for p in parts], ignore_index=True)
    samples = samples.sort_values(["case_index", "sample"], kind="stable")

    writer = ResultsWriter(out_dir)
    writer.close()
    summary[SUMMARY_COLUMNS].to_csv(writer.dir / "summary.csv", index=False)
    samples[SAMPLE_COLUMNS].to_csv(writer.dir / "samples.csv", index=False)
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
        start_time=min((p.env.get("start_time") or "" for p in parts), default=None),
        end_time=max((p.env.get("end_time") or "" for p in parts), default=None),
    )
    writer.write_env(env)
    return writer.dir


# -- the summaries shown at the end of a run (and reusable by plots) -----------------


def best_per_layer(summary: Any) -> Any:
    """The fastest ``ok`` algorithm of each layer x layout x dtype x threads."""
    ok = summary[summary["status"] == "ok"]
    if ok.empty:
        return ok
    keys = ["layer", "layout", "dtype", "threads"]
    idx = ok.groupby(keys, sort=False)["time_median_s"].idxmin()
    cols = keys + ["algorithm", "time_median_s", "gflops", "speedup_vs_baseline", "count"]
    return ok.loc[idx, cols].reset_index(drop=True)


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
