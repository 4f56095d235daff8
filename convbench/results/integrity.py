"""Is a results folder whole? Readers refuse corrupt ones; ``repair`` fixes what it can decide.

A well-formed folder holds each key once: a case in ``summary.csv``
(``case_id``), a case's repetition in ``repetitions.csv`` (``case_id``,
``repetition``), a timed sample in ``samples.csv`` (``case_id``,
``repetition``, ``sample``), and every sample belongs to a summary row or
to a repetition row. Two writers at once, or an edit by hand, break that,
and every figure and verdict drawn from the folder would silently count
cases twice; so :func:`check_integrity`, called by every reader
(:func:`convbench.results.read_results`, resume), raises
:class:`CorruptResults` with the count and the first keys.

Two kinds of samples without a summary row are legitimate in an unfinished
run: those of repetitions on disk whose case still has repetitions to come,
and those at the very end of ``samples.csv`` of the last group repetition
written, when the run was killed between writing its samples and its rows.
Readers ignore them with a warning (resume measures them again); any other
is corruption.

:func:`repair` removes rows that are exact duplicates (every column equal,
keeping the first) and samples that belong to nothing (except that last
group's), logs what it did in ``DIR/repair.log``, and refuses when rows with
one key differ: it cannot know which measurement is right.
"""

from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .io import ResultsError, _csv_text, read_env, write_text_atomic
from .schema import VARIANT_KEYS

#: The key of a row in each CSV (a folder of schema 1 has no ``repetition`` column: it is left out).
KEYS = {
    "summary.csv": ("case_id",),
    "repetitions.csv": ("case_id", "repetition"),
    "samples.csv": ("case_id", "repetition", "sample"),
}

#: Columns that name one repetition of a group in ``samples.csv`` (written at once).
GROUP_COLUMNS = (*VARIANT_KEYS, "repetition")

#: How many keys a message shows.
SHOWN = 3

REPAIR_LOG = "repair.log"


class CorruptResults(ResultsError):
    """A results folder holds duplicate keys or stranded samples; ``problems`` lists each."""

    def __init__(self, folder: Path, problems: list[str]):
        self.folder, self.problems = folder, problems
        super().__init__(
            f"{folder} is corrupt: {'; '.join(problems)}. Two runs may have written it at once, or it was "
            f"edited; `convbench repair {folder}` removes exact duplicates and says what it cannot decide"
        )


def _first(keys: list[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:SHOWN])
    return shown + (", ..." if len(keys) > SHOWN else "")


def _key_text(values: tuple) -> str:
    """``'a|nchw|float32|t1|im2col'``, ``... repetition 1``, ``... repetition 1 sample 3`` (schema 1: no repetition)."""
    names = ("", "repetition", "sample")
    return " ".join(str(v) if not n else f"{n} {v}" for n, v in zip(names, values))


def _trailing(keys: list[tuple]) -> int:
    """Where the last run of equal ``keys`` starts (``len(keys)`` if empty)."""
    start = len(keys)
    while start > 0 and keys[start - 1] == keys[-1]:  # walks back over the last group repetition only
        start -= 1
    return start


def _column_tuples(df: Any, columns: tuple[str, ...]) -> list[tuple]:
    present = [c for c in columns if c in df.columns]
    cols = [df[c].astype(object).where(df[c].notna(), None).tolist() for c in present]
    # numbers read back as floats where a column has gaps: 1.0 and 1 are one repetition
    cols = [[int(v) if isinstance(v, float) and v.is_integer() else v for v in col] for col in cols]
    return list(zip(*cols)) if cols else [() for _ in range(len(df))]


def _repetitions(folder: Path) -> Any:
    """``repetitions.csv`` as a DataFrame (key columns only), or None where the folder has none (schema 1)."""
    import pandas as pd

    path = folder / "repetitions.csv"
    if not path.is_file():
        return None
    with warnings.catch_warnings():  # a torn line is reported where the folder's CSVs are read
        warnings.simplefilter("ignore")
        text, _ = _csv_text(path)
    try:
        return pd.read_csv(io.StringIO(text), usecols=list(KEYS["repetitions.csv"]))
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ResultsError(f"{path} is not a convbench repetitions file ({str(exc).strip()}); edited by hand?") from None


def check_integrity(folder: str | Path, summary: Any, samples: Any, repetitions: Any = None) -> Any:
    """Raise :class:`CorruptResults` if the folder's rows (DataFrames of its CSVs,
    in file order; ``repetitions`` read from the folder when not given) hold a
    key twice or samples that belong to nothing. Returns ``samples`` without
    those of unfinished cases (warning once), ready to use."""
    folder = Path(folder)
    if repetitions is None:
        repetitions = _repetitions(folder)
    problems = []
    frames = [("summary.csv", summary), ("repetitions.csv", repetitions), ("samples.csv", samples)]
    for name, df in frames:
        if df is None:
            continue
        keys = _column_tuples(df, KEYS[name])
        seen: set[tuple] = set()
        repeated = [k for k in keys if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
        if repeated:
            distinct = list(dict.fromkeys(_key_text(k) for k in repeated))
            what = "case key(s)" if name == "summary.csv" else "key(s)"
            problems.append(f"{name} has {len(repeated)} duplicate row(s) of {len(distinct)} {what} "
                            f"(first: {_first(distinct)})")
    ids = samples["case_id"].astype(str)
    finished = ids.isin(set(summary["case_id"].astype(str)))
    owned = finished.to_numpy().copy()
    if repetitions is not None:  # a repetition on disk owns its samples until the case is finished
        reps = set(_column_tuples(repetitions, ("case_id", "repetition")))
        pairs = _column_tuples(samples, ("case_id", "repetition"))
        owned |= [p in reps for p in pairs]
    tail = _trailing(_column_tuples(samples, GROUP_COLUMNS))
    stray = [i for i in range(tail) if not owned[i]]
    if stray:
        keys = list(dict.fromkeys(ids.iloc[stray]))
        problems.append(f"samples.csv has {len(stray)} sample(s) of {len(keys)} case(s) that belong to no summary "
                        f"or repetition row (first: {_first(keys)})")
    if problems:
        raise CorruptResults(folder, problems)
    if not finished.all():  # an unfinished run: repetitions still to come, or a repetition torn by a kill
        warnings.warn(f"{folder / 'samples.csv'}: ignored {int((~finished).sum())} samples of cases that have "
                      "no summary row yet (an unfinished run: resume it to finish them)", stacklevel=3)
        samples = samples[finished].reset_index(drop=True)
    return samples


# -- repair --------------------------------------------------------------------


@dataclass
class RepairReport:
    """What :func:`repair` did; ``changed`` is False when the folder was whole."""

    folder: Path
    removed: dict[str, list[str]] = field(default_factory=dict)  # file -> key of each exact duplicate removed
    stray_removed: int = 0  # samples that belonged to nothing, removed
    torn: list[str] = field(default_factory=list)  # files whose incomplete last line was cut
    log: Path | None = None

    @property
    def changed(self) -> bool:
        return bool(any(self.removed.values()) or self.stray_removed or self.torn)

    def lines(self) -> list[str]:
        """One line per change, as written to the log."""
        out = []
        for name, keys in self.removed.items():
            if keys:
                distinct = list(dict.fromkeys(keys))
                shown = ", ".join(distinct) if name == "summary.csv" else _first(distinct)
                out.append(f"{name}: removed {len(keys)} exact duplicate row(s) of {len(distinct)} key(s), "
                           f"keeping the first of each: {shown}")
        if self.stray_removed:
            out.append(f"samples.csv: removed {self.stray_removed} sample(s) that belonged to no summary "
                       "or repetition row")
        for name in self.torn:
            out.append(f"{name}: cut an incomplete last line")
        return out


def _records(folder: Path, name: str) -> tuple[list[str], list[list[str]], bool]:
    with warnings.catch_warnings():  # a torn line is reported by the repair itself
        warnings.simplefilter("ignore")
        text, torn = _csv_text(folder / name)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or "case_id" not in rows[0]:
        raise ResultsError(f"cannot repair {folder}: {name} has no case_id column; it was edited or is not "
                           "a convbench file, and repair does not guess")
    return rows[0], rows[1:], torn


def _dedupe(records: list[list[str]], index: list[int], name: str, folder: Path) -> tuple[list[list[str]], list[str]]:
    """Records without exact repeats (first kept) and the keys removed; refuses a key whose rows differ."""
    first: dict[tuple, list[str]] = {}
    kept, removed, differ = [], [], []
    for rec in records:
        k = tuple(rec[i] for i in index)
        if k not in first:
            first[k] = rec
            kept.append(rec)
        elif rec == first[k]:
            removed.append(_key_text(k))
        else:
            differ.append(_key_text(k))
    if differ:
        keys = list(dict.fromkeys(differ))
        raise ResultsError(
            f"cannot repair {folder}: {name} has {len(keys)} key(s) that appear more than once with different "
            f"values (first: {_first(keys)}); repair cannot tell which measurement is right. Delete the wrong "
            "rows by hand, or delete those cases' rows and `convbench run --resume` to measure them again"
        )
    return kept, removed


def repair(folder: str | Path) -> RepairReport:
    """Remove exact duplicate rows (keeping the first) and samples that belong to
    nothing from a results folder, under its writer lock, and log the changes in
    ``DIR/repair.log``.

    Raises :class:`ResultsError` (nothing changed) when it cannot decide: rows
    with one key that differ, a file without its key column. Afterwards the
    folder reads cleanly (checked).
    """
    from .io import read_results
    from .lock import FolderLock

    folder = Path(folder)
    read_env(folder)
    report = RepairReport(folder)
    names = [n for n in ("summary.csv", "repetitions.csv", "samples.csv") if (folder / n).is_file()]
    with FolderLock(folder):  # a repair is a writer too
        files = {}
        for name in names:
            header, records, torn = _records(folder, name)
            index = [header.index(c) for c in KEYS[name] if c in header]
            records, report.removed[name] = _dedupe(records, index, name, folder)
            files[name] = (header, records)
            if torn:
                report.torn.append(name)
        header, samples = files["samples.csv"]
        done = {r[files["summary.csv"][0].index("case_id")] for r in files["summary.csv"][1]}
        pair = [header.index(c) for c in ("case_id", "repetition") if c in header]
        reps: set[tuple] = set()
        if "repetitions.csv" in files:
            rheader, rrecords = files["repetitions.csv"]
            reps = {(r[rheader.index("case_id")], r[rheader.index("repetition")]) for r in rrecords}
        group = [header.index(c) for c in GROUP_COLUMNS if c in header]
        tail = _trailing([tuple(r[i] for i in group) for r in samples])
        body = [r for r in samples[:tail] if r[pair[0]] in done or tuple(r[i] for i in pair) in reps]
        report.stray_removed = tail - len(body)  # the last group repetition's are left to resume
        files["samples.csv"] = (header, body + samples[tail:])
        if not report.changed:
            return report
        for name, (header, records) in files.items():
            out = io.StringIO(newline="")
            writer = csv.writer(out)  # the dialect the results writer uses (\r\n, minimal quoting)
            writer.writerow(header)
            writer.writerows(records)
            write_text_atomic(folder / name, out.getvalue())
        report.log = folder / REPAIR_LOG
        stamp = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
        with open(report.log, "a") as f:
            f.writelines(f"{stamp} convbench repair: {line}\n" for line in report.lines())
    with warnings.catch_warnings():  # an unfinished run stays unfinished: that is not for repair to say
        warnings.simplefilter("ignore")
        read_results(folder)  # whole now, or the check says what is left
    return report
