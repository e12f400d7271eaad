"""Reopen a run folder: its resolved config and each fold's model and preprocessing.
Checkpoints load with ``weights_only=True``; anything needing arbitrary unpickling is refused."""

from __future__ import annotations

import json
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..exceptions import ParameterError, RunError
from ..preprocess import Preprocessor
from ._config import TrainConfig
from ._folder import RunFolder

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
    except Exception as exc:  # noqa: BLE001 - whatever the unpickler says, the file is not a plain checkpoint
        raise RunError(
            f"{path}: refused to load: not a plain tensor checkpoint ({type(exc).__name__}); nothing in it was run"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RunError(f"{path}: expected a dict of tensors (a state dict)")
    return state


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{path}: not valid TOML ({exc})") from None


def read_json(path: Path, what="a JSON object"):
    """A run file's JSON content, or a `RunError` naming the file."""
    if not path.is_file():
        raise RunError(f"{path}: missing (incomplete or damaged run folder)")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise RunError(f"{path}: expected {what}, found {type(value).__name__}")
    return value


def _without_none(value):
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_without_none(v) for v in value]
    return value


_FOLD_LISTS = ("train_subjects", "val_subjects", "test_subjects")
CHECKSUMS = RunFolder.CHECKSUMS


def write_checksums(folder: Path) -> None:
    """``run.sha256``: the SHA-256 of every file of a finished run (``sha256sum -c run.sha256`` reads it), so
    that a file edited or swapped after training is caught when the run is opened."""
    from ..utils import atomic_write_text, sha256_file

    lines = [
        f"{sha256_file(path)}  {path.relative_to(folder).as_posix()}"
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != CHECKSUMS and "explanations" not in path.relative_to(folder).parts
    ]
    atomic_write_text(folder / CHECKSUMS, "\n".join(lines) + "\n")


def _check_checksums(run: RunFolder) -> None:
    from ..utils import sha256_file

    folder, listing = run.path, run.checksums
    if not listing.is_file():
        return  # a run from before checksums, or one still training
    for line in listing.read_text(encoding="utf-8", errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        path = folder / name
        if not name or ".." in Path(name).parts:
            raise RunError(f"{listing}: malformed line {line[:60]!r}")
        if not path.is_file() or path.is_symlink():
            raise RunError(f"{path}: missing from the run (listed in {CHECKSUMS}; damaged run folder)")
        if sha256_file(path) != digest:
            raise RunError(f"{path}: changed after training (its SHA-256 differs from {CHECKSUMS}); retrain")


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
        raise RunError(
            f"{self.path}: the run's cohort file {recorded} no longer exists "
            "(move the cohort folder back, or beside the run as it was)"
        )

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.path)

    def fold_dir(self, k: int) -> Path:
        return self.folder.fold(k).path

    def fold_info(self, k: int) -> dict:
        """``folds/<k>/fold.json``, checked: the subject lists are lists of strings."""
        path = self.folder.fold(k).info
        info = read_json(path)
        for key in _FOLD_LISTS + ("explanation_subjects",):
            value = info.get(key, [] if key == "explanation_subjects" else None)
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise RunError(f"{path}: '{key}' must be a list of subject ids, found {str(value)[:60]}")
        return info

    def check_folds(self) -> None:
        """The folds' subject lists must partition the run as training wrote them: within a fold, training,
        validation, test and explanation subjects are disjoint; every fold names the same explanation set
        (non-empty exactly when ``explain_fraction`` > 0); each subject is tested by at most one fold."""
        tested, explained = {}, None
        for k in range(1, self.n_folds + 1):
            info, where = self.fold_info(k), self.folder.fold(k).info
            lists = {key: info.get(key, []) for key in (*_FOLD_LISTS, "explanation_subjects")}
            seen = {}
            for key, subjects in lists.items():
                for subject in subjects:
                    if subject in seen:
                        both = (
                            f"listed twice in {key}" if seen[subject] == key else f"in both {seen[subject]} and {key}"
                        )
                        raise RunError(f"{where}: subject {subject!r} is {both}")
                    seen[subject] = key
            for subject in lists["test_subjects"]:
                if subject in tested:
                    raise RunError(f"{where}: subject {subject!r} is also a test subject of fold {tested[subject]}")
                tested[subject] = k
            if explained is None:
                explained = set(lists["explanation_subjects"])
            elif set(lists["explanation_subjects"]) != explained:
                raise RunError(f"{where}: the folds disagree on the explanation set (fold.json files edited?)")
        if bool(explained) != (self.train.explain_fraction > 0):
            raise RunError(
                f"{self.path}: explain_fraction is {self.train.explain_fraction:g} in config.toml but the folds "
                f"hold {len(explained)} explanation subjects (fold.json files edited?)"
            )

    def check_inputs(self, *, allow_changed=False) -> list[str]:
        """Compare every input file of the run with the SHA-256 that ``manifest.json`` recorded at training.

        A missing or changed file is a `RunError` naming it; with ``allow_changed`` each is a line of the
        returned list instead (for warnings). A cohort moved together with the run is found at the same
        place relative to the cohort file.
        """
        from ..utils import sha256_file

        manifest = read_json(self.folder.manifest)
        inputs = manifest.get("inputs")
        if not isinstance(inputs, dict) or not inputs:
            raise RunError(f"{self.path / 'manifest.json'}: no 'inputs' checksums (made by another migtrans?)")
        was, now = Path(self.config["run"]["cohort"]).parent, self.cohort_path.parent
        problems = []
        for recorded, digest in inputs.items():
            path = Path(recorded)
            if now != was and path.is_relative_to(was):
                path = now / path.relative_to(was)
            if not path.is_file():
                problems.append(f"{path}: input file of the run is missing (listed in manifest.json)")
            elif sha256_file(path) != digest:
                problems.append(f"{path}: changed since the run was trained (its SHA-256 differs from manifest.json)")
        if problems and not allow_changed:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise RunError(f"{problems[0]}{more}; retrain, or pass --allow-changed-inputs to go on anyway")
        return problems


def open_run(path) -> Run:
    """Check that ``path`` is a complete, readable run folder and read its settings (one-line `RunError`s)."""
    path = Path(path).expanduser().absolute()
    if not path.is_dir():
        raise RunError(f"{path}: run folder not found")
    folder = RunFolder(path)
    config_path = folder.config
    if not config_path.is_file():
        raise RunError(f"{path}: not a run folder (no config.toml)")
    config = _read_toml(config_path)
    for section in ("run", "train"):
        if not isinstance(config.get(section), dict):
            raise RunError(f"{config_path}: missing section [{section}]")
    if not isinstance(config["run"].get("cohort"), str):
        raise RunError(f"{config_path}: [run] needs the cohort path ('cohort')")
    try:
        # a run trained before covariate adjustment existed adjusted nothing: say so, or retraining it (null
        # runs) would take today's default and differ from the run it is a null for
        # (and one from before calibration reported its models' raw probabilities)
        # (and one from before the linear prior's network weight added the network's log-odds in full)
        cfg = TrainConfig.from_dict(
            {"adjust": "none", "calibrate": "none", "network_weight": "fixed", **config["train"]}
        )
        if cfg.model == "migtrans":
            from ..model import ModelConfig

            if not isinstance(config.get("model"), dict):
                raise RunError(f"{config_path}: missing section [model]")
            model_modalities = tuple(ModelConfig.from_dict(config["model"]).modalities)
            if model_modalities != cfg.modalities:
                raise RunError(
                    f"{config_path}: train.modalities {list(cfg.modalities)} and model.modalities "
                    f"{list(model_modalities)} disagree (edited after training?)"
                )
    except (ParameterError, TypeError) as exc:
        raise RunError(f"{config_path}: {exc}") from None
    resolved = folder.resolved
    if resolved.is_file() and _without_none(read_json(resolved)) != _without_none(config):
        raise RunError(
            f"{config_path}: differs from the settings the run was trained with (.resolved.json); "
            "restore it, or retrain"
        )
    for file in (folder.metrics, folder.predictions, folder.manifest):
        if not file.is_file():
            raise RunError(f"{path}: incomplete run, {file.name} is missing (resume it with --resume)")
    for k in range(1, cfg.n_folds + 1):
        if not folder.fold(k).done:
            raise RunError(f"{path}: incomplete run, fold {k} is missing ({folder.fold(k).info.relative_to(path)})")
    _check_checksums(folder)
    read_run_csv(folder.metrics, ("fold", "accuracy", "roc_auc"), rows=("mean", "sd"), numeric=True)
    read_run_csv(folder.predictions, ("subject_id", "fold", "label", "prob_positive"))
    if folder.explanation_predictions.is_file():
        read_run_csv(folder.explanation_predictions, ("subject_id", "label", "prob_positive", "log_odds"))
    for k in range(1, cfg.n_folds + 1):
        if folder.fold(k).history.is_file():
            read_run_csv(folder.fold(k).history, ("epoch",))
    if isinstance(config.get("model"), dict):
        # a model trained before the linear prior existed had none (it is on by default today)
        config = {**config, "model": {"linear_prior": False, **config["model"]}}
    return Run(path=path, config=config, train=cfg, n_folds=cfg.n_folds)


def read_run_csv(path: Path, columns, rows=(), numeric=False):
    """A run's CSV table, with the columns (and, in its ``fold`` column, the rows, each once) readers rely on;
    with ``numeric``, every column but ``fold`` holds numbers."""
    import pandas as pd

    try:
        table = pd.read_csv(path, dtype={"subject_id": str, "fold": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RunError(f"{path}: not a readable CSV table ({first})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise RunError(f"{path}: column {missing[0]!r} is missing (damaged run folder?)")
    absent = [r for r in rows if (table["fold"] == r).sum() != 1]
    if absent:
        raise RunError(f"{path}: expected one row {absent[0]!r} (damaged run folder?)")
    if numeric:
        # fold names its row, and a leave-one-site-out run's site its held-out site: the rest are numbers
        bad = [c for c in table.columns if c not in ("fold", "site") and not pd.api.types.is_numeric_dtype(table[c])]
        if bad:
            raise RunError(f"{path}: column {bad[0]!r} holds values that are not numbers (damaged run folder?)")
    return table


def load_preprocessor(path: Path) -> Preprocessor:
    """A fold's saved preprocessing, refusing pickles and object arrays with a one-line `RunError`."""
    if not path.is_file():
        raise RunError(f"{path}: missing (incomplete or damaged run folder)")
    try:
        return Preprocessor.load(path)
    except (ValueError, TypeError, KeyError, OSError, EOFError, zipfile.BadZipFile) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RunError(f"{path}: refused to load: not a plain-array preprocessing file ({first})") from None


def _check_preprocessor(prep: Preprocessor, cohort, modalities, path: Path) -> None:
    """The fold's statistics must fit the cohort they are applied to (else transforms fail or broadcast)."""
    expected = {}
    if "snp" in modalities:
        expected.update(snp_mean=(cohort.genotypes.shape[1],), snp_sd=(cohort.genotypes.shape[1],))
    if "fnc" in modalities:
        expected.update(fnc_mean=cohort.fnc.shape[1:], fnc_sd=cohort.fnc.shape[1:])
    if "smri" in modalities:
        expected.update(
            voxel_mean=(cohort.voxels.shape[1],),
            voxel_sd=(cohort.voxels.shape[1],),
            mask=cohort.mask.shape,
            bbox=(3, 2),
        )
    if tuple(prep.modalities) != tuple(modalities):
        raise RunError(f"{path}: preprocesses {list(prep.modalities)}, the run {list(modalities)}")
    for name, shape in expected.items():
        value = getattr(prep, name)
        if value is None or tuple(value.shape) != tuple(shape) or value.dtype.kind not in "biuf":
            found = "nothing" if value is None else f"{value.dtype} {tuple(value.shape)}"
            raise RunError(
                f"{path}: '{name}' does not fit the cohort (expected shape {tuple(shape)}, found "
                f"{found}); was the cohort changed after training?"
            )
    for name in expected:
        value = getattr(prep, name)
        if name != "mask" and not np.isfinite(value).all():
            raise RunError(f"{path}: '{name}' holds NaN or infinite values (damaged run folder?)")
        if name.endswith("_sd") and not (value > 0).all():
            raise RunError(f"{path}: '{name}' holds standard deviations <= 0 (damaged run folder?)")
    if "smri" in modalities:
        if not np.array_equal(prep.mask, cohort.mask):
            raise RunError(f"{path}: the sMRI mask differs from the cohort's (was the cohort changed after training?)")
        where = np.argwhere(cohort.mask)
        box = np.stack([where.min(axis=0), where.max(axis=0) + 1], axis=1)
        if prep.bbox.dtype.kind not in "iu" or not np.array_equal(prep.bbox, box):
            raise RunError(f"{path}: 'bbox' is not the bounding box of the mask (damaged run folder?)")


def load_fold(run: Run, k: int, cohort):
    """(model in eval mode, preprocessor, fold info) of fold ``k`` (1-based)."""
    from ..model import ModelConfig
    from ._run import build_model

    if run.train.model != "migtrans":
        raise RunError(f"{run.path}: fold models exist only for MIGTrans runs, this is a {run.train.model} run")
    fold_dir = run.folder.fold(k)
    prep = load_preprocessor(fold_dir.preprocess)
    _check_preprocessor(prep, cohort, run.train.modalities, fold_dir.preprocess)
    mcfg = ModelConfig.from_dict(run.config["model"])
    loci = run.train.loci(cohort) if "snp" in run.train.modalities else None
    model = build_model(mcfg, cohort, prep, loci)
    try:
        model.load_state_dict(load_state_dict(fold_dir.model))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise RunError(
            f"{fold_dir.model}: does not fit the model described by config.toml "
            f"(made by another migtrans version?): {first}"
        ) from None
    model.eval()
    return model, prep, run.fold_info(k)


def fold_of_subjects(run: Run) -> dict:
    """subject id -> 1-based fold in which it was held out."""
    out = {}
    for k in range(1, run.n_folds + 1):
        for subject in run.fold_info(k)["test_subjects"]:
            out[subject] = k
    return out


__all__ = [
    "CHECKSUMS",
    "Run",
    "fold_of_subjects",
    "load_fold",
    "load_preprocessor",
    "load_state_dict",
    "open_run",
    "read_json",
    "read_run_csv",
]
