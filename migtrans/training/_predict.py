"""`predict`: apply a trained run (its fold models' ensemble and each fold's fitted preprocessing) to a new
cohort, for external validation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import CohortError, ParameterError
from ..utils import atomic_write_text, discard_staging, mark_output, move_into_place, prepare_out_dir, staging_dir
from ._calibration import run_temperature
from ._checkpoint import load_fold, open_run
from ._loop import predict_logits, resolve_device
from ._metrics import METRIC_COLUMNS, classification_metrics


@dataclass
class PredictResult:
    """What `predict` wrote: the folder, the ensemble's predictions and, with labels, its metrics."""

    out_dir: Path
    predictions: pd.DataFrame
    metrics: pd.DataFrame
    alignment: dict


def predict(run_dir, cohort_path, out_dir, *, allow_missing_snps=False, device="auto", overwrite=False):
    """Score every subject of ``cohort_path`` with the fold models of the run in ``run_dir``.

    Each fold model sees the new subjects through its own fold's preprocessing (imputation, covariate
    adjustment, standardisation fitted on that fold's training subjects); the prediction is the mean of the
    fold models' log-odds, as for an explanation set. The new cohort must match what the run was trained on:
    the same SNPs (matched by id; alleles swapped between the files are recoded, any other allele difference
    is an error), the same FNC nodes in the same order, the same sMRI grid (its voxels are read inside the
    run's mask), the same covariate columns. SNPs the new cohort lacks are an error unless
    ``allow_missing_snps``: they are then imputed with each fold's training mean and counted. Genetic
    principal components of the new subjects are projected onto the training cohort's (not refitted).

    Parameters
    ----------
    run_dir : path-like
        A finished MIGTrans run folder.
    cohort_path : path-like
        The new cohort's TOML file (labels are used for the metrics).
    out_dir : path-like
        Folder to write ``predictions.csv``, ``metrics.csv`` and ``predict.json`` into (refused if it exists
        and is not empty, unless ``overwrite``); nothing is written when anything is refused.
    allow_missing_snps : bool
    device : str
    overwrite : bool

    Returns
    -------
    PredictResult
    """
    run = open_run(run_dir)
    if run.train.model != "migtrans":
        raise ParameterError(f"{run.path}: predict applies MIGTrans fold models; this is a {run.train.model} run")
    out_dir = prepare_out_dir(out_dir, overwrite, option="--out", kind="predictions")
    new, alignment = load_external_cohort(
        run, cohort_path, allow_missing_snps=allow_missing_snps, labels_required=False
    )
    device = resolve_device(device)

    log_odds = []
    for k in range(1, run.n_folds + 1):
        model, prep, _ = load_fold(run, k, new)
        model.to(device)
        logits = predict_logits(
            model,
            lambda idx, prep=prep: prep.transform(new, idx),
            np.arange(new.n_subjects),
            run.train.batch_size * 2,
            device,
            run.train.amp,
        )
        log_odds.append((logits[:, 1] - logits[:, 0]).astype(np.float64))
    mean_log_odds = np.mean(log_odds, axis=0)
    temperature = run_temperature(run)  # the run's calibration of the ensemble (1 without one)
    prob = 1 / (1 + np.exp(-mean_log_odds / temperature))
    labelled = new.labels >= 0
    # class names are the run's: the new cohort may hold one class, or none, and spell them its own way
    names = dict(zip((0, 1), run_label_names(run, new)))
    predictions = pd.DataFrame(
        {
            "subject_id": new.subject_ids,
            "label": pd.Series(new.labels, dtype="Int64").where(labelled),
            "prob_positive": prob,
            "predicted": (prob >= 0.5).astype(int),
            "predicted_name": [names[int(v)] for v in prob >= 0.5],
            "log_odds": mean_log_odds,
        }
    )
    rows = []
    if labelled.any():
        metrics = classification_metrics(new.labels[labelled], prob[labelled])
        rows.append({"cohort": new.spec.name, "n_subjects": int(labelled.sum()), **metrics})
    metrics = pd.DataFrame(rows, columns=["cohort", "n_subjects", *METRIC_COLUMNS])
    summary = {
        "run": str(run.path),
        "cohort": str(new.spec.toml_path),
        "n_subjects": int(new.n_subjects),
        "n_labelled": int(labelled.sum()),
        "temperature": float(temperature),
        "n_folds": int(run.n_folds),
        "dropped_subjects": dict(new.dropped),
        **alignment,
    }
    tmp = staging_dir(out_dir)
    try:
        atomic_write_text(tmp / "predictions.csv", predictions.to_csv(index=False, float_format="%.17g"))
        if len(metrics):  # metrics need labels
            atomic_write_text(tmp / "metrics.csv", metrics.to_csv(index=False, float_format="%.17g"))
        atomic_write_text(tmp / "predict.json", json.dumps(summary, indent=2) + "\n")
        mark_output(tmp, "predictions")
        move_into_place(tmp, out_dir)
    except BaseException:
        discard_staging(tmp)
        raise
    return PredictResult(out_dir=out_dir, predictions=predictions, metrics=metrics, alignment=alignment)


def load_external_cohort(run, cohort_path, *, allow_missing_snps=False, labels_required=True):
    """Load ``cohort_path`` as the run's models must see it: through its own QC without the allele-frequency
    filters (`prediction_qc`), its voxels read inside the run's mask, then aligned to the run's cohort
    (`align_cohort`). Refuses a cohort that shares subject ids with the run's cohort: their predictions would
    not be external. With ``labels_required=False`` subjects may lack a label (-1), as for `predict`.

    Returns
    -------
    (Cohort, dict)
        The aligned cohort and the alignment counts (SNPs flipped or imputed).
    """
    from ..data import load_cohort

    modalities = run.train.modalities
    reference = load_cohort(run.cohort_path)
    new = load_cohort(
        cohort_path,
        smri_mask=reference.mask if "smri" in modalities else None,
        qc=prediction_qc(cohort_path),
        labels_required=labels_required,
    )
    trained = set(reference.subject_ids)
    shared = [s for s in new.subject_ids if s in trained]
    if shared:
        raise CohortError(
            f"{len(shared)} of its {new.n_subjects} subjects (e.g. {str(shared[0])!r}) are in the run's cohort, which "
            "trained its models; an external cohort must hold new subjects",
            file=new.spec.toml_path,
        )
    return new, align_cohort(reference, new, modalities, allow_missing_snps=allow_missing_snps)


def run_label_names(run, cohort) -> tuple:
    """(negative, positive) class names of the run's cohort, read from its out-of-fold predictions (else
    ``cohort``'s)."""
    from ._folder import RunFolder

    path = RunFolder(run.path).predictions
    if path.is_file():
        table = pd.read_csv(path, usecols=["label", "label_name"], dtype={"label_name": str})
        names = table.drop_duplicates("label").set_index("label")["label_name"]
        if set(names.index) == {0, 1}:
            return names[0], names[1]
    return tuple(cohort.label_names)


def prediction_qc(cohort_path):
    """The new cohort's own QC thresholds without the allele-frequency filters: a SNP the run was trained on
    that happens to be rare in a smaller sample is no quality problem (missingness, Hardy-Weinberg and
    differential missingness still remove SNPs, which then count as missing)."""
    from dataclasses import replace

    from ..data import read_cohort_spec

    thresholds = read_cohort_spec(cohort_path).qc
    return None if thresholds is None else replace(thresholds, maf=None, mac=None)


def align_cohort(reference, new, modalities, *, allow_missing_snps=False) -> dict:
    """Make ``new`` look like ``reference`` to the run's models (in place): genotype columns in the reference's
    SNP order and allele coding, the reference's node order, the reference's genetic PCs projected. Refuse,
    in one line naming what differs, whatever cannot be matched. Returns counts for ``predict.json``."""
    where = new.spec.toml_path
    out = {"snps_flipped": 0, "snps_imputed": 0, "imputed_snp_ids": []}
    if "snp" in modalities:
        ref, snps = reference.snps.reset_index(drop=True), new.snps.reset_index(drop=True)
        position = pd.Series(np.arange(len(snps)), index=snps["snp"])
        present = ref["snp"].isin(position.index).to_numpy()
        if not present.all():
            missing = ref["snp"][~present]
            if not allow_missing_snps:
                raise CohortError(
                    f"{len(missing)} of the run's {len(ref)} SNPs are not in this cohort (after its QC), e.g. "
                    f"{', '.join(missing.head(3))}; use --allow-missing-snps to impute them with the training mean",
                    file=where,
                )
            out["snps_imputed"], out["imputed_snp_ids"] = int(len(missing)), missing.tolist()
        columns = position.reindex(ref["snp"]).to_numpy()
        same = np.zeros(len(ref), dtype=bool)
        swapped = np.zeros(len(ref), dtype=bool)
        rows = np.flatnonzero(present)
        theirs = snps.iloc[columns[rows].astype(int)]
        same[rows] = (theirs["a1"].to_numpy() == ref["a1"].to_numpy()[rows]) & (
            theirs["a2"].to_numpy() == ref["a2"].to_numpy()[rows]
        )
        swapped[rows] = (theirs["a1"].to_numpy() == ref["a2"].to_numpy()[rows]) & (
            theirs["a2"].to_numpy() == ref["a1"].to_numpy()[rows]
        )
        bad = present & ~same & ~swapped
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            mine = snps.iloc[int(columns[i])]
            raise CohortError(
                f"SNP {ref['snp'][i]!r} has alleles {mine['a1']}/{mine['a2']}, the run's cohort "
                f"{ref['a1'][i]}/{ref['a2'][i]} ({int(bad.sum())} such SNPs)",
                file=where,
            )
        genotypes = np.full((new.n_subjects, len(ref)), np.nan, dtype=np.float32)
        genotypes[:, rows] = new.genotypes[:, columns[rows].astype(int)]
        genotypes[:, swapped] = 2 - genotypes[:, swapped]
        if new.pruned_snps is not None:  # its own LD-pruned common SNPs (lambda_GC's), in the run's SNP order
            pruned = np.zeros(len(ref), dtype=bool)
            pruned[rows] = new.pruned_snps[columns[rows].astype(int)]
            new.pruned_snps = pruned
        new.genotypes, new.snps = genotypes, ref.copy()
        out["snps_flipped"] = int(swapped.sum())
        if reference.pcs is not None:
            from ..genetics import project_pcs

            scores = project_pcs(reference.genetic_pcs, new.genotypes)
            new.genetic_pcs = reference.genetic_pcs
            index = pd.Index(new.subject_ids, name="subject_id")
            new.pcs = pd.DataFrame(scores, columns=list(reference.pcs.columns), index=index)
    if "fnc" in modalities:
        ours, theirs = list(reference.nodes["name"]), list(new.nodes["name"])
        if ours != theirs:
            differ = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
            raise CohortError(
                f"FNC nodes differ from the run's ({len(theirs)} nodes against {len(ours)}; first difference at "
                f"node {differ + 1})",
                file=where,
            )
    if "smri" in modalities and not np.allclose(reference.affine, new.affine, atol=1e-4):
        raise CohortError("sMRI grid differs from the run's (another affine); resample to the run's grid", file=where)
    site = reference.spec.phenotypes.site_column
    if site is not None and new.spec.phenotypes.site_column != site:
        raise CohortError(
            f"the run's cohort has its site in column {site!r}, this one "
            + (f"in {new.spec.phenotypes.site_column!r}" if new.spec.phenotypes.site_column else "has no site column")
            + "; name it the same (a site the run never saw is coded as its reference site)",
            file=where,
        )
    wanted = set(reference.covariates.columns)
    lacking = sorted(wanted - set(new.covariates.columns))
    if lacking:
        raise CohortError(f"covariates {', '.join(lacking)} of the run's cohort are not listed here", file=where)
    new.covariates = new.covariates[list(reference.covariates.columns)]
    return out
