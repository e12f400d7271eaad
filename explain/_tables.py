"""The ranked result tables of a run (DESIGN §6): snps.csv, loci.csv, regions.csv, connections.csv,
nodes.csv, modalities.csv — permutation-tested held-out attributions plus the classical association."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from migtrans.atlases import load_atlas, resample_atlas
from migtrans.exceptions import ParameterError

from ._annotation import gene_table, locus_genes, nearest_genes
from ._association import genomic_inflation, logistic_association, trend_permutation_test
from ._folder import ExplanationFolder
from ._permutation import permutation_test

# How the tables aggregate and rank, as recorded in the settings (and read back by the Methods text).
REGION_ATTRIBUTION = "sum over its voxels"
RANKING = "contrast (mean attribution of cases minus controls within strata), largest first; ties by p_perm"
STATISTIC = "contrast within strata over its permutation SD (z), cases - controls"


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


def _tested(X, labels, strata, n_permutations, random_state):
    # one seed for every family: all families see the same label permutations
    res = permutation_test(X, labels, strata=strata, n_permutations=n_permutations, random_state=random_state)
    return pd.DataFrame({"attribution": np.asarray(X).mean(axis=0, dtype=np.float64), **res.table()})


def result_tables(oof, attributions, *, n_permutations=1000, genes=None, atlas="aal", random_state=0) -> dict:
    """Every table of DESIGN §6 for a run, as DataFrames keyed by file stem.

    Each feature (SNP, locus, region, connection, node) gets its mean attribution, its ``contrast`` (mean
    attribution of the cases minus the controls within the permutation strata, in log-odds of the positive
    class), ``stat`` (that contrast over its permutation SD; see `permutation_test`) and its permutation
    p-values. Loci sum their SNPs' attributions, regions their voxels', nodes their edges'. Rows are ranked
    by ``contrast``: rank 1 accounts for the most of the log-odds gap between cases and controls; features
    the model barely uses rank low however small their p, and features whose attributions work against the
    labels rank last among the testable ones.

    Parameters
    ----------
    oof : OutOfFold
        The run (cohort, folds, explained subjects).
    attributions : Attributions
        From `explain_run` on the same run.
    n_permutations : int
        Label permutations of the explained subjects: within site for an explanation set, within
        fold x site when every subject was explained out of fold. The classical association uses every
        subject, permuted within site.
    genes : {"grch37", "grch38"} or BED path, optional
        Default: the cohort's genotype build.
    atlas : {"aal", "harvard-oxford"} or path to a label image (with ``<stem>.tsv`` of index, name)
    random_state : int
    """
    cohort, subjects = oof.cohort, attributions.subjects
    if not np.array_equal(subjects["subject_id"].to_numpy().astype(str), cohort.subject_ids[oof.rows].astype(str)):
        raise ParameterError("attributions: they do not cover the run's explained subjects (another run's?)")
    site = np.zeros(cohort.n_subjects, dtype=int) if cohort.site is None else pd.factorize(cohort.site)[0]
    # the fold number is 0 for every subject of an explanation set: then strata are the sites alone
    strata = subjects["fold"].to_numpy() * 10_000 + site[oof.rows]
    test = dict(
        labels=subjects["label"].to_numpy(), strata=strata, n_permutations=n_permutations, random_state=random_state
    )
    every = dict(
        labels=cohort.labels.astype(int), strata=site, n_permutations=n_permutations, random_state=random_state
    )
    tables = {}
    if attributions.snp is not None:
        tables.update(_genomic_tables(oof, attributions, genes, test, every))
    if attributions.fnc is not None:
        tables.update(_connectome_tables(cohort, attributions, test))
    if attributions.smri is not None:
        tables["regions"] = _region_table(attributions, atlas, test)
    tables["modalities"] = _modality_table(attributions)
    return tables


def _genomic_tables(oof, attributions, genes, test, every):
    cohort, run = oof.cohort, oof.run
    snps = cohort.snps.reset_index(drop=True)
    loci = run.train.loci(cohort)
    locus_of = np.empty(len(snps), dtype=object)
    for name, cols in zip(loci["locus"], loci["columns"]):
        locus_of[cols] = name
    annotation = gene_table(genes or cohort.spec.genotypes.build.lower())
    X = np.asarray(attributions.snp)
    snp_stats = _tested(X, **test)
    # the classical view involves no model: every subject, labels permuted within site
    assoc = logistic_association(cohort.genotypes, every["labels"], cohort.covariates)
    # its genome-wide family-wise p: max-T over the trend statistic
    trend = trend_permutation_test(cohort.genotypes, **every)
    nearest = nearest_genes(snps["chrom"], snps["pos"], annotation)
    snp_table = pd.concat(
        [
            snps[["snp", "chrom", "pos", "a1", "a2"]],
            nearest[["gene"]],
            pd.DataFrame({"locus": locus_of}),
            snp_stats,
            assoc[["beta_assoc", "p_assoc"]],
            pd.DataFrame({"p_fwer_assoc": trend.p_fwer}),
        ],
        axis=1,
    )
    snp_table.attrs["lambda_gc"] = genomic_inflation(assoc["p_assoc"])

    # a locus's attribution per subject is the sum of its SNPs' (IG is additive)
    X_loci = np.column_stack([X[:, cols].sum(axis=1) for cols in loci["columns"]])
    locus_stats = _tested(X_loci, **test)
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


def _connectome_tables(cohort, attributions, test):
    nodes = cohort.nodes.reset_index(drop=True)
    k = len(nodes)
    iu = np.triu_indices(k, 1)
    edge_stats = _tested(attributions.edges(), **test)
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
    node_stats = _tested(np.asarray(attributions.fnc).sum(axis=2), **test)
    node_table = pd.concat(
        [nodes[["name", "domain", "x", "y", "z"]].rename(columns={"name": "node"}), node_stats], axis=1
    )
    if "note" in nodes.columns:  # e.g. stand-in labels: the report warns about them
        node_table["note"] = nodes["note"].to_numpy()
    return {"connections": _ranked(connections), "nodes": _ranked(node_table)}


def _region_table(attributions, atlas, test):
    voxel_label, names = atlas_regions_in_mask(atlas, attributions.mask, attributions.affine)
    present = list(names)
    X = np.asarray(attributions.smri)
    # a region's attribution per subject is the sum over its voxels (log-odds, like every other table)
    X_regions = np.column_stack([X[:, voxel_label == v].sum(axis=1, dtype=np.float64) for v in present])
    region_stats = _tested(X_regions, **test)
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
