"""Covariate adjustment inside each training fold and leave-one-site-out cross-validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from migtrans.data import load_cohort
from migtrans.exceptions import ParameterError
from migtrans.folds import site_folds
from migtrans.preprocess import Preprocessor, covariate_columns


@pytest.fixture
def cohort(tiny_cohort):
    toml_path, _ = tiny_cohort
    return load_cohort(toml_path)


def _split(cohort):
    train = np.arange(0, cohort.n_subjects, 2)
    return train, np.setdiff1d(np.arange(cohort.n_subjects), train)


def test_regression_equals_statsmodels_residuals_on_the_training_fold(cohort):
    """Adjusted FNC edges of training subjects are the OLS residuals of the edge on intercept + covariates
    + site (statsmodels), divided by their SD; a held-out subject gets the training coefficients."""
    import statsmodels.api as sm

    train, test = _split(cohort)
    prep = Preprocessor().fit(cohort, train, ("fnc",), adjust="regress")
    frame = covariate_columns(cohort, "fnc")
    design = pd.get_dummies(frame, drop_first=True, dtype=float)
    X = sm.add_constant(design.to_numpy(float))
    edge = cohort.fnc[:, 0, 1].astype(np.float64)
    fit = sm.OLS(edge[train], X[train]).fit()
    residual_train = edge[train] - fit.predict(X[train])
    residual_test = edge[test] - fit.predict(X[test])
    sd = residual_train.std()
    np.testing.assert_allclose(prep.transform(cohort, train)["fnc"][:, 0, 1], residual_train / sd, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(prep.transform(cohort, test)["fnc"][:, 0, 1], residual_test / sd, rtol=1e-4, atol=1e-5)


def test_adjustment_removes_what_the_covariates_explain(cohort):
    train, _ = _split(cohort)
    frame = covariate_columns(cohort, "smri")
    age = frame["age"].to_numpy(float)
    raw = Preprocessor().fit(cohort, train, ("smri",), adjust="none").transform(cohort, train, volumes=False)
    adjusted = Preprocessor().fit(cohort, train, ("smri",), adjust="regress").transform(cohort, train, volumes=False)
    r_raw = np.corrcoef(age[train], raw["voxels"].T)[0, 1:]
    r_adj = np.corrcoef(age[train], adjusted["voxels"].T)[0, 1:]
    assert np.nanmax(np.abs(r_adj)) < 1e-4 < np.nanmax(np.abs(r_raw))


def test_harmonisation_never_sees_a_held_out_subject(cohort):
    """The leakage test: change everything of the held-out subjects (imaging, covariates, site, genotypes)
    and refit on the same training fold: every fitted array is unchanged."""
    train, test = _split(cohort)
    before = Preprocessor().fit(cohort, train, cohort.modalities, adjust="regress")
    rng = np.random.default_rng(0)
    cohort.fnc = cohort.fnc.copy()
    cohort.fnc[test] += rng.normal(0, 5, cohort.fnc[test].shape).astype(np.float32)
    voxels = np.array(cohort.voxels)
    voxels[test] = voxels[test] * 3 + 10
    cohort.voxels = voxels
    genotypes = cohort.genotypes.copy()
    genotypes[test] = 2 - genotypes[test]
    cohort.genotypes = genotypes
    covariates = cohort.covariates.copy()
    covariates.iloc[test, covariates.columns.get_loc("age")] = 99.0
    covariates.iloc[test, covariates.columns.get_loc("site")] = "elsewhere"
    cohort.covariates = covariates
    after = Preprocessor().fit(cohort, train, cohort.modalities, adjust="regress")
    for name in ("snp_mean", "snp_sd", "fnc_mean", "fnc_sd", "voxel_mean", "voxel_sd"):
        np.testing.assert_array_equal(getattr(before, name), getattr(after, name), err_msg=name)
    assert before.designs.keys() == after.designs.keys() and before.designs
    for m in before.designs:
        np.testing.assert_array_equal(before.betas[m], after.betas[m], err_msg=m)
        np.testing.assert_array_equal(before.designs[m].center, after.designs[m].center)
        np.testing.assert_array_equal(before.designs[m].names, after.designs[m].names)


def test_adjusted_preprocessor_round_trips_through_npz(cohort, tmp_path):
    train, test = _split(cohort)
    prep = Preprocessor().fit(cohort, train, cohort.modalities, adjust="regress")
    prep.save(tmp_path / "p.npz")
    back = Preprocessor.load(tmp_path / "p.npz")
    assert back.adjust == "regress"
    for m, values in prep.transform(cohort, test).items():
        np.testing.assert_array_equal(values, back.transform(cohort, test)[m], err_msg=m)


def test_unknown_adjustment_is_refused(cohort):
    with pytest.raises(ParameterError, match="adjust"):
        Preprocessor().fit(cohort, np.arange(4), ("fnc",), adjust="combat")


def test_site_folds_hold_out_each_site():
    labels = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    site = np.array(["b", "b", "a", "a", "c", "c", "a", "b"])
    folds = site_folds(labels, site)
    assert folds.tolist() == [1, 1, 0, 0, 2, 2, 0, 1]
    with pytest.raises(ParameterError, match="site 'c' holds one class only"):
        site_folds(labels, np.array(["b", "b", "a", "a", "c", "a", "b", "c"]))
    with pytest.raises(ParameterError, match="site column"):
        site_folds(labels, None)


def test_leave_one_site_out_run_reports_metrics_per_site(sim_cohort_two_sites, tmp_path):
    from migtrans.training import TrainConfig, train

    result = train(
        sim_cohort_two_sites.toml_path,
        tmp_path / "run",
        TrainConfig(model="logistic", fold_by="site", n_folds=5),
        progress=False,
    )
    metrics = result.metrics
    assert metrics["site"].tolist()[:2] == ["site1", "site2"]
    predictions = result.predictions
    sites = pd.read_csv(sim_cohort_two_sites.toml_path.parent / "phenotypes.tsv", sep="\t").set_index("subject_id")
    # each fold's test subjects are exactly one site's subjects
    for _, part in predictions.groupby("fold"):
        assert sites.loc[part["subject_id"], "site"].nunique() == 1
    config = (tmp_path / "run" / "config.toml").read_text()
    assert "n_folds = 2" in config and 'fold_by = "site"' in config
    # the run opens (its metrics have a text column now) and compares like any other
    from migtrans.training import compare_runs, open_run

    assert open_run(tmp_path / "run").n_folds == 2
    assert len(compare_runs([tmp_path / "run"])) == 1


@pytest.fixture(scope="module")
def sim_cohort_two_sites(tmp_path_factory):
    from migtrans.simulate import simulate_cohort

    return simulate_cohort(
        tmp_path_factory.mktemp("sites") / "c", n_subjects=60, n_snps=200, seed=5, resolution=8, n_sites=2
    )


def test_related_subjects_share_a_fold():
    from migtrans.folds import make_folds, related_groups

    ids = [f"s{i}" for i in range(40)]
    labels = np.array([0, 1] * 20)
    pairs = [("s0", "s3"), ("s3", "s8"), ("s10", "s11"), ("s20", "s35")]
    groups = related_groups(ids, pairs)
    assert groups[0] == groups[3] == groups[8] and groups[10] == groups[11] and len(np.unique(groups)) == 36
    for seed in range(5):
        folds = make_folds(labels, n_folds=4, random_state=seed, groups=groups)
        for a, b in pairs:
            assert folds[ids.index(a)] == folds[ids.index(b)]
        assert np.bincount(folds).min() >= 8  # still balanced folds


def test_a_run_keeps_relatives_the_qc_kept_in_one_fold():
    """`train` assigns folds through `_assign_folds`: pairs the genotype QC reported (relatives = keep) share
    a fold, and an explanation set, which would split them, is refused."""
    from types import SimpleNamespace

    from migtrans.training import TrainConfig
    from migtrans.training._run import _assign_folds

    ids = np.array([f"s{i:02d}" for i in range(30)])
    pairs = pd.DataFrame({"id1": ["s01", "s05", "s12"], "id2": ["s02", "s29", "s13"], "kinship": [0.25, 0.24, 0.5]})
    cohort = SimpleNamespace(
        subject_ids=ids,
        n_subjects=30,
        labels=np.array([0, 1] * 15),
        site=None,
        qc=SimpleNamespace(kinship_pairs=pairs),
    )
    folds = _assign_folds(cohort, TrainConfig(n_folds=3))
    index = {s: i for i, s in enumerate(ids)}
    assert all(folds[index[a]] == folds[index[b]] for a, b in zip(pairs["id1"], pairs["id2"]))
    with pytest.raises(ParameterError, match="relatives = keep"):
        _assign_folds(cohort, TrainConfig(n_folds=3, explain_fraction=0.25))


def test_a_run_from_before_the_adjustment_option_opens_as_unadjusted(baseline_run, tmp_path):
    """Its config.toml has no `adjust`: it adjusted nothing, and retraining it (null runs) must not adjust."""
    import json
    import shutil

    from migtrans.training import open_run
    from migtrans.training._checkpoint import write_checksums

    folder = tmp_path / "old"
    shutil.copytree(baseline_run.out_dir, folder)
    config = (folder / "config.toml").read_text()
    assert 'adjust = "regress"' in config
    (folder / "config.toml").write_text(config.replace('adjust = "regress"\n', ""))
    resolved = json.loads((folder / ".resolved.json").read_text())
    del resolved["train"]["adjust"]
    (folder / ".resolved.json").write_text(json.dumps(resolved, sort_keys=True))
    write_checksums(folder)
    assert open_run(folder).train.adjust == "none"
    assert open_run(baseline_run.out_dir).train.adjust == "regress"
