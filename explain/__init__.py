"""Attribution engines and statistics over a trained migtrans run: integrated gradients, attention
rollout, faithfulness checks — on held-out subjects only (every subject, by the fold model that did not
train on it; or a run's explanation set, with the ensemble of its fold models) — plus the permutation
engine (Welch statistic, per-fold Bonferroni, max-T, BH), retraining null runs (`run_null`, CLI
`migtrans-null`), the classical per-SNP association and the tables' community-format copies (`write_exports`:
GWAS-SSF, FUMA, BrainNet Viewer)."""

from ._annotation import gene_table, locus_genes, nearest_genes
from ._association import (
    association_covariates,
    covariate_matrix,
    genomic_inflation,
    inflation_interval,
    logistic_association,
    trend_permutation_test,
)
from ._attributions import Attributions
from ._explain import explain_run, rebuild_tables
from ._exports import write_exports
from ._faithfulness import deletion_curve, modality_ablation
from ._folder import ExplanationFolder
from ._ig import LogOdds, integrated_gradients, relative_delta
from ._null import NullRuns, gather_null_runs, null_key, run_fingerprint, run_null
from ._oof import OutOfFold
from ._permutation import (
    PermutationResult,
    bh_fdr,
    bonferroni_folds,
    per_fold_test,
    permutation_test,
    permuted_labels,
    retraining_p,
    welch_statistic,
)
from ._rollout import RelevanceResult, relevance_rollout, rollout
from ._tables import (
    atlas_regions_in_mask,
    check_number_of_permutations,
    choose_null,
    feature_matrices,
    region_atlas,
    result_tables,
    write_tables,
)

__all__ = [
    "association_covariates",
    "inflation_interval",
    "Attributions",
    "ExplanationFolder",
    "LogOdds",
    "NullRuns",
    "atlas_regions_in_mask",
    "OutOfFold",
    "PermutationResult",
    "RelevanceResult",
    "bh_fdr",
    "bonferroni_folds",
    "check_number_of_permutations",
    "choose_null",
    "covariate_matrix",
    "deletion_curve",
    "explain_run",
    "rebuild_tables",
    "feature_matrices",
    "gather_null_runs",
    "gene_table",
    "genomic_inflation",
    "integrated_gradients",
    "locus_genes",
    "logistic_association",
    "modality_ablation",
    "nearest_genes",
    "null_key",
    "per_fold_test",
    "permutation_test",
    "permuted_labels",
    "region_atlas",
    "relative_delta",
    "relevance_rollout",
    "result_tables",
    "retraining_p",
    "rollout",
    "run_fingerprint",
    "run_null",
    "trend_permutation_test",
    "welch_statistic",
    "write_exports",
    "write_tables",
]
