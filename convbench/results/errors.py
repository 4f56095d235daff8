"""The exception every results-folder problem is (its own module, so the lock and the
integrity check can raise it without importing the reader and writer that use them)."""


class ResultsError(Exception):
    """A results folder cannot be written or read; the message says why."""
