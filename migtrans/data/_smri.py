"""Read per-subject gray-matter NIfTI maps on one grid, mask them, and cache the masked voxels
in a memory-mapped (n_subjects, n_voxels) float32 file so the cohort never sits in RAM whole."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from ..exceptions import CohortError
from ._config import SmriSpec
from ._files import check_file, subject_path

_AFFINE_TOL = 1e-4


def smri_path(spec: SmriSpec, subject: str) -> Path:
    return subject_path(spec.template, subject)


def smri_available(spec: SmriSpec, candidates) -> list[str]:
    """Subjects whose sMRI file exists."""
    return [s for s in candidates if smri_path(spec, s).exists()]


def _header(path: Path, subject=None):
    import nibabel as nib

    check_file(path)
    try:
        img = nib.load(path)
    except Exception as exc:  # noqa: BLE001 - any failure to parse is a user-file problem
        raise CohortError(
            f"cannot be read as NIfTI ({type(exc).__name__}: {exc})", file=path, subject=subject
        ) from None
    shape = img.shape[:3] if (len(img.shape) == 3 or (len(img.shape) == 4 and img.shape[3] == 1)) else None
    if shape is None:
        raise CohortError(f"expected a 3D volume, found shape {img.shape}", file=path, subject=subject)
    dtype = np.dtype(img.get_data_dtype())
    if dtype.kind not in "uif":
        raise CohortError(f"expected real-valued voxels, found data type {dtype}", file=path, subject=subject)
    return img, shape


def _volume(img, path: Path, subject) -> np.ndarray:
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # values beyond float32 become inf: refused below
            data = np.asarray(img.get_fdata(dtype=np.float32)).reshape(img.shape[:3])
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt gzip, bad data block
        raise CohortError(
            f"corrupt or truncated image data ({type(exc).__name__}: {exc})", file=path, subject=subject
        ) from None
    n_bad = int(np.count_nonzero(~np.isfinite(data)))
    if n_bad:
        # float64 values beyond float32's range arrive here as infinities
        raise CohortError(
            f"{n_bad} NaN or infinite voxels (or values beyond float32 range)", file=path, subject=subject
        )
    return data


def check_grid(spec: SmriSpec, subjects):
    """Check every header (no voxel data read); return (shape, affine) of the common grid."""
    ref_shape = ref_affine = ref_path = None
    for subject in subjects:
        path = smri_path(spec, subject)
        img, shape = _header(path, subject)
        if ref_shape is None:
            ref_shape, ref_affine, ref_path = shape, img.affine, path
            if not np.isfinite(ref_affine).all() or abs(np.linalg.det(ref_affine[:3, :3])) < 1e-12:
                raise CohortError(
                    "the image's affine is singular or not finite (no voxel size or orientation)",
                    file=path,
                    subject=subject,
                )
            continue
        if shape != ref_shape:
            raise CohortError(
                f"grid shape {shape} differs from {ref_shape} of {ref_path.name}", file=path, subject=subject
            )
        if not np.allclose(img.affine, ref_affine, atol=_AFFINE_TOL):
            raise CohortError(
                f"affine differs from that of {ref_path.name} (all images must share one grid)",
                file=path,
                subject=subject,
            )
    return ref_shape, np.asarray(ref_affine, dtype=float)


def read_mask(spec: SmriSpec, shape, affine) -> np.ndarray:
    """Load the given mask and check it is on the images' grid."""
    img, mask_shape = _header(spec.mask)
    if mask_shape != tuple(shape) or not np.allclose(img.affine, affine, atol=_AFFINE_TOL):
        raise CohortError(
            f"mask grid {mask_shape} does not match the images' grid {tuple(shape)} (shape or affine)",
            file=spec.mask,
        )
    mask = _volume(img, spec.mask, None) > 0
    if not mask.any():
        raise CohortError("mask is empty", file=spec.mask)
    return mask


def auto_mask(spec: SmriSpec, subjects, shape) -> np.ndarray:
    """Voxels whose mean gray matter across subjects exceeds ``spec.mask_threshold``."""
    import nibabel as nib

    total = np.zeros(shape, dtype=np.float64)
    for subject in subjects:
        path = smri_path(spec, subject)
        total += _volume(nib.load(path), path, subject)
    mask = total / len(subjects) > spec.mask_threshold
    if not mask.any():
        raise CohortError(
            f"automatic mask is empty: no voxel has mean gray matter above {spec.mask_threshold}; "
            "set smri.mask_threshold or give smri.mask",
            file=spec.template,
        )
    return mask


def default_cache_dir() -> Path:
    """``$MIGTRANS_CACHE_DIR``, else ``$XDG_CACHE_HOME/migtrans``, else ``~/.cache/migtrans``: a folder of the
    user's own (the cache holds every subject's gray matter)."""
    env = os.environ.get("MIGTRANS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "migtrans"


def private_cache_dir(cache_dir=None) -> Path:
    """The cache folder, created private (0700) if new; refused when another user owns it or others can
    write to it, since a file planted there would be read as a subject's data."""
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = folder.stat()
    except OSError as exc:
        raise CohortError(
            f"cannot create the sMRI cache folder ({exc.strerror}); set MIGTRANS_CACHE_DIR", file=folder
        ) from None
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise CohortError(
            "the sMRI cache folder belongs to another user; set MIGTRANS_CACHE_DIR to a folder of your own", file=folder
        )
    if info.st_mode & 0o022:
        raise CohortError(
            "the sMRI cache folder is writable by other users; chmod go-w it or set MIGTRANS_CACHE_DIR", file=folder
        )
    return folder


def _cache_key(spec: SmriSpec, subjects, mask: np.ndarray) -> str:
    """SHA-256 of every image's bytes, in subject order, and of the mask: the cache is keyed by content, so
    a rewritten file is read again whatever its name, size or time stamps say."""
    digest = hashlib.sha256()
    for subject in subjects:
        with open(smri_path(spec, subject), "rb") as handle:
            file_digest = hashlib.file_digest(handle, "sha256") if hasattr(hashlib, "file_digest") else None
            if file_digest is None:  # Python 3.10
                file_digest = hashlib.sha256(handle.read())
        digest.update(file_digest.digest())
    digest.update(str(mask.shape).encode())
    digest.update(np.packbits(mask).tobytes())
    return digest.hexdigest()[:32]


def cache_voxels(spec: SmriSpec, subjects, mask: np.ndarray, cache_dir=None) -> np.memmap:
    """Masked voxels of every subject as a read-only (n, V) float32 memmap, reused when the images' content
    and the mask are unchanged. The cache folder is private to the user and names no subject."""
    import nibabel as nib

    cache_dir = private_cache_dir(cache_dir)
    key = _cache_key(spec, subjects, mask)
    target = cache_dir / f"voxels-{key}.f32"
    shape = (len(subjects), int(mask.sum()))
    if target.exists() and target.stat().st_size == 4 * shape[0] * shape[1]:
        return np.memmap(target, dtype=np.float32, mode="r", shape=shape)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".voxels-", suffix=".tmp")  # 0600
    try:
        # Plain writes, one subject at a time: pages written through a memmap would stay resident.
        with os.fdopen(fd, "wb") as handle:
            for subject in subjects:
                path = smri_path(spec, subject)
                handle.write(_volume(nib.load(path), path, subject)[mask].astype(np.float32).tobytes())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return np.memmap(target, dtype=np.float32, mode="r", shape=shape)
