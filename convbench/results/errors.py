"""The errors of reading and writing results folders (one home, imported by every results module)."""

from __future__ import annotations


class ResultsError(Exception):
    """A results folder cannot be written or read; the message says why."""


class FolderNotEmpty(ResultsError):
    """The folder to write already holds something (perhaps a run to resume)."""
