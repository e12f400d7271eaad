"""Checks of user-given values, shared by all three packages: numbers and seeds, devices, subject ids and
numeric arrays. Each raises our own one-line error, worded ``<name>: expected ..., found ...``."""

from __future__ import annotations

import math
import re
import unicodedata

import numpy as np

from .exceptions import CohortError, ParameterError

#: Largest seed: numpy seeds are 32-bit, and fold k adds ``1000 * (k + 1)`` to the run's seed.
MAX_SEED = 2**31 - 1
#: Longest subject id: every id becomes part of a file name (limit 255 bytes) through path templates.
MAX_ID_LENGTH = 128
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_number(name, value, *, minimum=None, maximum=None, integer=False, low_open=False, high_open=False):
    """``value`` as an int or float, finite and within ``[minimum, maximum]`` (open ends when asked).

    Parameters
    ----------
    name : str
        The option or argument, as the user wrote it (``--lr``, ``n_folds``).
    value : number
    minimum, maximum : number, optional
    integer : bool
        Require an integer (``True``/``False`` are refused either way).
    low_open, high_open : bool
        Exclude ``minimum`` / ``maximum`` themselves.

    Examples
    --------
    >>> check_number("lr", 1e-3, minimum=0, low_open=True)
    0.001
    >>> check_number("lr", float("inf"), minimum=0, low_open=True)
    Traceback (most recent call last):
    ...
    migtrans.exceptions.ParameterError: lr: expected a finite number > 0, found inf
    """
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, kinds)
    if ok and not integer:
        ok = math.isfinite(float(value))
    if ok and minimum is not None:
        ok = value > minimum if low_open else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if high_open else value <= maximum
    if not ok:
        raise ParameterError(
            f"{name}: expected {_describe(integer, minimum, maximum, low_open, high_open)}, found {value!r}"
        )
    return int(value) if integer else float(value)


def _describe(integer, minimum, maximum, low_open, high_open):
    what = "an integer" if integer else "a finite number"
    low, high = (
        f"{v:,}" if isinstance(v, int) and abs(v) >= 10_000 else f"{v:g}" for v in (minimum or 0, maximum or 0)
    )
    if minimum is not None and maximum is not None:
        return f"{what} in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if minimum is not None:
        return f"{what} {'>' if low_open else '>='} {low}"
    if maximum is not None:
        return f"{what} {'<' if high_open else '<='} {high}"
    return what


def check_option(name, value, allowed):
    """``value`` if it is one of ``allowed``, else a `ParameterError` listing them."""
    if value not in allowed:
        raise ParameterError(f"{name}: expected one of {', '.join(map(str, allowed))}, found {value!r}")
    return value


def check_columns(table, columns, what) -> None:
    """Raise a `ParameterError` naming the columns of ``table`` (a DataFrame) that ``columns`` needs and it lacks."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ParameterError(f"{what}: expected columns {', '.join(columns)}, missing {', '.join(missing)}")


def check_seed(name, value) -> int:
    """A random seed: an integer in [0, 2**31 - 1]."""
    return check_number(name, value, minimum=0, maximum=MAX_SEED, integer=True)


def check_device(name, value) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:<index>`` (availability is checked when the device is used)."""
    if not isinstance(value, str) or not _DEVICE.fullmatch(value):
        raise ParameterError(f"{name}: expected auto, cpu, cuda or cuda:<index>, found {value!r}")
    return value


def subject_id_problem(subject: str) -> str | None:
    """Why ``subject`` cannot be a subject id, or None. Ids end up in file names through path templates,
    so they must be path-safe: no path separator, not ``.`` or ``..``, no control character, at most
    `MAX_ID_LENGTH` characters.

    Examples
    --------
    >>> subject_id_problem("sub-01") is None
    True
    >>> subject_id_problem("../../etc/passwd")
    "contains a path separator ('/')"
    """
    if subject in (".", ".."):
        return "is a relative folder name"
    for sep in ("/", "\\"):
        if sep in subject:
            return f"contains a path separator ({sep!r})"
    for char in subject:
        # Cf: invisible format characters (zero-width spaces, bidi overrides) that make two ids look alike
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") or char == "\x7f":
            return f"contains the control character {char!r}"
    if len(subject) > MAX_ID_LENGTH:
        return f"is {len(subject)} characters long (at most {MAX_ID_LENGTH})"
    return None


def check_subject_ids(ids, *, file, column=None) -> None:
    """Raise `CohortError` naming the first id that is not a valid subject id (see `subject_id_problem`)."""
    for subject in ids:
        problem = subject_id_problem(subject)
        if problem:
            raise CohortError(f"subject id {problem}", file=file, subject=subject, column=column)


def real_values(values, *, what, file, subjects=None, column=None) -> np.ndarray:
    """``values`` as a float64 array of real, finite numbers that also fit in float32 (the model's precision).

    Complex, boolean, object and string arrays are refused, as are NaN, infinities and magnitudes beyond
    float32 (which would become infinite in training). With ``subjects`` (one id per first-axis row), the
    error names the first subject at fault.
    """
    values = np.asarray(values)
    if np.iscomplexobj(values):
        raise CohortError(
            f"{what} must be real numbers, found complex values (dtype {values.dtype})", file=file, column=column
        )
    if values.dtype == bool or not np.issubdtype(values.dtype, np.number):
        raise CohortError(f"{what} must be numeric, found dtype {values.dtype}", file=file, column=column)
    values = values.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(values) <= _FLOAT32_MAX)
    if bad.any():
        first = np.unravel_index(int(np.argmax(bad)), values.shape)
        found = values[first]
        kind = "NaN" if np.isnan(found) else ("infinite" if np.isinf(found) else f"{found:g}, beyond float32")
        subject = subjects[first[0]] if subjects is not None and values.ndim else None
        raise CohortError(
            f"{what} must be finite numbers within float32 range, found {kind}",
            file=file,
            subject=subject,
            column=column,
        )
    return values


__all__ = [
    "MAX_ID_LENGTH",
    "MAX_SEED",
    "check_columns",
    "check_device",
    "check_number",
    "check_option",
    "check_seed",
    "check_subject_ids",
    "real_values",
    "subject_id_problem",
]
