"""Genetic principal components of the cohort (``ancestry.csv``): PC scatters coloured by site, marked by
diagnosis, so a reader sees at once whether ancestry and scanner or diagnosis go together."""

from __future__ import annotations

import numpy as np

from migtrans.exceptions import ParameterError
from migtrans.validation import check_columns

from ._display import Display

_MARKERS = ("o", "^", "s", "D")


class AncestryDisplay(Display):
    """PC1 against PC2 (and PC3 against PC4 when there are four), one colour per site and one marker per label;
    with a single site, one colour per label.

    Attributes
    ----------
    pcs : ndarray (n, k)
    sites, labels : ndarray of str
    figure_, axes_ : set by `plot`.
    """

    def __init__(self, pcs, sites, labels):
        self.pcs, self.sites, self.labels = pcs, sites, labels

    @classmethod
    def from_table(cls, ancestry):
        """Read ``ancestry.csv``: ``label_name``, ``site`` and ``PC1..PCk`` (k >= 2)."""
        check_columns(ancestry, ("label_name",), "ancestry table")
        columns = [c for c in ancestry.columns if c.startswith("PC") and c[2:].isdigit()]
        columns.sort(key=lambda c: int(c[2:]))
        if len(columns) < 2:
            raise ParameterError(f"ancestry table: expected at least PC1 and PC2, found {columns}")
        sites = ancestry["site"].fillna("").astype(str).to_numpy() if "site" in ancestry else np.full(len(ancestry), "")
        return cls(ancestry[columns].to_numpy(float), sites, ancestry["label_name"].astype(str).to_numpy())

    def plot(self, ax=None):
        fig = self._as_figure(ax)
        import matplotlib.pyplot as plt

        pairs = [(0, 1)] + ([(2, 3)] if self.pcs.shape[1] >= 4 else [])
        if fig is None:
            fig = plt.figure(figsize=(3.3 * len(pairs) + 1.2, 3.2), layout="constrained")
        axes = fig.subplots(1, len(pairs), squeeze=False)[0]
        self.figure_, self.axes_ = fig, list(axes)
        sites = list(dict.fromkeys(sorted(self.sites)))
        labels = list(dict.fromkeys(sorted(self.labels)))
        colors = plt.get_cmap("tab10")
        by_label = len(sites) == 1  # nothing to tell apart by colour but the labels
        for ax, (i, j) in zip(axes, pairs):
            for s, site in enumerate(sites):
                for m, label in enumerate(labels):
                    rows = (self.sites == site) & (self.labels == label)
                    if not rows.any():
                        continue
                    name = f"{site + ', ' if site else ''}{label}"
                    ax.scatter(
                        self.pcs[rows, i],
                        self.pcs[rows, j],
                        s=9,
                        marker=_MARKERS[m % len(_MARKERS)],
                        color=colors((m if by_label else s) % 10),
                        alpha=0.6,
                        linewidths=0,
                        label=name,
                    )
            ax.set_xlabel(f"PC{i + 1}", fontsize=8)
            ax.set_ylabel(f"PC{j + 1}", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.spines[["top", "right"]].set_visible(False)
        axes[-1].legend(fontsize=6, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
        return self
