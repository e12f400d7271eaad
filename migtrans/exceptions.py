"""Exceptions a user can cause: the CLI prints them as one line and exits with status 2."""

from __future__ import annotations

import os


class MigtransError(Exception):
    """Base class for errors caused by user input (files, options), not by bugs."""


class CohortError(MigtransError):
    """A cohort input is missing, unreadable or inconsistent.

    Parameters
    ----------
    message : str
        What is wrong, phrased as "expected ..., found ...".
    file : str or path-like, optional
        The file at fault.
    subject : str, optional
        The subject at fault.
    column : str, optional
        The column or key at fault.
    """

    def __init__(self, message, *, file=None, subject=None, column=None):
        self.message = message
        self.file = None if file is None else os.fspath(file)
        self.subject = subject
        self.column = column
        super().__init__(self._format())

    def _format(self):
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.subject is not None:
            where.append(f"subject {self.subject!r}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class ParameterError(MigtransError, ValueError):
    """An option or function argument has an invalid value."""


class RunError(MigtransError):
    """A run folder is missing pieces, inconsistent, or holds a file we refuse to load."""


__all__ = ["CohortError", "MigtransError", "ParameterError", "RunError"]
