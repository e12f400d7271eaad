"""How much each modality drives the model (``modalities.csv``), and how faithful the attributions are
(``deletion.csv``: AUC as the top-attributed features are removed, against random features)."""

from __future__ import annotations

import numpy as np

from migtrans.exceptions import ParameterError
from migtrans.validation import check_columns

from ._display import Display

MODALITY_NAMES = {"snp": "SNPs", "fnc": "FNC", "smri": "sMRI"}
MEASURES = {
    "rollout_share": "Attention-rollout share",
    "ig_share": "Integrated-gradients share",
    "ablation_auc_drop": "AUC drop when ablated",
}
MODALITY_COLORS = {"snp": "#1f3f73", "fnc": "#1b9e77", "smri": "#d95f02"}


def _modality_name(m):
    return MODALITY_NAMES.get(m, m)


class ModalityContributionDisplay(Display):
    """Rollout share, IG share and ablation AUC drop of each modality, side by side (one panel per measure).

    Attributes
    ----------
    modalities : list of str
    measures : dict of str to ndarray
        The measures present with at least one value, each one value per modality (NaN where missing).
    figure_, axes_ : set by `plot`.
    """

    def __init__(self, modalities, measures):
        self.modalities, self.measures = modalities, measures

    @classmethod
    def from_table(cls, modalities):
        """Read ``modalities.csv`` (``modality`` and any of ``rollout_share``, ``ig_share``,
        ``ablation_auc_drop``); measures that are empty for every modality (ablation not run) are left out."""
        check_columns(modalities, ("modality",), "modalities table")
        measures = {}
        for column in MEASURES:
            if column in modalities.columns:
                values = modalities[column].astype(float).to_numpy()
                if np.isfinite(values).any():
                    measures[column] = values
        if not measures:
            raise ParameterError(f"modalities table: expected a value in one of {list(MEASURES)}, found none")
        return cls([str(m) for m in modalities["modality"]], measures)

    def plot(self, ax=None):
        fig = self._as_figure(ax)
        import matplotlib.pyplot as plt

        n = len(self.measures)
        if fig is None:
            fig = plt.figure(figsize=(2.4 * n + 0.4, 2.6), layout="constrained")
        axes = fig.subplots(1, n, squeeze=False)[0]
        self.figure_, self.axes_ = fig, list(axes)
        names = [_modality_name(m) for m in self.modalities]
        colors = [MODALITY_COLORS.get(m, "0.5") for m in self.modalities]
        for ax, (column, values) in zip(axes, self.measures.items()):
            x = np.arange(len(values))
            ax.bar(x, np.nan_to_num(values), color=colors, width=0.65)
            for xi, v in zip(x, values):
                text = "n/a" if not np.isfinite(v) else (f"{v:.0%}" if column.endswith("share") else f"{v:+.3f}")
                below = np.isfinite(v) and v < 0
                ax.text(xi, v if np.isfinite(v) else 0, text, ha="center", va="top" if below else "bottom", fontsize=7)
            ax.set_xticks(x, names, fontsize=7)
            ax.set_title(MEASURES[column], fontsize=8)
            ax.tick_params(axis="y", labelsize=7)
            ax.axhline(0, color="0.2", lw=0.6)
            ax.spines[["top", "right"]].set_visible(False)
            if column.endswith("share"):
                ax.set_ylim(0, max(1.0, np.nanmax(values) * 1.15))
                ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
            else:
                top = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 0.1
                top = top if top > 0 else 0.1
                ax.set_ylim(min(-top * 0.2, np.nanmin(values) * 1.6), top * 1.3)
        return self


class DeletionCurveDisplay(Display):
    """Deletion curves: held-out AUC as the most-attributed features of a modality are replaced by the
    baseline, against random features of the same number (mean ± SD over draws), one panel per modality.

    Attributes
    ----------
    curves : dict of str to pandas.DataFrame
        Per modality: ``fraction``, ``n_features``, ``auc_top``, ``auc_random_mean``, ``auc_random_sd``.
    figure_, axes_ : set by `plot`.
    """

    def __init__(self, curves):
        self.curves = curves

    @classmethod
    def from_table(cls, deletion):
        """Read ``deletion.csv`` (written by ``explain``'s faithfulness step)."""
        needed = ("modality", "fraction", "auc_top", "auc_random_mean")
        check_columns(deletion, needed, "deletion table")
        curves = {
            str(m): t.sort_values("fraction").reset_index(drop=True)
            for m, t in deletion.groupby("modality", sort=False)
        }
        return cls(curves)

    def plot(self, ax=None):
        fig = self._as_figure(ax)
        import matplotlib.pyplot as plt

        n = len(self.curves)
        if fig is None:
            fig = plt.figure(figsize=(2.5 * n + 0.4, 2.6), layout="constrained")
        axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
        self.figure_, self.axes_ = fig, list(axes)
        for ax, (modality, t) in zip(axes, self.curves.items()):
            frac = t["fraction"].to_numpy(dtype=float) * 100
            color = MODALITY_COLORS.get(modality, "k")
            ax.plot(frac, t["auc_top"], marker="o", ms=3, color=color, lw=1.2, label="top-attributed removed")
            mean = t["auc_random_mean"].to_numpy(dtype=float)
            sd = t["auc_random_sd"].to_numpy(dtype=float) if "auc_random_sd" in t else np.zeros_like(mean)
            ax.plot(frac, mean, marker="s", ms=2.5, color="0.45", lw=1, ls="--", label="random removed (± SD)")
            ax.fill_between(frac, mean - sd, mean + sd, color="0.6", alpha=0.3, lw=0)
            ax.axhline(0.5, color="0.7", lw=0.6, ls=":")
            # Fractions run from 0 to tens of percent on a roughly geometric grid.
            positive = frac[frac > 0]
            ax.set_xscale("symlog", linthresh=positive.min() if positive.size else 0.1, linscale=0.5)
            ax.set_xlim(0, frac.max() * 1.15 if frac.size and frac.max() > 0 else 1)
            ax.set_xticks(frac, [f"{f:g}" for f in frac], fontsize=6)
            ax.xaxis.set_minor_locator(plt.NullLocator())
            ax.set_xlabel("Features removed (%)", fontsize=8)
            ax.set_title(_modality_name(modality), fontsize=8)
            ax.tick_params(labelsize=7)
            ax.spines[["top", "right"]].set_visible(False)
        axes[0].set_ylabel("Held-out ROC AUC", fontsize=8)
        axes[0].legend(fontsize=6, frameon=False, loc="best")
        return self
