"""Cross-validation folds stratified by label (and site), and the inner validation split."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from ._errors import ParameterError


def _strata(labels, site):
    labels = np.asarray(labels)
    if site is None:
        return labels.astype(str)
    strata = np.char.add(np.char.add(labels.astype(str), "|"), np.asarray(site).astype(str))
    return strata


def _safe_strata(labels, site, n_splits):
    """Label x site strata, falling back to label alone when a stratum is smaller than n_splits."""
    strata = _strata(labels, site)
    _, counts = np.unique(strata, return_counts=True)
    if counts.min() < n_splits:
        strata = _strata(labels, None)
    return strata


def make_folds(labels, site=None, *, n_folds=5, random_state=0) -> np.ndarray:
    """Assign every subject to one of ``n_folds`` test folds.

    Folds are stratified by label and, when ``site`` is given, by label x site
    (falling back to label alone when a label x site cell has fewer subjects than folds).

    Parameters
    ----------
    labels : array of int, shape (n,)
    site : array, shape (n,), optional
    n_folds : int
    random_state : int

    Returns
    -------
    ndarray of int, shape (n,)
        The 0-based test fold of each subject.

    Examples
    --------
    >>> make_folds([0, 1] * 10, n_folds=5, random_state=0).tolist().count(0)
    4
    """
    labels = np.asarray(labels)
    _, per_class = np.unique(labels, return_counts=True)
    if n_folds < 2:
        raise ParameterError(f"n_folds must be at least 2, found {n_folds}")
    if per_class.min() < n_folds:
        raise ParameterError(
            f"n_folds={n_folds} needs at least {n_folds} subjects per class, found {per_class.min()}"
        )
    strata = _safe_strata(labels, site, n_folds)
    folds = np.empty(len(labels), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for k, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), strata)):
            folds[test] = k
    return folds


def inner_split(train_idx, labels, site=None, *, val_fraction=0.15, random_state=0):
    """Split a training fold into (fit, validation) indices for early stopping, stratified like the folds."""
    train_idx = np.asarray(train_idx)
    if not 0 < val_fraction < 1:
        raise ParameterError(f"val_fraction must be in (0, 1), found {val_fraction}")
    labels = np.asarray(labels)[train_idx]
    strata = _safe_strata(labels, None if site is None else np.asarray(site)[train_idx], 2)
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=val_fraction, random_state=random_state)
    fit, val = next(splitter.split(np.zeros(len(train_idx)), strata))
    return train_idx[np.sort(fit)], train_idx[np.sort(val)]
