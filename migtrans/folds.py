"""The explanation set held out of all training, cross-validation folds stratified by label (and site), and
the inner validation split."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, StratifiedShuffleSplit

from .exceptions import ParameterError


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


def related_groups(subject_ids, pairs) -> np.ndarray:
    """Group number of every subject: related subjects (``pairs`` of ids, e.g. the genotype QC's kinship
    pairs) share one, through chains of relatives too; everyone else is a group of one.

    Examples
    --------
    >>> related_groups(["a", "b", "c", "d"], [("a", "c"), ("c", "d")]).tolist()
    [0, 1, 0, 0]
    """
    index = {s: i for i, s in enumerate(subject_ids)}
    parent = list(range(len(index)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        if a in index and b in index:
            ra, rb = root(index[a]), root(index[b])
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([root(i) for i in range(len(index))])
    return np.unique(roots, return_inverse=True)[1]


def make_folds(labels, site=None, *, n_folds=5, random_state=0, groups=None) -> np.ndarray:
    """Assign every subject to one of ``n_folds`` test folds.

    Folds are stratified by label and, when ``site`` is given, by label x site
    (falling back to label alone when a label x site cell has fewer subjects than folds).

    Parameters
    ----------
    labels : array of int, shape (n,)
    site : array, shape (n,), optional
    n_folds : int
    random_state : int
    groups : array of int, shape (n,), optional
        Subjects of one group (relatives, `related_groups`) always share a fold.

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
        raise ParameterError(f"n_folds={n_folds} needs at least {n_folds} subjects per class, found {per_class.min()}")
    strata = _safe_strata(labels, site, n_folds)
    folds = np.empty(len(labels), dtype=np.int64)
    if groups is not None and len(np.unique(groups)) < len(labels):
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
        split = splitter.split(np.zeros(len(labels)), strata, groups)
    else:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
        split = splitter.split(np.zeros(len(labels)), strata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for k, (_, test) in enumerate(split):
            folds[test] = k
    return folds


def site_folds(labels, site) -> np.ndarray:
    """Leave-one-site-out folds: the 0-based test fold of every subject is its site's rank (sites sorted).

    Each held-out site must hold both classes (its AUC is reported), and at least two sites are needed.

    Examples
    --------
    >>> site_folds([0, 1, 0, 1, 1, 0], ["b", "b", "a", "a", "c", "c"]).tolist()
    [1, 1, 0, 0, 2, 2]
    """
    if site is None:
        raise ParameterError(
            "folds: leave-one-site-out needs a site column (phenotypes.site_column in the cohort TOML)"
        )
    labels, site = np.asarray(labels), np.asarray(site).astype(str)
    names, codes = np.unique(site, return_inverse=True)
    if len(names) < 2:
        raise ParameterError(f"folds: leave-one-site-out needs at least 2 sites, found 1 ({str(names[0])!r})")
    for k, name in enumerate(names):
        if len(np.unique(labels[codes == k])) < 2:
            raise ParameterError(
                f"folds: site {str(name)!r} holds one class only ({int((codes == k).sum())} subjects), so it cannot be "
                "a test fold of leave-one-site-out; merge it with another site or use label-stratified folds"
            )
    return codes.astype(np.int64)


def explanation_split(labels, site=None, *, fraction=0.25, random_state=0) -> np.ndarray:
    """Choose the explanation set: subjects held out of every training fold, stratified like the folds.

    No model of the run learns from these subjects' labels, so permuting their labels with the models fixed
    gives an exact null for tests on their attributions (DESIGN §5).

    Parameters
    ----------
    labels : array of int, shape (n,)
    site : array, shape (n,), optional
    fraction : float
        Share of subjects in the set, in (0, 1); 0 gives an empty set.
    random_state : int

    Returns
    -------
    ndarray of bool, shape (n,)
        True for subjects in the explanation set.

    Examples
    --------
    >>> int(explanation_split([0, 1] * 20, fraction=0.25).sum())
    10
    """
    labels = np.asarray(labels)
    held = np.zeros(len(labels), dtype=bool)
    if fraction == 0:
        return held
    if not 0 < fraction < 1:
        raise ParameterError(f"explain_fraction must be in [0, 1), found {fraction}")
    _, per_class = np.unique(labels, return_counts=True)
    if len(per_class) < 2 or (per_class * fraction).min() < 2:
        raise ParameterError(
            f"explain_fraction={fraction} leaves fewer than 2 subjects of a class in the "
            f"explanation set ({per_class.min()} in the smaller class)"
        )
    strata = _safe_strata(labels, site, 2)
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _, test = next(splitter.split(np.zeros(len(labels)), strata))
    held[test] = True
    return held


def inner_split(train_idx, labels, site=None, *, val_fraction=0.15, random_state=0):
    """Split a training fold into (fit, validation) indices for early stopping, stratified like the folds."""
    train_idx = np.asarray(train_idx)
    if not 0 < val_fraction < 1:
        raise ParameterError(f"val_fraction must be in (0, 1), found {val_fraction}")
    labels = np.asarray(labels)[train_idx]
    strata = _safe_strata(labels, None if site is None else np.asarray(site)[train_idx], 2)
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=val_fraction, random_state=random_state)
    try:
        fit, val = next(splitter.split(np.zeros(len(train_idx)), strata))
    except ValueError as exc:  # too few subjects for a stratified validation split
        raise ParameterError(
            f"val_fraction={val_fraction:g} of a training fold of {len(train_idx)} subjects cannot hold every "
            f"class ({exc}); use fewer folds, a smaller explanation set, or more subjects"
        ) from None
    return train_idx[np.sort(fit)], train_idx[np.sort(val)]
