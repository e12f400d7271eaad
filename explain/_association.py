"""Classical per-SNP association: logistic regression of the label on dosage plus covariates, fitted for
all SNPs at once by batched Newton–Raphson (IRLS), with Wald p-values and genomic inflation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from migtrans._errors import ParameterError


def covariate_matrix(covariates: pd.DataFrame | None, n: int) -> tuple[np.ndarray, list[str]]:
    """Intercept + numeric covariates (as is) + categorical covariates dummy-coded (first level dropped)."""
    columns, names = [np.ones(n)], ["intercept"]
    if covariates is not None:
        for name in covariates.columns:
            values = covariates[name]
            if pd.api.types.is_numeric_dtype(values):
                columns.append(values.to_numpy(float))
                names.append(name)
            else:
                levels = sorted(values.astype(str).unique())
                for level in levels[1:]:
                    columns.append((values.astype(str) == level).to_numpy(float))
                    names.append(f"{name}[{level}]")
    return np.column_stack(columns), names


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
    C, _ = covariate_matrix(covariates, n)
    k = C.shape[1] + 1
    out = np.full((m, 4), np.nan)
    n_obs = np.zeros(m, dtype=np.int64)
    for start in range(0, m, chunk):
        g = g_all[:, start:start + chunk].T  # (c, n)
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
    return pd.DataFrame({"beta_assoc": out[:, 0], "se_assoc": out[:, 1], "z_assoc": out[:, 2],
                         "p_assoc": out[:, 3], "n_obs": n_obs})


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
