"""Results folders: the schema, writing and reading them, merging shards (see :mod:`.io`); one writer
at a time (:mod:`.lock`); whole or refused (:mod:`.integrity`)."""

from .io import (
    FILES, REQUIRED_COLUMNS, SAMPLE_COLUMNS, SCHEMA_VERSION, STATUSES, SUMMARY_COLUMNS, Results, ResultsError,
    ResultsWriter, ResumeState, check_new_dir, check_writable, default_out_dir, merge_results, network_totals,
    open_resume, read_csv, read_env, read_results,
)
from .integrity import CorruptResults, RepairReport, check_rows, repair
from .lock import LOCK_FILE, FolderLock, FolderLocked

__all__ = [
    "CorruptResults", "FolderLock", "FolderLocked", "LOCK_FILE", "RepairReport", "check_rows", "repair",
    "FILES", "REQUIRED_COLUMNS", "Results", "ResultsError", "ResultsWriter", "ResumeState", "SAMPLE_COLUMNS",
    "SCHEMA_VERSION", "STATUSES", "SUMMARY_COLUMNS", "check_new_dir", "check_writable", "default_out_dir",
    "merge_results", "network_totals", "open_resume", "read_csv", "read_env", "read_results",
]
