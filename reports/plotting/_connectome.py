"""Functional-connectivity figures from ``connections.csv`` and ``nodes.csv``: the attribution matrix sorted
by domain, the top edges on a glass brain (nilearn) and a circular connectogram grouped by domain."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from migtrans.exceptions import ParameterError
from migtrans.validation import check_columns

from ._display import Display

# Domain order of the NeuroMark template (subcortical, auditory, sensorimotor, visual, cognitive control,
# default mode, cerebellar); other domains follow alphabetically.
NEUROMARK_ORDER = ("SC", "AU", "SM", "VI", "CC", "DM", "CB")
DOMAIN_PALETTE = (
    "#1b9e77",
    "#d95f02",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#e6ab02",
    "#a6761d",
    "#666666",
    "#1f78b4",
    "#b15928",
)
POSITIVE, NEGATIVE = "#b2182b", "#2166ac"


def _natural_key(name):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(name))]


def _domain_key(domain):
    return (NEUROMARK_ORDER.index(domain), "") if domain in NEUROMARK_ORDER else (len(NEUROMARK_ORDER), domain)


def node_order(connections, nodes=None, *, domain_order=None):
    """Nodes sorted by domain, then by name in natural order (``CC2`` before ``CC10``).

    Parameters
    ----------
    connections : pandas.DataFrame
        ``node_i``, ``node_j`` and, when ``nodes`` is None, ``domain_i``, ``domain_j``.
    nodes : pandas.DataFrame or None
        ``node``, ``domain`` (and coordinates); its nodes are all kept, even those in no edge.
    domain_order : sequence of str or None
        Domain order; NeuroMark order (SC, AU, SM, VI, CC, DM, CB) for known names, then the rest
        alphabetically, when None.

    Returns
    -------
    pandas.DataFrame
        ``node``, ``domain`` in display order, with coordinates when ``nodes`` has them.
    """
    if nodes is not None:
        table = nodes.copy()
    else:
        table = pd.concat(
            [
                connections[["node_i", "domain_i"]].set_axis(["node", "domain"], axis=1),
                connections[["node_j", "domain_j"]].set_axis(["node", "domain"], axis=1),
            ]
        )
    table = table.drop_duplicates("node").copy()
    table["domain"] = table["domain"].astype(str)
    if domain_order is not None:
        rank = {d: i for i, d in enumerate(domain_order)}
        unknown = sorted(set(table["domain"]) - set(rank))
        if unknown:
            raise ParameterError(f"domain_order: expected every domain of the node table, found {unknown} missing")
        key = table["domain"].map(rank).to_list()
    else:
        key = [_domain_key(d) for d in table["domain"]]
    table["_key"] = [(k, _natural_key(n)) for k, n in zip(key, table["node"])]
    order = sorted(range(len(table)), key=lambda i: table["_key"].iloc[i])
    return table.iloc[order].drop(columns="_key").reset_index(drop=True)


def domain_colors(domains):
    """One colour per domain, in the order given (the same colours in every connectome figure)."""
    return {d: DOMAIN_PALETTE[i % len(DOMAIN_PALETTE)] for i, d in enumerate(dict.fromkeys(domains))}


def _top_edges(connections, top_k):
    keys = ["rank"] if "rank" in connections.columns else ["p_perm"]
    return connections.sort_values(keys, kind="mergesort").head(top_k).reset_index(drop=True)


def _check(connections, value):
    check_columns(connections, ("node_i", "node_j", value), "connections table")


class FNCMatrixDisplay(Display):
    """The K x K attribution matrix of functional connections, nodes sorted by domain.

    Attributes
    ----------
    matrix : ndarray of shape (K, K)
        Symmetric; NaN on the diagonal and for pairs absent from the table.
    nodes : pandas.DataFrame
        ``node``, ``domain`` in matrix order.
    significant : ndarray of bool, shape (K, K)
        Pairs with ``p_fwer <= alpha`` (all False without a ``p_fwer`` column).
    value, alpha
    figure_, ax_, image_ : set by `plot`.
    """

    def __init__(self, matrix, nodes, significant, value="attribution", alpha=0.05):
        self.matrix, self.nodes, self.significant = matrix, nodes, significant
        self.value, self.alpha = value, alpha

    @classmethod
    def from_tables(cls, connections, nodes=None, *, value="attribution", alpha=0.05, domain_order=None):
        """Read ``connections.csv`` (and ``nodes.csv`` for the node list and domains).

        Parameters
        ----------
        connections : pandas.DataFrame
            One row per edge: ``node_i``, ``node_j``, ``value`` (and ``domain_i``, ``domain_j``, ``p_fwer``).
        nodes : pandas.DataFrame or None
        value : str, default="attribution"
            Column shown in the cells.
        alpha : float, default=0.05
            Edges with ``p_fwer <= alpha`` are outlined.
        domain_order : sequence of str or None
            See `node_order`.
        """
        _check(connections, value)
        order = node_order(connections, nodes, domain_order=domain_order)
        index = {n: i for i, n in enumerate(order["node"])}
        unknown = sorted(set(connections["node_i"]).union(connections["node_j"]) - set(index))
        if unknown:
            raise ParameterError(f"connections table: expected nodes of the node table, found {unknown[:5]}")
        k = len(order)
        matrix = np.full((k, k), np.nan)
        significant = np.zeros((k, k), dtype=bool)
        i = connections["node_i"].map(index).to_numpy()
        j = connections["node_j"].map(index).to_numpy()
        v = connections[value].to_numpy(dtype=float)
        matrix[i, j] = matrix[j, i] = v
        if "p_fwer" in connections.columns:
            sig = connections["p_fwer"].to_numpy(dtype=float) <= alpha
            significant[i[sig], j[sig]] = significant[j[sig], i[sig]] = True
        np.fill_diagonal(matrix, np.nan)
        return cls(matrix, order, significant, value=value, alpha=alpha)

    def plot(self, ax=None, *, cmap="RdBu_r"):
        """Draw the matrix with domain boundaries and labels. Returns self."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5.4, 4.6), layout="constrained")
        self.figure_, self.ax_ = ax.figure, ax
        k = len(self.nodes)
        vmax = np.nanmax(np.abs(self.matrix)) if np.isfinite(self.matrix).any() else 1.0
        self.image_ = ax.imshow(self.matrix, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
        cbar = ax.figure.colorbar(self.image_, ax=ax, shrink=0.8, pad=0.02)
        cbar.set_label(f"{self.value} (edge)", fontsize=8)
        cbar.formatter.set_powerlimits((-2, 3))
        cbar.ax.tick_params(labelsize=7)
        cbar.ax.yaxis.get_offset_text().set_fontsize(7)
        si, sj = np.nonzero(self.significant)
        if si.size:
            ax.scatter(sj, si, s=6, facecolors="none", edgecolors="k", linewidths=0.5, label=f"p_fwer ≤ {self.alpha:g}")
            ax.legend(loc="upper right", bbox_to_anchor=(1.0, 1.08), fontsize=6, frameon=False, handletextpad=0.2)
        domains = self.nodes["domain"].to_numpy()
        colors = domain_colors(domains)
        starts = [0] + [i for i in range(1, k) if domains[i] != domains[i - 1]]
        ends = starts[1:] + [k]
        for s in starts[1:]:
            ax.axhline(s - 0.5, color="k", lw=0.6)
            ax.axvline(s - 0.5, color="k", lw=0.6)
        centres = [(s + e - 1) / 2 for s, e in zip(starts, ends)]
        names = [domains[s] for s in starts]
        for setter in (ax.set_xticks, ax.set_yticks):
            setter(centres)
        ax.set_xticklabels(names, fontsize=7)
        ax.set_yticklabels(names, fontsize=7)
        for label, name in zip(ax.get_xticklabels() + ax.get_yticklabels(), names + names):
            label.set_color(colors[name])
            label.set_fontweight("bold")
        ax.tick_params(length=0)
        ax.set_xlim(-0.5, k - 0.5)
        ax.set_ylim(k - 0.5, -0.5)
        return self


class ConnectomeDisplay(Display):
    """The top-k edges on a glass brain (`nilearn.plotting.plot_connectome`), nodes coloured by domain.

    Attributes
    ----------
    adjacency : ndarray of shape (K, K)
        ``value`` of the top-k edges (by rank), zero elsewhere.
    coords : ndarray of shape (K, 3)
        MNI coordinates of the nodes, in ``nodes`` order.
    nodes : pandas.DataFrame
    edges : pandas.DataFrame
        The top-k rows of the connections table.
    figure_, display_ : set by `plot`.
    """

    def __init__(self, adjacency, coords, nodes, edges, value="attribution"):
        self.adjacency, self.coords, self.nodes, self.edges, self.value = adjacency, coords, nodes, edges, value

    @classmethod
    def from_tables(cls, connections, nodes, *, top_k=20, value="attribution", domain_order=None):
        """Read ``connections.csv`` and ``nodes.csv`` (which needs ``x``, ``y``, ``z`` in MNI mm).

        Parameters
        ----------
        connections, nodes : pandas.DataFrame
        top_k : int, default=20
            Edges drawn: the ``top_k`` best ranked (by ``rank``, else smallest permutation p).
        value : str, default="attribution"
            Edge colour.
        domain_order : sequence of str or None
            See `node_order`.
        """
        _check(connections, value)
        check_columns(nodes, ("node", "domain", "x", "y", "z"), "nodes table")
        order = node_order(connections, nodes, domain_order=domain_order)
        index = {n: i for i, n in enumerate(order["node"])}
        edges = _top_edges(connections, top_k)
        unknown = sorted(set(edges["node_i"]).union(edges["node_j"]) - set(index))
        if unknown:
            raise ParameterError(f"connections table: expected nodes of the node table, found {unknown[:5]}")
        k = len(order)
        adjacency = np.zeros((k, k))
        i, j = edges["node_i"].map(index).to_numpy(), edges["node_j"].map(index).to_numpy()
        adjacency[i, j] = adjacency[j, i] = edges[value].to_numpy(dtype=float)
        coords = order[["x", "y", "z"]].to_numpy(dtype=float)
        return cls(adjacency, coords, order, edges, value=value)

    def plot(self, ax=None, *, cmap="RdBu_r", node_size=14):
        """Draw with nilearn (three orthogonal projections) and a domain legend underneath. Returns self."""
        figure = self._as_figure(ax)
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D
        from nilearn import plotting

        figure = figure or plt.figure(figsize=(6.6, 2.7))
        colors = domain_colors(self.nodes["domain"])
        node_color = [colors[d] for d in self.nodes["domain"]]
        vmax = float(np.abs(self.adjacency).max()) or 1.0
        exponent = int(np.floor(np.log10(vmax)))
        scale = 10.0**-exponent
        # Edge values are drawn in units of a power of ten so that the colour bar keeps short labels.
        self.display_ = plotting.plot_connectome(
            self.adjacency * scale,
            self.coords,
            node_color=node_color,
            node_size=node_size,
            edge_cmap=cmap,
            edge_vmin=-vmax * scale,
            edge_vmax=vmax * scale,
            display_mode="ortho",
            figure=figure,
            axes=(0.0, 0.14, 1.0, 0.86),
            colorbar=True,
            annotate=True,
            edge_kwargs={"linewidth": 1.4},
            node_kwargs={"edgecolors": "k", "linewidths": 0.3},
        )
        cbar = getattr(self.display_, "_cbar", None)  # nilearn keeps its colour bar private
        if cbar is not None:
            cbar.set_label(self.value if exponent == 0 else f"{self.value} (×1e{exponent})", fontsize=7)
        handles = [
            Line2D([], [], marker="o", ls="", color=c, markeredgecolor="k", markeredgewidth=0.3, markersize=5, label=d)
            for d, c in colors.items()
        ]
        figure.legend(
            handles=handles,
            loc="lower center",
            ncol=min(len(handles), 10),
            fontsize=7,
            frameon=False,
            title="domain",
            title_fontsize=7,
            bbox_to_anchor=(0.5, 0.0),
            columnspacing=1.0,
        )
        self.figure_ = figure
        return self


class ConnectogramDisplay(Display):
    """Circular connectogram: nodes on a circle grouped by domain, chords for the top-k edges, coloured by the
    sign of ``value`` and as wide as its magnitude.

    Attributes
    ----------
    nodes : pandas.DataFrame
        ``node``, ``domain``, ``angle`` (radians) in circle order.
    edges : pandas.DataFrame
        The top-k edges with ``angle_i``, ``angle_j`` and ``value``.
    figure_, ax_ : set by `plot`.
    """

    def __init__(self, nodes, edges, value="attribution"):
        self.nodes, self.edges, self.value = nodes, edges, value

    @classmethod
    def from_tables(cls, connections, nodes=None, *, top_k=20, value="attribution", domain_order=None, gap=1.5):
        """Read ``connections.csv`` (and ``nodes.csv``).

        Parameters
        ----------
        connections, nodes : pandas.DataFrame
        top_k : int, default=20
        value : str, default="attribution"
        domain_order : sequence of str or None
            See `node_order`.
        gap : float, default=1.5
            Empty node slots between two domains.
        """
        _check(connections, value)
        order = node_order(connections, nodes, domain_order=domain_order)[["node", "domain"]].copy()
        domains = order["domain"].to_numpy()
        slots = np.arange(len(order), dtype=float)
        slots += gap * np.concatenate([[0], np.cumsum(domains[1:] != domains[:-1])])
        total = slots[-1] + 1 + gap if len(slots) else 1.0
        # Clockwise from the top, as a clock face is read.
        order["angle"] = np.pi / 2 - 2 * np.pi * slots / total
        angle = dict(zip(order["node"], order["angle"]))
        edges = _top_edges(connections, top_k).copy()
        unknown = sorted(set(edges["node_i"]).union(edges["node_j"]) - set(angle))
        if unknown:
            raise ParameterError(f"connections table: expected nodes of the node table, found {unknown[:5]}")
        edges["angle_i"] = edges["node_i"].map(angle)
        edges["angle_j"] = edges["node_j"].map(angle)
        edges["value"] = edges[value].astype(float)
        return cls(order, edges, value=value)

    def plot(self, ax=None, *, label_nodes=True):
        """Draw the circle, the domain arcs and the chords. Returns self."""
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D
        from matplotlib.patches import PathPatch
        from matplotlib.path import Path as MplPath

        if ax is None:
            _, ax = plt.subplots(figsize=(5.0, 5.0), layout="constrained")
        self.figure_, self.ax_ = ax.figure, ax
        colors = domain_colors(self.nodes["domain"])
        theta = self.nodes["angle"].to_numpy()
        ax.scatter(
            np.cos(theta), np.sin(theta), s=9, c=[colors[d] for d in self.nodes["domain"]], zorder=3, linewidths=0
        )
        step = abs(theta[1] - theta[0]) if len(theta) > 1 else 0.1
        for domain, group in self.nodes.groupby("domain", sort=False):
            t = group["angle"].to_numpy()
            arc = np.linspace(t.max() + step / 2.5, t.min() - step / 2.5, 40)
            ax.plot(1.1 * np.cos(arc), 1.1 * np.sin(arc), color=colors[domain], lw=5, solid_capstyle="butt")
            mid = t.mean()
            ax.text(
                1.45 * np.cos(mid),
                1.45 * np.sin(mid),
                domain,
                ha="center",
                va="center",
                fontsize=8,
                fontweight="bold",
                color=colors[domain],
            )
        if label_nodes:
            for name, t in zip(self.nodes["node"], theta):
                degrees = np.degrees(t) % 360
                flip = 90 < degrees < 270
                ax.text(
                    1.17 * np.cos(t),
                    1.17 * np.sin(t),
                    name,
                    fontsize=3.6,
                    color="0.3",
                    rotation=degrees + (180 if flip else 0),
                    rotation_mode="anchor",
                    ha="right" if flip else "left",
                    va="center",
                )
        values = self.edges["value"].to_numpy()
        vmax = np.abs(values).max() if values.size and np.abs(values).max() > 0 else 1.0
        # Weakest first so that the strongest chords are drawn on top.
        for _, edge in self.edges.iloc[np.argsort(np.abs(values), kind="stable")].iterrows():
            a, b = edge["angle_i"], edge["angle_j"]
            p0, p2 = np.array([np.cos(a), np.sin(a)]), np.array([np.cos(b), np.sin(b)])
            # Bend towards the centre in proportion to the chord's length: distant nodes meet near the
            # middle, neighbours get a shallow arc instead of a loop through the centre.
            control = (p0 + p2) / 2 * max(0.0, 1.0 - np.linalg.norm(p0 - p2) / 2) * 0.8
            path = MplPath([p0, control, p2], [MplPath.MOVETO, MplPath.CURVE3, MplPath.CURVE3])
            color = POSITIVE if edge["value"] >= 0 else NEGATIVE
            ax.add_patch(
                PathPatch(
                    path,
                    facecolor="none",
                    edgecolor=color,
                    alpha=0.8,
                    lw=0.6 + 2.4 * abs(edge["value"]) / vmax,
                    zorder=2,
                )
            )
        handles = [
            Line2D([], [], color=POSITIVE, lw=2, label=f"{self.value} > 0"),
            Line2D([], [], color=NEGATIVE, lw=2, label=f"{self.value} < 0"),
        ]
        ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=7, frameon=False)
        ax.set_xlim(-1.6, 1.6)
        ax.set_ylim(-1.6, 1.6)
        ax.set_aspect("equal")
        ax.axis("off")
        return self
