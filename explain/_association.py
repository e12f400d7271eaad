"""Classical per-SNP association: logistic regression of the label on dosage plus covariates, fitted for
all SNPs at once by batched Newton–Raphson (IRLS), with Wald p-values and genomic inflation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from migtrans.data import covariate_matrix
from migtrans.exceptions import ParameterError


def logistic_association(genotypes, labels, covariates=None, *, chunk=2048, max_iter=25, tol=1e-10):
    """Per-SNP logistic regression ``logit P(y=1) = b0 + covariates + beta * dosage`` for every column.

    Subjects with a missing call are left out of that SNP's fit only (weight 0), as PLINK and a
    complete-case statsmodels fit do.

    Parameters
    ----------
    genotypes : array (n, m)
        Dosages, NaN where missing.
    labels : array (n,)
        0/1.
    covariates : DataFrame (n rows), optional
        Numeric columns used as is, others dummy-coded.
    chunk : int
        SNPs fitted together (bounds memory: chunk x n x k^2).

    Returns
    -------
    DataFrame with ``beta_assoc``, ``se_assoc``, ``z_assoc``, ``p_assoc``, ``n_obs`` (one row per SNP; NaN
    where the fit did not converge, e.g. monomorphic SNPs or complete separation).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = rng.integers(0, 3, (200, 3)).astype(float)
    >>> y = (rng.random(200) < 1 / (1 + np.exp(-(g[:, 0] - 1)))).astype(int)
    >>> res = logistic_association(g, y)
    >>> bool(res.loc[0, "p_assoc"] < 1e-4), bool(res.loc[1, "p_assoc"] > 1e-3)
    (True, True)
    """
    g_all = np.asarray(genotypes, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    n, m = g_all.shape
    if y.shape != (n,) or not np.isin(y, (0, 1)).all():
        raise ParameterError("labels: expected n values in {0, 1}")
    C, names = covariate_matrix(covariates, n)
    _check_null_model(C, y, names)
    k = C.shape[1] + 1
    out = np.full((m, 4), np.nan)
    n_obs = np.zeros(m, dtype=np.int64)
    for start in range(0, m, chunk):
        g = g_all[:, start : start + chunk].T  # (c, n)
        present = ~np.isnan(g)
        g = np.where(present, g, 0.0)
        c = g.shape[0]
        # design per SNP: [covariates..., dosage]; X has shape (c, n, k)
        X = np.concatenate([np.broadcast_to(C, (c, n, k - 1)), g[:, :, None]], axis=2)
        beta = np.zeros((c, k))
        converged = np.zeros(c, dtype=bool)
        info = None
        for _ in range(max_iter):
            eta = np.einsum("cnk,ck->cn", X, beta)
            p = 1.0 / (1.0 + np.exp(-eta))
            w = p * (1 - p) * present
            info = np.einsum("cn,cna,cnb->cab", w, X, X)
            score = np.einsum("cna,cn->ca", X, (y - p) * present)
            try:
                step = np.linalg.solve(info, score[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                step = np.stack([_safe_solve(a, b) for a, b in zip(info, score)])
            step = np.where(np.isfinite(step), step, 0.0)
            beta = beta + step
            converged = np.abs(step).max(axis=1) < tol * (1 + np.abs(beta).max(axis=1)) + 1e-8
            if converged.all():
                break
        eta = np.einsum("cnk,ck->cn", X, beta)
        p = 1.0 / (1.0 + np.exp(-eta))
        w = p * (1 - p) * present
        info = np.einsum("cn,cna,cnb->cab", w, X, X)
        cov = np.stack([_safe_inverse(a) for a in info])
        se = np.sqrt(cov[:, -1, -1])
        b = beta[:, -1]
        z = b / se
        pval = 2 * stats.norm.sf(np.abs(z))
        ok = converged & np.isfinite(pval) & (np.abs(b) < 30)
        rows = slice(start, start + c)
        out[rows] = np.where(ok[:, None], np.column_stack([b, se, z, pval]), np.nan)
        n_obs[rows] = present.sum(axis=1)
    polymorphic = np.nanmax(g_all, axis=0, initial=-np.inf) > np.nanmin(g_all, axis=0, initial=np.inf)
    if polymorphic.any() and np.isnan(out[:, 3]).all():
        raise ParameterError(
            f"association: the logistic fit failed for all {int(polymorphic.sum())} polymorphic "
            "SNPs (covariates " + (", ".join(names[1:]) or "none") + "); check the covariates"
        )
    return pd.DataFrame(
        {"beta_assoc": out[:, 0], "se_assoc": out[:, 1], "z_assoc": out[:, 2], "p_assoc": out[:, 3], "n_obs": n_obs}
    )


def _check_null_model(C, y, names, max_iter=50):
    """Refuse covariates that alone predict the label perfectly: then no SNP fit converges and every
    p-value would be NaN (complete or quasi-complete separation of the covariates-only model)."""
    if C.shape[1] == 1:
        return
    beta = np.zeros(C.shape[1])
    for _ in range(max_iter):
        eta = C @ beta
        p = 1 / (1 + np.exp(-np.clip(eta, -40, 40)))
        w = p * (1 - p)
        step = np.linalg.lstsq(C.T @ (w[:, None] * C), C.T @ (y - p), rcond=None)[0]
        beta = beta + step
        if np.abs(step).max() < 1e-8 * (1 + np.abs(beta).max()):
            break
    eta = C @ beta
    if np.abs(eta).max() > 15 or not np.isfinite(eta).all():
        raise ParameterError(
            "covariates: " + ", ".join(names[1:]) + " separate cases from controls almost "
            "perfectly (the covariates-only logistic model has fitted probabilities of 0 or 1), "
            "so no SNP effect can be estimated beyond them; drop or recode the covariate at fault"
        )


def _safe_solve(a, b):
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        return np.full_like(b, np.nan)


def _safe_inverse(a):
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        return np.full_like(a, np.nan)


def genomic_inflation(p_values) -> float:
    """lambda_GC = median(chi2.isf(p, 1)) / chi2.ppf(0.5, 1), ignoring NaN."""
    p = np.asarray(p_values, dtype=float)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return float("nan")
    return float(np.median(stats.chi2.isf(p, 1)) / stats.chi2.ppf(0.5, 1))


def trend_permutation_test(
    genotypes, labels, *, strata=None, n_permutations=1000, random_state=0, perm_chunk=512, snp_chunk=1024
):
    """Max-T permutation test of the per-SNP trend (score) statistic of dosage, for genome-wide FWER.

    The statistic is the Armitage trend / score test on mean-imputed dosage,
    ``T = sum_i y_i c_i / sqrt(var(c) * n1 * n0 / n)`` with ``c`` the centred dosage: only the case sum
    changes under permutation, and with 0/1/2 dosages that sum is an exact integer matrix product
    (int8 x int8 -> int32, vectorised in hardware), the missing calls corrected for separately.

    Parameters
    ----------
    genotypes : array (n, m)
        Dosages in {0, 1, 2}, NaN where missing.
    labels : array (n,)
        0/1.
    strata : array (n,), optional
        Labels are only exchanged within a stratum (fold x site).
    n_permutations, random_state : int
    perm_chunk, snp_chunk : int
        Permutations and SNPs per block. A block's integer results (perm_chunk x snp_chunk) stay in the
        CPU cache while they are centred, compared and maximised: the defaults ran 1.4x faster than
        whole-genome blocks on this project's benchmark (docs/benchmarks.md).

    Returns
    -------
    PermutationResult
        ``stat`` (observed T), ``p_perm``, ``p_fwer`` (max-T), ``q_fdr``, ``max_null``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 100)
    >>> g = rng.binomial(2, 0.3, size=(200, 50)).astype(float)
    >>> g[:, 0] = rng.binomial(2, 0.2 + 0.3 * y)
    >>> res = trend_permutation_test(g, y, n_permutations=199)
    >>> float(res.p_fwer[0]), bool(res.p_fwer[1:].min() > 0.05)
    (0.005, True)
    """
    import torch

    from ._permutation import PermutationResult, bh_fdr, check_design, permuted_labels

    g = np.asarray(genotypes, dtype=np.float32)
    n, m = g.shape
    y, strata = check_design(labels, n, n_permutations, strata)
    y = y.astype(np.int8)
    missing = np.isnan(g)
    filled = np.where(missing, np.float32(0), g)
    calls = filled.astype(np.int8)
    if not np.array_equal(calls, filled) or calls.min() < 0 or calls.max() > 2:
        raise ParameterError("genotypes: the trend permutation test needs hard calls 0, 1, 2 (or NaN)")
    n1 = int(y.sum(dtype=np.int64))
    # per-SNP moments of the observed calls; a missing call is imputed by the mean (contributes 0 once centred)
    count = n - missing.sum(axis=0)
    total = calls.sum(axis=0, dtype=np.int64)
    squares = (filled * filled).sum(axis=0, dtype=np.float64)
    mean = total / np.maximum(count, 1)
    var = np.maximum(squares - count * mean**2, 0) / n
    scale = np.sqrt(var * n1 * (n - n1) / n)
    scale = np.where(scale > 1e-12, scale, np.nan)

    # Exact integer arithmetic: with S the case sum of the observed calls, M the number of cases with a
    # missing call, N the observed calls and A their total, the numerator of T times N is
    # D = N * S - (n1 - M) * A, an integer (|D| <= 2 n^2), so T = D / (N * scale). Exceedances compare |D|
    # exactly (ties stay ties); max-T compares |D| / (N * scale) in float32, computed the same way for the
    # observed and the permuted labels.
    def blocks(matrix):
        # contiguous SNP blocks: the integer kernel reads its operands as dense row-major matrices
        return [torch.from_numpy(np.ascontiguousarray(matrix[:, s : s + snp_chunk])) for s in range(0, m, snp_chunk)]

    int_type = torch.int32 if 2 * n * n < 2**31 else torch.int64
    call_blocks = blocks(calls)
    # per block, the missing-call indicator (None for a complete block: no second product needed)
    missed = [block if block.any() else None for block in blocks(missing.astype(np.int8))]
    starts = range(0, m, snp_chunk)
    count_t = torch.from_numpy(count).to(int_type)
    total_t = torch.from_numpy(total).to(int_type)
    weight = torch.from_numpy(np.where(np.isfinite(scale), 1 / (np.maximum(count, 1) * scale), 0).astype(np.float32))

    def signed_d(Y, k):
        """D (b, SNPs of block k) for label rows Y, a (b, n) int8 tensor."""
        cols = slice(starts[k], starts[k] + call_blocks[k].shape[1])
        d = torch._int_mm(Y, call_blocks[k]).to(int_type).mul_(count_t[cols])
        if missed[k] is None:
            return d.sub_(n1 * total_t[cols])
        cases_observed = n1 - torch._int_mm(Y, missed[k]).to(int_type)
        return d.sub_(cases_observed.mul_(total_t[cols]))

    # a fresh 2-D copy: the kernel misreads a size-1 axis with stride 0 (as numpy makes for y[None, :])
    y_row = torch.from_numpy(y[None, :].copy())
    d_obs = torch.cat([signed_d(y_row, k)[0] for k in range(len(call_blocks))])
    observed = np.where(np.isfinite(scale), d_obs.numpy() / (np.maximum(count, 1) * scale), np.nan)
    observed_d = d_obs.abs()
    threshold = observed_d.float() * weight
    exceed = torch.zeros(m, dtype=torch.int64)
    max_null = torch.empty(n_permutations)
    done = 0
    rng = np.random.default_rng(random_state)
    for Y in permuted_labels(y, strata, n_permutations, rng, perm_chunk):
        Y = torch.from_numpy(np.ascontiguousarray(Y))
        block_max = torch.zeros(Y.shape[0])
        for k in range(len(call_blocks)):
            d = signed_d(Y, k).abs_()
            cols = slice(starts[k], starts[k] + d.shape[1])
            exceed[cols] += (d >= observed_d[cols]).sum(dim=0)
            block_max = torch.maximum(block_max, (d.float() * weight[cols]).max(dim=1).values)
        max_null[done : done + Y.shape[0]] = block_max
        done += Y.shape[0]
    exceed, max_null, threshold = exceed.numpy(), max_null.numpy().astype(np.float64), threshold.numpy()
    valid = np.isfinite(observed)
    p_perm = np.where(valid, (exceed + 1) / (n_permutations + 1), np.nan)
    n_ge = n_permutations - np.searchsorted(np.sort(max_null), threshold, side="left")
    p_fwer = np.where(valid, (n_ge + 1) / (n_permutations + 1), np.nan)
    return PermutationResult(
        stat=observed,
        p_perm=p_perm,
        p_fwer=p_fwer,
        q_fdr=bh_fdr(p_perm),
        n_permutations=n_permutations,
        max_null=max_null,
    )
