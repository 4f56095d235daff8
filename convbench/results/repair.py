"""``convbench repair DIR``: remove what can be decided from a corrupt results folder.

Removes rows that are exact duplicates (every column equal, keeping the
first) in ``summary.csv``, ``repetitions.csv`` and ``samples.csv``, and
samples that belong to no summary or repetition row (except the last group
repetition's, which resume handles), under the folder's writer lock, and
logs what it did in ``DIR/repair.log``. Refuses, changing nothing, when rows
with one key differ: it cannot know which measurement is right. What
"corrupt" means is :mod:`.integrity`'s.
"""

from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .errors import ResultsError
from .integrity import KEYS, first_keys, group_of, key_text, trailing_start
from .io import csv_text, read_env, read_results, write_text_atomic
from .lock import FolderLock

REPAIR_LOG = "repair.log"


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
                shown = ", ".join(distinct) if name == "summary.csv" else first_keys(distinct)
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
        text, torn = csv_text(folder / name)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or "case_id" not in rows[0]:
        raise ResultsError(f"cannot repair {folder}: {name} has no case_id column; it was edited or is not "
                           "a convbench file, and repair does not guess")
    return rows[0], rows[1:], torn


def _dedupe(records: list[list[str]], header: list[str], name: str, folder: Path) -> tuple[list[list[str]], list[str]]:
    """Records without exact repeats (first kept) and the keys removed; refuses a key whose rows differ."""
    columns = tuple(c for c in KEYS[name] if c in header)
    index = [header.index(c) for c in columns]
    first: dict[tuple, list[str]] = {}
    kept, removed, differ = [], [], []
    for rec in records:
        k = tuple(rec[i] for i in index)
        if k not in first:
            first[k] = rec
            kept.append(rec)
        elif rec == first[k]:
            removed.append(key_text(k, columns))
        else:
            differ.append(key_text(k, columns))
    if differ:
        keys = list(dict.fromkeys(differ))
        raise ResultsError(
            f"cannot repair {folder}: {name} has {len(keys)} key(s) that appear more than once with different "
            f"values (first: {first_keys(keys)}); repair cannot tell which measurement is right. Delete the wrong "
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
    folder = Path(folder)
    read_env(folder)
    report = RepairReport(folder)
    names = [n for n in ("summary.csv", "repetitions.csv", "samples.csv") if (folder / n).is_file()]
    with FolderLock(folder):  # a repair is a writer too
        files = {}
        for name in names:
            header, records, torn = _records(folder, name)
            records, report.removed[name] = _dedupe(records, header, name, folder)
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
        tail = trailing_start(len(samples), lambda i: (group_of(samples[i][pair[0]]),
                                                       *(samples[i][j] for j in pair[1:])))
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
