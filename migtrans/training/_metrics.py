"""Classification metrics per fold and their mean ± SD across folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

METRIC_COLUMNS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "brier")
# metrics.csv of runs from before the Brier score lacks it: readers need only these
REQUIRED_METRICS = METRIC_COLUMNS[:-1]


def classification_metrics(labels, prob_positive, threshold=0.5) -> dict:
    """Accuracy, balanced accuracy, precision, recall, F1 (positive class), ROC AUC and the Brier score (mean
    squared error of the probabilities: calibration and sharpness together, lower is better)."""
    labels = np.asarray(labels).astype(int)
    prob = np.asarray(prob_positive, dtype=float)
    predicted = (prob >= threshold).astype(int)
    both = len(np.unique(labels)) == 2
    return {
        "accuracy": skm.accuracy_score(labels, predicted),
        "balanced_accuracy": skm.balanced_accuracy_score(labels, predicted),
        "precision": skm.precision_score(labels, predicted, zero_division=0),
        "recall": skm.recall_score(labels, predicted, zero_division=0),
        "f1": skm.f1_score(labels, predicted, zero_division=0),
        "roc_auc": skm.roc_auc_score(labels, prob) if both else float("nan"),
        "brier": float(np.mean((prob - labels) ** 2)),
    }


def metrics_table(predictions: pd.DataFrame, sites=None) -> pd.DataFrame:
    """One row per fold (1..k), then ``mean`` and ``sd`` (sample SD, ddof=1) rows.

    ``sites`` (the site name of each fold, in fold order) adds a ``site`` column: leave-one-site-out
    cross-validation reports its metrics per site.
    """
    rows = []
    for fold, part in predictions.groupby("fold", sort=True):
        rows.append({"fold": str(fold), **classification_metrics(part["label"], part["prob_positive"])})
    table = pd.DataFrame(rows)
    values = table[list(METRIC_COLUMNS)]
    summary = pd.DataFrame(
        [{"fold": "mean", **values.mean().to_dict()}, {"fold": "sd", **values.std(ddof=1).to_dict()}]
    )
    out = pd.concat([table, summary], ignore_index=True)[["fold", *METRIC_COLUMNS]]
    if sites is not None:
        out.insert(1, "site", [str(sites[int(f) - 1]) for f in table["fold"]] + ["", ""])
    return out
