"""The baselines tuned by inner cross-validation: the elastic-net solver against scikit-learn, sparsity,
late fusion's stacker, no leak of the held-out fold, and `migtrans train --model elasticnet / late_fusion`."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from migtrans import ParameterError, load_cohort
from migtrans.cli import build_parser, main
from migtrans.folds import make_folds
from migtrans.preprocess import Preprocessor
from migtrans.training import (
    ElasticNetLogisticCV,
    LateFusion,
    TrainConfig,
    fold_of_subjects,
    open_run,
    retrain,
    train,
)
from migtrans.training._baselines import feature_blocks, flatten_features
from migtrans.training._config import MODELS
from migtrans.training._elasticnet import (
    elastic_net_path,
    inner_cv,
    nonnegative_logistic,
    null_gradient,
)


def _saga(C, l1_ratio):
    """scikit-learn's elastic-net logistic regression, solved to high precision."""
    # before 1.8, l1_ratio is read only with penalty="elasticnet"; from 1.8 on, penalty is deprecated
    penalty = {} if tuple(int(v) for v in sklearn.__version__.split(".")[:2]) >= (1, 8) else {"penalty": "elasticnet"}
    return LogisticRegression(C=C, l1_ratio=l1_ratio, solver="saga", tol=1e-10, max_iter=100_000, **penalty)


@pytest.mark.parametrize("l1_ratio", [0.3, 1.0])
def test_elastic_net_path_solves_scikit_learns_problem(rng, l1_ratio):
    X = rng.standard_normal((70, 230))
    X[:, 1] += X[:, 0]  # correlated columns, where a working set that misses one would show
    y = (X[:, :4].sum(1) + rng.standard_normal(70) > 0).astype(int)
    empty = l1_ratio / null_gradient(X, y).max()  # the largest C with no feature
    Cs = empty * np.array([0.9, 1.5, 4.0, 12.0])
    coefs, intercepts = elastic_net_path(X, y, Cs, l1_ratio, tol=1e-7)
    assert not coefs[0].any() and coefs[1].any()
    for C, coef, intercept in zip(Cs[1:], coefs[1:], intercepts[1:]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = _saga(C, l1_ratio).fit(X, y)
        np.testing.assert_array_equal(coef != 0, reference.coef_[0] != 0)
        np.testing.assert_allclose(coef, reference.coef_[0], atol=1e-5)
        assert intercept == pytest.approx(reference.intercept_[0], abs=1e-5)


def test_tuned_elastic_net_recovers_the_few_informative_features(rng):
    X = rng.standard_normal((300, 500))
    informative = [3, 50, 120, 260, 444]
    beta = np.zeros(500)
    beta[informative] = [1.5, -1.5, 1.2, -1.2, 1.0]
    y = (rng.random(300) < expit(X @ beta)).astype(int)
    model = ElasticNetLogisticCV(random_state=0).fit(X, y)
    coef = model.coef_[0]
    assert sorted(np.argsort(-np.abs(coef))[:5].tolist()) == informative
    np.testing.assert_array_equal(np.sign(coef[informative]), np.sign(beta[informative]))
    assert np.count_nonzero(coef) <= 50  # sparse: at most a tenth of the features
    assert model.l1_ratio_ in model.l1_ratios and model.C_ in model.Cs_
    assert model.cv_scores_.shape == (len(model.l1_ratios), model.n_cs, 5)


def test_inner_folds_are_stratified_keep_families_and_need_two_of_each_class():
    y = np.array([0, 1] * 15)
    groups = np.repeat(np.arange(15), 2)  # 15 sibling pairs, one case and one control each
    splits = inner_cv(y, groups, n_folds=5, random_state=0)
    assert len(splits) == 5
    for fit_rows, test in splits:
        assert not set(groups[fit_rows]) & set(groups[test])
        assert y[test].sum() == len(test) // 2
    assert len(inner_cv(np.array([0] * 10 + [1] * 3), n_folds=5)) == 3  # as many folds as the rarer class
    with pytest.raises(ParameterError, match="at least 2 subjects of each class"):
        inner_cv(np.array([0, 0, 0, 1]))


def test_nonnegative_stacker_matches_a_plain_logistic_fit_when_no_bound_binds(rng):
    Z = rng.standard_normal((500, 2))
    y = (rng.random(500) < expit(0.3 + 1.5 * Z[:, 0] + 0.7 * Z[:, 1])).astype(int)
    w, b = nonnegative_logistic(Z, y, alpha=1.0)
    # scikit-learn's C multiplies the summed loss: C = 1 / alpha
    reference = LogisticRegression(C=1.0, tol=1e-10).fit(Z, y)
    np.testing.assert_allclose(w, reference.coef_[0], rtol=1e-4)
    assert b == pytest.approx(reference.intercept_[0], rel=1e-4)
    w, _ = nonnegative_logistic(-Z, y)  # both weights would be negative: the bound holds them at 0
    np.testing.assert_array_equal(w, 0.0)


def test_late_fusion_gives_an_uninformative_modality_no_say(rng):
    X = rng.standard_normal((500, 90))
    y = (rng.random(500) < expit(0.8 * X[:, :3].sum(1))).astype(int)
    blocks = {"signal": slice(0, 30), "noise": slice(30, 90)}
    fused = LateFusion(blocks, random_state=0).fit(X, y)
    weight = dict(zip(blocks, fused.stacker_coef_))
    assert weight["signal"] > 0.5
    # a weight is in units of the modality's log-odds: compare what each one adds to the fused log-odds
    spread = {m: weight[m] * np.std(fused.estimators_[m].decision_function(X[:, cols])) for m, cols in blocks.items()}
    assert spread["noise"] < 0.1 * spread["signal"]
    # the fused model is one linear model: the stacked members' coefficients, weighted
    np.testing.assert_allclose(fused.coef_[0, 30:], weight["noise"] * fused.estimators_["noise"].coef_[0])
    members = sum(weight[m] * fused.estimators_[m].decision_function(X[:, c]) for m, c in blocks.items())
    np.testing.assert_allclose(fused.decision_function(X), fused.stacker_intercept_ + members, atol=1e-10)


def test_late_fusion_beats_each_modality_when_both_carry_signal(rng):
    n, n_train = 2400, 400
    a, b = rng.standard_normal((n, 40)), rng.standard_normal((n, 60))
    y = (rng.random(n) < expit(0.6 * a[:, :3].sum(1) + 0.6 * b[:, :3].sum(1))).astype(int)
    X = np.hstack([a, b])
    blocks = {"a": slice(0, 40), "b": slice(40, 100)}
    train, test = slice(0, n_train), slice(n_train, n)
    fused = LateFusion(blocks, random_state=0).fit(X[train], y[train])
    assert (fused.stacker_coef_ > 0.5).all()
    fused_auc = roc_auc_score(y[test], fused.decision_function(X[test]))
    for cols in blocks.values():
        alone = ElasticNetLogisticCV(random_state=0).fit(X[train, cols], y[train])
        assert fused_auc > roc_auc_score(y[test], alone.decision_function(X[test, cols])) + 0.03


@pytest.mark.parametrize("model", ["elasticnet", "late_fusion"])
def test_inner_tuning_never_sees_the_held_out_fold(sim_cohort, tmp_path, model):
    """Retrain the run on a cohort whose fold-1 test subjects have other data and labels: fold 1's fitted
    model is unchanged to the bit, fold 2 (which trains on them) is not."""
    run = train(sim_cohort.toml_path, tmp_path / "run", TrainConfig(n_folds=2, model=model), progress=False)
    cohort = load_cohort(sim_cohort.toml_path)
    held = np.isin(cohort.subject_ids, open_run(run.out_dir).fold_info(1)["test_subjects"])
    noise = np.random.default_rng(7)
    edited = dataclasses.replace(
        cohort,
        genotypes=np.where(held[:, None], noise.integers(0, 3, cohort.genotypes.shape), cohort.genotypes).astype(
            np.float32
        ),
        fnc=np.where(held[:, None, None], cohort.fnc[::-1], cohort.fnc).astype(np.float32),
        voxels=np.where(held[:, None], 2 * np.asarray(cohort.voxels), cohort.voxels).astype(np.float32),
    )
    labels = np.where(held, 1 - cohort.labels, cohort.labels)
    again = retrain(run.out_dir, labels, tmp_path / "edited", cohort=edited)

    def params(out, k):
        with np.load(out / f"folds/{k}/baseline.npz", allow_pickle=False) as data:
            return {key: data[key] for key in data.files}

    first, second = params(run.out_dir, 1), params(again.out_dir, 1)
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    assert not np.array_equal(params(run.out_dir, 2)["coef"], params(again.out_dir, 2)["coef"])
    fold = lambda r: r.predictions[r.predictions["fold"] == 1]  # noqa: E731
    assert not np.allclose(fold(run)["prob_positive"], fold(again)["prob_positive"])  # the edit reached them


def test_cli_trains_both_on_the_migtrans_folds_and_compares_them(sim_cohort, tmp_path, capsys):
    cohort = load_cohort(sim_cohort.toml_path)
    runs = {}
    for model in ("elasticnet", "late_fusion"):
        out = tmp_path / model
        argv = ["train", str(sim_cohort.toml_path), "--out", str(out), "--model", model, "--folds", "2", "--quiet"]
        assert main(argv) == 0
        runs[model] = open_run(out)
    capsys.readouterr()

    # the outer folds MIGTrans gets for this seed; the whole training fold is fitted (inner CV, no val split)
    site = None if cohort.site is None else np.asarray(cohort.site)
    expected = make_folds(cohort.labels, site, n_folds=2, random_state=0) + 1
    for model, run in runs.items():
        folds = fold_of_subjects(run)
        np.testing.assert_array_equal([folds[s] for s in cohort.subject_ids], expected)
        assert run.config["run"]["validation_split"] is False
        for k in (1, 2):
            info = run.fold_info(k)
            assert info["val_subjects"] == [] and len(info["train_subjects"]) == int((expected != k).sum())
            # the saved coefficients (plain arrays, no pickle) give the fold's predictions
            fold_dir = run.path / f"folds/{k}"
            with np.load(fold_dir / "baseline.npz", allow_pickle=False) as data:
                coef, intercept, sizes = data["coef"][0], data["intercept"][0], data["block_sizes"]
                modalities = [str(m) for m in data["modalities"]]
                stacker = data["stacker_coef"] if model == "late_fusion" else None
            rows = np.flatnonzero(np.isin(cohort.subject_ids, info["test_subjects"]))
            arrays = Preprocessor.load(fold_dir / "preprocess.npz").transform(cohort, rows, volumes=False)
            X = flatten_features(arrays)
            assert modalities == list(feature_blocks(arrays)) == ["snp", "fnc", "smri"]
            assert sizes.sum() == X.shape[1] == len(coef)
            preds = pd.read_csv(fold_dir / "predictions.csv", dtype={"subject_id": str})
            assert preds["subject_id"].tolist() == cohort.subject_ids[rows].tolist()
            np.testing.assert_allclose(preds["prob_positive"], expit(X.astype(np.float64) @ coef + intercept))
            chosen = info["regularisation"]
            if model == "elasticnet":
                assert chosen["n_nonzero"] == np.count_nonzero(coef)
                assert chosen["l1_ratio"] in (0.5, 0.9, 1.0)
            else:
                assert [chosen[m]["stacker_weight"] for m in modalities] == pytest.approx(stacker)

    both = [str(tmp_path / "elasticnet"), str(tmp_path / "late_fusion")]
    assert main(["compare", *both, "--out", str(tmp_path / "t.csv")]) == 0
    table = pd.read_csv(tmp_path / "t.csv")
    assert table["model"].tolist() == ["elasticnet", "late_fusion"]
    metrics = pd.read_csv(tmp_path / "late_fusion/metrics.csv", dtype={"fold": str}).set_index("fold")
    assert table.loc[1, "roc_auc_mean"] == pytest.approx(metrics.loc["mean", "roc_auc"])
    assert "| late_fusion |" in capsys.readouterr().out


def test_every_model_is_a_cli_choice():
    train_parser = build_parser()._subparsers._group_actions[0].choices["train"]
    (model,) = [a for a in train_parser._actions if a.dest == "model"]
    assert tuple(model.choices) == MODELS
    with pytest.raises(ParameterError, match="late_fusion"):
        TrainConfig(model="lasso")


def test_a_training_fold_too_small_for_inner_folds_is_refused_before_writing(tmp_path, capsys):
    from migtrans.simulate import simulate_cohort

    cohort = simulate_cohort(tmp_path / "c", n_subjects=20, n_snps=100, seed=1, resolution=8, case_share=0.1)
    out = tmp_path / "run"
    argv = ["train", str(cohort.toml_path), "--out", str(out), "--model", "elasticnet", "--folds", "2", "--quiet"]
    assert main(argv) == 2  # 2 cases: one per training fold
    assert "at least 2 subjects of each class" in capsys.readouterr().err
    assert not out.exists()
