"""Baselines on concatenated, fold-standardised features: logistic regression, linear SVM and an MLP, each
with its regularisation chosen on the inner validation split; elastic-net logistic regression and late fusion
of per-modality sparse models, tuned by cross-validation inside the whole training fold."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.svm import LinearSVC

from ._elasticnet import ElasticNetLogisticCV, LateFusion

# Regularisation grids, chosen by validation AUC (documented in the run's config).
GRIDS = {
    "logistic": [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
    "svm": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
    "mlp": [1e-2, 1e-1, 1.0, 10.0],
}

# Tuned by inner cross-validation on the whole training fold (no validation split held out).
CV_TUNED = ("elasticnet", "late_fusion")


def flatten_features(arrays: dict) -> np.ndarray:
    """Concatenate modality arrays: SNPs as is, FNC upper triangles, sMRI masked voxels."""
    parts = []
    if "snp" in arrays:
        parts.append(arrays["snp"])
    if "fnc" in arrays:
        k = arrays["fnc"].shape[1]
        iu = np.triu_indices(k, 1)
        parts.append(arrays["fnc"][:, iu[0], iu[1]])
    if "voxels" in arrays:
        parts.append(arrays["voxels"])
    return np.concatenate(parts, axis=1).astype(np.float32)


def feature_blocks(arrays: dict) -> dict:
    """The columns of each modality (``"snp"``, ``"fnc"``, ``"smri"``) in `flatten_features`' output, as slices.

    Examples
    --------
    >>> arrays = {"snp": np.zeros((2, 5)), "fnc": np.zeros((2, 4, 4)), "voxels": np.zeros((2, 7))}
    >>> feature_blocks(arrays)
    {'snp': slice(0, 5, None), 'fnc': slice(5, 11, None), 'smri': slice(11, 18, None)}
    """
    sizes = {}
    if "snp" in arrays:
        sizes["snp"] = arrays["snp"].shape[1]
    if "fnc" in arrays:
        k = arrays["fnc"].shape[1]
        sizes["fnc"] = k * (k - 1) // 2
    if "voxels" in arrays:
        sizes["smri"] = arrays["voxels"].shape[1]
    ends = np.cumsum(list(sizes.values()))
    return {name: slice(int(end - size), int(end)) for (name, size), end in zip(sizes.items(), ends)}


def _make(kind, value, seed):
    if kind == "logistic":
        return LogisticRegression(C=value, max_iter=2000)
    if kind == "svm":
        return LinearSVC(C=value, max_iter=20000, dual="auto", random_state=seed)
    return MLPClassifier(hidden_layer_sizes=(64,), alpha=value, max_iter=300, early_stopping=False, random_state=seed)


def _score(model, X):
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X)[:, 1]
    # A linear SVM has no probabilities: squash its margin so that 0.5 is its decision boundary.
    return 1.0 / (1.0 + np.exp(-model.decision_function(X)))


def fit_baseline(kind, X_fit, y_fit, X_val, y_val, seed=0):
    """Fit ``kind`` for each grid value, keep the best on validation AUC, refit on fit + val.

    Returns
    -------
    predict : callable
        ``predict(X) -> prob_positive``.
    params : dict of ndarray
        The fitted coefficients (saved as NPZ; never pickled).
    chosen : float
        The selected regularisation value.
    """
    best = (-np.inf, None)
    for value in GRIDS[kind]:
        model = _make(kind, value, seed).fit(X_fit, y_fit)
        auc = roc_auc_score(y_val, _score(model, X_val))
        if auc > best[0]:
            best = (auc, value)
    chosen = best[1]
    model = _make(kind, chosen, seed).fit(np.concatenate([X_fit, X_val]), np.concatenate([y_fit, y_val]))
    if kind == "mlp":
        params = {f"coef_{i}": c for i, c in enumerate(model.coefs_)}
        params.update({f"intercept_{i}": c for i, c in enumerate(model.intercepts_)})
    else:
        params = {"coef": model.coef_, "intercept": np.atleast_1d(model.intercept_)}
    return (lambda X: _score(model, X)), params, chosen


def _best_inner_auc(model) -> float:
    return float(np.nanmax(np.nanmean(model.cv_scores_, axis=2)))


def tuning_summary(model) -> dict:
    """What an `ElasticNetLogisticCV` chose, for a fold's ``fold.json``."""
    return {
        "l1_ratio": model.l1_ratio_,
        "C": model.C_,
        "n_nonzero": int(np.count_nonzero(model.coef_)),
        "inner_auc": _best_inner_auc(model),
    }


def _tuning_arrays(model, prefix="") -> dict:
    return {
        f"{prefix}l1_ratios": np.asarray(model.l1_ratios, dtype=np.float64),
        f"{prefix}Cs": model.Cs_,
        f"{prefix}inner_auc": model.cv_scores_,
        f"{prefix}l1_ratio": np.float64(model.l1_ratio_),
        f"{prefix}C": np.float64(model.C_),
    }


def fit_cv_baseline(kind, X, y, blocks, *, groups=None, seed=0):
    """Fit ``"elasticnet"`` or ``"late_fusion"`` on a whole training fold, tuned by inner cross-validation.

    Parameters
    ----------
    kind : {"elasticnet", "late_fusion"}
    X : ndarray (n, p)
        `flatten_features` of the training fold.
    y : ndarray (n,)
    blocks : dict
        `feature_blocks` of the same arrays (the modalities of late fusion).
    groups : ndarray (n,), optional
        Related subjects share a value and an inner fold.
    seed : int
        Seeds the inner folds.

    Returns
    -------
    decision : callable
        ``decision(X) -> log-odds``, float64.
    params : dict of ndarray
        Saved as NPZ (never pickled): ``coef`` (1, p) and ``intercept`` (1,) give the log-odds
        ``X @ coef.T + intercept`` for both models; ``modalities`` and ``block_sizes`` map the columns back; the
        tuning grid (``l1_ratios``, ``Cs``), every grid point's inner AUC per inner fold (``inner_auc``) and the
        choice (``l1_ratio``, ``C``), prefixed ``<modality>_`` for late fusion, which adds each modality's own
        ``<modality>_coef`` and ``<modality>_intercept`` and the ``stacker_coef`` / ``stacker_intercept``.
    chosen : dict
        What was chosen, for the fold's ``fold.json``.
    """
    if kind == "elasticnet":
        model = ElasticNetLogisticCV(random_state=seed).fit(X, y, groups)
        params, chosen = _tuning_arrays(model), tuning_summary(model)
    elif kind == "late_fusion":
        model = LateFusion(blocks, random_state=seed).fit(X, y, groups)
        params = {"stacker_coef": model.stacker_coef_, "stacker_intercept": np.atleast_1d(model.stacker_intercept_)}
        chosen = {}
        for name, weight in zip(blocks, model.stacker_coef_):
            member = model.estimators_[name]
            params.update(_tuning_arrays(member, f"{name}_"))
            params[f"{name}_coef"], params[f"{name}_intercept"] = member.coef_, member.intercept_
            chosen[name] = {**tuning_summary(member), "stacker_weight": float(weight)}
        chosen["stacker_intercept"] = float(model.stacker_intercept_)
    else:
        raise ValueError(f"not a cross-validated baseline: {kind!r}")
    params.update(
        coef=model.coef_,
        intercept=model.intercept_,
        modalities=np.array(list(blocks)),
        block_sizes=np.array([b.stop - b.start for b in blocks.values()]),
    )
    return model.decision_function, params, chosen
