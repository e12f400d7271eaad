"""Simulate SNP maps and genotypes in Hardy-Weinberg proportions, with linkage disequilibrium either packed
into blocks or decaying with distance along an array-like map."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.stats import beta as beta_dist
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
# The array layout's LD map (see simulate_array_map). Latent correlation between two SNPs is exp(-m), m the
# map distance between them: background distance / ARRAY_BACKGROUND_BP plus the heights of the recombination
# hotspots in between. Hotspots come about one per 100 kb (about 30,000 along the autosomes, as in the
# HapMap fine-scale map, Myers et al. 2005) and carry about 70 % of the map distance (1.2 / 100 kb against
# 1 / 200 kb), so LD decays on average as exp(-d / 59 kb): measured genotype r^2 about 0.4 at 10-20 kb, 0.2
# at 40-60 kb, 0.1 at 60-100 kb, under 0.02 beyond 150 kb (European-like decay), with block-like runs
# between strong hotspots.
ARRAY_BACKGROUND_BP = 200_000
ARRAY_HOTSPOT_SPACING_BP = 100_000
ARRAY_HOTSPOT_HEIGHT = 1.2  # mean (exponential) map distance across one hotspot
ARRAY_RHO_FLOOR = 1e-3  # below it the chain restarts (rho = 0): genotype r^2 under 1e-6
ARRAY_SEGMENT_RHO = 0.3  # an LD segment ("block") starts where the latent correlation drops below this
ARRAY_MAF_JITTER = 0.2  # SD of each SNP's logit-MAF around the smooth spectrum along the chromosome
# Sibling inheritance on the array layout: one choice of parental haplotype per 40 Mb window, a crossover
# with probability 1/2 at each window edge, i.e. about one per 80 Mb and meiosis (about 1.2 cM / Mb).
ARRAY_MEIOSIS_WINDOW_BP = 40_000_000
_BASES = np.array(["A", "C", "G", "T"])


def snps_per_chromosome(n_snps):
    """Split n_snps over chr 1-22 in proportion to their length (largest remainder, at least 1 each)."""
    share = GRCH37_LENGTHS / GRCH37_LENGTHS.sum() * n_snps
    counts = np.maximum(np.floor(share).astype(int), 1)
    rest = n_snps - counts.sum()
    order = np.argsort(-(share - np.floor(share)), kind="stable")
    counts[order[:rest]] += 1
    return counts


def _snp_table(rng, chrom, pos, maf, block) -> pd.DataFrame:
    """The map's SNP table, each SNP given two distinct random alleles (drawn last, after the frequencies)."""
    pair = rng.permuted(np.tile(np.arange(4), (len(pos), 1)), axis=1)[:, :2]
    return pd.DataFrame(
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

    snps = _snp_table(rng, chrom, pos, maf, block)
    return snps, rho


def simulate_array_map(rng, n_snps):
    """Draw an array-like SNP map: SNPs spread along each whole chromosome, LD decaying with distance.

    Positions are uniform along each chromosome (``n_snps`` in proportion to its length: about one SNP per
    600 kb at 5,000 SNPs, one per 6 kb at 500,000, the density of a genotyping array). The latent haplotype
    chain of :func:`simulate_dosages` links neighbours with ``rho = exp(-m)``, ``m`` their map distance
    (a background rate plus recombination hotspots, see the module's ``ARRAY_*`` constants), so the latent
    correlation of any two SNPs is ``exp(-map distance)``: an Ornstein-Uhlenbeck process along the
    chromosome. MAFs follow the block layout's spectrum (Beta(0.9, 1.6) on [0.01, 0.5]) through a second
    chain with the same correlations, so SNPs in LD have similar frequencies (which lets them reach a high
    r^2), with a little jitter (``ARRAY_MAF_JITTER`` on the logit scale).

    Returns
    -------
    snps : DataFrame
        As :func:`simulate_snp_map`; ``block`` numbers LD segments, runs of SNPs whose latent correlation
        with the previous SNP is at least ``ARRAY_SEGMENT_RHO``.
    rho : ndarray of shape (n_snps,)
        Latent lag-1 correlation (0 at a chromosome start, and where it falls below ``ARRAY_RHO_FLOOR``).
    recombine : ndarray of bool, shape (n_snps,)
        Where a sibling may switch parental haplotype (chromosome starts and ``ARRAY_MEIOSIS_WINDOW_BP``
        window edges).
    info : dict
        The map's parameters and realized sizes, for ``truth.json``.
    """
    counts = snps_per_chromosome(n_snps)
    chrom = np.repeat(np.arange(1, 23), counts)
    pos = np.empty(n_snps, dtype=np.int64)
    rho = np.empty(n_snps)
    n_hotspots = 0
    start = 0
    for c, k in enumerate(counts):
        length = int(GRCH37_LENGTHS[c])
        here = np.sort(rng.choice(length - 1, size=k, replace=False)) + 1
        n_hot = int(rng.poisson(length / ARRAY_HOTSPOT_SPACING_BP))
        hot_pos = np.sort(rng.uniform(0, length, n_hot))
        hot_cum = np.r_[0.0, np.cumsum(rng.exponential(ARRAY_HOTSPOT_HEIGHT, n_hot))]
        map_pos = here / ARRAY_BACKGROUND_BP + hot_cum[np.searchsorted(hot_pos, here)]
        pos[start : start + k] = here
        rho[start : start + k] = np.r_[0.0, np.exp(-np.diff(map_pos))]
        n_hotspots += n_hot
        start += k
    rho[rho < ARRAY_RHO_FLOOR] = 0.0
    new_chrom = np.r_[True, chrom[1:] != chrom[:-1]]
    block = np.cumsum(new_chrom | (rho < ARRAY_SEGMENT_RHO)) - 1
    window = pos // ARRAY_MEIOSIS_WINDOW_BP
    recombine = new_chrom | np.r_[True, window[1:] != window[:-1]]

    # Smooth MAF spectrum: a unit-variance chain with the same lag-1 correlations, through the Beta quantile.
    u = rng.standard_normal(n_snps)
    innov = np.sqrt(1.0 - rho**2)
    for j in np.flatnonzero(rho > 0):
        u[j] = rho[j] * u[j - 1] + innov[j] * u[j]
    smooth = MAF_RANGE[0] + (MAF_RANGE[1] - MAF_RANGE[0]) * beta_dist.ppf(norm.cdf(u), 0.9, 1.6)
    maf = np.clip(expit(logit(smooth) + rng.normal(0.0, ARRAY_MAF_JITTER, n_snps)), *MAF_RANGE)

    snps = _snp_table(rng, chrom, pos, maf, block)
    info = {
        "layout": "array",
        "model": "positions uniform along each chromosome; latent haplotype chain with correlation exp(-m) between "
        "SNPs, m = distance / background_bp + heights of the hotspots in between (exponential, mean "
        "hotspot_mean_height); haplotype = latent below the normal quantile of the MAF; MAFs from a chain with "
        "the same correlations through the Beta(0.9, 1.6) spectrum, logit jitter maf_jitter_sd",
        "background_bp": ARRAY_BACKGROUND_BP,
        "hotspot_spacing_bp": ARRAY_HOTSPOT_SPACING_BP,
        "hotspot_mean_height": ARRAY_HOTSPOT_HEIGHT,
        "effective_ld_scale_bp": round(
            1.0 / (1.0 / ARRAY_BACKGROUND_BP + ARRAY_HOTSPOT_HEIGHT / ARRAY_HOTSPOT_SPACING_BP)
        ),
        "maf_jitter_sd": ARRAY_MAF_JITTER,
        "n_hotspots": n_hotspots,
        "mean_spacing_bp": round(float(GRCH37_LENGTHS.sum() / n_snps)),
        "segment_rule": f"an LD segment (block) starts where the latent correlation with the previous SNP is below "
        f"{ARRAY_SEGMENT_RHO}",
        "n_segments": int(block[-1]) + 1,
        "meiosis_window_bp": ARRAY_MEIOSIS_WINDOW_BP,
    }
    return snps, rho, recombine, info


def simulate_dosages(
    rng, maf, rho, n_subjects, chunk=2048, *, group=None, pairs=None, rng_meiosis=None, recombine=None
):
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
    recombine : ndarray of bool, shape (n_snps,), optional
        Where siblings draw their parental haplotypes afresh; default: at every block start (``rho == 0``).
    """
    n_snps = maf.shape[-1]
    threshold = norm.ppf(maf).astype(np.float32)
    if group is not None:
        hap_group = np.concatenate([group, group])  # haplotype j and n_subjects + j belong to subject j
    out = np.empty((n_subjects, n_snps), dtype=np.int8)
    innov = np.sqrt(1.0 - rho**2).astype(np.float32)
    rho32 = rho.astype(np.float32)
    if recombine is None:
        recombine = rho == 0.0
    # Chunk over SNPs to bound memory, cutting where the chain restarts (rho 0) once `chunk` SNPs have
    # passed; where no restart comes for 4 x chunk SNPs (a dense array map), cutting every `chunk` SNPs and
    # carrying the chain over. The chain is sequential along SNPs but vectorized over the 2 * n_subjects
    # haplotypes.
    starts = np.flatnonzero(rho == 0.0)
    cuts = [0]
    for s in starts[1:]:
        while s - cuts[-1] > 4 * chunk:
            cuts.append(cuts[-1] + chunk)
        if s - cuts[-1] >= chunk:
            cuts.append(int(s))
    while n_snps - cuts[-1] > 4 * chunk:
        cuts.append(cuts[-1] + chunk)
    cuts.append(n_snps)
    last, choice = None, None
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        # SNP-major so each step of the recursion touches one contiguous row.
        x = rng.standard_normal((hi - lo, 2 * n_subjects), dtype=np.float32)
        if rho32[lo] != 0.0:  # a chunk cut inside an LD run: go on from the previous chunk's last row
            x[0] *= innov[lo]
            x[0] += rho32[lo] * last
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
        last = x[-1].copy()
        dosage = hap[:, :n_subjects] + hap[:, n_subjects:]
        if pairs is not None and len(pairs):
            choice = _inherit(rng_meiosis, hap, dosage, pairs, recombine[lo:hi], choice)
        out[:, lo:hi] = dosage.T
    return out


def _inherit(rng, hap, dosage, pairs, block_start, carried=None):
    """Overwrite the siblings' dosages in ``dosage`` (SNPs x subjects) with what they inherit; return the last
    block's choices, which ``carried`` continues when the next chunk starts inside that block."""
    n = dosage.shape[1]
    a, b = pairs[:, 0], pairs[:, 1]
    father = hap[:, a], hap[:, b]
    mother = hap[:, n + a], hap[:, n + b]
    # per block and pair: which paternal / maternal haplotype each sibling takes
    first = rng.random((int(block_start.sum()), 4, len(pairs))) < 0.5
    if not block_start[0]:
        first = np.concatenate([carried[None], first])
        block = np.cumsum(block_start)
    else:
        block = np.cumsum(block_start) - 1
    dosage[:, a] = np.where(first[block, 0], *father) + np.where(first[block, 1], *mother)
    dosage[:, b] = np.where(first[block, 2], *father) + np.where(first[block, 3], *mother)
    return first[-1]
