"""Interactive views inside the report: nilearn's 3-D connectome (`view_connectome`) and slice viewer (`view_img`),
each a standalone HTML document with its JavaScript inline, shown in a sandboxed ``<iframe srcdoc>``. The views
draw what the static figures' displays computed (`ConnectomeDisplay`, `AttributionMapDisplay`); nothing is
fetched, from nilearn's CDN or anywhere else."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field

import numpy as np

from ..folder import ReportFolder, ReportInputs, rank_rule
from ..plotting import AttributionMapDisplay, ConnectomeDisplay
from ..plotting._connectome import domain_colors

__all__ = ["InteractiveView", "connectome_view", "external_loads", "make_views", "stat_map_view"]

# What a page loads from elsewhere: a script, stylesheet, image, frame or media file by URL, a CSS url() or @import
# of a remote file (absolute or protocol-relative). A link a reader may click (<a href>) is not a load.
_URL = r"""\s*["']?\s*(?:https?:)?//"""
EXTERNAL_LOAD = re.compile(
    r"<(?:script|img|iframe|frame|embed|source|track|audio|video|input)\b[^>]*?\bsrc\s*=" + _URL + r"[^>]*>"
    r"|<link\b[^>]*?\bhref\s*=" + _URL + r"[^>]*>"
    r"|<object\b[^>]*?\bdata\s*=" + _URL + r"[^>]*>"
    r"|url\(" + _URL + r"[^)]*\)"
    r"|@import" + _URL + r"[^;]*",
    flags=re.IGNORECASE,
)
_SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script\s*>", flags=re.IGNORECASE | re.DOTALL)
# nilearn's page template links its favicon on GitHub: the one remote reference of its views, dropped
_REMOTE_LINK = re.compile(r"<link\b[^>]*?\bhref\s*=" + _URL + r"[^>]*>", flags=re.IGNORECASE)
# Node names come from user files and end up in plotly text inside a <script>: without these characters they
# can close neither the script nor open one of plotly's pseudo-HTML tags.
_PLAIN = str.maketrans({"<": "\u2039", ">": "\u203a", "&": "\uff06"})


@dataclass(frozen=True)
class InteractiveView:
    """One interactive view, ready to embed.

    Attributes
    ----------
    name : str
        Its id stem (``connectome_3d``, ``smri_viewer``).
    section : str
        The report section it belongs to (one of `SECTIONS`).
    title, caption : str
        Plain text, shown above and below it.
    html : str
        The standalone document (scripts inline, no remote reference).
    width, height : int
        Its frame size in CSS pixels.
    data : tuple of str
        The files behind it, relative to the report folder.
    legend : tuple of (str, str)
        ``(label, colour)`` swatches shown under the frame (the connectome's domains).
    needs_eval : bool
        Its scripts compile code at run time (plotly.js 1.x builds its WebGL array code with ``new Function``),
        so the page's Content-Security-Policy must allow ``'unsafe-eval'``.
    """

    name: str
    section: str
    title: str
    caption: str
    html: str
    width: int
    height: int
    data: tuple = ()
    legend: tuple = field(default_factory=tuple)
    needs_eval: bool = False

    @property
    def script_hashes(self) -> list[str]:
        """CSP sources (``'sha256-…'``) of every inline script of the document, in order of appearance."""
        return [_csp_hash(s) for s in _SCRIPT.findall(self.html)]

    @property
    def size(self) -> int:
        """Bytes of the document (UTF-8), before it is escaped into the report."""
        return len(self.html.encode("utf-8"))


def _csp_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def external_loads(html: str) -> list[str]:
    """Every reference of ``html`` that would load something from the network.

    Looks for ``<script src=http…>``, ``<link href=http…>``, CSS ``url(http…)`` and ``@import``, and images,
    frames and media by URL, protocol-relative ``//`` URLs included. Text inside scripts that only names a URL
    (plotly's links to its website) is not a load.

    Examples
    --------
    >>> external_loads('<script src="https://cdn.example/x.js"></script><p>url(data:,)</p>')
    ['<script src="https://cdn.example/x.js">']
    """
    return EXTERNAL_LOAD.findall(html)


def _offline(html: str, what: str) -> str:
    """nilearn's document without its favicon link, with the line ends an HTML parser sees (so that the script
    hashes match); refused when something would still be fetched."""
    html = _REMOTE_LINK.sub("", html).replace("\r\n", "\n").replace("\r", "\n")
    remote = external_loads(html)
    if remote:
        raise ValueError(f"{what}: nilearn's view would load {remote[0][:80]!r} from the network; left out")
    return html


def _unit(vmax: float) -> tuple[float, int]:
    """(scale, exponent): values are shown in units of 10**exponent so that colour-bar labels stay short."""
    exponent = int(np.floor(np.log10(vmax))) if vmax > 0 and np.isfinite(vmax) else 0
    return 10.0**-exponent, exponent


def connectome_view(display: ConnectomeDisplay, *, total=None, ranked_by="") -> InteractiveView:
    """The top connections of ``display`` in 3-D (`nilearn.plotting.view_connectome`) on nilearn's packaged
    fsaverage5 surface: nodes at their MNI coordinates coloured by domain, the nodes of the shown edges named.

    Parameters
    ----------
    display : ConnectomeDisplay
        From `ConnectomeDisplay.from_tables`: the edges, their values and the node coordinates of the static
        figure.
    total : int or None
        Connections in the table, for the caption.
    ranked_by : str
        What rank 1 means, for the caption (`rank_rule`).

    Returns
    -------
    InteractiveView

    Examples
    --------
    >>> view = connectome_view(ConnectomeDisplay.from_tables(connections, nodes))  # doctest: +SKIP
    >>> view.html.count("<script") > 0, external_loads(view.html)  # doctest: +SKIP
    (True, [])
    """
    from nilearn import plotting

    nodes = display.nodes.reset_index(drop=True)
    colors = domain_colors(nodes["domain"])
    shown = np.abs(display.adjacency).sum(axis=1) > 0
    labels = [str(n).translate(_PLAIN) if s else "" for n, s in zip(nodes["node"], shown)]
    scale, exponent = _unit(float(np.abs(display.adjacency).max()))
    unit = display.value if exponent == 0 else f"{display.value} (\u00d71e{exponent})"
    view = plotting.view_connectome(
        display.adjacency * scale,
        display.coords,
        node_color=[colors[d] for d in nodes["domain"]],
        node_size=np.where(shown, 6.0, 3.0),
        node_labels=labels,
        linewidth=6.0,
        colorbar=True,
        colorbar_fontsize=13,
        title=f"edge colour: {unit}",
        title_fontsize=14,
    )
    n = len(display.edges)
    of = f" of {total}" if total else ""
    caption = (
        f"The same {n} top-ranked connections{of} as the glass brain above"
        + (f" ({ranked_by})" if ranked_by else "")
        + f", in 3-D on nilearn's fsaverage5 pial surface: drag to turn, scroll to zoom, the menu picks a view "
        f"and the slider the surface opacity. Nodes at their MNI coordinates, coloured by domain; the "
        f"{int(shown.sum())} nodes of the shown connections are named and larger. Edge colour: {unit}, "
        f"red positive, blue negative."
    )
    return InteractiveView(
        name="connectome_3d",
        section="Connectome",
        title=f"Top {n} connections in 3-D (interactive)",
        caption=caption,
        html=_offline(view.html, "3-D connectome"),
        width=900,
        height=640,
        data=(ReportFolder.file("connections"), ReportFolder.file("nodes")),
        legend=tuple((str(d), c) for d, c in colors.items()),
        needs_eval=True,
    )


def stat_map_view(display: AttributionMapDisplay) -> InteractiveView:
    """The sMRI attribution map in a slice viewer (`nilearn.plotting.view_img`, brainsprite) over nilearn's
    packaged MNI152 template (2 mm), thresholded and scaled as the static glass brain.

    Parameters
    ----------
    display : AttributionMapDisplay
        From `AttributionMapDisplay.from_image`: the masked map, its threshold, colour limit and peak.

    Returns
    -------
    InteractiveView
    """
    import nibabel as nib
    from nilearn import plotting

    scale, exponent = _unit(display.vmax)
    img = nib.Nifti1Image(np.asarray(display.img.dataobj, dtype=np.float32) * scale, display.img.affine)
    view = plotting.view_img(
        img,
        bg_img="MNI152",  # nilearn's packaged template; nothing is downloaded
        threshold=display.threshold * scale,
        vmax=display.vmax * scale,
        cmap="RdBu_r",
        symmetric_cmap=True,
        cut_coords=display.peak_mm,
        black_bg=False,
        title=None,
        width_view=780,
    )
    unit = "attribution" if exponent == 0 else f"attribution \u00d7 1e{exponent}"
    peak = ", ".join(f"{v:g}" for v in display.peak_mm)
    caption = (
        f"The signed mean attribution per voxel ({unit}) on nilearn's MNI152 template: click or drag in any "
        f"view to move the cut; the value under the cursor and its MNI coordinates are shown. Thresholded as the "
        f"glass brain: |attribution| below the {display.threshold_percentile:g}th percentile "
        f"({display.threshold:.2g}) hidden, the colour scale ends at the {display.vmax_percentile:g}th "
        f"({display.vmax:.2g}). It opens at the peak voxel (MNI {peak} mm)."
    )
    return InteractiveView(
        name="smri_viewer",
        section="Morphology",
        title="sMRI attribution, slice viewer (interactive)",
        caption=caption,
        html=_offline(view.html, "sMRI slice viewer"),
        width=int(view.width),
        height=int(view.height * 0.9),  # nilearn sizes for 1.5 x the slices; slices and slider need less
        data=(ReportFolder.SMRI_MAP, ReportFolder.MASK),
    )


def make_views(inputs: ReportInputs, *, top_k=20) -> tuple[list[InteractiveView], list[str]]:
    """Every interactive view whose inputs exist: the 3-D connectome (``connections.csv`` and ``nodes.csv``
    with ``x``, ``y``, ``z``) and the slice viewer (``smri_attribution.nii.gz``).

    Parameters
    ----------
    inputs : ReportInputs
        From `load_inputs`.
    top_k : int, default=20
        Connections shown.

    Returns
    -------
    views : list of InteractiveView
        In report order.
    problems : list of str
        One line per view whose inputs are present but unusable (left out).
    """
    from nibabel.filebasedimages import ImageFileError

    views, problems = [], []
    connections, nodes = inputs.tables.get("connections"), inputs.tables.get("nodes")
    if connections is not None and nodes is not None and len(connections) and {"x", "y", "z"} <= set(nodes.columns):
        value = "contrast" if "contrast" in connections else "attribution"
        try:
            display = ConnectomeDisplay.from_tables(connections, nodes, top_k=top_k, value=value)
            views.append(connectome_view(display, total=len(connections), ranked_by=rank_rule(connections)))
        except ValueError as error:
            problems.append(f"interactive 3-D connectome left out: {error}")
    image = inputs.report_dir / ReportFolder.SMRI_MAP
    if image.is_file():
        mask = inputs.report_dir / ReportFolder.MASK
        try:
            display = AttributionMapDisplay.from_image(image, mask if mask.is_file() else None)
            views.append(stat_map_view(display))
        except (ValueError, OSError, EOFError, ImageFileError) as error:
            problems.append(f"interactive sMRI slice viewer left out: {error}")
    return views, problems
