"""Small file checks shared by the readers."""

from __future__ import annotations

from pathlib import Path

from ..exceptions import CohortError


def check_file(path) -> Path:
    """Raise `CohortError` unless ``path`` is an existing, non-empty file."""
    path = Path(path)
    try:
        if not path.exists():
            raise CohortError("file not found", file=path)
        if path.is_dir():
            raise CohortError("expected a file, found a folder", file=path)
        if not path.is_file():
            raise CohortError("expected a regular file, found a device, pipe or socket", file=path)
        if path.stat().st_size == 0:
            raise CohortError("file is empty", file=path)
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte, a permission
        raise CohortError(f"cannot be opened ({exc})", file=path) from None
    return path


_NAME_MAX = 255  # bytes in one file-name component on Linux and macOS file systems


def subject_path(template: str, subject: str) -> Path:
    """The file of ``subject`` named by a path template (``{subject_id}`` filled in; ids were checked to be
    path-safe when the phenotype table was read). A file name past the file system's limit is our error."""
    path = Path(template.format(subject_id=subject))
    for part in path.parts:
        if len(part.encode("utf-8", "surrogateescape")) > _NAME_MAX:
            raise CohortError(
                f"file name {part[:40]!r}... is longer than {_NAME_MAX} bytes (shorten the subject id or the template)",
                file=template,
                subject=subject,
            )
    return path
