"""LD pruning and genetic principal components that reproduce plink 1.9's ``--indep-pairwise`` and ``--pca``,
so that ancestry covariates computed here can be checked against, and exchanged with, a plink run."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg
from threadpoolctl import threadpool_limits

from ..exceptions import ParameterError
from ..loci import chrom_code, normalise_chrom

__all__ = ["GeneticPCs", "ancestry_pcs", "genetic_pcs", "ld_prune", "project_pcs"]

# plink 1.9's SMALL_EPSILON (plink_common.h): its ">" and "<" between doubles carry this relative margin, so
# an r² equal to the threshold keeps both SNPs and equal MAFs are ties, exactly as in plink.
_SMALL_EPSILON = 2.0**-44
# Columns read at a time when a pass over all SNPs needs float64 copies: bounds the memory of 100k-SNP inputs.
_CHUNK = 4096
# SNPs per block of r² products: near the window size wastes the fewest products outside the band.
_PAIR_BLOCK = 64


@dataclass(frozen=True)
class GeneticPCs:
    """Top principal components of the genetic relationship matrix, as plink 1.9 ``--pca`` writes them.

    Parameters
    ----------
    scores : ndarray of shape (n_subjects, n_components)
        Unit-norm eigenvectors of the relationship matrix, one column per component: the values of plink's
        ``.eigenvec`` file (up to sign, which is fixed here so that each column's largest-magnitude entry
        is positive).
    eigenvalues : ndarray of shape (n_components,)
        The matching eigenvalues in decreasing order (plink's ``.eigenval``).
    n_snps_used : int
        Number of SNPs that entered the relationship matrix (polymorphic among the selected ones).
    snp_mask : ndarray of bool of shape (n_snps,)
        Which SNPs of the input entered the relationship matrix.
    frequencies : ndarray of shape (n_snps_used,)
        Allele-1 frequency among the called alleles of the SNPs used (in the order of ``snp_mask``): the
        standardisation of the relationship matrix, which :func:`project_pcs` applies to new subjects.
    loadings : ndarray of shape (n_snps_used, n_components)
        SNP loadings ``Z' v / (M lambda)`` of each component (``Z`` the standardised dosages, missing
        calls 0; ``v`` the scores; ``M = n_snps_used``), so that ``Z @ loadings`` gives back the scores
        when no call is missing.
    """

    scores: np.ndarray
    eigenvalues: np.ndarray
    n_snps_used: int
    snp_mask: np.ndarray
    frequencies: np.ndarray
    loadings: np.ndarray

    def as_frame(self, subject_ids) -> pd.DataFrame:
        """The scores as a table with columns ``PC1..PCk``, indexed by subject id.

        Parameters
        ----------
        subject_ids : sequence of str
            One id per row of the dosage matrix, in the same order.

        Returns
        -------
        pandas.DataFrame
            Shape (n_subjects, n_components), index named ``subject_id``.

        Examples
        --------
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> dosages = rng.binomial(2, 0.3, size=(6, 50)).astype(np.float32)
        >>> genetic_pcs(dosages, n_components=2).as_frame(list("abcdef")).shape
        (6, 2)
        """
        ids = list(subject_ids)
        if len(ids) != self.scores.shape[0]:
            raise ParameterError(
                f"subject_ids: expected {self.scores.shape[0]} ids (one per subject), found {len(ids)}"
            )
        columns = [f"PC{k + 1}" for k in range(self.scores.shape[1])]
        return pd.DataFrame(self.scores, index=pd.Index(ids, name="subject_id"), columns=columns)


def ld_prune(dosages, snps, *, window=50, step=5, r2=0.2, min_maf=0.05) -> np.ndarray:
    """Choose SNPs in approximate linkage equilibrium, as plink 1.9 ``--maf min_maf --indep-pairwise``.

    SNPs with a minor allele frequency below ``min_maf`` are dropped first. Then, on each chromosome, a
    window of ``window`` consecutive remaining SNPs slides by ``step`` SNPs; within a window every pair whose
    r² exceeds ``r2`` loses one member, the one with the lower MAF (the later one when the MAFs are equal),
    in plink's order of comparisons, so the kept set is plink's ``.prune.in``.

    Parameters
    ----------
    dosages : ndarray of shape (n_subjects, n_snps)
        Allele-1 counts 0, 1 or 2 (hard calls, as bed-reader reads a PLINK 1 file with ``count_A1=True``);
        NaN marks a missing call.
    snps : pandas.DataFrame
        One row per column of ``dosages``, in file order, with a column ``chrom``; each chromosome must
        occupy one contiguous run of rows (the window counts SNPs in this order).
    window : int, default=50
        Window size in SNPs (at least 2).
    step : int, default=5
        Number of SNPs the window moves each time (1 to ``window``).
    r2 : float, default=0.2
        Pairs with r² above this value (in [0, 1)) lose one SNP.
    min_maf : float, default=0.05
        SNPs with a minor allele frequency below this value (in [0, 0.5]) are never kept.

    Returns
    -------
    ndarray of bool of shape (n_snps,)
        True for the SNPs kept.

    Notes
    -----
    As in plink: allele frequencies count the called alleles of all subjects (every subject is treated as
    a founder; a SNP without calls has frequency 0.5); r² is the squared Pearson correlation of the
    dosages over the subjects called at both SNPs; a SNP whose calls do not vary is pruned; SNPs on
    chromosome 0 are never kept. Unlike plink, every chromosome is treated as diploid: plink's recoding of
    male genotypes on X (which needs the subjects' sex) is not reproduced.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> dosages = rng.binomial(2, 0.3, size=(40, 200)).astype(np.float32)
    >>> dosages[:, 1] = dosages[:, 0]  # a perfect proxy: same MAF, so the later one goes
    >>> snps = pd.DataFrame({"snp": [f"rs{j}" for j in range(200)], "chrom": "1", "pos": np.arange(200) + 1})
    >>> keep = ld_prune(dosages, snps)
    >>> bool(keep[0]), bool(keep[1])
    (True, False)
    """
    x = _check_dosages(dosages)
    chrom = _check_snps(snps, x.shape[1])
    window = _check_int(window, "window", minimum=2)
    step = _check_int(step, "step", minimum=1)
    if step > window:
        raise ParameterError(f"step: expected at most window={window}, found {step}")
    r2 = _check_float(r2, "r2", 0.0, 1.0, closed_right=False)
    min_maf = _check_float(min_maf, "min_maf", 0.0, 0.5)

    n_called, a1_count = _allele_counts(x, np.arange(x.shape[1]))
    maf = _minor_allele_frequency(n_called, a1_count)
    passes = maf >= min_maf * (1 - _SMALL_EPSILON)
    threshold = r2 * (1 + _SMALL_EPSILON)
    keep = np.zeros(x.shape[1], dtype=bool)
    for start, stop in _chromosome_runs(chrom):
        if chrom[start] == "0":
            continue  # plink ignores chromosome 0 and lists none of its SNPs in .prune.in
        cols = np.flatnonzero(passes[start:stop]) + start
        if cols.size:
            keep[cols] = _prune_chromosome(x, cols, maf[cols], window, step, threshold)
    return keep


def genetic_pcs(dosages, n_components=10, *, snp_mask=None) -> GeneticPCs:
    """Top principal components of the genetic relationship matrix, as plink 1.9 ``--pca``.

    Each SNP is standardised by its allele frequency p among the called alleles of all subjects,
    z = (x - 2p) / sqrt(2p(1 - p)). The relationship of two subjects is the mean of z_j z_k over the SNPs
    called for both (so a missing call is left out of the pair's sum and count, not imputed); on the
    diagonal that is the mean of z² over the subject's called SNPs. The components are the top
    eigenvectors of this matrix.

    Parameters
    ----------
    dosages : ndarray of shape (n_subjects, n_snps)
        Allele-1 counts 0, 1 or 2 with NaN for a missing call (see :func:`ld_prune`).
    n_components : int, default=10
        Number of components (1 to n_subjects - 1).
    snp_mask : array-like of bool of shape (n_snps,), optional
        SNPs to use, e.g. the output of :func:`ld_prune`; all by default. Monomorphic SNPs are left out.

    Returns
    -------
    GeneticPCs
        Scores (plink's ``.eigenvec`` values, sign-fixed), eigenvalues (``.eigenval``), SNPs used, and
        their frequencies and loadings, with which :func:`project_pcs` places new subjects.

    Notes
    -----
    plink keeps monomorphic SNPs in its denominators although they add nothing to the sums, which shrinks
    its matrix (and eigenvalues) by the share of such SNPs; here they are left out, so the two agree once
    monomorphic SNPs are filtered (``--maf``). plink also leaves out non-autosomal SNPs;
    :func:`ancestry_pcs` does the same through its mask.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> dosages = rng.binomial(2, 0.3, size=(40, 200)).astype(np.float32)
    >>> pcs = genetic_pcs(dosages, n_components=3)
    >>> pcs.scores.shape, pcs.eigenvalues.shape, pcs.n_snps_used
    ((40, 3), (3,), 200)
    >>> bool(np.all(np.diff(pcs.eigenvalues) <= 0))
    True
    """
    x = _check_dosages(dosages)
    n_subjects, n_snps = x.shape
    n_components = _check_int(n_components, "n_components", minimum=1)
    if n_components >= n_subjects:
        raise ParameterError(f"n_components: expected fewer than the {n_subjects} subjects, found {n_components}")
    if snp_mask is None:
        cols = np.arange(n_snps)
    else:
        mask = np.asarray(snp_mask)
        if mask.dtype != bool or mask.shape != (n_snps,):
            raise ParameterError(
                f"snp_mask: expected a boolean array of shape ({n_snps},), found {mask.dtype} of shape {mask.shape}"
            )
        cols = np.flatnonzero(mask)
    n_called, a1_count = _allele_counts(x, cols)
    polymorphic = (a1_count > 0) & (a1_count < 2 * n_called)
    cols, freq = cols[polymorphic], a1_count[polymorphic] / (2 * n_called[polymorphic])
    if cols.size < n_components:
        where = "dosages" if snp_mask is None else "snp_mask"
        raise ParameterError(
            f"{where}: expected at least n_components={n_components} polymorphic SNPs, found {cols.size}"
        )
    grm = _relationship_matrix(x, cols, freq)
    values, vectors = linalg.eigh(grm, subset_by_index=[n_subjects - n_components, n_subjects - 1], driver="evr")
    values, vectors = values[::-1].copy(), vectors[:, ::-1].copy()
    # eigenvectors are defined up to sign; pinning the largest loading makes runs (and machines) comparable
    largest = np.argmax(np.abs(vectors), axis=0)
    vectors *= np.sign(vectors[largest, np.arange(n_components)])
    used = np.zeros(n_snps, dtype=bool)
    used[cols] = True
    return GeneticPCs(
        scores=vectors,
        eigenvalues=values,
        n_snps_used=int(cols.size),
        snp_mask=used,
        frequencies=freq,
        loadings=_snp_loadings(x, cols, freq, vectors, values),
    )


def project_pcs(pcs, new_dosages) -> np.ndarray:
    """Scores of new subjects on a cohort's genetic components, without refitting them.

    The new dosages are standardised with the fitted cohort's allele frequencies at the SNPs its PCA used,
    z = (x - 2p) / sqrt(2p(1 - p)), a missing call giving z = 0, and each subject's score on component k
    is ``z @ loadings[:, k] * M / m`` (``M`` the SNPs used, ``m`` those called for the subject; the
    loadings are ``Z' v_k / (M lambda_k)``, see :class:`GeneticPCs`). This is the usual projection: the
    average over called alleles that plink 2 ``--read-freq`` (the fitted frequencies) ``--score`` (the
    loadings) ``variance-standardize no-mean-imputation`` writes, times ``2 M``. A subject of the fitted
    cohort gets back its own score exactly when no call is missing, since ``Z Z' / M`` is then the
    relationship matrix.

    Parameters
    ----------
    pcs : GeneticPCs
        Components fitted on the reference cohort (:func:`genetic_pcs`, :func:`ancestry_pcs`).
    new_dosages : ndarray of shape (n_new, n_snps)
        Allele-1 counts 0, 1 or 2 (NaN for a missing call) at the SNPs of the dosages the components were
        fitted on: the same columns in the same order, counting the same allele.

    Returns
    -------
    ndarray of shape (n_new, n_components)
        The new subjects' scores, on the scale of ``pcs.scores`` (entries of unit-norm eigenvectors, of
        the order of 1 / sqrt(n) for a reference cohort of n subjects).

    Notes
    -----
    With missing calls the projection is an approximation. plink's relationship matrix divides each
    pair's sum by the SNPs called for both, which no per-subject sum over SNPs reproduces; here a missing
    call contributes 0 and the sum is scaled by ``M / m``, the subject's own share of calls (the
    relationship of a new subject to the cohort, as plink would count it, when the cohort's own calls
    are near complete). Reference subjects come back to within about twice the missing rate, as a share
    of a score's standard deviation (at most 0.9% at 0.5% missing calls and 3.5% at 2%, in a simulated
    cohort of 300 subjects and 1,600 SNPs used; twice as far without the ``M / m`` scaling).

    New subjects' scores are shrunk towards 0 compared with a fit that includes them, as projected PCA
    scores are: their own sampling noise lies in no component, and more so when SNPs outnumber subjects
    (by about a quarter on PC1 with 160 reference subjects and 965 SNPs used). Read them by side and order along a
    component, or against other projected scores, rather than by distance to the reference's.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> group = np.repeat([0, 1], 40)  # two populations whose allele frequencies differ by 0.3
    >>> base = rng.uniform(0.25, 0.75, size=400)
    >>> freq = np.stack([base - 0.15, base + 0.15])
    >>> reference = rng.binomial(2, freq[group]).astype(np.float32)
    >>> pcs = genetic_pcs(reference, n_components=2)
    >>> bool(np.allclose(project_pcs(pcs, reference), pcs.scores))
    True
    >>> new = rng.binomial(2, freq[[0, 0, 1]]).astype(np.float32)  # two of the first group, one of the second
    >>> side = np.sign(project_pcs(pcs, new)[:, 0])
    >>> bool(side[0] == side[1] != side[2])
    True
    """
    if not isinstance(pcs, GeneticPCs):
        raise ParameterError(f"pcs: expected GeneticPCs (from genetic_pcs or ancestry_pcs), found {type(pcs).__name__}")
    x = _check_dosages(new_dosages, "new_dosages")
    n_snps = pcs.snp_mask.shape[0]
    if x.shape[1] != n_snps:
        raise ParameterError(
            f"new_dosages: expected {n_snps} SNP columns (those the components were fitted on, in the same "
            f"order), found {x.shape[1]}"
        )
    cols = np.flatnonzero(pcs.snp_mask)
    scores = np.zeros((x.shape[0], pcs.loadings.shape[1]))
    n_called = np.zeros(x.shape[0])
    for a in range(0, cols.size, _CHUNK):
        z, called = _standardised(x[:, cols[a : a + _CHUNK]], pcs.frequencies[a : a + _CHUNK])
        scores += z @ pcs.loadings[a : a + _CHUNK]
        n_called += called.sum(axis=1)
    if np.any(n_called == 0):
        row = int(np.flatnonzero(n_called == 0)[0])
        raise ParameterError(
            f"new_dosages: expected at least one called SNP among the {cols.size} the components use, found "
            f"none for subject row {row}"
        )
    return scores * (cols.size / n_called)[:, None]


def ancestry_pcs(dosages, snps, n_components=10, **prune_kwargs) -> GeneticPCs:
    """Ancestry covariates: LD-prune (:func:`ld_prune`), then PCA of the autosomes (:func:`genetic_pcs`).

    The same as plink 1.9 ``--maf 0.05 --indep-pairwise 50 5 0.2`` followed by ``--extract`` of the kept
    SNPs and ``--pca``. The computation is label-free: it sees genotypes only, never diagnoses,
    phenotypes or ancestry labels, and takes none. Components meant to adjust for population structure
    must not be shaped by the outcome they will be adjusted against: the adjustment would then absorb
    part of the signal, and carry label information into every cross-validation fold.

    Parameters
    ----------
    dosages : ndarray of shape (n_subjects, n_snps)
        Allele-1 counts 0, 1 or 2 with NaN for a missing call.
    snps : pandas.DataFrame
        One row per SNP with a column ``chrom`` (see :func:`ld_prune`).
    n_components : int, default=10
        Number of components (1 to n_subjects - 1).
    **prune_kwargs
        ``window``, ``step``, ``r2`` and ``min_maf`` of :func:`ld_prune`.

    Returns
    -------
    GeneticPCs
        Its ``snp_mask`` marks the pruned autosomal SNPs that entered the PCA.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> group = np.repeat([0, 1], 30)  # two populations whose allele frequencies differ by 0.3
    >>> base = rng.uniform(0.25, 0.75, size=500)
    >>> dosages = rng.binomial(2, np.stack([base - 0.15, base + 0.15])[group]).astype(np.float32)
    >>> snps = pd.DataFrame({"snp": [f"rs{j}" for j in range(500)], "chrom": "1", "pos": np.arange(500) + 1})
    >>> pcs = ancestry_pcs(dosages, snps, n_components=2)
    >>> pcs.n_snps_used, bool(abs(np.corrcoef(pcs.scores[:, 0], group)[0, 1]) > 0.99)
    (343, True)
    """
    keep = ld_prune(dosages, snps, **prune_kwargs)
    codes = {name: chrom_code(name) for name in pd.unique(snps["chrom"].astype(str))}
    autosome = np.array([1 <= codes[name] <= 22 for name in snps["chrom"].astype(str)], dtype=bool)
    return genetic_pcs(dosages, n_components, snp_mask=keep & autosome)


# --- pruning ---------------------------------------------------------------------------------------------


def _prune_chromosome(x, cols, maf, window, step, threshold):
    """Kept flags for the MAF-passing SNPs ``cols`` of one chromosome."""
    m = cols.size
    if m < 2:
        return np.ones(m, dtype=bool)  # plink loads no window, so not even a constant SNP is dropped
    first, second, constant = _high_ld_pairs(x, cols, window, threshold)
    pruned = constant.tolist()
    maf = maf.tolist()
    # plink's window k covers SNPs [k*step, k*step + window). After a window is done every pair inside it
    # has been examined, so window k only examines pairs whose later SNP entered with it: those with
    # second in [end of window k-1, end of window k) and first >= k*step. Sorting by the later SNP makes
    # each window's candidates one slice.
    order = np.lexsort((first, second))
    first, second = first[order], second[order]
    starts = np.arange(0, m, step)
    ends = np.minimum(starts + window, m)
    lo = np.searchsorted(second, np.concatenate([[0], ends[:-1]]))
    hi = np.searchsorted(second, ends)
    first, second = first.tolist(), second.tolist()
    for k in np.flatnonzero(hi > lo).tolist():
        _prune_window(first[lo[k] : hi[k]], second[lo[k] : hi[k]], int(starts[k]), pruned, maf)
    return ~np.array(pruned, dtype=bool)


def _prune_window(first, second, start, pruned, maf):
    """Replay plink's passes over one window, given its new above-threshold pairs sorted by later SNP.

    plink scans the live SNPs in order; each finds its next live partner above the threshold, drops the
    lower-MAF one of the pair (the partner on a tie) and hands over to the next SNP; passes repeat until
    one drops nothing. Pairs below the threshold change nothing, so only the listed pairs are replayed.
    """
    partners = {}
    for i, j in zip(first, second):
        if i >= start and not pruned[i] and not pruned[j]:
            partners.setdefault(i, []).append(j)
    if not partners:
        return
    order = sorted(partners)
    position = dict.fromkeys(order, 0)
    dropped = True
    while dropped:
        dropped = False
        for i in order:
            if pruned[i]:
                continue
            candidates, p = partners[i], position[i]
            while p < len(candidates) and pruned[candidates[p]]:
                p += 1
            position[i] = p
            if p == len(candidates):
                continue
            j = candidates[p]
            dropped = True
            if maf[i] < (1 - _SMALL_EPSILON) * maf[j]:
                pruned[i] = True
            else:
                pruned[j] = True
                position[i] = p + 1


def _high_ld_pairs(x, cols, window, threshold):
    """Pairs (i, j), 0 < j - i < window, of positions in ``cols`` with r² > threshold, and constant SNPs.

    r² is computed for a block of SNPs against the block and the next window - 1 SNPs with a few matrix
    products of dosages and call indicators, giving the sums over subjects called at both SNPs that plink
    accumulates pair by pair.
    """
    m = cols.size
    # The sums are integers below 4 * n_subjects, so float32 products are exact until that reaches 2**24.
    dtype = np.float32 if 4 * x.shape[0] < 2**24 else np.float64
    block = max(window, _PAIR_BLOCK)
    firsts, seconds, constant = [], [], []
    # These products are too small to gain from BLAS threads, and lose several-fold to their start-up
    # and spinning when another process holds a core.
    with threadpool_limits(1, user_api="blas"):
        for a in range(0, m, block):
            values = x[:, cols[a : min(a + block + window - 1, m)]]
            pairs, flat = _block_pairs(values, min(block, m - a), window, threshold, dtype)
            firsts.append(pairs[0] + a)
            seconds.append(pairs[1] + a)
            constant.append(flat)
    return np.concatenate(firsts), np.concatenate(seconds), np.concatenate(constant)


def _block_pairs(values, rows, window, threshold, dtype):
    """Above-threshold pairs (i < rows, j) of the columns of ``values``, and which of the first ``rows``
    columns are constant over their called subjects."""
    called = ~np.isnan(values)
    x0 = np.where(called, values, 0).astype(dtype)
    x0_sq = x0 * x0
    sxy = (x0[:, :rows].T @ x0).astype(np.float64)
    if called.all():
        n_ab = float(values.shape[0])
        s, ss = x0.sum(axis=0, dtype=np.float64), x0_sq.sum(axis=0, dtype=np.float64)
        sx, sy, sxx, syy = s[:rows, None], s[None, :], ss[:rows, None], ss[None, :]
    else:
        c0 = called.astype(dtype)
        n_ab = (c0[:, :rows].T @ c0).astype(np.float64)
        sx = (x0[:, :rows].T @ c0).astype(np.float64)
        sy = (c0[:, :rows].T @ x0).astype(np.float64)
        sxx = (x0_sq[:, :rows].T @ c0).astype(np.float64)
        syy = (c0[:, :rows].T @ x0_sq).astype(np.float64)
    cov = n_ab * sxy - sx * sy
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = cov * cov / ((n_ab * sxx - sx * sx) * (n_ab * syy - sy * sy))
    lag = np.arange(values.shape[1])[None, :] - np.arange(rows)[:, None]
    # NaN (a SNP constant over the jointly called subjects) compares False, as in plink
    pairs = np.nonzero((lag > 0) & (lag < window) & (r2 > threshold))
    own_n = called[:, :rows].sum(axis=0)
    own_s = x0[:, :rows].sum(axis=0, dtype=np.float64)
    own_ss = x0_sq[:, :rows].sum(axis=0, dtype=np.float64)
    return pairs, own_n * own_ss - own_s * own_s == 0


# --- relationship matrix ---------------------------------------------------------------------------------


def _standardised(values, freq):
    """(x - 2p) / sqrt(2p(1 - p)) in float64 with 0 for a missing call, and the called flags."""
    values = values.astype(np.float64)
    called = ~np.isnan(values)
    return np.where(called, (values - 2 * freq) / np.sqrt(2 * freq * (1 - freq)), 0.0), called


def _snp_loadings(x, cols, freq, vectors, values):
    """Loadings ``Z' v / (M lambda)`` of the SNPs ``cols`` (Z standardised, missing calls 0)."""
    loadings = np.empty((cols.size, vectors.shape[1]))
    for a in range(0, cols.size, _CHUNK):
        z, _ = _standardised(x[:, cols[a : a + _CHUNK]], freq[a : a + _CHUNK])
        loadings[a : a + _CHUNK] = z.T @ vectors
    # a zero eigenvalue (fewer distinct genotype profiles than components) carries nothing to project
    scale = np.divide(1.0, cols.size * values, out=np.zeros_like(values), where=values > 0)
    return loadings * scale


def _relationship_matrix(x, cols, freq):
    """plink 1.9's relationship matrix (``--make-rel``, default diagonal) of the SNPs ``cols``.

    The sum of z_j z_k over the SNPs called for both subjects, divided by their number; on the diagonal
    this is the mean of z² over the subject's called SNPs (plink's default "ibc1" diagonal, 1 + F-hat-1).
    """
    n = x.shape[0]
    cross = np.zeros((n, n))
    both_missing = np.zeros((n, n))
    missing = np.zeros(n)
    for a in range(0, cols.size, _CHUNK):
        z, called = _standardised(x[:, cols[a : a + _CHUNK]], freq[a : a + _CHUNK])
        cross += z @ z.T
        if not called.all():
            # counts stay below 2**24 per chunk, so float32 products of 0/1 are exact
            absent = (~called).astype(np.float32)
            both_missing += absent @ absent.T
            missing += absent.sum(axis=1)
    m = float(cols.size)
    shared = m - missing[:, None] - missing[None, :] + both_missing
    np.fill_diagonal(shared, m - missing)
    if np.any(shared == 0):
        rows, _ = np.nonzero(shared == 0)
        raise ParameterError(
            f"dosages: expected every pair of subjects to share a called SNP, found none for subject row {rows[0]}"
        )
    return cross / shared


# --- validation and counts -------------------------------------------------------------------------------


def _check_dosages(dosages, name="dosages") -> np.ndarray:
    x = np.asarray(dosages)
    if x.ndim != 2 or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ParameterError(
            f"{name}: expected a 2-D numeric array (subjects x SNPs), found {x.dtype} of shape {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    for a in range(0, x.shape[1], _CHUNK):
        chunk = x[:, a : a + _CHUNK]
        bad = (chunk != 0) & (chunk != 1) & (chunk != 2) & ~np.isnan(chunk)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ParameterError(
                f"{name}: expected allele counts 0, 1, 2 or NaN, found {chunk[row, col]!r} "
                f"(subject row {row}, SNP column {a + col})"
            )
    return x


def _check_snps(snps, n_snps) -> np.ndarray:
    if not isinstance(snps, pd.DataFrame) or "chrom" not in snps.columns:
        raise ParameterError(f"snps: expected a DataFrame with a 'chrom' column, found {type(snps).__name__}")
    if len(snps) != n_snps:
        raise ParameterError(f"snps: expected {n_snps} rows (one per dosage column), found {len(snps)}")
    names = snps["chrom"].astype(str).to_numpy()
    normalised = {name: normalise_chrom(name) for name in pd.unique(names)}
    chrom = np.array([normalised[name] for name in names], dtype=object)
    runs = _chromosome_runs(chrom)
    labels = [chrom[start] for start, _ in runs]
    if len(set(labels)) != len(labels):
        split = next(label for label in labels if labels.count(label) > 1)
        raise ParameterError(f"snps: expected each chromosome in one run of rows, found chromosome {split!r} split")
    return chrom


def _chromosome_runs(chrom):
    """(start, stop) of each run of equal chromosome labels."""
    if len(chrom) == 0:
        return []
    change = np.flatnonzero(chrom[1:] != chrom[:-1]) + 1
    bounds = np.concatenate([[0], change, [len(chrom)]])
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def _allele_counts(x, cols):
    """Called subjects and allele-1 counts of the SNPs ``cols``, as float64 arrays."""
    n_called = np.empty(cols.size)
    a1_count = np.empty(cols.size)
    for a in range(0, cols.size, _CHUNK):
        values = x[:, cols[a : a + _CHUNK]]
        called = ~np.isnan(values)
        n_called[a : a + _CHUNK] = called.sum(axis=0)
        a1_count[a : a + _CHUNK] = np.where(called, values, 0).sum(axis=0, dtype=np.float64)
    return n_called, a1_count


def _minor_allele_frequency(n_called, a1_count):
    with np.errstate(invalid="ignore", divide="ignore"):
        freq = np.where(n_called > 0, a1_count / (2 * n_called), 0.5)  # plink's frequency without calls
    return np.minimum(freq, 1 - freq)


def _check_int(value, name, *, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ParameterError(f"{name}: expected an integer >= {minimum}, found {value!r}")
    return int(value)


def _check_float(value, name, low, high, *, closed_right=True):
    right = "]" if closed_right else ")"
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    inside = low <= number <= high if closed_right else low <= number < high
    if isinstance(value, bool) or not inside:
        raise ParameterError(f"{name}: expected a number in [{low}, {high}{right}, found {value!r}")
    return number
