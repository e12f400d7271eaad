"""Simulate SNP maps and genotypes with block linkage disequilibrium and Hardy-Weinberg proportions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.stats import norm

# GRCh37 autosome lengths (bp), chromosomes 1..22.
GRCH37_LENGTHS = np.array(
    [
        249250621,
        243199373,
        198022430,
        191154276,
        180915260,
        171115067,
        159138663,
        146364022,
        141213431,
        135534747,
        135006516,
        133851895,
        115169878,
        107349540,
        102531392,
        90354753,
        81195210,
        78077248,
        59128983,
        63025520,
        48129895,
        51304566,
    ]
)

MEAN_BLOCK_SIZE = 15  # SNPs per LD block (geometric)
RHO_RANGE = (0.95, 0.985)  # lag-1 correlation of the latent haplotype chain inside a block
MAF_RANGE = (0.01, 0.5)
MISSING_RATE = 0.002
_BASES = np.array(["A", "C", "G", "T"])


def snps_per_chromosome(n_snps):
    """Split n_snps over chr 1-22 in proportion to their length (largest remainder, at least 1 each)."""
    share = GRCH37_LENGTHS / GRCH37_LENGTHS.sum() * n_snps
    counts = np.maximum(np.floor(share).astype(int), 1)
    rest = n_snps - counts.sum()
    order = np.argsort(-(share - np.floor(share)), kind="stable")
    counts[order[:rest]] += 1
    return counts


def simulate_snp_map(rng, n_snps):
    """Draw the SNP table: positions, LD blocks, alleles, minor allele frequencies, block correlation.

    Returns
    -------
    snps : DataFrame
        Columns snp, chrom (str), pos (int), a1 (minor allele), a2, maf, block.
    rho : ndarray of shape (n_snps,)
        Latent lag-1 correlation linking each SNP to the previous one (0 at a block start).
    """
    counts = snps_per_chromosome(n_snps)
    chrom = np.repeat(np.arange(1, 23), counts)
    pos = np.empty(n_snps, dtype=np.int64)
    block = np.empty(n_snps, dtype=np.int64)
    start, next_block = 0, 0
    for c, k in enumerate(counts):
        # Blocks never cross chromosomes; sizes are geometric so a few blocks are long.
        sizes = []
        while sum(sizes) < k:
            sizes.append(int(rng.geometric(1.0 / MEAN_BLOCK_SIZE)))
        sizes[-1] -= sum(sizes) - k
        sizes = np.array(sizes)
        # Blocks are physically compact (a few kb per SNP) and scattered along the chromosome,
        # like haplotype blocks tagged by an array; a block never reaches into the next one.
        starts = np.sort(rng.choice(GRCH37_LENGTHS[c] // 2, size=len(sizes), replace=False)) * 2 + 1
        room = np.diff(np.r_[starts, GRCH37_LENGTHS[c]]) // 2
        spans = np.maximum(np.minimum(sizes * rng.uniform(2000, 8000, len(sizes)), room), sizes).astype(int)
        pos[start : start + k] = np.concatenate(
            [s0 + np.sort(rng.choice(w, size=m, replace=False)) for s0, w, m in zip(starts, spans, sizes)]
        )
        block[start : start + k] = np.repeat(np.arange(next_block, next_block + len(sizes)), sizes)
        next_block += len(sizes)
        start += k
    n_blocks = next_block
    block_start = np.r_[True, block[1:] != block[:-1]]

    # Array-data MAF spectrum skewed to rare alleles; SNPs of one block share a haplotype background,
    # so their frequencies are similar (which is what lets them be in high r^2 with each other).
    block_maf = MAF_RANGE[0] + (MAF_RANGE[1] - MAF_RANGE[0]) * rng.beta(0.9, 1.6, size=n_blocks)
    maf = expit(logit(block_maf[block]) + rng.normal(0.0, 0.35, size=n_snps))
    maf = np.clip(maf, MAF_RANGE[0], MAF_RANGE[1])
    rho = rng.uniform(*RHO_RANGE, size=n_blocks)[block]
    rho[block_start] = 0.0

    pair = rng.permuted(np.tile(np.arange(4), (n_snps, 1)), axis=1)[:, :2]
    snps = pd.DataFrame(
        {
            "snp": [f"chr{c}_{p}" for c, p in zip(chrom, pos)],
            "chrom": chrom.astype(str),
            "pos": pos,
            "a1": _BASES[pair[:, 0]],
            "a2": _BASES[pair[:, 1]],
            "maf": maf,
            "block": block,
        }
    )
    return snps, rho


def simulate_dosages(rng, maf, rho, n_subjects, chunk=2048, *, group=None, pairs=None, rng_meiosis=None):
    """Draw minor-allele counts (0, 1, 2) as int8, shape (n_subjects, n_snps).

    Each haplotype is a latent Gaussian AR(1) chain along the block, thresholded so that the minor
    allele has probability ``maf``; two independent haplotypes per subject give Hardy-Weinberg.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the latent chains.
    maf : ndarray of shape (n_snps,) or (n_groups, n_snps)
        Frequency of allele A1, one row per population when ``group`` is given.
    rho : ndarray of shape (n_snps,)
        Lag-1 correlation of the latent chain (0 at a block start).
    n_subjects : int
    chunk : int
        SNPs simulated together (bounds memory).
    group : ndarray of int, shape (n_subjects,), optional
        Each subject's population (a row of ``maf``): its haplotypes are thresholded at that row.
    pairs : ndarray of int, shape (n_pairs, 2), optional
        Sibling pairs (subject indices, same population). The four haplotypes drawn for the two
        siblings are taken as their parents' (the first sibling's and second sibling's first
        haplotypes are the father's, their second haplotypes the mother's); each sibling then
        inherits one haplotype of each parent, chosen afresh in every LD block (recombination
        between blocks, none inside), which gives an expected kinship of 0.25.
    rng_meiosis : numpy.random.Generator, optional
        Draws the inheritance choices; required with ``pairs``.
    """
    n_snps = maf.shape[-1]
    threshold = norm.ppf(maf).astype(np.float32)
    if group is not None:
        hap_group = np.concatenate([group, group])  # haplotype j and n_subjects + j belong to subject j
    out = np.empty((n_subjects, n_snps), dtype=np.int8)
    innov = np.sqrt(1.0 - rho**2).astype(np.float32)
    rho32 = rho.astype(np.float32)
    # Chunk over SNPs (cutting only at block starts) to bound memory; the chain is sequential along
    # SNPs but vectorized over the 2 * n_subjects haplotypes.
    starts = np.flatnonzero(rho == 0.0)
    cuts = [0]
    for s in starts[1:]:
        if s - cuts[-1] >= chunk:
            cuts.append(int(s))
    cuts.append(n_snps)
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        # SNP-major so each step of the recursion touches one contiguous row.
        x = rng.standard_normal((hi - lo, 2 * n_subjects), dtype=np.float32)
        # A block start has rho 0, so the chain restarts there.
        for j in range(1, hi - lo):
            r = rho32[lo + j]
            if r != 0.0:
                x[j] *= innov[lo + j]
                x[j] += r * x[j - 1]
        if group is None:
            hap = (x < threshold[lo:hi, None]).view(np.int8)
        else:
            hap = (x < threshold[hap_group, lo:hi].T).view(np.int8)
        dosage = hap[:, :n_subjects] + hap[:, n_subjects:]
        if pairs is not None and len(pairs):
            _inherit(rng_meiosis, hap, dosage, pairs, rho[lo:hi] == 0.0)
        out[:, lo:hi] = dosage.T
    return out


def _inherit(rng, hap, dosage, pairs, block_start):
    """Overwrite the siblings' dosages in ``dosage`` (SNPs x subjects) with what they inherit."""
    n = dosage.shape[1]
    a, b = pairs[:, 0], pairs[:, 1]
    father = hap[:, a], hap[:, b]
    mother = hap[:, n + a], hap[:, n + b]
    block = np.cumsum(block_start) - 1  # the chunk starts at a block start
    # per block and pair: which paternal / maternal haplotype each sibling takes
    first = rng.random((int(block[-1]) + 1, 4, len(pairs))) < 0.5
    dosage[:, a] = np.where(first[block, 0], *father) + np.where(first[block, 1], *mother)
    dosage[:, b] = np.where(first[block, 2], *father) + np.where(first[block, 3], *mother)
