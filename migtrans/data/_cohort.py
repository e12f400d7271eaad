"""`load_cohort`: every modality of a cohort, matched by subject id and validated."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import CohortError
from ..genetics import SUBJECT_FILTERS
from ._config import CohortSpec, read_cohort_spec
from ._files import subject_path
from ._fnc import fnc_sources, read_fnc, read_nodes
from ._genotypes import open_genotypes
from ._phenotypes import check_covariates, read_phenotypes, read_table
from ._smri import auto_mask, cache_voxels, check_grid, read_mask, smri_available, smri_path
from ._tiv import read_cat12_tiv, tiv_from_column


class CohortWarning(UserWarning):
    """A subject was dropped or something in the inputs deserves a look."""


@dataclass
class Cohort:
    """A loaded cohort: aligned arrays for every modality, one row per subject.

    Attributes
    ----------
    subject_ids : ndarray of str, shape (n,)
    labels : ndarray of int8, shape (n,)
        1 for the positive label (e.g. SZ), 0 for the other (e.g. HC).
    label_names : tuple of str
        ``(negative, positive)`` label values as written in the phenotype file.
    covariates : DataFrame
        The covariate (and site) columns, indexed by subject id; numeric columns are float.
    site : ndarray of str or None
    genotypes : ndarray of float32, shape (n, m) or None
        Allele-1 counts (PLINK convention, 0..2), NaN for missing calls.
    snps : DataFrame or None
        snp, chrom, cm, pos, a1, a2 — one row per genotype column.
    fnc : ndarray of float32, shape (n, K, K) or None
        Symmetric, diagonal 0.
    nodes : DataFrame or None
        name, domain, x, y, z — one row per FNC node.
    voxels : memmap of float32, shape (n, V) or None
        Masked gray-matter values, read-only, backed by a cache file.
    mask : ndarray of bool (3D) or None
    affine : ndarray (4, 4) or None
    dropped : dict
        Subject id -> why it was left out (a missing modality, or the genotype QC filter it failed).
    qc : migtrans.genetics.QCResult or None
        What the genotype QC (the cohort file's ``[qc]`` thresholds) removed, before anything else saw the
        genotypes; None when switched off or without genotypes.
    qc_notes : list of str
        Filters the QC could not apply, and why (relatedness with too few independent SNPs).
    pruned_snps : ndarray of bool, shape (m,) or None
        Common SNPs (MAF >= 5%) in approximate linkage equilibrium (``--indep-pairwise 50 5 0.2``): the SNPs
        of the genetic principal components and of lambda_GC.
    tiv : ndarray of float, shape (n,) or None
        Total intracranial volume (cm³) from ``[smri] tiv_xml`` (CAT12 reports) or ``tiv_column``: an sMRI-only
        covariate of the fold adjustment.
    pcs : DataFrame or None
        Genetic principal components ``PC1..PCk``, indexed by subject id (label-free, from every subject's
        pruned genotypes); ``k`` is ``genotypes.pcs`` capped at one per 20 subjects.
    """

    spec: CohortSpec
    subject_ids: np.ndarray
    labels: np.ndarray
    label_names: tuple
    covariates: pd.DataFrame
    site: np.ndarray | None = None
    genotypes: np.ndarray | None = None
    snps: pd.DataFrame | None = None
    fnc: np.ndarray | None = None
    nodes: pd.DataFrame | None = None
    voxels: np.ndarray | None = None
    mask: np.ndarray | None = None
    affine: np.ndarray | None = None
    dropped: dict = field(default_factory=dict)
    qc: object = None
    qc_notes: list = field(default_factory=list)
    pruned_snps: np.ndarray | None = None
    pcs: pd.DataFrame | None = None
    tiv: np.ndarray | None = None
    genetic_pcs: object = None  # migtrans.genetics.GeneticPCs behind ``pcs`` (loadings, to project new subjects)

    @property
    def n_subjects(self) -> int:
        return len(self.subject_ids)

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.spec.modalities

    def input_files(self) -> list[Path]:
        """Every file the cohort was read from (for checksums in a run manifest)."""
        spec, files = self.spec, [self.spec.toml_path, self.spec.phenotypes.path]
        if spec.genotypes:
            files += spec.genotypes.files()
        if spec.fnc:
            files.append(spec.fnc.nodes)
            if spec.fnc.path:
                files += [spec.fnc.path] + ([spec.fnc.subjects] if spec.fnc.subjects else [])
            else:
                files += [subject_path(spec.fnc.template, s) for s in self.subject_ids]
        if spec.smri:
            files += [smri_path(spec.smri, s) for s in self.subject_ids]
            if spec.smri.tiv_xml:
                files += [subject_path(spec.smri.tiv_xml, s) for s in self.subject_ids]
            if spec.smri.mask:
                files.append(spec.smri.mask)
        return files

    def summary(self) -> str:
        """A few human-readable lines describing the cohort."""
        n_pos, n_neg = int((self.labels == 1).sum()), int((self.labels == 0).sum())
        neg, pos = self.label_names
        unknown = self.n_subjects - n_pos - n_neg
        lines = [
            f"cohort {self.spec.name!r} ({self.spec.toml_path})",
            f"  subjects: {self.n_subjects} ({n_pos} {pos}, {n_neg} {neg}"
            + (f", {unknown} without a label)" if unknown else ")")
            + (f", {len(self.dropped)} dropped" if self.dropped else ""),
        ]
        if self.site is not None:
            sites, counts = np.unique(self.site, return_counts=True)
            lines.append("  sites: " + ", ".join(f"{s} ({c})" for s, c in zip(sites, counts)))
        if list(self.covariates.columns):
            lines.append(f"  covariates: {', '.join(self.covariates.columns)}")
        if self.genotypes is not None:
            missing = float(np.isnan(self.genotypes).mean())
            n_chrom = self.snps["chrom"].nunique()
            lines.append(
                f"  genotypes: {self.genotypes.shape[1]} SNPs on {n_chrom} chromosomes "
                f"({self.spec.genotypes.build}), {missing:.3%} missing calls"
            )
            if self.qc is not None:
                counts = self.qc.summary()
                removed = {
                    k: v for k, v in counts.items() if v and k not in ("snps_kept", "subjects_kept", "related_pairs")
                }
                lines.append(
                    "  genotype QC: "
                    + (
                        ", ".join(
                            f"{v} {'subject' if k in SUBJECT_FILTERS else 'SNP'}{'s' if v != 1 else ''} removed by {k}"
                            for k, v in removed.items()
                        )
                        if removed
                        else "nothing removed"
                    )
                    + (f"; {counts['related_pairs']} related pair(s)" if counts["related_pairs"] else "")
                )
                lines += [f"  genotype QC: {note}" for note in self.qc_notes]
            else:
                lines.append("  genotype QC: off ([qc] enabled = false)")
            pcs = 0 if self.pcs is None else self.pcs.shape[1]
            pruned = 0 if self.pruned_snps is None else int(self.pruned_snps.sum())
            lines.append(f"  ancestry: {pcs} genetic principal components from {pruned} LD-pruned common SNPs")
        if self.fnc is not None:
            domains = self.nodes["domain"].value_counts(sort=False)
            lines.append(
                f"  fnc: {self.fnc.shape[1]} nodes in {len(domains)} domains ("
                + ", ".join(f"{d} {c}" for d, c in domains.items())
                + ")"
            )
        if self.voxels is not None:
            zooms = np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))
            lines.append(
                f"  smri: grid {self.mask.shape} at {'x'.join(f'{z:g}' for z in zooms)} mm, "
                f"{self.voxels.shape[1]} voxels in mask"
            )
        return "\n".join(lines)


def _match(universe, sources, strict, toml_path):
    """Keep subjects present in every source; say who was dropped and why."""
    dropped = {}
    for modality, (ids, where) in sources.items():
        have = set(ids)
        for subject in universe:
            if subject not in have and subject not in dropped:
                if strict:
                    raise CohortError(f"subject has no {modality} data (strict mode)", file=where, subject=subject)
                dropped[subject] = f"no {modality} data"
    kept = [s for s in universe if s not in dropped]
    if dropped:
        names = ", ".join(list(dropped)[:10]) + (" ..." if len(dropped) > 10 else "")
        warnings.warn(
            f"{toml_path}: {len(dropped)} subject(s) dropped for missing a modality: {names}",
            CohortWarning,
            stacklevel=3,
        )
    return kept, dropped


def load_cohort(path, *, strict=None, cache_dir=None, smri_mask=None, qc="file", labels_required=True) -> Cohort:
    """Load and validate a cohort described by a TOML file (DESIGN §3).

    Everything is checked before anything is returned; any problem raises a
    `CohortError` naming the file, the subject or column, and what is wrong.

    Parameters
    ----------
    path : str or path-like
        The cohort TOML file.
    strict : bool, optional
        Make a subject missing from a modality an error instead of a warning.
        Defaults to the file's ``cohort.strict`` (false).
    cache_dir : str or path-like, optional
        Where the memory-mapped sMRI voxel cache lives (default
        ``$MIGTRANS_CACHE_DIR`` or a folder in the system temp dir).
    smri_mask : ndarray of bool (3D), optional
        Read the voxels inside this mask instead of the cohort's own (``migtrans predict`` reads a new cohort
        inside the trained run's mask); its shape must be the cohort's grid.
    qc : migtrans.genetics.QCThresholds or None, optional
        Genotype QC thresholds to use instead of the cohort file's ``[qc]`` (None: no QC).
    labels_required : bool, default=True
        False for a cohort to predict: subjects may lack a label (coded -1) and one class is enough. With
        labels missing, the genotype QC tests Hardy-Weinberg equilibrium in every subject (as PLINK does
        without a phenotype) and skips differential missingness, and covariates are not checked against
        the labels.

    Returns
    -------
    Cohort

    Examples
    --------
    >>> from migtrans.simulate import simulate_cohort
    >>> sim = simulate_cohort(tmp_path / "c", n_subjects=40, n_snps=200, seed=0, resolution=8)  # doctest: +SKIP
    >>> cohort = load_cohort(sim.toml_path)  # doctest: +SKIP
    >>> cohort.genotypes.shape  # doctest: +SKIP
    (40, 200)
    """
    spec = read_cohort_spec(path)
    if not (isinstance(qc, str) and qc == "file"):
        from dataclasses import replace

        spec = replace(spec, qc=qc if spec.genotypes else None)
    strict = spec.strict if strict is None else bool(strict)
    covariates, labels, label_names = read_phenotypes(spec.phenotypes, labels_required=labels_required)
    universe = list(covariates.index)

    sources = {}
    if spec.genotypes:
        genotype_reader = open_genotypes(spec.genotypes)
        sources["genotype"] = (genotype_reader.subject_ids, genotype_reader.ids_file)
    if spec.fnc:
        nodes = read_nodes(spec.fnc.nodes)
        fnc_ids, fnc_handle = fnc_sources(spec.fnc, universe)
        sources["FNC"] = (fnc_ids, spec.fnc.subjects or spec.fnc.template)
    if spec.smri:
        sources["sMRI"] = (smri_available(spec.smri, universe), spec.smri.template)

    subjects, dropped = _match(universe, sources, strict, spec.toml_path)
    if not subjects:
        raise CohortError("no subject has every modality", file=spec.toml_path)
    labels = labels.loc[subjects].to_numpy(np.int8)
    if labels_required and labels.min() == labels.max():
        raise CohortError(
            f"after matching subjects across modalities only one class is left ({label_names[labels[0]]!r})",
            file=spec.toml_path,
        )

    if spec.genotypes:
        # genotype QC comes first: subjects it removes are not read from any other modality
        row = {s: i for i, s in enumerate(genotype_reader.subject_ids)}
        rows = np.array([row[s] for s in subjects], dtype=np.int64)
        snps, genotypes = genotype_reader.read(rows)
        snps = snps.reset_index(drop=True)
        qc, qc_notes = None, []
        if spec.qc is not None:
            qc, qc_notes = _genotype_qc(genotypes, labels, snps, subjects, spec)
            for removal in qc.table.itertuples():
                if removal.level == "subject":
                    dropped[removal.id] = f"genotype QC: {removal.filter}"
            if not qc.keep_snps.all():
                snps = snps[qc.keep_snps].reset_index(drop=True)
            genotypes = (
                genotypes[qc.keep_subjects][:, qc.keep_snps] if not qc.keep_snps.all() else genotypes[qc.keep_subjects]
            )
            subjects = [s for s, keep in zip(subjects, qc.keep_subjects) if keep]
            labels = labels[qc.keep_subjects]
            if len(snps) == 0:
                raise CohortError("genotype QC removed every SNP (see the [qc] thresholds)", file=spec.toml_path)
            if len(subjects) == 0 or (labels_required and labels.min() == labels.max()):
                raise CohortError("genotype QC left fewer than two classes of subjects", file=spec.toml_path)

    cohort = Cohort(
        spec=spec,
        subject_ids=np.asarray(subjects, dtype=str),
        labels=labels,
        label_names=label_names,
        covariates=covariates.loc[subjects, [c for c in covariates.columns if c in spec.phenotypes.covariates]],
        site=(
            covariates.loc[subjects, spec.phenotypes.site_column].to_numpy(str) if spec.phenotypes.site_column else None
        ),
        dropped=dropped,
    )
    for note in (
        check_covariates(
            cohort.covariates,
            cohort.site,
            labels,
            label_names,
            file=spec.phenotypes.path,
            site_column=spec.phenotypes.site_column,
        )
        if (labels >= 0).all()
        else ()
    ):
        warnings.warn(note, CohortWarning, stacklevel=2)
    if spec.fnc:
        cohort.nodes = nodes
        cohort.fnc = read_fnc(spec.fnc, fnc_handle, subjects, len(nodes))
    if spec.smri:
        shape, affine = check_grid(spec.smri, subjects)
        if smri_mask is not None:
            mask = np.asarray(smri_mask, dtype=bool)
            if mask.shape != tuple(shape):
                raise CohortError(
                    f"sMRI grid {tuple(shape)} differs from the grid the mask was made on {mask.shape} (a run "
                    "trained on another grid?); resample the images to it",
                    file=spec.toml_path,
                )
        elif spec.smri.mask:
            mask = read_mask(spec.smri, shape, affine)
        else:
            mask = auto_mask(spec.smri, subjects, shape)
        cohort.mask, cohort.affine = mask, affine
        cohort.voxels = cache_voxels(spec.smri, subjects, mask, cache_dir)
        if spec.smri.tiv_xml:
            cohort.tiv = read_cat12_tiv(spec.smri.tiv_xml, subjects)
        elif spec.smri.tiv_column:
            # any column of the phenotype table, not only the listed covariates
            table = read_table(spec.phenotypes.path)
            table.index = table[spec.phenotypes.id_column].str.strip()
            cohort.tiv = tiv_from_column(table, spec.smri.tiv_column, subjects, spec.phenotypes.path)
    if spec.genotypes:
        cohort.snps, cohort.genotypes, cohort.qc, cohort.qc_notes = snps, genotypes, qc, qc_notes
        cohort.pruned_snps, cohort.genetic_pcs = _ancestry(genotypes, snps, spec)
        if cohort.genetic_pcs is not None:
            cohort.pcs = cohort.genetic_pcs.as_frame(cohort.subject_ids)
    return cohort


# heterozygosity F and KING-robust kinship need many independent markers: below this their sampling noise
# spreads unrelated, uncontaminated subjects past the cutoffs
_MIN_INDEPENDENT_SNPS = 1000
SUBJECTS_PER_PC = 20


def _genotype_qc(genotypes, labels, snps, subjects, spec):
    from dataclasses import replace

    from ..genetics import genotype_qc, ld_prune

    thresholds, notes = spec.qc, []
    if (labels < 0).any():  # a cohort to predict, not all labelled: PLINK's behaviour without a phenotype
        notes.append(
            "some subjects have no label: Hardy-Weinberg equilibrium tested in every subject, differential "
            "missingness not tested"
        )
        thresholds = replace(thresholds, missing_diff=None)
        labels = np.zeros_like(labels)
    independent = ld_prune(genotypes, snps)
    if (thresholds.kinship is not None or thresholds.het_sd is not None) and independent.sum() < _MIN_INDEPENDENT_SNPS:
        # measured on the simulator's 600 x 5,000 SNPs (444 pruned): unrelated pairs' KING estimates had SD 0.05
        # (1,099 pairs passed the second-degree cutoff), and F's sampling SD of 0.064 put 3 subjects beyond 3 SD
        notes.append(
            f"heterozygosity and relatedness not checked: only {int(independent.sum())} LD-pruned common SNPs, "
            f"and F and KING-robust kinship need at least {_MIN_INDEPENDENT_SNPS} to tell outliers and relatives "
            "from sampling noise"
        )
        thresholds = replace(thresholds, kinship=None, het_sd=None)
    qc = genotype_qc(
        genotypes, labels, snps["snp"].to_numpy(), np.asarray(subjects), thresholds, independent=independent
    )
    # subjects leaving the analysis are said at once, as for a missing modality; SNPs go to the summary and qc.csv
    subjects_out = qc.table[qc.table["level"] == "subject"]
    if len(subjects_out):
        warnings.warn(
            f"{spec.toml_path}: genotype QC removed {len(subjects_out)} subject(s): "
            + ", ".join(f"{r.id} ({r.filter})" for r in subjects_out.head(10).itertuples())
            + (" ..." if len(subjects_out) > 10 else ""),
            CohortWarning,
            stacklevel=4,
        )
    return qc, notes


def _ancestry(genotypes, snps, spec):
    """LD-pruned common SNPs and the genetic principal components (None when asked for none, or when the
    cohort is too small for one)."""
    from ..genetics import genetic_pcs, ld_prune

    pruned = ld_prune(genotypes, snps)
    k = min(spec.genotypes.pcs, len(genotypes) // SUBJECTS_PER_PC, max(int(pruned.sum()) - 1, 0))
    if k < 1:
        return pruned, None
    return pruned, genetic_pcs(genotypes, k, snp_mask=pruned)
