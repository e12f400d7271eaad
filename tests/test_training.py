"""Cross-validated training: folds, run folder contract, reproducibility, resume, leakage, safe checkpoints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from migtrans import ParameterError, load_cohort
from migtrans.cli import main
from migtrans.exceptions import RunError
from migtrans.folds import explanation_split, inner_split, make_folds
from migtrans.training import TrainConfig, compare_runs, load_fold, load_state_dict, open_run, train
from migtrans.training import _run as run_module

from conftest import TINY_MODEL, TINY_TRAIN


def test_folds_stratified_by_label_and_site():
    labels = np.array([0, 1] * 30)
    site = np.repeat(["a", "b", "c"], 20)
    folds = make_folds(labels, site, n_folds=5, random_state=1)
    for k in range(5):
        in_fold = folds == k
        assert in_fold.sum() == 12
        assert labels[in_fold].sum() == 6  # balanced labels in every fold
        for s in "abc":
            assert (in_fold & (site == s)).sum() == 4  # and balanced sites
    assert not np.array_equal(folds, make_folds(labels, site, n_folds=5, random_state=2))


def test_explanation_set_stratified_by_label_and_site():
    labels = np.array([0, 1] * 40)
    site = np.repeat(["a", "b"], 40)
    held = explanation_split(labels, site, fraction=0.25, random_state=1)
    assert held.sum() == 20 and labels[held].sum() == 10
    assert (held & (site == "a")).sum() == 10
    assert not np.array_equal(held, explanation_split(labels, site, fraction=0.25, random_state=2))
    assert not explanation_split(labels, site, fraction=0).any()
    with pytest.raises(ParameterError, match="explain_fraction"):
        explanation_split([0, 1] * 4, fraction=0.25)  # one subject per class would be held out


def test_inner_split_is_a_partition_of_the_training_fold():
    labels = np.array([0, 1] * 25)
    train_idx = np.arange(10, 50)
    fit, val = inner_split(train_idx, labels, val_fraction=0.2, random_state=0)
    assert set(fit) | set(val) == set(train_idx) and not set(fit) & set(val)
    assert len(val) == 8 and labels[val].sum() == 4


def test_too_many_folds_is_a_parameter_error():
    with pytest.raises(ParameterError, match="n_folds"):
        make_folds([0, 0, 1, 1], n_folds=3)


def test_run_folder_follows_the_contract(baseline_run, sim_cohort):
    out = baseline_run.out_dir
    for name in ("config.toml", "manifest.json", "metrics.csv", "predictions.csv"):
        assert (out / name).is_file()
    for k in (1, 2):
        for name in ("model.pt", "preprocess.npz", "history.csv", "predictions.csv", "fold.json"):
            assert (out / "folds" / str(k) / name).is_file()
    metrics = pd.read_csv(out / "metrics.csv", dtype={"fold": str})
    assert list(metrics.columns) == [
        "fold",
        "accuracy",
        "balanced_accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "brier",
    ]
    assert list(metrics["fold"]) == ["1", "2", "mean", "sd"]
    np.testing.assert_allclose(metrics.iloc[2, 1:].astype(float), metrics.iloc[:2, 1:].astype(float).mean())
    preds = pd.read_csv(out / "predictions.csv", dtype={"subject_id": str})
    assert list(preds.columns[:5]) == ["subject_id", "fold", "label", "prob_positive", "predicted"]
    # by default every subject is cross-validated (no explanation set), each predicted exactly once
    assert not (out / "explanation_predictions.csv").exists()
    assert sorted(preds["subject_id"]) == sorted(sim_cohort.subject_ids)
    assert ((preds["prob_positive"] >= 0.5).astype(int) == preds["predicted"]).all()
    labels = dict(zip(sim_cohort.subject_ids, sim_cohort.labels))
    assert [labels[s] for s in preds["subject_id"]] == preds["label"].tolist()
    for k in (1, 2):
        info = json.loads((out / "folds" / str(k) / "fold.json").read_text())
        assert set(preds.loc[preds["fold"] == k, "subject_id"]) == set(info["test_subjects"])
        # select="last": the fold fits on its whole training share, nothing is held out only to be monitored
        # (the default linear prior holds a split out for its network weight: tests/test_linear_prior.py)
        assert info["val_subjects"] == [] and info["explanation_subjects"] == []
        assert sorted(info["train_subjects"] + info["test_subjects"]) == sorted(sim_cohort.subject_ids)
        history = pd.read_csv(out / "folds" / str(k) / "history.csv")
        assert list(history.columns) == ["epoch", "train_loss", "lr"] and len(history) == TINY_TRAIN["epochs"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 0 and "torch" in manifest["versions"]
    assert any(p.endswith("genotypes.bed") for p in manifest["inputs"])


def test_early_stopping_holds_a_validation_split_out(sim_cohort, tmp_path):
    config = TrainConfig(**{**TINY_TRAIN, "select": "val_loss"})
    out = train(sim_cohort.toml_path, tmp_path / "es", config, TINY_MODEL, progress=False).out_dir
    info = json.loads((out / "folds/1/fold.json").read_text())
    assert len(info["val_subjects"]) >= 2 and not set(info["val_subjects"]) & set(info["train_subjects"])
    assert {"val_loss", "val_auc"} <= set(pd.read_csv(out / "folds/1/history.csv").columns)


def test_an_explanation_set_run_follows_the_contract(explanation_set_run, sim_cohort):
    out = explanation_set_run.out_dir
    metrics = pd.read_csv(out / "metrics.csv", dtype={"fold": str})
    assert list(metrics["fold"]) == ["1", "2", "mean", "sd", "explanation_set"]
    preds = pd.read_csv(out / "predictions.csv", dtype={"subject_id": str})
    held = pd.read_csv(out / "explanation_predictions.csv", dtype={"subject_id": str})
    assert list(held.columns[:5]) == ["subject_id", "fold", "label", "prob_positive", "predicted"]
    # a quarter of the subjects (stratified: 5 of each class) form the explanation set; the rest are
    # cross-validated, each predicted exactly once
    assert len(held) == 10 and held["label"].sum() == 5
    assert sorted(preds["subject_id"].tolist() + held["subject_id"].tolist()) == sorted(sim_cohort.subject_ids)
    fold_log_odds = []
    for k in (1, 2):
        info = json.loads((out / "folds" / str(k) / "fold.json").read_text())
        assert set(preds.loc[preds["fold"] == k, "subject_id"]) == set(info["test_subjects"])
        assert not set(info["test_subjects"]) & set(info["train_subjects"] + info["val_subjects"])
        # no fold model trains on (or is validated with) the explanation set
        assert set(info["explanation_subjects"]) == set(held["subject_id"])
        assert not set(held["subject_id"]) & set(info["train_subjects"] + info["val_subjects"] + info["test_subjects"])
        fold_held = pd.read_csv(out / "folds" / str(k) / "explanation_predictions.csv", dtype={"subject_id": str})
        assert fold_held["subject_id"].tolist() == held["subject_id"].tolist()
        fold_log_odds.append(fold_held["log_odds"].to_numpy())
    # the set is scored by the fold models' ensemble: the mean of their log-odds
    np.testing.assert_allclose(held["log_odds"], np.mean(fold_log_odds, axis=0), rtol=1e-12)
    # its probability calibrated by the run's temperature, fitted on the out-of-fold predictions
    from migtrans.training import ensemble_temperature

    temperature = ensemble_temperature(preds)
    assert (held["temperature"] == temperature).all()
    np.testing.assert_allclose(held["prob_positive"], 1 / (1 + np.exp(-held["log_odds"] / temperature)), rtol=1e-12)
    row = metrics.set_index("fold").loc["explanation_set"]
    assert row["accuracy"] == pytest.approx((held["predicted"] == held["label"]).mean())


def test_same_seed_gives_identical_metrics(baseline_run, sim_cohort, tmp_path):
    again = train(sim_cohort.toml_path, tmp_path / "again", TrainConfig(**TINY_TRAIN), TINY_MODEL, progress=False)
    assert (again.out_dir / "metrics.csv").read_bytes() == (baseline_run.out_dir / "metrics.csv").read_bytes()
    assert (again.out_dir / "predictions.csv").read_bytes() == (baseline_run.out_dir / "predictions.csv").read_bytes()


def test_resume_after_interruption_matches_uninterrupted(baseline_run, sim_cohort, tmp_path, monkeypatch):
    real = run_module._train_fold

    def interrupted(k, *args, **kwargs):
        if k == 1:
            raise KeyboardInterrupt
        return real(k, *args, **kwargs)

    monkeypatch.setattr(run_module, "_train_fold", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(sim_cohort.toml_path, tmp_path / "r", TrainConfig(**TINY_TRAIN), TINY_MODEL, progress=False)
    assert (tmp_path / "r/folds/1/fold.json").is_file() and not (tmp_path / "r/folds/2").exists()
    assert not (tmp_path / "r/metrics.csv").exists()
    with pytest.raises(RunError, match="incomplete run"):
        open_run(tmp_path / "r")
    monkeypatch.setattr(run_module, "_train_fold", real)
    mtime = (tmp_path / "r/folds/1/model.pt").stat().st_mtime_ns
    train(sim_cohort.toml_path, tmp_path / "r", TrainConfig(**TINY_TRAIN), TINY_MODEL, resume=True, progress=False)
    assert (tmp_path / "r/folds/1/model.pt").stat().st_mtime_ns == mtime  # fold 1 was not redone
    assert (tmp_path / "r/metrics.csv").read_bytes() == (baseline_run.out_dir / "metrics.csv").read_bytes()


def test_resume_with_other_settings_is_refused(baseline_run, sim_cohort):
    with pytest.raises(RunError, match="different settings"):
        train(
            sim_cohort.toml_path,
            baseline_run.out_dir,
            TrainConfig(**{**TINY_TRAIN, "epochs": 3}),
            TINY_MODEL,
            resume=True,
            progress=False,
        )


def _train_with_edited_subject(sim_cohort, subject, tmp_path, **options):
    """Copy the cohort, change one subject's FNC and sMRI (not its label), and train the tiny run on it."""
    cohort_dir = tmp_path / "edited"
    shutil.copytree(sim_cohort.out_dir, cohort_dir)
    row = list(sim_cohort.subject_ids).index(subject)
    fnc = np.load(cohort_dir / "fnc.npy")
    fnc[row] += 0.5 * (1 - np.eye(fnc.shape[1], dtype=fnc.dtype))
    np.save(cohort_dir / "fnc.npy", fnc)
    img = nib.load(cohort_dir / "smri" / f"{subject}.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj) * 0.5, img.affine), cohort_dir / "smri" / f"{subject}.nii.gz")
    config = TrainConfig(**TINY_TRAIN, **options)
    return train(cohort_dir / "cohort.toml", tmp_path / "run", config, TINY_MODEL, progress=False)


def _fold_state(run_dir, k):
    weights = torch.load(run_dir / f"folds/{k}/model.pt", weights_only=True)
    with np.load(run_dir / f"folds/{k}/preprocess.npz") as prep:
        return weights, {name: prep[name] for name in prep.files}


def _same_fold(run_a, run_b, k):
    (w_a, p_a), (w_b, p_b) = _fold_state(run_a, k), _fold_state(run_b, k)
    return all(torch.equal(w_a[n], w_b[n]) for n in w_a) and all(np.array_equal(p_a[n], p_b[n]) for n in p_a)


def test_held_out_subject_changes_nothing_in_its_fold(baseline_run, sim_cohort, tmp_path):
    """Leakage check: edit a fold-1 test subject's FNC and sMRI; fold 1's preprocessing and weights stay
    bit-identical, while fold 2 (where that subject trains) changes."""
    info = json.loads((baseline_run.out_dir / "folds/1/fold.json").read_text())
    fits_fold_2 = json.loads((baseline_run.out_dir / "folds/2/fold.json").read_text())["train_subjects"]
    subject = next(s for s in info["test_subjects"] if s in fits_fold_2)
    edited = _train_with_edited_subject(sim_cohort, subject, tmp_path)
    assert _same_fold(baseline_run.out_dir, edited.out_dir, 1)
    assert not np.array_equal(
        _fold_state(baseline_run.out_dir, 2)[1]["fnc_mean"], _fold_state(edited.out_dir, 2)[1]["fnc_mean"]
    )


def test_explanation_set_trains_no_fold(explanation_set_run, sim_cohort, tmp_path):
    """Leakage check for the explanation set: editing one of its subjects' FNC and sMRI leaves every
    fold's preprocessing and weights bit-identical."""
    run = explanation_set_run.out_dir
    subject = json.loads((run / "folds/1/fold.json").read_text())["explanation_subjects"][0]
    edited = _train_with_edited_subject(sim_cohort, subject, tmp_path, explain_fraction=0.25)
    assert _same_fold(run, edited.out_dir, 1) and _same_fold(run, edited.out_dir, 2)
    before = pd.read_csv(run / "explanation_predictions.csv", dtype={"subject_id": str})
    after = pd.read_csv(edited.out_dir / "explanation_predictions.csv", dtype={"subject_id": str})
    changed = before["prob_positive"].to_numpy() != after["prob_positive"].to_numpy()
    assert changed.tolist() == (before["subject_id"] == subject).tolist()  # only its own prediction moves


def test_too_many_folds_for_what_the_explanation_set_leaves_names_it(sim_cohort, tmp_path):
    # 40 subjects: the set holds 10, leaving 15 per class for 16 folds
    with pytest.raises(ParameterError, match="n_folds=16 .* explanation set .*explain_fraction=0.25"):
        train(
            sim_cohort.toml_path,
            tmp_path / "r",
            TrainConfig(**{**TINY_TRAIN, "n_folds": 16, "explain_fraction": 0.25}),
            TINY_MODEL,
            progress=False,
        )
    assert not (tmp_path / "r").exists()


def test_logit_of_saturated_float32_probabilities_stays_finite():
    prob = np.array([0.0, 0.5, 0.9, 1.0], dtype=np.float32)
    out = run_module.logit(prob)
    assert np.isfinite(out).all() and out[1] == 0 and out[2] == pytest.approx(np.log(9), rel=1e-6)
    assert out[0] == pytest.approx(-out[3])


def test_explanation_fraction_zero_cross_validates_everyone(sim_cohort, tmp_path):
    result = train(
        sim_cohort.toml_path,
        tmp_path / "r",
        TrainConfig(**{**TINY_TRAIN, "explain_fraction": 0}),
        TINY_MODEL,
        progress=False,
    )
    assert sorted(result.predictions["subject_id"]) == sorted(sim_cohort.subject_ids)
    assert not (result.out_dir / "explanation_predictions.csv").exists()
    assert list(result.metrics["fold"]) == ["1", "2", "mean", "sd"]
    assert json.loads((result.out_dir / "folds/1/fold.json").read_text())["explanation_subjects"] == []


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_checkpoint_is_refused(baseline_run, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "model.pt"
    torch.save({"weight": _Exploit(marker)}, evil)
    with pytest.raises(RunError, match="refused to load"):
        load_state_dict(evil)
    assert not marker.exists()


def test_fold_model_reopens_with_its_predictions(baseline_run, sim_cohort):
    run = open_run(baseline_run.out_dir)
    cohort = load_cohort(sim_cohort.toml_path)
    model, prep, info = load_fold(run, 2, cohort)
    idx = np.array([list(cohort.subject_ids).index(s) for s in info["test_subjects"]])
    inputs = {k: torch.from_numpy(v) for k, v in prep.transform(cohort, idx).items()}
    with torch.no_grad():
        prob = torch.softmax(model(**inputs), dim=1)[:, 1].numpy()
    preds = pd.read_csv(baseline_run.out_dir / "folds/2/predictions.csv", dtype={"subject_id": str})
    np.testing.assert_allclose(prob, preds["prob_positive"], rtol=1e-5, atol=1e-6)


def test_logistic_baseline_and_comparison_table(explanation_set_run, sim_cohort, tmp_path):
    config = TrainConfig(**{**TINY_TRAIN, "model": "logistic", "explain_fraction": 0.25})
    result = train(sim_cohort.toml_path, tmp_path / "logit", config, progress=False)
    assert (tmp_path / "logit/folds/1/baseline.npz").is_file()
    # the baseline chooses its regularisation on a validation split
    assert json.loads((tmp_path / "logit/folds/1/fold.json").read_text())["val_subjects"]
    table = compare_runs([explanation_set_run.out_dir, result.out_dir])
    assert list(table["model"]) == ["migtrans", "logistic"]
    metrics = pd.read_csv(result.out_dir / "metrics.csv", dtype={"fold": str}).set_index("fold")
    assert table.loc[1, "roc_auc_mean"] == pytest.approx(metrics.loc["mean", "roc_auc"])
    assert table.loc[1, "accuracy_explanation_set"] == pytest.approx(metrics.loc["explanation_set", "accuracy"])


def test_cli_train_errors_are_one_line(sim_cohort, tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "missing.toml" in err
    assert not (tmp_path / "o").exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("keep me")
    assert main(["train", str(sim_cohort.toml_path), "--out", str(busy)]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in busy.iterdir()) == ["x"]
    assert main(["train", str(sim_cohort.toml_path), "--out", str(tmp_path / "o2"), "--modalities", "snp,eeg"]) == 2
    assert "modalities" in capsys.readouterr().err and not (tmp_path / "o2").exists()
    assert main(["train", str(sim_cohort.toml_path), "--out", str(tmp_path / "o3"), "--read-sparsity", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "read_sparsity" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "o3").exists()
    assert main(["train", str(sim_cohort.toml_path), "--out", str(tmp_path / "o4"), "--explain-fraction", "0.6"]) == 2
    err = capsys.readouterr().err
    assert "explain_fraction" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "o4").exists()


def test_two_process_gloo_run_matches_one_process(sim_cohort, baseline_run, tmp_path):
    out = tmp_path / "ddp"
    code = (
        "from migtrans.training import TrainConfig, train\n"
        f"train({str(sim_cohort.toml_path)!r}, {str(out)!r}, TrainConfig(**{TINY_TRAIN!r}), {TINY_MODEL!r},"
        " progress=False)\n"
    )
    script = tmp_path / "ddp_train.py"
    script.write_text(code)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)],
        check=True,
        env=env,
        capture_output=True,
        timeout=600,
    )
    one = pd.read_csv(baseline_run.out_dir / "metrics.csv", dtype={"fold": str}).set_index("fold")
    two = pd.read_csv(out / "metrics.csv", dtype={"fold": str}).set_index("fold")
    # Same folds and data; batches are split across ranks, so dropout draws differ: results agree
    # closely but not bit for bit (tolerance: 0.15 AUC on 20-subject test folds after 2 epochs).
    assert abs(one.loc["mean", "roc_auc"] - two.loc["mean", "roc_auc"]) <= 0.15
    preds = pd.read_csv(out / "predictions.csv")
    assert len(preds) == 40 and not (out / "explanation_predictions.csv").exists()


@pytest.mark.parametrize("select", ["last", "val_auc"])
def test_select_keeps_the_chosen_epoch(sim_cohort, tmp_path, select):
    cfg = TrainConfig(**{**TINY_TRAIN, "epochs": 4, "select": select})
    result = train(sim_cohort.toml_path, tmp_path / "r", cfg, TINY_MODEL, progress=False)
    for k in (1, 2):
        info = json.loads((result.out_dir / f"folds/{k}/fold.json").read_text())
        history = pd.read_csv(result.out_dir / f"folds/{k}/history.csv")
        if select == "last":
            assert info["best_epoch"] == 4 == len(history)
        else:
            # the first epoch reaching the highest validation AUC
            auc = history["val_auc"].fillna(0.5).to_numpy()
            assert info["best_epoch"] == history["epoch"].iloc[int(np.argmax(auc))]
    with pytest.raises(ParameterError, match="select"):
        TrainConfig(select="val_accuracy")


def test_run_moved_with_its_cohort_still_opens(sim_cohort, tmp_path):
    from explain import OutOfFold

    shutil.copytree(sim_cohort.out_dir, tmp_path / "project/cohort")
    train(
        tmp_path / "project/cohort/cohort.toml",
        tmp_path / "project/run",
        TrainConfig(**TINY_TRAIN),
        TINY_MODEL,
        progress=False,
    )
    # the whole project moves (cluster -> laptop): the recorded absolute path no longer exists
    os.replace(tmp_path / "project", tmp_path / "moved")
    run = open_run(tmp_path / "moved/run")
    assert run.cohort_path == (tmp_path / "moved/cohort/cohort.toml").resolve()
    assert OutOfFold(tmp_path / "moved/run", device="cpu").cohort.n_subjects == 40
    shutil.rmtree(tmp_path / "moved/cohort")
    with pytest.raises(RunError, match="no longer exists"):
        _ = open_run(tmp_path / "moved/run").cohort_path


def test_shrink_reads_is_the_group_lasso_proximal_step():
    from migtrans.model import MIGTrans, ModelConfig
    from migtrans.training._loop import shrink_reads

    model = MIGTrans(ModelConfig(modalities=("fnc",), d_model=4, n_heads=2), n_nodes=3)
    w = model.reads["fnc"].proj.weight  # (4, 9): one column per input feature
    before = torch.randn(4, 9, generator=torch.Generator().manual_seed(0))
    before[:, 0] = torch.tensor([0.1, 0.0, 0.0, 0.0])  # shorter than the shrink amount
    with torch.no_grad():
        w.copy_(before)
    step = 0.1
    amount = step * 2.0  # step * sqrt(d_model)
    bias = model.reads["fnc"].proj.bias.detach().clone()
    others = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("reads.")}
    shrink_reads(model, step)
    # the closed form: column x -> x * max(0, 1 - amount / ||x||)
    norms = before.norm(dim=0)
    expected = before * (1 - amount / norms).clamp_min(0)
    torch.testing.assert_close(w.detach(), expected)
    assert torch.all(w[:, 0] == 0)
    torch.testing.assert_close(w.detach()[:, 1:].norm(dim=0), norms[1:] - amount)
    # the bias and every other weight are untouched
    torch.testing.assert_close(model.reads["fnc"].proj.bias.detach(), bias)
    for k, v in model.state_dict().items():
        if k in others:
            torch.testing.assert_close(v, others[k])


def test_read_sparsity_keeps_only_features_with_consistent_gradients(sim_cohort, tmp_path):
    base = {**TINY_TRAIN, "epochs": 6, "lr": 1e-2}
    sparse = train(
        sim_cohort.toml_path, tmp_path / "sparse", TrainConfig(**base, read_sparsity=0.9), TINY_MODEL, progress=False
    )
    dense = train(
        sim_cohort.toml_path, tmp_path / "dense", TrainConfig(**base, read_sparsity=0.0), TINY_MODEL, progress=False
    )

    def zero_columns(run_dir):
        state = load_state_dict(run_dir / "folds/1/model.pt")
        return {
            k: int((v.norm(dim=0) == 0).sum())
            for k, v in state.items()
            if k.startswith("reads.") and k.endswith(".weight")
        }

    assert set(zero_columns(sparse.out_dir)) == {
        "reads.snp.proj.weight",
        "reads.fnc.proj.weight",
        "reads.smri.proj.weight",
    }
    assert all(n > 0 for n in zero_columns(sparse.out_dir).values())
    assert all(n == 0 for n in zero_columns(dense.out_dir).values())
    for bad in (-0.1, 1.0):
        with pytest.raises(ParameterError, match="read_sparsity"):
            TrainConfig(read_sparsity=bad)


def test_cli_read_sparsity_and_explain_fraction_reach_the_run_config(sim_cohort, tmp_path):
    import tomllib

    out = tmp_path / "cli"
    assert (
        main(
            [
                "train",
                str(sim_cohort.toml_path),
                "--out",
                str(out),
                "--folds",
                "2",
                "--epochs",
                "1",
                "--read-sparsity",
                "0.25",
                "--explain-fraction",
                "0.3",
                "--modalities",
                "fnc",
                "--device",
                "cpu",
                "--quiet",
            ]
        )
        == 0
    )
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["train"]["read_sparsity"] == 0.25 and config["train"]["explain_fraction"] == 0.3
    assert len(pd.read_csv(out / "explanation_predictions.csv")) == 12
