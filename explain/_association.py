"""Classical per-SNP association: logistic regression of the label on dosage plus covariates, fitted for
all SNPs at once by batched Newton–Raphson (IRLS), with Wald p-values and genomic inflation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from migtrans.data import covariate_matrix
from migtrans.exceptions import ParameterError

#: the classical association's columns of snps.csv (`logistic_association`, ``n_obs`` named ``n_assoc``)
ASSOCIATION_COLUMNS = ("beta_assoc", "se_assoc", "z_assoc", "p_assoc", "n_assoc", "a1_freq")


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
    DataFrame, one row per SNP: ``beta_assoc`` (log odds ratio per copy of the counted allele, allele 1 of
    the SNP table), its Wald ``se_assoc``, ``z_assoc`` = beta / se and two-sided ``p_assoc`` (NaN where the
    fit did not converge, e.g. monomorphic SNPs or complete separation); ``n_obs``, the subjects with a
    call (those of the fit), and ``a1_freq``, the frequency of the counted allele among them (mean dosage / 2).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = rng.integers(0, 3, (200, 3)).astype(float)
    >>> y = (rng.random(200) < 1 / (1 + np.exp(-(g[:, 0] - 1)))).astype(int)
    >>> res = logistic_association(g, y)
    >>> bool(res.loc[0, "p_assoc"] < 1e-4), bool(res.loc[1, "p_assoc"] > 1e-3)
    (True, True)
    """
    # float64 a chunk of SNPs at a time: a float64 copy of 500 x 500,000 dosages would be 2 GB
    g_all = np.asarray(genotypes)
    if g_all.dtype.kind != "f":
        g_all = g_all.astype(np.float32 if g_all.dtype.itemsize <= 2 else np.float64)
    y = np.asarray(labels, dtype=np.float64)
    n, m = g_all.shape
    if y.shape != (n,) or not np.isin(y, (0, 1)).all():
        raise ParameterError("labels: expected n values in {0, 1}")
    C, names = covariate_matrix(covariates, n)
    _check_null_model(C, y, names)
    k = C.shape[1] + 1
    out = np.full((m, 4), np.nan)
    n_obs = np.zeros(m, dtype=np.int64)
    allele_1 = np.zeros(m)  # counted alleles over the subjects with a call
    for start in range(0, m, chunk):
        g = np.asarray(g_all[:, start : start + chunk].T, dtype=np.float64)  # (c, n)
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
        allele_1[rows] = g.sum(axis=1)
    polymorphic = np.nanmax(g_all, axis=0, initial=-np.inf) > np.nanmin(g_all, axis=0, initial=np.inf)
    if polymorphic.any() and np.isnan(out[:, 3]).all():
        raise ParameterError(
            f"association: the logistic fit failed for all {int(polymorphic.sum())} polymorphic "
            "SNPs (covariates " + (", ".join(names[1:]) or "none") + "); check the covariates"
        )
    a1_freq = np.where(n_obs > 0, allele_1 / (2 * np.maximum(n_obs, 1)), np.nan)
    return pd.DataFrame(
        {
            "beta_assoc": out[:, 0],
            "se_assoc": out[:, 1],
            "z_assoc": out[:, 2],
            "p_assoc": out[:, 3],
            "n_obs": n_obs,
            "a1_freq": a1_freq,
        }
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


def inflation_interval(p_values, *, n_boot=1000, confidence=0.95, random_state=0) -> tuple[float, float, float]:
    """lambda_GC with a percentile bootstrap interval over SNPs: ``(lambda, low, high)``.

    Meant for LD-pruned common SNPs (nearly independent), whose resampling mimics drawing another set of
    independent markers; on unpruned SNPs the interval would be too narrow.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> lam, low, high = inflation_interval(rng.random(2000))
    >>> bool(low < 1.0 < high)
    True
    """
    p = np.asarray(p_values, dtype=float)
    p = p[np.isfinite(p)]
    if p.size < 10:
        return (genomic_inflation(p), float("nan"), float("nan"))
    chi = stats.chi2.isf(p, 1) / stats.chi2.ppf(0.5, 1)
    rng = np.random.default_rng(random_state)
    medians = np.array([np.median(chi[rng.integers(0, chi.size, chi.size)]) for _ in range(n_boot)])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return (float(np.median(chi)), float(low), float(high))


def association_covariates(cohort) -> pd.DataFrame:
    """The covariates of the classical association, one row per subject: the cohort's listed covariates,
    its site as a category (always, when the cohort has a site column, listed or not) and its genetic
    principal components (when computed)."""
    frame = cohort.covariates.copy()
    if cohort.site is not None:
        site_column = cohort.spec.phenotypes.site_column
        if site_column not in frame.columns:
            frame[site_column] = np.asarray(cohort.site).astype(str)
        frame[site_column] = frame[site_column].astype(str)
    pcs = getattr(cohort, "pcs", None)
    if pcs is not None:
        frame = pd.concat([frame, pcs.set_axis(frame.index)], axis=1)
    return frame


def trend_permutation_test(
    genotypes,
    labels,
    *,
    strata=None,
    covariates=None,
    n_permutations=1000,
    random_state=0,
    perm_chunk=512,
    snp_chunk=1024,
    memory_mb=256,
):
    """Max-T permutation test of the per-SNP trend (score) statistic of dosage, for genome-wide FWER.

    The statistic is the Armitage trend / score test stratified by ``strata`` (the sites): dosages are
    centred within each stratum (a missing call is imputed by its stratum's mean), labels are exchanged
    only within a stratum, and
    ``T = sum_i y_i r_i / sqrt(sum_s n1_s n0_s / n_s^2 * sum_{i in s} r_i^2)``, the case sum of the centred
    dosages ``r`` over its standard deviation under within-stratum permutation. Centring within a stratum
    matters: a site whose allele frequency differs (ancestry) keeps its offset in every permutation, and
    with pooled centring that fixed offset inflates the whole max-T null.

    Without ``covariates`` only the case sum of the raw calls changes under permutation, an exact integer
    matrix product (int8 x int8 -> int32) corrected by per-stratum constants (and the missing calls), so
    ties are kept exactly. With ``covariates`` (e.g. genetic principal components) dosages are first
    residualised on the strata and the covariates (least squares), the approach of EIGENSTRAT-style
    adjustment for a permutation test; the product is then in float32 and exceedances are counted with a
    relative tolerance of 1e-5 (1e-9 on the exact path, where equal numerators may differ by rounding).

    Parameters
    ----------
    genotypes : array (n, m)
        Dosages in {0, 1, 2}, NaN where missing.
    labels : array (n,)
        0/1.
    strata : array (n,), optional
        Sites (or fold x site): labels are exchanged, and dosages centred, within a stratum.
    covariates : array (n, q), optional
        Numeric covariates to residualise dosages on, besides the strata.
    n_permutations, random_state : int
    perm_chunk, snp_chunk : int
        Permutations and SNPs per block. A block's results (perm_chunk x snp_chunk) stay in the CPU cache
        while they are centred, compared and maximised: the defaults ran 1.4x faster than whole-genome
        blocks on this project's benchmark (docs/benchmarks.md).
    memory_mb : float
        Bound on the working copies of the SNPs (float32 dosages, calls, residuals, about 32 bytes per
        subject and SNP): the genome is tested in blocks of that many SNPs (a multiple of ``snp_chunk``)
        against the same permutations, so no copy of the whole genotype matrix is made. The p-values do not
        depend on it, the statistics only to rounding.

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

    genotypes = np.asarray(genotypes)  # a float32 matrix is read in place, a block of SNPs at a time
    n, m = genotypes.shape
    y, strata = check_design(labels, n, n_permutations, strata)
    y = y.astype(np.int8)
    design = _TrendDesign(y, strata, covariates)
    # every block of SNPs meets the same permutations: B x n labels are small, the SNPs are not
    rng = np.random.default_rng(random_state)
    permutations = [
        torch.from_numpy(np.ascontiguousarray(Y)) for Y in permuted_labels(y, strata, n_permutations, rng, perm_chunk)
    ]
    # a fresh 2-D copy: the integer kernel misreads a size-1 axis with stride 0 (as numpy makes for y[None, :])
    y_row = torch.from_numpy(y[None, :].copy())
    observed, threshold = np.empty(m), np.empty(m)
    exceed = np.zeros(m, dtype=np.int64)
    max_null = np.zeros(n_permutations)
    block = max(1, int(memory_mb * 2**20 / (32 * n)) // snp_chunk) * snp_chunk
    for start in range(0, m, block):
        snps = slice(start, min(start + block, m))
        part = _TrendBlock(genotypes[:, snps], design, snp_chunk)
        d_obs = torch.cat([part.signed_d(y_row, k)[0] for k in range(len(part.chunks))])
        finite = np.isfinite(part.scale)
        weight = torch.from_numpy(np.where(finite, 1 / np.where(finite, part.scale, 1), 0))
        observed[snps] = np.where(finite, d_obs.numpy() / np.where(finite, part.scale, 1), np.nan)
        observed_d = d_obs.abs() * (1 - part.tolerance)
        threshold[snps] = (observed_d * weight).numpy()
        block_exceed = torch.zeros(len(observed_d), dtype=torch.int64)
        done = 0
        for Y in permutations:
            block_max = torch.zeros(Y.shape[0], dtype=torch.float64)
            for k, cols in enumerate(part.chunks):
                d = part.signed_d(Y, k).abs_()
                block_exceed[cols] += (d >= observed_d[cols]).sum(dim=0)
                block_max = torch.maximum(block_max, (d * weight[cols]).max(dim=1).values)
            rows = slice(done, done + Y.shape[0])
            max_null[rows] = np.maximum(max_null[rows], block_max.numpy())
            done += Y.shape[0]
        exceed[snps] = block_exceed.numpy()
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


class _TrendDesign:
    """What every block of SNPs of `trend_permutation_test` shares: the labels, the strata and their case
    counts, and the basis of the strata and covariates that dosages are residualised on (None without
    covariates)."""

    def __init__(self, y, strata, covariates):
        self.y, self.strata = y, strata
        self.names = np.unique(strata)
        self.groups = [np.flatnonzero(strata == s) for s in self.names]
        self.n1_s = np.array([int(y[rows].sum()) for rows in self.groups])
        self.n_s = np.array([len(rows) for rows in self.groups])
        self.stratum_of = np.empty(len(y), dtype=np.int64)
        for k, rows in enumerate(self.groups):
            self.stratum_of[rows] = k
        self.basis = None if covariates is None else self._basis(covariates)

    def _basis(self, covariates):
        n = len(self.y)
        C = np.asarray(covariates, dtype=np.float64).reshape(n, -1)
        if not np.isfinite(C).all():
            raise ParameterError("covariates: the trend test needs finite numeric covariates for every subject")
        indicators = np.zeros((n, len(self.groups)))
        for k, rows in enumerate(self.groups):
            indicators[rows, k] = 1.0
        Q, _ = np.linalg.qr(np.column_stack([indicators, C - C.mean(axis=0)]))
        return Q


class _TrendBlock:
    """One block of SNPs of `trend_permutation_test`: its scale (the statistic's standard deviation under
    permutation, NaN where it cannot vary) and the numerator of any labels, a chunk of ``snp_chunk`` SNPs
    at a time (`signed_d`). Every quantity is per SNP, so a block's equal the whole genome's."""

    def __init__(self, genotypes, design: _TrendDesign, snp_chunk):
        import torch

        g = np.asarray(genotypes, dtype=np.float32)
        b = g.shape[1]
        missing = np.isnan(g)
        filled = np.where(missing, np.float32(0), g)
        calls = filled.astype(np.int8)
        if not np.array_equal(calls, filled) or calls.min() < 0 or calls.max() > 2:
            raise ParameterError("genotypes: the trend permutation test needs hard calls 0, 1, 2 (or NaN)")
        groups, n1_s, n_s = design.groups, design.n1_s, design.n_s
        # per stratum: observed calls, their total and mean (the imputed value of a missing call)
        count_s = np.stack([n_s[k] - missing[rows].sum(axis=0) for k, rows in enumerate(groups)])
        total_s = np.stack([calls[rows].sum(axis=0, dtype=np.int64) for rows in groups])
        mean_s = total_s / np.maximum(count_s, 1)
        if design.basis is None:
            residual = None
            squares = np.stack([(filled[rows].astype(np.float64) ** 2).sum(axis=0) for rows in groups])
            ss_s = np.maximum(squares - count_s * mean_s**2, 0)
        else:
            residual = _residualised(filled, missing, mean_s, design.stratum_of, design.basis)
            ss_s = np.stack([(residual[rows].astype(np.float64) ** 2).sum(axis=0) for rows in groups])
        scale = np.sqrt((n1_s * (n_s - n1_s) / n_s**2) @ ss_s)
        self.scale = np.where(scale > 1e-12, scale, np.nan)
        self.chunks = [slice(s, min(s + snp_chunk, b)) for s in range(0, b, snp_chunk)]

        def blocks(matrix):
            # contiguous SNP chunks: the matrix kernels read their operands as dense row-major matrices
            return [torch.from_numpy(np.ascontiguousarray(matrix[:, cols])) for cols in self.chunks]

        self._residual = None if residual is None else blocks(residual)
        if residual is None:
            # numerator = S - sum_s (n1_s - M_s) mean_s, with S the case sum of the observed calls and M_s the
            # cases of stratum s with a missing call: exact integers combined by the same float64 operations
            # for the observed and the permuted labels, so equal case sums stay equal numerators
            self._calls = blocks(calls)
            self._stratum_missing = [
                [chunk if chunk.any() else None for chunk in blocks(missing & (design.strata == s)[:, None])]
                for s in design.names
            ]
            self._mean = torch.from_numpy(mean_s)
            self._constant = torch.from_numpy(n1_s.astype(np.float64) @ mean_s)
            # rationally equal numerators from different (S, M_s) differ by float64 rounding: count them as ties
            self.tolerance = 1e-9
        else:
            self.tolerance = 1e-5

    def signed_d(self, Y, k):
        """The numerator (case sum of the centred dosages) of chunk ``k`` for each row of labels ``Y``,
        float64 (rows of Y, SNPs of the chunk)."""
        import torch

        if self._residual is not None:
            return (Y.float() @ self._residual[k]).double()
        cols = self.chunks[k]
        d = torch._int_mm(Y, self._calls[k]).double().sub_(self._constant[cols])
        for s, per_chunk in enumerate(self._stratum_missing):
            if per_chunk[k] is not None:
                d.add_(torch._int_mm(Y, per_chunk[k].to(torch.int8)).double().mul_(self._mean[s, cols]))
        return d


def _residualised(filled, missing, mean_s, stratum_of, basis, chunk=4096):
    """Dosages (missing calls at their stratum's mean) minus their least-squares fit on the orthonormal
    ``basis`` of the strata and the covariates, float32 (n, m)."""
    n, m = filled.shape
    out = np.empty((n, m), dtype=np.float32)
    for s in range(0, m, chunk):
        block = filled[:, s : s + chunk].astype(np.float64)
        block = np.where(missing[:, s : s + chunk], mean_s[stratum_of, s : s + chunk], block)
        out[:, s : s + chunk] = block - basis @ (basis.T @ block)
    return out
