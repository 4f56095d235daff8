"""The tables of a results folder on disk: CSV (the interchange format) or Parquet.

``summary.csv`` and ``samples.csv`` are what a run writes and what other
tools read. A large run may also carry ``summary.parquet`` and
``samples.parquet`` (``convbench convert DIR --to parquet``): columnar, typed
and compressed, so reading two columns of millions of samples takes a
fraction of a second instead of parsing every field of every line.

Every command reads through :func:`read_table`, which takes the Parquet file
when there is one at least as new as its CSV, else the CSV. A Parquet file
older than its CSV (the run was resumed after converting) is ignored with a
warning: the CSV is the record. Parquet needs pyarrow, an optional
dependency (``pip install 'convbench[parquet]'``); without it the CSVs are
read as always, and only a folder that has nothing but Parquet, or a
conversion to Parquet, says that the extra is needed.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

from .errors import ResultsError
from .schema import COLUMN_DEFAULTS, SCHEMA_VERSION

EXTRA_HINT = "pip install 'convbench[parquet]' (or pip install pyarrow)"


def have_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def _error(message: str) -> Exception:
    return ResultsError(message)


def require_pyarrow(what: str) -> None:
    """Raise ResultsError naming the extra when pyarrow is missing."""
    if not have_pyarrow():
        raise _error(f"{what} needs pyarrow, which is not installed: {EXTRA_HINT}")


def source_of(folder: Path, stem: str) -> Path:
    """The file :func:`read_table` reads for ``stem`` (``summary``/``samples``)."""
    csv, parquet = folder / f"{stem}.csv", folder / f"{stem}.parquet"
    if not parquet.is_file():
        return csv
    if not csv.is_file():
        require_pyarrow(f"{parquet} (this folder has no {csv.name})")
        return parquet
    if parquet.stat().st_mtime_ns < csv.stat().st_mtime_ns:
        warnings.warn(f"{parquet} is older than {csv.name} (rows were added after `convbench convert`); "
                      f"reading {csv.name}. Convert again to read the Parquet file.", stacklevel=3)
        return csv
    return parquet if have_pyarrow() else csv


def read_table(folder: Path, stem: str, required: list[str], added: Sequence[str] = (), *,
               usecols: Sequence[str] | None = None, categorical: Sequence[str] = ()) -> Any:
    """One table of a results folder as a DataFrame (see the module docstring).

    ``required`` columns must all be in the file except ``added`` ones (newer
    than the folder's schema: filled in); ``usecols`` limits what is loaded;
    ``categorical`` string columns come back as categoricals.
    """
    path = source_of(folder, stem)
    if not path.is_file():
        raise _error(f"{folder} has no {stem}.csv; the run may have failed before writing it")
    if path.suffix == ".csv":
        return read_csv(path, required, added, usecols=usecols, categorical=categorical)
    return read_parquet(path, required, usecols, categorical)


def read_parquet(path: Path, required: list[str], usecols: Sequence[str] | None,
                  categorical: Sequence[str]) -> Any:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise _error(f"{path} is not a readable Parquet file ({exc}); convert again or delete it") from None
    header = list(schema.names)
    missing = [c for c in required if c not in header]
    if missing:
        raise _error(f"{path} lacks column(s) {', '.join(missing)}; convert the folder again")
    wanted = header if usecols is None else [c for c in header if c in set(usecols)]
    df = pq.read_table(path, columns=wanted).to_pandas()
    for c in wanted:
        if c in categorical and str(df[c].dtype) != "category":
            df[c] = df[c].astype("category")
        elif c not in categorical and str(df[c].dtype) == "category":
            df[c] = df[c].astype(object)  # as the CSV reader gives it
    return df


def csv_text(path: Path) -> tuple[str, bool]:
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


def _torn(path: Path) -> bool:
    """Whether the file's last byte is not a newline (a run killed mid-write)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_csv(path: str | Path, columns: list[str], added: Sequence[str] = (), *,
             usecols: Sequence[str] | None = None, categorical: Sequence[str] = ()) -> Any:
    """A results CSV as a DataFrame: torn last line dropped, every column of ``columns`` required
    except ``added`` (columns newer than the folder's schema), which are filled in empty.

    ``usecols`` loads only those columns (the file is still checked for all
    of ``columns``); ``categorical`` columns are read as pandas categoricals
    (one copy of each distinct string: a case_id repeated over millions of
    samples would otherwise be millions of strings). The file is parsed from
    disk, never held as text, unless its last line is torn.
    """
    import pandas as pd

    path = Path(path)
    source: Any = io.StringIO(csv_text(path)[0]) if _torn(path) else path
    try:
        header = list(pd.read_csv(source, nrows=0).columns)
        if isinstance(source, io.StringIO):
            source.seek(0)
        missing = [c for c in columns if c not in header and c not in added]
        if missing:
            raise ResultsError(
                f"{path} lacks column(s) {', '.join(missing)}; not a schema-{SCHEMA_VERSION} convbench file "
                "(edited by hand?). Restore the columns or rerun."
            )
        wanted = None if usecols is None else [c for c in header if c in set(usecols)]
        dtype = {c: "category" for c in categorical if c in header}
        df = pd.read_csv(source, keep_default_na=True, usecols=wanted, dtype=dtype or None)
    except pd.errors.EmptyDataError:
        raise ResultsError(f"{path} is empty (not even a header)") from None
    except pd.errors.ParserError as exc:
        raise ResultsError(f"{path} is not a well-formed CSV ({str(exc).strip()}); was it edited by hand?") from None
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path} is not UTF-8 text (byte {exc.start}); not a convbench CSV") from None
    for col in added:
        if col not in df.columns and (usecols is None or col in usecols):
            df[col] = COLUMN_DEFAULTS.get(col, math.nan)
    return df
