"""Is a results folder whole? Readers refuse corrupt ones; ``repair`` fixes what it can decide.

A well-formed folder holds each key once: a case in ``summary.csv``
(``case_id``), a case's repetition in ``repetitions.csv`` (``case_id``,
``repetition``), a timed sample in ``samples.csv`` (``case_id``,
``repetition``, ``sample``), and every sample belongs to a summary row or
to a repetition row. Two writers at once, or an edit by hand, break that,
and every figure and verdict drawn from the folder would silently count
cases twice; so :func:`check_integrity`, called by every reader
(:func:`convbench.results.read_results`, resume), raises
:class:`CorruptResults` with the count and the first keys. Repairing is
:mod:`.repair`'s job.

Two kinds of samples without a summary row are legitimate in an unfinished
run: those of repetitions on disk whose case still has repetitions to come,
and those at the very end of ``samples.csv`` of the last group repetition
written, when the run was killed between writing its samples and its rows.
Readers ignore them with a warning (resume measures them again); any other
is corruption.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from .errors import ResultsError
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

class CorruptResults(ResultsError):
    """A results folder holds duplicate keys or stranded samples; ``problems`` lists each."""

    def __init__(self, folder: Path, problems: list[str]):
        self.folder, self.problems = folder, problems
        super().__init__(
            f"{folder} is corrupt: {'; '.join(problems)}. Two runs may have written it at once, or it was "
            f"edited; `convbench repair {folder}` removes exact duplicates and says what it cannot decide"
        )


def first_keys(keys: list[str]) -> str:
    """The first few keys, quoted, for a message."""
    shown = ", ".join(repr(k) for k in keys[:SHOWN])
    return shown + (", ..." if len(keys) > SHOWN else "")


def key_text(values: tuple, columns: tuple[str, ...]) -> str:
    """``a|nchw|float32|t1|im2col``, ``... repetition 1``, ``... repetition 1 sample 3``: a key's
    values named by their ``columns`` (the case id first, as it is)."""
    return " ".join(str(v) if c == "case_id" else f"{c} {v}" for c, v in zip(columns, values))


def trailing_start(keys: list[tuple]) -> int:
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


def check_integrity(folder: str | Path, summary: Any, samples: Any, repetitions: Any) -> Any:
    """Raise :class:`CorruptResults` if the folder's rows (DataFrames of its CSVs,
    in file order; ``repetitions`` None for a schema-1 folder) hold a key twice
    or samples that belong to nothing. Returns ``samples`` without those of
    unfinished cases (warning once), ready to use."""
    folder = Path(folder)
    problems = []
    frames = [("summary.csv", summary), ("repetitions.csv", repetitions), ("samples.csv", samples)]
    for name, df in frames:
        if df is None:
            continue
        columns = tuple(c for c in KEYS[name] if c in df.columns)
        keys = _column_tuples(df, columns)
        seen: set[tuple] = set()
        repeated = [k for k in keys if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
        if repeated:
            distinct = list(dict.fromkeys(key_text(k, columns) for k in repeated))
            what = "case key(s)" if name == "summary.csv" else "key(s)"
            problems.append(f"{name} has {len(repeated)} duplicate row(s) of {len(distinct)} {what} "
                            f"(first: {first_keys(distinct)})")
    ids = samples["case_id"].astype(str)
    finished = ids.isin(set(summary["case_id"].astype(str)))
    owned = finished.to_numpy().copy()
    if repetitions is not None:  # a repetition on disk owns its samples until the case is finished
        reps = set(_column_tuples(repetitions, ("case_id", "repetition")))
        pairs = _column_tuples(samples, ("case_id", "repetition"))
        owned |= [p in reps for p in pairs]
    tail = trailing_start(_column_tuples(samples, GROUP_COLUMNS))
    stray = [i for i in range(tail) if not owned[i]]
    if stray:
        keys = list(dict.fromkeys(ids.iloc[stray]))
        problems.append(f"samples.csv has {len(stray)} sample(s) of {len(keys)} case(s) that belong to no summary "
                        f"or repetition row (first: {first_keys(keys)})")
    if problems:
        raise CorruptResults(folder, problems)
    if not finished.all():  # an unfinished run: repetitions still to come, or a repetition torn by a kill
        warnings.warn(f"{folder / 'samples.csv'}: ignored {int((~finished).sum())} samples of cases that have "
                      "no summary row yet (an unfinished run: resume it to finish them)", stacklevel=3)
        samples = samples[finished].reset_index(drop=True)
    return samples
