"""Population structure of a simulated cohort: ancestry groups with Balding-Nichols allele frequencies,
and sibling pairs."""

from __future__ import annotations

import numpy as np


def population_frequencies(rng, maf, n_groups, fst):
    """Balding-Nichols allele frequencies of ``n_groups`` populations split from one ancestral population.

    Each population's frequency of a SNP is drawn from Beta(p (1 - F) / F, (1 - p) (1 - F) / F) around
    the ancestral frequency ``p``: mean ``p``, variance ``F p (1 - p)``, so F is the fixation index
    (F_ST) of each population against the ancestral one and, in expectation, Hudson's F_ST between two
    of them.

    Parameters
    ----------
    rng : numpy.random.Generator
    maf : ndarray of shape (n_snps,)
        Ancestral frequencies of allele A1.
    n_groups : int
    fst : float
        In (0, 1).

    Returns
    -------
    ndarray of shape (n_groups, n_snps)
    """
    a = maf * (1.0 - fst) / fst
    b = (1.0 - maf) * (1.0 - fst) / fst
    return rng.beta(a, b, size=(n_groups, len(maf)))


def hudson_fst(p1, p2, n1=None, n2=None):
    """Hudson's F_ST between two populations as a ratio of averages over SNPs (Bhatia et al. 2013).

    ``p1``, ``p2`` are allele frequencies; with sample sizes ``n1``, ``n2`` (haplotypes) they are sample
    frequencies and the numerator is corrected for sampling.
    """
    p1, p2 = np.asarray(p1, dtype=float), np.asarray(p2, dtype=float)
    num = (p1 - p2) ** 2
    if n1 is not None:
        num = num - p1 * (1 - p1) / (n1 - 1) - p2 * (1 - p2) / (n2 - 1)
    den = p1 * (1 - p2) + p2 * (1 - p1)
    return float(np.nansum(num) / np.nansum(den))


def assign_groups(rng, n_subjects, n_groups):
    """Ancestry group of each subject (0-based), equal shares in random order."""
    return rng.permutation(np.arange(n_subjects) % n_groups)


def sibling_pairs(rng, group, relative_share):
    """Choose sibling pairs inside each ancestry group: about ``relative_share`` of each group's subjects
    come in pairs. Returns int array (n_pairs, 2), each pair in subject order, pairs sorted."""
    pairs = []
    for g in range(int(group.max()) + 1):
        members = np.flatnonzero(group == g)
        n_pairs = int(round(relative_share * len(members) / 2))
        pairs.append(np.sort(rng.permutation(members)[: 2 * n_pairs].reshape(-1, 2), axis=1))
    pairs = np.concatenate(pairs)
    return pairs[np.argsort(pairs[:, 0], kind="stable")]


def family_ids(n_subjects, pairs):
    """``fam-0001``... numbered in subject order; the two siblings of a pair share theirs."""
    first = np.arange(n_subjects)
    first[pairs[:, 1]] = pairs[:, 0]
    _, number = np.unique(first, return_inverse=True)
    return np.array([f"fam-{k + 1:04d}" for k in number])
