"""`Attributions`: held-out attributions of the explained subjects, per modality, with the fold model(s)
each came from; saved as NPY/CSV/JSON/NIfTI (never pickles) so explaining and reporting can run apart."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from migtrans.exceptions import RunError
from migtrans.utils import atomic_write_text, shareable, to_builtin

from ._exports import write_exports
from ._folder import ExplanationFolder

_ARRAYS = ("snp", "fnc", "smri", "rollout_snp", "rollout_fnc", "rollout_smri")


@dataclass
class Attributions:
    """Per-subject attributions computed by models that never trained on the subject.

    Attributes
    ----------
    subjects : DataFrame
        One row per explained subject: ``subject_id``, ``fold`` (1-based, the fold whose model explained
        it; 0 for the explanation set, explained by the mean of all fold models),
        ``label`` (1 = positive), ``prob_positive``, ``log_odds``, ``ig_delta``, ``ig_relative_delta``,
        and the rollout share of each modality (``rollout_share_<modality>``).
    snp : ndarray (n, m) or None
        IG attribution of each SNP (standardised dosage input). This and ``smri``, when large, are memory
        maps (of `explain_run`'s temporary files, or of the saved folder, by `load`).
    fnc : ndarray (n, K, K) or None
        IG attribution of each edge, symmetric: entry (i, j) = (j, i) = the edge's whole attribution.
    smri : ndarray (n, V) or None
        IG attribution of each masked voxel; `mask` and `affine` map it to the input grid.
    rollout_snp, rollout_fnc, rollout_smri : ndarray or None
        Attention-rollout relevance per locus token (n, L), node token (n, K), slice token (n, S).
    mask, affine : arrays for the sMRI grid
    settings : dict
        How the attributions were computed (baselines, steps, rollout method, ...).
    ablation, deletion : DataFrame or None
        Faithfulness checks, when computed (`modality_ablation`, `deletion_curve`).
    tables : dict of str -> DataFrame
        The ranked result tables (`result_tables`), when computed; empty otherwise.

    Every part, optional ones included, is written by `save` and read back by `load`.
    """

    subjects: pd.DataFrame
    snp: np.ndarray | None = None
    fnc: np.ndarray | None = None
    smri: np.ndarray | None = None
    rollout_snp: np.ndarray | None = None
    rollout_fnc: np.ndarray | None = None
    rollout_smri: np.ndarray | None = None
    mask: np.ndarray | None = None
    affine: np.ndarray | None = None
    settings: dict = field(default_factory=dict)
    ablation: pd.DataFrame | None = None
    deletion: pd.DataFrame | None = None
    tables: dict = field(default_factory=dict)

    @property
    def modalities(self) -> tuple:
        return tuple(m for m in ("snp", "fnc", "smri") if getattr(self, m) is not None)

    def edges(self) -> np.ndarray:
        """FNC attributions as (n, K(K-1)/2) upper triangles, row-major."""
        k = self.fnc.shape[1]
        iu = np.triu_indices(k, 1)
        return self.fnc[:, iu[0], iu[1]]

    def smri_image(self, values=None):
        """A NIfTI image of per-voxel ``values`` (default: the mean attribution over subjects)."""
        import nibabel as nib

        values = np.asarray(self.smri).mean(axis=0) if values is None else np.asarray(values)
        volume = np.zeros(self.mask.shape, dtype=np.float32)
        volume[self.mask] = values
        return nib.Nifti1Image(volume, self.affine)

    # ------------------------------------------------------------------ save/load
    def save(self, folder) -> Path:
        """Write ``subjects.csv``, one ``<name>.npy`` per array, ``settings.json``, ``mask.nii.gz``,
        ``smri_attribution.nii.gz``, and the optional parts present: ``ablation.csv``, ``deletion.csv``,
        one ``<name>.csv`` per result table (floats that round-trip) and the tables' community-format
        copies (`write_exports`: GWAS-SSF and FUMA summary statistics, BrainNet Viewer node and edge files)."""
        import nibabel as nib

        files = ExplanationFolder(folder)
        files.path.mkdir(parents=True, exist_ok=True)
        self.subjects.to_csv(files.subjects, index=False, float_format="%.17g")
        for name in _ARRAYS:
            value = getattr(self, name)
            if value is not None:
                _save_array(files.array(name), np.asarray(value, dtype=np.float32))
        if self.mask is not None:
            nib.save(nib.Nifti1Image(self.mask.astype(np.uint8), self.affine), files.mask)
            if self.smri is not None:
                nib.save(self.smri_image(), files.smri_map)
        for name, table in self._optional_tables().items():
            table.to_csv(files.table(name), index=False, float_format="%.17g")
        write_exports(files.path, self.tables, self.settings)
        atomic_write_text(files.settings, json.dumps(to_builtin(self.settings), indent=2, sort_keys=True) + "\n")
        return files.path

    def _optional_tables(self) -> dict:
        checks = {"ablation": self.ablation, "deletion": self.deletion}
        return {**{k: v for k, v in checks.items() if v is not None}, **self.tables}

    @classmethod
    def load(cls, folder, *, mmap=True) -> "Attributions":
        """Read a folder written by `save`; large arrays are memory-mapped."""
        import nibabel as nib

        files = ExplanationFolder(folder)
        if not files.subjects.is_file():
            raise RunError(f"{files.path}: no attributions here ({files.SUBJECTS} missing; run the explanation first)")
        subjects = pd.read_csv(files.subjects, dtype={"subject_id": str})
        arrays = {}
        for name in _ARRAYS:
            path = files.array(name)
            if path.is_file():
                arrays[name] = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        mask = affine = None
        if files.mask.is_file():
            img = nib.load(files.mask)
            mask, affine = np.asarray(img.dataobj).astype(bool), img.affine
        settings = json.loads(files.settings.read_text()) if files.settings.is_file() else {}
        optional = {
            name: pd.read_csv(files.table(name), dtype=dict.fromkeys(files.TEXT_COLUMNS, str))
            for name in (*files.CHECK_TABLES, *files.RESULT_TABLES, *files.COHORT_TABLES)
            if files.table(name).is_file()
        }
        tables = {name: optional.pop(name) for name in (*files.RESULT_TABLES, *files.COHORT_TABLES) if name in optional}
        return cls(subjects=subjects, mask=mask, affine=affine, settings=settings, tables=tables, **optional, **arrays)


def _save_array(path: Path, values: np.ndarray) -> None:
    """``np.save`` through a temporary file and a rename. ``values`` may be mapped from the very file it
    replaces (tables rebuilt in place), which must not be truncated under the map; and a contiguous array,
    mapped or not, is written straight from its pages (``tofile``), never copied whole into memory."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, values, allow_pickle=False)
        shareable(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
