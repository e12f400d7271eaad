"""The label model: per-modality latent scores, a liability threshold (overall or per ancestry group), and
the null alternative."""

from __future__ import annotations

import numpy as np

MIN_CAUSAL_MAF = 0.1


def choose_causal_snps(rng, snps, n_causal):
    """Pick causal SNPs with MAF >= 0.1, each in a different LD block, spread over the genome."""
    eligible = snps.index[snps["maf"] >= MIN_CAUSAL_MAF].to_numpy()
    blocks = snps["block"].to_numpy()
    order = rng.permutation(eligible)
    chosen, used = [], set()
    for i in order:
        if blocks[i] not in used:
            chosen.append(int(i))
            used.add(blocks[i])
        if len(chosen) == n_causal:
            break
    return np.sort(np.array(chosen, dtype=int))


def standardize(x):
    """Center and scale to unit variance over subjects (a constant stays at zero)."""
    x = np.asarray(x, dtype=float)
    sd = x.std()
    return (x - x.mean()) / (sd if sd > 0 else 1.0)


def snp_score(dosages, signs):
    """Genetic latent score: signed sum of standardized causal dosages, rescaled to unit variance.

    Parameters
    ----------
    dosages : ndarray of shape (n_subjects, n_causal)
        Minor-allele counts of the causal SNPs (complete).
    signs : ndarray of shape (n_causal,)
        +1 when the minor allele raises liability, -1 when it lowers it.

    Returns
    -------
    z : ndarray of shape (n_subjects,)
        The standardized score.
    scale : float
        Factor applied to the signed sum, so that ``scale * sign`` is each SNP's weight in ``z``.
    """
    d = dosages.astype(float)
    sd = d.std(axis=0)
    # a causal SNP can be monomorphic in a sample of strongly diverged ancestry groups: it then adds nothing
    d = (d - d.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    raw = d @ signs
    scale = 1.0 / raw.std() if raw.std() > 0 else 1.0
    return (raw - raw.mean()) * scale, scale


def balanced_labels(liability, case_share=0.5):
    """1 for the top ``case_share`` of the liability (floor(case_share x n) cases: with 0.5 and an odd n
    the larger half goes to controls)."""
    n = len(liability)
    labels = np.zeros(n, dtype=np.int8)
    labels[np.argsort(liability, kind="stable")[n - int(np.floor(case_share * n)) :]] = 1
    return labels


def group_labels(score, group, shares):
    """``balanced_labels`` inside each group: 1 for the top ``shares[g]`` of ``score`` among the subjects of
    group ``g`` (floor(shares[g] x n_g) cases in each)."""
    labels = np.zeros(len(score), dtype=np.int8)
    for g, share in enumerate(shares):
        members = np.flatnonzero(group == g)
        labels[members] = balanced_labels(score[members], share)
    return labels
