"""Reliability diagram of a run's out-of-fold probabilities, with its Brier score."""

from __future__ import annotations

import numpy as np

from migtrans.training import brier_score, reliability_table
from migtrans.validation import check_columns

from ._display import Display


class ReliabilityDisplay(Display):
    """Predicted probability of the positive class against the observed share of positives, in bins of equal
    count, with 95% Wilson intervals; the diagonal is perfect calibration.

    Attributes
    ----------
    table : DataFrame
        `migtrans.training.reliability_table` of the predictions (``attrs["ece"]``).
    brier : float
        Brier score of the predictions; ``brier_reference`` that of always predicting the case share.
    n : int
    figure_, ax_ : set by `plot`.
    """

    def __init__(self, table, brier, brier_reference, n):
        self.table, self.brier, self.brier_reference, self.n = table, brier, brier_reference, n

    @classmethod
    def from_predictions(cls, predictions, *, n_bins=10):
        """Read ``predictions.csv`` (``label`` in {0, 1}, ``prob_positive``); rows without a label are left out."""
        check_columns(predictions, ("label", "prob_positive"), "predictions table")
        rows = predictions.dropna(subset=["label", "prob_positive"])
        labels = rows["label"].astype(int).to_numpy()
        prob = rows["prob_positive"].to_numpy(dtype=float)
        share = labels.mean() if len(labels) else np.nan
        table = reliability_table(labels, prob, n_bins=n_bins)
        return cls(table, brier_score(labels, prob), float(share * (1 - share)), len(labels))

    def plot(self, ax=None):
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(3.6, 3.6), layout="constrained")
        self.figure_, self.ax_ = ax.figure, ax
        t = self.table
        ax.plot([0, 1], [0, 1], ls="--", color="0.5", lw=0.8, label="calibrated")
        ax.errorbar(
            t["mean_predicted"],
            t["observed"],
            yerr=[t["observed"] - t["low"], t["high"] - t["observed"]],
            fmt="o-",
            color="k",
            ms=3.5,
            lw=1,
            capsize=2,
            label=f"{len(t)} bins of ~{self.n // max(1, len(t))} subjects",
        )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel("Predicted probability (positive class)", fontsize=8)
        ax.set_ylabel("Observed share of positives", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.text(
            0.97,
            0.03,
            f"Brier {self.brier:.3f} (case share alone {self.brier_reference:.3f})\nECE {t.attrs['ece']:.3f}",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
        )
        ax.legend(fontsize=6, loc="upper left", frameon=False)
        return self
