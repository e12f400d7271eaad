"""Genotype-level tools: LD pruning, ancestry principal components and quality control (plink 1.9 equivalents)."""

from ._pca import GeneticPCs, ancestry_pcs, genetic_pcs, ld_prune, project_pcs
from ._qc import SUBJECT_FILTERS, QCResult, QCThresholds, genotype_qc, king_kinship, snp_statistics, subject_statistics

__all__ = [
    "SUBJECT_FILTERS",
    "GeneticPCs",
    "QCResult",
    "QCThresholds",
    "ancestry_pcs",
    "genetic_pcs",
    "genotype_qc",
    "king_kinship",
    "ld_prune",
    "project_pcs",
    "snp_statistics",
    "subject_statistics",
]
