"""`ExplanationFolder`: the files an explanation writes, named in one place. `Attributions` saves and loads
through it (with the ranked tables and their community-format copies, `write_exports`), `explain_run` adds the
faithfulness tables and `write_tables` the ranked ones; the report folder (`reports.ReportFolder`) is an
explanation folder with figures, a run summary and ``report.html`` added."""

from __future__ import annotations

from pathlib import Path


class ExplanationFolder:
    """The files of an explanation (README, "The report folder").

    Examples
    --------
    >>> folder = ExplanationFolder("reports/full")
    >>> folder.table("snps").as_posix(), folder.array("smri").as_posix()
    ('reports/full/snps.csv', 'reports/full/smri.npy')
    """

    SUBJECTS = "subjects.csv"  # one row per explained subject
    SETTINGS = "settings.json"  # every choice of the explanation, written once
    MASK = "mask.nii.gz"  # the sMRI mask the voxel arrays index
    SMRI_MAP = "smri_attribution.nii.gz"  # mean sMRI attribution as a NIfTI map
    #: the ranked result tables (`result_tables`), by name
    RESULT_TABLES = ("snps", "loci", "regions", "connections", "nodes", "modalities")
    #: faithfulness tables
    CHECK_TABLES = ("ablation", "deletion")
    #: the cohort behind the tables: genotype QC removals, genetic principal components by subject
    COHORT_TABLES = ("qc", "ancestry")
    # the tables in community formats (`write_exports`, docs/exports.md)
    GWAS_SSF = "association.tsv.gz"  # GWAS-SSF summary statistics of the classical association
    GWAS_SSF_META = GWAS_SSF + "-meta.yaml"  # their GWAS-SSF metadata (named as the format asks)
    FUMA = "association_fuma.tsv.gz"  # the same, as a FUMA / LocusZoom upload
    BRAINNET_NODES = "nodes.node"  # BrainNet Viewer node file of nodes.csv
    BRAINNET_EDGES = "connections.edge"  # BrainNet Viewer edge matrix of the top connections
    #: every export, by file name
    EXPORTS = (GWAS_SSF, GWAS_SSF_META, FUMA, BRAINNET_NODES, BRAINNET_EDGES)
    #: identifier columns of the tables, read as text (chromosome "1" stays "1", "<script>" a string)
    TEXT_COLUMNS = (
        "snp",
        "a1",
        "a2",
        "gene",
        "genes",
        "locus",
        "lead_snp",
        "region",
        "atlas",
        "node",
        "node_i",
        "node_j",
        "domain",
        "domain_i",
        "domain_j",
        "subject_id",
        "modality",
        "note",
        "label_name",
        "chrom",
        "id",
        "level",
        "filter",
        "detail",
        "site",
    )

    def __init__(self, path):
        self.path = Path(path)

    def __truediv__(self, name) -> Path:
        return self.path / name

    subjects = property(lambda self: self.path / self.SUBJECTS)
    settings = property(lambda self: self.path / self.SETTINGS)
    mask = property(lambda self: self.path / self.MASK)
    smri_map = property(lambda self: self.path / self.SMRI_MAP)
    gwas_ssf = property(lambda self: self.path / self.GWAS_SSF)
    gwas_ssf_meta = property(lambda self: self.path / self.GWAS_SSF_META)
    fuma = property(lambda self: self.path / self.FUMA)
    brainnet_nodes = property(lambda self: self.path / self.BRAINNET_NODES)
    brainnet_edges = property(lambda self: self.path / self.BRAINNET_EDGES)

    @staticmethod
    def file(name: str) -> str:
        """The file name of table ``name``: ``<name>.csv``."""
        return f"{name}.csv"

    def table(self, name: str) -> Path:
        """``<name>.csv``: a result table, ``subjects``, ``ablation`` or ``deletion``."""
        return self.path / self.file(name)

    def array(self, name: str) -> Path:
        """``<name>.npy``: per-subject attributions of one modality (``snp``, ``rollout_fnc``, ...)."""
        return self.path / f"{name}.npy"


__all__ = ["ExplanationFolder"]
