"""The ranked result tables of a run (DESIGN §6): snps.csv, loci.csv, regions.csv, connections.csv,
nodes.csv, modalities.csv — permutation-tested held-out attributions plus the classical association."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from migtrans.atlases import load_atlas, resample_atlas
from migtrans.data import covariate_matrix
from migtrans.exceptions import ParameterError

from ._annotation import gene_table, locus_genes, nearest_genes
from ._association import (
    ASSOCIATION_COLUMNS,
    association_covariates,
    inflation_interval,
    logistic_association,
    trend_permutation_test,
)
from ._folder import ExplanationFolder
from ._permutation import bh_fdr, per_fold_test, permutation_test, retraining_p, welch_statistic

# How the tables aggregate and rank, as recorded in the settings (and read back by the Methods text).
REGION_ATTRIBUTION = "sum over its voxels"
RANKING = "contrast (mean attribution of cases minus controls within strata), largest first; ties by p_perm"
STATISTIC = "Welch-type contrast within strata (difference of means over its unpooled SE), cases - controls"
#: the attribution families tested
FAMILIES = ("snps", "loci", "connections", "nodes", "regions")


def _ranked(table: pd.DataFrame) -> pd.DataFrame:
    """Rank 1 = largest contrast (the most log-odds separating cases from controls), ties by smaller p_perm;
    untestable rows (NaN p) last."""
    testable = np.isfinite(table["p_perm"].to_numpy())
    order = np.lexsort(
        (
            np.nan_to_num(table["p_perm"].to_numpy(), nan=np.inf),
            -np.nan_to_num(table["contrast"].to_numpy(), nan=-np.inf),
            ~testable,
        )
    )
    table = table.iloc[order].reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table


class FamilyTest:
    """How the attribution tables get their p-values: one call per family of features.

    Three nulls, each a valid test of its own hypothesis (`choose_null` picks one):

    - ``"explanation_set"``: labels of the explanation set permuted within site, the fold models fixed.
      Exact: no model learned from those labels.
    - ``"per_fold"``: each fold's held-out subjects permuted within site with that fold's model fixed (exact
      per fold), the K fold p-values combined by Bonferroni (``K x min_k p_k``, valid under any dependence).
    - ``"retraining"``: the observed statistic against the same statistic from ``B_r`` null runs, each the
      whole pipeline trained, explained and contrasted on labels permuted within fold x site. Tests the
      global null that the labels are exchangeable with the data: does the model rely on the feature more
      than a model trained on random labels would.

    Every family's ``stat`` is the stratified Welch statistic of the explained subjects within fold x site
    (`welch_statistic`), whatever the null.
    """

    def __init__(self, scheme, labels, folds, site, *, n_permutations=1000, random_state=0, null_stats=None):
        self.scheme, self.labels, self.folds, self.site = scheme, np.asarray(labels), np.asarray(folds), site
        self.n_permutations, self.random_state, self.null_stats = n_permutations, random_state, null_stats
        self.strata = self.folds * 10_000 + site

    @classmethod
    def of(cls, oof, attributions, scheme=None, **options) -> "FamilyTest":
        """The test of a run's explained subjects: their labels, the fold that explained each (0 for an
        explanation set) and their site."""
        subjects = attributions.subjects
        site = site_codes(oof.cohort)[oof.rows]
        return cls(scheme, subjects["label"].to_numpy(), subjects["fold"].to_numpy(), site, **options)

    def statistics(self, matrices: dict) -> dict:
        """The Welch statistic of every feature of every family (what a retraining null run keeps)."""
        return {family: welch_statistic(X, self.labels, self.strata)[0] for family, X in matrices.items()}

    def __call__(self, family, X) -> pd.DataFrame:
        X = np.asarray(X)
        columns = {"attribution": X.mean(axis=0, dtype=np.float64)}
        # one seed for every family: all families see the same label permutations
        options = dict(n_permutations=self.n_permutations, random_state=self.random_state)
        if self.scheme == "retraining":
            stat, contrast = welch_statistic(X, self.labels, self.strata)
            p, p_fwer = retraining_p(stat, self.null_stats[family])
            stats = {"contrast": contrast, "stat": stat, "p_perm": p, "p_fwer": p_fwer, "q_fdr": bh_fdr(p)}
            return pd.DataFrame({**columns, **stats})
        if self.scheme == "per_fold":
            res = per_fold_test(X, self.labels, self.folds, strata=self.site, **options)
        else:
            res = permutation_test(X, self.labels, strata=self.strata, **options)
        return pd.DataFrame({**columns, **res.table()})


def site_codes(cohort) -> np.ndarray:
    """Integer site of every cohort row (all 0 without a site column)."""
    return np.zeros(cohort.n_subjects, dtype=int) if cohort.site is None else pd.factorize(cohort.site)[0]


def feature_matrices(oof, attributions, atlas="aal") -> dict:
    """Per-subject attributions of every tested family, columns in the order of its table before ranking.

    ``snps`` (n, m); ``loci`` the sum of their SNPs' (IG is additive), in the run's locus order;
    ``connections`` the upper-triangle edges; ``nodes`` the sum over each node's edges; ``regions`` the
    sum over each atlas region's voxels, in `atlas_regions_in_mask` order.
    """
    out = {}
    if attributions.snp is not None:
        X = np.asarray(attributions.snp)
        out["snps"] = X
        loci = oof.run.train.loci(oof.cohort)
        out["loci"] = np.column_stack([X[:, cols].sum(axis=1, dtype=np.float64) for cols in loci["columns"]])
    if attributions.fnc is not None:
        out["connections"] = attributions.edges()
        out["nodes"] = np.asarray(attributions.fnc).sum(axis=2, dtype=np.float64)
    if attributions.smri is not None:
        voxel_label, names = atlas_regions_in_mask(atlas, attributions.mask, attributions.affine)
        out["regions"] = _region_sums(attributions.smri, voxel_label, list(names))
    return out


def _region_sums(X, voxel_label, regions, *, memory_mb=64) -> np.ndarray:
    """Per-subject sum of each region's voxels, (n, regions) float64.

    One pass over blocks of subjects (rows), each sorted by region once: ``X`` is typically a memory map of
    every voxel, which gathering each region's voxels across all subjects would read once per region. A
    region's sum is numpy's pairwise sum of its voxels in float64, in mask order, whatever the block.
    """
    order = np.argsort(voxel_label, kind="stable")
    sorted_labels = voxel_label[order]
    bounds = [
        (np.searchsorted(sorted_labels, v, side="left"), np.searchsorted(sorted_labels, v, side="right"))
        for v in regions
    ]
    out = np.empty((len(X), len(regions)))
    # a block's float32 rows gathered in region order, and their float64 copy
    rows = max(1, int(memory_mb * 2**20 // max(1, 12 * len(order))))
    for s in range(0, len(X), rows):
        block = np.take(X[s : s + rows], order, axis=1).astype(np.float64)
        for j, (start, stop) in enumerate(bounds):
            out[s : s + rows, j] = block[:, start:stop].sum(axis=1)
    return out


def choose_null(oof, null="auto", null_stats=None, *, minimum=19) -> str:
    """The null of a run's attribution tables.

    ``"external"`` for an external cohort (its labels permuted within site, the fold models fixed);
    ``"explanation_set"`` for runs with one (unless ``"retraining"`` is asked for); otherwise
    ``"retraining"`` when asked for or, with ``"auto"``, when at least ``minimum`` matching null runs exist
    (so that p can reach 0.05); else ``"per_fold"``.
    """
    # the null runs and the folds are the training cohort's, not an external cohort's subjects
    if getattr(oof, "external", False):
        if null not in ("auto", "external"):
            raise ParameterError(f"null: an external cohort is tested by permuting its own labels, not by {null}")
        return "external"
    if null == "explanation_set" and oof.has_explanation_set:
        return null
    if null not in ("auto", "retraining", "per_fold"):
        raise ParameterError(f"null: expected auto, retraining or per_fold, found {null!r}")
    found = 0 if not null_stats else len(next(iter(null_stats.values())))
    if null == "retraining" and found == 0:
        raise ParameterError(
            f"null: retraining asked for, but {oof.run.path} has no matching null runs (run migtrans-null first)"
        )
    if null == "per_fold" and oof.has_explanation_set:
        raise ParameterError("null: per_fold needs a run without an explanation set (explain_fraction = 0)")
    if null == "retraining" or (null == "auto" and found >= minimum and not oof.has_explanation_set):
        return "retraining"
    return "explanation_set" if oof.has_explanation_set else "per_fold"


def result_tables(
    oof, attributions, *, n_permutations=1000, genes=None, atlas="aal", random_state=0, null="auto", null_stats=None
) -> dict:
    """Every table of DESIGN §6 for a run, as DataFrames keyed by file stem.

    Each feature (SNP, locus, region, connection, node) gets its mean attribution, its ``contrast`` (mean
    attribution of the cases minus the controls within fold x site, in log-odds of the positive class),
    ``stat`` (the Welch-type statistic of that contrast; see `welch_statistic`) and p-values under the null
    `FamilyTest` describes. Loci sum their SNPs' attributions, regions their voxels', nodes their edges'.
    Rows are ranked by ``contrast``: rank 1 accounts for the most of the log-odds gap between cases and
    controls; features the model barely uses rank low however small their p, and features whose
    attributions work against the labels rank last among the testable ones.

    Parameters
    ----------
    oof : OutOfFold
        The run (cohort, folds, explained subjects).
    attributions : Attributions
        From `explain_run` on the same run.
    n_permutations : int
        Label permutations of the fixed-model tests: of the explanation set within site, or of each
        fold's held-out subjects within site (then at least ``20 K - 1``, so that ``K x min_k p_k`` can
        reach 0.05). The classical association uses every subject, permuted within site.
    genes : {"grch37", "grch38"} or BED path, optional
        Default: the cohort's genotype build.
    atlas : {"aal", "harvard-oxford"} or path to a label image (with ``<stem>.tsv`` of index, name)
    random_state : int
    null : {"auto", "retraining", "per_fold"}
        See `choose_null`.
    null_stats : dict of family -> array (B_r, features), optional
        Statistics of the retraining null runs (`gather_null_runs`).

    Returns
    -------
    dict of str -> DataFrame; ``tables["snps"]`` has the classical association's ``beta_assoc``,
    ``se_assoc``, ``z_assoc``, ``p_assoc``, ``n_assoc`` and ``a1_freq`` (effect allele: ``a1``, the counted
    one; see `logistic_association`) and ``p_fwer_assoc``, and its ``attrs`` hold ``lambda_gc`` and what the
    summary-statistics exports need (`write_exports`); every table's ``attrs`` holds the ``null`` its
    p-values test.
    """
    cohort, subjects = oof.cohort, attributions.subjects
    if not np.array_equal(subjects["subject_id"].to_numpy().astype(str), cohort.subject_ids[oof.rows].astype(str)):
        raise ParameterError("attributions: they do not cover the run's explained subjects (another run's?)")
    scheme = choose_null(oof, null, null_stats)
    if scheme == "per_fold":
        check_number_of_permutations(n_permutations, len(oof.folds))
    site = site_codes(cohort)
    # the fold number is 0 for every subject of an explanation set: then strata are the sites alone
    test = FamilyTest.of(
        oof, attributions, scheme, n_permutations=n_permutations, random_state=random_state, null_stats=null_stats
    )
    every = dict(
        labels=cohort.labels.astype(int), strata=site, n_permutations=n_permutations, random_state=random_state
    )
    matrices = feature_matrices(oof, attributions, atlas)
    if scheme == "retraining":
        for family, X in matrices.items():
            if family not in null_stats or np.shape(null_stats[family])[1] != X.shape[1]:
                raise ParameterError(
                    f"null runs: their {family} statistics do not match this run's {X.shape[1]} features "
                    "(made with another atlas or cohort?)"
                )
    tables = {}
    if attributions.snp is not None:
        tables.update(_genomic_tables(oof, matrices, genes, test, every))
    if attributions.fnc is not None:
        tables.update(_connectome_tables(cohort, matrices, test))
    if attributions.smri is not None:
        tables["regions"] = _region_table(attributions, matrices, atlas, test)
    tables["modalities"] = _modality_table(attributions)
    for table in tables.values():
        table.attrs["null"] = scheme
    tables.update(cohort_tables(cohort))
    return tables


def cohort_tables(cohort) -> dict:
    """``qc``: what the genotype QC removed and why (one row per SNP or subject, under the first filter it
    failed); ``ancestry``: each subject's genetic principal components with its label and site (the PC
    scatter of the report)."""
    out = {}
    if cohort.qc is not None:
        # an empty detail reads back as missing: say so in memory too, so that a table and its CSV agree
        out["qc"] = cohort.qc.table.reset_index(drop=True).replace({"detail": {"": np.nan}})
    if cohort.pcs is not None:
        ancestry = pd.DataFrame(
            {"subject_id": cohort.subject_ids, "label_name": [cohort.label_names[int(v)] for v in cohort.labels]}
        )
        if cohort.site is not None:
            ancestry["site"] = np.asarray(cohort.site).astype(str)
        out["ancestry"] = pd.concat([ancestry, cohort.pcs.reset_index(drop=True)], axis=1)
    return out


def check_number_of_permutations(n_permutations, n_folds) -> None:
    """The per-fold test's B must let ``K x min_k p_k`` reach 0.05, that is ``K / (B + 1) <= 0.05``."""
    need = 20 * n_folds - 1
    if n_permutations < need:
        raise ParameterError(
            f"permutations: the per-fold test combines {n_folds} folds by Bonferroni, so it needs at least "
            f"{need} permutations for a p-value to reach 0.05, found {n_permutations}"
        )


def _genomic_tables(oof, matrices, genes, test, every):
    cohort, run = oof.cohort, oof.run
    snps = cohort.snps.reset_index(drop=True)
    loci = run.train.loci(cohort)
    locus_of = np.empty(len(snps), dtype=object)
    for name, cols in zip(loci["locus"], loci["columns"]):
        locus_of[cols] = name
    annotation = gene_table(genes or cohort.spec.genotypes.build.lower())
    snp_stats = test("snps", matrices["snps"])
    # the classical view involves no model: every subject, adjusted for the covariates, site and PCs
    design = association_covariates(cohort)
    assoc = logistic_association(cohort.genotypes, every["labels"], design)
    # its genome-wide family-wise p: max-T over the trend statistic, stratified by site, the dosages
    # residualised on the same covariates (the site enters as the strata)
    site_column = cohort.spec.phenotypes.site_column
    numeric, _ = covariate_matrix(
        design.drop(columns=[site_column] if site_column in design else []), cohort.n_subjects
    )
    trend = trend_permutation_test(
        cohort.genotypes, **every, covariates=numeric[:, 1:] if numeric.shape[1] > 1 else None
    )
    nearest = nearest_genes(snps["chrom"], snps["pos"], annotation)
    snp_table = pd.concat(
        [
            snps[["snp", "chrom", "pos", "a1", "a2"]],
            nearest[["gene"]],
            pd.DataFrame({"locus": locus_of}),
            snp_stats,
            assoc.rename(columns={"n_obs": "n_assoc"})[list(ASSOCIATION_COLUMNS)],
            pd.DataFrame({"p_fwer_assoc": trend.p_fwer}),
        ],
        axis=1,
    )
    # lambda_GC on nearly independent common SNPs (LD-pruned, MAF >= 5%), with a bootstrap interval
    common = getattr(cohort, "pruned_snps", None)
    common = np.ones(len(snps), dtype=bool) if common is None else common
    lam, low, high = inflation_interval(assoc["p_assoc"].to_numpy()[common], random_state=every["random_state"])
    snp_table.attrs.update(
        lambda_gc=lam,
        lambda_gc_interval=[low, high],
        lambda_gc_snps=int(np.isfinite(assoc["p_assoc"].to_numpy()[common]).sum()),
        association_covariates=[str(c) for c in design.columns],
        # what the summary-statistics exports (`write_exports`) say of the association's data
        genome_build=cohort.spec.genotypes.build,
        trait=cohort.spec.phenotypes.label_column,
        label_names=[str(v) for v in cohort.label_names],
        n_cases=int(every["labels"].sum()),
        n_controls=int(len(every["labels"]) - every["labels"].sum()),
    )

    locus_stats = test("loci", matrices["loci"])
    lead = [
        snps["snp"].iloc[_lead(cols, snp_stats, sign)]
        for cols, sign in zip(loci["columns"], np.sign(np.nan_to_num(locus_stats["contrast"].to_numpy())))
    ]
    locus_table = pd.concat(
        [
            loci[["locus", "chrom", "start", "end", "n_snps"]].reset_index(drop=True),
            pd.DataFrame({"lead_snp": lead, "genes": locus_genes(loci, annotation)}),
            locus_stats,
        ],
        axis=1,
    )
    return {"snps": _ranked(snp_table), "loci": _ranked(locus_table)}


def _lead(cols, snp_stats, sign):
    """The testable member SNP with the largest share of its locus's contrast, in the locus's direction
    (the first member when none is testable)."""
    share = (sign or 1.0) * snp_stats["contrast"].to_numpy()[cols]
    testable = np.isfinite(snp_stats["p_perm"].to_numpy()[cols]) & np.isfinite(share)
    return cols[int(np.argmax(np.where(testable, share, -np.inf)))]


def _connectome_tables(cohort, matrices, test):
    nodes = cohort.nodes.reset_index(drop=True)
    k = len(nodes)
    iu = np.triu_indices(k, 1)
    edge_stats = test("connections", matrices["connections"])
    connections = pd.concat(
        [
            pd.DataFrame(
                {
                    "node_i": nodes["name"].to_numpy()[iu[0]],
                    "node_j": nodes["name"].to_numpy()[iu[1]],
                    "domain_i": nodes["domain"].to_numpy()[iu[0]],
                    "domain_j": nodes["domain"].to_numpy()[iu[1]],
                }
            ),
            edge_stats,
        ],
        axis=1,
    )
    # a node's attribution per subject is the sum over its edges
    node_stats = test("nodes", matrices["nodes"])
    node_table = pd.concat(
        [nodes[["name", "domain", "x", "y", "z"]].rename(columns={"name": "node"}), node_stats], axis=1
    )
    if "note" in nodes.columns:  # e.g. stand-in labels: the report warns about them
        node_table["note"] = nodes["note"].to_numpy()
    return {"connections": _ranked(connections), "nodes": _ranked(node_table)}


def _region_table(attributions, matrices, atlas, test):
    voxel_label, names = atlas_regions_in_mask(atlas, attributions.mask, attributions.affine)
    present = list(names)
    # a region's attribution per subject is the sum over its voxels (log-odds, like every other table)
    region_stats = test("regions", matrices["regions"])
    table = pd.concat(
        [
            pd.DataFrame(
                {
                    "region": [names[v] for v in present],
                    "atlas": str(atlas),
                    "n_voxels": [int((voxel_label == v).sum()) for v in present],
                }
            ),
            region_stats,
        ],
        axis=1,
    )
    return _ranked(table)


def region_atlas(atlas="aal"):
    """The label image and names behind regions.csv.

    Parameters
    ----------
    atlas : {"aal", "harvard-oxford"} or path
        A packaged atlas, or a 3D integer label image in MNI space with a ``<stem>.tsv`` beside it
        holding columns ``index`` and ``name``.

    Returns
    -------
    img : nibabel.Nifti1Image
    labels : pandas.DataFrame with ``index`` and ``name``
    """
    if str(atlas).lower() in ("aal", "harvard-oxford"):
        return load_atlas(str(atlas).lower())
    import nibabel as nib

    path = Path(atlas)
    table = path.with_name(path.name.split(".")[0] + ".tsv")
    if not path.is_file():
        raise ParameterError(
            f"atlas: expected aal, harvard-oxford or a label image, found {str(atlas)!r} (no such file)"
        )
    if not table.is_file():
        raise ParameterError(f"atlas: {path} needs its labels beside it in {table.name} (columns index, name)")
    try:
        img = nib.load(path)
        labels = pd.read_csv(table, sep="\t")
    except Exception as exc:  # noqa: BLE001 - any unreadable atlas is a user error here
        raise ParameterError(f"atlas: cannot read {path} or {table.name} ({exc})") from None
    if len(img.shape) != 3:
        raise ParameterError(f"atlas: {path} must be a 3D label image, found shape {img.shape}")
    if not {"index", "name"} <= set(labels.columns):
        raise ParameterError(f"atlas: {table} must have columns index and name, found {', '.join(labels.columns)}")
    index = pd.to_numeric(labels["index"], errors="coerce")
    if index.isna().any() or (index != index.round()).any() or index.duplicated().any():
        raise ParameterError(
            f"atlas: {table}: column index must hold distinct integers, found {labels['index'].tolist()[:5]}"
        )
    if np.dtype(img.get_data_dtype()).kind not in "iuf":
        raise ParameterError(f"atlas: {path} must hold integer labels, found data type {img.get_data_dtype()}")
    return img, labels.assign(index=index.astype(np.int64), name=labels["name"].astype(str))


def atlas_regions_in_mask(atlas, mask, affine) -> tuple[np.ndarray, dict]:
    """(atlas label of every mask voxel, {label: region name} of the labels present); an atlas none of whose
    regions overlaps the mask is a `ParameterError` (a label image in another space, say)."""
    img, labels = region_atlas(atlas)
    grid = resample_atlas(img, affine, mask.shape)
    voxel_label = np.asarray(grid.dataobj).astype(np.int64)[mask]
    names = dict(zip(labels["index"], labels["name"]))
    present = {v: names[v] for v in np.unique(voxel_label) if v in names}
    if not present:
        raise ParameterError(
            f"atlas: no region of {atlas} overlaps the sMRI mask (is the label image in the images' space, MNI?)"
        )
    return voxel_label, present


def _modality_table(attributions):
    subjects = attributions.subjects
    rows = []
    ablation = getattr(attributions, "ablation", None)
    for m in attributions.modalities:
        drop = np.nan
        if ablation is not None and m in set(ablation["modality"]):
            drop = float(ablation.set_index("modality").loc[m, "ablation_auc_drop"])
        rows.append(
            {
                "modality": m,
                "rollout_share": subjects[f"rollout_share_{m}"].mean(),
                "ig_share": subjects[f"ig_abs_share_{m}"].mean(),
                "ablation_auc_drop": drop,
            }
        )
    return pd.DataFrame(rows)


def write_tables(tables: dict, out_dir) -> list[Path]:
    """Write each table as ``<name>.csv`` with floats that round-trip."""
    files = ExplanationFolder(out_dir)
    files.path.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in tables.items():  # the same format as `Attributions.save`
        path = files.table(name)
        table.to_csv(path, index=False, float_format="%.17g")
        paths.append(path)
    return paths
