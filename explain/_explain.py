"""`explain_run`: integrated gradients and attention rollout of a run's held-out subjects (its explanation
set, with every fold model; or every subject, out of fold), saved as an `Attributions` folder, with
faithfulness checks."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from migtrans.exceptions import MigtransError, ParameterError

from ._attributions import Attributions
from ._faithfulness import deletion_curve, modality_ablation
from ._ig import integrated_gradients
from ._null import gather_null_runs, null_key, run_fingerprint
from ._oof import OutOfFold
from ._rollout import relevance_rollout
from ._tables import (
    RANKING,
    REGION_ATTRIBUTION,
    STATISTIC,
    check_number_of_permutations,
    choose_null,
    result_tables,
)


def _say(progress, text):
    if progress:
        print(text, file=sys.stderr, flush=True)


def explain_run(
    run_dir,
    *,
    out_dir=None,
    n_steps=32,
    baseline="mean",
    internal_batch_size=None,
    smoothgrad_samples=0,
    noise_level=None,
    rollout_method="gradient",
    faithfulness=True,
    deletion_fractions=None,
    n_permutations=0,
    genes=None,
    atlas="aal",
    batch_size=64,
    device="auto",
    random_state=0,
    progress=False,
    cohort=None,
    run_record=None,
    null="auto",
    external=None,
) -> Attributions:
    """Attribute the held-out predictions of a run.

    By default (runs trained with ``explain_fraction=0``) every subject is explained by the model of the
    fold that held it out. The tables' p-values then come from the retraining null runs of the run
    (`run_null`, ``migtrans-null``) when at least 19 were made with the same settings, else from per-fold
    exact permutation tests combined by Bonferroni (`result_tables`, `choose_null`). With an explanation
    set, its subjects are explained by the ensemble of the fold models (the mean of their log-odds; each
    attribution is the mean of the models'), and its labels are shuffled within site.

    Parameters
    ----------
    run_dir : path
        A finished MIGTrans run folder (`migtrans train`).
    out_dir : path, optional
        Where to save (default ``<run_dir>/explanations``); ``False`` saves nothing.
    n_steps : int
        Integrated-gradients path points (Gauss-Legendre).
    baseline : {"mean", "held_out_mean", "zero"}
        "mean": the training fold's mean of every input (the default); "held_out_mean": the mean input
        of the subjects each fold model explains (label-free; see `OutOfFold.baselines`); "zero": zero
        dosage, connectivity and gray matter.
    internal_batch_size : int, optional
        Most path points per forward/backward pass (bounds memory; default 64 on CPU, 1024 on CUDA).
    smoothgrad_samples, noise_level : SmoothGrad options (see `integrated_gradients`).
    rollout_method : {"gradient", "attention"}
        Class-specific (gradient-weighted) or plain attention relevance rules.
    faithfulness : bool
        Also compute modality ablation and deletion curves.
    n_permutations : int
        If > 0, also build the ranked result tables (`result_tables`: snps, loci, regions, connections,
        nodes, modalities) with this many label permutations, attach them as ``tables`` and write them
        next to the attributions.
    genes, atlas : annotation sources for the tables (see `result_tables`).
    null : {"auto", "retraining", "per_fold"}
        The null of the tables' p-values (`choose_null`).
    batch_size : int
        Subjects per chunk (bounds memory of the prepared inputs).
    device : str
    random_state : int
    run_record : path, optional
        The run's path as ``settings.json`` records it (default ``run_dir``; a report records where the run
        will be once the report folder is in place).
    external : dict, optional
        ``cohort`` is an external cohort, loaded and aligned by `migtrans.training.load_external_cohort`
        (pass the alignment counts it returned): its subjects, none of whom trained a model, are explained
        by the ensemble of the fold models, and its labels are permuted within site for the p-values (null
        ``"external"``). Its classification metrics are recorded in the settings.

    Returns
    -------
    Attributions
        With ``settings`` recording every choice, ``faithfulness`` tables attached as attributes
        ``ablation`` and ``deletion`` when computed.

    Notes
    -----
    The per-subject SNP and voxel attributions are summed in temporary files under ``TMPDIR`` when over
    64 MiB (500 subjects x 500,000 SNPs take 1 GB): set ``TMPDIR`` to a disk with room, not a memory-backed
    file system. The returned arrays are maps of those files, whose space is freed with the arrays.
    """
    if rollout_method not in ("gradient", "attention"):
        raise ParameterError(f"rollout_method: expected 'gradient' or 'attention', found {rollout_method!r}")
    start = time.perf_counter()
    oof = OutOfFold(run_dir, device=device, cohort=cohort, external=external is not None)
    if not oof.folds[0].model.config.modality_tokens:
        raise ParameterError(
            f"run_dir: {oof.run.path} trained a reads-only ablation (modality_tokens = false): it has no tokens to "
            "explain by rollout; explain the full model's run"
        )
    n = len(oof.rows)
    if external is not None:
        who = f"the {n} subjects of the external cohort {oof.cohort.spec.name!r} with all {len(oof.folds)} fold models"
    elif oof.has_explanation_set:
        who = f"the {n} subjects of the explanation set with all {len(oof.folds)} fold models"
    else:
        who = f"{n} subjects out of fold ({len(oof.folds)} fold models)"
    _say(
        progress,
        f"explaining {who}, {n_steps} IG steps" + (f", {n_permutations} permutations" if n_permutations else ""),
    )
    ig_options = dict(
        n_steps=n_steps,
        internal_batch_size=internal_batch_size,
        smoothgrad_samples=smoothgrad_samples,
        noise_level=noise_level,
    )
    null_runs = None
    if n_permutations:  # the null is chosen, and B checked, before minutes of IG
        ig = dict(n_steps=n_steps, baseline=baseline, smoothgrad_samples=smoothgrad_samples, noise_level=noise_level)
        null, null_runs = _choose_tables_null(oof, null, n_permutations, ig, atlas, random_state)
    passes = _attribute(oof, baseline, ig_options, rollout_method, batch_size, random_state, progress)
    settings = {
        "run": str(run_record or oof.run.path),
        "method": "integrated_gradients",
        "target": "positive-class log-odds",
        "quadrature": "gausslegendre",
        "baseline": baseline,
        **ig_options,
        "rollout_method": rollout_method,
        "random_state": random_state,
        "fnc_edge_attribution": "sum of the (i, j) and (j, i) entries",
        "ig_relative_delta_median": float(np.median(passes["rel"])),
        "ig_relative_delta_max": float(np.max(passes["rel"])),
        "explained": (
            "external cohort, ensemble of the fold models"
            if external is not None
            else "explanation set, ensemble of the fold models"
            if oof.has_explanation_set
            else "every subject, out of fold"
        ),
        "out_of_fold": not oof.has_explanation_set,
        "n_explained": n,
        "folds": len(oof.folds),
    }
    if external is not None:
        settings.update(_external_settings(oof, passes["log_odds"], external))
    attributions = _assemble(oof, passes, settings)
    if faithfulness:
        _say(progress, "faithfulness: modality ablation and deletion curves")
        _add_faithfulness(attributions, oof, baseline, deletion_fractions, random_state)
    if n_permutations:
        _add_tables(attributions, oof, n_permutations, genes, atlas, random_state, progress, null, null_runs)
    settings["seconds"] = round(time.perf_counter() - start, 1)
    if out_dir is not False:
        attributions.save(Path(out_dir) if out_dir else oof.run.path / "explanations")
    return attributions


def rebuild_tables(
    run_dir,
    source,
    *,
    out_dir=False,
    n_permutations=1000,
    null="auto",
    genes=None,
    atlas="aal",
    random_state=None,
    progress=False,
    cohort=None,
    external=None,
    run_record=None,
) -> Attributions:
    """The ranked tables of saved attributions, tested again without recomputing integrated gradients.

    For another atlas, gene build, number of permutations or null on attributions `explain_run` saved: the
    per-subject arrays, the faithfulness checks and the explanation settings are taken from ``source`` as
    they are; only the tables (and the settings that describe them) are made anew. With the same options as
    the run that saved them, the tables are identical to its tables, bit for bit.

    Parameters
    ----------
    run_dir : path
        The run the attributions explain (its fold assignment, cohort and null runs are read; no model is run).
    source : path
        A folder written by `explain_run` / ``migtrans-explain`` for that run.
    out_dir : path or False
        Where to save the result (``False``: nothing is saved).
    n_permutations, null, genes, atlas : as for `explain_run`.
    random_state : int, optional
        The tables' permutation seed; default the one the attributions were made with.
    cohort, external, run_record : as for `explain_run` (an external cohort's attributions need the same
        external cohort loaded again).

    Returns
    -------
    Attributions
    """
    start = time.perf_counter()
    # memory-mapped: the tables read each modality a block at a time (`Attributions.save` may then write
    # over ``source`` itself, a file at a time through a rename)
    saved = Attributions.load(source)
    s = dict(saved.settings)
    if s.get("method") != "integrated_gradients":
        raise ParameterError(f"{source}: no saved attributions of migtrans-explain here (settings.json lacks them)")
    if bool(s.get("external_cohort")) != (external is not None):
        raise ParameterError(
            f"{source}: its attributions explain "
            + (f"the external cohort {s['external_cohort']} (pass it again)" if s.get("external_cohort") else "the run")
            + ("" if s.get("external_cohort") else ", not an external cohort")
        )
    oof = OutOfFold(run_dir, device="cpu", cohort=cohort, external=external is not None)
    random_state = s.get("random_state", 0) if random_state is None else random_state
    ig = {k: s.get(k, default) for k, default in (("n_steps", None), ("baseline", None), ("smoothgrad_samples", 0))}
    ig["noise_level"] = s.get("noise_level")
    scheme, null_runs = _choose_tables_null(oof, null, n_permutations, ig, atlas, random_state)
    # the settings of the tables are made anew; those of the attributions are kept
    keep = {k: v for k, v in s.items() if k not in _TABLE_SETTINGS}
    keep["run"] = str(run_record or oof.run.path)
    keep["tables_rebuilt_from"] = str(Path(source).absolute())
    attributions = Attributions(
        subjects=saved.subjects,
        snp=saved.snp,
        fnc=saved.fnc,
        smri=saved.smri,
        rollout_snp=saved.rollout_snp,
        rollout_fnc=saved.rollout_fnc,
        rollout_smri=saved.rollout_smri,
        mask=saved.mask,
        affine=saved.affine,
        settings=keep,
        ablation=saved.ablation,
        deletion=saved.deletion,
    )
    _add_tables(attributions, oof, n_permutations, genes, atlas, random_state, progress, scheme, null_runs)
    keep["tables_seconds"] = round(time.perf_counter() - start, 1)
    if out_dir is not False:
        attributions.save(Path(out_dir) if out_dir else oof.run.path / "explanations")
    return attributions


# What `_add_tables` writes into the settings (a rebuild of the tables replaces all of it).
_TABLE_SETTINGS = (
    "null",
    "null_tested",
    "n_null_runs",
    "n_null_runs_other_settings",
    "n_permutations",
    "permutation_scheme",
    "combination",
    "p_floor",
    "statistic",
    "statistic_id",
    "ranking_id",
    "fwer",
    "fdr",
    "atlas",
    "ranking",
    "region_attribution",
    "genes",
    "lambda_gc",
    "lambda_gc_interval",
    "lambda_gc_snps",
    "association_covariates",
    "genome_build",
    "trait",
    "label_names",
    "n_cases",
    "n_controls",
    "qc_thresholds",
    "qc_summary",
    "qc_notes",
    "n_pcs",
    "n_pcs_requested",
    "n_pruned_snps",
)


def _choose_tables_null(oof, null, n_permutations, ig_options, atlas, random_state):
    """(the tables' null, the matching retraining null runs found), B checked for a per-fold null: before any
    minutes of work. Null runs match when made with the same IG options, atlas, seed and run."""
    key = null_key(**ig_options, atlas=atlas, random_state=random_state, run=run_fingerprint(oof.run.path))
    null_runs = gather_null_runs(oof.run.path, key)
    scheme = choose_null(oof, null, null_runs.stats or None)
    if scheme == "per_fold":
        check_number_of_permutations(n_permutations, len(oof.folds))
    return scheme, null_runs


def _external_settings(oof, log_odds, alignment) -> dict:
    """What the settings record of an external cohort: which, how it was aligned, how well it was predicted."""
    from migtrans.training import classification_metrics, run_temperature

    cohort = oof.cohort
    temperature = run_temperature(oof.run)  # as migtrans predict calibrates the ensemble
    metrics = classification_metrics(oof.labels, 1 / (1 + np.exp(-log_odds / temperature)))
    return {
        "external_cohort": str(cohort.spec.toml_path),
        "external_cohort_name": cohort.spec.name,
        "external_alignment": {k: v for k, v in alignment.items() if k != "imputed_snp_ids"},
        "external_metrics": {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, np.number))},
        "external_temperature": float(temperature),
    }


def _attribute(oof, baseline, ig_options, rollout_method, batch_size, random_state, progress) -> dict:
    """Integrated gradients and rollout of every explained subject, summed over the passes of `OutOfFold`:
    each adds weight x (one fold model's outputs) for the subjects it explains, their own fold's model
    (weight 1) or, for an explanation set, every fold model (weight 1/k, the ensemble mean)."""
    cohort, n, mods = oof.cohort, len(oof.rows), oof.modalities
    ig = {
        "snp": _accumulator((n, cohort.genotypes.shape[1])) if "snp" in mods else None,
        "fnc": np.zeros((n, *cohort.fnc.shape[1:]), np.float32) if "fnc" in mods else None,
        "smri": _accumulator((n, cohort.voxels.shape[1])) if "smri" in mods else None,
    }
    roll = {m: None for m in mods}
    shares = np.zeros((n, len(mods)))
    log_odds, delta, attr_sum = np.zeros(n), np.zeros(n), np.zeros(n)
    for fold, rows, weight in oof.passes():
        _say(progress, f"explaining {len(rows)} subjects with fold model {fold.fold}/{len(oof.folds)}")
        base = oof.baselines(fold, baseline)
        for s in range(0, len(rows), batch_size):
            idx = rows[s : s + batch_size]
            pos = oof.position(idx)
            inputs = oof.inputs(fold, idx)
            attr, d = integrated_gradients(
                fold.model, inputs, base, random_state=random_state + fold.fold, **ig_options
            )
            delta[pos] += weight * d.double().cpu().numpy()
            attr_sum[pos] += weight * sum(
                a.reshape(len(idx), -1).double().sum(dim=1).cpu().numpy() for a in attr.values()
            )
            if "snp" in mods:
                ig["snp"][pos] += weight * attr["snp"].cpu().numpy()
            if "fnc" in mods:
                a = attr["fnc"].cpu().numpy()
                # an edge appears twice in the symmetric input: its attribution is both entries' sum
                ig["fnc"][pos] += weight * (a + a.transpose(0, 2, 1))
            if "smri" in mods:
                ig["smri"][pos] += weight * fold.prep.volumes_to_voxels(attr["smri"].cpu().numpy())
            result = relevance_rollout(fold.model, inputs, target="difference", method=rollout_method)
            log_odds[pos] += weight * (result.logits[:, 1] - result.logits[:, 0])
            shares[pos] += weight * result.shares
            for m in mods:
                values = getattr(result, m)
                if roll[m] is None:
                    roll[m] = np.zeros((n, values.shape[1]), np.float32)
                roll[m][pos] += weight * values
    for values in ig.values():
        if isinstance(values, np.memmap):
            values.flush()  # written out: the kernel may now drop its pages instead of swapping
    # completeness of the explained function (one model, or the ensemble mean): |delta| / |f(x) - f(baseline)|
    rel = np.abs(delta) / np.maximum(np.abs(attr_sum - delta), 1e-12)
    return dict(ig=ig, roll=roll, shares=shares, log_odds=log_odds, delta=delta, rel=rel)


#: per-subject IG arrays larger than this (MiB) are summed in a file-backed map rather than in memory
ON_DISK_MB = 64


def _accumulator(shape) -> np.ndarray:
    """A zeroed float32 array to sum attributions into: in memory when small; otherwise mapped from a
    temporary file under TMPDIR, so that 500 x 500,000 SNPs (1 GB) and as many voxels are held as pages the
    kernel can write out and drop, not as anonymous memory. The file has no name once made: its space is
    freed with the array, even when the process is killed."""
    size = 4 * int(np.prod(shape))
    if size <= ON_DISK_MB * 2**20:
        return np.zeros(shape, np.float32)
    with tempfile.TemporaryFile(prefix="migtrans-ig-") as handle:
        try:
            # claim the space now: a full disk under a map is a SIGBUS mid-run, not an error
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(handle.fileno(), 0, size)
            else:  # macOS: a sparse file
                handle.truncate(size)
        except OSError as exc:
            raise MigtransError(
                f"{tempfile.gettempdir()}: no room for {size / 2**20:.0f} MiB of integrated gradients kept on "
                f"disk while they are summed ({exc.strerror}); set TMPDIR to a folder with room"
            ) from None
        # the map keeps the file open after the handle closes; the file reads as zeros
        return np.memmap(handle, dtype=np.float32, mode="r+", shape=shape)


def _assemble(oof, passes, settings) -> Attributions:
    """The `Attributions` of the explained subjects, with their ``subjects`` table."""
    cohort, n, mods = oof.cohort, len(oof.rows), oof.modalities
    ig, roll, log_odds = passes["ig"], passes["roll"], passes["log_odds"]
    subjects = pd.DataFrame(
        {
            "subject_id": cohort.subject_ids[oof.rows],
            "fold": oof.fold_of_row[oof.rows],
            "label": oof.labels.astype(int),
            "prob_positive": 1 / (1 + np.exp(-log_odds)),
            "log_odds": log_odds,
            "ig_delta": passes["delta"],
            "ig_relative_delta": passes["rel"],
        }
    )
    for j, m in enumerate(mods):
        subjects[f"rollout_share_{m}"] = passes["shares"][:, j]
    absolute = {m: _abs_row_sums(ig[m].reshape(n, -1)) for m in mods}
    total = sum(absolute[m] for m in mods)
    for m in mods:
        subjects[f"ig_abs_share_{m}"] = absolute[m] / np.maximum(total, 1e-12)
    return Attributions(
        subjects=subjects,
        snp=ig["snp"],
        fnc=ig["fnc"],
        smri=ig["smri"],
        rollout_snp=roll.get("snp"),
        rollout_fnc=roll.get("fnc"),
        rollout_smri=roll.get("smri"),
        mask=oof.folds[0].prep.mask if "smri" in mods else None,
        affine=cohort.affine if "smri" in mods else None,
        settings=settings,
    )


def _abs_row_sums(X, memory_mb=16) -> np.ndarray:
    """Sum of |x| over each row, in float64, a block of rows at a time: ``np.abs`` of a whole modality would
    be a dense copy of it. Each row's sum is numpy's for the whole matrix, whatever the block."""
    rows = max(1, int(memory_mb * 2**20 // max(1, 4 * X.shape[1])))
    return np.concatenate([np.abs(X[s : s + rows]).sum(axis=1, dtype=np.float64) for s in range(0, len(X), rows)])


def _add_faithfulness(attributions, oof, baseline, deletion_fractions, random_state) -> None:
    attributions.ablation = modality_ablation(oof, baseline=baseline)
    kwargs = {"fractions": deletion_fractions} if deletion_fractions is not None else {}
    attributions.deletion = pd.concat(
        [
            deletion_curve(oof, attributions, m, baseline=baseline, random_state=random_state, **kwargs)
            for m in oof.modalities
        ],
        ignore_index=True,
    )


# What each null's p-values test, as the settings record it and the Methods text reads it.
NULLS = {
    "retraining": "global null of the retraining scheme: the whole pipeline (training, explanation, contrast) "
    "rerun on labels permuted within fold x site",
    "per_fold": "per-fold fixed-model exchangeability: each fold's held-out labels permuted within site with "
    "its model fixed, the fold p-values combined by Bonferroni (K x min p_k)",
    "explanation_set": "fixed-model exchangeability on the explanation set: its labels permuted within site "
    "with the fold models fixed",
    "external": "fixed-model exchangeability on the external cohort: its labels permuted within site with the "
    "fold models (trained on another cohort) fixed",
}


def _add_tables(attributions, oof, n_permutations, genes, atlas, random_state, progress, scheme, found) -> None:
    count = f"{found.count} retraining null runs found" + (
        f" ({found.mismatched} made with other settings left out)" if found.mismatched else ""
    )
    detail = {
        "retraining": f"p from {found.count} retraining null runs",
        "per_fold": f"{n_permutations} permutations within site in each of {len(oof.folds)} folds, Bonferroni",
        "explanation_set": f"{n_permutations} permutations within site",
        "external": f"{n_permutations} permutations within site of the external cohort",
    }[scheme]
    _say(progress, f"statistics: {detail}; {count}")
    tables = result_tables(
        oof,
        attributions,
        n_permutations=n_permutations,
        genes=genes,
        atlas=atlas,
        random_state=random_state,
        null=scheme,
        null_stats=found.stats or None,
    )
    attributions.tables = tables
    mods = oof.modalities
    attributions.settings.update(
        null=scheme,
        null_tested=NULLS[scheme],
        n_null_runs=found.count,
        n_null_runs_other_settings=found.mismatched,
        n_permutations=found.count if scheme == "retraining" else n_permutations,
        permutation_scheme={
            "retraining": "labels permuted within fold x site, whole pipeline retrained",
            "per_fold": "labels shuffled within site in each fold",
            "explanation_set": "labels shuffled within site",
            "external": "labels shuffled within site",
        }[scheme],
        combination="Bonferroni across folds (K x min p_k)" if scheme == "per_fold" else None,
        # the smallest p-value the null can give
        p_floor={
            "retraining": 1 / (found.count + 1),
            "per_fold": min(1.0, len(oof.folds) / (n_permutations + 1)),
            "explanation_set": 1 / (n_permutations + 1),
            "external": 1 / (n_permutations + 1),
        }[scheme],
        statistic=STATISTIC,
        statistic_id="welch_contrast",
        ranking_id="contrast",
        fwer="max-T",
        fdr="Benjamini-Hochberg",
        atlas=str(atlas),
        ranking=RANKING,
        region_attribution=REGION_ATTRIBUTION if "smri" in mods else None,
        genes=str(genes or oof.cohort.spec.genotypes.build.lower()) if "snp" in mods else None,
        lambda_gc=tables["snps"].attrs.get("lambda_gc") if "snps" in tables else None,
        lambda_gc_interval=tables["snps"].attrs.get("lambda_gc_interval") if "snps" in tables else None,
        lambda_gc_snps=tables["snps"].attrs.get("lambda_gc_snps") if "snps" in tables else None,
        association_covariates=tables["snps"].attrs.get("association_covariates") if "snps" in tables else None,
        # what the summary-statistics exports need when rewritten from a saved folder (explain.write_exports)
        **{
            key: tables["snps"].attrs.get(key)
            for key in ("genome_build", "trait", "label_names", "n_cases", "n_controls")
            if "snps" in tables
        },
        **_cohort_settings(oof.cohort),
    )


def _cohort_settings(cohort) -> dict:
    """What was done to the cohort before any model or statistic saw it: genotype QC and ancestry PCs."""
    from dataclasses import asdict

    if cohort.genotypes is None:
        return {}
    qc = cohort.qc
    return dict(
        qc_thresholds=None if qc is None else asdict(qc.thresholds),
        qc_summary=None if qc is None else qc.summary(),
        qc_notes=list(cohort.qc_notes),
        n_pcs=0 if cohort.pcs is None else int(cohort.pcs.shape[1]),
        n_pcs_requested=int(cohort.spec.genotypes.pcs),
        n_pruned_snps=None if cohort.pruned_snps is None else int(cohort.pruned_snps.sum()),
    )
