"""Assemble a simulated cohort, write it in the DESIGN.md §3 formats, and record the planted truth."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from migtrans._nodes import NODE_NOTE, standin_nodes
from migtrans.exceptions import ParameterError
from migtrans.simulate import _fnc, _genotypes, _labels, _smri
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
    overwrite=False,
    keep_volumes=True,
):
    """Simulate a cohort with planted causal SNPs, brain regions and connections, and write it to disk.

    Each subject gets three standardized latent scores: ``z_snp`` (a sum of causal SNP dosages),
    ``z_fnc`` and ``z_smri`` (independent standard normals carried by planted FNC edges and
    gray-matter regions). The liability is ``sum(signal[m] * z_m) + N(0, 1)`` and the top half of it
    is labelled "SZ". The files follow DESIGN.md §3; ``truth.json`` records what was planted.

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
        and a ``site`` column is written.
    signal : dict, optional
        Weight of each modality's latent score in the liability, keys among "snp", "fnc", "smri"
        (floats >= 0, default 1.0 each).
    null : bool, default=False
        If True, labels are drawn at random, independent of every feature.
    case_share : float, default=0.5
        Share of subjects labelled "SZ" (the top of the liability, or of the random draw with ``null``), in
        [0.1, 0.9]: real cohorts are seldom balanced.
    overwrite : bool, default=False
        Replace ``out_dir`` when it exists and is not empty.
    keep_volumes : bool, default=True
        Keep every subject's masked voxels in memory (``voxels``). With False the volumes are
        written one at a time and nothing big is held.

    Returns
    -------
    SimulatedCohort

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "cohort"
    >>> sim = simulate_cohort(out, n_subjects=40, n_snps=300, resolution=8, seed=0)
    >>> sim.genotypes.shape, int(sim.labels.sum())
    ((40, 300), 20)
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
            keep_volumes=bool(keep_volumes),
        )
        mark_output(tmp, "cohort")
        move_into_place(tmp, out_dir)
    except BaseException:
        discard_staging(tmp)
        raise
    cohort.out_dir = out_dir
    cohort.toml_path = out_dir / "cohort.toml"
    return cohort


def _simulate_into(tmp, *, n_subjects, n_snps, seed, resolution, n_sites, weights, null, case_share, keep_volumes):
    # One child stream per component, so changing e.g. the resolution leaves genotypes unchanged.
    rng_map, rng_geno, rng_pheno, rng_fnc, rng_smri, rng_missing = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)
    )
    ids = np.array([f"sub-{i:04d}" for i in range(1, n_subjects + 1)])

    # Genotypes and the genetic score.
    snps, rho = _genotypes.simulate_snp_map(rng_map, n_snps)
    dosages = _genotypes.simulate_dosages(rng_geno, snps["maf"].to_numpy(), rho, n_subjects)
    causal = _labels.choose_causal_snps(rng_map, snps, N_CAUSAL_SNPS)
    signs = rng_map.choice([-1.0, 1.0], size=len(causal))
    z_snp, snp_scale = _labels.snp_score(dosages[:, causal], signs)

    # Demographics, the other scores, liability and labels.
    age = np.round(np.clip(rng_pheno.normal(35.0, 11.0, n_subjects), 18.0, 65.0), 1)
    sex = np.where(rng_pheno.random(n_subjects) < 0.55, "M", "F")
    sites = rng_pheno.permutation(np.arange(n_subjects) % n_sites)
    z_fnc = _labels.standardize(rng_pheno.standard_normal(n_subjects))
    z_smri = _labels.standardize(rng_pheno.standard_normal(n_subjects))
    liability = (
        weights["snp"] * z_snp
        + weights["fnc"] * z_fnc
        + weights["smri"] * z_smri
        + rng_pheno.normal(0.0, LIABILITY_NOISE_SD, n_subjects)
    )
    null_draw = rng_pheno.standard_normal(n_subjects)
    labels = _labels.balanced_labels(null_draw if null else liability, case_share)

    # Missing calls, never on causal SNPs so their effect stays exact.
    genotypes = dosages.astype(np.float32)
    del dosages
    missing = rng_missing.random(genotypes.shape, dtype=np.float32) < _genotypes.MISSING_RATE
    missing[:, causal] = False
    genotypes[missing] = np.nan
    del missing

    _write_genotypes(tmp, ids, genotypes, sex, labels, snps)

    _write_phenotypes(tmp, ids, labels, age, sex, sites, n_sites)

    # FNC.
    nodes = standin_nodes()
    edges = _fnc.plant_edges(rng_fnc, nodes)
    fnc = _fnc.simulate_fnc(rng_fnc, nodes, z_fnc, edges, sites, n_sites)
    np.save(tmp / "fnc.npy", fnc)
    (tmp / "fnc_subjects.txt").write_text("\n".join(ids) + "\n")
    nodes.to_csv(tmp / "fnc_nodes.tsv", sep="\t", index=False, float_format="%.2f", lineterminator="\n")

    tpl, affine, mask, regions, voxels = _simulate_smri_into(
        tmp, rng_smri, ids, resolution, z_smri, age, sites, n_sites, keep_volumes
    )

    truth = _truth(
        snps,
        causal,
        signs,
        snp_scale,
        regions,
        edges,
        labels,
        weights,
        null,
        dict(
            n_subjects=n_subjects,
            n_snps=n_snps,
            seed=seed,
            resolution=resolution,
            n_sites=n_sites,
            signal=weights,
            null=null,
            case_share=case_share,
            keep_volumes=keep_volumes,
            package_version=_package_version(),
        ),
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


def _simulate_smri_into(tmp, rng_smri, ids, resolution, z_smri, age, sites, n_sites, keep_volumes):
    """``mask.nii.gz`` and one gray-matter map per subject in ``smri/``, with regions planted."""
    tpl, affine = _smri.template(resolution)
    mask = tpl > _smri.MASK_THRESHOLD
    regions = _smri.plant_regions(tpl, affine, mask)
    region_weight = np.zeros(tpl.shape, dtype=np.float32)
    for region in regions:
        region_weight[region.pop("_voxels")] = 1.0
    site_scale = 1.0 + rng_smri.normal(0.0, _smri.SITE_SD, n_sites) if n_sites > 1 else np.ones(1)
    (tmp / "mask.nii.gz").write_bytes(_smri.nifti_gz_bytes(mask.astype(np.uint8), affine))
    (tmp / "smri").mkdir()
    voxels = np.empty((len(ids), int(mask.sum())), dtype=np.float32) if keep_volumes else None
    for s in range(len(ids)):
        vol = _smri.subject_volume(rng_smri, tpl, resolution, region_weight, z_smri[s], age[s], site_scale[sites[s]])
        (tmp / "smri" / f"{ids[s]}.nii.gz").write_bytes(_smri.nifti_gz_bytes(vol, affine))
        if keep_volumes:
            voxels[s] = vol[mask]
        del vol
    return tpl, affine, mask, regions, voxels


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


def _truth(snps, causal, signs, snp_scale, regions, edges, labels, weights, null, settings) -> dict:
    """What was planted and how the labels were drawn (``truth.json``)."""
    causal_rows = snps.iloc[causal]
    share = settings["case_share"]
    top = "half" if share == 0.5 else f"{share:.0%}"
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
                    "effect": round(float(weights["snp"] * sign * snp_scale), 6),
                    "dosage_sd": round(float(np.sqrt(2 * r.maf * (1 - r.maf))), 6),
                }
                for r, sign in zip(causal_rows.itertuples(), signs)
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
                "rule": f"label 1 (SZ) for the top {top} of the liability",
                "prevalence": float(labels.mean()),
                "null": null,
                "null_rule": f"labels drawn at random ({share:.0%} cases), independent of every feature"
                if null
                else None,
                "z_snp": "signed sum of standardized causal dosages, standardized over subjects",
                "z_fnc": "standard normal; planted edges shift by direction * effect * z_fnc (Fisher z)",
                "z_smri": "standard normal; planted regions scaled by (1 - effect * z_smri)",
            },
            "nodes_note": NODE_NOTE,
        }
    )
    return truth
