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


def simulate_dosages(rng, maf, rho, n_subjects, chunk=2048):
    """Draw minor-allele counts (0, 1, 2) as int8, shape (n_subjects, n_snps).

    Each haplotype is a latent Gaussian AR(1) chain along the block, thresholded so that the minor
    allele has probability ``maf``; two independent haplotypes per subject give Hardy-Weinberg.
    """
    n_snps = len(maf)
    threshold = norm.ppf(maf).astype(np.float32)
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
        hap = (x < threshold[lo:hi, None]).view(np.int8)
        out[:, lo:hi] = (hap[:, :n_subjects] + hap[:, n_subjects:]).T
    return out
