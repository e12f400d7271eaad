"""From a trained run to a finished report folder: explain the held-out subjects, test, draw, render — built in a
temporary folder and moved into place at the end, so a failure never leaves half a report."""

from __future__ import annotations

import shutil
import sys
import time
import warnings
from pathlib import Path

from explain import (
    ExplanationFolder,
    atlas_regions_in_mask,
    check_number_of_permutations,
    explain_run,
    gene_table,
    rebuild_tables,
    region_atlas,
)
from migtrans.data import CohortWarning, load_cohort, read_cohort_spec
from migtrans.exceptions import ParameterError
from migtrans.training import RunFolder, load_external_cohort, open_run
from migtrans.utils import (
    check_outside_inputs,
    discard_staging,
    mark_output,
    move_into_place,
    prepare_out_dir,
    staging_dir,
)
from migtrans.validation import check_device, check_number, check_seed

from .folder import ReportFolder
from .page import make_figures, read_highlight, render_report

FORMATS = ("png", "pdf", "svg")


def _say(progress, text):
    if progress:
        print(text, file=sys.stderr, flush=True)


def check_options(*, n_permutations, n_steps, top_k, formats, atlas, genes, device, random_state, highlight=None):
    """Validate the report options before any work starts; returns the normalised formats."""
    read_highlight(highlight)  # a missing or empty list fails now, not after the explanation
    # the upper bounds keep a typo from asking for days of work or more memory than any machine has
    check_number("permutations", n_permutations, minimum=1, maximum=1_000_000, integer=True)
    check_number("ig_steps", n_steps, minimum=2, maximum=4096, integer=True)
    check_number("top_k", top_k, minimum=1, integer=True)
    check_device("device", device)
    check_seed("seed", random_state)
    formats = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ParameterError(
            f"formats: expected a comma-separated subset of {','.join(FORMATS)}, found {','.join(formats) or 'nothing'}"
        )
    if "png" not in formats:  # the HTML report embeds the PNGs
        formats = ("png", *formats)
    region_atlas(atlas)
    if genes is not None:
        gene_table(genes)
    return formats


def _keep_run_summary(run_dir: Path, folder: Path) -> Path:
    """Copy the run's small files (config, manifest, metrics, predictions, per-fold history) into ``folder``."""
    # What the report keeps of the run folder (small files only: never the fold checkpoints), so that every
    # link in report.html resolves inside the report folder after it is copied or mailed.
    source, copy = RunFolder(run_dir), RunFolder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = [(source / name, copy / name) for name in RunFolder.SUMMARY]
    for k in source.fold_numbers():  # learning curves, and the epoch each fold kept (the history figure's dots)
        pairs += [(source.fold(k).history, copy.fold(k).history), (source.fold(k).info, copy.fold(k).info)]
    for path, target in pairs:
        if path.is_file():  # copyfile, not copy2: the copy takes the report's permissions
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return folder


def _build(
    stage: Path,
    run_dir: Path,
    run_summary: Path,
    run_record: Path,
    *,
    n_permutations,
    null,
    n_steps,
    baseline,
    top_k,
    atlas,
    genes,
    formats,
    faithfulness,
    device,
    random_state,
    progress,
    command,
    collected,
    external_cohort=None,
    allow_missing_snps=False,
    tables_from=None,
    highlight=None,
):
    start = time.perf_counter()
    run = open_run(run_dir)
    alignment = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if external_cohort is None:
            cohort = load_cohort(run.cohort_path)
        else:
            cohort, alignment = load_external_cohort(run, external_cohort, allow_missing_snps=allow_missing_snps)
            if alignment["snps_imputed"]:
                collected.append(
                    f"External cohort: {alignment['snps_imputed']} of the run's SNPs are missing from it and were "
                    "imputed with each fold's training mean (--allow-missing-snps)"
                )
    for w in caught:  # into the report's Warnings section, and passed on to the caller
        if issubclass(w.category, CohortWarning):
            collected.append(f"Cohort: {w.message}")
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if "smri" in run.train.modalities:  # before hours of IG: an atlas that misses the brain fails now
        atlas_regions_in_mask(atlas, cohort.mask, cohort.affine)
    if tables_from is not None:
        _say(progress, f"tables from the attributions saved in {tables_from} (no integrated gradients)")
        rebuild_tables(
            run_dir,
            tables_from,
            out_dir=stage,
            n_permutations=n_permutations,
            null=null,
            genes=genes,
            atlas=atlas,
            random_state=random_state,
            progress=progress,
            cohort=cohort,
            external=alignment,
            run_record=run_record,
        )
    else:
        explain_run(
            run_dir,
            out_dir=stage,
            n_steps=n_steps,
            baseline=baseline,
            n_permutations=n_permutations,
            null=null,
            genes=genes,
            atlas=atlas,
            faithfulness=faithfulness,
            device=device,
            random_state=random_state,
            progress=progress,
            cohort=cohort,
            run_record=run_record,  # where the run will be once the report folder is in place
            external=alignment,
        )
    _say(progress, f"drawing figures ({', '.join(formats)})")
    build = cohort.spec.genotypes.build if "snp" in run.train.modalities else "GRCh37"
    with warnings.catch_warnings(record=True) as figure_warnings:
        warnings.simplefilter("always", UserWarning)
        figures = make_figures(stage, run_summary, formats=formats, top_k=top_k, build=build, highlight=highlight)
    collected += [str(w.message) for w in figure_warnings if issubclass(w.category, UserWarning)]
    _say(progress, "writing report.html")
    path = render_report(
        stage, run_summary, figures, command=command, warnings=collected, top_k=top_k, highlight=highlight
    )
    _say(progress, f"report built in {time.perf_counter() - start:.0f} s")
    return path


def _run_guarded(out_dir, overwrite, work):
    """Run ``work(stage)`` in a staging folder beside ``out_dir``; move it into place only on success."""
    out = prepare_out_dir(out_dir, overwrite, option="--out", kind="report")
    stage = staging_dir(out)
    collected = []
    try:
        work(stage, out, collected)
        mark_output(stage, "report")
        move_into_place(stage, out)
    except BaseException:
        discard_staging(stage)
        raise
    return out / "report.html"


def explain_and_report(
    run_dir,
    out_dir,
    *,
    n_permutations=1000,
    null="auto",
    n_steps=32,
    baseline="mean",
    top_k=20,
    atlas="aal",
    genes=None,
    formats=("png", "pdf"),
    faithfulness=True,
    device="auto",
    random_state=0,
    overwrite=False,
    allow_changed_inputs=False,
    cohort=None,
    allow_missing_snps=False,
    tables_from=None,
    highlight=None,
    progress=True,
    command=None,
) -> Path:
    """Explain a trained run and write its report folder.

    The folder holds ``report.html`` (self-contained), the ranked tables (``snps.csv``, ``loci.csv``,
    ``regions.csv``, ``connections.csv``, ``nodes.csv``, ``modalities.csv``), the per-subject attributions,
    ``smri_attribution.nii.gz``, ``figures/`` and ``run/`` (the run's config, manifest, metrics, predictions
    and learning curves, so every link resolves inside the folder).

    Parameters
    ----------
    run_dir : path
        A finished MIGTrans run (`migtrans train`).
    out_dir : path
        The report folder; refused when it exists and is not empty, unless ``overwrite``.
    n_permutations, n_steps : int
        Label permutations of the fixed-model tests (within site, in each fold) and integrated-gradients steps.
    baseline : {"mean", "held_out_mean", "zero"}
        Integrated-gradients baseline (`explain.explain_run`).
    null : {"auto", "retraining", "per_fold"}
        What the attribution p-values test (`explain.choose_null`): the run's retraining null runs
        (``migtrans-null``), or each fold's model fixed with Bonferroni across folds; "auto" takes the
        retraining null when at least 19 matching null runs exist.
    top_k : int
        Rows of each table shown in the report and edges/regions drawn in top-k figures.
    atlas : {"aal", "harvard-oxford"} or path to a label image with ``<stem>.tsv`` beside it
    genes : {"grch37", "grch38"} or BED path, optional
        Default: the cohort's genome build.
    formats : sequence of {"png", "pdf", "svg"}
        Figure files; PNG is always written (the report embeds it).
    faithfulness : bool
        Also run modality ablation and deletion curves.
    device : str
    random_state : int
    overwrite, progress : bool
    allow_changed_inputs : bool
        Explain even when an input file differs from the checksum recorded at training (each is then a
        warning, in the report too) instead of refusing.
    cohort : path, optional
        An external cohort's TOML file: explain its subjects (new ones, aligned to the run's cohort as
        `migtrans.training.predict` aligns them) with the ensemble of the fold models, instead of the run's
        own held-out subjects; its labels are permuted within site for the p-values.
    allow_missing_snps : bool
        With ``cohort``: impute the run's SNPs it lacks with each fold's training mean (counted, and a
        warning in the report) instead of refusing it.
    tables_from : path, optional
        A report (or explanation) folder of this run: take its saved attributions and faithfulness checks
        as they are, and only rebuild the tables (`explain.rebuild_tables`: another atlas, gene build,
        number of permutations or null), the figures and the report. It may be ``out_dir`` itself (with
        ``overwrite``). ``n_steps``, ``baseline`` and ``faithfulness`` are then those of the saved folder.
    highlight : path or sequence of str, optional
        SNP ids and gene symbols to mark in the Manhattan plot and list in the report (a text file, one per
        line; `reports.page.read_highlight`).
    command : sequence of str, optional
        The command line, shown under Provenance.

    Returns
    -------
    Path of ``report.html``.
    """
    if cohort is None and allow_missing_snps:
        raise ParameterError("--allow-missing-snps: applies only to an external cohort (--cohort)")
    formats = check_options(
        n_permutations=n_permutations,
        n_steps=n_steps,
        top_k=top_k,
        formats=formats,
        atlas=atlas,
        genes=genes,
        device=device,
        random_state=random_state,
        highlight=highlight,
    )
    run = open_run(run_dir)
    if run.train.model != "migtrans":
        raise ParameterError(
            f"run_dir: {run.path} is a {run.train.model} baseline run; only MIGTrans runs have fold models to explain"
        )
    # fails early, with one line, when the cohort has moved away
    inputs = [("run folder", run.path), *read_cohort_spec(run.cohort_path).inputs()]
    if cohort is not None:
        if null not in ("auto",):
            raise ParameterError(
                f"--null {null}: an external cohort is tested by permuting its own labels within site "
                "(leave --null out)"
            )
        inputs += [(f"external {label}", path) for label, path in read_cohort_spec(cohort).inputs()]
    if str(atlas).lower() not in ("aal", "harvard-oxford"):
        inputs += [
            ("atlas", Path(atlas)),
            ("atlas labels", Path(atlas).with_name(Path(atlas).name.split(".")[0] + ".tsv")),
        ]
    if genes is not None and str(genes).lower() not in ("grch37", "grch38"):
        inputs.append(("gene file", Path(genes)))
    check_outside_inputs(out_dir, inputs)
    changed = run.check_inputs(allow_changed=allow_changed_inputs)
    for line in changed:
        warnings.warn(line, CohortWarning, stacklevel=2)

    def work(stage, out, collected):
        collected += [f"Inputs: {line} (explained with --allow-changed-inputs)" for line in changed]
        summary = _keep_run_summary(run.path, stage / ReportFolder.RUN)
        _build(
            stage,
            run.path,
            summary,
            run.path,
            n_permutations=n_permutations,
            null=null,
            n_steps=n_steps,
            baseline=baseline,
            top_k=top_k,
            atlas=atlas,
            genes=genes,
            formats=formats,
            faithfulness=faithfulness,
            device=device,
            random_state=random_state,
            progress=progress,
            command=command,
            collected=collected,
            external_cohort=cohort,
            allow_missing_snps=allow_missing_snps,
            tables_from=tables_from,
            highlight=highlight,
        )

    if tables_from is not None:
        tables_from = Path(tables_from).expanduser().absolute()
        if not ExplanationFolder(tables_from).subjects.is_file():
            raise ParameterError(f"--from: {str(tables_from)!r} holds no saved attributions (no subjects.csv)")
    return _run_guarded(out_dir, overwrite, work)


def demo(
    out_dir,
    *,
    n_subjects=600,
    n_snps=5000,
    n_folds=5,
    epochs=12,
    n_permutations=1000,
    null="auto",
    n_steps=32,
    baseline="mean",
    top_k=20,
    formats=("png", "pdf"),
    faithfulness=True,
    device="auto",
    random_state=1,
    overwrite=False,
    progress=True,
    command=None,
) -> Path:
    """Simulate a cohort with planted biomarkers, cross-validate MIGTrans on it, explain it and write the
    report: ``out_dir`` holds ``cohort/``, ``run/`` and the report files (as `explain_and_report`)."""
    from migtrans.simulate import simulate_cohort
    from migtrans.training import TrainConfig, train

    formats = check_options(
        n_permutations=n_permutations,
        n_steps=n_steps,
        top_k=top_k,
        formats=formats,
        atlas="aal",
        genes=None,
        device=device,
        random_state=random_state,
    )
    # before simulating and training: what the new run's tables can be tested against
    if null == "retraining":
        raise ParameterError("null: the demo trains a new run, which has no retraining null runs; use auto or per_fold")
    check_number_of_permutations(n_permutations, n_folds)
    config = TrainConfig(n_folds=n_folds, epochs=epochs, seed=random_state, device=device)

    def work(stage, out, collected):
        _say(progress, f"simulating {n_subjects} subjects x {n_snps} SNPs (seed {random_state})")
        sim = simulate_cohort(stage / "cohort", n_subjects=n_subjects, n_snps=n_snps, seed=random_state)
        _say(progress, f"cross-validating MIGTrans ({n_folds} folds, {epochs} epochs)")
        train(sim.toml_path, stage / ReportFolder.RUN, config, progress=progress)
        collected.append("Demo cohort: simulated data with planted biomarkers (cohort/truth.json), not real subjects.")
        _build(
            stage,
            stage / ReportFolder.RUN,
            stage / ReportFolder.RUN,
            out / ReportFolder.RUN,
            n_permutations=n_permutations,
            null=null,
            n_steps=n_steps,
            baseline=baseline,
            top_k=top_k,
            atlas="aal",
            genes=None,
            formats=formats,
            faithfulness=faithfulness,
            device=device,
            random_state=random_state,
            progress=progress,
            command=command,
            collected=collected,
        )

    return _run_guarded(out_dir, overwrite, work)
