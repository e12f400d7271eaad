"""Permutation testing of case-control contrasts on many features at once: for every feature, a Welch-type
statistic (the difference of case and control means within strata over its unpooled standard error) under B
label permutations drawn within those strata, as chunked matrix products (never a features x B matrix in
memory), giving per-feature p, max-T family-wise p and Benjamini-Hochberg q. Also the combination of
per-fold tests (Bonferroni across folds) and p-values from a retraining null (the statistics of models
trained on permuted labels)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from migtrans.exceptions import ParameterError


def bh_fdr(p_values) -> np.ndarray:
    """Benjamini-Hochberg q-values; NaN stays NaN and does not count as a test.

    statsmodels' ``multipletests`` turns every value into NaN when one input is NaN, so NaNs are masked
    out first, and the method is always given explicitly.
    """
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return q


def check_design(labels, n, n_permutations, strata):
    """Validated (labels as 0/1 ints, strata) for a permutation test over ``n`` subjects."""
    y = np.asarray(labels).astype(int)
    if y.shape != (n,) or not np.isin(y, (0, 1)).all() or y.min() == y.max():
        raise ParameterError("labels: expected n values in {0, 1} with both classes present")
    if n_permutations < 1:
        raise ParameterError(f"n_permutations: expected a positive integer, found {n_permutations!r}")
    return y, (np.zeros(n, dtype=int) if strata is None else np.asarray(strata))


def permuted_labels(labels, strata, n_permutations, rng, chunk):
    """Yield (chunk, n) arrays of labels shuffled within each stratum (the case count per stratum is kept)."""
    labels = np.asarray(labels)
    groups = [np.flatnonzero(strata == s) for s in np.unique(strata)]
    done = 0
    while done < n_permutations:
        size = min(chunk, n_permutations - done)
        out = np.empty((size, len(labels)), dtype=labels.dtype)
        for idx in groups:
            out[:, idx] = rng.permuted(np.broadcast_to(labels[idx], (size, len(idx))), axis=1)
        yield out
        done += size


class _Stratum:
    """One stratum's features centred on its mean, with what the Welch statistic needs of them."""

    def __init__(self, X, rows, y, dtype):
        block = np.asarray(X[rows], dtype=np.float64)
        self.largest = np.abs(block).max(axis=0)
        block -= block.mean(axis=0)
        self.rows, self.y = rows, y[rows].astype(np.float64)
        self.n, self.n1 = len(rows), int(y[rows].sum())
        self.n0 = self.n - self.n1
        self.ss = (block * block).sum(axis=0)  # sum of squares about the stratum mean, (f,)
        self.block = block
        self.XT = np.ascontiguousarray(block.T, dtype=dtype)
        self.X2T = np.ascontiguousarray((block * block).T, dtype=dtype)

    @property
    def informative(self) -> bool:
        return self.n1 > 0 and self.n0 > 0

    def parts(self, S1, Q1, ss):
        """(numerator, variance) contributions of this stratum for case sums ``S1`` and case sums of squares
        ``Q1`` of the centred features (arrays broadcasting with ``ss``).

        With centred values the control sum is ``-S1``, so ``w (mean1 - mean0) = S1`` for the weight
        ``w = n1 n0 / n``. Each class's variance has ``n_k - 1`` in its denominator; a class of one subject
        borrows the stratum's variance."""
        n, n1, n0 = self.n, self.n1, self.n0
        pooled = ss / (n - 1)
        var1 = np.maximum(Q1 - S1 * S1 / n1, 0) / (n1 - 1) if n1 > 1 else pooled
        var0 = np.maximum(ss - Q1 - S1 * S1 / n0, 0) / (n0 - 1) if n0 > 1 else pooled
        w = n1 * n0 / n
        return S1, w * w * (var1 / n1 + var0 / n0)


def _ratio(num, var):
    """num / sqrt(var), with 0/0 = 0 and x/0 = +-inf (perfect separation is as extreme as it gets)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / np.sqrt(var)
        return np.where(var > 0, out, np.where(num == 0, 0.0, np.sign(num) * np.inf))


def _design(X, labels, strata, dtype=np.float64):
    """(strata parts, observed statistic, contrast, testable mask) of features X."""
    X = np.asarray(X)
    y = np.asarray(labels)
    f = X.shape[1]
    parts = [_Stratum(X, np.flatnonzero(strata == s), y, dtype) for s in np.unique(strata)]
    num, var, weight, largest, moving = np.zeros(f), np.zeros(f), 0.0, np.zeros(f), np.zeros(f)
    for s in parts:
        largest = np.maximum(largest, s.largest)
        if not s.informative:
            continue
        a, b = s.parts(s.block.T @ s.y, (s.block * s.block).T @ s.y, s.ss)
        num, var = num + a, var + b
        weight += s.n1 * s.n0 / s.n
        moving += s.ss
    # a feature constant within every stratum with both classes leaves only rounding residue: no statistic
    valid = np.sqrt(moving) > 1e-10 * largest * np.sqrt(len(y))
    stat = np.where(valid, _ratio(num, var), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        contrast = num / weight if weight else np.full(f, np.nan)
    return parts, stat, contrast, valid


def _feature_blocks(n, f, memory_mb):
    """Column slices of an (n, f) matrix small enough that a stratum's float64 copies of one slice (centred
    values, their transpose and squares: about four n x slice arrays) stay within ``memory_mb``: the tables
    of 500,000 SNPs never hold a float64 copy of the whole attribution matrix."""
    size = max(1, int(memory_mb * 2**20 / (4 * 8 * max(1, n))))
    return [slice(start, min(start + size, f)) for start in range(0, f, size)]


def welch_statistic(X, labels, strata=None, *, memory_mb=256):
    """The stratified Welch-type statistic of every feature, and its contrast.

    Within each stratum holding both classes, ``d_s = mean1_s - mean0_s`` has the unpooled variance
    ``v_s = var1_s / n1_s + var0_s / n0_s``. Strata are combined with Mantel-Haenszel weights
    ``w_s = n1_s n0_s / n_s``: the contrast is ``sum w_s d_s / sum w_s`` and the statistic
    ``T = sum w_s d_s / sqrt(sum w_s^2 v_s)``. With one stratum T is Welch's t (scipy's
    ``ttest_ind(equal_var=False)``). Its large-sample null is N(0, 1) for equal means whatever the classes'
    sizes and spreads, so a permutation test on it is exact under exchangeability and asymptotically valid
    for equal means alone (the pooled t is not when the smaller class is the more variable one).

    Returns
    -------
    stat, contrast : ndarray (f,)
        ``stat`` is NaN where the feature is constant within every stratum that holds both classes;
        ``contrast`` is NaN only when no stratum holds both classes.

    Examples
    --------
    >>> from scipy import stats
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], [30, 12]); x = rng.normal(size=(42, 1)) * (1 + 2 * y[:, None])
    >>> t, _ = welch_statistic(x, y)
    >>> bool(np.isclose(t[0], stats.ttest_ind(x[y == 1, 0], x[y == 0, 0], equal_var=False).statistic))
    True
    """
    X = np.asarray(X)
    y, strata = check_design(labels, len(X), 1, strata)
    stat, contrast = np.empty(X.shape[1]), np.empty(X.shape[1])
    for cols in _feature_blocks(*X.shape, memory_mb):
        _, stat[cols], contrast[cols], _ = _design(X[:, cols], y, strata)
    return stat, contrast


@dataclass
class PermutationResult:
    """Observed statistics and permutation p-values of one family of features."""

    stat: np.ndarray  # observed statistic (cases - controls), e.g. the stratified Welch statistic
    p_perm: np.ndarray  # (R + 1) / (B + 1), two-sided on |stat|
    p_fwer: np.ndarray  # max-T across the family
    q_fdr: np.ndarray  # Benjamini-Hochberg on p_perm
    n_permutations: int
    max_null: np.ndarray  # max |stat| over the family, per permutation (for thresholds)
    contrast: np.ndarray | None = None  # difference of means, cases - controls, within strata (features' units)

    def table(self) -> pd.DataFrame:
        columns = {} if self.contrast is None else {"contrast": self.contrast}
        return pd.DataFrame(
            {**columns, "stat": self.stat, "p_perm": self.p_perm, "p_fwer": self.p_fwer, "q_fdr": self.q_fdr}
        )


def permutation_test(
    X, labels, *, strata=None, n_permutations=1000, random_state=0, perm_chunk=250, memory_mb=256, dtype=np.float64
) -> PermutationResult:
    """Per-feature Welch-type contrast of cases vs controls within strata, with permutation p-values.

    The statistic is `welch_statistic`: the Mantel-Haenszel weighted difference of case and control means
    within strata over its unpooled (Welch) standard error. Its null distribution comes from
    ``n_permutations`` shuffles of the labels within strata, so that p-values are exact when the features
    are exchangeable between the classes within each stratum (e.g. the attributions of subjects whose
    labels the model never saw) and approximately valid when only their means are equal.

    Parameters
    ----------
    X : array (n, f)
        One row per subject (e.g. held-out attributions), one column per feature.
    labels : array (n,)
        0/1.
    strata : array (n,), optional
        Labels are only exchanged within a stratum (e.g. site), and contrasts are taken within.
    n_permutations : int
    random_state : int
    perm_chunk : int
        Permutations generated at once.
    memory_mb : float
        Bound on the (features x permutations) blocks held at once, and on the float64 copies of a block of
        features (features are tested a block at a time against the same permutations).
    dtype : numpy dtype
        Of the permuted matrix products (float64 by default: the class variances subtract squares, and
        discrete features need ties between permutations to stay ties).

    Returns
    -------
    PermutationResult
        With ``contrast`` (features' units) and ``stat`` (NaN, with NaN p-values, where the feature cannot
        vary under the permutations).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 50)
    >>> X = rng.normal(size=(100, 4)); X[:, 0] += y
    >>> res = permutation_test(X, y, n_permutations=199, random_state=0)
    >>> float(res.p_perm[0]), bool(res.p_perm[1] > 0.01)
    (0.005, True)

    Within strata, a site offset is not a group difference:

    >>> site = np.repeat([0, 1], 50); y = np.r_[np.repeat([0, 1], [40, 10]), np.repeat([0, 1], [10, 40])]
    >>> x = 10.0 * site + y + rng.normal(scale=0.1, size=100)
    >>> res = permutation_test(x[:, None], y, strata=site, n_permutations=99)
    >>> round(float(res.contrast[0]), 1), round(float(x[y == 1].mean() - x[y == 0].mean()), 1)
    (1.0, 7.0)
    """
    return _permutation_test(
        X,
        None,
        labels,
        strata=strata,
        n_permutations=n_permutations,
        random_state=random_state,
        perm_chunk=perm_chunk,
        memory_mb=memory_mb,
        dtype=dtype,
    )


def _permutation_test(
    X,
    rows,
    labels,
    *,
    strata=None,
    n_permutations=1000,
    random_state=0,
    perm_chunk=250,
    memory_mb=256,
    dtype=np.float64,
) -> PermutationResult:
    """`permutation_test` of ``X[rows]`` (every row: None), which reads ``X`` a block of features at a time:
    a fold's rows of 500,000 SNPs are never copied whole."""
    X = np.asarray(X)
    n, f = (X.shape[0] if rows is None else len(rows)), X.shape[1]
    y, strata = check_design(labels, n, n_permutations, strata)
    rng = np.random.default_rng(random_state)
    # every block of features meets the same permutations: B x n labels are small, the features are not
    permutations = list(permuted_labels(y, strata, n_permutations, rng, perm_chunk))
    observed, contrast, valid = np.empty(f), np.empty(f), np.zeros(f, dtype=bool)
    exceed = np.zeros(f, dtype=np.int64)
    max_null = np.zeros(n_permutations)
    # per stratum two products plus a few temporaries of (features x permutations) float64
    feat_chunk = max(1, int(memory_mb * 2**20 / (8 * max(1, perm_chunk) * 6)))
    for block in _feature_blocks(n, f, memory_mb):
        columns = X[:, block] if rows is None else X[:, block][rows]
        parts, observed[block], contrast[block], valid[block] = _design(columns, y, strata, dtype)
        parts = [s for s in parts if s.informative]
        abs_obs = np.where(valid[block], np.abs(observed[block]), np.inf)
        done = 0
        for Y in permutations:
            block_max = np.zeros(Y.shape[0])
            labels_of = [np.ascontiguousarray(Y[:, s.rows].T, dtype=dtype) for s in parts]
            for start in range(0, len(abs_obs), feat_chunk):
                cols = slice(start, start + feat_chunk)
                num = var = np.zeros((len(abs_obs[cols]), Y.shape[0]))
                for s, Ys in zip(parts, labels_of):
                    S1 = (s.XT[cols] @ Ys).astype(np.float64)
                    Q1 = (s.X2T[cols] @ Ys).astype(np.float64)
                    a, b = s.parts(S1, Q1, s.ss[cols, None])
                    num, var = num + a, var + b
                z = np.abs(_ratio(num, var))
                z[~valid[block][cols]] = 0.0
                # a tiny relative tolerance so ties with the observed value count as "as extreme"
                exceed[block][cols] += (z >= abs_obs[cols, None] * (1 - 1e-9)).sum(axis=1)
                block_max = np.maximum(block_max, z.max(axis=0))
            max_null[done : done + Y.shape[0]] = np.maximum(max_null[done : done + Y.shape[0]], block_max)
            done += Y.shape[0]
        del parts
    abs_obs = np.where(valid, np.abs(observed), np.inf)
    p_perm = np.where(valid, (exceed + 1) / (n_permutations + 1), np.nan)
    return PermutationResult(
        stat=observed,
        p_perm=p_perm,
        p_fwer=np.where(valid, max_t_p(abs_obs, max_null), np.nan),
        q_fdr=bh_fdr(p_perm),
        n_permutations=n_permutations,
        max_null=max_null,
        contrast=contrast,
    )


def max_t_p(abs_observed, max_null) -> np.ndarray:
    """Family-wise p of each feature: (number of null draws whose largest |statistic| over the family reaches
    the feature's |statistic|, + 1) / (draws + 1), with the same tie tolerance as the per-feature p."""
    max_null = np.sort(np.asarray(max_null, dtype=np.float64))
    B = len(max_null)
    n_ge = B - np.searchsorted(max_null, np.asarray(abs_observed) * (1 - 1e-9), side="left")
    return (n_ge + 1) / (B + 1)


def bonferroni_folds(p_by_fold) -> np.ndarray:
    """Combine K per-fold p-values of each feature by ``min(1, K x min_k p_k)``.

    Valid whatever the dependence between folds (a union bound): if each p_k is valid,
    ``P(K min_k p_k <= a) <= sum_k P(p_k <= a / K) <= a``. A fold where the feature cannot be tested (NaN)
    still counts in K, so that the rule stays conservative; a feature testable in no fold stays NaN.

    Examples
    --------
    >>> bonferroni_folds([[0.01, 0.5, np.nan], [0.2, 0.3, np.nan]])
    array([0.02, 0.6 ,  nan])
    """
    p = np.asarray(p_by_fold, dtype=np.float64)
    k = p.shape[0]
    with np.errstate(invalid="ignore"):
        smallest = np.nanmin(np.where(np.isnan(p), np.inf, p), axis=0)
    return np.where(np.isfinite(smallest), np.minimum(1.0, k * smallest), np.nan)


def per_fold_test(X, labels, folds, *, strata=None, n_permutations=1000, random_state=0, **options):
    """Per-fold exact permutation tests, combined across folds by Bonferroni.

    Each fold's subjects were explained by a model that never saw their labels, so permuting a fold's labels
    (within ``strata``, e.g. site) with its model fixed is an exact test of "the feature's attribution is
    exchangeable between cases and controls in this fold". The fold p-values (and max-T family-wise
    p-values) are combined by `bonferroni_folds`: valid under any dependence between folds.

    Parameters
    ----------
    X : array (n, f)
    labels : array (n,)
    folds : array (n,)
        Fold that explained each subject.
    strata : array (n,), optional
        Permutation strata within each fold (sites).
    n_permutations, random_state : int
        B permutations per fold; fold k draws from ``random_state + k``.
    options
        Passed to `permutation_test`.

    Returns
    -------
    PermutationResult
        ``stat`` and ``contrast`` are those of all subjects pooled within fold x strata; ``p_perm`` and
        ``p_fwer`` the combined ones; ``max_null`` is empty (each fold has its own).
    """
    X = np.asarray(X)
    y, strata = check_design(labels, len(X), n_permutations, strata)
    folds = np.asarray(folds)
    names = np.unique(folds)
    p, p_fwer = [], []
    for k, fold in enumerate(names):
        rows = np.flatnonzero(folds == fold)
        if y[rows].min() == y[rows].max():
            raise ParameterError(f"fold {fold}: its held-out subjects hold one class only, nothing to permute")
        res = _permutation_test(
            X,
            rows,
            y[rows],
            strata=strata[rows],
            n_permutations=n_permutations,
            random_state=random_state + k,
            **options,
        )
        p.append(res.p_perm)
        p_fwer.append(res.p_fwer)
    pooled = pd.factorize(pd.Series(folds.astype(str)) + "|" + pd.Series(strata.astype(str)))[0]
    stat, contrast = welch_statistic(X, y, pooled)
    p_comb = bonferroni_folds(p)
    return PermutationResult(
        stat=stat,
        p_perm=p_comb,
        p_fwer=bonferroni_folds(p_fwer),
        q_fdr=bh_fdr(p_comb),
        n_permutations=n_permutations,
        max_null=np.empty(0),
        contrast=contrast,
    )


def retraining_p(stat, null_stats, *, chunk=16384) -> tuple[np.ndarray, np.ndarray]:
    """p-values of observed statistics against the same statistics from B_r null runs.

    Parameters
    ----------
    stat : array (f,)
        Observed statistic of each feature (NaN: untestable).
    null_stats : array (B_r, f)
        The statistic of each feature in each null run (models trained on permuted labels, explained and
        contrasted by the permuted labels); NaN counts as 0.
    chunk : int
        Features compared at once (bounds the float64 copies of the null statistics).

    Returns
    -------
    p_perm : (R + 1) / (B_r + 1), R the null runs with |statistic| at least the observed one.
    p_fwer : max-T over the family: the same with the largest |statistic| of each null run.

    Examples
    --------
    >>> p, p_fwer = retraining_p(np.array([3.0, 0.5]), np.array([[0.2, 1.0], [4.0, 0.1], [0.3, 0.2]]))
    >>> p.tolist(), p_fwer.tolist()
    ([0.5, 0.5], [0.5, 0.75])
    """
    stat = np.asarray(stat, dtype=np.float64)
    null_stats = np.asarray(null_stats)
    if null_stats.ndim != 2 or null_stats.shape[1] != len(stat):
        raise ParameterError(
            f"null_stats: expected (null runs, {len(stat)}) statistics, found shape {null_stats.shape}"
        )
    valid = ~np.isnan(stat)
    obs = np.abs(np.where(valid, stat, np.inf))
    B = null_stats.shape[0]
    exceed = np.zeros(len(stat), dtype=np.int64)
    # the family is the features testable in the observed data; every |statistic| is >= 0
    largest = np.zeros(B)
    # a block of features at a time: 99 null runs of 500,000 SNPs are 400 MB, and each copy as much again
    for start in range(0, len(stat), chunk):
        cols = slice(start, start + chunk)
        null = np.nan_to_num(np.asarray(null_stats[:, cols], dtype=np.float64), nan=0.0, posinf=np.inf, neginf=np.inf)
        null = np.abs(null, out=null)
        exceed[cols] = (null >= obs[cols] * (1 - 1e-9)).sum(axis=0)
        if valid[cols].any():
            largest = np.maximum(largest, null[:, valid[cols]].max(axis=1))
    p = np.where(valid, (exceed + 1) / (B + 1), np.nan)
    p_fwer = np.where(valid, max_t_p(obs, largest), np.nan)
    return p, p_fwer
