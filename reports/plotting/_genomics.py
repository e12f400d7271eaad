"""Genomics figures drawn from ``snps.csv`` and ``loci.csv``: Manhattan, QQ and regional plots.

Every number shown comes from the tables; the only arithmetic here is display arithmetic (-log10, genome
offsets, plotting positions and the QQ confidence band)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from migtrans.exceptions import ParameterError
from migtrans.validation import check_columns

from ._display import Display
from ._genome import GenomeAxis, normalise_chromosome
from ._labels import place_labels

# What each p column is, in words for panel titles and captions.
P_COLUMN_TITLES = {"p_perm": "Model: permutation p (p_perm)", "p_assoc": "Classical: association p (p_assoc)"}
# The family-wise column that goes with a p column, when the table has one.
FWER_COLUMNS = {"p_perm": "p_fwer", "p_assoc": "p_fwer_assoc"}
MODEL_COLORS = ("#1f3f73", "#6f9fd8")
CLASSICAL_COLORS = ("#3c3c3c", "#a5a5a5")
HIGHLIGHT = "#d62728"
# SNPs of a user's highlight list: a colour none of the panels use, drawn as diamonds
MARKED = "#f28e2b"


def significance_threshold(p, p_fwer=None, *, alpha=0.05):
    """Genome-wide significance line for one panel of p-values.

    Parameters
    ----------
    p : array-like
        The panel's p-values; NaNs are ignored.
    p_fwer : array-like or None
        Family-wise adjusted p-values of the same features (max-T), if the table has them.
    alpha : float, default=0.05
        Family-wise error rate.

    Returns
    -------
    threshold : float
        With ``p_fwer``, and at least one feature with ``p_fwer <= alpha``: the geometric mean of the largest
        p among those features and the smallest p among the others that is not below it (the two neighbours
        across the boundary; the same value when they tie). Otherwise Bonferroni ``alpha / m``, with ``m``
        the number of non-missing p-values. NaN when there are none.
    rule : str
        How the threshold was obtained, in words.

    Examples
    --------
    >>> t, rule = significance_threshold([1e-6, 1e-4, 0.5], [0.01, 0.2, 1.0])
    >>> round(float(t), 8), rule
    (1e-05, 'family-wise 0.05 (boundary of p_fwer <= 0.05)')
    >>> significance_threshold([0.01, 0.5])
    (0.025, 'Bonferroni 0.05/m (m = 2)')
    """
    p = np.asarray(p, dtype=float)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return float("nan"), "no p-values"
    if p_fwer is not None:
        pv, fwer = p[ok], np.asarray(p_fwer, dtype=float)[ok]
        significant = fwer <= alpha  # NaN compares False: not significant
        if significant.any():
            a = pv[significant].max()
            above = pv[~significant & (pv >= a)]
            b = above.min() if above.size else a
            return float(np.sqrt(a * b)), f"family-wise {alpha:g} (boundary of p_fwer <= {alpha:g})"
    return alpha / m, f"Bonferroni {alpha:g}/m (m = {m})"


def _p_floor(p, column, n_permutations):
    """Smallest value a p of this panel is shown at: p = 0 is drawn at the panel's maximum, never at inf."""
    positive = p[np.isfinite(p) & (p > 0)]
    candidates = [positive.min()] if positive.size else []
    if column == "p_perm" and n_permutations:
        candidates.append(1.0 / (n_permutations + 1))
    return float(min(candidates)) if candidates else float(np.finfo(float).tiny)


def _clean_p(values, column, n_permutations):
    """(finite mask, p with zeros raised to the floor and values above 1 set to 1, number raised)."""
    p = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(p)
    floor = _p_floor(p, column, n_permutations)
    raised = ok & (p < floor)
    p = np.where(raised, floor, np.minimum(p, 1.0))
    return ok, p, int(raised.sum())


def gene_label(genes, fallback="", max_genes=2):
    """Short label from a ``;``-separated gene list: at most ``max_genes`` names joined by ``/``.

    Examples
    --------
    >>> gene_label("AC058822.1;LNX1"), gene_label(float("nan"), "rs1"), gene_label("A;B;C")
    ('AC058822.1/LNX1', 'rs1', 'A/B/…')
    """
    if not isinstance(genes, str) or not genes.strip():
        return str(fallback)
    names = [g.strip() for g in genes.split(";") if g.strip()]
    return "/".join(names[:max_genes]) + ("/…" if len(names) > max_genes else "")


def highlight_mask(snps, names):
    """The rows of a SNP table named by a highlight list: by SNP id, or by a gene they are annotated to.

    Parameters
    ----------
    snps : pandas.DataFrame
        ``snp`` and/or ``gene`` (a ``;``-separated list per SNP); rows lacking both are never matched.
    names : sequence of str
        SNP ids and gene symbols, matched without regard to case.

    Returns
    -------
    mask : ndarray of bool, shape (len(snps),)
        Rows whose ``snp`` is listed or whose ``gene`` list holds a listed gene.
    unknown : list of str
        The names, as given, that match no SNP id and no gene of the table.

    Examples
    --------
    >>> table = pd.DataFrame({"snp": ["rs1", "rs2", "rs3"], "gene": ["APOE", "TOMM40;APOE", ""]})
    >>> mask, unknown = highlight_mask(table, ["apoe", "rs3", "BDNF"])
    >>> mask.tolist(), unknown
    ([True, True, True], ['BDNF'])
    """
    wanted = {str(n).casefold() for n in names}
    ids = snps["snp"].fillna("").astype(str).str.casefold() if "snp" in snps else pd.Series("", index=snps.index)
    by_id = ids.isin(wanted).to_numpy()
    genes = [
        {g.strip().casefold() for g in v.split(";") if g.strip()} if isinstance(v, str) else set()
        for v in (snps["gene"] if "gene" in snps else [None] * len(snps))
    ]
    by_gene = np.array([bool(g & wanted) for g in genes], dtype=bool)
    found = set(ids[by_id]) | (set().union(*genes) & wanted if genes else set())
    return by_id | by_gene, [n for n in names if str(n).casefold() not in found]


def highlight_warning(unknown, n_names) -> str:
    """The one line that reports names of a highlight list found nowhere in ``snps.csv``.

    Examples
    --------
    >>> highlight_warning(["BDNF"], 3)
    'highlight: 1 of 3 names match no SNP id or gene of snps.csv and are not marked: BDNF'
    """
    shown = ", ".join(map(str, unknown[:10])) + (f", ... ({len(unknown) - 10} more)" if len(unknown) > 10 else "")
    return (
        f"highlight: {len(unknown)} of {n_names} names match no SNP id or gene of snps.csv and are not marked: {shown}"
    )


@dataclass
class ManhattanPanel:
    """The drawable content of one Manhattan panel (one p column)."""

    column: str
    title: str
    x: np.ndarray
    logp: np.ndarray
    chrom_index: np.ndarray
    threshold: float
    threshold_rule: str
    suggestive: float
    n_features: int
    n_dropped: int
    n_raised: int
    label_x: np.ndarray
    label_logp: np.ndarray
    label_text: list
    floor: float = float("nan")
    marked: np.ndarray | None = None  # points of the highlight list (aligned with x); None without a list


class ManhattanDisplay(Display):
    """Manhattan plot: one panel per p column (model permutation p, classical association p), shared x axis.

    Build it with `from_table`, then draw with `plot`; the statistics are read, never recomputed.

    Attributes
    ----------
    panels : list of ManhattanPanel
        Per panel: cumulative x, -log10 p, the significance threshold and its rule, the suggestive line
        (1/m: one false positive expected per scan, Lander & Kruglyak 1995), counts of dropped (NaN) and
        raised (p = 0) values, and the labelled loci.
    axis : GenomeAxis
        Chromosomes present, in natural order, with their offsets and lengths.
    n_dropped : dict of str to int
        Number of NaN p-values left out, per p column.
    n_unplaced : int
        Rows without a usable chromosome or position (not drawn in any panel).
    figure_, axes_, ax_ : matplotlib objects
        Set by `plot`: the figure, the panel axes, and the first panel.
    highlight : tuple of str
        The highlight list given (SNP ids and gene symbols); empty without one.
    highlighted : list of str
        SNP ids (or row numbers, without a ``snp`` column) of the placed SNPs the list marks, in table order.
    highlight_unknown : list of str
        Names of the list that match no SNP id and no gene of the table (a `UserWarning` says so).
    labels_ : list of matplotlib.text.Text
        Set by `plot`: the locus labels of every panel.
    highlights_ : list
        Set by `plot`: per panel, the scatter of the highlighted SNPs (None where the panel has none).
    """

    def __init__(self, panels, axis, n_unplaced=0, build="GRCh37", highlight=(), highlighted=(), unknown=()):
        self.panels = panels
        self.axis = axis
        self.n_unplaced = n_unplaced
        self.build = build
        self.n_dropped = {p.column: p.n_dropped for p in panels}
        self.highlight = tuple(highlight)
        self.highlighted = list(highlighted)
        self.highlight_unknown = list(unknown)

    @classmethod
    def from_table(
        cls,
        snps,
        *,
        columns=("p_perm", "p_assoc"),
        build="GRCh37",
        n_permutations=None,
        alpha=0.05,
        n_labels=5,
        highlight=None,
    ):
        """Read the per-SNP table (``snps.csv``).

        Parameters
        ----------
        snps : pandas.DataFrame
            Needs ``chrom``, ``pos`` and at least one of ``columns``; uses ``p_fwer`` and ``p_fwer_assoc``
            (family-wise thresholds of the ``p_perm`` and ``p_assoc`` panels), ``locus``, ``gene``,
            ``snp`` and ``stat`` (to break ties between equal p when choosing labels) when present.
            Chromosomes may be named with or without ``chr``; any order.
        columns : sequence of str, default=("p_perm", "p_assoc")
            The p columns to draw, one panel each, top to bottom; absent columns are skipped.
        build : {"GRCh37", "GRCh38"}
            Reference chromosome lengths for the x offsets (a chromosome whose largest position exceeds the
            reference length uses that position instead).
        n_permutations : int or None
            B of the permutation test; ``p_perm = 0`` is then shown at 1/(B+1).
        alpha : float, default=0.05
            Family-wise level of the significance line (see `significance_threshold`).
        n_labels : int, default=5
            Loci labelled per panel: those with the smallest p (ties by larger ``|stat|``), named by the gene of
            their lead SNP (or the SNP id).
        highlight : sequence of str or None
            SNP ids and gene symbols to mark (see `highlight_mask`): the listed SNPs and every SNP annotated to a
            listed gene. Names found nowhere in the table are reported by a `UserWarning`, not an error.

        Returns
        -------
        ManhattanDisplay

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> snps = pd.DataFrame({"snp": [f"rs{i}" for i in range(9)], "chrom": ["1", "2", "3"] * 3,
        ...                      "pos": np.arange(9) * 1000 + 1, "gene": ["A", "B", "C"] * 3,
        ...                      "p_assoc": rng.uniform(size=9)})
        >>> ManhattanDisplay.from_table(snps, highlight=["B", "rs0"]).highlighted
        ['rs0', 'rs1', 'rs4', 'rs7']
        """
        check_columns(snps, ("chrom", "pos"), "snps table")
        present = [c for c in columns if c in snps.columns]
        if not present:
            raise ParameterError(f"snps table: expected at least one p column of {list(columns)}, found none")
        table = snps.copy()
        table["_chrom"] = [normalise_chromosome(c) if pd.notna(c) and str(c).strip() else "" for c in table["chrom"]]
        table["_pos"] = pd.to_numeric(table["pos"], errors="coerce")
        placed = (table["_chrom"] != "") & table["_pos"].notna()
        n_unplaced = int((~placed).sum())
        names = [] if highlight is None else [str(n) for n in highlight]
        marked_all, unknown = highlight_mask(table, names) if names else (np.zeros(len(table), bool), [])
        if unknown:
            warnings.warn(highlight_warning(unknown, len(names)), UserWarning, stacklevel=2)
        marked = marked_all[placed.to_numpy()]
        table = table[placed].reset_index(drop=True)
        highlighted = list(table["snp"][marked]) if "snp" in table else [str(i) for i in np.flatnonzero(marked)]
        axis = GenomeAxis.from_positions(table["_chrom"], table["_pos"], build=build)
        x_all = axis.x(table["_chrom"], table["_pos"])
        index_of = {c: i for i, c in enumerate(axis.chromosomes)}
        chrom_index = table["_chrom"].map(index_of).to_numpy()
        if "locus" in table.columns:
            groups = table["locus"].astype("string").fillna(table.get("snp", pd.Series(table.index)).astype(str))
        elif "gene" in table.columns:
            groups = table["gene"].astype("string").fillna("")
        else:
            groups = pd.Series(np.arange(len(table)).astype(str))
        strength = -pd.to_numeric(table["stat"], errors="coerce").abs().fillna(0) if "stat" in table else 0.0

        panels = []
        for column in present:
            ok, p, n_raised = _clean_p(table[column], column, n_permutations)
            fwer_col = FWER_COLUMNS.get(column)
            fwer = table[fwer_col].to_numpy(dtype=float) if fwer_col in table.columns else None
            threshold, rule = significance_threshold(np.where(ok, p, np.nan), fwer, alpha=alpha)
            m = int(ok.sum())
            order = pd.DataFrame({"p": p, "strength": strength, "x": x_all, "group": groups})[ok]
            order = order.sort_values(["p", "strength", "x"], kind="mergesort")
            leads = order.drop_duplicates("group").head(n_labels).index.to_numpy()
            texts = [
                gene_label(
                    table["gene"].iloc[i] if "gene" in table else None,
                    table["snp"].iloc[i] if "snp" in table else f"chr{table['_chrom'].iloc[i]}",
                )
                for i in leads
            ]
            panels.append(
                ManhattanPanel(
                    column=column,
                    title=P_COLUMN_TITLES.get(column, column),
                    x=x_all[ok],
                    logp=-np.log10(p[ok]),
                    chrom_index=chrom_index[ok],
                    threshold=threshold,
                    threshold_rule=rule,
                    suggestive=1.0 / m if m else float("nan"),
                    n_features=m,
                    n_dropped=int((~ok).sum()),
                    n_raised=n_raised,
                    label_x=x_all[leads],
                    label_logp=-np.log10(p[leads]),
                    label_text=texts,
                    floor=1.0 / (n_permutations + 1) if column == "p_perm" and n_permutations else float("nan"),
                    marked=marked[ok] if names else None,
                )
            )
        return cls(
            panels, axis, n_unplaced=n_unplaced, build=build, highlight=names, highlighted=highlighted, unknown=unknown
        )

    @property
    def highlight_found(self):
        """The names of the highlight list that mark at least one SNP of the table, as given."""
        unknown = set(self.highlight_unknown)
        return [n for n in self.highlight if n not in unknown]

    @property
    def tick_positions(self):
        """Chromosome centres on the cumulative axis, in natural order."""
        return self.axis.centres

    @property
    def tick_labels(self):
        return list(self.axis.chromosomes)

    def plot(self, ax=None, *, point_size=3.0, label=True, label_fontsize=6.5, tick_fontsize=6.5):
        """Draw the panels.

        Parameters
        ----------
        ax : sequence of matplotlib.axes.Axes or None
            One axes per panel, sharing x, with a fixed layout (labels are placed in display space). New
            figure when None.
        point_size : float, default=3
            Marker area in points^2 (dense scans stay readable; the scatter is rasterized in vector output).
        label : bool, default=True
            Label the top loci of each panel.
        label_fontsize, tick_fontsize : float
            Font sizes of the locus labels and chromosome ticks.

        Returns
        -------
        self
        """
        axes = ax
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D

        n = len(self.panels)
        if axes is None:
            fig, axes = plt.subplots(n, 1, sharex=True, figsize=(7.2, 1.1 + 2.1 * n), squeeze=False)
            axes = axes[:, 0]
            fig.subplots_adjust(
                left=0.085, right=0.99, bottom=0.09 if n > 1 else 0.16, top=0.9 if n > 1 else 0.82, hspace=0.32
            )
        axes = list(np.atleast_1d(axes))
        if len(axes) != n:
            raise ParameterError(f"ax: expected {n} axes (one per panel), found {len(axes)}")
        self.figure_, self.axes_, self.ax_ = axes[0].figure, axes, axes[0]
        self.labels_, self.highlights_ = [], []
        for ax, panel in zip(axes, self.panels):
            colors = np.array(MODEL_COLORS if panel.column == "p_perm" else CLASSICAL_COLORS)
            c = colors[panel.chrom_index % 2]
            thr = -np.log10(panel.threshold) if np.isfinite(panel.threshold) else np.nan
            sug = -np.log10(panel.suggestive) if np.isfinite(panel.suggestive) else np.nan
            hit = panel.logp >= thr if np.isfinite(thr) else np.zeros(panel.logp.shape, bool)
            ax.scatter(panel.x[~hit], panel.logp[~hit], s=point_size, c=c[~hit], linewidths=0, rasterized=True)
            ax.scatter(panel.x[hit], panel.logp[hit], s=point_size * 2.5, c=HIGHLIGHT, linewidths=0, rasterized=True)
            handles = []
            if np.isfinite(thr):
                ax.axhline(thr, color=HIGHLIGHT, lw=0.8, ls="--")
                handles.append(
                    Line2D(
                        [],
                        [],
                        color=HIGHLIGHT,
                        lw=0.8,
                        ls="--",
                        label=f"{panel.threshold_rule.split(' (')[0]} (p = {panel.threshold:.2g})",
                    )
                )
            if np.isfinite(sug):
                ax.axhline(sug, color="#2b7bba", lw=0.8, ls=":")
                handles.append(
                    Line2D(
                        [], [], color="#2b7bba", lw=0.8, ls=":", label=f"suggestive 1/m (p = {panel.suggestive:.2g})"
                    )
                )
            if np.isfinite(panel.floor):
                # With B permutations no p_perm can be below 1/(B+1): say so, or an empty band under a
                # Bonferroni line reads as "nothing found" rather than "nothing findable".
                ax.axhline(-np.log10(panel.floor), color="0.55", lw=0.6, ls="-.")
                handles.append(
                    Line2D(
                        [],
                        [],
                        color="0.55",
                        lw=0.6,
                        ls="-.",
                        label=f"smallest attainable 1/(B+1) (p = {panel.floor:.2g})",
                    )
                )
            marked = panel.marked if panel.marked is not None else np.zeros(panel.x.shape, bool)
            self.highlights_.append(None)
            if marked.any():
                # the user's list on top of everything, and last in the legend (its names are in the caption)
                self.highlights_[-1] = ax.scatter(
                    panel.x[marked],
                    panel.logp[marked],
                    s=point_size * 6,
                    c=MARKED,
                    marker="D",
                    edgecolors="k",
                    linewidths=0.35,
                    zorder=3,
                    rasterized=True,
                )
                handles.append(
                    Line2D(
                        [],
                        [],
                        marker="D",
                        ls="",
                        color=MARKED,
                        markeredgecolor="k",
                        markeredgewidth=0.35,
                        markersize=3.5,
                        label=f"highlighted ({int(marked.sum())} SNPs)",
                    )
                )
            top = np.nanmax([panel.logp.max() if panel.logp.size else 0.0, thr, sug, 1.0])
            ax.set_ylim(0, top * 1.08)
            ax.set_xlim(0, self.axis.total)
            # The panel is named on its y axis, which leaves the full width above it for the line legend.
            ax.set_ylabel(
                f"{P_COLUMN_TITLES.get(panel.column, panel.column).split(':')[0]}\n"
                rf"$-\log_{{10}}$ {panel.column}",
                fontsize=8,
            )
            ax.tick_params(labelsize=7)
            ax.tick_params(axis="x", labelsize=tick_fontsize, length=2, pad=1.5)
            ax.spines[["top", "right"]].set_visible(False)
            if handles:
                ax.legend(
                    handles=handles,
                    loc="lower left",
                    bbox_to_anchor=(0.0, 1.0),
                    ncol=len(handles),
                    fontsize=6,
                    frameon=False,
                    borderaxespad=0.1,
                    handlelength=2.2,
                    columnspacing=1.2,
                )
        self._set_chromosome_ticks(axes[-1], tick_fontsize)
        for ax in axes[:-1]:
            ax.tick_params(axis="x", labelbottom=False)
        axes[-1].set_xlabel("Chromosome", fontsize=8)
        if label:
            for ax, panel in zip(axes, self.panels):
                labels, _ = place_labels(
                    ax, panel.label_x, panel.label_logp, panel.label_text, fontsize=label_fontsize, style="italic"
                )
                self.labels_.extend(labels)
        return self

    def _set_chromosome_ticks(self, ax, fontsize):
        """A tick at every chromosome centre; a label is left out where it would collide with the previous
        one (short chromosomes such as 21, 22 and MT at the right end)."""
        centres = self.tick_positions
        names = self.tick_labels
        ax.set_xticks(centres)
        fig = ax.figure
        width_pt = ax.get_position().width * fig.get_figwidth() * 72
        pt_per_bp = width_pt / max(self.axis.total, 1)
        shown, last_right = [], -np.inf
        for centre, name in zip(centres, names):
            half = 0.3 * fontsize * len(name) + 0.8  # approximate half-width of the label in points
            left = centre * pt_per_bp - half
            if left >= last_right:
                shown.append(name)
                last_right = centre * pt_per_bp + half
            else:
                shown.append("")
        ax.set_xticklabels(shown)


class QQDisplay(Display):
    """Quantile-quantile plot of p-values against the uniform, with a pointwise confidence band and lambda.

    Attributes
    ----------
    panels : list of dict
        Per p column: ``column``, ``expected`` and ``observed`` (-log10, ascending p), ``lower``/``upper``
        (the band), ``lambda_gc`` and ``lambda_source``, ``n`` and ``n_dropped``.
    confidence : float
    figure_, axes_, ax_ : set by `plot`.
    """

    def __init__(self, panels, confidence=0.95):
        self.panels = panels
        self.confidence = confidence

    @classmethod
    def from_table(cls, table, *, columns=("p_assoc", "p_perm"), lambda_gc=None, n_permutations=None, confidence=0.95):
        """Read p columns of a table (``snps.csv``).

        Parameters
        ----------
        table : pandas.DataFrame
        columns : sequence of str, default=("p_assoc", "p_perm")
            One panel each; absent columns are skipped.
        lambda_gc : float or None
            Genomic inflation of ``p_assoc`` as computed by the analysis (``settings.json``); shown as is.
            For any other column, or when None, lambda is shown as computed from the column for display only:
            median(chi2.isf(p, 1)) / chi2.ppf(0.5, 1).
        n_permutations : int or None
            B, so that ``p_perm = 0`` is shown at 1/(B+1).
        confidence : float, default=0.95
            Coverage of the pointwise band: quantiles of Beta(i, n - i + 1), the law of the i-th smallest of
            n uniform p-values.
        """
        from scipy import stats

        present = [c for c in columns if c in table.columns]
        if not present:
            raise ParameterError(f"table: expected at least one p column of {list(columns)}, found none")
        panels = []
        for column in present:
            ok, p, _ = _clean_p(table[column], column, n_permutations)
            obs = np.sort(p[ok])
            n = obs.size
            i = np.arange(1, n + 1)
            tail = (1 - confidence) / 2
            if column == "p_assoc" and lambda_gc is not None and np.isfinite(lambda_gc):
                lam, source = float(lambda_gc), "from the analysis"
            elif n:
                lam = float(np.median(stats.chi2.isf(obs, 1)) / stats.chi2.ppf(0.5, 1))
                source = "computed from this column for display"
            else:
                lam, source = float("nan"), "no p-values"
            panels.append(
                {
                    "column": column,
                    "n": n,
                    "n_dropped": int((~ok).sum()),
                    "expected": -np.log10(i / (n + 1)),
                    "observed": -np.log10(obs),
                    "lower": -np.log10(stats.beta.ppf(1 - tail, i, n - i + 1)),
                    "upper": -np.log10(stats.beta.ppf(tail, i, n - i + 1)),
                    "lambda_gc": lam,
                    "lambda_source": source,
                }
            )
        return cls(panels, confidence)

    def plot(self, ax=None, *, point_size=4.0):
        """Draw one square panel per p column. Returns self."""
        axes = ax
        import matplotlib.pyplot as plt

        n = len(self.panels)
        if axes is None:
            fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.5), squeeze=False, layout="constrained")
            axes = axes[0]
        axes = list(np.atleast_1d(axes))
        self.figure_, self.axes_, self.ax_ = axes[0].figure, axes, axes[0]
        for ax, panel in zip(axes, self.panels):
            color = MODEL_COLORS[0] if panel["column"] == "p_perm" else CLASSICAL_COLORS[0]
            e = panel["expected"]
            # The band is smooth: ~2000 vertices (all of the 1000 smallest p, log-spaced beyond) draw it exactly
            # and keep vector files small for 100k-SNP scans.
            n = panel["n"]
            keep = (
                np.unique(np.concatenate([np.arange(min(n, 1000)), np.geomspace(1, max(n, 1), 1000).astype(int) - 1]))
                if n
                else []
            )
            ax.fill_between(
                e[keep],
                panel["lower"][keep],
                panel["upper"][keep],
                color="0.85",
                lw=0,
                label=f"{self.confidence:.0%} band",
            )
            lim = max(e.max() if e.size else 1.0, panel["observed"].max() if panel["n"] else 1.0) * 1.05
            ax.plot([0, lim], [0, lim], color="0.3", lw=0.8)
            ax.scatter(e, panel["observed"], s=point_size, c=color, linewidths=0, rasterized=True)
            ax.set_xlim(0, lim)
            ax.set_ylim(0, lim)
            ax.set_aspect("equal")
            ax.set_xlabel(r"expected $-\log_{10}\,p$", fontsize=8)
            ax.set_ylabel(r"observed $-\log_{10}\,p$", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.set_title(P_COLUMN_TITLES.get(panel["column"], panel["column"]), fontsize=8)
            ax.text(
                0.04,
                0.96,
                f"λ = {panel['lambda_gc']:.3f}\nn = {panel['n']}",
                transform=ax.transAxes,
                va="top",
                ha="left",
                fontsize=7,
            )
            ax.legend(loc="lower right", fontsize=6, frameon=False)
            ax.spines[["top", "right"]].set_visible(False)
        return self


class RegionalDisplay(Display):
    """-log10 p of the SNPs in and around one locus (by default the rank-1 locus), with a gene track.

    Attributes
    ----------
    locus : str
        The locus shown; ``chrom``, ``start``, ``end``, ``lead_snp`` and ``genes`` describe it.
    window : tuple of int
        Base-pair range shown.
    snps : pandas.DataFrame
        The SNPs in the window: ``pos``, ``in_locus``, ``is_lead`` and one ``logp_<column>`` per panel.
    genes : pandas.DataFrame
        ``gene``, ``start``, ``end``: the span of the SNPs annotated to each gene in the window (the tables
        carry no gene coordinates).
    columns : list of str
    figure_, axes_, ax_ : set by `plot`.
    """

    def __init__(self, locus, chrom, start, end, lead_snp, genes_text, window, snps, genes, columns):
        self.locus, self.chrom, self.start, self.end = locus, chrom, start, end
        self.lead_snp, self.genes_text, self.window = lead_snp, genes_text, window
        self.snps, self.genes, self.columns = snps, genes, columns

    @classmethod
    def from_tables(
        cls, snps, loci=None, *, locus=None, flank=250_000, columns=("p_perm", "p_assoc"), n_permutations=None
    ):
        """Read ``snps.csv`` (and ``loci.csv``, for the locus bounds and rank).

        Parameters
        ----------
        snps, loci : pandas.DataFrame
            ``snps`` needs ``chrom``, ``pos`` and the p columns; ``locus`` and ``gene`` are used when present.
        locus : str or None
            Locus id to show; the locus ranked first in ``loci`` (or holding the rank-1 SNP) when None.
        flank : int, default=250000
            Base pairs shown on each side of the locus.
        columns : sequence of str
            One panel per p column present.
        n_permutations : int or None
            B, so that ``p_perm = 0`` is shown at 1/(B+1).
        """
        check_columns(snps, ("chrom", "pos"), "snps table")
        present = [c for c in columns if c in snps.columns]
        if not present:
            raise ParameterError(f"snps table: expected at least one p column of {list(columns)}, found none")
        table = snps.copy()
        table["_chrom"] = [normalise_chromosome(c) for c in table["chrom"]]
        if loci is not None and len(loci):
            row = (
                loci.set_index("locus").loc[locus]
                if locus is not None
                else loci.sort_values("rank", kind="mergesort").iloc[0]
                if "rank" in loci
                else loci.iloc[0]
            )
            name = locus if locus is not None else row["locus"]
            chrom, start, end = normalise_chromosome(row["chrom"]), int(row["start"]), int(row["end"])
            lead = row.get("lead_snp", None)
            genes_text = row.get("genes", "")
        else:
            if locus is None:
                first = table.sort_values("rank", kind="mergesort").iloc[0] if "rank" in table else table.iloc[0]
                locus = first["locus"] if "locus" in table else None
            members = table[table["locus"] == locus] if locus is not None else table.iloc[:1]
            name = locus if locus is not None else str(members["snp"].iloc[0])
            chrom = members["_chrom"].iloc[0]
            start, end = int(members["pos"].min()), int(members["pos"].max())
            lead = members.sort_values(present[0])["snp"].iloc[0] if "snp" in members else None
            genes_text = ";".join(
                dict.fromkeys(
                    g for gs in members.get("gene", pd.Series(dtype=str)).dropna() for g in str(gs).split(";")
                )
            )
        window = (max(0, start - flank), end + flank)
        near = table[(table["_chrom"] == chrom) & table["pos"].between(*window)].copy()
        out = pd.DataFrame({"pos": near["pos"].to_numpy(dtype=float)})
        out["in_locus"] = (
            (near["locus"] == name).to_numpy() if "locus" in near else near["pos"].between(start, end).to_numpy()
        )
        out["is_lead"] = (near["snp"] == lead).to_numpy() if "snp" in near and lead is not None else False
        for column in present:
            ok, p, _ = _clean_p(table[column], column, n_permutations)
            logp = pd.Series(np.where(ok, -np.log10(p), np.nan), index=table.index)
            out[f"logp_{column}"] = logp.loc[near.index].to_numpy()
        gene_rows = []
        if "gene" in near:
            for pos, gs in zip(near["pos"], near["gene"]):
                if isinstance(gs, str):
                    gene_rows.extend((g.strip(), pos) for g in gs.split(";") if g.strip())
        genes = (
            pd.DataFrame(gene_rows, columns=["gene", "pos"])
            .groupby("gene", sort=False)["pos"]
            .agg(["min", "max"])
            .rename(columns={"min": "start", "max": "end"})
            .reset_index()
            .sort_values(["start", "gene"], kind="mergesort")
            .reset_index(drop=True)
            if gene_rows
            else pd.DataFrame(columns=["gene", "start", "end"])
        )
        return cls(
            name,
            chrom,
            start,
            end,
            lead,
            genes_text if isinstance(genes_text, str) else "",
            window,
            out,
            genes,
            present,
        )

    def plot(self, ax=None, *, point_size=14.0):
        """Draw one panel per p column and a gene track underneath. Returns self."""
        fig = self._as_figure(ax)
        import matplotlib.pyplot as plt

        n = len(self.columns)
        if fig is None:
            fig = plt.figure(figsize=(6.4, 1.9 * n + 1.3))
        grid = fig.add_gridspec(
            n + 1, 1, height_ratios=[3] * n + [1.4], hspace=0.35, left=0.1, right=0.98, top=0.9, bottom=0.1
        )
        axes = [fig.add_subplot(grid[0])]
        axes += [fig.add_subplot(grid[i], sharex=axes[0]) for i in range(1, n + 1)]
        self.figure_, self.axes_, self.ax_ = fig, axes, axes[0]
        mb = self.snps["pos"].to_numpy() / 1e6
        inside, lead = self.snps["in_locus"].to_numpy(bool), self.snps["is_lead"].to_numpy(bool)
        for ax, column in zip(axes, self.columns):
            y = self.snps[f"logp_{column}"].to_numpy()
            color = MODEL_COLORS[0] if column == "p_perm" else CLASSICAL_COLORS[0]
            ax.axvspan(self.start / 1e6, self.end / 1e6, color="#fdf0d5", lw=0, zorder=0)
            ax.scatter(mb[~inside], y[~inside], s=point_size, c="0.7", linewidths=0, label="outside the locus")
            ax.scatter(mb[inside & ~lead], y[inside & ~lead], s=point_size, c=color, linewidths=0, label="in the locus")
            ax.scatter(
                mb[lead],
                y[lead],
                s=point_size * 3,
                c=HIGHLIGHT,
                marker="D",
                linewidths=0.4,
                edgecolors="k",
                label=f"lead SNP {self.lead_snp}" if self.lead_snp else "lead SNP",
            )
            ax.set_ylim(0, max(np.nanmax(y) if np.isfinite(y).any() else 1.0, 1.0) * 1.15)
            ax.set_ylabel(r"$-\log_{10}\,p$", fontsize=8)
            ax.set_title(P_COLUMN_TITLES.get(column, column), fontsize=8, loc="left", pad=3)
            ax.tick_params(labelsize=7, labelbottom=False)
            ax.spines[["top", "right"]].set_visible(False)
        axes[0].legend(
            fontsize=6, frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3, borderaxespad=0.1
        )
        fig.suptitle(f"Locus {self.locus}; genes: {gene_label(self.genes_text, '—', 4)}", fontsize=8.5, y=0.985)
        track = axes[-1]
        track.set_xlim(self.window[0] / 1e6, self.window[1] / 1e6)
        self._draw_genes(track)
        track.set_xlabel(f"Position on chromosome {self.chrom} (Mb, {len(self.snps)} SNPs shown)", fontsize=8)
        track.tick_params(labelsize=7, labelbottom=True)
        track.set_yticks([])
        track.spines[["top", "right", "left"]].set_visible(False)
        return self

    def _draw_genes(self, ax):
        """Genes as segments over the SNPs annotated to them, packed into rows so that names never overlap."""
        if not len(self.genes):
            ax.text(
                0.5,
                0.5,
                "no annotated genes in the window",
                transform=ax.transAxes,
                ha="center",
                va="center",
                fontsize=7,
                color="0.4",
            )
            return
        fig = ax.figure
        renderer = fig.canvas.get_renderer()
        x0, x1 = ax.get_xlim()
        width_px = ax.get_window_extent(renderer).width
        rows_right = []
        placements = []
        for gene, start, end in self.genes[["gene", "start", "end"]].itertuples(index=False):
            text = ax.text(0, 0, gene, fontsize=6, style="italic", ha="center", va="bottom")
            label_w = text.get_window_extent(renderer).width * (x1 - x0) / width_px
            a, b = start / 1e6, end / 1e6
            centre = (a + b) / 2
            left, right = min(a, centre - label_w / 2), max(b, centre + label_w / 2)
            gap = 0.01 * (x1 - x0)
            row = next((r for r, edge in enumerate(rows_right) if edge + gap < left), None)
            if row is None:
                rows_right.append(right)
                row = len(rows_right) - 1
            else:
                rows_right[row] = right
            placements.append((text, a, b, centre, row))
        n_rows = len(rows_right)
        for text, a, b, centre, row in placements:
            y = n_rows - 1 - row
            ax.plot([a, max(b, a + 1e-4)], [y, y], color="#1b7837", lw=2.5, solid_capstyle="butt")
            text.set_position((centre, y + 0.12))
        ax.set_ylim(-0.5, n_rows - 0.2)
