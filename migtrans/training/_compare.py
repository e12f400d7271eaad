"""`compare_runs`: one table of mean ± SD metrics across run folders."""

from __future__ import annotations

import pandas as pd

from ._checkpoint import open_run, read_run_csv
from ._metrics import METRIC_COLUMNS, REQUIRED_METRICS


def compare_runs(paths) -> pd.DataFrame:
    """One row per run: name, model, modalities, folds, then ``<metric>_mean`` and ``<metric>_sd`` across
    folds, and ``accuracy_explanation_set`` / ``roc_auc_explanation_set`` (the fold models' ensemble on the
    held-out explanation set; NaN for runs without one)."""
    rows = []
    for path in paths:
        run = open_run(path)
        table = read_run_csv(run.folder.metrics, ("fold", *REQUIRED_METRICS), rows=("mean", "sd")).set_index("fold")
        row = {
            "run": run.path.name,
            "model": run.train.model,
            "modalities": "+".join(run.train.modalities),
            "folds": run.n_folds,
        }
        for metric in METRIC_COLUMNS:  # NaN for a metric an older run did not record
            row[f"{metric}_mean"] = table.loc["mean", metric] if metric in table else float("nan")
            row[f"{metric}_sd"] = table.loc["sd", metric] if metric in table else float("nan")
        for metric in ("accuracy", "roc_auc"):
            held = table.loc["explanation_set", metric] if "explanation_set" in table.index else float("nan")
            row[f"{metric}_explanation_set"] = held
        rows.append(row)
    return pd.DataFrame(rows)


def format_comparison(table: pd.DataFrame) -> str:
    """A Markdown table with ``mean ± sd`` cells (percent for every metric but AUC and Brier)."""
    header = ["run", "model", "modalities", *METRIC_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = [str(row["run"]), str(row["model"]), str(row["modalities"])]
        for metric in METRIC_COLUMNS:
            mean, sd = row[f"{metric}_mean"], row[f"{metric}_sd"]
            exact = metric in ("roc_auc", "brier")
            cells.append(f"{mean:.3f} ± {sd:.3f}" if exact else f"{100 * mean:.1f} ± {100 * sd:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
