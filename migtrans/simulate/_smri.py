"""Simulate gray-matter maps from nilearn's MNI152 GM template with planted regional reductions."""

from __future__ import annotations

import gzip
import io
from functools import lru_cache

import nibabel as nib
import numpy as np
from scipy import ndimage

from migtrans.atlases import load_atlas, resample_atlas

MASK_THRESHOLD = 0.2  # template GM probability defining the mask
GLOBAL_SD = 0.04  # SD of the per-subject global GM scale
NOISE_SD = 0.05  # amplitude of the smooth spatial noise (GM units)
NOISE_FWHM_MM = 8.0
AGE_SLOPE = -0.002  # relative GM change per year around age 35 (mild atrophy with age)
SITE_SD = 0.02  # SD of the per-site relative intensity scale
SITE_OFFSET_SD = 0.01  # SD of the per-site additive intensity offset (GM units; off in the legacy model)
REGION_EFFECT = 0.06  # relative GM reduction per SD of the sMRI latent score
# Planted AAL regions (left/right picked on purpose so hemispheres differ).
PLANTED_REGIONS = ("Hippocampus_L", "Temporal_Sup_L", "Insula_R", "Thalamus_R")
#: How the atlases are named in ``truth.json``.
ATLAS_NAMES = {"aal": "AAL", "harvard-oxford": "Harvard-Oxford"}
# The focal regions in Harvard-Oxford (its cortical labels have no superior temporal gyrus as a whole: the
# posterior division stands for it).
FOCAL_REGIONS = {
    "aal": PLANTED_REGIONS,
    "harvard-oxford": (
        "Left_Hippocampus",
        "Left_Superior_Temporal_Gyrus_posterior_division",
        "Right_Insular_Cortex",
        "Right_Thalamus",
    ),
}
# Spread effects: twelve regions of the schizophrenia GM literature, each with its relative GM reduction per SD
# of the structural latent. Larger where case-control effects are larger: hippocampus (ENIGMA d -0.46, van Erp
# et al. 2016), insula, superior temporal and fusiform cortex (thinning up to d -0.5, van Erp et al. 2018;
# GM reductions in multi-site VBM, Gupta et al. 2015); thalamus and amygdala (-0.31); anterior cingulate,
# middle frontal and inferior temporal cortex smaller. At 4 mm and the realistic budget they give case-control
# d of about -0.2 to -0.4 (measured; ``truth.json`` records each region's d in the cohort).
SPREAD_REGIONS = (
    # (AAL, Harvard-Oxford, relative GM reduction per SD)
    ("Hippocampus_L", "Left_Hippocampus", 0.08),
    ("Hippocampus_R", "Right_Hippocampus", 0.07),
    ("Insula_L", "Left_Insular_Cortex", 0.06),
    ("Insula_R", "Right_Insular_Cortex", 0.06),
    ("Temporal_Sup_L", "Left_Superior_Temporal_Gyrus_posterior_division", 0.06),
    ("Fusiform_R", "Right_Temporal_Fusiform_Cortex_posterior_division", 0.05),
    ("Thalamus_L", "Left_Thalamus", 0.05),
    ("Thalamus_R", "Right_Thalamus", 0.05),
    ("Amygdala_L", "Left_Amygdala", 0.05),
    ("Cingulate_Ant_L", "Left_Cingulate_Gyrus_anterior_division", 0.04),
    ("Frontal_Mid_2_R", "Right_Middle_Frontal_Gyrus", 0.035),
    ("Temporal_Inf_L", "Left_Inferior_Temporal_Gyrus_posterior_division", 0.035),
)


@lru_cache(maxsize=2)
def _template(resolution):
    """GM template on an isotropic grid of ``resolution`` mm (cached per resolution)."""
    from nilearn import datasets, image

    if float(resolution).is_integer():
        img = datasets.load_mni152_gm_template(resolution=int(resolution))
    else:
        # nilearn only takes whole-mm resolutions: resample the 1 mm template.
        src = datasets.load_mni152_gm_template(resolution=1)
        shape = np.ceil(np.array(src.shape) / resolution).astype(int)
        affine = src.affine.copy()
        affine[:3, :3] = np.diag([resolution] * 3)
        img = image.resample_img(
            src,
            target_affine=affine,
            target_shape=tuple(shape),
            interpolation="continuous",
            force_resample=True,
            copy_header=True,
        )
    data = np.clip(np.asarray(img.get_fdata(), dtype=np.float32), 0.0, 1.0)
    return data, img.affine.copy()


def template(resolution):
    """Return (GM template float32 3D array, affine) at ``resolution`` mm."""
    data, affine = _template(float(resolution))
    return data.copy(), affine.copy()


def plant_regions(template_data, affine, mask):
    """Locate the planted AAL regions on the template grid; returns a list of region dicts."""
    atlas, labels = load_atlas("aal")
    grid = np.asarray(resample_atlas(atlas, affine, template_data.shape).dataobj)
    regions = []
    for name in PLANTED_REGIONS:
        index = int(labels.loc[labels["name"] == name, "index"].iloc[0])
        in_region = (grid == index) & mask
        regions.append(
            {
                "region": name,
                "atlas": "AAL",
                "label": index,
                "direction": "decrease",
                "effect": REGION_EFFECT,
                "n_voxels": int(in_region.sum()),
                "_voxels": in_region,
            }
        )
    return regions


def region_grid(atlas, affine, shape):
    """The atlas's labels on the template grid, and its label table."""
    img, labels = load_atlas(atlas)
    return np.asarray(resample_atlas(img, affine, shape).dataobj), labels


def plant_named_regions(template_data, affine, mask, atlas, specs):
    """Locate regions of ``atlas`` on the template grid.

    ``specs`` is a list of dicts with ``region`` (a name of the atlas), ``effect`` (relative GM reduction per
    SD of the latent), ``latent`` and ``role``. Returns region dicts in the order of ``specs``, with the
    voxels in ``_voxels`` (3D bool); regions sharing voxels keep them in the first.
    """
    grid, labels = region_grid(atlas, affine, template_data.shape)
    taken = np.zeros(mask.shape, dtype=bool)
    regions = []
    for spec in specs:
        index = int(labels.loc[labels["name"] == spec["region"], "index"].iloc[0])
        in_region = (grid == index) & mask & ~taken
        taken |= in_region
        regions.append(
            {
                "region": spec["region"],
                "atlas": ATLAS_NAMES[atlas],
                "label": index,
                "direction": "decrease",
                "effect": spec["effect"],
                "latent": spec["latent"],
                "role": spec["role"],
                "n_voxels": int(in_region.sum()),
                "_voxels": in_region,
            }
        )
    return regions


def atlas_overlap(regions, affine, shape, atlas, top=3):
    """For each region, the ``top`` regions of ``atlas`` holding most of its voxels, with their shares."""
    grid, labels = region_grid(atlas, affine, shape)
    names = dict(zip(labels["index"], labels["name"]))
    out = []
    for region in regions:
        values, counts = np.unique(grid[region["_voxels"]], return_counts=True)
        order = np.argsort(-counts, kind="stable")[:top]
        total = max(int(counts.sum()), 1)
        out.append(
            [
                {"region": names.get(int(values[k]), "outside the atlas"), "share": round(counts[k] / total, 4)}
                for k in order
            ]
        )
    return out


def _smooth_noise(rng, shape, resolution):
    # Noise is drawn on a coarse grid and upsampled: smooth like a filtered field, but far cheaper
    # than filtering white noise at 1.5 mm.
    step = max(1, int(round(NOISE_FWHM_MM / 2 / resolution)))
    coarse_shape = tuple(int(np.ceil(s / step)) + 1 for s in shape)
    coarse = rng.standard_normal(coarse_shape).astype(np.float32)
    coarse = ndimage.gaussian_filter(coarse, sigma=0.7)
    coarse /= coarse.std()
    zoomed = ndimage.zoom(coarse, step, order=1, prefilter=False)
    return zoomed[: shape[0], : shape[1], : shape[2]]


def subject_volume(
    rng, tpl, resolution, region_weight, z_smri, age, site_scale, site_offset=0.0, sex_shift=0.0, reduction=None
):
    """One subject's GM map (float32, in [0, 1]).

    ``region_weight`` is the 3D map of planted regions (1 inside, 0 outside); higher ``z_smri``
    means less gray matter there. ``reduction``, a 3D float32 map of relative reductions, takes the place of
    both when given (regions with effects and latents of their own). The whole map is scaled by a random
    global factor (SD ``GLOBAL_SD``), by ``site_scale``, by ``1 + AGE_SLOPE * (age - 35)`` and by ``1 + sex_shift``; the
    site's additive ``site_offset`` and smooth noise are added inside the head.
    """
    scale = rng.normal(1.0, GLOBAL_SD) * site_scale * (1.0 + AGE_SLOPE * (age - 35.0))
    if sex_shift:
        scale *= 1.0 + sex_shift
    vol = tpl * np.float32(scale)
    if reduction is None:
        vol *= 1.0 - np.float32(REGION_EFFECT * z_smri) * region_weight
    else:
        vol *= 1.0 - reduction
    head = tpl > 0.01
    if site_offset:
        vol += np.float32(site_offset) * head
    vol += np.float32(NOISE_SD) * _smooth_noise(rng, tpl.shape, resolution) * head
    np.clip(vol, 0.0, 1.0, out=vol)
    return vol


def nifti_gz_bytes(data, affine):
    """Serialize a NIfTI image as gzip bytes with a zero mtime (same data => same bytes)."""
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm")
    img.set_qform(affine, code=4)  # MNI
    img.set_sform(affine, code=4)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=1) as gz:
        gz.write(img.to_bytes())
    return buf.getvalue()
