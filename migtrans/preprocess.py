"""Preprocessing fitted on a training fold only: covariate adjustment (least-squares residuals on the
cohort's covariates and site for FNC and sMRI, on the genetic principal components for genotypes), genotype
imputation and standardisation, FNC edge standardisation, sMRI voxel standardisation and cropping to the
mask's bounding box."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .exceptions import ParameterError

_CHUNK = 256  # subjects per chunk when streaming the memory-mapped voxels


def _safe_sd(sd):
    sd = np.asarray(sd, dtype=np.float64)
    return np.where(np.isfinite(sd) & (sd > 1e-8), sd, 1.0).astype(np.float32)


ADJUSTMENTS = ("none", "regress")


def covariate_columns(cohort, modality) -> pd.DataFrame:
    """The columns a modality is adjusted for, one row per subject: the cohort's covariates and its site
    (always, as a category) for FNC and sMRI, and for sMRI also the total intracranial volume when the cohort
    gives one; the genetic principal components for genotypes (age, sex or scanner do not act on a genotype,
    ancestry does)."""
    if modality == "snp":
        pcs = getattr(cohort, "pcs", None)
        return pd.DataFrame(index=cohort.covariates.index) if pcs is None else pcs
    columns = cohort.covariates.copy()
    if cohort.site is not None:
        site_column = cohort.spec.phenotypes.site_column if cohort.spec is not None else "site"
        if site_column not in columns.columns:
            columns[site_column] = np.asarray(cohort.site).astype(str)
    tiv = getattr(cohort, "tiv", None)
    if modality == "smri" and tiv is not None and "tiv" not in columns.columns:
        columns["tiv"] = tiv  # head size scales gray matter, not connectivity
    return columns


@dataclass
class _Design:
    """Covariate columns coded from a training fold: numeric ones centred and scaled by the fold's mean and
    SD, categories as indicators of the fold's levels (first level dropped) centred by the fold's share."""

    names: np.ndarray  # "age" or "site[s2]"
    center: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, frame: pd.DataFrame, rows) -> "_Design":
        names = []
        for column in frame.columns:
            values = frame[column].iloc[rows]
            if pd.api.types.is_numeric_dtype(values):
                names.append(column)
            else:
                names += [f"{column}[{level}]" for level in sorted(values.astype(str).unique())[1:]]
        raw = _coded(frame, names, rows)
        scale = raw.std(axis=0)
        return cls(np.array(names, dtype=str), raw.mean(axis=0), np.where(scale > 1e-12, scale, 1.0))

    def matrix(self, frame: pd.DataFrame, rows) -> np.ndarray:
        return (_coded(frame, self.names, rows) - self.center) / self.scale


def _coded(frame, names, rows) -> np.ndarray:
    columns = []
    for name in names:
        column, _, level = name.partition("[")
        values = frame[column].iloc[rows]
        if level:
            columns.append((values.astype(str) == level[:-1]).to_numpy(float))
        else:
            columns.append(values.to_numpy(float))
    return np.column_stack(columns) if columns else np.zeros((len(rows), 0))


@dataclass
class Preprocessor:
    """Per-modality statistics learned from training subjects, applied to any subjects.

    Attributes hold only arrays and plain values so the state saves to NPZ (no pickles).

    With ``adjust="regress"`` each modality's features are first replaced by their residuals from a
    least-squares fit on `covariate_columns`, fitted on the training subjects only and applied with the same
    coefficients to any subject (a category level absent from the training fold, e.g. the held-out site of
    leave-one-site-out, is coded as the reference level).
    """

    modalities: tuple = ()
    adjust: str = "none"
    designs: dict = field(default_factory=dict)  # modality -> _Design
    betas: dict = field(default_factory=dict)  # modality -> (columns, features) float32
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
    def fit(self, cohort, train_idx, modalities, adjust="none"):
        """Learn the statistics from ``cohort`` rows ``train_idx`` only."""
        train_idx = np.sort(np.asarray(train_idx))
        self.modalities = tuple(modalities)
        if adjust not in ADJUSTMENTS:
            raise ParameterError(f"adjust: expected one of {', '.join(ADJUSTMENTS)}, found {adjust!r}")
        self.adjust = adjust
        if adjust == "regress":
            for m in self.modalities:
                design = _Design.fit(covariate_columns(cohort, m), train_idx)
                if len(design.names):
                    self.designs[m] = design
        if "snp" in self.modalities:
            g = cohort.genotypes[train_idx]
            with np.errstate(invalid="ignore"):
                mean = np.nanmean(g, axis=0) if np.isnan(g).any() else g.mean(axis=0)
            mean = np.where(np.isfinite(mean), mean, 0.0)
            filled = np.where(np.isnan(g), mean, g)
            self.snp_mean = mean.astype(np.float32)
            if "snp" in self.designs:
                filled = self._fit_beta("snp", cohort, train_idx, filled - mean)
            self.snp_sd = _safe_sd(filled.std(axis=0))
            self.n_imputed_train = int(np.isnan(g).sum())
        if "fnc" in self.modalities:
            f = cohort.fnc[train_idx].astype(np.float64)
            self.fnc_mean = f.mean(axis=0).astype(np.float32)
            if "fnc" in self.designs:
                k = f.shape[1]
                f = self._fit_beta("fnc", cohort, train_idx, (f - f.mean(axis=0)).reshape(len(f), -1)).reshape(-1, k, k)
            self.fnc_sd = _safe_sd(f.std(axis=0))
        if "smri" in self.modalities:
            v = cohort.voxels
            n = len(train_idx)
            design = self.designs.get("smri")
            D = None if design is None else design.matrix(covariate_columns(cohort, "smri"), train_idx)
            total = np.zeros(v.shape[1])
            cross = None if D is None else np.zeros((D.shape[1], v.shape[1]))
            for start in range(0, n, _CHUNK):
                block = np.asarray(v[train_idx[start : start + _CHUNK]], dtype=np.float64)
                total += block.sum(axis=0)
                if D is not None:
                    cross += D[start : start + _CHUNK].T @ block  # centred columns: D'X = D'(X - mean)
            mean = total / n
            if D is not None:
                # pinv: a covariate constant within the fold is a zero column
                self.betas["smri"] = (np.linalg.pinv(D.T @ D) @ cross).astype(np.float32)
            # the SD of the (adjusted) values about their mean, in a second pass
            total_sq = np.zeros(v.shape[1])
            for start in range(0, n, _CHUNK):
                block = np.asarray(v[train_idx[start : start + _CHUNK]], dtype=np.float64) - mean
                if D is not None:
                    block -= D[start : start + _CHUNK] @ self.betas["smri"]
                total_sq += (block**2).sum(axis=0)
            self.voxel_mean = mean.astype(np.float32)
            self.voxel_sd = _safe_sd(np.sqrt(total_sq / n))
            self.mask = np.asarray(cohort.mask, dtype=bool)
            where = np.argwhere(self.mask)
            self.bbox = np.stack([where.min(axis=0), where.max(axis=0) + 1], axis=1)
        return self

    def _fit_beta(self, modality, cohort, rows, centred, chunk=65536):
        """Least-squares coefficients of centred features (n, f) on the modality's design; the residuals.

        Through the pseudo-inverse of the small design (n x q) and in column blocks, so that no float64 copy
        of the features exists: at 250 subjects x 500,000 SNPs a full-width least-squares fit held several.
        """
        D = self.designs[modality].matrix(covariate_columns(cohort, modality), rows)
        solve = np.linalg.pinv(D)  # (q, n)
        beta = np.empty((D.shape[1], centred.shape[1]), dtype=np.float32)
        residual = np.empty(centred.shape, dtype=np.float32)
        for start in range(0, centred.shape[1], chunk):
            block = np.asarray(centred[:, start : start + chunk], dtype=np.float64)
            b = solve @ block
            beta[:, start : start + chunk] = b
            residual[:, start : start + chunk] = block - D @ b
        self.betas[modality] = beta
        return residual

    def _adjustment(self, modality, cohort, idx):
        """The fitted covariate part of rows ``idx`` (n, features), or None."""
        if modality not in self.designs:
            return None
        D = self.designs[modality].matrix(covariate_columns(cohort, modality), idx)
        return (D @ self.betas[modality]).astype(np.float32)

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
            g = np.where(np.isnan(g), self.snp_mean, g) - self.snp_mean
            fitted = self._adjustment("snp", cohort, idx)
            out["snp"] = ((g if fitted is None else g - fitted) / self.snp_sd).astype(np.float32)
        if "fnc" in self.modalities:
            f = cohort.fnc[idx] - self.fnc_mean
            fitted = self._adjustment("fnc", cohort, idx)
            if fitted is not None:
                f = f - fitted.reshape(f.shape)
            out["fnc"] = (f / self.fnc_sd).astype(np.float32)
        if "smri" in self.modalities:
            values = np.asarray(cohort.voxels[idx]) - self.voxel_mean
            fitted = self._adjustment("smri", cohort, idx)
            if fitted is not None:
                values = values - fitted
            values = (values / self.voxel_sd).astype(np.float32)
            if volumes:
                out["smri"] = self.voxels_to_volumes(values)
            else:
                out["voxels"] = values
        return out

    @property
    def crop_mask(self) -> np.ndarray:
        """The mask within its bounding box: where the masked voxels sit in the model's sMRI volume."""
        (x0, x1), (y0, y1), (z0, z1) = self.bbox
        return self.mask[x0:x1, y0:y1, z0:z1]

    def voxels_to_volumes(self, values) -> np.ndarray:
        """(n, V) masked values -> (n, X, Y, Z) volumes cropped to the mask's bounding box, 0 outside."""
        crop = self.crop_mask
        volumes = np.zeros((len(values), *crop.shape), dtype=np.float32)
        volumes[:, crop] = values
        return volumes

    def volumes_to_voxels(self, volumes) -> np.ndarray:
        """Inverse of `voxels_to_volumes` (used to map attributions back to the mask)."""
        return np.asarray(volumes)[:, self.crop_mask]

    # ---------------------------------------------------------------- save/load
    _ARRAYS = ("snp_mean", "snp_sd", "fnc_mean", "fnc_sd", "voxel_mean", "voxel_sd", "mask", "bbox")

    def save(self, path):
        """Write the state as an NPZ (arrays and a few scalars; loadable with allow_pickle=False)."""
        arrays = {k: getattr(self, k) for k in self._ARRAYS if getattr(self, k) is not None}
        arrays["modalities"] = np.array(self.modalities, dtype="U8")
        arrays["n_imputed_train"] = np.array(self.n_imputed_train)
        arrays["adjust"] = np.array(self.adjust)
        for m, design in self.designs.items():
            arrays[f"{m}_design_names"] = design.names
            arrays[f"{m}_design_center"] = design.center
            arrays[f"{m}_design_scale"] = design.scale
            arrays[f"{m}_beta"] = self.betas[m]
        with open(path, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    @classmethod
    def load(cls, path):
        with np.load(path, allow_pickle=False) as data:
            kwargs = {k: data[k] for k in cls._ARRAYS if k in data.files}
            if "mask" in kwargs:
                kwargs["mask"] = kwargs["mask"].astype(bool)
            modalities = tuple(str(m) for m in data["modalities"])
            designs = {
                m: _Design(data[f"{m}_design_names"], data[f"{m}_design_center"], data[f"{m}_design_scale"])
                for m in modalities
                if f"{m}_design_names" in data.files
            }
            return cls(
                modalities=modalities,
                adjust=str(data["adjust"]) if "adjust" in data.files else "none",
                designs=designs,
                betas={m: data[f"{m}_beta"] for m in designs},
                n_imputed_train=int(data["n_imputed_train"]),
                **kwargs,
            )
