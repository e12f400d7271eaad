"""How much could any model gain from the simulator's cross-modal interactions at a given cohort size (issue 19)?

An oracle bound on the ``easy_x3`` scenario of `bench_models.py` (the `easy` preset with the interactions at 3):
logistic regression told exactly which features were planted, in the same 5 folds as every row of
`bench_models.py`, with and without the interaction products. Its features, measured as a model sees them
(fold-standardised):

- main: the causal SNPs' dosages, the planted FNC edges, the planted regions' mean grey matter, and the
  interactions' own features taken linearly (the modifier SNP, the modified region's grey matter, the
  conditional edges);
- with products: main plus the modifier's dosage x the modified region's grey matter, and each conditional
  edge x a structural-deficit indicator (the planted regions' grey-matter score above its training-fold 2/3
  quantile, as the simulator plants it).

The accuracy gained by the products is what a model of the planted features gains from knowing where the
interactions are. The same question for the best baseline: the elastic net of `bench_models.py` (same folds,
same fold-fitted preprocessing, same inner CV; its row here must equal that row) without and with the two
product blocks appended as extra columns. Results go to results/interactions.json.
Run: python benchmarks/bench_interactions.py [--sizes 600,1000,2000] [--fresh]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from bench_models import cohort as model_cohort
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from migtrans.atlases import load_atlas, resample_atlas
from migtrans.data import load_cohort
from migtrans.folds import make_folds
from migtrans.preprocess import Preprocessor
from migtrans.training import ElasticNetLogisticCV

from _common import RESULTS

DEFICIT_QUANTILE = 2.0 / 3.0


def planted_features(cohort, truth):
    """(main features, modifier dosage, modified region's GM, conditional edges, structural score), each over
    subjects, from the cohort's own measurements."""
    snp_index = {s: i for i, s in enumerate(cohort.snps["snp"])}
    node_index = {n: i for i, n in enumerate(cohort.nodes["name"])}
    inter = truth["architecture"]["interactions"]

    def dosage(snp):
        g = cohort.genotypes[:, snp_index[snp]].astype(np.float64)
        return np.where(np.isnan(g), np.nanmean(g), g)

    def edges(pairs):
        return np.stack([cohort.fnc[:, node_index[a], node_index[b]] for a, b in pairs], axis=1).astype(np.float64)

    img, names = load_atlas(truth["architecture"]["atlas"]["plant"])
    labels = resample_atlas(img, cohort.affine, cohort.mask.shape).get_fdata()[cohort.mask].astype(int)
    index = dict(zip(names["name"], names["index"]))

    def grey(region):
        return np.asarray(cohort.voxels[:, labels == index[region]], dtype=np.float64).mean(axis=1)

    causal = np.stack([dosage(s["snp"]) for s in truth["architecture"]["genetic"]["snps"]], axis=1)
    planted_edges = edges([(e["node_i"], e["node_j"]) for e in truth["fnc_edges"] if e["role"] == "main"])
    regions = np.stack([grey(r["region"]) for r in truth["smri_regions"] if r["role"] == "main"], axis=1)
    # the structural latent lowers GM in every planted region: minus the mean of their z-scores measures it
    z = (regions - regions.mean(0)) / regions.std(0)
    structural = -z.mean(axis=1)
    modifier = dosage(inter["snp_x_smri"]["snp"])
    modified = grey(inter["snp_x_smri"]["region"])
    conditional = edges(inter["fnc_given_smri"]["edges"])
    main = np.column_stack([causal, planted_edges, regions, modifier, modified, conditional])
    return main, modifier, modified, conditional, structural


def _products(features, train):
    """(deficit indicator, interaction products): the modifier's dosage x the modified region's grey matter
    (standardised on the training rows) and each conditional edge x the deficit (the structural score above
    its training-fold 2/3 quantile)."""
    _, modifier, modified, conditional, structural = features
    deficit = (structural > np.quantile(structural[train], DEFICIT_QUANTILE)).astype(np.float64)
    gm = (modified - modified[train].mean()) / modified[train].std()
    return deficit, np.column_stack([modifier * gm, deficit[:, None] * conditional])


def _summary(accuracy, auc) -> dict:
    """Mean and SD over the folds, as bench_models.py reports them."""
    return {
        "accuracy": round(float(np.mean(accuracy)), 4),
        "accuracy_sd": round(float(np.std(accuracy, ddof=1)), 4),
        "roc_auc": round(float(np.mean(auc)), 4),
        "roc_auc_sd": round(float(np.std(auc, ddof=1)), 4),
    }


def cross_validate(features, labels, folds, products):
    accuracy, auc = [], []
    main = features[0]
    for k in range(int(folds.max()) + 1):
        train, test = folds != k, folds == k
        X = main
        if products:
            deficit, extra = _products(features, train)
            X = np.column_stack([main, extra, deficit])
        mean, sd = X[train].mean(0), X[train].std(0)
        X = (X - mean) / np.where(sd > 0, sd, 1.0)
        model = LogisticRegression(C=1.0, max_iter=5000).fit(X[train], labels[train])
        score = model.decision_function(X[test])
        accuracy.append(float(((score > 0) == labels[test]).mean()))
        auc.append(float(roc_auc_score(labels[test], score)))
    return _summary(accuracy, auc)


def _flatten(arrays):
    """The elastic net's columns: dosages, the FNC upper triangle (row-major), the masked voxels."""
    k = arrays["fnc"].shape[1]
    upper = np.triu_indices(k, 1)
    return np.column_stack([arrays["snp"], arrays["fnc"][:, upper[0], upper[1]], arrays["voxels"]]).astype(np.float32)


def elastic_net(cohort, features, folds, products):
    """The elastic net of ``--model elasticnet`` (fold-fitted preprocessing, inner-CV tuned, seed 1 + fold),
    with the interaction products as extra (fold-standardised) columns when ``products``."""
    accuracy, auc = [], []
    for k in range(int(folds.max()) + 1):
        train, test = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        prep = Preprocessor().fit(cohort, train, ("snp", "fnc", "smri"), adjust="regress")
        X_train = _flatten(prep.transform(cohort, train, volumes=False))
        X_test = _flatten(prep.transform(cohort, test, volumes=False))
        if products:
            _, extra = _products(features, train)
            mean, sd = extra[train].mean(0), extra[train].std(0)
            extra = (extra - mean) / np.where(sd > 0, sd, 1.0)
            X_train = np.column_stack([X_train, extra[train]]).astype(np.float32)
            X_test = np.column_stack([X_test, extra[test]]).astype(np.float32)
        net = ElasticNetLogisticCV(random_state=1 + k).fit(X_train, cohort.labels[train])
        score = net.decision_function(X_test)
        accuracy.append(float(((score > 0) == cohort.labels[test]).mean()))
        auc.append(float(roc_auc_score(cohort.labels[test], score)))
    return _summary(accuracy, auc)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="600,1000,2000")
    parser.add_argument("--fresh", action="store_true", help="redo the elastic-net rows already there")
    args = parser.parse_args(argv)
    path = RESULTS / "interactions.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    for n in (int(s) for s in args.sizes.split(",")):
        toml = model_cohort("easy_x3", n, False)
        cohort = load_cohort(toml)
        truth = json.loads((toml.parent / "truth.json").read_text())
        # the folds of every bench_models row: TrainConfig(seed=1), no explanation set, no site column
        site = None if cohort.site is None else np.asarray(cohort.site)
        folds = make_folds(cohort.labels, site, n_folds=5, random_state=1)
        features = planted_features(cohort, truth)
        for products in (False, True):
            name = f"easy_x3/{n}/oracle_{'with_products' if products else 'main'}"
            results[name] = cross_validate(features, cohort.labels, folds, products)
            print(name, results[name], flush=True)
        for products in (False, True):
            name = f"easy_x3/{n}/elasticnet{'_with_products' if products else ''}"
            if name not in results or args.fresh:
                results[name] = elastic_net(cohort, features, folds, products)
                print(name, results[name], flush=True)
        RESULTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
