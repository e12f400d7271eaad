"""`migtrans predict`: a trained run applied to a new cohort from the same generator, and refused on a
cohort that does not match."""

from __future__ import annotations

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
    from migtrans.training import align_cohort, load_fold, open_run, prediction_qc, resolve_device
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
    np.testing.assert_allclose(result.predictions["prob_positive"], 1 / (1 + np.exp(-written["log_odds"])), rtol=1e-9)
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
    other = simulate_cohort(tmp_path / "other", n_subjects=40, n_snps=200, seed=4, resolution=8)
    out = tmp_path / "pred"
    assert main(["predict", str(baseline_run.out_dir), str(other.toml_path), "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "SNPs are not in this cohort" in err and "--allow-missing-snps" in err
    assert not out.exists()
