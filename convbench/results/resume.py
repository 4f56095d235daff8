"""Resuming an interrupted run: check that a folder holds this very sweep, and repair it for appending."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .io import ResultsError, csv_text, read_csv, read_env, write_text_atomic
from .schema import REPETITION_COLUMNS, SAMPLE_COLUMNS, SCHEMA_VERSION, SUMMARY_COLUMNS


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
        text, torn = csv_text(path)
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
