"""Read static FNC matrices (stacked or one file per subject; full K x K or upper triangles)
and the node table, and check them."""

from __future__ import annotations

import math
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


def _load_array(path: Path, subject=None) -> np.ndarray:
    check_file(path)
    suffix = "".join(path.suffixes[-1:]).lower()
    try:
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
            from scipy.io import loadmat

            content = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
            key = "fnc" if "fnc" in content else (next(iter(content)) if len(content) == 1 else None)
            if key is None:
                raise CohortError(
                    f"a .mat with several variables needs one named 'fnc'; found {', '.join(content)}",
                    file=path,
                )
            return np.asarray(content[key])
    except CohortError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a user-file problem
        raise CohortError(f"cannot be read ({type(exc).__name__}: {exc})", file=path, subject=subject) from None
    raise CohortError(
        f"unsupported FNC file type {suffix!r}; use .npy, .npz, .csv, .tsv or .mat", file=path, subject=subject
    )


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
        return ids, ("stacked", ids)
    available = [s for s in candidates if subject_path(spec.template, s).exists()]
    return available, ("template", None)


def read_fnc(spec: FncSpec, handle, subjects, n_nodes: int) -> np.ndarray:
    """(n, K, K) float32 FNC for ``subjects`` in that order."""
    kind, ids = handle
    if kind == "stacked":
        values = _load_array(spec.path)
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
