"""Assemble a simulated cohort, write it in the DESIGN.md §3 formats, and record the planted truth."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from migtrans._nodes import NODE_NOTE, standin_nodes
from migtrans.exceptions import ParameterError
from migtrans.simulate import _architecture, _fnc, _genotypes, _labels, _population, _smri
from migtrans.utils import (
    discard_staging,
    mark_output,
    move_into_place,
    prepare_out_dir,
    staging_dir,
    to_builtin,
    write_toml,
)
from migtrans.validation import check_number, check_seed

N_CAUSAL_SNPS = 5
MODALITIES = ("snp", "fnc", "smri")
LIABILITY_NOISE_SD = 1.0
MAX_ANCESTRIES = 5
MAX_SITE_EFFECT = 5.0  # beyond it a site's relative scale could turn negative
MAX_SEX_EFFECT = 5.0
SEX_CODE = {"M": 0.5, "F": -0.5}  # so that sex_effect is the male - female difference
# settings and truth.json sections added with population structure, site and sex effects (the default
# cohort's truth.json is the earlier one plus these keys)
NEW_SETTINGS = (
    "n_ancestries",
    "fst",
    "ancestry_case_shares",
    "relative_share",
    "site_effect",
    "sex_effect",
    "subjects_seed",
)
NEW_SECTIONS = ("population", "relatives", "site_effects", "covariate_effects")
# added with the presets and switches of the harder simulator (the easy cohort's truth.json is the earlier one
# plus these keys)
PRESET_SETTINGS = ("preset", *_architecture.SWITCHES)
PRESET_SECTIONS = ("architecture",)
# Mixed into the subjects' seed so that no subjects_seed gives back a stream of the first cohort (not even
# subjects_seed == seed); any fixed nonzero word would do.
_REPLICATE_WORD = 0x5EB1


@dataclass(repr=False)
class SimulatedCohort:
    """A simulated cohort as written to disk, with the truth that was planted in it.

    Attributes
    ----------
    out_dir, toml_path : pathlib.Path
        The cohort folder and its ``cohort.toml``.
    subject_ids : ndarray of str
        Subject ids, in the order of the ``.fam`` file (and of every array below).
    labels : ndarray of int8
        1 = "SZ", 0 = "HC".
    genotypes : ndarray of float32, shape (n_subjects, n_snps)
        Count of allele A1 (bim column 5), NaN for missing calls.
    snps : pandas.DataFrame
        snp, chrom, pos, a1, a2, maf, block.
    fnc : ndarray of float32, shape (n_subjects, K, K)
        Symmetric Fisher-z matrices with a zero diagonal.
    nodes : pandas.DataFrame
        name, domain, x, y, z (+ network, note) of the K stand-in nodes.
    mask : ndarray of bool, 3D
        Voxels kept in ``voxels``; ``affine`` is its voxel-to-MNI affine.
    voxels : ndarray of float32, shape (n_subjects, n_voxels), or None
        Each subject's volume at ``mask`` (C order); None when ``keep_volumes=False``.
    truth : dict
        The content of ``truth.json``.
    """

    out_dir: Path
    toml_path: Path
    subject_ids: np.ndarray
    labels: np.ndarray
    genotypes: np.ndarray
    snps: pd.DataFrame
    fnc: np.ndarray
    nodes: pd.DataFrame
    mask: np.ndarray
    affine: np.ndarray
    voxels: np.ndarray | None
    truth: dict = field(default_factory=dict)

    def __repr__(self):
        return (
            f"SimulatedCohort(out_dir={str(self.out_dir)!r}, n_subjects={len(self.subject_ids)}, "
            f"n_snps={self.genotypes.shape[1]}, n_nodes={len(self.nodes)}, "
            f"n_voxels={int(self.mask.sum())})"
        )


def _package_version():
    import migtrans

    return getattr(migtrans, "__version__", "unknown")


def _check_signal(signal):
    weights = dict.fromkeys(MODALITIES, 1.0)
    if signal is None:
        return weights
    if not isinstance(signal, dict):
        raise ParameterError(f"signal: expected a dict with keys among {list(MODALITIES)}, found {signal!r}")
    for key, value in signal.items():
        if key not in MODALITIES:
            raise ParameterError(f"signal: expected keys among {list(MODALITIES)}, found {key!r}")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ParameterError(f"signal[{key!r}]: expected a float >= 0, found {value!r}") from None
        if not np.isfinite(value) or value < 0:
            raise ParameterError(f"signal[{key!r}]: expected a float >= 0, found {value!r}")
        weights[key] = value
    return weights


def _check_case_shares(shares, n_ancestries, case_share):
    if shares is None:
        return None
    if isinstance(shares, (str, bytes, dict)) or not hasattr(shares, "__len__") or len(shares) != n_ancestries:
        raise ParameterError(
            f"ancestry_case_shares: expected {n_ancestries} shares (one per ancestry group), found {shares!r}"
        )
    if case_share != 0.5:
        raise ParameterError(
            f"case_share: expected the default 0.5 with ancestry_case_shares (which set the share of cases of "
            f"each group), found {case_share!r}"
        )
    return tuple(
        check_number(f"ancestry_case_shares[{g}]", share, minimum=0.1, maximum=0.9) for g, share in enumerate(shares)
    )


def simulate_cohort(
    out_dir,
    *,
    n_subjects=300,
    n_snps=5000,
    seed=0,
    resolution=4.0,
    n_sites=1,
    signal=None,
    null=False,
    case_share=0.5,
    n_ancestries=1,
    fst=0.02,
    ancestry_case_shares=None,
    relative_share=0.0,
    site_effect=None,
    sex_effect=0.0,
    subjects_seed=None,
    preset="easy",
    genetic_architecture=None,
    snp_layout=None,
    imaging_effects=None,
    interactions=None,
    liability=None,
    plant_atlas=None,
    overwrite=False,
    keep_volumes=True,
):
    """Simulate a cohort with planted causal SNPs, brain regions and connections, and write it to disk.

    Each subject gets three standardized latent scores: ``z_snp`` (a sum of causal SNP dosages),
    ``z_fnc`` and ``z_smri`` (independent standard normals carried by planted FNC edges and
    gray-matter regions). The liability is ``sum(signal[m] * z_m) + N(0, 1)``; the top ``case_share`` of
    it is labelled "SZ" (with ``ancestry_case_shares``, the top share of each ancestry group within that
    group). With ``null=True`` a standard normal draw independent of everything takes the liability's
    place, under the same rule. The files follow DESIGN.md §3; ``truth.json`` records what was planted.

    What real cohorts add is off by default, and with every default the files are byte for byte those
    of earlier versions (``truth.json`` gains the new settings and sections only): ancestry structure
    and a case share that depends on it (the confounded null: with ``null=True``, SNPs whose frequency
    differs between groups associate with the label), sibling pairs, scanner effects of a chosen
    size, and a sex effect on imaging. Age always scales the gray matter (``1 - 0.002`` per year above
    35); it does not touch FNC.

    That is the ``easy`` preset. ``preset="realistic"`` makes each planted part harder in the way real data
    are, and each part has a switch of its own (``genetic_architecture``, ``snp_layout``,
    ``imaging_effects``, ``interactions``, ``liability``, ``plant_atlas``): the preset gives the switches
    their defaults and the liability's terms their sizes, a switch given explicitly overrides the preset.
    See Notes for what ``realistic`` plants and why.

    Parameters
    ----------
    out_dir : str or path-like
        Folder to create. It is written through a temporary sibling folder renamed at the end, so a
        failure leaves nothing behind.
    n_subjects : int, default=300
        Number of subjects (>= 20).
    n_snps : int, default=5000
        Number of SNPs on chromosomes 1-22 (>= 100).
    seed : int, default=0
        Seed of every random draw; the same seed writes the same bytes.
    resolution : float, default=4.0
        Voxel size of the gray-matter maps, in mm.
    n_sites : int, default=1
        Number of acquisition sites; with more than one, sites shift FNC and GM intensity a little
        (see ``site_effect``) and a ``site`` column is written.
    signal : dict, optional
        Weight of each modality's latent score in the liability, keys among "snp", "fnc", "smri"
        (floats >= 0, default 1.0 each). It multiplies the term's coefficient, the square root of its
        budget (see ``preset``); with ``liability="nonlinear"`` the polygenic x FNC product takes the
        product of the "snp" and "fnc" weights.
    null : bool, default=False
        If True, labels are drawn at random, independent of every feature (but not of ancestry when
        ``ancestry_case_shares`` differ).
    case_share : float, default=0.5
        Share of subjects labelled "SZ" (the top of the liability, or of the random draw with ``null``), in
        [0.1, 0.9]: real cohorts are seldom balanced. Leave it at 0.5 with ``ancestry_case_shares``.
    n_ancestries : int, default=1
        Number of ancestry groups, 1 to 5, of equal size in random subject order. Each SNP's allele
        frequency in a group is drawn around the map's MAF ``p`` from the Balding-Nichols model,
        Beta(p (1 - F) / F, (1 - p) (1 - F) / F), and the group's haplotypes are the usual LD chains
        thresholded at that frequency.
    fst : float, default=0.02
        F, the fixation index of the Balding-Nichols model, in (0, 0.5); about Hudson's F_ST between two
        groups (0.01-0.02 between European populations, about 0.1 between continents). Used when
        ``n_ancestries > 1``.
    ancestry_case_shares : sequence of float, optional
        Share of cases within each ancestry group, one per group, each in [0.1, 0.9]: cases are the top
        of the liability (or of the null draw) inside their group. The overall share follows from them.
    relative_share : float, default=0.0
        Share of subjects, in [0, 0.5], that come as sibling pairs (about: rounded to whole pairs in
        each ancestry group). Siblings are drawn from the same two parents and ancestry group, taking
        one haplotype of each parent in every LD block (expected kinship 0.25, genotype correlation
        0.5); the pairs are listed in ``truth.json`` (``relatives``), not in the ``.fam`` file, as
        cryptic relatedness.
    site_effect : float, optional
        Size of the scanner effects with several sites, in [0, 5]: every site gets an additive offset
        per FNC edge (SD 0.03 x site_effect), a relative scale of the FNC matrix (SD 0.04 x), a relative
        scale of the GM maps (SD 0.02 x) and an additive GM offset (SD 0.01 x, GM units). 0 turns them
        off. None (the default) is the model of earlier versions: the FNC offsets and GM scales at size
        1, no FNC scale, no GM offset.
    sex_effect : float, default=0.0
        Male minus female difference on imaging, in SD units, in [-5, 5]: GM maps scaled by
        ``1 + sex_effect * 0.04 * (+-0.5)`` (0.04 being the SD of a subject's global GM scale) and every
        FNC edge shifted by ``sex_effect * 0.10 * (+-0.5)`` (0.10 being an edge's typical SD across
        subjects). Sex does not enter the liability.
    subjects_seed : int, optional
        Draw a replication cohort: new subjects from the generator of ``seed``. ``seed`` still draws
        what defines the generator (the SNP map, the causal SNPs and their signs, the planted FNC edges
        and the population FNC structure, the ancestry groups' allele frequencies, the site effects;
        the sMRI regions are fixed), and ``subjects_seed`` every subject's draws (genotypes, missing
        calls, ancestry group, siblings, age, sex, site, latent scores, labels, FNC and GM variation).
        The subjects are named ``sub-r<subjects_seed>-0001``... so that they never clash with those of
        the first cohort. Give the first cohort's settings (``n_subjects`` may differ); None (the
        default) draws everything from ``seed``, as earlier versions did.
    preset : {"easy", "realistic"}, default="easy"
        The defaults of the six switches below and the variance of each term of the liability (its
        "budget"). ``easy``: the earlier simulator, three unit-variance scores and unit noise.
        ``realistic``: polygenic, array, spread, interactions 1, nonlinear, harvard-oxford, with the
        budget of Notes.
    genetic_architecture : {"oligogenic", "polygenic"}, optional
        ``oligogenic``: 5 causal SNPs sharing the SNP budget (with ``easy``, about 5 % of the liability
        each). ``polygenic``: 5 larger SNPs (0.3-0.5 % of the liability each, at the realistic budget) and
        up to 300 small ones (0.01-0.1 % each), one per LD segment; fewer small SNPs, each larger, on maps
        with under about 1,500 eligible segments.
    snp_layout : {"blocks", "array"}, optional
        ``blocks``: compact LD blocks (about 15 SNPs, a few kb apart) scattered along the chromosomes.
        ``array``: SNPs spread uniformly along each chromosome at the density ``n_snps`` gives (one per
        600 kb at 5,000 SNPs, one per 6 kb at 500,000), LD decaying with distance (latent correlation
        exp(-distance / 59 kb) on average, with recombination hotspots).
    imaging_effects : {"focal", "spread"}, optional
        ``focal``: 4 gray-matter regions (GM reduced by 6 % per SD of ``z_smri``) and 6 FNC edges (Fisher
        z +- 0.12 per SD of ``z_fnc``). ``spread``: 12 regions (3.5-8 % per SD) and 30 % of the edges of
        six domain pairs (the FBIRN thalamo-sensory pattern, 0.04-0.10 per SD).
    interactions : bool or float, optional
        Strength of two cross-modal terms, in [0, 3] (True is 1, False 0): a SNP that sets how much one
        region's GM weighs on the liability (``dosage x z_smri_x``), and FNC edges that weigh on it only
        with a structural deficit (``1{z_smri > 0.43} x z_fnc_x``). Their variances scale with its square.
    liability : {"linear", "nonlinear"}, optional
        ``nonlinear``: the structural term acts through a threshold (only deficits above the mean raise
        the risk) and the polygenic score multiplies the connectome score (``z_snp x z_fnc``).
    plant_atlas : {"aal", "harvard-oxford"}, optional
        Atlas whose regions are planted; the region tables read AAL by default, so with Harvard-Oxford a
        planted region spreads over several table regions (each region's ``overlap`` in ``truth.json``).
    overwrite : bool, default=False
        Replace ``out_dir`` when it exists and is not empty.
    keep_volumes : bool, default=True
        Keep every subject's masked voxels in memory (``voxels``). With False the volumes are
        written one at a time and nothing big is held.

    Returns
    -------
    SimulatedCohort

    Notes
    -----
    ``truth.json`` holds ``settings`` (every argument), the planted signal (``causal_snps``,
    ``causal_blocks``, ``smri_regions``, ``fnc_edges``), ``label_model``, ``population`` (ancestry groups
    and relatedness), ``relatives`` (``[id1, id2, "sibling"]`` rows), ``site_effects`` (the drawn
    offsets and scales of every site) and ``covariate_effects`` (age, sex). ``truth_subjects.tsv`` holds
    each subject's latent scores and liability, with ``ancestry`` (1-based group) when
    ``n_ancestries > 1`` and ``family`` when ``relative_share > 0``.

    The ``realistic`` budget (variance of each term; 1 in all with everything on): polygenic score 0.14
    (between the 0.07 that the best schizophrenia polygenic score explains on the liability scale and the
    SNP heritability of 0.24, PGC3), sMRI and FNC scores 0.08 each (a latent with 8 % of the liability
    differs by d = 0.45 between cases and controls; measured through noisy GM and FNC the planted regions and
    edges show d of about 0.2-0.4, as in ENIGMA and FBIRN), SNP x sMRI 0.03, FNC given a structural deficit
    0.03, polygenic x FNC 0.02, noise 0.62. The noise-free liability gives AUC 0.78 at infinite data
    (``architecture.expected_auc``; 0.67 from the polygenic score alone, 0.68 from the two imaging scores,
    0.71 with the interactions); at 600-1,000 subjects the imaging terms are the learnable part (a logistic
    model of the planted regions' and edges' means reaches AUC 0.66 on held-out subjects).

    ``truth.json`` records the preset, every switch and the terms (``architecture``: coefficients,
    variances and shares, each causal SNP's per-allele effect and share, the SNP map's model, the
    interactions' SNP, region and edges), each planted region's and edge's latent, effect and case-control
    d in the cohort; ``truth_subjects.tsv`` adds every term's value (``term_*``),
    and with interactions the latents ``z_smri_x``, ``z_fnc_x`` and the ``deficit`` flag. With
    ``null=True`` the labels stay a draw independent of every feature, whatever the switches.

    A replication cohort (``subjects_seed``) shares ``genotypes.bim``, ``fnc_nodes.tsv``, ``mask.nii.gz``
    and every part of ``truth.json`` that describes the generator with the first cohort. What describes
    its own subjects differs: ``label_model.prevalence``, the groups' sizes and case shares in
    ``population``, ``relatives``, the causal SNPs' ``effect``, ``architecture.cohort`` and, outside the
    ``easy`` preset, the planted regions' and edges' ``cohens_d``. The label rule standardizes the
    causal dosages and the latent scores over the cohort's own subjects and labels the top of its own
    liability, so each cohort follows the same rule and the per-SD effects differ by sampling only
    (their signs and SNPs are the same).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "cohort"
    >>> sim = simulate_cohort(out, n_subjects=40, n_snps=300, resolution=8, seed=0)
    >>> sim.genotypes.shape, int(sim.labels.sum())
    ((40, 300), 20)

    A confounded null: two ancestry groups with different shares of cases.

    >>> sim = simulate_cohort(
    ...     pathlib.Path(tempfile.mkdtemp()) / "cohort", n_subjects=40, n_snps=300, resolution=8, null=True,
    ...     n_ancestries=2, fst=0.05, ancestry_case_shares=(0.3, 0.7))
    >>> sim.truth["population"]["ancestry"]["case_shares"]
    [0.3, 0.7]

    A replication cohort: other subjects, the same causal SNPs.

    >>> first = simulate_cohort(pathlib.Path(tempfile.mkdtemp()) / "first", n_subjects=40, n_snps=300, resolution=8)
    >>> again = simulate_cohort(
    ...     pathlib.Path(tempfile.mkdtemp()) / "again", n_subjects=30, n_snps=300, resolution=8, subjects_seed=1)
    >>> str(again.subject_ids[0]), again.truth["fnc_edges"] == first.truth["fnc_edges"]
    ('sub-r1-0001', True)

    The realistic preset, with the SNP layout switched back to blocks.

    >>> sim = simulate_cohort(
    ...     pathlib.Path(tempfile.mkdtemp()) / "cohort", n_subjects=40, n_snps=2000, resolution=8,
    ...     preset="realistic", snp_layout="blocks", plant_atlas="aal")
    >>> sim.truth["settings"]["genetic_architecture"], sim.truth["architecture"]["genetic"]["n_large"]
    ('polygenic', 5)
    """
    n_subjects = check_number("n_subjects", n_subjects, minimum=20, maximum=100_000, integer=True)
    n_snps = check_number("n_snps", n_snps, minimum=100, maximum=5_000_000, integer=True)
    if n_subjects * n_snps > 2_000_000_000:  # the dosages are simulated in memory
        raise ParameterError(
            f"n_subjects x n_snps: expected at most 2e9 genotypes, found {n_subjects:,} x {n_snps:,} (use plink1.9 "
            "--simulate for larger genotype sets)"
        )
    n_sites = check_number("n_sites", n_sites, minimum=1, maximum=max(1, n_subjects // 20), integer=True)
    seed = check_seed("seed", seed)
    # at most a 256-voxel-wide grid (0.75 mm); coarser than 32 mm leaves no brain to speak of
    resolution = check_number("resolution", resolution, minimum=0.75, maximum=32)
    weights = _check_signal(signal)
    case_share = check_number("case_share", case_share, minimum=0.1, maximum=0.9)
    n_ancestries = check_number("n_ancestries", n_ancestries, minimum=1, maximum=MAX_ANCESTRIES, integer=True)
    fst = check_number("fst", fst, minimum=0, maximum=0.5, low_open=True, high_open=True)
    ancestry_case_shares = _check_case_shares(ancestry_case_shares, n_ancestries, case_share)
    relative_share = check_number("relative_share", relative_share, minimum=0, maximum=0.5)
    if site_effect is not None:
        site_effect = check_number("site_effect", site_effect, minimum=0, maximum=MAX_SITE_EFFECT)
    sex_effect = check_number("sex_effect", sex_effect, minimum=-MAX_SEX_EFFECT, maximum=MAX_SEX_EFFECT)
    if subjects_seed is not None:
        subjects_seed = check_seed("subjects_seed", subjects_seed)
    arch = _architecture.resolve_architecture(
        preset,
        genetic_architecture=genetic_architecture,
        snp_layout=snp_layout,
        imaging_effects=imaging_effects,
        interactions=interactions,
        liability=liability,
        plant_atlas=plant_atlas,
    )
    out_dir = prepare_out_dir(out_dir, overwrite, kind="cohort")

    tmp = staging_dir(out_dir)
    try:
        cohort = _simulate_into(
            tmp,
            n_subjects=n_subjects,
            n_snps=n_snps,
            seed=seed,
            resolution=resolution,
            n_sites=n_sites,
            weights=weights,
            null=bool(null),
            case_share=float(case_share),
            n_ancestries=n_ancestries,
            fst=fst,
            ancestry_case_shares=ancestry_case_shares,
            relative_share=relative_share,
            site_effect=site_effect,
            sex_effect=sex_effect,
            subjects_seed=subjects_seed,
            keep_volumes=bool(keep_volumes),
            arch=arch,
        )
        mark_output(tmp, "cohort")
        move_into_place(tmp, out_dir)
    except BaseException:
        discard_staging(tmp)
        raise
    cohort.out_dir = out_dir
    cohort.toml_path = out_dir / "cohort.toml"
    return cohort


def _simulate_into(
    tmp,
    *,
    n_subjects,
    n_snps,
    seed,
    resolution,
    n_sites,
    weights,
    null,
    case_share,
    n_ancestries,
    fst,
    ancestry_case_shares,
    relative_share,
    site_effect,
    sex_effect,
    subjects_seed,
    keep_volumes,
    arch,
):
    rng, subject_rng = _streams(seed, subjects_seed)
    rng_map, rng_ancestry, rng_site = rng["map"], rng["ancestry"], rng["site"]
    rng_geno, rng_pheno, rng_missing, rng_family = (subject_rng[k] for k in ("geno", "pheno", "missing", "family"))
    prefix = "sub-" if subjects_seed is None else f"sub-r{subjects_seed}-"
    ids = np.array([f"{prefix}{i:04d}" for i in range(1, n_subjects + 1)])
    legacy = arch.legacy
    interacting = arch.interactions > 0

    # Population structure, genotypes and the genetic score.
    if arch.snp_layout == "blocks":
        snps, rho = _genotypes.simulate_snp_map(rng_map, n_snps)
        recombine, map_info = None, _blocks_map_info(snps)
    else:
        snps, rho, recombine, map_info = _genotypes.simulate_array_map(rng_map, n_snps)
    maf = snps["maf"].to_numpy()
    if n_ancestries > 1:
        freq = _population.population_frequencies(rng_ancestry, maf, n_ancestries, fst)
        ancestry = _population.assign_groups(subject_rng["ancestry"], n_subjects, n_ancestries)
    else:
        freq, ancestry = maf, np.zeros(n_subjects, dtype=np.int64)
    pairs = (
        _population.sibling_pairs(rng_family, ancestry, relative_share)
        if relative_share > 0
        else np.empty((0, 2), dtype=np.int64)
    )
    dosages = _genotypes.simulate_dosages(
        rng_geno,
        freq,
        rho,
        n_subjects,
        group=ancestry if n_ancestries > 1 else None,
        pairs=pairs if len(pairs) else None,
        rng_meiosis=rng_family,
        recombine=recombine,
    )
    if arch.genetic_architecture == "oligogenic":
        causal = _labels.choose_causal_snps(rng_map, snps, N_CAUSAL_SNPS)
        signs = rng_map.choice([-1.0, 1.0], size=len(causal))
        z_snp, snp_scale = _labels.snp_score(dosages[:, causal], signs)
        genetic = {"role": np.array(["oligogenic"] * len(causal)), "sign": signs, "scale": snp_scale}
    else:
        genetic = _architecture.polygenic_effects(rng["genetic_effects"], snps, arch.budget["snp"])
        causal, signs = genetic["index"], genetic["sign"]
        centered = dosages[:, causal].astype(float) - 2 * maf[causal]
        z_snp = centered @ genetic["beta"] / np.sqrt(arch.budget["snp"])
    modifier = None
    if interacting:
        used = set(snps["block"].to_numpy()[causal])
        chosen = _architecture.choose_in_segments(
            rng["interaction_effects"], maf, snps["block"].to_numpy(), 1, _architecture.MODIFIER_MIN_MAF, used
        )
        if len(chosen) == 0:
            raise ParameterError(
                f"n_snps: expected a map with a common SNP (MAF >= {_architecture.MODIFIER_MIN_MAF}) outside the "
                f"causal SNPs' LD segments for the SNP x sMRI interaction, found none among {n_snps} SNPs"
            )
        modifier = int(chosen[0])

    # Demographics, the other scores, liability and labels.
    age = np.round(np.clip(rng_pheno.normal(35.0, 11.0, n_subjects), 18.0, 65.0), 1)
    sex = np.where(rng_pheno.random(n_subjects) < 0.55, "M", "F")
    sites = rng_pheno.permutation(np.arange(n_subjects) % n_sites)
    z_fnc = _labels.standardize(rng_pheno.standard_normal(n_subjects))
    z_smri = _labels.standardize(rng_pheno.standard_normal(n_subjects))
    coef = _architecture.coefficients(arch, weights, None if modifier is None else maf[modifier])
    if legacy:
        noise = rng_pheno.normal(0.0, LIABILITY_NOISE_SD, n_subjects)
        terms = {"snp": weights["snp"] * z_snp, "fnc": weights["fnc"] * z_fnc, "smri": weights["smri"] * z_smri}
        latents = None
        liability = terms["snp"] + terms["fnc"] + terms["smri"] + noise
    else:
        noise = rng_pheno.normal(0.0, coef["noise"]["coefficient"], n_subjects)
        # the interactions' latents have a stream of their own: the other draws stay when they are switched off
        rng_latents = subject_rng["latents"]
        latents = {
            "z_snp": z_snp,
            "z_fnc": z_fnc,
            "z_smri": z_smri,
            "z_smri_x": _labels.standardize(rng_latents.standard_normal(n_subjects)),
            "z_fnc_x": _labels.standardize(rng_latents.standard_normal(n_subjects)),
        }
        modifier_dosage = None if modifier is None else dosages[:, modifier].astype(float)
        terms = _architecture.liability_terms(arch, coef, latents, modifier_dosage)
        liability = sum(terms.values()) + noise
    null_draw = rng_pheno.standard_normal(n_subjects)
    score = null_draw if null else liability
    if ancestry_case_shares is None:
        labels = _labels.balanced_labels(score, case_share)
    else:
        labels = _labels.group_labels(score, ancestry, ancestry_case_shares)

    # Missing calls, never on causal SNPs (nor the modifier) so their effect stays exact.
    genotypes = dosages.astype(np.float32)
    del dosages
    missing = rng_missing.random(genotypes.shape, dtype=np.float32) < _genotypes.MISSING_RATE
    missing[:, causal] = False
    if modifier is not None:
        missing[:, modifier] = False
    genotypes[missing] = np.nan
    del missing

    _write_genotypes(tmp, ids, genotypes, sex, labels, snps)

    _write_phenotypes(tmp, ids, labels, age, sex, sites, n_sites)

    # Scanner and sex effects on imaging (the legacy site model draws its parts inside _fnc and _smri).
    fnc_scale, smri_offset = _site_draws(rng_site, n_sites, site_effect)
    sex_code = np.vectorize(SEX_CODE.get, otypes=[float])(sex)
    fnc_shift = sex_effect * _fnc.EDGE_SD * sex_code if sex_effect else None
    smri_shift = sex_effect * _smri.GLOBAL_SD * sex_code

    # FNC.
    nodes = standin_nodes()
    if arch.imaging_effects == "focal":
        edges = _fnc.plant_edges(rng["fnc"], nodes)
    else:
        edges = _fnc.plant_spread_edges(rng["imaging_effects"], nodes)
    if not legacy:
        for edge in edges:
            edge.setdefault("latent", "z_fnc")
            edge.setdefault("role", "main")
    if interacting:
        edges += _fnc.plant_conditional_edges(
            rng["interaction_effects"],
            nodes,
            _architecture.N_CONDITIONAL_EDGES,
            _architecture.CONDITIONAL_DOMAIN_PAIRS,
            _architecture.CONDITIONAL_EDGE_EFFECT,
            taken=edges,
        )
    fnc, fnc_offset = _fnc.simulate_fnc(
        rng["fnc"],
        nodes,
        z_fnc,
        edges,
        sites,
        n_sites,
        site_effect=site_effect,
        site_scale=fnc_scale,
        shift=fnc_shift,
        rng_subjects=subject_rng["fnc"],
        latents=latents,
    )
    np.save(tmp / "fnc.npy", fnc)
    (tmp / "fnc_subjects.txt").write_text("\n".join(ids) + "\n")
    nodes.to_csv(tmp / "fnc_nodes.tsv", sep="\t", index=False, float_format="%.2f", lineterminator="\n")

    tpl, affine, mask, regions, voxels, smri_scale = _simulate_smri_into(
        tmp,
        (rng["smri"], subject_rng["smri"]),
        ids,
        resolution,
        z_smri,
        age,
        sites,
        n_sites,
        keep_volumes,
        site_effect,
        smri_offset,
        smri_shift,
        arch=arch,
        latents=latents,
        labels=labels,
    )

    settings = dict(
        n_subjects=n_subjects,
        n_snps=n_snps,
        seed=seed,
        resolution=resolution,
        n_sites=n_sites,
        signal=weights,
        null=null,
        # replaced by the per-group shares when they are given
        case_share=None if ancestry_case_shares else case_share,
        n_ancestries=n_ancestries,
        fst=fst,
        ancestry_case_shares=ancestry_case_shares,
        relative_share=relative_share,
        site_effect=site_effect,
        sex_effect=sex_effect,
        subjects_seed=subjects_seed,
        keep_volumes=keep_volumes,
        package_version=_package_version(),
        **arch.settings(),
    )
    if legacy:
        per_sd = weights["snp"] * signs * genetic["scale"]
    elif arch.genetic_architecture == "oligogenic":
        per_sd = coef["snp"]["coefficient"] * signs * genetic["scale"]
    else:
        per_sd = weights["snp"] * signs * np.sqrt(genetic["share"])
    truth = _truth(snps, causal, per_sd, regions, edges, labels, weights, null, settings)
    total = sum(term["variance"] for term in coef.values())
    # groups are of equal size: the overall share of cases is the mean of theirs
    overall_share = case_share if ancestry_case_shares is None else float(np.mean(ancestry_case_shares))
    architecture = {
        "preset": arch.preset,
        "switches": {k: v for k, v in arch.settings().items() if k != "preset"},
        "budget": arch.budget,
        "terms": {name: {**term, "share": round(term["variance"] / total, 6)} for name, term in coef.items()},
        "expected_auc": round(
            _architecture.expected_auc(arch, coef, None if modifier is None else maf[modifier], overall_share), 4
        ),
        # the only part that describes the cohort's own subjects
        "cohort": {"auc_noise_free": round(_auc(liability - noise, labels), 4)},
        "genetic": _genetic_truth(arch, snps, causal, genetic, coef, total),
        "snp_map": map_info,
        "imaging": _imaging_truth(arch),
        "interactions": _interaction_truth(arch, coef, total, snps, modifier, regions, edges),
        "liability": {"form": arch.liability, "formula": _architecture.formula(arch)},
        "atlas": {
            "plant": arch.plant_atlas,
            "tables": _architecture.TABLES_ATLAS,
            "note": "planted regions are named in the planting atlas; region tables read the tables atlas unless "
            "told otherwise"
            + (
                ""
                if arch.plant_atlas == _architecture.TABLES_ATLAS
                else ", so a planted region spreads over the "
                "tables' regions listed in each smri_regions entry's overlap"
            ),
        },
    }
    if not legacy:
        _extend_truth(truth, arch, coef, snps, causal, genetic, modifier, edges, labels, fnc, total)
    truth.update(
        to_builtin(
            {
                "population": _population_truth(
                    freq, ancestry, labels, pairs, n_ancestries, fst, relative_share, arch.snp_layout
                ),
                "relatives": [[ids[a], ids[b], "sibling"] for a, b in pairs],
                "site_effects": _site_truth(n_sites, site_effect, fnc_offset, fnc_scale, smri_scale, smri_offset),
                "covariate_effects": _covariate_truth(sex_effect),
                "architecture": architecture,
            }
        )
    )
    (tmp / "truth.json").write_text(json.dumps(truth, sort_keys=True, indent=2) + "\n")
    subj = pd.DataFrame(
        {
            "subject_id": ids,
            "label": labels,
            "site": sites + 1,
            "z_snp": z_snp,
            "z_fnc": z_fnc,
            "z_smri": z_smri,
            "liability": liability,
        }
    )
    # only with the option, so that the default file keeps its bytes
    if n_ancestries > 1:
        subj["ancestry"] = ancestry + 1
    if relative_share > 0:
        subj["family"] = _population.family_ids(n_subjects, pairs)
    if not legacy:
        if interacting:
            subj["z_smri_x"] = latents["z_smri_x"]
            subj["z_fnc_x"] = latents["z_fnc_x"]
            subj["deficit"] = (z_smri > _architecture.DEFICIT_Z).astype(int)
        for name, values in terms.items():
            subj[f"term_{name}"] = values
        subj["term_noise"] = noise
    subj.to_csv(tmp / "truth_subjects.tsv", sep="\t", index=False, float_format="%.6f", lineterminator="\n")

    _write_cohort_toml(tmp, n_sites)

    return SimulatedCohort(
        out_dir=tmp,
        toml_path=tmp / "cohort.toml",
        subject_ids=ids,
        labels=labels,
        genotypes=genotypes,
        snps=snps,
        fnc=fnc,
        nodes=nodes,
        mask=mask,
        affine=affine,
        voxels=voxels,
        truth=truth,
    )


def _streams(seed, subjects_seed):
    """The random streams of a cohort: those that draw the generator, and those that draw its subjects.

    One child stream per component, so changing e.g. the resolution leaves genotypes unchanged. New
    streams are only ever appended: the first children of a SeedSequence do not depend on how many are
    spawned, so earlier cohorts keep their bytes. FNC, sMRI and ancestry streams draw first the
    generator (planted edges, population FNC structure, site effects, group frequencies) and then the
    subjects; with ``subjects_seed`` the subjects' part moves to streams of its own.
    """
    names = ("map", "geno", "pheno", "fnc", "smri", "missing", "ancestry", "family", "site")
    # the harder simulator's: polygenic effects, spread edges, the interactions' SNP and edges, their latents
    names += ("genetic_effects", "imaging_effects", "interaction_effects", "latents")
    rng = dict(zip(names, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(names)))))
    subject_names = ("geno", "pheno", "fnc", "smri", "missing", "ancestry", "family", "latents")
    if subjects_seed is None:
        return rng, {name: rng[name] for name in subject_names}
    # the generator's seed enters too, so that one subjects_seed gives other subjects under another seed
    root = np.random.SeedSequence([subjects_seed, seed, _REPLICATE_WORD])
    return rng, dict(zip(subject_names, (np.random.default_rng(s) for s in root.spawn(len(subject_names)))))


def _site_draws(rng, n_sites, site_effect):
    """The parts of the scanner model that the legacy model lacks: a relative scale of each site's FNC
    matrices and an additive offset of its GM maps (None and zeros with one site or ``site_effect=None``)."""
    if n_sites == 1 or site_effect is None:
        return None, np.zeros(n_sites)
    fnc_scale = 1.0 + site_effect * _fnc.SITE_SCALE_SD * rng.standard_normal(n_sites)
    smri_offset = site_effect * _smri.SITE_OFFSET_SD * rng.standard_normal(n_sites)
    return fnc_scale, smri_offset


def _write_genotypes(tmp, ids, genotypes, sex, labels, snps):
    """``genotypes.bed/.bim/.fam`` (PLINK 1, A1 counted)."""
    import bed_reader

    bed_reader.to_bed(
        tmp / "genotypes.bed",
        genotypes,
        properties={
            "fid": ids,
            "iid": ids,
            "father": np.full(len(ids), "0"),
            "mother": np.full(len(ids), "0"),
            "sex": np.where(sex == "M", 1, 2),
            "pheno": np.where(labels == 1, "2", "1"),
            "chromosome": snps["chrom"].to_numpy(),
            "sid": snps["snp"].to_numpy(),
            "cm_position": np.zeros(len(snps)),
            "bp_position": snps["pos"].to_numpy(),
            "allele_1": snps["a1"].to_numpy(),
            "allele_2": snps["a2"].to_numpy(),
        },
        count_A1=True,
        num_threads=1,
    )


def _write_phenotypes(tmp, ids, labels, age, sex, sites, n_sites):
    """``phenotypes.tsv``: id, diagnosis, age, sex (and site with several)."""
    header = ["subject_id", "diagnosis", "age", "sex"] + (["site"] if n_sites > 1 else [])
    rows = ["\t".join(header)]
    for s in range(len(ids)):
        row = [ids[s], "SZ" if labels[s] else "HC", f"{age[s]:.1f}", sex[s]]
        if n_sites > 1:
            row.append(f"site{sites[s] + 1}")
        rows.append("\t".join(row))
    (tmp / "phenotypes.tsv").write_text("\n".join(rows) + "\n")


def _simulate_smri_into(
    tmp,
    rngs,
    ids,
    resolution,
    z_smri,
    age,
    sites,
    n_sites,
    keep_volumes,
    site_effect,
    site_offset,
    sex_shift,
    *,
    arch=None,
    latents=None,
    labels=None,
):
    """``mask.nii.gz`` and one gray-matter map per subject in ``smri/``, with regions planted. Returns the
    template, affine, mask, regions, voxels and the sites' GM scales. ``rngs`` draws the sites' scales,
    then the subjects' maps (the same generator twice, or two). Outside the legacy model each region has an
    effect and a latent of its own, and its case-control d in the cohort is recorded."""
    rng_smri, rng_subjects = rngs
    tpl, affine = _smri.template(resolution)
    mask = tpl > _smri.MASK_THRESHOLD
    legacy = arch is None or arch.legacy
    if legacy:
        regions = _smri.plant_regions(tpl, affine, mask)
        region_weight = np.zeros(tpl.shape, dtype=np.float32)
        for region in regions:
            region_weight[region.pop("_voxels")] = 1.0
    else:
        regions = _smri.plant_named_regions(tpl, affine, mask, arch.plant_atlas, _region_specs(arch))
        if arch.plant_atlas != _architecture.TABLES_ATLAS:
            overlaps = _smri.atlas_overlap(regions, affine, tpl.shape, _architecture.TABLES_ATLAS)
            for region, overlap in zip(regions, overlaps):
                region["overlap"] = {"atlas": _smri.ATLAS_NAMES[_architecture.TABLES_ATLAS], "regions": overlap}
        grid = np.zeros(tpl.shape, dtype=np.int32)
        for r, region in enumerate(regions):
            grid[region.pop("_voxels")] = r + 1
        region_weight = None
        in_mask = grid[mask]
        n_regions = len(regions)
        counts = np.bincount(in_mask, minlength=n_regions + 1)
        region_means = np.zeros((len(ids), n_regions))
        effects = np.array([region["effect"] for region in regions])
        scores = np.stack([latents[region["latent"]] for region in regions], axis=1)
    deviation = rng_smri.normal(0.0, _smri.SITE_SD, n_sites) if n_sites > 1 else np.zeros(1)
    site_scale = 1.0 + (deviation if site_effect is None else site_effect * deviation)
    (tmp / "mask.nii.gz").write_bytes(_smri.nifti_gz_bytes(mask.astype(np.uint8), affine))
    (tmp / "smri").mkdir()
    voxels = np.empty((len(ids), int(mask.sum())), dtype=np.float32) if keep_volumes else None
    for s in range(len(ids)):
        reduction = None if legacy else np.r_[0.0, effects * scores[s]].astype(np.float32)[grid]
        vol = _smri.subject_volume(
            rng_subjects,
            tpl,
            resolution,
            region_weight,
            z_smri[s],
            age[s],
            site_scale[sites[s]],
            site_offset=site_offset[sites[s]],
            sex_shift=sex_shift[s],
            reduction=reduction,
        )
        (tmp / "smri" / f"{ids[s]}.nii.gz").write_bytes(_smri.nifti_gz_bytes(vol, affine))
        if keep_volumes:
            voxels[s] = vol[mask]
        if not legacy:
            sums = np.bincount(in_mask, weights=vol[mask], minlength=n_regions + 1)
            region_means[s] = sums[1:] / np.maximum(counts[1:], 1)
        del vol
    if not legacy:
        for r, region in enumerate(regions):
            region["cohens_d"] = _cohens_d(region_means[:, r], labels) if region["n_voxels"] else None
    return tpl, affine, mask, regions, voxels, site_scale


def _region_specs(arch):
    """The regions to plant: name in the planting atlas, effect, latent and role."""
    if arch.imaging_effects == "focal":
        specs = [
            {"region": name, "effect": _smri.REGION_EFFECT, "latent": "z_smri", "role": "main"}
            for name in _smri.FOCAL_REGIONS[arch.plant_atlas]
        ]
    else:
        column = 0 if arch.plant_atlas == "aal" else 1
        specs = [
            {"region": row[column], "effect": row[2], "latent": "z_smri", "role": "main"}
            for row in _smri.SPREAD_REGIONS
        ]
    if arch.interactions > 0:
        specs.append(
            {
                "region": _architecture.GXI_REGION[arch.plant_atlas],
                "effect": _architecture.GXI_REGION_EFFECT,
                "latent": "z_smri_x",
                "role": "snp_x_smri",
            }
        )
    return specs


def _cohens_d(values, labels):
    """Cohen's d of ``values``, cases (label 1) minus controls, pooled SD; None when a group is too small."""
    a, b = values[labels == 1], values[labels == 0]
    if len(a) < 2 or len(b) < 2:
        return None
    pooled = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    return round(float((a.mean() - b.mean()) / pooled), 4) if pooled > 0 else None


def _auc(score, labels):
    """Area under the ROC curve of ``score`` for ``labels`` (ties count one half)."""
    from scipy.stats import rankdata

    ranks = rankdata(score)
    n1 = int(labels.sum())
    n0 = len(labels) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((ranks[labels == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _write_cohort_toml(tmp, n_sites):
    """``cohort.toml`` describing the files written beside it."""
    phen = {
        "path": "phenotypes.tsv",
        "id_column": "subject_id",
        "label_column": "diagnosis",
        "positive_label": "SZ",
        "covariates": ["age", "sex"] + (["site"] if n_sites > 1 else []),
    }
    if n_sites > 1:
        phen["site_column"] = "site"
    toml = write_toml(
        {
            "phenotypes": phen,
            "genotypes": {"bfile": "genotypes", "build": "GRCh37"},
            "fnc": {"path": "fnc.npy", "subjects": "fnc_subjects.txt", "nodes": "fnc_nodes.tsv"},
            "smri": {"template": "smri/{subject_id}.nii.gz", "mask": "mask.nii.gz"},
        }
    )
    (tmp / "cohort.toml").write_text(toml)


def _truth(snps, causal, per_sd, regions, edges, labels, weights, null, settings) -> dict:
    """What was planted and how the labels were drawn (``truth.json``)."""
    causal_rows = snps.iloc[causal]
    share, shares = settings["case_share"], settings["ancestry_case_shares"]
    if shares:
        per_group = " / ".join(f"{s:.0%}" for s in shares)
        groups = " / ".join(str(g + 1) for g in range(len(shares)))
        rule = f"label 1 (SZ) for the top {per_group} of the liability within ancestry group {groups}"
        null_rule = (
            f"labels drawn at random ({per_group} cases in ancestry group {groups}), independent of every feature"
        )
    else:
        top = "half" if share == 0.5 else f"{share:.0%}"
        rule = f"label 1 (SZ) for the top {top} of the liability"
        null_rule = f"labels drawn at random ({share:.0%} cases), independent of every feature"
    truth = to_builtin(
        {
            "settings": settings,
            "causal_snps": [
                {
                    "snp": r.snp,
                    "chrom": r.chrom,
                    "pos": int(r.pos),
                    "block": int(r.block),
                    "a1": r.a1,
                    "maf": round(float(r.maf), 6),
                    # Liability change per SD of the A1 dosage (per allele: effect / sd).
                    "effect": round(float(effect), 6),
                    "dosage_sd": round(float(np.sqrt(2 * r.maf * (1 - r.maf))), 6),
                }
                for r, effect in zip(causal_rows.itertuples(), per_sd)
            ],
            "causal_blocks": [
                {
                    "block": int(r.block),
                    "chrom": r.chrom,
                    "start": int(snps.loc[snps["block"] == r.block, "pos"].min()),
                    "end": int(snps.loc[snps["block"] == r.block, "pos"].max()),
                }
                for r in causal_rows.itertuples()
            ],
            "smri_regions": regions,
            "fnc_edges": [{k: v for k, v in e.items() if k not in ("i", "j")} for e in edges],
            "label_model": {
                "liability": "signal_snp*z_snp + signal_fnc*z_fnc + signal_smri*z_smri + N(0, 1)",
                "weights": weights,
                "noise_sd": LIABILITY_NOISE_SD,
                "rule": rule,
                "prevalence": float(labels.mean()),
                "null": null,
                "null_rule": null_rule if null else None,
                "z_snp": "signed sum of standardized causal dosages, standardized over subjects",
                "z_fnc": "standard normal; planted edges shift by direction * effect * z_fnc (Fisher z)",
                "z_smri": "standard normal; planted regions scaled by (1 - effect * z_smri)",
            },
            "nodes_note": NODE_NOTE,
        }
    )
    return truth


def _blocks_map_info(snps) -> dict:
    """The block layout's SNP map, for ``truth.json`` (``architecture.snp_map``)."""
    return {
        "layout": "blocks",
        "model": "LD blocks of geometric size (mean 15 SNPs), 2-8 kb per SNP, scattered along each chromosome; "
        "latent haplotype chain inside a block (lag-1 correlation 0.95-0.985), blocks independent",
        "mean_block_snps": _genotypes.MEAN_BLOCK_SIZE,
        "n_segments": int(snps["block"].iloc[-1]) + 1,
    }


def _per_snp(arch, snps, causal, genetic, coef, total):
    """Each causal SNP's effect per A1 allele and share of the liability variance (expected values)."""
    p = snps["maf"].to_numpy()[causal]
    if arch.genetic_architecture == "oligogenic":
        # expected values (the cohort standardizes z_snp over its own subjects: its sample differs a little)
        per_sd = coef["snp"]["coefficient"] * genetic["sign"] / np.sqrt(len(causal))
        beta = per_sd / np.sqrt(2 * p * (1 - p))
        variance = per_sd**2
    else:
        beta = coef["snp"]["coefficient"] / np.sqrt(arch.budget["snp"]) * genetic["beta"]
        variance = beta**2 * 2 * p * (1 - p)
    return beta, variance / total


def _genetic_truth(arch, snps, causal, genetic, coef, total) -> dict:
    """The genetic architecture (``truth.json`` ``architecture.genetic``)."""
    beta, share = _per_snp(arch, snps, causal, genetic, coef, total)
    out = {
        "architecture": arch.genetic_architecture,
        "n_causal": len(causal),
        "variance_share": round(float(share.sum()), 6),
        "snps": [
            {
                "snp": snps["snp"].iloc[i],
                "role": str(role),
                "maf": round(float(snps["maf"].iloc[i]), 6),
                "beta_per_allele": round(float(b), 6),
                "variance_explained": round(float(v), 8),
            }
            for i, role, b, v in zip(causal, genetic["role"], beta, share)
        ],
    }
    if arch.genetic_architecture == "oligogenic":
        out["model"] = (
            "z_snp: signed sum of the standardized dosages of 5 causal SNPs (MAF >= 0.1, one per LD block), "
            "standardized over the cohort; each SNP's expected share is a fifth of the SNP term's"
        )
    else:
        out.update(
            n_large=int(np.sum(genetic["role"] == "large")),
            n_small=int(np.sum(genetic["role"] == "small")),
            large_share_range=list(_architecture.LARGE_SHARE),
            small_share_range=list(_architecture.SMALL_SHARE),
            model="z_snp = sum_j beta_j (dosage_j - 2 p_j) / sqrt(budget snp), p_j the map's MAF; large SNPs (MAF >= "
            f"{_architecture.MIN_MAF_LARGE}) with shares uniform in large_share_range, small SNPs (MAF >= "
            f"{_architecture.MIN_MAF_SMALL}) log-uniform in small_share_range, both scaled by budget snp / "
            f"{_architecture.REALISTIC_SNP_BUDGET} and the small ones rescaled so that the shares add up to the SNP "
            "budget; one causal SNP per LD segment; beta_j = sign sqrt(share / (2 p (1 - p)))",
        )
    return out


def _imaging_truth(arch) -> dict:
    """How the imaging effects are laid out (``truth.json`` ``architecture.imaging``)."""
    if arch.imaging_effects == "focal":
        return {
            "effects": "focal",
            "smri": f"4 regions, GM x (1 - {_smri.REGION_EFFECT} z_smri)",
            "fnc": f"6 edges, one per domain pair of {list(_fnc.PLANTED_DOMAIN_PAIRS)}, Fisher z +- "
            f"{_fnc.EDGE_EFFECT} z_fnc",
        }
    return {
        "effects": "spread",
        "smri": f"{len(_smri.SPREAD_REGIONS)} regions, GM x (1 - effect z_smri), effects "
        f"{min(r[2] for r in _smri.SPREAD_REGIONS)}-{max(r[2] for r in _smri.SPREAD_REGIONS)} (see smri_regions)",
        "fnc": f"{_fnc.SPREAD_EDGE_SHARE:.0%} of the edges of each domain pair, Fisher z +- effect z_fnc, effects "
        f"uniform in {list(_fnc.SPREAD_EDGE_EFFECT)} (see fnc_edges)",
        "fnc_domain_pairs": [list(pair) for pair in _fnc.SPREAD_DOMAIN_PAIRS],
    }


def _interaction_truth(arch, coef, total, snps, modifier, regions, edges):
    """The cross-modal interactions (``truth.json`` ``architecture.interactions``), None when off."""
    if arch.interactions == 0:
        return None
    region = next(r for r in regions if r["role"] == "snp_x_smri")
    row = snps.iloc[modifier]
    return {
        "strength": arch.interactions,
        "snp_x_smri": {
            "snp": row["snp"],
            "chrom": row["chrom"],
            "pos": int(row["pos"]),
            "a1": row["a1"],
            "maf": round(float(row["maf"]), 6),
            "region": region["region"],
            "latent": "z_smri_x",
            "coefficient": round(coef["snp_x_smri"]["coefficient"], 6),
            "variance_share": round(coef["snp_x_smri"]["variance"] / total, 6),
            "model": "coefficient x dosage(A1) x z_smri_x: the region's GM (reduced by effect x z_smri_x) weighs on "
            "the liability in carriers of A1 only, once per copy; the SNP has no other effect",
        },
        "fnc_given_smri": {
            "edges": [[e["node_i"], e["node_j"]] for e in edges if e.get("role") == "fnc_given_smri"],
            "latent": "z_fnc_x",
            "deficit": f"z_smri > {_architecture.DEFICIT_Z:.4f} (the top third of the structural latent)",
            "coefficient": round(coef["fnc_given_smri"]["coefficient"], 6),
            "variance_share": round(coef["fnc_given_smri"]["variance"] / total, 6),
            "model": "coefficient x 1{deficit} x z_fnc_x: the edges' connectivity (shifted by effect x z_fnc_x in "
            "every subject) weighs on the liability only in subjects with a structural deficit",
        },
    }


def _extend_truth(truth, arch, coef, snps, causal, genetic, modifier, edges, labels, fnc, total):
    """Outside the legacy model: per-SNP shares and roles, the modifier SNP, the edges' case-control d, the
    liability's terms (in place)."""
    beta, share = _per_snp(arch, snps, causal, genetic, coef, total)
    for entry, role, b, v in zip(truth["causal_snps"], genetic["role"], beta, share):
        entry.update(role=str(role), beta_per_allele=round(float(b), 6), variance_explained=round(float(v), 8))
    if modifier is not None:
        r = snps.iloc[modifier]
        truth["causal_snps"].append(
            {
                "snp": r["snp"],
                "chrom": r["chrom"],
                "pos": int(r["pos"]),
                "block": int(r["block"]),
                "a1": r["a1"],
                "maf": round(float(r["maf"]), 6),
                "effect": 0.0,
                "dosage_sd": round(float(np.sqrt(2 * r["maf"] * (1 - r["maf"]))), 6),
                "role": "modifier",
                "beta_per_allele": 0.0,
                "variance_explained": 0.0,
                "interaction": "snp_x_smri (see architecture.interactions)",
            }
        )
        block = snps["block"] == r["block"]
        truth["causal_blocks"].append(
            {
                "block": int(r["block"]),
                "chrom": r["chrom"],
                "start": int(snps.loc[block, "pos"].min()),
                "end": int(snps.loc[block, "pos"].max()),
            }
        )
    for entry, edge in zip(truth["fnc_edges"], edges):
        entry["cohens_d"] = _cohens_d(fnc[:, edge["i"], edge["j"]].astype(float), labels)
    model = truth["label_model"]
    model.update(
        liability=_architecture.formula(arch),
        noise_sd=round(coef["noise"]["coefficient"], 6),
        coefficients={f"c_{k}": round(v["coefficient"], 6) for k, v in coef.items()},
        z_smri="standard normal; planted regions with latent z_smri scaled by (1 - effect * z_smri)",
        z_fnc="standard normal; planted edges with latent z_fnc shift by direction * effect * z_fnc (Fisher z)",
    )
    if arch.genetic_architecture == "polygenic":
        model["z_snp"] = "polygenic score sum_j beta_j (dosage_j - 2 maf_j) / sqrt(budget snp), expected variance 1"
    if arch.interactions > 0:
        model["z_smri_x"] = "standard normal; the snp_x_smri region scaled by (1 - effect * z_smri_x)"
        model["z_fnc_x"] = "standard normal; the fnc_given_smri edges shift by direction * effect * z_fnc_x"


def _population_truth(freq, ancestry, labels, pairs, n_ancestries, fst, relative_share, layout="blocks") -> dict:
    """Ancestry groups and relatedness (``truth.json`` ``population``)."""
    groups = range(n_ancestries)
    structured = n_ancestries > 1
    if structured:
        # Hudson's F_ST of the groups' drawn frequencies (no sampling noise), mean over pairs of groups
        fst_drawn = np.mean([_population.hudson_fst(freq[g], freq[h]) for g in groups for h in groups if g < h])
    return {
        "ancestry": {
            "n_groups": n_ancestries,
            "model": "Balding-Nichols: each group's A1 frequency ~ Beta(p (1 - F) / F, (1 - p) (1 - F) / F) "
            "around the map's maf p; haplotypes are the LD chains thresholded at the group's frequency"
            if structured
            else "one population: haplotypes thresholded at the map's maf",
            "fst": fst if structured else None,
            "fst_populations": round(float(fst_drawn), 6) if structured else None,
            "group_sizes": [int(np.sum(ancestry == g)) for g in groups],
            "case_shares": [round(float(labels[ancestry == g].mean()), 6) for g in groups],
        },
        "relatedness": {
            "relative_share": relative_share,
            "n_sibling_pairs": len(pairs),
            "model": "sibling pairs: the two siblings' four haplotypes serve as their parents' (one ancestry "
            "group); each sibling takes one haplotype of each parent, chosen afresh in every LD block "
            "(recombination between blocks); expected kinship 0.25. Not marked in the .fam file."
            if layout == "blocks"
            else "sibling pairs: the two siblings' four haplotypes serve as their parents' (one ancestry group); "
            "each sibling takes one haplotype of each parent, chosen afresh in every "
            f"{_genotypes.ARRAY_MEIOSIS_WINDOW_BP // 1_000_000} Mb window of a chromosome (a crossover with "
            "probability 1/2 at each window edge); expected kinship 0.25. Not marked in the .fam file.",
        },
    }


def _site_truth(n_sites, site_effect, fnc_offset, fnc_scale, smri_scale, smri_offset) -> dict:
    """The scanner model and every site's drawn offsets and scales (``truth.json`` ``site_effects``)."""
    size = 1.0 if site_effect is None else site_effect
    several = n_sites > 1
    legacy = site_effect is None
    iu = np.triu_indices(fnc_offset.shape[1], 1)
    if several:
        model = (
            "FNC: each subject's matrix x fnc_scale[site] + fnc_offset[site] (one offset per edge); sMRI: each GM "
            "map x smri_scale[site] + smri_offset[site] inside the head, before smooth noise and clipping to [0, 1]"
        )
        if legacy:
            model += " (site_effect None: the earlier model, without fnc_scale and smri_offset)"
    else:
        model = "one site: no scanner effects"
    return {
        "site_effect": site_effect,
        "model": model,
        "fnc_offset_sd": _fnc.SITE_SD * size if several else 0.0,
        "fnc_scale_sd": _fnc.SITE_SCALE_SD * size if several and not legacy else 0.0,
        "smri_scale_sd": _smri.SITE_SD * size if several else 0.0,
        "smri_offset_sd": _smri.SITE_OFFSET_SD * size if several and not legacy else 0.0,
        "fnc_offset_layout": "upper triangle of the node x node matrix, row by row (numpy.triu_indices(K, 1))",
        "sites": [
            {
                "site": f"site{k + 1}",
                "fnc_scale": round(float(1.0 if fnc_scale is None else fnc_scale[k]), 6),
                "fnc_offset_mean": round(float(fnc_offset[k][iu].mean()), 6),
                "fnc_offset": np.round(fnc_offset[k][iu], 6),
                "smri_scale": round(float(smri_scale[k]), 6),
                "smri_offset": round(float(smri_offset[k]), 6),
            }
            for k in range(n_sites if several else 0)
        ],
    }


def _covariate_truth(sex_effect) -> dict:
    """How age and sex act on imaging (``truth.json`` ``covariate_effects``); neither enters the liability."""
    return {
        "age": {"smri": f"GM map scaled by 1 + ({_smri.AGE_SLOPE}) * (age - 35)", "fnc": None},
        "sex": {
            "sex_effect": sex_effect,
            "code": SEX_CODE,
            "smri": f"GM map scaled by 1 + sex_effect * {_smri.GLOBAL_SD} * code ({_smri.GLOBAL_SD}: SD of a "
            "subject's global GM scale)",
            "fnc": f"every edge + sex_effect * {_fnc.EDGE_SD} * code (Fisher z; {_fnc.EDGE_SD}: typical SD of an "
            "edge across subjects)",
        },
    }
