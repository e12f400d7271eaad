"""Read static FNC matrices (stacked or one file per subject; full K x K or upper triangles; GIFT's
``*_postprocess_results.mat`` in MATLAB v5/v7 or v7.3 (HDF5) form) and the node table, and check them."""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import CohortError
from ..validation import real_values
from ._config import FncSpec
from ._files import check_file, subject_path
from ._phenotypes import read_table

NODE_COLUMNS = ("name", "domain", "x", "y", "z")
_SYMMETRY_TOL = 1e-4
# variables a .mat is read from when [fnc] names none: GIFT's postprocessing output, then our own name
_MAT_DEFAULT_VARIABLES = ("fnc_corrs_all", "fnc")
_MAT_NOT_NUMERIC = {"cell", "struct", "char", "logical", "sparse", "object", "function_handle", "opaque"}
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def read_nodes(path: Path) -> pd.DataFrame:
    """Node table with columns name, domain, x, y, z (MNI mm), one row per node in matrix order."""
    table = read_table(path)
    for column in NODE_COLUMNS:
        if column not in table.columns:
            raise CohortError(
                f"node table needs columns {', '.join(NODE_COLUMNS)}; column not found",
                file=path,
                column=column,
            )
    for column in ("x", "y", "z"):
        values = pd.to_numeric(table[column], errors="coerce")
        if values.isna().any():
            row = int(np.flatnonzero(values.isna())[0])
            raise CohortError(
                f"line {table.attrs['lines'][row]}: coordinate must be a number, found {table[column].iloc[row]!r}",
                file=path,
                column=column,
            )
        table[column] = real_values(values.to_numpy(), what="node coordinates", file=path, column=column)
    dup = table["name"][table["name"].duplicated()]
    if len(dup):
        raise CohortError(f"duplicate node name {dup.iloc[0]!r}", file=path, column="name")
    return table.reset_index(drop=True)


def n_nodes_from_vector(length: int) -> int | None:
    """K such that K (K - 1) / 2 == length, or None."""
    k = int(round((1 + math.sqrt(1 + 8 * length)) / 2))
    return k if k * (k - 1) // 2 == length else None


def to_matrices(values: np.ndarray, n_nodes: int, *, file, subjects) -> np.ndarray:
    """Turn (n, K, K) or (n, K(K-1)/2) row-major upper triangles into checked (n, K, K) float32.

    The diagonal is set to 0 (it holds 1 for Pearson r and inf for Fisher z).
    """
    values = np.asarray(values)
    if values.ndim not in (2, 3):
        raise CohortError(
            f"expected an array of shape (n, K, K) or (n, K(K-1)/2), found shape {values.shape}", file=file
        )
    if values.ndim == 3 and values.shape[1] == values.shape[2] and np.issubdtype(values.dtype, np.floating):
        # the diagonal holds 1 (Pearson r) or inf (Fisher z): not data, and set to 0 anyway
        values = values.copy()
        values[:, np.arange(values.shape[1]), np.arange(values.shape[1])] = 0
    values = real_values(values, what="FNC values", file=file, subjects=list(subjects))
    n = values.shape[0]
    if values.ndim == 2:
        k = n_nodes_from_vector(values.shape[1])
        if k != n_nodes:
            raise CohortError(
                f"expected upper triangles of length {n_nodes * (n_nodes - 1) // 2} "
                f"({n_nodes} nodes in the node table), found length {values.shape[1]}",
                file=file,
            )
        out = np.zeros((n, n_nodes, n_nodes))
        iu = np.triu_indices(n_nodes, 1)
        out[:, iu[0], iu[1]] = values
        out[:, iu[1], iu[0]] = values
        values = out
    elif values.ndim == 3:
        if values.shape[1:] != (n_nodes, n_nodes):
            raise CohortError(
                f"expected {n_nodes} x {n_nodes} matrices ({n_nodes} nodes in the node table), "
                f"found {values.shape[1]} x {values.shape[2]}",
                file=file,
            )
        values = values.copy()
        idx = np.arange(n_nodes)
        values[:, idx, idx] = 0.0
    asym = np.abs(values - values.transpose(0, 2, 1)).reshape(n, -1).max(axis=1)
    scale = np.maximum(1.0, np.abs(values).reshape(n, -1).max(axis=1))
    bad = asym > _SYMMETRY_TOL * scale
    if bad.any():
        i = int(np.argmax(bad))
        raise CohortError(
            f"FNC matrix is not symmetric (max |A - A.T| = {asym[i]:.3g})", file=file, subject=subjects[i]
        )
    return ((values + values.transpose(0, 2, 1)) / 2).astype(np.float32)


@contextmanager
def _reader_errors(path, subject=None):
    """Turn any failure of a third-party reader into a one-line `CohortError` naming the file."""
    try:
        yield
    except CohortError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a user-file problem
        raise CohortError(f"cannot be read ({type(exc).__name__}: {exc})", file=path, subject=subject) from None


def _load_array(path: Path, subject=None, variable=None) -> np.ndarray:
    check_file(path)
    suffix = "".join(path.suffixes[-1:]).lower()
    with _reader_errors(path, subject):
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                keys = list(archive.keys())
                key = "fnc" if "fnc" in keys else (keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise CohortError(
                        f"an .npz with several arrays needs one named 'fnc'; found {', '.join(keys)}",
                        file=path,
                    )
                return archive[key]
        if suffix in (".csv", ".tsv", ".txt"):
            sep = "," if suffix == ".csv" else None
            return np.loadtxt(path, delimiter=sep, ndmin=2)
        if suffix == ".mat":
            return _read_mat(path, _choose_variable(path, _mat_variables(path), variable, subject), subject)
    raise CohortError(
        f"unsupported FNC file type {suffix!r}; use .npy, .npz, .csv, .tsv or .mat", file=path, subject=subject
    )


def _is_hdf5(path: Path) -> bool:
    """Whether ``path`` is an HDF5 file, as MATLAB v7.3 writes them.

    HDF5 looks for its signature at byte 0, 512, 1024, 2048, ...; MATLAB puts it at 512, after a text
    header (the "user block"), which is why scipy's reader cannot open these files.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        offset = 0
        while offset + len(_HDF5_SIGNATURE) <= size:
            fh.seek(offset)
            if fh.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else 2 * offset
    return False


def _h5py(path: Path):
    try:
        import h5py
    except ImportError:
        raise CohortError("is a MATLAB v7.3 (HDF5) file; reading it needs h5py (pip install h5py)", file=path) from None
    return h5py


def _mat_variables(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Name -> (shape in MATLAB's axis order, MATLAB class) of each variable of a .mat file, nothing loaded."""
    if not _is_hdf5(path):
        from scipy.io import whosmat

        return {name: (tuple(shape), cls) for name, shape, cls in whosmat(path)}
    h5py = _h5py(path)
    out = {}
    with h5py.File(path, "r") as f:
        for name, item in f.items():
            if name.startswith("#"):  # "#refs#", "#subsystem#": MATLAB's storage behind cells and objects
                continue
            cls = item.attrs.get("MATLAB_class", b"struct" if isinstance(item, h5py.Group) else b"")
            cls = cls.decode("ascii", "replace") if isinstance(cls, bytes) else str(cls)
            if isinstance(item, h5py.Group):
                shape = ()
            elif item.attrs.get("MATLAB_empty", 0):  # an empty array is stored as its list of dimensions
                shape = (0,)
            else:
                shape = tuple(reversed(item.shape))  # MATLAB is column-major: HDF5 holds the axes reversed
            out[name] = (shape, cls)
    return out


def _choose_variable(path: Path, variables: dict, variable=None, subject=None) -> str:
    """The variable to read: the one [fnc] names, else fnc_corrs_all, else fnc, else the only one."""
    names = ", ".join(variables) or "no variables"
    if variable is not None:
        if variable not in variables:
            raise CohortError(f"[fnc] variable {variable!r} not found; the file holds {names}", file=path)
        return variable
    for default in _MAT_DEFAULT_VARIABLES:
        if default in variables:
            return default
    if len(variables) == 1:
        return next(iter(variables))
    hint = "" if subject is not None else " (or set [fnc] variable)"
    raise CohortError(
        f"a .mat with several variables needs one named 'fnc_corrs_all' or 'fnc'{hint}; found {names}",
        file=path,
        subject=subject,
    )


def _read_mat(path: Path, key: str, subject=None) -> np.ndarray:
    """Variable ``key`` of a MATLAB v5/v7 or v7.3 file, with MATLAB's axis order."""
    if not _is_hdf5(path):
        from scipy.io import loadmat

        return np.asarray(loadmat(path, variable_names=[key])[key])
    h5py = _h5py(path)
    with h5py.File(path, "r") as f:
        item = f[key]
        cls = item.attrs.get("MATLAB_class", b"")
        cls = cls.decode("ascii", "replace") if isinstance(cls, bytes) else str(cls)
        if isinstance(item, h5py.Group) or cls in _MAT_NOT_NUMERIC:
            raise CohortError(
                f"variable {key!r} is a MATLAB {cls or 'group'}, expected a numeric array", file=path, subject=subject
            )
        if item.attrs.get("MATLAB_empty", 0):
            return np.zeros((0,))
        return np.asarray(item[()]).T  # back to MATLAB's order (h5py reads a column-major array reversed)


def _check_stacked_mat(spec: FncSpec, n_ids: int) -> str:
    """Check the shape of a stacked .mat's FNC variable against [fnc] and the subject list, before loading
    anything; return the variable's name."""
    path = spec.path
    with _reader_errors(path):
        variables = _mat_variables(path)
    key = _choose_variable(path, variables, spec.variable)
    shape, cls = variables[key]
    what = f"variable {key!r} (shape {shape})"
    if cls in _MAT_NOT_NUMERIC:
        raise CohortError(f"{what} is a MATLAB {cls}, expected a numeric array", file=path)
    if len(shape) not in (2, 3, 4) or 0 in shape:
        raise CohortError(
            f"{what}: expected subjects x sessions x K x K, subjects x K x K or subjects x K(K-1)/2 upper triangles",
            file=path,
        )
    if len(shape) >= 3 and shape[-1] != shape[-2]:
        raise CohortError(
            f"{what} holds {shape[-2]} x {shape[-1]} matrices; expected square component x component matrices",
            file=path,
        )
    n_sessions = shape[1] if len(shape) == 4 else 1
    if spec.session != "mean" and spec.session > n_sessions:
        raise CohortError(
            f"[fnc] session = {spec.session} is out of range: {what} holds "
            f"{n_sessions} session{'s' if n_sessions > 1 else ''}",
            file=path,
        )
    if shape[0] != n_ids:
        raise CohortError(
            f"{what} holds {shape[0]} subjects (rows), but {Path(spec.subjects).name} lists {n_ids} ids",
            file=path,
        )
    return key


def _one_session(values: np.ndarray, session, *, key: str, file) -> np.ndarray:
    """(n, K, K) from GIFT's (n, sessions, K, K): one session, or the mean over sessions of the Fisher z
    values; arrays without a session axis are returned as they are (`_check_stacked_mat` checked ``session``)."""
    if values.ndim != 4:
        return values
    if values.dtype == bool or not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise CohortError(f"variable {key!r} must hold real numbers, found dtype {values.dtype}", file=file)
    if session == "mean":
        # GIFT's values are Fisher z, which average (r would not); its diagonal is 0 in every session
        return values.mean(axis=1, dtype=np.float64)
    return values[:, session - 1]


def read_subject_list(path: Path) -> list[str]:
    """One subject id per non-empty line."""
    check_file(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CohortError(f"not UTF-8 text ({exc})", file=path) from None
    ids = [line.strip() for line in text.splitlines() if line.strip()]
    seen = set()
    for subject in ids:
        if subject in seen:
            raise CohortError("duplicate subject id", file=path, subject=subject)
        seen.add(subject)
    return ids


def fnc_sources(spec: FncSpec, candidates) -> tuple[list[str], object]:
    """Which subjects have FNC, and a handle used by `read_fnc` (checked, nothing loaded yet)."""
    if spec.path is not None:
        if spec.subjects is not None:
            ids = read_subject_list(spec.subjects)
        else:
            raise CohortError("[fnc] 'path' needs 'subjects'", file=spec.path)
        check_file(spec.path)
        key = _check_stacked_mat(spec, len(ids)) if spec.path.suffix.lower() == ".mat" else None
        return ids, ("stacked", ids, key)
    available = [s for s in candidates if subject_path(spec.template, s).exists()]
    return available, ("template", None, None)


def read_fnc(spec: FncSpec, handle, subjects, n_nodes: int) -> np.ndarray:
    """(n, K, K) float32 FNC for ``subjects`` in that order."""
    kind, ids, key = handle
    if kind == "stacked":
        values = _load_array(spec.path, variable=key)
        if key is not None:  # a .mat, perhaps GIFT's subjects x sessions x K x K
            values = _one_session(values, spec.session, key=key, file=spec.path)
        if values.ndim not in (2, 3) or values.shape[0] != len(ids):
            raise CohortError(
                f"expected {len(ids)} rows (one per line of {Path(spec.subjects).name}), "
                f"found an array of shape {values.shape}",
                file=spec.path,
            )
        row = {s: i for i, s in enumerate(ids)}
        take = np.array([row[s] for s in subjects], dtype=np.int64)
        return to_matrices(values[take], n_nodes, file=spec.path, subjects=list(subjects))
    out = np.empty((len(subjects), n_nodes, n_nodes), dtype=np.float32)
    for i, subject in enumerate(subjects):
        path = subject_path(spec.template, subject)
        values = _load_array(path, subject)
        if values.ndim == 2 and values.shape[0] == 1:  # a vector stored as one row
            values = values[0]
        if values.ndim == 3 and values.shape[0] != 1:
            raise CohortError(
                f"expected one subject's matrix, found {values.shape[0]} stacked (shape {values.shape})",
                file=path,
                subject=subject,
            )
        values = values[None] if values.ndim in (1, 2) else values
        out[i] = to_matrices(values, n_nodes, file=path, subjects=[subject])[0]
    return out
