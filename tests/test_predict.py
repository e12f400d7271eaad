"""`migtrans predict`: a trained run applied to a new cohort from the same generator, and refused on a
cohort that does not match."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from migtrans.cli import main
from migtrans.exceptions import CohortError
from migtrans.simulate import simulate_cohort
from migtrans.training import predict


@pytest.fixture(scope="module")
def replicate(sim_cohort, tmp_path_factory):
    """New subjects from `sim_cohort`'s generator (same SNP map, truth, nodes and grid)."""
    return simulate_cohort(
        tmp_path_factory.mktemp("rep") / "c", n_subjects=40, n_snps=200, seed=3, resolution=8, subjects_seed=9
    )


def test_predict_scores_every_new_subject_with_the_fold_ensemble(baseline_run, replicate, tmp_path):
    from migtrans.data import load_cohort
    from migtrans.training import align_cohort, load_fold, open_run, prediction_qc, resolve_device, run_temperature
    from migtrans.training._loop import predict_logits

    result = predict(baseline_run.out_dir, replicate.toml_path, tmp_path / "pred", device="cpu")
    written = pd.read_csv(tmp_path / "pred" / "predictions.csv", dtype={"subject_id": str})
    assert written["subject_id"].tolist() == list(replicate.subject_ids)
    assert (tmp_path / "pred" / "metrics.csv").is_file() and (tmp_path / "pred" / "predict.json").is_file()
    # the mean of the fold models' log-odds, each through its own fold's preprocessing
    run = open_run(baseline_run.out_dir)
    reference = load_cohort(run.cohort_path)
    new = load_cohort(replicate.toml_path, smri_mask=reference.mask, qc=prediction_qc(replicate.toml_path))
    align_cohort(reference, new, run.train.modalities)
    log_odds = []
    for k in (1, 2):
        model, prep, _ = load_fold(run, k, new)
        provider = lambda idx, prep=prep: prep.transform(new, idx)  # noqa: E731
        logits = predict_logits(model, provider, np.arange(new.n_subjects), 8, resolve_device("cpu"))
        log_odds.append(logits[:, 1] - logits[:, 0])
    np.testing.assert_allclose(written["log_odds"], np.mean(log_odds, axis=0), rtol=1e-5, atol=1e-6)
    # its probability calibrated by the run's temperature, fitted on the run's out-of-fold predictions
    temperature = json.loads((tmp_path / "pred" / "predict.json").read_text())["temperature"]
    assert temperature == pytest.approx(run_temperature(run)) and temperature != 1.0
    np.testing.assert_allclose(
        result.predictions["prob_positive"], 1 / (1 + np.exp(-written["log_odds"] / temperature)), rtol=1e-9
    )
    assert result.alignment["snps_imputed"] == 0


def test_the_new_cohorts_pcs_are_projected_not_refitted(baseline_run, replicate):
    from migtrans.data import load_cohort
    from migtrans.genetics import project_pcs
    from migtrans.training import align_cohort, open_run, prediction_qc

    run = open_run(baseline_run.out_dir)
    reference = load_cohort(run.cohort_path)
    new = load_cohort(replicate.toml_path, smri_mask=reference.mask, qc=prediction_qc(replicate.toml_path))
    own = new.pcs.copy()
    align_cohort(reference, new, run.train.modalities)
    np.testing.assert_allclose(new.pcs.to_numpy(), project_pcs(reference.genetic_pcs, new.genotypes))
    assert not np.allclose(np.abs(new.pcs.to_numpy()), np.abs(own.to_numpy()))


def test_swapped_alleles_are_recoded_and_missing_snps_need_permission(baseline_run, replicate, tmp_path):
    from migtrans.data import load_cohort
    from migtrans.training import align_cohort, open_run, prediction_qc

    run = open_run(baseline_run.out_dir)
    reference = load_cohort(run.cohort_path)
    new = load_cohort(replicate.toml_path, smri_mask=reference.mask, qc=prediction_qc(replicate.toml_path))
    expected = new.genotypes.copy()
    # the new files count the other allele of the first SNP
    snps = new.snps.copy()
    snps.loc[0, ["a1", "a2"]] = snps.loc[0, ["a2", "a1"]].to_numpy()
    new.snps, new.genotypes = snps, np.column_stack([2 - expected[:, 0], expected[:, 1:]])
    align = align_cohort(reference, new, run.train.modalities)
    assert align["snps_flipped"] == 1
    column = list(reference.snps["snp"]).index(snps.loc[0, "snp"])
    np.testing.assert_array_equal(new.genotypes[:, column], expected[:, 0])
    fresh = load_cohort(replicate.toml_path, smri_mask=reference.mask, qc=prediction_qc(replicate.toml_path))
    fresh.snps, fresh.genotypes = fresh.snps.iloc[5:].reset_index(drop=True), fresh.genotypes[:, 5:]
    with pytest.raises(CohortError, match="5 of the run's .* SNPs are not in this cohort"):
        align_cohort(reference, fresh, run.train.modalities)
    align = align_cohort(reference, fresh, run.train.modalities, allow_missing_snps=True)
    assert align["snps_imputed"] == 5 and np.isnan(fresh.genotypes[:, :5]).all()


def test_a_cohort_from_another_generator_is_refused_in_one_line(baseline_run, tmp_path, capsys):
    other = simulate_cohort(tmp_path / "other", n_subjects=40, n_snps=200, seed=4, resolution=8, subjects_seed=11)
    out = tmp_path / "pred"
    assert main(["predict", str(baseline_run.out_dir), str(other.toml_path), "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "SNPs are not in this cohort" in err and "--allow-missing-snps" in err
    assert not out.exists()


def test_a_cohort_sharing_subjects_with_the_run_is_refused(baseline_run, sim_cohort, tmp_path, capsys):
    out = tmp_path / "pred"
    argv = ["predict", str(baseline_run.out_dir), str(sim_cohort.toml_path), "--out", str(out), "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "are in the run's cohort" in err and "external cohort" in err, err
    assert not out.exists()


def test_explaining_an_external_cohort_uses_the_fold_ensemble_and_permutes_its_labels(
    baseline_run, replicate, tmp_path
):
    from explain import explain_run
    from migtrans.training import load_external_cohort, open_run

    pred = predict(baseline_run.out_dir, replicate.toml_path, tmp_path / "pred", device="cpu")
    cohort, alignment = load_external_cohort(open_run(baseline_run.out_dir), replicate.toml_path)
    attributions = explain_run(
        baseline_run.out_dir,
        out_dir=False,
        n_steps=4,
        faithfulness=False,
        n_permutations=99,
        device="cpu",
        cohort=cohort,
        external=alignment,
    )
    subjects = attributions.subjects
    assert subjects["subject_id"].tolist() == list(replicate.subject_ids)
    assert (subjects["fold"] == 0).all()  # every subject explained by the ensemble, none by its own fold
    # the explained function is predict's: the mean of the fold models' log-odds
    np.testing.assert_allclose(subjects["log_odds"], pred.predictions["log_odds"], rtol=1e-5, atol=1e-6)
    s = attributions.settings
    assert s["null"] == "external" and "external cohort" in s["null_tested"]
    assert s["external_cohort"] == str(replicate.toml_path) and s["n_explained"] == len(replicate.subject_ids)
    assert s["external_metrics"]["accuracy"] == pytest.approx(float(pred.metrics["accuracy"].iloc[0]))
    assert s["p_floor"] == pytest.approx(1 / 100)
    # p-values from the external cohort's own labels: the SNP table covers the run's SNPs
    assert len(attributions.tables["snps"]) == len(cohort.snps)


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--null", "per_fold"], "external cohort is tested by permuting its own labels"),
        ([], "are in the run's cohort"),
    ],
)
def test_migtrans_explain_refuses_what_an_external_cohort_cannot_do(
    extra, words, baseline_run, sim_cohort, replicate, tmp_path, capsys
):
    from reports.cli import main as explain_main

    cohort = replicate if extra else sim_cohort
    out = tmp_path / "report"
    argv = [str(baseline_run.out_dir), "--out", str(out), "--cohort", str(cohort.toml_path), "--device", "cpu", *extra]
    assert explain_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert not out.exists()


def test_migtrans_explain_reports_an_external_cohort(baseline_run, replicate, tmp_path):
    from reports.cli import main as explain_main

    out = tmp_path / "report"
    argv = [str(baseline_run.out_dir), "--out", str(out), "--cohort", str(replicate.toml_path), "--device", "cpu"]
    argv += ["--permutations", "99", "--ig-steps", "4", "--no-faithfulness", "--formats", "png", "--quiet"]
    assert explain_main(argv) == 0
    html = (out / "report.html").read_text()
    name = replicate.toml_path.parent.name
    assert f"external cohort {name}" in html
    assert "fixed-model exchangeability on the external cohort" in html
    subjects = pd.read_csv(out / "subjects.csv", dtype={"subject_id": str})
    assert subjects["subject_id"].tolist() == list(replicate.subject_ids)


def test_an_unlabelled_cohort_is_scored_without_metrics(baseline_run, replicate, tmp_path):
    """Subjects without a diagnosis are predicted (class names are the run's); metrics cover the labelled only."""
    import shutil

    folder = tmp_path / "unlabelled"
    shutil.copytree(replicate.toml_path.parent, folder)
    table = pd.read_csv(folder / "phenotypes.tsv", sep="\t", dtype=str)
    table.loc[: len(table) // 2, "diagnosis"] = "NA"
    table.to_csv(folder / "phenotypes.tsv", sep="\t", index=False)
    result = predict(baseline_run.out_dir, folder / "cohort.toml", tmp_path / "pred", device="cpu")
    full = predict(baseline_run.out_dir, replicate.toml_path, tmp_path / "full", device="cpu")
    # the same subjects get the same scores whether or not their labels are known
    np.testing.assert_allclose(result.predictions["log_odds"], full.predictions["log_odds"], rtol=1e-6)
    known = result.predictions["label"].notna()
    assert 0 < known.sum() < len(known)
    assert int(result.metrics["n_subjects"].iloc[0]) == int(known.sum())
    names = set(result.predictions["predicted_name"])
    assert names <= {"SZ", "HC"}
    # none labelled: predictions only
    table["diagnosis"] = "NA"
    table.to_csv(folder / "phenotypes.tsv", sep="\t", index=False)
    none = predict(baseline_run.out_dir, folder / "cohort.toml", tmp_path / "none", device="cpu")
    assert none.predictions["label"].isna().all() and none.metrics.empty
    assert not (tmp_path / "none" / "metrics.csv").exists()
