"""Is a results folder whole? Readers refuse corrupt ones; ``repair`` fixes what it can decide.

A well-formed folder has each case once in ``summary.csv`` (key ``case_id``)
and each timed sample once in ``samples.csv`` (key ``case_id`` + ``sample``),
every sample belonging to a summary row. Two writers at once, or an edit by
hand, break that, and every figure and verdict drawn from the folder would
silently count cases twice; so :func:`check_integrity`, called by every reader
(:func:`convbench.results.read_results`, resume), raises
:class:`CorruptResults` with the count and the first keys.

One kind of sample without a summary row is legitimate: a run killed between
writing a group's samples and its summary rows leaves them at the very end
of ``samples.csv``, all of the last group written. Those are ignored with a
warning (resume drops them and measures the group again); any other is
corruption.

:func:`repair` removes rows that are exact duplicates (every column equal,
keeping the first) and samples stranded in the middle of the file, logs what
it did in ``DIR/repair.log``, and refuses when rows with one key differ: it
cannot know which measurement is right.
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
from .schema import SAMPLE_COLUMNS, SUMMARY_COLUMNS, VARIANT_KEYS

#: Columns that name a group (one layer variant at one thread count) in ``samples.csv``.
GROUP_COLUMNS = tuple(VARIANT_KEYS)

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


def _trailing_group(samples: Any) -> Any:
    """Boolean mask of the last run of samples that share one group (the last group written)."""
    import pandas as pd

    mask = pd.Series(False, index=samples.index)
    columns = [samples[c].astype(object).where(samples[c].notna(), None).tolist() for c in GROUP_COLUMNS]
    keys = list(zip(*columns))
    start = len(keys)
    while start > 0 and keys[start - 1] == keys[-1]:  # walks back over the last group only
        start -= 1
    mask.iloc[start:] = True
    return mask


def check_integrity(folder: str | Path, summary: Any, samples: Any) -> Any:
    """Raise :class:`CorruptResults` if ``summary`` / ``samples`` (DataFrames of a
    folder's CSVs, in file order) hold a key twice or samples of no summary row
    outside the last group written. Returns ``samples`` without those last
    samples of a torn group (warning once), ready to use."""
    folder = Path(folder)
    problems = []
    ids = summary["case_id"].astype(str)
    repeated = ids[ids.duplicated()]
    if len(repeated):
        keys = list(dict.fromkeys(repeated))
        problems.append(f"summary.csv has {len(repeated)} duplicate row(s) of {len(keys)} case key(s) "
                        f"(first: {_first(keys)})")
    sids = samples["case_id"].astype(str)
    orphan = ~sids.isin(set(ids))
    stray = orphan & ~_trailing_group(samples)
    if stray.any():
        keys = list(dict.fromkeys(sids[stray]))
        problems.append(f"samples.csv has {int(stray.sum())} sample(s) of {len(keys)} case(s) with no summary row, "
                        f"not at its end (first: {_first(keys)})")
    kept = samples[~orphan]
    skeys = kept["case_id"].astype(str) + " sample " + kept["sample"].astype(str)
    repeated = skeys[skeys.duplicated()]
    if len(repeated):
        problems.append(f"samples.csv has {len(repeated)} duplicate sample row(s) "
                        f"(first: {_first(list(dict.fromkeys(repeated)))})")
    if problems:
        raise CorruptResults(folder, problems)
    if orphan.any():  # samples of the last group, whose summary rows never made it to disk
        warnings.warn(f"{folder / 'samples.csv'}: ignored {int(orphan.sum())} samples of cases that have "
                      "no summary row (the run was killed while writing them)", stacklevel=3)
        samples = kept.reset_index(drop=True)
    return samples


# -- repair --------------------------------------------------------------------


@dataclass
class RepairReport:
    """What :func:`repair` did; ``changed`` is False when the folder was whole."""

    folder: Path
    summary_removed: list[str] = field(default_factory=list)  # case_id of each exact duplicate removed
    samples_removed: int = 0  # exact duplicate sample rows removed
    stray_removed: int = 0  # samples of no summary row removed (not the last group's)
    torn: list[str] = field(default_factory=list)  # files whose incomplete last line was cut
    log: Path | None = None

    @property
    def changed(self) -> bool:
        return bool(self.summary_removed or self.samples_removed or self.stray_removed or self.torn)

    def lines(self) -> list[str]:
        """One line per change, as written to the log."""
        out = []
        if self.summary_removed:
            keys = list(dict.fromkeys(self.summary_removed))
            out.append(f"summary.csv: removed {len(self.summary_removed)} exact duplicate row(s) of "
                       f"{len(keys)} case(s), keeping the first of each: {', '.join(keys)}")
        if self.samples_removed:
            out.append(f"samples.csv: removed {self.samples_removed} exact duplicate sample row(s), keeping the first")
        if self.stray_removed:
            out.append(f"samples.csv: removed {self.stray_removed} sample(s) of cases with no summary row")
        for name in self.torn:
            out.append(f"{name}: cut an incomplete last line")
        return out


def _records(folder: Path, name: str, columns: list[str]) -> tuple[list[str], list[list[str]], bool]:
    with warnings.catch_warnings():  # a torn line is reported by the repair itself
        warnings.simplefilter("ignore")
        text, torn = _csv_text(folder / name)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or rows[0] != columns:
        raise ResultsError(f"cannot repair {folder}: the header of {name} is not that of this convbench; "
                           "it was edited or written by another version, and repair does not guess")
    return rows[0], rows[1:], torn


def _dedupe(records: list[list[str]], key: Any, what: str, folder: Path) -> tuple[list[list[str]], list[str]]:
    """Records without exact repeats (first kept) and the keys removed; refuses a key whose rows differ."""
    first: dict[Any, list[str]] = {}
    kept, removed, differ = [], [], []
    for rec in records:
        k = key(rec)
        if k not in first:
            first[k] = rec
            kept.append(rec)
        elif rec == first[k]:
            removed.append(k)
        else:
            differ.append(k)
    if differ:
        keys = [str(k) for k in dict.fromkeys(differ)]
        raise ResultsError(
            f"cannot repair {folder}: {len(keys)} {what} appear more than once with different values "
            f"(first: {_first(keys)}); repair cannot tell which measurement is right. Delete the wrong rows "
            "from summary.csv and samples.csv by hand, or delete those cases' rows and `convbench run --resume` "
            "to measure them again"
        )
    return kept, [str(k) for k in removed]


def repair(folder: str | Path) -> RepairReport:
    """Remove exact duplicate rows (keeping the first) and stranded samples from a
    results folder, under its writer lock, and log the changes in ``DIR/repair.log``.

    Raises :class:`ResultsError` (nothing changed) when it cannot decide: rows
    with one key that differ, a header it does not know. Afterwards the folder
    reads cleanly (checked).
    """
    from .io import read_results
    from .lock import FolderLock

    folder = Path(folder)
    read_env(folder)
    report = RepairReport(folder)
    with FolderLock(folder):  # a repair is a writer too
        s_header, s_rows, s_torn = _records(folder, "summary.csv", SUMMARY_COLUMNS)
        p_header, p_rows, p_torn = _records(folder, "samples.csv", SAMPLE_COLUMNS)
        s_id, p_id, p_n = s_header.index("case_id"), p_header.index("case_id"), p_header.index("sample")
        s_rows, report.summary_removed = _dedupe(s_rows, lambda r: r[s_id], "case key(s)", folder)
        done = {r[s_id] for r in s_rows}
        group = [p_header.index(c) for c in GROUP_COLUMNS]
        last = tuple(p_rows[-1][i] for i in group) if p_rows else None
        tail = len(p_rows)
        while tail > 0 and tuple(p_rows[tail - 1][i] for i in group) == last:
            tail -= 1  # the last group's samples may lack summary rows legitimately (resume handles them)
        body = [r for r in p_rows[:tail] if r[p_id] in done]
        report.stray_removed = tail - len(body)
        p_rows = body + p_rows[tail:]
        p_rows, removed = _dedupe(p_rows, lambda r: f"{r[p_id]} sample {r[p_n]}", "sample key(s)", folder)
        report.samples_removed = len(removed)
        report.torn = [name for name, torn in (("summary.csv", s_torn), ("samples.csv", p_torn)) if torn]
        if not report.changed:
            return report
        for name, header, rows in (("summary.csv", s_header, s_rows), ("samples.csv", p_header, p_rows)):
            out = io.StringIO(newline="")
            writer = csv.writer(out)  # the csv module's dialect is the writer's (\r\n, minimal quoting)
            writer.writerow(header)
            writer.writerows(rows)
            write_text_atomic(folder / name, out.getvalue())
        report.log = folder / REPAIR_LOG
        stamp = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
        with open(report.log, "a") as f:
            f.writelines(f"{stamp} convbench repair: {line}\n" for line in report.lines())
    read_results(folder)  # whole now, or the check says what is left
    return report
