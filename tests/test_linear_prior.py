"""`ModelConfig.linear_prior`: the elastic net inside MIGTrans. The untrained network is the elastic net fitted
on the fold's fit subjects; the network trains on its out-of-fold log-odds; runs with it train, predict and
explain."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from migtrans.data import load_cohort
from migtrans.loci import run_loci
from migtrans.model import LinearPrior, ModelConfig
from migtrans.preprocess import Preprocessor
from migtrans.training import ElasticNetLogisticCV, RunFolder, TrainConfig, build_model, fit_linear_prior, train
from migtrans.training._baselines import feature_blocks, flatten_features

from conftest import TINY_MODEL, TINY_TRAIN


def test_prior_reads_the_linear_model_from_every_modality(rng):
    shapes = {"snp": (5,), "fnc": (4, 4), "smri": (2, 3, 2)}
    crop = rng.random((2, 3, 2)) > 0.4
    arrays = {
        "snp": rng.standard_normal((6, 5)),
        "fnc": rng.standard_normal((6, 4, 4)),
        "voxels": rng.standard_normal((6, int(crop.sum()))),
    }
    arrays["fnc"] = arrays["fnc"] + arrays["fnc"].transpose(0, 2, 1)  # symmetric, as FNC is
    X = flatten_features(arrays)
    coef = rng.standard_normal(X.shape[1])
    prior = LinearPrior(shapes)
    prior.set_linear(coef, -0.3, feature_blocks(arrays), crop)
    volumes = np.zeros((6, *crop.shape))
    volumes[:, crop] = arrays["voxels"]
    inputs = {"snp": arrays["snp"], "fnc": arrays["fnc"], "smri": volumes}
    got = prior({k: torch.from_numpy(v).double() for k, v in inputs.items()}).numpy()
    np.testing.assert_allclose(got, X.astype(np.float64) @ coef - 0.3, rtol=1e-5, atol=1e-5)
    assert not list(prior.parameters())  # buffers: no optimiser or weight decay moves them


def test_prior_refuses_weights_that_do_not_fit():
    prior = LinearPrior({"smri": (2, 2, 2)})
    with pytest.raises(Exception, match="voxel weights"):
        prior.set_linear(np.ones(3), 0.0, {"smri": slice(0, 3)}, np.ones((2, 2, 2), bool))


def test_untrained_network_is_the_elastic_net_and_trains_on_out_of_fold_log_odds(sim_cohort):
    cohort = load_cohort(sim_cohort.toml_path)
    fit_idx, test_idx = np.arange(0, 30), np.arange(30, 40)
    prep = Preprocessor().fit(cohort, fit_idx, ("snp", "fnc", "smri"))
    loci = run_loci(cohort)
    config = ModelConfig(**{**TINY_MODEL, "linear_prior": True})
    model = build_model(config, cohort, prep, loci).eval()
    offsets, chosen = fit_linear_prior(model, cohort, prep, fit_idx, seed=4)
    # an independent fit with the same inner folds
    arrays = prep.transform(cohort, fit_idx, volumes=False)
    net = ElasticNetLogisticCV(random_state=4).fit(flatten_features(arrays), cohort.labels[fit_idx])
    assert chosen["C"] == net.C_ and chosen["l1_ratio"] == net.l1_ratio_
    np.testing.assert_allclose(offsets[fit_idx], net.oof_decision_)
    assert np.isnan(np.delete(offsets, fit_idx)).all()
    # the zero head: the untrained model's log-odds are the elastic net's on unseen subjects
    inputs = {k: torch.from_numpy(v) for k, v in prep.transform(cohort, test_idx).items()}
    with torch.no_grad():
        logits = model(**inputs).numpy()
    expected = net.decision_function(flatten_features(prep.transform(cohort, test_idx, volumes=False)))
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0], expected, rtol=1e-4, atol=1e-4)
    # a given offset replaces the prior's own log-odds
    with torch.no_grad():
        given = model(**inputs, prior_offset=torch.full((len(test_idx),), 2.0)).numpy()
    np.testing.assert_allclose(given[:, 1] - given[:, 0], 2.0, atol=1e-6)


@pytest.fixture(scope="module")
def prior_run(sim_cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "prior"
    # early stopping on a validation split: the prior alone (epoch 0) is one of the candidates
    config = TrainConfig(**TINY_TRAIN, select="val_auc")
    return train(sim_cohort.toml_path, out, config, {**TINY_MODEL, "linear_prior": True}, progress=False)


def test_a_run_with_the_prior_records_it_and_scores_the_prior_alone_as_epoch_0(prior_run):
    folder = RunFolder(prior_run.out_dir)
    for k in (1, 2):
        fold = folder.fold(k)
        info = json.loads(fold.info.read_text())
        assert {"l1_ratio", "C", "n_nonzero", "inner_auc"} <= set(info["linear_prior"])
        history = pd.read_csv(fold.history)
        assert history["epoch"].iloc[0] == 0 and np.isfinite(history["val_auc"].iloc[0])
        assert 0 <= info["best_epoch"] <= TINY_TRAIN["epochs"]
    assert json.loads(folder.resolved.read_text())["model"]["linear_prior"] is True


def test_a_run_with_the_prior_is_explained_completely(prior_run):
    from explain import explain_run

    attributions = explain_run(prior_run.out_dir, out_dir=False, n_steps=16, faithfulness=False, device="cpu")
    subjects = attributions.subjects
    # integrated gradients account for the log-odds, the prior's linear part included
    assert np.median(subjects["ig_relative_delta"]) < 0.05
    predictions = pd.read_csv(prior_run.out_dir / "predictions.csv", dtype={"subject_id": str}).set_index("subject_id")
    np.testing.assert_allclose(
        subjects.set_index("subject_id")["log_odds"], predictions.loc[subjects["subject_id"], "log_odds"], atol=1e-4
    )


def test_validation_scores_the_prior_by_its_out_of_fold_log_odds(sim_cohort):
    from sklearn.metrics import roc_auc_score

    from migtrans.training._loop import fit_fold

    cohort = load_cohort(sim_cohort.toml_path)
    fit_idx, val_idx = np.arange(0, 28), np.arange(28, 40)
    prep = Preprocessor().fit(cohort, fit_idx, ("snp", "fnc", "smri"))
    model = build_model(ModelConfig(**{**TINY_MODEL, "linear_prior": True}), cohort, prep, run_loci(cohort))
    share = np.arange(40)
    offsets, _ = fit_linear_prior(model, cohort, prep, share, seed=1)
    config = TrainConfig(**{**TINY_TRAIN, "epochs": 1}, select="val_auc")
    _, history, _ = fit_fold(
        model,
        lambda idx: prep.transform(cohort, idx),
        cohort.labels,
        fit_idx,
        val_idx,
        config,
        torch.device("cpu"),
        offsets=offsets,
    )
    # epoch 0 is the prior alone, scored by the inner model that did not see each validation subject
    assert history[0]["epoch"] == 0
    assert history[0]["val_auc"] == pytest.approx(roc_auc_score(cohort.labels[val_idx], offsets[val_idx]))


def test_network_weight_is_the_constrained_maximum_likelihood_on_validation(sim_cohort):
    import statsmodels.api as sm

    from migtrans.training import fit_network_weight

    cohort = load_cohort(sim_cohort.toml_path)
    fit_idx, val_idx = np.arange(0, 28), np.arange(28, 40)
    prep = Preprocessor().fit(cohort, fit_idx, ("snp", "fnc", "smri"))
    model = build_model(ModelConfig(**{**TINY_MODEL, "linear_prior": True}), cohort, prep, run_loci(cohort)).eval()
    offsets, _ = fit_linear_prior(model, cohort, prep, np.arange(40), seed=1)
    inputs = {k: torch.from_numpy(v) for k, v in prep.transform(cohort, val_idx).items()}
    y = cohort.labels[val_idx]
    torch.manual_seed(0)
    torch.nn.init.normal_(model.fusion.head.weight, std=0.5)
    with torch.no_grad():
        logits = model(**inputs, prior_offset=torch.zeros(len(val_idx))).double().numpy()
    network = logits[:, 1] - logits[:, 0]
    # the prior's own out-of-fold log-odds (a random network does not help them: the weight goes to 0), and
    # log-odds that take away part of the network's, so that the best weight lies inside (0, 1)
    interior = offsets.copy()
    slope = sm.GLM(y, network[:, None], family=sm.families.Binomial(), offset=0.2 * offsets[val_idx]).fit().params[0]
    interior[val_idx] = 0.2 * offsets[val_idx] - (0.5 - slope) * network
    for case, given in (("prior", offsets), ("interior", interior)):
        # independent reference: the unconstrained maximum-likelihood slope of a logistic model with the given
        # log-odds as offset (statsmodels), clipped to [0, 1] (the likelihood is concave in the weight)
        glm = sm.GLM(y, network[:, None], family=sm.families.Binomial(), offset=given[val_idx]).fit()
        expected = float(np.clip(glm.params[0], 0.0, 1.0))
        if case == "interior":
            assert 0.05 < expected < 0.95
        weight = fit_network_weight(
            model, lambda idx: prep.transform(cohort, idx), cohort.labels, val_idx, given, 8, torch.device("cpu")
        )
        assert weight == pytest.approx(expected, abs=1e-4)
        assert float(model.prior.network_weight) == pytest.approx(weight)
    # with the weight at 0 the model is its prior alone, whatever the network says
    model.prior.network_weight.fill_(0.0)
    with torch.no_grad():
        logits = model(**inputs).numpy()
    expected = model.prior({k: v for k, v in inputs.items()}).numpy()
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0], expected, rtol=1e-5, atol=1e-5)


def test_a_model_saved_before_the_network_weight_loads_with_weight_one():
    prior = LinearPrior({"snp": (3,)})
    state = prior.state_dict()
    del state["network_weight"]
    fresh = LinearPrior({"snp": (3,)})
    fresh.network_weight.fill_(0.25)
    fresh.load_state_dict(state)  # strict: nothing reported missing
    assert float(fresh.network_weight) == 1.0


def test_a_run_fits_the_network_weight_on_its_validation_split_by_default(sim_cohort, tmp_path):
    from migtrans.training import load_state_dict, open_run

    config = TrainConfig(**{**TINY_TRAIN, "epochs": 2})
    assert config.network_weight == "validation" and ModelConfig().linear_prior
    defaults = {k: v for k, v in TINY_MODEL.items() if k != "linear_prior"}
    run = train(sim_cohort.toml_path, tmp_path / "run", config, defaults, progress=False)
    folder = RunFolder(run.out_dir)
    for k in (1, 2):
        fold = folder.fold(k)
        info = json.loads(fold.info.read_text())
        assert 0.0 <= info["network_weight"] <= 1.0
        assert info["val_subjects"]  # held out for the weight, although the last epoch is kept
        assert not set(info["val_subjects"]) & set(info["train_subjects"])
        saved = load_state_dict(fold.model)
        assert float(saved["prior.network_weight"]) == pytest.approx(info["network_weight"])
    assert json.loads(folder.resolved.read_text())["run"]["validation_split"] is True
    assert open_run(run.out_dir).config["model"]["linear_prior"] is True
    # without a prior there is no weight, and nothing is held out for one
    alone = train(
        sim_cohort.toml_path, tmp_path / "alone", config, {**TINY_MODEL, "linear_prior": False}, progress=False
    )
    info = json.loads(RunFolder(alone.out_dir).fold(1).info.read_text())
    assert "network_weight" not in info and not info["val_subjects"]
    with pytest.raises(Exception, match="network_weight"):
        TrainConfig(network_weight="learned")


def test_a_run_from_before_the_prior_opens_without_it(sim_cohort, tmp_path):
    """Its config has neither `linear_prior` nor `network_weight`: it had no prior, and its network counted in
    full; retraining it (null runs) must do the same."""
    from migtrans.training import load_fold, open_run
    from migtrans.training._checkpoint import write_checksums

    folder = tmp_path / "old"
    config = TrainConfig(**{**TINY_TRAIN, "epochs": 1}, network_weight="fixed")
    train(sim_cohort.toml_path, folder, config, {**TINY_MODEL, "linear_prior": False}, progress=False)
    config = (folder / "config.toml").read_text()
    for line in ('network_weight = "fixed"\n', "linear_prior = false\n"):
        assert line in config
        config = config.replace(line, "")
    (folder / "config.toml").write_text(config)
    resolved = json.loads((folder / ".resolved.json").read_text())
    del resolved["train"]["network_weight"], resolved["model"]["linear_prior"]
    (folder / ".resolved.json").write_text(json.dumps(resolved, sort_keys=True))
    write_checksums(folder)
    run = open_run(folder)
    assert run.train.network_weight == "fixed" and run.config["model"]["linear_prior"] is False
    model, _, _ = load_fold(run, 1, load_cohort(sim_cohort.toml_path))
    assert model.prior is None
