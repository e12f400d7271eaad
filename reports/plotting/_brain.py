"""Structural-MRI figures: the signed attribution map (glass brain, slices on the MNI template, both drawn by
nilearn) and the top atlas regions of ``regions.csv``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from migtrans.exceptions import ParameterError
from migtrans.validation import check_columns, check_option

from ._display import Display

POSITIVE, NEGATIVE = "#b2182b", "#2166ac"
MAP_CMAP = "RdBu_r"


def _load(img):
    import nibabel as nib

    return nib.load(str(img)) if not hasattr(img, "get_fdata") else img


class AttributionMapDisplay(Display):
    """The signed voxel attribution map (``smri_attribution.nii.gz``), drawn with nilearn.

    The map is shown as it is (signed, symmetric colour scale); the display threshold hides the voxels with
    the smallest absolute attribution so that the projection is not a uniform haze.

    Attributes
    ----------
    img : nibabel.Nifti1Image
        The map, in MNI space.
    vmax : float
        Colour-scale limit (symmetric): a high percentile of the absolute values inside the mask, so that a
        few extreme voxels do not wash out the rest.
    threshold : float
        Absolute values below this are not drawn.
    threshold_percentile, vmax_percentile : float
        The percentiles of |attribution| within the mask that set ``threshold`` and ``vmax``.
    n_voxels : int
        Voxels inside the mask (or non-zero voxels when there is no mask).
    peak_mm : tuple of float
        MNI coordinates of the voxel with the largest |attribution|.
    z_cuts : list of float
        Axial slice positions (mm) spread over the masked extent, for the slice view.
    figure_, display_ : set by `plot`.
    """

    def __init__(self, img, *, vmax, threshold, threshold_percentile, vmax_percentile, n_voxels, peak_mm, z_cuts):
        self.img = img
        self.vmax, self.threshold = vmax, threshold
        self.threshold_percentile, self.vmax_percentile = threshold_percentile, vmax_percentile
        self.n_voxels, self.peak_mm, self.z_cuts = n_voxels, peak_mm, z_cuts

    @classmethod
    def from_image(cls, img, mask=None, *, threshold_percentile=90.0, vmax_percentile=99.5, n_cuts=7):
        """Read a signed attribution map.

        Parameters
        ----------
        img : str, Path or nibabel image
            The map (3D).
        mask : str, Path, nibabel image or None
            Brain mask on the same grid; the non-zero voxels of the map when None.
        threshold_percentile : float, default=90
            Voxels whose |attribution| is below this percentile (within the mask) are not drawn.
        vmax_percentile : float, default=99.5
            Percentile of |attribution| that ends the colour scale.
        n_cuts : int, default=7
            Number of axial slices of the slice view.

        Returns
        -------
        AttributionMapDisplay
        """
        import nibabel as nib

        img = _load(img)
        data = np.asarray(img.get_fdata(dtype=np.float32))
        if data.ndim != 3:
            raise ParameterError(f"attribution map: expected a 3D image, found shape {data.shape}")
        if mask is not None:
            inside = np.asarray(_load(mask).get_fdata()) > 0
            if inside.shape != data.shape:
                raise ParameterError(f"mask: expected the map's grid {data.shape}, found {inside.shape}")
        else:
            inside = data != 0
        values = np.abs(data[inside & np.isfinite(data)])
        if values.size == 0 or not values.max() > 0:
            raise ParameterError("attribution map: expected non-zero values inside the mask, found none")
        vmax = float(np.percentile(values, vmax_percentile))
        vmax = vmax if vmax > 0 else float(values.max())
        threshold = float(np.percentile(values, threshold_percentile))
        masked = np.where(inside & np.isfinite(data), data, 0.0)
        peak = np.unravel_index(np.argmax(np.abs(masked)), data.shape)
        peak_mm = tuple(float(v) for v in nib.affines.apply_affine(img.affine, peak))
        ks = np.flatnonzero(inside.any(axis=(0, 1)))
        z_lo, z_hi = (nib.affines.apply_affine(img.affine, (0, 0, k))[2] for k in (ks.min(), ks.max()))
        z_lo, z_hi = sorted((z_lo, z_hi))
        # Interior slices only: the first and last masked planes hold a few voxels each.
        z_cuts = list(np.linspace(z_lo, z_hi, n_cuts + 2)[1:-1].round(1))
        clean = nib.Nifti1Image(masked.astype(np.float32), img.affine)
        return cls(
            clean,
            vmax=vmax,
            threshold=threshold,
            threshold_percentile=threshold_percentile,
            vmax_percentile=vmax_percentile,
            n_voxels=int(inside.sum()),
            peak_mm=peak_mm,
            z_cuts=z_cuts,
        )

    def plot(self, ax=None, *, kind="glass", bg_img=None, cmap=MAP_CMAP, title=None):
        """Draw the map with nilearn.

        Parameters
        ----------
        ax : matplotlib.figure.Figure or None
            Figure to draw into (nilearn lays out its projections); new when None.
        kind : {"glass", "slices"}
            ``"glass"``: `nilearn.plotting.plot_glass_brain` (signed, ``plot_abs=False``), four projections;
            ``"slices"``: `nilearn.plotting.plot_stat_map` axial slices over the MNI152 template.
        bg_img : image or None
            Background of the slice view; nilearn's packaged MNI152 template (2 mm) when None. Nothing is
            downloaded.
        cmap : str, default="RdBu_r"
            Diverging colormap: red for positive, blue for negative attribution.
        title : str or None

        Returns
        -------
        self
        """
        import matplotlib.pyplot as plt
        from nilearn import datasets, plotting

        figure = self._as_figure(ax)
        check_option("kind", kind, ("glass", "slices"))
        import nibabel as nib

        # Attributions are tiny numbers (1e-6 and so on): draw them in units of a power of ten so that the
        # colour-bar labels stay short, and say the unit once under the bar.
        exponent = int(np.floor(np.log10(self.vmax)))
        scale = 10.0**-exponent
        img = nib.Nifti1Image(np.asarray(self.img.dataobj, dtype=np.float32) * scale, self.img.affine)
        common = dict(
            threshold=self.threshold * scale,
            vmax=self.vmax * scale,
            cmap=cmap,
            symmetric_cbar=True,
            colorbar=True,
            cbar_tick_format="%.1f",
            title=title,
            annotate=True,
        )
        if kind == "glass":
            figure = figure or plt.figure(figsize=(7.2, 2.4))
            self.display_ = plotting.plot_glass_brain(
                img, display_mode="lyrz", plot_abs=False, black_bg=False, figure=figure, **common
            )
        else:
            figure = figure or plt.figure(figsize=(7.2, 1.7))
            bg = bg_img if bg_img is not None else datasets.load_mni152_template(resolution=2)
            self.display_ = plotting.plot_stat_map(
                img,
                bg_img=bg,
                display_mode="z",
                cut_coords=self.z_cuts,
                black_bg=False,
                draw_cross=False,
                dim=-0.3,
                figure=figure,
                **common,
            )
        unit = "attribution" if exponent == 0 else f"attribution (×1e{exponent})"
        cbar = getattr(self.display_, "_cbar", None)  # nilearn keeps its colour bar private
        if cbar is not None:
            # nilearn adds ticks at +-threshold, whose labels collide with 0 when the threshold is small:
            # five evenly spaced ticks instead
            ticks = np.linspace(-self.vmax * scale, self.vmax * scale, 5)
            cbar.set_ticks(ticks, labels=[f"{t:.1f}" for t in ticks])
            cbar.set_label(unit, fontsize=7)
        else:
            figure.text(0.995, 0.995, unit, ha="right", va="top", fontsize=6)
        self.figure_, self.scale_ = figure, scale
        return self


class RegionBarDisplay(Display):
    """Horizontal bars of the top-ranked atlas regions: their contrast (or another signed column).

    Attributes
    ----------
    regions : pandas.DataFrame
        The rows shown, best first: ``region``, ``stat``, ``p_perm`` and, when present, ``p_fwer``, ``q_fdr``,
        ``atlas``, ``n_voxels``.
    n_total : int
        Regions in the table.
    figure_, ax_ : set by `plot`.
    """

    def __init__(self, regions, n_total, value="stat"):
        self.regions, self.n_total, self.value = regions, n_total, value

    @classmethod
    def from_table(cls, regions, *, top_k=20, value="stat"):
        """Keep the ``top_k`` regions of ``regions.csv`` by ``rank`` (or ``p_perm`` when there is no rank).

        Parameters
        ----------
        regions : pandas.DataFrame
            Needs ``region``, ``p_perm`` and ``value``.
        top_k : int, default=20
        value : str, default="stat"
            Column drawn as the bar length: the signed case-control statistic by default, or ``contrast``
            (mean attribution of cases minus controls, log-odds).
        """
        check_columns(regions, ("region", "p_perm", value), "regions table")
        keys = ["rank"] if "rank" in regions.columns else ["p_perm"]
        top = regions.sort_values(keys, kind="mergesort").head(top_k).reset_index(drop=True)
        return cls(top, len(regions), value)

    def plot(self, ax=None, *, alpha=0.05):
        """Draw the bars, best region on top; ``*`` marks p_fwer <= alpha, ``†`` q_fdr <= alpha. Returns self."""
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch

        n = len(self.regions)
        if ax is None:
            _, ax = plt.subplots(figsize=(5.6, 0.9 + 0.2 * n), layout="constrained")
        self.figure_, self.ax_ = ax.figure, ax
        values = self.regions[self.value].to_numpy(dtype=float)
        y = np.arange(n)[::-1]
        colors = np.where(values >= 0, POSITIVE, NEGATIVE)
        ax.barh(y, values, color=colors, height=0.7)
        marks = []
        for _, row in self.regions.iterrows():
            mark = ""
            if "p_fwer" in row and pd.notna(row["p_fwer"]) and row["p_fwer"] <= alpha:
                mark += "*"
            if "q_fdr" in row and pd.notna(row["q_fdr"]) and row["q_fdr"] <= alpha:
                mark += "†"
            marks.append(mark)
        ax.set_yticks(y)
        ax.set_yticklabels([f"{r} {m}".strip() for r, m in zip(self.regions["region"], marks)], fontsize=7)
        ax.axvline(0, color="0.2", lw=0.6)
        span = np.nanmax(np.abs(values)) if n else 1.0
        ax.set_xlim(-span * 1.35, span * 1.35)
        for yi, v, p in zip(y, values, self.regions["p_perm"]):
            ax.text(
                v + np.sign(v or 1) * span * 0.02,
                yi,
                f"p={p:.2g}",
                va="center",
                ha="left" if v >= 0 else "right",
                fontsize=5.5,
                color="0.25",
            )
        labels = {"stat": "stat (cases − controls)", "contrast": "contrast (log-odds, cases − controls)"}
        ax.set_xlabel(labels.get(self.value, self.value), fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
        handles = [
            Patch(color=POSITIVE, label="attribution higher in cases"),
            Patch(color=NEGATIVE, label="attribution lower in cases"),
        ]
        ax.legend(handles=handles, fontsize=6, frameon=False, loc="lower right")
        return self
