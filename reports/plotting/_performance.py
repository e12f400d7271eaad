"""Model-performance figures from a run folder: ROC curves per fold, the out-of-fold confusion matrix,
training histories and the cross-validated metrics table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from migtrans.exceptions import ParameterError
from migtrans.training import RunFolder
from migtrans.validation import check_columns

from ._display import Display

METRIC_NAMES = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "precision": "Precision",
    "recall": "Recall (sensitivity)",
    "f1": "F1",
    "roc_auc": "ROC AUC",
    "brier": "Brier score",
}


def _fold_sort(values):
    return sorted(values, key=lambda f: (0, int(f)) if str(f).isdigit() else (1, str(f)))


class RocCurvesDisplay(Display):
    """Out-of-fold ROC curve of every fold and their mean, interpolated on a common false-positive grid.

    Attributes
    ----------
    folds : list of dict
        Per fold: ``fold``, ``fpr``, ``tpr``, ``auc``.
    mean_fpr, mean_tpr, sd_tpr : ndarray
        The grid, the mean of the interpolated fold curves and their standard deviation.
    mean_auc, sd_auc : float
        Mean and SD of the fold AUCs.
    figure_, ax_ : set by `plot`.
    """

    def __init__(self, folds, mean_fpr, mean_tpr, sd_tpr):
        self.folds, self.mean_fpr, self.mean_tpr, self.sd_tpr = folds, mean_fpr, mean_tpr, sd_tpr
        aucs = np.array([f["auc"] for f in folds], dtype=float)
        self.mean_auc = float(np.nanmean(aucs)) if aucs.size else float("nan")
        self.sd_auc = float(np.nanstd(aucs, ddof=1)) if aucs.size > 1 else float("nan")

    @classmethod
    def from_predictions(cls, predictions, *, n_grid=101):
        """Read ``predictions.csv`` (``fold``, ``label`` in {0, 1}, ``prob_positive``).

        Folds with a single class have no ROC curve and are left out.
        """
        from sklearn.metrics import auc, roc_curve

        check_columns(predictions, ("fold", "label", "prob_positive"), "predictions table")
        grid = np.linspace(0, 1, n_grid)
        folds, curves = [], []
        for fold in _fold_sort(predictions["fold"].unique()):
            rows = predictions[predictions["fold"] == fold]
            if rows["label"].nunique() < 2:
                continue
            fpr, tpr, _ = roc_curve(rows["label"].to_numpy(), rows["prob_positive"].to_numpy(dtype=float))
            folds.append({"fold": fold, "fpr": fpr, "tpr": tpr, "auc": float(auc(fpr, tpr))})
            curve = np.interp(grid, fpr, tpr)
            curve[0] = 0.0
            curves.append(curve)
        curves = np.array(curves) if curves else np.zeros((0, n_grid))
        mean = curves.mean(axis=0) if len(curves) else np.full(n_grid, np.nan)
        if len(curves):
            mean[-1] = 1.0
        sd = curves.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(n_grid)
        return cls(folds, grid, mean, sd)

    def plot(self, ax=None):
        """Draw the fold curves (thin), the mean (thick) with a ±1 SD band and the chance diagonal."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(3.6, 3.6), layout="constrained")
        self.figure_, self.ax_ = ax.figure, ax
        for f in self.folds:
            ax.plot(f["fpr"], f["tpr"], lw=0.8, alpha=0.55, label=f"fold {f['fold']} (AUC {f['auc']:.2f})")
        ax.fill_between(
            self.mean_fpr,
            np.clip(self.mean_tpr - self.sd_tpr, 0, 1),
            np.clip(self.mean_tpr + self.sd_tpr, 0, 1),
            color="0.6",
            alpha=0.3,
            lw=0,
            label="± 1 SD",
        )
        ax.plot(
            self.mean_fpr, self.mean_tpr, color="k", lw=2, label=f"mean (AUC {self.mean_auc:.2f} ± {self.sd_auc:.2f})"
        )
        ax.plot([0, 1], [0, 1], ls="--", color="0.5", lw=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("False-positive rate", fontsize=8)
        ax.set_ylabel("True-positive rate", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="lower right", frameon=False)
        return self


class ConfusionDisplay(Display):
    """Out-of-fold confusion matrix (all folds pooled), with counts and row percentages.

    Attributes
    ----------
    matrix : ndarray of shape (2, 2)
        Rows: true class (negative, positive); columns: predicted class.
    labels : list of str
        Class names (``label_name`` of the predictions when present, else ``0``/``1``).
    figure_, ax_ : set by `plot`.
    """

    def __init__(self, matrix, labels):
        self.matrix, self.labels = matrix, labels

    @classmethod
    def from_predictions(cls, predictions):
        """Read ``predictions.csv`` (``label``, ``predicted`` in {0, 1}; ``label_name`` optional)."""
        check_columns(predictions, ("label", "predicted"), "predictions table")
        y, p = predictions["label"].astype(int).to_numpy(), predictions["predicted"].astype(int).to_numpy()
        matrix = np.zeros((2, 2), dtype=int)
        np.add.at(matrix, (y, p), 1)
        labels = ["0", "1"]
        if "label_name" in predictions.columns:
            for k in (0, 1):
                names = predictions.loc[predictions["label"] == k, "label_name"].dropna().unique()
                if len(names) == 1:
                    labels[k] = str(names[0])
        return cls(matrix, labels)

    def plot(self, ax=None, *, cmap="Blues"):
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(3.2, 2.9), layout="constrained")
        self.figure_, self.ax_ = ax.figure, ax
        totals = self.matrix.sum(axis=1, keepdims=True)
        share = np.divide(self.matrix, totals, out=np.zeros(self.matrix.shape), where=totals > 0)
        ax.imshow(share, cmap=cmap, vmin=0, vmax=1)
        for (i, j), n in np.ndenumerate(self.matrix):
            ax.text(
                j,
                i,
                f"{n}\n({share[i, j]:.0%})",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if share[i, j] > 0.6 else "black",
            )
        ax.set_xticks([0, 1], [f"{lab}" for lab in self.labels], fontsize=7)
        ax.set_yticks([0, 1], [f"{lab}" for lab in self.labels], fontsize=7)
        ax.set_xlabel("Predicted", fontsize=8)
        ax.set_ylabel("True", fontsize=8)
        return self


class TrainingHistoryDisplay(Display):
    """Per-epoch training curves of every fold (``folds/<k>/history.csv``): losses and validation AUC.

    Attributes
    ----------
    histories : dict of str to pandas.DataFrame
        Per fold, the history table (``epoch`` and metric columns).
    best_epochs : dict of str to int
        The epoch whose weights the fold kept (``fold.json``), when recorded.
    figure_, axes_ : set by `plot`.
    """

    def __init__(self, histories, best_epochs):
        self.histories, self.best_epochs = histories, best_epochs

    @classmethod
    def from_run(cls, run_dir):
        """Read every ``folds/<k>/history.csv`` with at least one epoch; empty when there is none (baseline
        models that do not train by epochs)."""
        histories, best = {}, {}
        run = RunFolder(run_dir)
        for k in run.fold_numbers():
            folder, fold = str(k), run.fold(k)
            if not fold.history.is_file():
                continue
            table = pd.read_csv(fold.history)
            if "epoch" not in table.columns or table.empty:
                continue
            histories[folder] = table
            info = fold.info
            if info.is_file():
                epoch = json.loads(info.read_text()).get("best_epoch")
                if epoch is not None:
                    best[folder] = int(epoch)
        return cls(histories, best)

    @property
    def panels(self):
        """The panels drawn: loss (train and validation) and each other validation metric present."""
        columns = set().union(*(h.columns for h in self.histories.values())) if self.histories else set()
        panels = []
        if columns & {"train_loss", "val_loss"}:
            panels.append(("loss", [c for c in ("train_loss", "val_loss") if c in columns]))
        panels += [(c, [c]) for c in sorted(columns) if c.startswith("val_") and c != "val_loss"]
        return panels

    def plot(self, ax=None):
        fig = self._as_figure(ax)
        import matplotlib.pyplot as plt

        panels = self.panels
        if not panels:
            raise ParameterError("history: expected a training history to draw, found none")
        if fig is None:
            fig = plt.figure(figsize=(3.3 * len(panels), 2.8), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        self.figure_, self.axes_ = fig, list(axes)
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        dots = False
        for ax, (title, columns) in zip(axes, panels):
            for n, (fold, table) in enumerate(self.histories.items()):
                color = colors[n % len(colors)]
                for column in columns:
                    if column not in table:
                        continue
                    dashed = column.startswith("train")
                    ax.plot(
                        table["epoch"],
                        table[column],
                        color=color,
                        lw=1,
                        ls="--" if dashed else "-",
                        label=f"fold {fold}" if column == columns[-1] else None,
                    )
                    if fold in self.best_epochs and not dashed:
                        dots = True
                        at = table[table["epoch"] == self.best_epochs[fold]]
                        ax.scatter(at["epoch"], at[column], color=color, s=14, zorder=3, edgecolors="k", linewidths=0.4)
            ax.set_xlabel("Epoch", fontsize=8)
            label = title.replace("val_", "validation ").replace("_", " ")
            ax.set_ylabel(label.replace(" auc", " ROC AUC").replace(" acc", " accuracy"), fontsize=8)
            ax.tick_params(labelsize=7)
            ax.spines[["top", "right"]].set_visible(False)
            if title == "loss" and len(columns) == 2:
                ax.set_title("loss: train (dashed), validation (solid)", fontsize=7)
        # the dots mark the epoch each fold kept, on validation curves only (none without a validation split)
        axes[-1].legend(fontsize=6, frameon=False, title="● best epoch" if dots else None, title_fontsize=6)
        return self


class MetricsTableDisplay(Display):
    """The cross-validated metrics (``metrics.csv``: folds, then mean and SD) drawn as a table.

    Attributes
    ----------
    rows : list of tuple
        (metric name, per-fold values as text, "mean ± SD", explanation-set value as text or None).
    folds : list of str
    figure_, ax_ : set by `plot`.
    """

    def __init__(self, rows, folds, headers=None):
        self.rows, self.folds = rows, folds
        self.headers = headers or [f"Fold {f}" for f in folds]
        self.held_out = any(row[3] is not None for row in rows)

    @classmethod
    def from_table(cls, metrics):
        """Read ``metrics.csv``: a ``fold`` column with 1..k then ``mean`` and ``sd`` (and ``explanation_set``
        when the run held one out), one column per metric. The mean and SD are taken from the table, not
        recomputed."""
        check_columns(metrics, ("fold",), "metrics table")
        table = metrics.assign(fold=metrics["fold"].astype(str)).set_index("fold")
        folds = [f for f in table.index if f not in ("mean", "sd", "explanation_set")]
        columns = [c for c in METRIC_NAMES if c in table.columns]
        columns += [c for c in table.columns if c not in METRIC_NAMES and c != "site"]
        # leave-one-site-out: each fold is a site, and the header says which
        headers = [f"Site {table.at[f, 'site']}" for f in folds] if "site" in table.columns else None
        rows = []
        for column in columns:
            values = [f"{table.at[f, column]:.3f}" for f in folds]
            summary = (
                f"{table.at['mean', column]:.3f} ± {table.at['sd', column]:.3f}"
                if {"mean", "sd"} <= set(table.index)
                else ""
            )
            held = f"{table.at['explanation_set', column]:.3f}" if "explanation_set" in table.index else None
            rows.append((METRIC_NAMES.get(column, column), values, summary, held))
        return cls(rows, folds, headers)

    def plot(self, ax=None):
        import matplotlib.pyplot as plt

        n_cols = len(self.folds) + 2 + self.held_out
        if ax is None:
            width = 1.15 + 0.62 * len(self.folds) + 1.1 + 0.9 * self.held_out
            _, ax = plt.subplots(figsize=(min(width, 7.2), 0.35 + 0.24 * len(self.rows)))
        self.figure_, self.ax_ = ax.figure, ax
        ax.axis("off")
        cells = [
            [name, *values, summary, *([held] if self.held_out else [])] for name, values, summary, held in self.rows
        ]
        header = [
            "Metric",
            *self.headers,
            "Mean ± SD",
            *(["Explanation set"] if self.held_out else []),
        ]
        table = ax.table(cellText=cells, colLabels=header, loc="center", cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(7)
        table.auto_set_column_width(list(range(n_cols)))
        for (r, c), cell in table.get_celld().items():
            cell.set_linewidth(0.3)
            if r == 0:
                cell.set_text_props(fontweight="bold")
                cell.set_facecolor("#e8e8e8")
            if c == 0 and r > 0:
                cell.set_text_props(ha="left")
            if c == len(self.folds) + 1 and r > 0:
                cell.set_text_props(fontweight="bold")
        return self
