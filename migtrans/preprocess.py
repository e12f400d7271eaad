"""Preprocessing fitted on a training fold only: genotype imputation and standardisation, FNC edge
standardisation, sMRI voxel standardisation and cropping to the mask's bounding box."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_CHUNK = 256  # subjects per chunk when streaming the memory-mapped voxels


def _safe_sd(sd):
    sd = np.asarray(sd, dtype=np.float64)
    return np.where(np.isfinite(sd) & (sd > 1e-8), sd, 1.0).astype(np.float32)


@dataclass
class Preprocessor:
    """Per-modality statistics learned from training subjects, applied to any subjects.

    Attributes hold only arrays and plain values so the state saves to NPZ (no pickles).
    """

    modalities: tuple = ()
    snp_mean: np.ndarray | None = None
    snp_sd: np.ndarray | None = None
    n_imputed_train: int = 0
    fnc_mean: np.ndarray | None = None
    fnc_sd: np.ndarray | None = None
    voxel_mean: np.ndarray | None = None
    voxel_sd: np.ndarray | None = None
    mask: np.ndarray | None = None
    bbox: np.ndarray | None = None  # (3, 2) start/stop of the mask's bounding box
    extra: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ fitting
    def fit(self, cohort, train_idx, modalities):
        """Learn the statistics from ``cohort`` rows ``train_idx`` only."""
        train_idx = np.sort(np.asarray(train_idx))
        self.modalities = tuple(modalities)
        if "snp" in self.modalities:
            g = cohort.genotypes[train_idx]
            with np.errstate(invalid="ignore"):
                mean = np.nanmean(g, axis=0) if np.isnan(g).any() else g.mean(axis=0)
            mean = np.where(np.isfinite(mean), mean, 0.0)
            filled = np.where(np.isnan(g), mean, g)
            self.snp_mean = mean.astype(np.float32)
            self.snp_sd = _safe_sd(filled.std(axis=0))
            self.n_imputed_train = int(np.isnan(g).sum())
        if "fnc" in self.modalities:
            f = cohort.fnc[train_idx].astype(np.float64)
            self.fnc_mean = f.mean(axis=0).astype(np.float32)
            self.fnc_sd = _safe_sd(f.std(axis=0))
        if "smri" in self.modalities:
            v = cohort.voxels
            total = np.zeros(v.shape[1])
            total_sq = np.zeros(v.shape[1])
            for start in range(0, len(train_idx), _CHUNK):
                block = np.asarray(v[train_idx[start : start + _CHUNK]], dtype=np.float64)
                total += block.sum(axis=0)
                total_sq += (block**2).sum(axis=0)
            n = len(train_idx)
            mean = total / n
            self.voxel_mean = mean.astype(np.float32)
            self.voxel_sd = _safe_sd(np.sqrt(np.maximum(total_sq / n - mean**2, 0.0)))
            self.mask = np.asarray(cohort.mask, dtype=bool)
            where = np.argwhere(self.mask)
            self.bbox = np.stack([where.min(axis=0), where.max(axis=0) + 1], axis=1)
        return self

    # ---------------------------------------------------------------- transform
    @property
    def volume_shape(self):
        return tuple(int(b) for b in (self.bbox[:, 1] - self.bbox[:, 0])) if self.bbox is not None else None

    def transform(self, cohort, idx, *, volumes=True) -> dict:
        """Model inputs for rows ``idx``: float32 arrays keyed by modality.

        sMRI comes as ``"smri"`` volumes cropped to the mask's bounding box, or with
        ``volumes=False`` as ``"voxels"`` (n, V) masked values (for the linear baselines).
        """
        idx = np.asarray(idx)
        out = {}
        if "snp" in self.modalities:
            g = cohort.genotypes[idx]
            g = np.where(np.isnan(g), self.snp_mean, g)
            out["snp"] = ((g - self.snp_mean) / self.snp_sd).astype(np.float32)
        if "fnc" in self.modalities:
            out["fnc"] = ((cohort.fnc[idx] - self.fnc_mean) / self.fnc_sd).astype(np.float32)
        if "smri" in self.modalities:
            values = ((np.asarray(cohort.voxels[idx]) - self.voxel_mean) / self.voxel_sd).astype(np.float32)
            if volumes:
                out["smri"] = self.voxels_to_volumes(values)
            else:
                out["voxels"] = values
        return out

    def voxels_to_volumes(self, values) -> np.ndarray:
        """(n, V) masked values -> (n, X, Y, Z) volumes cropped to the mask's bounding box, 0 outside."""
        (x0, x1), (y0, y1), (z0, z1) = self.bbox
        crop = self.mask[x0:x1, y0:y1, z0:z1]
        volumes = np.zeros((len(values), *crop.shape), dtype=np.float32)
        volumes[:, crop] = values
        return volumes

    def volumes_to_voxels(self, volumes) -> np.ndarray:
        """Inverse of `voxels_to_volumes` (used to map attributions back to the mask)."""
        (x0, x1), (y0, y1), (z0, z1) = self.bbox
        return np.asarray(volumes)[:, self.mask[x0:x1, y0:y1, z0:z1]]

    # ---------------------------------------------------------------- save/load
    _ARRAYS = ("snp_mean", "snp_sd", "fnc_mean", "fnc_sd", "voxel_mean", "voxel_sd", "mask", "bbox")

    def save(self, path):
        """Write the state as an NPZ (arrays and a few scalars; loadable with allow_pickle=False)."""
        arrays = {k: getattr(self, k) for k in self._ARRAYS if getattr(self, k) is not None}
        arrays["modalities"] = np.array(self.modalities, dtype="U8")
        arrays["n_imputed_train"] = np.array(self.n_imputed_train)
        with open(path, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    @classmethod
    def load(cls, path):
        with np.load(path, allow_pickle=False) as data:
            kwargs = {k: data[k] for k in cls._ARRAYS if k in data.files}
            if "mask" in kwargs:
                kwargs["mask"] = kwargs["mask"].astype(bool)
            return cls(
                modalities=tuple(str(m) for m in data["modalities"]),
                n_imputed_train=int(data["n_imputed_train"]),
                **kwargs,
            )
