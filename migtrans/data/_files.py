"""Small file checks shared by the readers."""

from __future__ import annotations

from pathlib import Path

from .._errors import CohortError


def check_file(path) -> Path:
    """Raise `CohortError` unless ``path`` is an existing, non-empty file."""
    path = Path(path)
    if not path.exists():
        raise CohortError("file not found", file=path)
    if not path.is_file():
        raise CohortError("expected a file, found a folder", file=path)
    if path.stat().st_size == 0:
        raise CohortError("file is empty", file=path)
    return path
