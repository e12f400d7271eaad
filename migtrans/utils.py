"""Output helpers shared by the three packages: a TOML writer, JSON-safe conversion, atomic writes with the
user's permissions, output folders (markers, inputs kept apart, staging), checksums."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .exceptions import ParameterError


def to_builtin(obj):
    """Numpy scalars/arrays, tuples and paths -> plain JSON/TOML-safe Python values."""
    if isinstance(obj, dict):
        return {str(k): to_builtin(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_builtin(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_builtin(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def write_toml(sections: dict) -> str:
    """TOML text for ``{table: {key: value}}`` (values: str, int, float, bool, lists; None is skipped)."""
    lines = []
    for table, items in sections.items():
        lines.append(f"[{table}]")
        for key, value in to_builtin(items).items():
            if value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def shareable(path) -> None:
    """Give ``path`` the permissions a plain ``open``/``mkdir`` would (``mkstemp`` and ``mkdtemp`` make
    private ones): outputs are meant to be read by colleagues as the user's umask allows."""
    mode = 0o777 if Path(path).is_dir() else 0o666
    os.chmod(path, mode & ~_umask())


def atomic_write_bytes(path, data: bytes) -> None:
    """Write a file so that readers see either the old or the complete new content."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        shareable(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


# Every output folder migtrans writes carries a marker naming its kind; --overwrite replaces a folder only when
# it is of the kind the command writes (or empty), never a user's own folder or another kind of output.
MARKER = ".migtrans-output"
KINDS = ("run", "report", "cohort", "predictions")


def mark_output(folder, kind: str) -> None:
    """Write the marker that makes ``folder`` a migtrans output of ``kind``."""
    from . import __version__

    atomic_write_text(Path(folder) / MARKER, json.dumps({"kind": kind, "migtrans": __version__}) + "\n")


def output_kind(folder) -> str | None:
    """Which kind of migtrans output ``folder`` is ("run", "report", "cohort", "predictions"), or None.

    Folders written before the marker existed are recognised by content, not by file names alone: a run's
    ``config.toml`` names the migtrans version, a report's ``settings.json`` its attribution method, a
    simulated cohort's ``truth.json`` what was planted.
    """
    folder = Path(folder)
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        return marker["kind"] if marker.get("kind") in KINDS else None
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    legacy = {
        "run": ("config.toml", "migtrans_version"),
        "report": ("settings.json", '"method": "integrated_gradients"'),
        "cohort": ("truth.json", '"causal_snps"'),
    }
    for kind, (name, needle) in legacy.items():
        try:
            if needle in (folder / name).read_text(encoding="utf-8")[:100_000]:
                return kind
        except (OSError, UnicodeDecodeError):
            continue
    return None


def check_outside_inputs(out_dir, inputs, *, option="--out") -> None:
    """Refuse an output folder that is, contains, or sits inside one of the command's inputs.

    Parameters
    ----------
    out_dir : path
    inputs : iterable of (description, path)
        Files and folders the command reads (the cohort folder and every file its TOML names, a run folder,
        an atlas...). Symbolic links are resolved, so another name for the same place is caught too.
    """
    out = Path(out_dir).expanduser().resolve()
    for what, path in inputs:
        path = Path(path).expanduser().resolve()
        if out == path or out in path.parents:
            verb = "is" if out == path else "contains"
            raise ParameterError(
                f"{option}: expected an output apart from the inputs, found {str(out)!r}, which "
                f"{verb} the {what} {str(path)!r}"
            )
        if path in out.parents and path.is_dir():
            raise ParameterError(
                f"{option}: expected an output apart from the inputs, found {str(out)!r} inside the {what} "
                f"{str(path)!r}"
            )


def prepare_out_dir(out_dir, overwrite: bool, *, option="out_dir", kind=None) -> Path:
    """Absolute path of an output folder that is new or empty (or, with ``overwrite``, an output of ``kind``)."""
    out_dir = Path(out_dir).expanduser().absolute()
    if out_dir.is_symlink() and not out_dir.exists():
        raise ParameterError(f"{option}: {str(out_dir)!r} is a broken symbolic link")
    for above in out_dir.parents:
        if above.exists() or above.is_symlink():
            if not above.is_dir():
                raise ParameterError(f"{option}: cannot create {str(out_dir)!r}: {str(above)!r} is not a folder")
            break
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ParameterError(f"{option}: expected a folder, found a file at {str(out_dir)!r}")
        if any(out_dir.iterdir()):
            if not overwrite:
                raise ParameterError(
                    f"{option}: expected a new or empty folder, found {str(out_dir)!r} not empty "
                    "(use --overwrite to replace it)"
                )
            found = output_kind(out_dir)
            if kind is not None and found != kind:
                what = f"a migtrans {found} folder" if found else f"not a migtrans {kind} folder"
                raise ParameterError(
                    f"{option}: --overwrite replaces only a {kind} folder, and {str(out_dir)!r} is {what} "
                    "(nothing was changed; choose another folder, or remove it yourself)"
                )
    return out_dir


# A staging folder ".<name>.tmp-XXXX" is announced by a lock file ".<name>.tmp-XXXX.lock", created and
# locked first and removed last: the lock dies with its process, even under kill -9, so a staging folder
# whose lock can be taken (or that has none) was left by a process that is gone, and is removed.
_LOCKS = {}


def _stale(lock: Path) -> bool:
    import fcntl

    try:
        fd = os.open(lock, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return True
    except OSError:  # not ours to judge (another user's, or a link)
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def clean_stale_staging(parent: Path, name: str) -> None:
    """Remove staging folders of ``name`` in ``parent`` left by processes that were killed: those whose lock
    file exists and can be taken. A hidden folder without our lock file is never touched."""
    prefix = f".{name}.tmp-"
    for lock in list(parent.iterdir()):
        if not (lock.name.startswith(prefix) and lock.name.endswith(".lock")) or not _stale(lock):
            continue
        leftover = lock.with_name(lock.name[: -len(".lock")])
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        lock.unlink(missing_ok=True)


def staging_dir(out_dir: Path) -> Path:
    """A temporary sibling of ``out_dir`` to build outputs in before `move_into_place` (leftovers of killed
    runs beside it are removed first)."""
    import fcntl

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(out_dir.parent, out_dir.name)
    fd, lock = tempfile.mkstemp(prefix=f".{out_dir.name}.tmp-", suffix=".lock", dir=out_dir.parent)
    fcntl.flock(fd, fcntl.LOCK_EX)
    tmp = Path(lock[: -len(".lock")])
    tmp.mkdir()
    shareable(tmp)
    _LOCKS[tmp] = (fd, Path(lock))
    return tmp


def release_staging(tmp: Path) -> None:
    """Drop the lock of a staging folder that was moved into place or removed."""
    fd, lock = _LOCKS.pop(Path(tmp), (None, None))
    if fd is not None:
        lock.unlink(missing_ok=True)
        os.close(fd)


def discard_staging(tmp: Path) -> None:
    """Remove a staging folder after a failure."""
    shutil.rmtree(tmp, ignore_errors=True)
    release_staging(tmp)


def move_into_place(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by the finished ``tmp`` folder."""
    if out_dir.exists():
        # Swap the old folder out before the new one goes in, then delete it.
        trash = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, trash / "old")
        os.replace(tmp, out_dir)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)
    release_staging(tmp)


def sha256_file(path, chunk=1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
