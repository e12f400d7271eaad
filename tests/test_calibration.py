"""Calibration: Brier score, reliability table and temperature against independent references, and the
report's reliability figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.metrics import brier_score_loss
from statsmodels.stats.proportion import proportion_confint

from migtrans.exceptions import ParameterError
from migtrans.training import brier_score, fit_temperature, reliability_table


@pytest.fixture
def overconfident():
    rng = np.random.default_rng(7)
    true = rng.normal(scale=1.5, size=3001)
    labels = (rng.uniform(size=true.size) < 1 / (1 + np.exp(-true))).astype(int)
    return true, labels


def test_brier_score_equals_scikit_learns(overconfident):
    true, labels = overconfident
    prob = 1 / (1 + np.exp(-2.5 * true))
    assert brier_score(labels, prob) == pytest.approx(brier_score_loss(labels, prob), rel=1e-12)


def test_reliability_table_bins_and_intervals_match_direct_computation(overconfident):
    true, labels = overconfident
    prob = 1 / (1 + np.exp(-2.5 * true))  # log-odds 2.5 times too large: over-confident
    table = reliability_table(labels, prob, n_bins=7)
    order = np.argsort(prob, kind="stable")
    for row, part in zip(table.itertuples(), np.array_split(order, 7)):
        assert row.n == len(part)
        assert row.mean_predicted == pytest.approx(prob[part].mean())
        assert row.observed == pytest.approx(labels[part].mean())
        low, high = proportion_confint(labels[part].sum(), len(part), alpha=0.05, method="wilson")
        assert (row.low, row.high) == pytest.approx((low, high), rel=1e-9)
    # over-confidence: the top bin predicts more positives than it holds, the bottom bin fewer
    assert table["mean_predicted"].iloc[-1] > table["high"].iloc[-1]
    assert table["mean_predicted"].iloc[0] < table["low"].iloc[0]
    ece = np.sum(table["n"] * np.abs(table["observed"] - table["mean_predicted"])) / len(labels)
    assert table.attrs["ece"] == pytest.approx(ece)


def test_temperature_is_the_inverse_of_a_logistic_slope_without_intercept(overconfident):
    true, labels = overconfident
    log_odds = 2.5 * true
    fit = sm.Logit(labels, log_odds[:, None]).fit(disp=0)
    assert fit_temperature(log_odds, labels) == pytest.approx(1 / fit.params[0], rel=1e-4)
    assert fit_temperature(log_odds, labels) == pytest.approx(2.5, rel=0.1)
    # scaling by T leaves the order of the scores, so accuracy and AUC, unchanged, and lowers the Brier score
    t = fit_temperature(log_odds, labels)
    before = brier_score(labels, 1 / (1 + np.exp(-log_odds)))
    after = brier_score(labels, 1 / (1 + np.exp(-log_odds / t)))
    assert after < before
    assert fit_temperature(log_odds, np.ones_like(labels)) == 1.0  # one class: nothing to fit


def test_calibration_inputs_are_checked():
    with pytest.raises(ParameterError, match="prob: expected probabilities"):
        brier_score([0, 1], [0.2, 1.2])
    with pytest.raises(ParameterError, match="labels: expected 0 or 1"):
        reliability_table([0, 2], [0.2, 0.4])
    with pytest.raises(ParameterError, match="n_bins"):
        reliability_table([0, 1], [0.2, 0.4], n_bins=0)


def test_reliability_display_reads_predictions_and_draws(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reports.plotting import ReliabilityDisplay

    rng = np.random.default_rng(3)
    prob = rng.uniform(size=200)
    predictions = pd.DataFrame({"label": (rng.uniform(size=200) < prob).astype(int), "prob_positive": prob})
    predictions.loc[0, "label"] = np.nan  # an unlabelled subject is left out
    d = ReliabilityDisplay.from_predictions(predictions, n_bins=5)
    assert d.n == 199 and len(d.table) == 5
    rows = predictions.dropna()
    assert d.brier == pytest.approx(brier_score_loss(rows["label"].astype(int), rows["prob_positive"]))
    d.plot()
    assert len(d.ax_.lines) >= 2 and "Brier" in d.ax_.texts[0].get_text()
    plt.close(d.figure_)


def test_each_folds_temperature_is_fitted_on_the_other_folds_only(overconfident):
    from migtrans.training import calibrate_folds, ensemble_temperature

    true, labels = overconfident
    folds = np.arange(true.size) % 3 + 1
    predictions = pd.DataFrame({"fold": folds, "label": labels, "log_odds": 2.5 * true})
    out = calibrate_folds(predictions)
    for k in (1, 2, 3):
        others = folds != k
        expected = fit_temperature(2.5 * true[others], labels[others])
        assert np.allclose(out.loc[folds == k, "temperature"], expected)
    np.testing.assert_allclose(out["prob_positive"], 1 / (1 + np.exp(-out["log_odds"] / out["temperature"])))
    # fold 1's own labels do not move fold 1's probabilities
    flipped = predictions.copy()
    flipped.loc[folds == 1, "label"] = 1 - flipped.loc[folds == 1, "label"]
    np.testing.assert_array_equal(
        calibrate_folds(flipped).loc[folds == 1, "prob_positive"], out.loc[folds == 1, "prob_positive"]
    )
    assert brier_score(labels, out["prob_positive"]) < brier_score(labels, 1 / (1 + np.exp(-2.5 * true)))
    none = calibrate_folds(predictions, "none")
    assert (none["temperature"] == 1).all()
    np.testing.assert_allclose(none["prob_positive"], 1 / (1 + np.exp(-2.5 * true)))
    assert ensemble_temperature(predictions) == pytest.approx(fit_temperature(2.5 * true, labels))
    assert ensemble_temperature(predictions, "none") == 1.0
    with pytest.raises(ParameterError, match="^calibrate: expected one of temperature, none"):
        calibrate_folds(predictions, "platt")


def test_a_run_reports_calibrated_probabilities_of_its_models_log_odds(baseline_run):
    from migtrans.training import RunFolder

    predictions = pd.read_csv(RunFolder(baseline_run.out_dir).predictions)
    folds = RunFolder(baseline_run.out_dir).fold_numbers()
    raw = pd.concat([pd.read_csv(RunFolder(baseline_run.out_dir).fold(k).predictions) for k in folds])
    merged = predictions.merge(raw[["subject_id", "log_odds"]], on="subject_id", suffixes=("", "_fold"))
    np.testing.assert_array_equal(merged["log_odds"], merged["log_odds_fold"])
    np.testing.assert_allclose(
        predictions["prob_positive"], 1 / (1 + np.exp(-predictions["log_odds"] / predictions["temperature"]))
    )
    assert (predictions["predicted"] == (predictions["log_odds"] >= 0)).all()
