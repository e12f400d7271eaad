"""Are the predicted probabilities honest? Brier score, a binned reliability table, and the temperature that
makes a fold model's log-odds calibrated on data it did not train on."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..exceptions import ParameterError


def _check(labels, prob):
    labels, prob = np.asarray(labels), np.asarray(prob, dtype=float)
    if labels.shape != prob.shape or labels.ndim != 1:
        raise ParameterError(f"labels, prob: expected two 1-D arrays of one length, found {labels.shape}, {prob.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ParameterError("labels: expected 0 or 1")
    if np.isnan(prob).any() or (prob < 0).any() or (prob > 1).any():
        raise ParameterError("prob: expected probabilities in [0, 1]")
    return labels.astype(int), prob


def brier_score(labels, prob) -> float:
    """Mean squared difference between the predicted probability and the 0/1 outcome (lower is better; a
    constant prediction of the case share scores ``share x (1 - share)``).

    Examples
    --------
    >>> brier_score([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.3])
    0.075
    """
    labels, prob = _check(labels, prob)
    return float(np.round(np.mean((prob - labels) ** 2), 15))


def reliability_table(labels, prob, *, n_bins=10) -> pd.DataFrame:
    """Predicted against observed frequency of the positive class in ``n_bins`` bins of equal count.

    Returns
    -------
    DataFrame
        One row per bin: ``n``, ``mean_predicted``, ``observed`` (share of positives) and ``low``/``high``,
        the 95% Wilson interval of that share. A calibrated model's points lie on the diagonal within their
        intervals. ``attrs["ece"]`` is the expected calibration error: the count-weighted mean of
        ``|observed - mean_predicted|``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=4000); y = (rng.uniform(size=4000) < p).astype(int)
    >>> table = reliability_table(y, p, n_bins=5)
    >>> inside = (table.low <= table.mean_predicted) & (table.mean_predicted <= table.high)
    >>> bool(table.attrs["ece"] < 0.03), bool(inside.all())
    (True, True)
    """
    labels, prob = _check(labels, prob)
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ParameterError(f"n_bins: expected a positive integer, found {n_bins!r}")
    order = np.argsort(prob, kind="stable")
    rows = []
    for part in np.array_split(order, min(n_bins, len(order))):
        n, k = len(part), int(labels[part].sum())
        low, high = _wilson(k, n)
        rows.append(dict(n=n, mean_predicted=float(prob[part].mean()), observed=k / n, low=low, high=high))
    table = pd.DataFrame(rows)
    table.attrs["ece"] = float(np.sum(table["n"] * np.abs(table["observed"] - table["mean_predicted"])) / len(labels))
    return table


def _wilson(k, n, level=0.95):
    z = stats.norm.ppf(0.5 + level / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def fit_temperature(log_odds, labels, *, bounds=(0.05, 20.0)) -> float:
    """The temperature ``T`` that minimises the log loss of ``sigmoid(log_odds / T)`` (Guo et al. 2017).

    ``T > 1`` softens an over-confident model; accuracy and ROC AUC do not change (the order of the scores
    does not). Fit it on subjects the model did not train on.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> true = rng.normal(scale=2, size=5000); y = (rng.uniform(size=5000) < 1 / (1 + np.exp(-true))).astype(int)
    >>> bool(2.8 < fit_temperature(3 * true, y) < 3.2)  # log-odds three times too large
    True
    """
    log_odds, labels = np.asarray(log_odds, dtype=float), np.asarray(labels)
    _check(labels, np.full(len(labels), 0.5))
    if log_odds.shape != labels.shape or not np.isfinite(log_odds).all():
        raise ParameterError("log_odds: expected finite values, one per label")
    if len(np.unique(labels)) < 2:
        return 1.0  # nothing to calibrate against

    def loss(log_t):
        z = log_odds / np.exp(log_t)
        # log(1 + exp(-z)) for positives, log(1 + exp(z)) for negatives, computed stably
        return float(np.mean(np.logaddexp(0, np.where(labels == 1, -z, z))))

    result = optimize.minimize_scalar(loss, bounds=np.log(bounds), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


CALIBRATIONS = ("temperature", "none")


def calibrate_folds(predictions, method="temperature") -> pd.DataFrame:
    """Cross-fitted temperature scaling of out-of-fold predictions.

    Fold k's temperature is fitted (`fit_temperature`) on the out-of-fold log-odds of the *other* folds,
    whose subjects are fold k's training subjects scored by models that did not train on them; fold k's own
    labels never enter it. Its subjects' probabilities become ``sigmoid(log_odds / T_k)``: accuracy and each
    fold's ROC AUC are unchanged, the Brier score and the reliability diagram are what changes.

    Parameters
    ----------
    predictions : DataFrame
        ``fold``, ``label`` and ``log_odds`` (the model's positive-class log-odds) per subject.
    method : {"temperature", "none"}

    Returns
    -------
    DataFrame
        A copy with ``prob_positive`` recomputed and a ``temperature`` column (1 with ``"none"``).
    """
    if method not in CALIBRATIONS:
        raise ParameterError(f"calibrate: expected one of {', '.join(CALIBRATIONS)}, found {method!r}")
    out = predictions.copy()
    log_odds = out["log_odds"].to_numpy(dtype=float)
    temperature = np.ones(len(out))
    if method == "temperature":
        folds = out["fold"].astype(str).to_numpy()
        labels = out["label"].to_numpy()
        for fold in np.unique(folds):
            others = folds != fold
            temperature[~others] = fit_temperature(log_odds[others], labels[others])
    out["temperature"] = temperature
    out["prob_positive"] = 1 / (1 + np.exp(-log_odds / temperature))
    return out


def ensemble_temperature(predictions, method="temperature") -> float:
    """The temperature for the fold models' ensemble on new subjects (an explanation set, an external cohort):
    fitted on all out-of-fold log-odds of the run, whose labels no such subject shares. 1 with ``"none"`` or
    when the predictions lack log-odds (runs from before calibration)."""
    if method != "temperature" or "log_odds" not in predictions:
        return 1.0
    return fit_temperature(predictions["log_odds"].to_numpy(dtype=float), predictions["label"].to_numpy())


def run_temperature(run) -> float:
    """`ensemble_temperature` of a finished run (`open_run`), from its out-of-fold ``predictions.csv``."""
    from ._folder import RunFolder

    path = RunFolder(run.path).predictions
    predictions = pd.read_csv(path, dtype={"subject_id": str, "fold": str})
    return ensemble_temperature(predictions, run.train.calibrate)
