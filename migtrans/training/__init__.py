"""Cross-validated training of MIGTrans and baselines, run folders, and their comparison."""

from ._calibration import (
    brier_score,
    calibrate_folds,
    ensemble_temperature,
    fit_temperature,
    reliability_table,
    run_temperature,
)
from ._checkpoint import Run, fold_of_subjects, load_fold, load_state_dict, open_run
from ._compare import compare_runs, format_comparison
from ._config import TrainConfig, read_training_config
from ._elasticnet import ElasticNetLogisticCV, LateFusion
from ._folder import FoldFolder, RunFolder
from ._loop import fit_network_weight, resolve_device
from ._metrics import METRIC_COLUMNS, classification_metrics, metrics_table
from ._predict import PredictResult, align_cohort, load_external_cohort, predict, prediction_qc
from ._run import RunResult, build_model, fit_linear_prior, permuted_run_labels, retrain, run_folds, train

__all__ = [
    "ElasticNetLogisticCV",
    "LateFusion",
    "METRIC_COLUMNS",
    "FoldFolder",
    "Run",
    "RunFolder",
    "RunResult",
    "TrainConfig",
    "brier_score",
    "build_model",
    "calibrate_folds",
    "ensemble_temperature",
    "classification_metrics",
    "compare_runs",
    "fold_of_subjects",
    "fit_linear_prior",
    "fit_network_weight",
    "fit_temperature",
    "format_comparison",
    "load_external_cohort",
    "load_fold",
    "load_state_dict",
    "metrics_table",
    "open_run",
    "permuted_run_labels",
    "predict",
    "prediction_qc",
    "PredictResult",
    "align_cohort",
    "read_training_config",
    "reliability_table",
    "resolve_device",
    "retrain",
    "run_temperature",
    "run_folds",
    "train",
]
