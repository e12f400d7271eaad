"""`train`: cross-validated training of a run folder — folds, per-fold preprocessing and model,
out-of-fold predictions, metrics, manifest — resumable, with atomic writes."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..data import load_cohort, read_cohort_spec
from ..exceptions import ParameterError, RunError
from ..folds import explanation_split, inner_split, make_folds, related_groups, site_folds
from ..preprocess import Preprocessor
from ..utils import (
    atomic_write_text,
    check_outside_inputs,
    mark_output,
    output_kind,
    prepare_out_dir,
    release_staging,
    sha256_file,
    staging_dir,
    to_builtin,
    write_toml,
)
from ._baselines import (
    CV_TUNED,
    feature_blocks,
    fit_baseline,
    fit_cv_baseline,
    flatten_features,
    tuning_summary,
)
from ._calibration import calibrate_folds, ensemble_temperature
from ._checkpoint import fold_of_subjects, open_run, read_json, write_checksums
from ._config import TrainConfig
from ._distributed import close_distributed, init_distributed
from ._elasticnet import ElasticNetLogisticCV, inner_cv
from ._folder import FoldFolder, RunFolder
from ._loop import Progress, fit_fold, fit_network_weight, predict_logits, resolve_device
from ._metrics import classification_metrics, metrics_table


@dataclass
class RunResult:
    """What `train` produced: the run folder, out-of-fold predictions and the metrics table."""

    out_dir: Path
    predictions: pd.DataFrame
    metrics: pd.DataFrame


def _csv(df: pd.DataFrame) -> str:
    # repr-precision floats so values round-trip exactly
    return df.to_csv(index=False, float_format="%.17g", lineterminator="\n")


def _model_config(cfg: TrainConfig, model_config):
    from ..model import ModelConfig

    if model_config is None:
        model_config = ModelConfig()
    elif isinstance(model_config, dict):
        model_config = ModelConfig.from_dict(model_config)
    values = model_config.to_dict()
    values["modalities"] = list(cfg.modalities)
    return ModelConfig.from_dict(values)


def build_model(model_config, cohort, prep, loci):
    """A fresh MIGTrans sized for this cohort and fold preprocessing."""
    from ..loci import locus_index
    from ..model import MIGTrans

    kwargs = {}
    if "snp" in model_config.modalities:
        kwargs.update(
            n_snps=cohort.genotypes.shape[1],
            loci_index=locus_index(loci, cohort.genotypes.shape[1]),
            locus_chrom=loci["chrom_code"].to_numpy(),
        )
    if "fnc" in model_config.modalities:
        kwargs["n_nodes"] = cohort.fnc.shape[1]
    if "smri" in model_config.modalities:
        kwargs["volume_shape"] = prep.volume_shape
    return MIGTrans(model_config, **kwargs)


def _resolved(cohort_path, out_dir, cfg, model_config) -> dict:
    cohort = Path(cohort_path).resolve()
    # the relative path lets a run folder move together with its cohort (cluster -> laptop)
    sections = {
        "run": {
            "cohort": str(cohort),
            "cohort_relative": os.path.relpath(cohort, out_dir),
            "migtrans_version": __version__,
            # whether each fold holds a validation split out of its training share (see _fold_split)
            "validation_split": _holds_validation_split(cfg, model_config),
        },
        "train": cfg.to_dict(),
    }
    if model_config is not None:
        sections["model"] = model_config.to_dict()
    return to_builtin(sections)


def _manifest(cohort, cfg, argv) -> dict:
    import bed_reader
    import nibabel
    import nilearn
    import sklearn

    return {
        "command": list(argv) if argv is not None else sys.argv,
        "seed": cfg.seed,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": {
            "migtrans": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__,
            "nibabel": nibabel.__version__,
            "nilearn": nilearn.__version__,
            "bed-reader": getattr(bed_reader, "__version__", "unknown"),
        },
        "platform": platform.platform(),
        "inputs": {str(p): sha256_file(p) for p in cohort.input_files()},
        "subjects": [str(s) for s in cohort.subject_ids],
        "dropped": cohort.dropped,
        # the sMRI maps' template space as the cohort file names it, and where TIV came from
        "smri_space": cohort.spec.smri.space if cohort.spec.smri else None,
        "tiv_source": (
            ("cat12_xml" if cohort.spec.smri.tiv_xml else "column" if cohort.spec.smri.tiv_column else None)
            if cohort.spec.smri
            else None
        ),
    }


def _check_resume(out_dir: Path, resolved: dict):
    folder = RunFolder(out_dir)
    if not folder.config.is_file() or output_kind(out_dir) != "run":
        raise RunError(f"{out_dir}: cannot resume, not a migtrans run folder (no {folder.CONFIG} or marker)")
    if folder.resolved.is_file() and read_json(folder.resolved) != resolved:
        raise RunError(
            f"{out_dir}: cannot resume with different settings than the interrupted run (see {folder.CONFIG})"
        )


def train(
    cohort_path,
    out_dir,
    config: TrainConfig | None = None,
    model_config=None,
    *,
    resume=False,
    overwrite=False,
    progress=True,
    argv=None,
) -> RunResult:
    """Cross-validate a model on a cohort and write the run folder (DESIGN §6).

    Parameters
    ----------
    cohort_path : str or path-like
        Cohort TOML file.
    out_dir : str or path-like
        Run folder: must be new or empty unless ``resume`` or ``overwrite``.
    config : TrainConfig, optional
    model_config : ModelConfig or dict, optional
        MIGTrans sizes and choices (ignored for baselines).
    resume : bool
        Continue an interrupted run in ``out_dir``, keeping its finished folds.
    overwrite : bool
        Replace an existing run folder.
    progress : bool
        Show one progress line per fold on stderr.

    Returns
    -------
    RunResult
    """
    cfg = config or TrainConfig()
    dist = init_distributed(cfg.device)
    try:
        return _train(cohort_path, out_dir, cfg, model_config, resume, overwrite, progress, argv, dist)
    finally:
        close_distributed(dist)


def logit(prob) -> np.ndarray:
    """Log-odds of probabilities, in float64 and clipped to [1e-12, 1 - 1e-12] (a float32 probability of
    exactly 0 or 1, which baselines can return, stays finite)."""
    prob = np.clip(np.asarray(prob, dtype=np.float64), 1e-12, 1 - 1e-12)
    return np.log(prob) - np.log1p(-prob)


def _relative_groups(cohort):
    """Family number of every subject when the genotype QC kept relatives (relatives = "keep"), else None."""
    pairs = [] if cohort.qc is None else list(zip(cohort.qc.kinship_pairs["id1"], cohort.qc.kinship_pairs["id2"]))
    kept_pairs = [(a, b) for a, b in pairs if a in set(cohort.subject_ids) and b in set(cohort.subject_ids)]
    return related_groups(cohort.subject_ids, kept_pairs) if kept_pairs else None


def _assign_folds(cohort, cfg) -> np.ndarray:
    """0-based test fold of every subject, or -1 for the explanation set (held out of every fold)."""
    if cfg.fold_by == "site":
        if cfg.explain_fraction:
            raise ParameterError(
                "fold_by=site: leave-one-site-out explains every subject out of fold; set explain_fraction 0"
            )
        return site_folds(cohort.labels, cohort.site)
    # relatives kept by the genotype QC (relatives = "keep") share a fold: no model is tested on a relative
    # of a subject it trained on
    groups = _relative_groups(cohort)
    if groups is not None and cfg.explain_fraction:
        raise ParameterError(
            "explain_fraction: the cohort keeps related subjects (qc.relatives = keep), which an explanation set "
            "would split; set explain_fraction 0"
        )
    held = explanation_split(cohort.labels, cohort.site, fraction=cfg.explain_fraction, random_state=cfg.seed)
    dev = np.flatnonzero(~held)
    site = None if cohort.site is None else np.asarray(cohort.site)[dev]
    folds = np.full(cohort.n_subjects, -1, dtype=np.int64)
    try:
        folds[dev] = make_folds(
            cohort.labels[dev],
            site,
            n_folds=cfg.n_folds,
            random_state=cfg.seed,
            groups=None if groups is None else groups[dev],
        )
    except ParameterError as exc:
        if not held.any():
            raise
        raise ParameterError(
            f"{exc} after {int(held.sum())} subjects were held out as the explanation set "
            f"(explain_fraction={cfg.explain_fraction:g}; lower it or use fewer folds)"
        ) from None
    return folds


def _explanation_predictions(cohort, folds, fold_log_odds, temperature=1.0) -> pd.DataFrame:
    """The explanation set scored by the ensemble of fold models: the mean of their log-odds (the function
    its attributions explain), its probability calibrated by the run's ``temperature``."""
    rows = np.flatnonzero(folds < 0)
    log_odds = np.mean(fold_log_odds, axis=0)
    prob = 1 / (1 + np.exp(-log_odds / temperature))
    return pd.DataFrame(
        {
            "subject_id": cohort.subject_ids[rows],
            "fold": "explanation_set",
            "label": cohort.labels[rows].astype(int),
            "prob_positive": prob,
            "predicted": (prob >= 0.5).astype(int),
            "label_name": [cohort.label_names[int(v)] for v in cohort.labels[rows]],
            "log_odds": log_odds,
            "temperature": temperature,
        }
    )


def _train(cohort_path, out_dir, cfg, model_config, resume, overwrite, progress, argv, dist):
    if resume and overwrite:
        raise ParameterError("resume and overwrite exclude each other")
    out_dir = Path(out_dir).expanduser().absolute()
    # the run folder may never be, hold or sit inside what it is trained from (--overwrite empties it)
    check_outside_inputs(out_dir, read_cohort_spec(cohort_path).inputs())
    if not resume:
        prepare_out_dir(out_dir, overwrite, option="--out", kind="run")
    mcfg = _model_config(cfg, model_config) if cfg.model == "migtrans" else None
    device = resolve_device(cfg.device)

    # Everything is validated before the first byte is written.
    cohort = load_cohort(cohort_path)
    missing = [m for m in cfg.modalities if m not in cohort.modalities]
    if missing:
        raise ParameterError(
            f"modalities: the cohort has no {', '.join(missing)} data (it has {', '.join(cohort.modalities)})"
        )
    folds = _assign_folds(cohort, cfg)
    if cfg.fold_by == "site":  # as many folds as sites, recorded in the run's config
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "n_folds": int(folds.max()) + 1})
    resolved = _resolved(cohort_path, out_dir, cfg, mcfg)
    if resume:
        _check_resume(out_dir, resolved)
    for k in range(cfg.n_folds):  # every fold's validation split too, so that no fold fails halfway
        _fold_split(k, cohort, folds, cfg, mcfg)
    loci = cfg.loci(cohort) if "snp" in cfg.modalities else None

    previous = None
    if dist.is_main and not resume and out_dir.exists() and overwrite:
        # the old run stays whole beside the new one until the new one is complete
        previous = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.previous-", dir=out_dir.parent))
        os.replace(out_dir, previous / out_dir.name)
    try:
        result = _train_into(out_dir, cohort, folds, loci, cfg, mcfg, resolved, resume, progress, argv, dist, device)
    except BaseException:
        if previous is not None:
            shutil.rmtree(out_dir, ignore_errors=True)
            os.replace(previous / out_dir.name, out_dir)
            previous.rmdir()
        raise
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
    return result


def run_folds(run, cohort) -> np.ndarray:
    """0-based test fold of every cohort row as a finished run assigned it, -1 for its explanation set; the
    cohort must hold exactly the run's subjects (a `RunError` names the first that differs)."""
    folds = np.full(cohort.n_subjects, -2, dtype=np.int64)
    row = {s: i for i, s in enumerate(cohort.subject_ids)}
    assigned = fold_of_subjects(run)
    explained = run.fold_info(1).get("explanation_subjects", []) if run.n_folds else []
    for subject in [*assigned, *explained]:
        if subject not in row:
            raise RunError(f"{run.path}: subject {subject!r} of the run is not in the cohort {run.cohort_path}")
    for subject, k in assigned.items():
        folds[row[subject]] = k - 1
    for subject in explained:
        folds[row[subject]] = -1
    if (folds == -2).any():
        stray = cohort.subject_ids[int(np.flatnonzero(folds == -2)[0])]
        raise RunError(
            f"{run.cohort_path}: subject {stray!r} is in the cohort but not in the run {run.path} (cohort changed "
            "since training?)"
        )
    return folds


def permuted_run_labels(run, cohort, permutation: int) -> np.ndarray:
    """The labels of null run ``permutation`` (1, 2, ...) of a finished run: the cohort's labels shuffled
    within fold x site strata (the explanation set is a stratum of its own), so every fold keeps its case
    count. One seed per (run seed, permutation): any null run can be redone alone, on any machine."""
    from ..exceptions import ParameterError

    if not isinstance(permutation, (int, np.integer)) or permutation < 1:
        raise ParameterError(f"permutation: expected a positive integer, found {permutation!r}")
    folds = run_folds(run, cohort)
    site = np.zeros(cohort.n_subjects, dtype=np.int64) if cohort.site is None else pd.factorize(cohort.site)[0]
    strata = folds * 100_000 + site
    rng = np.random.default_rng([int(run.train.seed), int(permutation)])
    labels = np.asarray(cohort.labels).copy()
    for s in np.unique(strata):
        rows = np.flatnonzero(strata == s)
        labels[rows] = labels[rows][rng.permutation(len(rows))]
    return labels


def retrain(run_dir, labels, out_dir, *, cohort=None, device=None, progress=False) -> RunResult:
    """Train a finished run's whole pipeline again on other labels: the same folds, fold-fitted
    preprocessing, settings and seeds, into the new run folder ``out_dir`` (the null runs of a retraining
    permutation test).

    Parameters
    ----------
    run_dir : path
        A finished run.
    labels : array (n,)
        0/1 labels for the cohort's subjects, in cohort order (e.g. `permuted_run_labels`).
    out_dir : path
        A new folder.
    cohort : Cohort, optional
        The run's cohort, already loaded.
    device : str, optional
        Overrides the run's device (the results do not depend on it beyond rounding).
    """
    from ..exceptions import ParameterError

    run = open_run(run_dir)
    cohort = cohort if cohort is not None else load_cohort(run.cohort_path)
    labels = np.asarray(labels)
    if labels.shape != (cohort.n_subjects,) or not np.isin(labels, (0, 1)).all():
        raise ParameterError(f"labels: expected {cohort.n_subjects} values in {{0, 1}}, found shape {labels.shape}")
    mcfg = _model_config(run.train, run.config.get("model")) if run.train.model == "migtrans" else None
    if (
        run.train.model == "migtrans"
        and run.train.select == "last"
        and run.config["run"].get("validation_split") != _holds_validation_split(run.train, mcfg)
    ):
        # runs from before folds fitted their whole training share held 15% out: not the pipeline of today
        raise RunError(
            f"{run.path}: trained by an earlier migtrans whose folds held a validation split out; retrain the run "
            "with this version before making null runs of it"
        )
    relabelled = dataclasses.replace(cohort, labels=labels.astype(np.int8))
    cfg = run.train if device is None else TrainConfig.from_dict({**run.train.to_dict(), "device": device})
    out_dir = Path(out_dir).expanduser().absolute()
    prepare_out_dir(out_dir, False, option="out_dir", kind="run")
    folds = run_folds(run, cohort)
    loci = cfg.loci(cohort) if "snp" in cfg.modalities else None
    resolved = {**run.config, "run": {**run.config["run"], "retrained_from": str(run.path)}}
    manifest = {**read_json(RunFolder(run.path).manifest), "command": ["retrain", str(run.path)]}
    dist = init_distributed(cfg.device)
    try:
        return _train_into(
            out_dir,
            relabelled,
            folds,
            loci,
            cfg,
            mcfg,
            resolved,
            False,
            progress,
            None,
            dist,
            resolve_device(cfg.device),
            manifest=manifest,
        )
    finally:
        close_distributed(dist)


def _holds_validation_split(cfg, mcfg) -> bool:
    if cfg.model == "migtrans":
        return cfg.select != "last" or (mcfg.linear_prior and cfg.network_weight == "validation")
    return cfg.model not in CV_TUNED


def _fold_split(k, cohort, folds, cfg, mcfg):
    """(test, fit, validation, explanation) rows of fold ``k`` (0-based). A MIGTrans fold that keeps its
    last epoch fits on its whole training share (a validation split would only be monitored) unless it
    weighs its network against its linear prior there, and so do the baselines tuned by inner
    cross-validation (elasticnet, late_fusion); early stopping and the other baselines' regularisation choice
    hold a stratified validation split out."""
    test_idx = np.flatnonzero(folds == k)
    train_idx = np.flatnonzero((folds != k) & (folds >= 0))
    if not _holds_validation_split(cfg, mcfg):
        if cfg.model in CV_TUNED:
            inner_cv(cohort.labels[train_idx])  # every class fills two inner folds, checked before any fold runs
        return test_idx, train_idx, np.zeros(0, dtype=np.int64), np.flatnonzero(folds < 0)
    fit_idx, val_idx = inner_split(
        train_idx, cohort.labels, cohort.site, val_fraction=cfg.val_fraction, random_state=cfg.seed + k
    )
    return test_idx, fit_idx, val_idx, np.flatnonzero(folds < 0)


def _train_into(out_dir, cohort, folds, loci, cfg, mcfg, resolved, resume, progress, argv, dist, device, manifest=None):
    folder = RunFolder(out_dir)
    if dist.is_main:
        if not resume:
            out_dir.mkdir(parents=True, exist_ok=True)
            mark_output(out_dir, "run")
            atomic_write_text(folder.config, write_toml(resolved))
            atomic_write_text(folder.resolved, json.dumps(resolved, sort_keys=True))
            manifest = manifest if manifest is not None else _manifest(cohort, cfg, argv)
            atomic_write_text(folder.manifest, json.dumps(to_builtin(manifest), indent=2) + "\n")
        folder.folds.mkdir(exist_ok=True)
    dist.barrier()

    bar = Progress(progress and dist.is_main)
    if (folds < 0).any():
        bar.update(
            f"explanation set: {int((folds < 0).sum())} subjects held out of every fold; "
            f"{cfg.n_folds}-fold cross-validation on the other {int((folds >= 0).sum())}",
            final=True,
        )
    fold_predictions, fold_log_odds = [], []
    for k in range(cfg.n_folds):
        fold_dir = folder.fold(k + 1)
        if not (resume and fold_dir.done):
            _train_fold(k, cohort, folds, loci, cfg, mcfg, device, dist, bar, out_dir)
        else:
            bar.update(f"fold {k + 1}/{cfg.n_folds}: already done, kept", final=True)
        fold_predictions.append(pd.read_csv(fold_dir.predictions, dtype={"subject_id": str}))
        if (folds < 0).any():
            held = pd.read_csv(fold_dir.explanation_predictions, dtype={"subject_id": str})
            fold_log_odds.append(held["log_odds"].to_numpy())

    predictions = pd.concat(fold_predictions, ignore_index=True)
    if "log_odds" not in predictions:  # folds trained before log-odds were kept (a resumed old run)
        predictions["log_odds"] = logit(predictions["prob_positive"])
    predictions = calibrate_folds(predictions, cfg.calibrate)
    order = {s: i for i, s in enumerate(cohort.subject_ids)}
    predictions = predictions.sort_values("subject_id", key=lambda s: s.map(order)).reset_index(drop=True)
    sites = np.unique(np.asarray(cohort.site).astype(str)) if cfg.fold_by == "site" else None
    metrics = metrics_table(predictions, sites)
    temperature = ensemble_temperature(predictions, cfg.calibrate)
    held = _explanation_predictions(cohort, folds, fold_log_odds, temperature) if fold_log_odds else None
    if held is not None:
        # one more row: the fold models' ensemble on subjects none of them trained on
        metrics = pd.concat(
            [
                metrics,
                pd.DataFrame(
                    [{"fold": "explanation_set", **classification_metrics(held["label"], held["prob_positive"])}]
                ),
            ],
            ignore_index=True,
        )
    if dist.is_main:
        atomic_write_text(folder.predictions, _csv(predictions))
        if held is not None:
            atomic_write_text(folder.explanation_predictions, _csv(held))
        atomic_write_text(folder.metrics, _csv(metrics))
        write_checksums(out_dir)
    dist.barrier()
    return RunResult(out_dir=out_dir, predictions=predictions, metrics=metrics)


def fit_linear_prior(model, cohort, prep, fit_idx, *, seed=0):
    """Fit the elastic net of ``model.prior`` on the rows ``fit_idx`` (inner cross-validation, as ``--model
    elasticnet``) and copy it into the model.

    Returns the inner out-of-fold log-odds of those rows (an array over every cohort row, NaN elsewhere: what
    the network trains and is validated against, since the prior's log-odds of data it was fitted on are
    over-confident) and what was chosen, for ``fold.json``."""
    arrays = prep.transform(cohort, fit_idx, volumes=False)
    groups = _relative_groups(cohort)
    net = ElasticNetLogisticCV(random_state=seed).fit(
        flatten_features(arrays), cohort.labels[fit_idx], None if groups is None else groups[fit_idx]
    )
    model.prior.set_linear(
        net.coef_[0], net.intercept_[0], feature_blocks(arrays), prep.crop_mask if "voxels" in arrays else None
    )
    offsets = np.full(cohort.n_subjects, np.nan)
    offsets[fit_idx] = net.oof_decision_
    return offsets, tuning_summary(net)


def _describe(chosen) -> str:
    """One progress-line summary of a cross-validated baseline's choices."""
    if "C" in chosen:
        return f"l1_ratio {chosen['l1_ratio']:g}, C {chosen['C']:.3g}, {chosen['n_nonzero']} features"
    weights = ", ".join(f"{m} {v['stacker_weight']:.2f}" for m, v in chosen.items() if isinstance(v, dict))
    return f"stacker weights {weights}"


def _train_fold(k, cohort, folds, loci, cfg, mcfg, device, dist, bar, out_dir):
    start = time.perf_counter()
    test_idx, fit_idx, val_idx, held_idx = _fold_split(k, cohort, folds, cfg, mcfg)
    # Preprocessing sees the fit subjects only: validation and test subjects stay unseen.
    prep = Preprocessor().fit(cohort, fit_idx, cfg.modalities, adjust=cfg.adjust)
    label = f"fold {k + 1}/{cfg.n_folds}"
    info = {
        "fold": k + 1,
        "train_subjects": cohort.subject_ids[fit_idx].tolist(),
        "val_subjects": cohort.subject_ids[val_idx].tolist(),
        "test_subjects": cohort.subject_ids[test_idx].tolist(),
        "explanation_subjects": cohort.subject_ids[held_idx].tolist(),
        "n_imputed_train_calls": prep.n_imputed_train,
    }
    if cfg.model == "migtrans":
        torch.manual_seed(cfg.seed + 1000 * (k + 1))
        model = build_model(mcfg, cohort, prep, loci).to(device)
        provider = lambda idx: prep.transform(cohort, idx)  # noqa: E731
        fold_cfg = TrainConfig.from_dict({**cfg.to_dict(), "seed": cfg.seed + k})
        offsets = None
        if mcfg.linear_prior:
            bar.update(f"{label}: fitting the elastic-net prior (inner cross-validation)")
            # on the whole training share, as --model elasticnet; the validation subjects are scored by the
            # inner model that did not see them
            share = np.sort(np.concatenate([fit_idx, val_idx]))
            offsets, info["linear_prior"] = fit_linear_prior(model, cohort, prep, share, seed=cfg.seed + k)
            bar.update(f"{label}: elastic-net prior {_describe(info['linear_prior'])}", final=True)
        state, history, best_epoch = fit_fold(
            model,
            provider,
            cohort.labels,
            fit_idx,
            val_idx,
            fold_cfg,
            device,
            dist=dist,
            progress=bar,
            label=label,
            offsets=offsets,
        )
        if mcfg.linear_prior and cfg.network_weight == "validation":
            info["network_weight"] = fit_network_weight(
                model, provider, cohort.labels, val_idx, offsets, cfg.batch_size * 2, device, cfg.amp
            )
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            bar.update(f"{label}: network weight {info['network_weight']:.3f} on the prior", final=True)
        logits = predict_logits(
            model, provider, np.concatenate([test_idx, held_idx]), cfg.batch_size * 2, device, cfg.amp
        )
        log_odds = (logits[:, 1] - logits[:, 0]).astype(np.float64)
        prob = 1 / (1 + np.exp(-log_odds[: len(test_idx)]))
        held_log_odds = log_odds[len(test_idx) :]
        info["best_epoch"] = best_epoch
        params = None
    elif cfg.model in CV_TUNED:
        bar.update(f"{label}: fitting {cfg.model} baseline (inner cross-validation)")
        feats = lambda idx: flatten_features(prep.transform(cohort, idx, volumes=False))  # noqa: E731
        arrays = prep.transform(cohort, fit_idx, volumes=False)
        groups = _relative_groups(cohort)
        decision, params, chosen = fit_cv_baseline(
            cfg.model,
            flatten_features(arrays),
            cohort.labels[fit_idx],
            feature_blocks(arrays),
            groups=None if groups is None else groups[fit_idx],
            seed=cfg.seed + k,
        )
        del arrays
        log_odds = np.asarray(decision(feats(test_idx)), dtype=np.float64)
        prob = 1 / (1 + np.exp(-log_odds))
        held_log_odds = decision(feats(held_idx)) if len(held_idx) else np.zeros(0)
        history, state = [], None
        info["regularisation"] = chosen
        bar.update(f"{label}: {cfg.model} done ({_describe(chosen)})", final=True)
    else:
        bar.update(f"{label}: fitting {cfg.model} baseline")
        feats = lambda idx: flatten_features(prep.transform(cohort, idx, volumes=False))  # noqa: E731
        predict, params, chosen = fit_baseline(
            cfg.model, feats(fit_idx), cohort.labels[fit_idx], feats(val_idx), cohort.labels[val_idx], seed=cfg.seed
        )
        prob = predict(feats(test_idx))
        held_log_odds = logit(predict(feats(held_idx))) if len(held_idx) else np.zeros(0)
        history, state = [], None
        info["regularisation"] = chosen
        bar.update(f"{label}: {cfg.model} done (regularisation {chosen:g})", final=True)
    info["seconds"] = round(time.perf_counter() - start, 2)
    # the exact log-odds where the model gives them (a probability saturates beyond about +-36)
    test_log_odds = log_odds[: len(test_idx)] if cfg.model == "migtrans" or cfg.model in CV_TUNED else logit(prob)

    preds = pd.DataFrame(
        {
            "subject_id": cohort.subject_ids[test_idx],
            "fold": k + 1,
            "label": cohort.labels[test_idx].astype(int),
            "prob_positive": prob.astype(float),
            "predicted": (prob >= 0.5).astype(int),
            "label_name": [cohort.label_names[int(v)] for v in cohort.labels[test_idx]],
            # the model's own log-odds, before the run's calibration (`calibrate_folds`)
            "log_odds": test_log_odds,
        }
    )
    if dist.is_main:
        # Build the fold in a staging folder and rename it: a fold folder exists only when complete.
        fold_dir = RunFolder(out_dir).fold(k + 1).path
        tmp = FoldFolder(staging_dir(fold_dir), k + 1)
        if state is not None:
            torch.save(state, tmp.model)
        if params is not None:
            np.savez(tmp.baseline, **params)
        prep.save(tmp.preprocess)
        tmp.history.write_text(_csv(pd.DataFrame(history)) if history else "epoch\n")
        tmp.predictions.write_text(_csv(preds))
        if len(held_idx):
            tmp.explanation_predictions.write_text(
                _csv(pd.DataFrame({"subject_id": cohort.subject_ids[held_idx], "log_odds": held_log_odds}))
            )
        tmp.info.write_text(json.dumps(to_builtin(info), indent=2) + "\n")
        if fold_dir.exists():
            shutil.rmtree(fold_dir)
        tmp.path.rename(fold_dir)
        release_staging(tmp.path)
    dist.barrier()
