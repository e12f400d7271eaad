"""Reopen a run folder: its resolved config and each fold's model and preprocessing.
Checkpoints load with ``weights_only=True``; anything needing arbitrary unpickling is refused."""

from __future__ import annotations

import json
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from .._errors import RunError
from ..preprocess import Preprocessor
from ._config import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def load_state_dict(path) -> dict:
    """Tensors of a checkpoint, refusing files that would execute code when unpickled."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunError(f"{path}: refused to load: not a plain tensor checkpoint ({first})") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise RunError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RunError(f"{path}: expected a dict of tensors (a state dict)")
    return state


@dataclass
class Run:
    """A finished run folder."""

    path: Path
    config: dict  # the resolved config.toml
    train: TrainConfig
    n_folds: int

    @property
    def cohort_path(self) -> Path:
        """The cohort file the run was trained on: where it was, or at the same place relative to the run
        folder when both were moved together."""
        recorded = Path(self.config["run"]["cohort"])
        relative = self.config["run"].get("cohort_relative")
        if recorded.is_file():
            return recorded
        if relative and (self.path / relative).is_file():
            return (self.path / relative).resolve()
        raise RunError(f"{self.path}: the run's cohort file {recorded} no longer exists "
                       "(move the cohort folder back, or beside the run as it was)")

    def fold_dir(self, k: int) -> Path:
        return self.path / "folds" / str(k)

    def fold_info(self, k: int) -> dict:
        return json.loads((self.fold_dir(k) / "fold.json").read_text())


def open_run(path) -> Run:
    """Check that ``path`` is a complete run folder and read its settings."""
    path = Path(path).expanduser().absolute()
    if not path.is_dir():
        raise RunError(f"{path}: run folder not found")
    config_path = path / "config.toml"
    if not config_path.is_file():
        raise RunError(f"{path}: not a run folder (no config.toml)")
    config = tomllib.loads(config_path.read_text())
    cfg = TrainConfig.from_dict(config["train"])
    for name in ("metrics.csv", "predictions.csv"):
        if not (path / name).is_file():
            raise RunError(f"{path}: incomplete run, {name} is missing (resume it with --resume)")
    for k in range(1, cfg.n_folds + 1):
        if not (path / "folds" / str(k) / "fold.json").is_file():
            raise RunError(f"{path}: incomplete run, fold {k} is missing (folds/{k}/fold.json)")
    return Run(path=path, config=config, train=cfg, n_folds=cfg.n_folds)


def load_fold(run: Run, k: int, cohort):
    """(model in eval mode, preprocessor, fold info) of fold ``k`` (1-based)."""
    from ..model import ModelConfig
    from ._run import build_model

    if run.train.model != "migtrans":
        raise RunError(f"{run.path}: fold models exist only for MIGTrans runs, this is a {run.train.model} run")
    fold_dir = run.fold_dir(k)
    prep = Preprocessor.load(fold_dir / "preprocess.npz")
    mcfg = ModelConfig.from_dict(run.config["model"])
    loci = run.train.loci(cohort) if "snp" in run.train.modalities else None
    model = build_model(mcfg, cohort, prep, loci)
    try:
        model.load_state_dict(load_state_dict(fold_dir / "model.pt"))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise RunError(f"{fold_dir / 'model.pt'}: does not fit the model described by config.toml "
                       f"(made by another migtrans version?): {first}") from None
    model.eval()
    return model, prep, run.fold_info(k)


def fold_of_subjects(run: Run) -> dict:
    """subject id -> 1-based fold in which it was held out."""
    out = {}
    for k in range(1, run.n_folds + 1):
        for subject in run.fold_info(k)["test_subjects"]:
            out[subject] = k
    return out


__all__ = ["Run", "fold_of_subjects", "load_fold", "load_state_dict", "open_run"]
