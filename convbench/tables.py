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

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

#: The tables ``convert`` writes, by stem.
TABLES = ("summary", "samples")
FORMATS = ("csv", "parquet")
EXTRA_HINT = "pip install 'convbench[parquet]' (or pip install pyarrow)"


def have_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def _error(message: str) -> Exception:
    from .results import ResultsError

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


def read_table(folder: Path, stem: str, required: list[str], *, usecols: Sequence[str] | None = None,
               categorical: Sequence[str] = ()) -> Any:
    """One table of a results folder as a DataFrame (see the module docstring).

    ``required`` columns must all be in the file; ``usecols`` limits what is
    loaded; ``categorical`` string columns come back as categoricals.
    """
    from .results import read_csv

    path = source_of(folder, stem)
    if not path.is_file():
        raise _error(f"{folder} has no {stem}.csv; the run may have failed before writing it")
    if path.suffix == ".csv":
        return read_csv(path, required, usecols=usecols, categorical=categorical)
    return _read_parquet(path, required, usecols, categorical)


def _read_parquet(path: Path, required: list[str], usecols: Sequence[str] | None,
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


def convert(folder: str | Path, to: str) -> list[Path]:
    """Write every table of a results folder as ``to`` (``parquet`` or ``csv``); returns the files.

    ``parquet``: from the CSVs (which stay: they are the interchange format).
    ``csv``: from the Parquet files (e.g. a folder shipped as Parquet only).
    Each file is written to a temporary name and renamed, so a killed
    conversion leaves no half file behind.
    """
    from .results import SAMPLE_COLUMNS, SUMMARY_COLUMNS, read_csv, read_env

    if to not in FORMATS:
        raise _error(f"cannot convert to {to!r}; choose one of {', '.join(FORMATS)}")
    folder = Path(folder)
    read_env(folder)  # a results folder, of a schema this convbench reads
    written = []
    for stem, columns in zip(TABLES, (SUMMARY_COLUMNS, SAMPLE_COLUMNS)):
        src = folder / f"{stem}.{'csv' if to == 'parquet' else 'parquet'}"
        dst = folder / f"{stem}.{to}"
        if not src.is_file():
            raise _error(f"{folder} has no {src.name} to convert")
        tmp = dst.with_name(dst.name + ".tmp")
        if to == "parquet":
            require_pyarrow("convbench convert --to parquet")
            keys = [c for c in ("case_id", "layer", "algorithm", "layout", "dtype") if stem == "samples"]
            df = read_csv(src, columns, categorical=keys)
            df.to_parquet(tmp, engine="pyarrow", index=False, compression="zstd")
        else:
            require_pyarrow(f"reading {src}")
            df = _read_parquet(src, columns, None, ())
            df.to_csv(tmp, index=False)
            # same content: give it the Parquet file's time, so neither looks stale
            st = src.stat()
            os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, dst)
        written.append(dst)
    return written
