"""Held-out access to a run: the subjects to explain, each prepared by and scored with models that never
trained on it — the explanation set with every fold model (their ensemble), or, for runs without one,
every subject with the model of the fold that held it out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from migtrans.data import load_cohort
from migtrans.exceptions import RunError
from migtrans.training import load_fold, open_run, resolve_device


@dataclass
class FoldModel:
    fold: int
    model: torch.nn.Module
    prep: object
    test_idx: np.ndarray  # rows of the cohort held out by this fold


class OutOfFold:
    """A run's fold models and cohort, to compute anything per explained subject with held-out models.

    With an explanation set (``TrainConfig.explain_fraction`` > 0), the explained subjects are that set
    and each is scored by the ensemble of all fold models: the mean of their log-odds, so attributions
    are the mean of each model's (both are linear in the model's output). Without one, every subject is
    explained by the model of the fold that held it out.

    Parameters
    ----------
    run_dir : path
    device : str
        "auto", "cpu" or "cuda[:i]".
    cohort : Cohort, optional
        Already loaded cohort (default: the run's cohort file).
    external : bool
        ``cohort`` is an external cohort (`migtrans.training.load_external_cohort`: new subjects, aligned to
        the run's): every subject is explained by the ensemble of all fold models, as an explanation set.
    """

    def __init__(self, run_dir, *, device="auto", cohort=None, external=False, cache_mb=2048):
        self.run = open_run(run_dir)
        if external and cohort is None:
            raise RunError("an external cohort must be loaded first (migtrans.training.load_external_cohort)")
        self.external = bool(external)
        # prepared held-out inputs, kept when they fit in cache_mb: ablations and deletion curves score
        # the same subjects dozens of times, and preparing (reading, cropping) them dominates otherwise
        self.cache_mb = cache_mb
        self._prepared = {}
        self._held_out_means = {}
        self.cohort = cohort if cohort is not None else load_cohort(self.run.cohort_path)
        self.device = resolve_device(device)
        self.modalities = self.run.train.modalities
        self.run.check_folds()
        row = {s: i for i, s in enumerate(self.cohort.subject_ids)}

        def rows_of(subjects, k):
            missing = [s for s in subjects if s not in row]
            if missing:
                why = self.cohort.dropped.get(missing[0])
                raise RunError(
                    f"{self.run.fold_dir(k) / 'fold.json'}: subject {missing[0]!r} of the run is not in "
                    f"the cohort {'any more (' + why + ')' if why else ''}"
                    + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                )
            return np.array([row[s] for s in subjects], dtype=np.int64)

        self.folds, held = [], set()
        for k in range(1, self.run.n_folds + 1):
            if external:  # none of its subjects trained any fold model: all are held out of every fold
                test_idx = np.arange(self.cohort.n_subjects)
            else:
                info = self.run.fold_info(k)
                held.add(tuple(info.get("explanation_subjects", ())))
                rows_of(info.get("explanation_subjects", []), k)
                test_idx = rows_of(info["test_subjects"], k)
            model, prep, _ = load_fold(self.run, k, self.cohort)
            self.folds.append(FoldModel(k, model.to(self.device).eval(), prep, test_idx))
        if len(held) > 1:
            raise RunError(f"{self.run.path}: the folds disagree on the explanation set (fold.json files edited?)")
        if external:
            self.explanation_rows = np.arange(self.cohort.n_subjects, dtype=np.int64)
        else:
            self.explanation_rows = np.array([row[s] for s in held.pop()], dtype=np.int64)
        if len(self.explanation_rows):
            self.rows = np.sort(self.explanation_rows)
        else:
            self.rows = np.sort(np.concatenate([f.test_idx for f in self.folds]))
        # fold that explains each explained subject: its held-out fold, or 0 for the ensemble of all folds
        self.fold_of_row = np.zeros(self.cohort.n_subjects, dtype=np.int64)
        if not self.has_explanation_set:
            for f in self.folds:
                self.fold_of_row[f.test_idx] = f.fold
        self._position = np.full(self.cohort.n_subjects, -1, dtype=np.int64)
        self._position[self.rows] = np.arange(len(self.rows))

    @property
    def has_explanation_set(self) -> bool:
        """True when the explained subjects were held out of every training fold: the run's explanation set,
        or an external cohort; they are explained by the ensemble of the fold models."""
        return len(self.explanation_rows) > 0

    @property
    def labels(self) -> np.ndarray:
        """Labels of the explained subjects, in `rows` order."""
        return self.cohort.labels[self.rows]

    def position(self, rows) -> np.ndarray:
        """Position of cohort ``rows`` among the explained subjects (`rows`)."""
        return self._position[np.asarray(rows)]

    def passes(self):
        """(fold model, cohort rows it explains, weight) triples: summing weight x any per-subject output over
        the passes gives the explained subjects' value (the ensemble mean, or each own fold's)."""
        for fold in self.folds:
            if self.has_explanation_set:
                yield fold, self.rows, 1.0 / len(self.folds)
            else:
                yield fold, fold.test_idx, 1.0

    def inputs(self, fold: FoldModel, idx) -> dict:
        """Model inputs (float32 tensors on the device) for cohort rows ``idx``, prepared by ``fold``."""
        arrays = fold.prep.transform(self.cohort, idx)
        return {k: torch.from_numpy(v).to(self.device) for k, v in arrays.items()}

    def _held_out_batches(self, fold: FoldModel, rows, batch_size):
        """(rows, inputs) batches of the subjects a fold explains; cached when they fit in ``cache_mb``."""
        key = (fold.fold, batch_size)
        if key in self._prepared:
            return self._prepared[key]
        batches = [
            (rows[s : s + batch_size], self.inputs(fold, rows[s : s + batch_size]))
            for s in range(0, len(rows), batch_size)
        ]
        size = sum(t.numel() * t.element_size() for _, inputs in batches for t in inputs.values())
        held = sum(t.numel() * t.element_size() for b in self._prepared.values() for _, i in b for t in i.values())
        if held + size <= self.cache_mb * 2**20:
            self._prepared[key] = batches
        return batches

    def explained_rows(self, fold: FoldModel) -> np.ndarray:
        """Cohort rows that ``fold``'s model explains: its held-out fold, or the whole explanation set."""
        return self.rows if self.has_explanation_set else fold.test_idx

    def baselines(self, fold: FoldModel, kind="mean") -> dict:
        """One baseline row per modality in the fold's input space.

        ``"mean"``: the training-fold mean, which standardisation maps to 0 (the default).
        ``"held_out_mean"``: the mean input of the subjects this fold's model explains (label-free). It
        removes the (held-out mean - training mean) x gradient part of a null feature's attributions, which
        differs between cases and controls wherever the model has learned something; on the demo it
        lowered null features' small per-fold p-values only a little (docs/benchmarks.md, "Issue 16").
        ``"zero"``: raw zero dosage / zero connectivity / zero gray matter, standardised.
        """
        if kind == "held_out_mean":
            return self._held_out_mean(fold)
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
                from migtrans.exceptions import ParameterError

                raise ParameterError(f"baseline: expected 'mean', 'held_out_mean' or 'zero', found {kind!r}")
        return {k: torch.from_numpy(v).to(self.device) for k, v in out.items()}

    @torch.no_grad()
    def _held_out_mean(self, fold: FoldModel, batch_size=64) -> dict:
        key = fold.fold
        if key not in self._held_out_means:
            rows = self.explained_rows(fold)
            total = {}
            for s in range(0, len(rows), batch_size):
                for m, t in self.inputs(fold, rows[s : s + batch_size]).items():
                    part = t.double().sum(dim=0, keepdim=True)
                    total[m] = part if m not in total else total[m] + part
            self._held_out_means[key] = {m: (t / len(rows)).float() for m, t in total.items()}
        return self._held_out_means[key]

    @torch.no_grad()
    def log_odds(self, modify=None, *, batch_size=128) -> np.ndarray:
        """Held-out positive-class log-odds of the explained subjects (`rows` order), optionally after
        ``modify(inputs, fold)`` edits each batch of inputs (for ablations and deletion curves)."""
        out = np.zeros(len(self.rows))
        for fold, rows, weight in self.passes():
            for idx, prepared in self._held_out_batches(fold, rows, batch_size):
                # a shallow copy: modify() replaces entries, never edits the cached tensors in place
                inputs = dict(prepared)
                if modify is not None:
                    inputs = modify(inputs, fold)
                logits = fold.model(**inputs).float()
                out[self.position(idx)] += weight * (logits[:, 1] - logits[:, 0]).cpu().numpy()
        return out
