"""Results folders: the schema (columns, keys, statuses), writing and reading, resuming, merging shards;
one writer at a time (:mod:`.lock`); whole or refused (:mod:`.integrity`)."""

from .integrity import CorruptResults, check_integrity
from .io import ANALYSIS_SAMPLE_COLUMNS, FolderNotEmpty, Results, ResultsError, ResultsWriter, check_new_dir, default_out_dir, read_env, read_results
from .lock import FolderLock, FolderLocked
from .merge import merge_results
from .repair import RepairReport, repair
from .resume import ResumeState, open_resume
from .schema import (
    CASE_KEYS, FILES, LOCK_FILE, REQUIRED_COLUMNS, SAMPLE_COLUMNS, SCHEMA_VERSION, STATUSES, SUMMARY_COLUMNS, VARIANT_KEYS,
    SchemaError, sample_row, spec_columns, spec_of, summary_row,
)

__all__ = [
    "CorruptResults", "FolderLock", "FolderLocked", "LOCK_FILE", "RepairReport", "check_integrity", "repair",
    "ANALYSIS_SAMPLE_COLUMNS", "CASE_KEYS", "FILES", "FolderNotEmpty", "REQUIRED_COLUMNS", "Results", "ResultsError", "ResultsWriter",
    "ResumeState", "SAMPLE_COLUMNS", "SCHEMA_VERSION", "STATUSES", "SUMMARY_COLUMNS", "SchemaError", "VARIANT_KEYS",
    "check_new_dir", "default_out_dir", "merge_results", "open_resume", "read_env", "read_results", "sample_row",
    "spec_columns", "spec_of", "summary_row",
]
