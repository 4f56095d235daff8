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
from typing import Any, Callable

from .errors import ResultsError

#: The key of a row in each CSV. Columns a folder lacks are left out: a schema-1
#: folder has no ``repetition``, a single run's folder no ``machine`` (a merged
#: folder holds each case once per machine).
KEYS = {
    "summary.csv": ("machine", "case_id"),
    "repetitions.csv": ("machine", "case_id", "repetition"),
    "samples.csv": ("machine", "case_id", "repetition", "sample"),
}

#: The sample columns :func:`check_integrity` needs; readers that load only some columns load these too.
SAMPLE_KEY_COLUMNS = ("machine", "case_id", "repetition", "sample")


def group_of(case_id: str) -> str:
    """The layer variant a case belongs to: its id without the algorithm
    (``layer|layout|dtype|tN|algorithm``); a group's cases are written at once."""
    return case_id.rsplit("|", 1)[0]


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
    def text(v: Any) -> str:  # a number read back as a float where its column has gaps: 1.0 is repetition 1
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)

    return " ".join(text(v) if c == "case_id" else f"{c} {text(v)}" for c, v in zip(columns, values))


def trailing_start(n: int, key: Callable[[int], Any]) -> int:
    """Where the last run of rows with an equal ``key(i)`` starts among ``n`` rows
    (``n`` if none): the last group repetition written. Looks at those rows only."""
    start = n
    while start > 0 and key(start - 1) == key(n - 1):
        start -= 1
    return start


def _column_codes(cols: list[Any]) -> list[Any]:
    """One key column of several frames as integer codes shared by all of them.

    Numbers compare as numbers (1.0 read back from a column with gaps is 1);
    anything else by its text, categoricals recoded through their categories,
    so a column of millions of samples never becomes millions of strings.
    """
    import numpy as np
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype, union_categoricals

    if all(is_numeric_dtype(c) and not is_bool_dtype(c) for c in cols):
        values = np.concatenate([c.to_numpy(dtype=float, na_value=np.nan) for c in cols])
        codes = pd.factorize(values, use_na_sentinel=False)[0]
    else:
        cats = []
        for c in cols:
            if not isinstance(c.dtype, pd.CategoricalDtype):
                c = c.astype(object).where(c.notna(), "").astype(str).astype("category")
            names = c.cat.categories.astype(str)
            if not names.is_unique:  # e.g. 1 and "1": the same text, one category
                c = c.astype(str).astype("category")
                names = c.cat.categories
            cats.append(pd.Categorical.from_codes(c.cat.codes, categories=names))
        codes = union_categoricals(cats, ignore_order=True).codes.astype(np.int64)
    return np.split(codes, np.cumsum([len(c) for c in cols])[:-1])


def _keys(frames: list[Any], columns: tuple[str, ...]) -> list[Any]:
    """Each frame's ``columns`` as one int64 array, equal where the rows' keys are equal
    (across the frames too)."""
    import numpy as np
    import pandas as pd

    sizes = [len(f) for f in frames]
    key = np.zeros(sum(sizes), np.int64)
    for c in columns:
        codes = np.concatenate(_column_codes([f[c] for f in frames]))
        key = pd.factorize(key * (int(codes.max(initial=0)) + 2) + codes + 1)[0]  # stays small: refactorised
    return np.split(key, np.cumsum(sizes)[:-1])


def _present(df: Any, name: str) -> tuple[str, ...]:
    return tuple(c for c in KEYS[name] if c in df.columns)


def _member(rows: Any, of: Any, columns: tuple[str, ...]) -> Any:
    """A bool array: is each row of frame ``rows`` a row of frame ``of`` (on ``columns``)?"""
    import numpy as np

    if not columns:
        return np.ones(len(rows), bool)
    mine, theirs = _keys([rows, of], columns)
    return np.isin(mine, theirs)


def check_integrity(folder: str | Path, summary: Any, samples: Any, repetitions: Any) -> Any:
    """Raise :class:`CorruptResults` if the folder's rows (DataFrames of its CSVs,
    in file order; ``repetitions`` None for a schema-1 folder) hold a key twice
    or samples that belong to nothing. Returns ``samples`` without those of
    unfinished cases (warning once), ready to use. ``samples`` must hold the
    :data:`SAMPLE_KEY_COLUMNS` the folder has (any others are not looked at);
    vectorised, so a folder of millions of samples is checked in seconds."""
    import numpy as np
    import pandas as pd

    folder = Path(folder)
    problems = []
    frames = [("summary.csv", summary), ("repetitions.csv", repetitions), ("samples.csv", samples)]
    for name, df in frames:
        if df is None or not len(df):
            continue
        columns = _present(df, name)
        repeated = pd.Index(_keys([df], columns)[0]).duplicated(keep="first")
        if repeated.any():
            texts = [key_text(tuple(k), columns) for k in df.loc[repeated, list(columns)].itertuples(index=False)]
            distinct = list(dict.fromkeys(texts))
            what = "case key(s)" if name == "summary.csv" else "key(s)"
            problems.append(f"{name} has {int(repeated.sum())} duplicate row(s) of {len(distinct)} {what} "
                            f"(first: {first_keys(distinct)})")
    case = tuple(c for c in ("machine", "case_id") if c in samples.columns and c in summary.columns)
    finished = _member(samples, summary, case)
    owned = finished.copy()
    if repetitions is not None and len(samples):  # a repetition on disk owns its samples until the case is finished
        pair = tuple(c for c in ("machine", "case_id", "repetition")
                     if c in samples.columns and c in repetitions.columns)
        owned |= _member(samples, repetitions, pair)
    tail = _trailing_group_start(samples)
    stray = np.flatnonzero(~owned[:tail])
    if len(stray):
        keys = list(dict.fromkeys(samples["case_id"].astype(str).iloc[stray]))
        problems.append(f"samples.csv has {len(stray)} sample(s) of {len(keys)} case(s) that belong to no summary "
                        f"or repetition row (first: {first_keys(keys)})")
    if problems:
        raise CorruptResults(folder, problems)
    if not finished.all():  # an unfinished run: repetitions still to come, or a repetition torn by a kill
        warnings.warn(f"{folder / 'samples.csv'}: ignored {int((~finished).sum())} samples of cases that have "
                      "no summary row yet (an unfinished run: resume it to finish them)", stacklevel=3)
        samples = samples[finished].reset_index(drop=True)
    return samples


def _trailing_group_start(samples: Any) -> int:
    """Where the samples of the last group repetition written start (:func:`trailing_start`)."""
    import math

    ids = samples["case_id"]
    reps = samples["repetition"] if "repetition" in samples.columns else None

    def group(i: int) -> tuple:
        rep = None if reps is None else float(reps.iat[i])
        return group_of(str(ids.iat[i])), (None if rep is None or math.isnan(rep) else rep)

    return trailing_start(len(samples), group)
