"""Sparse logistic baselines for many more features than subjects: an elastic-net solver (proximal gradient on
a working set of features, checked against the optimality conditions of all of them), its tuning by inner
cross-validation, and late fusion of per-modality models stacked on their out-of-fold log-odds."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.sparse.linalg import LinearOperator, eigsh
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from ..exceptions import ParameterError


def _squared_norm(A) -> float:
    """Largest eigenvalue of ``A.T @ A`` (the squared spectral norm), on the smaller side of ``A``."""
    n, k = A.shape
    if min(n, k) <= 64:
        gram = A.T @ A if k <= n else A @ A.T
        return float(np.linalg.eigvalsh(gram)[-1])
    if k <= n:
        op = LinearOperator((k, k), matvec=lambda v: A.T @ (A @ v), dtype=np.float64)
    else:
        op = LinearOperator((n, n), matvec=lambda u: A @ (A.T @ u), dtype=np.float64)
    start = np.ones(op.shape[0])  # deterministic: eigsh's default start vector is random
    return float(eigsh(op, k=1, which="LA", v0=start, tol=1e-6, return_eigenvectors=False)[0])


def _fista(A, y, C, l1_ratio, w, b, tol, max_iter):
    """Accelerated proximal gradient (FISTA with adaptive restart) on the working-set columns ``A``.

    Stops when the gradient mapping (the optimality residual, in the units of the penalty's subgradient)
    is below ``tol`` everywhere. Returns ``(w, b, converged)``.
    """
    n = len(y)
    if A.shape[1] == 0:
        mean = np.clip(y.mean(), 1e-12, 1 - 1e-12)
        return w, float(np.log(mean / (1 - mean))), True
    step = 4.0 / (C * 1.01 * (_squared_norm(A) + n))  # 1 / Lipschitz constant of C * sum of log-losses
    shrink, scale = step * l1_ratio, 1.0 / (1.0 + step * (1.0 - l1_ratio))
    zw, zb, t = w.copy(), b, 1.0
    for _ in range(max_iter):
        r = expit(A @ zw + zb) - y
        v = zw - step * C * (A.T @ r)
        w_new = np.sign(v) * np.maximum(np.abs(v) - shrink, 0.0) * scale
        b_new = zb - step * C * r.sum()
        residual = max(np.max(np.abs(zw - w_new)), abs(zb - b_new)) / step
        if residual <= tol:
            return w_new, b_new, True
        if np.dot(zw - w_new, w_new - w) + (zb - b_new) * (b_new - b) > 0:
            t = 1.0  # momentum points uphill: restart (O'Donoghue & Candès 2015)
        t_new = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
        momentum = (t - 1.0) / t_new
        zw, zb = w_new + momentum * (w_new - w), b_new + momentum * (b_new - b)
        w, b, t = w_new, b_new, t_new
    return w, b, False


def null_gradient(X, y) -> np.ndarray:
    """``|X.T @ (y - mean(y))|``: how strongly each feature pulls away from the intercept-only model.

    With scikit-learn's scaling of the elastic-net objective every coefficient is zero for
    ``C <= l1_ratio / null_gradient(X, y).max()``.
    """
    y = np.asarray(y, dtype=np.float64)
    return np.abs(X.T @ (y - y.mean()).astype(X.dtype)).astype(np.float64)


def elastic_net_path(X, y, Cs, l1_ratio, *, tol=1e-3, max_iter=5000, kkt_slack=1e-3, min_working_set=32):
    """Elastic-net logistic regression along increasing ``Cs``, each solution warm-starting the next.

    Minimises scikit-learn's objective (`sklearn.linear_model.LogisticRegression` with ``solver="saga"``)::

        C * sum_i log(1 + exp(-s_i (x_i . w + b))) + l1_ratio * |w|_1 + (1 - l1_ratio) / 2 * |w|_2^2

    with ``s_i = 2 y_i - 1``, for p >> n: each solution is found on a small working set of features (the
    previous solution's support and the strongest violators of the optimality condition
    ``|x_j . (y - p)| <= l1_ratio / C``), then every other feature is checked against that condition; the
    strongest violators join the set (doubling it at most) and the fit is repeated. The result is the
    solution on all features, at a cost that grows with the number of non-zero coefficients.

    Parameters
    ----------
    X : ndarray (n, p), float32 or float64
    y : ndarray (n,) of 0/1
    Cs : sequence of float
        Increasing inverse penalties.
    l1_ratio : float in (0, 1]
    tol : float
        Largest optimality residual accepted, in the units of the L1 subgradient (at most 1).
    max_iter : int
        Proximal-gradient iterations per working set.
    kkt_slack : float
        Relative slack of the optimality check of features outside the working set.

    Returns
    -------
    coefs : ndarray (len(Cs), p)
    intercepts : ndarray (len(Cs),)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 40))
    >>> y = (X[:, 0] + 0.5 * rng.standard_normal(60) > 0).astype(int)
    >>> coefs, _ = elastic_net_path(X, y, [0.05, 0.2], l1_ratio=1.0)
    >>> [int(np.count_nonzero(c)) for c in coefs], int(np.argmax(np.abs(coefs[0])))
    ([1, 2], 0)
    """
    if not 0 < l1_ratio <= 1:
        raise ParameterError(f"l1_ratio: expected a number in (0, 1], found {l1_ratio!r}")
    if np.any(np.diff(Cs) < 0) or np.min(Cs) <= 0:
        raise ParameterError(f"Cs: expected positive, increasing values, found {list(Cs)}")
    y = np.asarray(y, dtype=np.float64)
    if not 0 < y.mean() < 1:
        raise ParameterError("y: expected both classes (0 and 1), found one")
    n, p = X.shape
    w, b = np.zeros(p), float(np.log(y.mean() / (1 - y.mean())))
    pull = null_gradient(X, y)
    coefs, intercepts, stalled = np.zeros((len(Cs), p)), np.zeros(len(Cs)), 0
    for i, C in enumerate(Cs):
        threshold = l1_ratio / C
        working = w != 0
        grow, solved = max(min_working_set, int(working.sum())), False
        while True:
            # the strongest violators of the optimality condition join the working set, doubling it at most
            violators = np.flatnonzero((pull > threshold * (1.0 + kkt_slack)) & ~working)
            if not len(violators) and (solved or not working.any()):
                break
            working[violators[np.argsort(-pull[violators], kind="stable")[:grow]]] = True
            cols = np.flatnonzero(working)
            A = np.asarray(X[:, cols], dtype=np.float64)
            w_ws, b, converged = _fista(A, y, C, l1_ratio, w[cols], b, tol, max_iter)
            stalled += not converged
            w = np.zeros(p)
            w[cols] = w_ws
            residual = (y - expit(A @ w_ws + b)).astype(X.dtype)
            pull = np.abs(X.T @ residual).astype(np.float64)
            grow, solved = max(min_working_set, len(cols)), True
        coefs[i], intercepts[i] = w, b
    if stalled:
        warnings.warn(
            f"elastic-net path: {stalled} fit(s) stopped after max_iter={max_iter} iterations before tol={tol:g}",
            ConvergenceWarning,
            stacklevel=2,
        )
    return coefs, intercepts


def inner_cv(y, groups=None, *, n_folds=5, random_state=None) -> list:
    """Stratified inner folds of a training fold: ``[(train_rows, test_rows), ...]``, related subjects
    (same ``groups`` value) kept together; fewer folds when a class has fewer than ``n_folds`` subjects."""
    y = np.asarray(y)
    counts = np.bincount(y.astype(int), minlength=2)
    k = int(min(n_folds, counts.min()))
    if k < 2:
        raise ParameterError(
            f"inner cross-validation: expected at least 2 subjects of each class in a training fold, found "
            f"{counts[0]} and {counts[1]}; use fewer folds or more subjects"
        )
    if groups is None:
        splitter = StratifiedKFold(k, shuffle=True, random_state=random_state)
    else:
        splitter = StratifiedGroupKFold(k, shuffle=True, random_state=random_state)
    return list(splitter.split(np.zeros(len(y)), y, groups))


class ElasticNetLogisticCV(ClassifierMixin, BaseEstimator):
    """Elastic-net logistic regression with ``l1_ratio`` and ``C`` chosen by inner cross-validation.

    For each ``l1_ratio`` the grid of ``C`` starts just above the largest ``C`` whose solution is empty
    (computed on the data given to `fit`) and grows geometrically by ``c_span``. Every grid point is fitted
    on each inner training part (a warm-started path, `elastic_net_path`) and scored by ROC AUC on the inner
    held-out part; the point with the best mean AUC is refitted on all the data.

    Parameters
    ----------
    l1_ratios : sequence of float in (0, 1]
    n_cs : int
        Grid points per ``l1_ratio``.
    c_span : float
        Ratio of the largest to the smallest ``C`` of the grid.
    cv : int or list of (train, test) index pairs
        Number of stratified inner folds, or the folds themselves.
    tol, max_iter
        Passed to `elastic_net_path`.
    random_state : int, optional
        Seeds the inner folds.

    Attributes
    ----------
    l1_ratio_, C_ : float
        The chosen grid point.
    Cs_ : ndarray (n_l1_ratios, n_cs)
    cv_scores_ : ndarray (n_l1_ratios, n_cs, n_inner_folds)
        Inner held-out AUC of every grid point.
    oof_decision_ : ndarray (n,)
        Out-of-fold log-odds of every training row, each from the inner model that did not see it, at the
        grid point that the other inner folds' scores choose: what a stacker is trained on.
    coef_ : ndarray (1, p)
    intercept_ : ndarray (1,)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((120, 50))
    >>> y = (X[:, :3].sum(1) + rng.standard_normal(120) > 0).astype(int)
    >>> model = ElasticNetLogisticCV(random_state=0).fit(X, y)
    >>> sorted(np.argsort(-np.abs(model.coef_[0]))[:3].tolist())
    [0, 1, 2]
    """

    def __init__(
        self, l1_ratios=(0.5, 0.9, 1.0), n_cs=8, c_span=30.0, cv=5, tol=1e-3, max_iter=5000, random_state=None
    ):
        self.l1_ratios = l1_ratios
        self.n_cs = n_cs
        self.c_span = c_span
        self.cv = cv
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    def _grid(self, X, y):
        top = max(null_gradient(X, y).max(), 1e-300)
        ratios = np.asarray(self.l1_ratios, dtype=np.float64)
        return ratios, np.outer(ratios / top, np.geomspace(1.1, 1.1 * self.c_span, self.n_cs))

    def fit(self, X, y, groups=None):
        """Tune on inner folds of (``X``, ``y``), then refit the chosen grid point on all of it.

        ``groups`` (e.g. families) are kept within one inner fold."""
        y = np.asarray(y).astype(int)
        self.classes_ = np.array([0, 1])
        splits = self.cv if not isinstance(self.cv, (int, np.integer)) else None
        if splits is None:
            splits = inner_cv(y, groups, n_folds=self.cv, random_state=self.random_state)
        ratios, grid = self._grid(X, y)
        scores = np.full((*grid.shape, len(splits)), np.nan)
        oof = np.zeros((*grid.shape, len(y)))
        for f, (train, test) in enumerate(splits):
            X_train, X_test = X[train], X[test]
            both = len(np.unique(y[test])) == 2
            for r, ratio in enumerate(ratios):
                coefs, intercepts = elastic_net_path(
                    X_train, y[train], grid[r], ratio, tol=self.tol, max_iter=self.max_iter
                )
                decision = (X_test @ coefs.T.astype(X.dtype)).T + intercepts[:, None]  # (n_cs, n_test)
                oof[r][:, test] = decision
                if both:
                    scores[r, :, f] = [roc_auc_score(y[test], d) for d in decision]
        mean = np.nanmean(scores, axis=2)
        r, c = np.unravel_index(np.nanargmax(mean), mean.shape)
        coefs, intercepts = elastic_net_path(X, y, grid[r, : c + 1], ratios[r], tol=self.tol, max_iter=self.max_iter)
        self.l1_ratio_, self.C_ = float(ratios[r]), float(grid[r, c])
        self.Cs_, self.cv_scores_ = grid, scores
        # each inner fold's rows take the grid point that the *other* inner folds choose: the best of many
        # noisy held-out scores is biased upwards, and a stacker would trust a modality for that bias alone
        self.oof_decision_ = np.zeros(len(y))
        for f, (_, test) in enumerate(splits):
            others = np.nanmean(np.delete(scores, f, axis=2), axis=2) if len(splits) > 1 else mean
            rf, cf = np.unravel_index(np.nanargmax(others), others.shape)
            self.oof_decision_[test] = oof[rf, cf, test]
        self.coef_, self.intercept_ = coefs[-1][None, :], np.array([intercepts[-1]])
        return self

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of the positive class (float64, from the non-zero coefficients' columns only)."""
        keep = np.flatnonzero(self.coef_[0])
        return np.asarray(X[:, keep], dtype=np.float64) @ self.coef_[0, keep] + self.intercept_[0]

    def predict_proba(self, X) -> np.ndarray:
        p = expit(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.decision_function(X) >= 0).astype(int)


def nonnegative_logistic(Z, y, alpha=1.0):
    """Logistic regression with non-negative weights: minimises
    ``sum_i log-loss(b + Z_i . w) + alpha / 2 * |w|^2`` over ``w >= 0`` and a free intercept ``b``.

    Returns ``(w, b)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((400, 2))
    >>> y = (rng.random(400) < 1 / (1 + np.exp(-2 * z[:, 0]))).astype(int)
    >>> w, b = nonnegative_logistic(np.column_stack([z[:, 0], -z[:, 0]]), y)
    >>> bool(w[0] > 1 and w[1] == 0)
    True
    """
    Z = np.asarray(Z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m = Z.shape[1]

    def loss(theta):
        w, b = theta[:m], theta[m]
        z = Z @ w + b
        value = np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * alpha * w @ w
        r = expit(z) - y
        return value, np.append(Z.T @ r + alpha * w, r.sum())

    mean = np.clip(y.mean(), 1e-12, 1 - 1e-12)
    start = np.append(np.zeros(m), np.log(mean / (1 - mean)))
    bounds = [(0.0, None)] * m + [(None, None)]
    fit = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 1000})
    return fit.x[:m], float(fit.x[m])


class LateFusion(ClassifierMixin, BaseEstimator):
    """Late fusion: one sparse logistic model per modality, stacked on their out-of-fold log-odds.

    Each modality's columns get their own `ElasticNetLogisticCV`, all tuned on the same inner folds. The
    out-of-fold log-odds those folds give every training row (inner cross-fitting; ``oof_decision_``, each
    inner fold at the grid point the other folds choose) are the inputs of the stacker, a logistic
    regression with non-negative, lightly L2-penalised weights (`nonnegative_logistic`): a modality that
    carries no signal gets a weight near 0 instead of a sign flipped by noise. The per-modality models are
    then refitted on all the data, so the fused log-odds are ``b + sum_m w_m f_m(x)``, linear in the
    features with coefficients ``w_m * coef_m`` (``coef_``).

    Parameters
    ----------
    blocks : dict
        Modality name -> its columns (a slice or index array).
    estimator : ElasticNetLogisticCV, optional
        Per-modality model (cloned for each; default settings when None).
    stacker_alpha : float
        L2 penalty of the stacker's weights.
    cv : int
        Inner folds, shared by every modality.
    random_state : int, optional
        Seeds the inner folds.

    Attributes
    ----------
    estimators_ : dict
        Modality -> fitted `ElasticNetLogisticCV`.
    stacker_coef_ : ndarray (n_modalities,)
    stacker_intercept_ : float
    coef_ : ndarray (1, p)
    intercept_ : ndarray (1,)

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> X = rng.standard_normal((200, 30))
    >>> y = (X[:, 0] + rng.standard_normal(200) > 0).astype(int)  # only block "a" carries signal
    >>> fused = LateFusion({"a": slice(0, 10), "b": slice(10, 30)}, random_state=0).fit(X, y)
    >>> fused.stacker_coef_.round(2).tolist()
    [1.35, 0.0]
    """

    def __init__(self, blocks, estimator=None, stacker_alpha=1.0, cv=5, random_state=None):
        self.blocks = blocks
        self.estimator = estimator
        self.stacker_alpha = stacker_alpha
        self.cv = cv
        self.random_state = random_state

    def fit(self, X, y, groups=None):
        """Tune and cross-fit each modality on shared inner folds, fit the stacker, refit each modality."""
        y = np.asarray(y).astype(int)
        self.classes_ = np.array([0, 1])
        splits = inner_cv(y, groups, n_folds=self.cv, random_state=self.random_state)
        base = self.estimator if self.estimator is not None else ElasticNetLogisticCV()
        self.estimators_ = {}
        oof = np.zeros((len(y), len(self.blocks)))
        for m, (name, cols) in enumerate(self.blocks.items()):
            model = clone(base).set_params(cv=splits, random_state=self.random_state)
            self.estimators_[name] = model.fit(X[:, cols], y)
            oof[:, m] = model.oof_decision_
        self.stacker_coef_, self.stacker_intercept_ = nonnegative_logistic(oof, y, self.stacker_alpha)
        coef = np.zeros(X.shape[1])
        intercept = self.stacker_intercept_
        for weight, (name, cols) in zip(self.stacker_coef_, self.blocks.items()):
            coef[cols] = weight * self.estimators_[name].coef_[0]
            intercept += weight * self.estimators_[name].intercept_[0]
        self.coef_, self.intercept_ = coef[None, :], np.array([intercept])
        return self

    decision_function = ElasticNetLogisticCV.decision_function
    predict_proba = ElasticNetLogisticCV.predict_proba
    predict = ElasticNetLogisticCV.predict
