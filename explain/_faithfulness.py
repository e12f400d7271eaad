"""Faithfulness of attributions: per-modality ablation (drop in the explained subjects' held-out AUC when a
modality is replaced by its baseline) and deletion curves (top-attributed features vs random features)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

DEFAULT_FRACTIONS = (0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


def _auc(labels, scores):
    return float(roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else float("nan")


def modality_ablation(oof, *, baseline="mean") -> pd.DataFrame:
    """Held-out AUC of the explained subjects with every modality, and with each one replaced by its baseline.

    Returns a table: ``modality``, ``auc_full``, ``auc_ablated``, ``ablation_auc_drop``.
    """
    labels = oof.labels
    full = _auc(labels, oof.log_odds())
    rows = []
    for modality in oof.modalities:

        def modify(inputs, fold, modality=modality):
            base = oof.baselines(fold, baseline)[modality]
            inputs[modality] = base.expand_as(inputs[modality]).clone()
            return inputs

        ablated = _auc(labels, oof.log_odds(modify))
        rows.append(
            {"modality": modality, "auc_full": full, "auc_ablated": ablated, "ablation_auc_drop": full - ablated}
        )
    return pd.DataFrame(rows)


def _feature_setter(modality, prep, features):
    """A function zeroing ``features`` (indices in the attribution layout) of a batch's input tensor."""
    if modality == "snp":
        cols = torch.as_tensor(features, dtype=torch.long)

        def apply(x, base):
            x = x.clone()
            x[:, cols] = base.expand_as(x)[:, cols]
            return x
    elif modality == "fnc":
        k = prep.fnc_mean.shape[0]
        iu = np.triu_indices(k, 1)
        rows, cols = iu[0][features], iu[1][features]
        r = torch.as_tensor(np.concatenate([rows, cols]), dtype=torch.long)
        c = torch.as_tensor(np.concatenate([cols, rows]), dtype=torch.long)

        def apply(x, base):
            x = x.clone()
            x[:, r, c] = base.expand_as(x)[:, r, c]
            return x
    else:
        (x0, x1), (y0, y1), (z0, z1) = prep.bbox
        coords = np.argwhere(prep.mask[x0:x1, y0:y1, z0:z1])[features]
        i, j, kk = (torch.as_tensor(coords[:, d], dtype=torch.long) for d in range(3))

        def apply(x, base):
            x = x.clone()
            x[:, i, j, kk] = base.expand_as(x)[:, i, j, kk]
            return x

    return apply


def _mean_abs(values) -> np.ndarray:
    """``np.abs(values).mean(axis=0)`` one subject at a time (a dense copy of |values| would be 1 GB at 500,000 SNPs),
    summed in the order numpy sums over the first axis, so the ranking is the same to the bit."""
    total = np.abs(values[0])
    for row in values[1:]:
        total += np.abs(row)
    return np.true_divide(total, np.intp(len(values)), out=total, casting="unsafe")


def deletion_curve(
    oof, attributions, modality, *, fractions=DEFAULT_FRACTIONS, n_random=3, baseline="mean", random_state=0
) -> pd.DataFrame:
    """AUC as the most-attributed features of one modality are replaced by the baseline, against random
    sets of the same size.

    Features are ranked once for the cohort by mean |attribution| across subjects (SNPs, FNC edges or
    voxels). Returns ``modality``, ``fraction``, ``n_features``, ``auc_top``, ``auc_random_mean``,
    ``auc_random_sd``.
    """
    values = attributions.edges() if modality == "fnc" else np.asarray(getattr(attributions, modality))
    importance = _mean_abs(values)
    order = np.argsort(-importance, kind="stable")
    n_features = len(order)
    labels = oof.labels
    rng = np.random.default_rng(random_state)

    def auc_without(features):
        if len(features) == 0:
            return _auc(labels, oof.log_odds())
        setters = {f.fold: _feature_setter(modality, f.prep, features) for f in oof.folds}

        def modify(inputs, fold):
            base = oof.baselines(fold, baseline)[modality]
            inputs[modality] = setters[fold.fold](inputs[modality], base)
            return inputs

        return _auc(labels, oof.log_odds(modify))

    rows = []
    for fraction in fractions:
        k = int(round(fraction * n_features))
        if fraction > 0:
            k = max(k, 1)
        top = auc_without(order[:k])
        randoms = [auc_without(rng.choice(n_features, size=k, replace=False)) for _ in range(n_random if k else 1)]
        rows.append(
            {
                "modality": modality,
                "fraction": fraction,
                "n_features": k,
                "auc_top": top,
                "auc_random_mean": float(np.mean(randoms)),
                "auc_random_sd": float(np.std(randoms)),
            }
        )
    return pd.DataFrame(rows)
