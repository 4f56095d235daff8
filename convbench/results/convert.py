"""``convbench convert``: a results folder's tables as Parquet beside the CSVs, or back to CSV."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ResultsError
from .io import read_env
from .schema import SAMPLE_COLUMNS, SUMMARY_COLUMNS, added_since
from .tables import read_csv, read_parquet, require_pyarrow

#: The tables ``convert`` writes, by stem.
TABLES = ("summary", "samples")
FORMATS = ("csv", "parquet")


def convert(folder: str | Path, to: str) -> list[Path]:
    """Write every table of a results folder as ``to`` (``parquet`` or ``csv``); returns the files.

    ``parquet``: from the CSVs (which stay: they are the interchange format).
    ``csv``: from the Parquet files (e.g. a folder shipped as Parquet only).
    Each file is written to a temporary name and renamed, so a killed
    conversion leaves no half file behind.
    """
    if to not in FORMATS:
        raise ResultsError(f"cannot convert to {to!r}; choose one of {', '.join(FORMATS)}")
    folder = Path(folder)
    env = read_env(folder)  # a results folder, of a schema this convbench reads
    written = []
    for stem, columns in zip(TABLES, (SUMMARY_COLUMNS, SAMPLE_COLUMNS)):
        src = folder / f"{stem}.{'csv' if to == 'parquet' else 'parquet'}"
        dst = folder / f"{stem}.{to}"
        if not src.is_file():
            raise ResultsError(f"{folder} has no {src.name} to convert")
        tmp = dst.with_name(dst.name + ".tmp")
        if to == "parquet":
            require_pyarrow("convbench convert --to parquet")
            keys = [c for c in ("case_id", "layer", "algorithm", "layout", "dtype") if stem == "samples"]
            added = added_since(f"{stem}.csv", env["schema_version"])
            df = read_csv(src, columns, added, categorical=keys)
            df.to_parquet(tmp, engine="pyarrow", index=False, compression="zstd")
        else:
            require_pyarrow(f"reading {src}")
            df = read_parquet(src, columns, None, ())
            df.to_csv(tmp, index=False)
            # same content: give it the Parquet file's time, so neither looks stale
            st = src.stat()
            os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, dst)
        written.append(dst)
    return written
