"""scikit-learn baselines on concatenated, fold-standardised features: logistic regression,
linear SVM and an MLP, each with its regularisation chosen on the inner validation split."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.svm import LinearSVC

# Regularisation grids, chosen by validation AUC (documented in the run's config).
GRIDS = {
    "logistic": [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
    "svm": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
    "mlp": [1e-2, 1e-1, 1.0, 10.0],
}


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
