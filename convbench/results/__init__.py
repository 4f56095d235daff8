"""Results folders: the schema (columns, keys, statuses), writing and reading, resuming, merging shards."""

from .io import FolderNotEmpty, Results, ResultsError, ResultsWriter, check_new_dir, default_out_dir, read_env, read_results
from .merge import merge_results
from .resume import ResumeState, open_resume
from .schema import (
    CASE_KEYS, FILES, REQUIRED_COLUMNS, SAMPLE_COLUMNS, SCHEMA_VERSION, STATUSES, SUMMARY_COLUMNS, VARIANT_KEYS,
    SchemaError, sample_row, spec_columns, spec_of, summary_row,
)

__all__ = [
    "CASE_KEYS", "FILES", "FolderNotEmpty", "REQUIRED_COLUMNS", "Results", "ResultsError", "ResultsWriter",
    "ResumeState", "SAMPLE_COLUMNS", "SCHEMA_VERSION", "STATUSES", "SUMMARY_COLUMNS", "SchemaError", "VARIANT_KEYS",
    "check_new_dir", "default_out_dir", "merge_results", "open_resume", "read_env", "read_results", "sample_row",
    "spec_columns", "spec_of", "summary_row",
]
