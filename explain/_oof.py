"""Out-of-fold access to a run: each subject's inputs prepared by, and scored with, the model of the
fold that held it out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from migtrans.data import load_cohort
from migtrans.training import load_fold, open_run
from migtrans.training._loop import resolve_device


@dataclass
class FoldModel:
    fold: int
    model: torch.nn.Module
    prep: object
    test_idx: np.ndarray  # rows of the cohort held out by this fold


class OutOfFold:
    """A run's fold models and cohort, to compute anything per subject with its own held-out model.

    Parameters
    ----------
    run_dir : path
    device : str
        "auto", "cpu" or "cuda[:i]".
    cohort : Cohort, optional
        Already loaded cohort (default: the run's cohort file).
    """

    def __init__(self, run_dir, *, device="auto", cohort=None, cache_mb=2048):
        self.run = open_run(run_dir)
        # prepared held-out inputs, kept when they fit in cache_mb: ablations and deletion curves score
        # the same subjects dozens of times, and preparing (reading, cropping) them dominates otherwise
        self.cache_mb = cache_mb
        self._prepared = {}
        self.cohort = cohort if cohort is not None else load_cohort(self.run.cohort_path)
        self.device = resolve_device(device)
        self.modalities = self.run.train.modalities
        row = {s: i for i, s in enumerate(self.cohort.subject_ids)}
        self.folds = []
        for k in range(1, self.run.n_folds + 1):
            model, prep, info = load_fold(self.run, k, self.cohort)
            test_idx = np.array([row[s] for s in info["test_subjects"]], dtype=np.int64)
            self.folds.append(FoldModel(k, model.to(self.device).eval(), prep, test_idx))
        self.fold_of_row = np.zeros(self.cohort.n_subjects, dtype=np.int64)
        for f in self.folds:
            self.fold_of_row[f.test_idx] = f.fold

    def inputs(self, fold: FoldModel, idx) -> dict:
        """Model inputs (float32 tensors on the device) for cohort rows ``idx``, prepared by ``fold``."""
        arrays = fold.prep.transform(self.cohort, idx)
        return {k: torch.from_numpy(v).to(self.device) for k, v in arrays.items()}

    def _held_out_batches(self, fold: FoldModel, batch_size):
        """(rows, inputs) batches of a fold's held-out subjects; cached when they fit in ``cache_mb``."""
        key = (fold.fold, batch_size)
        if key in self._prepared:
            return self._prepared[key]
        batches = [(fold.test_idx[s:s + batch_size], self.inputs(fold, fold.test_idx[s:s + batch_size]))
                   for s in range(0, len(fold.test_idx), batch_size)]
        size = sum(t.numel() * t.element_size() for _, inputs in batches for t in inputs.values())
        held = sum(t.numel() * t.element_size() for b in self._prepared.values() for _, i in b for t in i.values())
        if held + size <= self.cache_mb * 2**20:
            self._prepared[key] = batches
        return batches

    def baselines(self, fold: FoldModel, kind="mean") -> dict:
        """One baseline row per modality in the fold's input space.

        ``"mean"``: the training-fold mean, which standardisation maps to 0 (the default).
        ``"zero"``: raw zero dosage / zero connectivity / zero gray matter, standardised.
        """
        prep, out = fold.prep, {}
        for m in self.modalities:
            if kind == "mean":
                if m == "smri":
                    out[m] = np.zeros((1, *prep.volume_shape), np.float32)
                elif m == "fnc":
                    out[m] = np.zeros((1, *prep.fnc_mean.shape), np.float32)
                else:
                    out[m] = np.zeros((1, *prep.snp_mean.shape), np.float32)
            elif kind == "zero":
                if m == "snp":
                    out[m] = (-prep.snp_mean / prep.snp_sd)[None].astype(np.float32)
                elif m == "fnc":
                    out[m] = (-prep.fnc_mean / prep.fnc_sd)[None].astype(np.float32)
                else:
                    out[m] = prep.voxels_to_volumes((-prep.voxel_mean / prep.voxel_sd)[None])
            else:
                from migtrans._errors import ParameterError

                raise ParameterError(f"baseline: expected 'mean' or 'zero', found {kind!r}")
        return {k: torch.from_numpy(v).to(self.device) for k, v in out.items()}

    @torch.no_grad()
    def log_odds(self, modify=None, *, batch_size=128) -> np.ndarray:
        """Out-of-fold positive-class log-odds for every subject, optionally after ``modify(inputs, fold)``
        edits each batch of inputs (for ablations and deletion curves)."""
        out = np.zeros(self.cohort.n_subjects)
        for fold in self.folds:
            for idx, prepared in self._held_out_batches(fold, batch_size):
                # a shallow copy: modify() replaces entries, never edits the cached tensors in place
                inputs = dict(prepared)
                if modify is not None:
                    inputs = modify(inputs, fold)
                logits = fold.model(**inputs).float()
                out[idx] = (logits[:, 1] - logits[:, 0]).cpu().numpy()
        return out
