"""Calibration under the null (issue 5): on many `--null` simulated cohorts (labels independent of every
input), permutation p-values must be uniform and the family-wise false-positive rate at 0.05 must stay at
most 0.05 plus its binomial margin.

Each cohort: simulate (two sites), cross-validate a small MIGTrans with the default explanation set (a
quarter of the subjects held out of every fold), explain that set with the fold models' ensemble and build
every table with B permutations (within site; within fold x site with --explain-fraction 0). Recorded per
cohort and family (snps, loci, regions, connections, nodes): whether any feature reached p_fwer <= 0.05,
and the p_perm of one fixed feature (independent across cohorts, so a KS test on them is valid; features
within one cohort are correlated). Also lambda of the classical association.

Run: python benchmarks/bench_calibration.py [--cohorts 40] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

import numpy as np
import pandas as pd
from scipy import stats

from explain import explain_run
from migtrans.model import ModelConfig
from migtrans.simulate import simulate_cohort
from migtrans.training import TrainConfig, train

from _common import SCRATCH, save

FAMILIES = ("snps", "loci", "regions", "connections", "nodes")
MODEL = ModelConfig(d_model=16, n_heads=2, smri_cnn_channels=(4, 8), n_slice_attention_layers=1)


def one_cohort(seed, folder, *, n_subjects, n_snps, n_permutations, epochs, explain_fraction):
    sim = simulate_cohort(
        folder / "cohort",
        n_subjects=n_subjects,
        n_snps=n_snps,
        seed=1000 + seed,
        resolution=8,
        n_sites=2,
        null=True,
        overwrite=True,
    )
    run = train(
        sim.toml_path,
        folder / "run",
        TrainConfig(n_folds=3, epochs=epochs, seed=seed, device="cpu", explain_fraction=explain_fraction),
        MODEL,
        overwrite=True,
        progress=False,
    )
    att = explain_run(
        run.out_dir,
        out_dir=False,
        n_steps=8,
        faithfulness=False,
        n_permutations=n_permutations,
        random_state=seed,
        device="cpu",
    )
    row = {
        "seed": seed,
        "auc": float(run.metrics.set_index("fold").loc["mean", "roc_auc"]),
        "lambda_gc": float(att.tables["snps"].attrs["lambda_gc"]),
    }
    for family in FAMILIES:
        table = att.tables[family]
        row[f"{family}_any_fwer"] = bool((table["p_fwer"] <= 0.05).any())
        # a fixed feature, the same in every cohort: the first row in file order before ranking
        first = table.loc[table.index[np.argmin(_file_order(table, family))], "p_perm"]
        row[f"{family}_fixed_p"] = float(first)
        row[f"{family}_pooled_p"] = table["p_perm"].dropna().tolist()
    # The first SNP is often rare (MAF 0.03 -> one or two carriers among the 30 explained subjects), and
    # then its t takes few values: the p-value stays valid but is discrete and conservative, which a KS
    # test against the continuous uniform flags. So also the first common SNP (MAF >= 0.2 in the cohort,
    # chosen from genotypes alone, before any test).
    freq = np.nanmean(np.asarray(sim.genotypes, dtype=np.float64), axis=0) / 2
    common = set(sim.snps["snp"].to_numpy()[np.minimum(freq, 1 - freq) >= 0.2])
    snps = att.tables["snps"]
    in_file_order = snps.iloc[np.argsort(_file_order(snps, "snps"))]
    row["snps_common_fixed_p"] = float(in_file_order.loc[in_file_order["snp"].isin(common), "p_perm"].iloc[0])
    row["p_assoc"] = att.tables["snps"]["p_assoc"].dropna().tolist()
    return row


def _file_order(table, family):
    """Position of each row before ranking (tables are sorted by p): a stable identity per feature."""
    key = {"snps": "pos", "loci": "start", "regions": "region", "connections": "node_i", "nodes": "node"}[family]
    if family == "snps" or family == "loci":
        return table["chrom"].astype(str).str.zfill(2).str.cat(table[key].astype(str).str.zfill(10)).rank().to_numpy()
    if family == "connections":
        return (table["node_i"] + "|" + table["node_j"]).rank().to_numpy()
    return table[key].rank().to_numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=40)
    parser.add_argument(
        "--explain-fraction",
        type=float,
        default=0.25,
        help="explanation set share (default 0.25; 0 = every subject out of fold, the old scheme)",
    )
    parser.add_argument("--quick", action="store_true", help="3 cohorts, for a smoke run")
    args = parser.parse_args()
    n_cohorts = 3 if args.quick else args.cohorts
    settings = dict(n_subjects=120, n_snps=400, n_permutations=199, epochs=3, explain_fraction=args.explain_fraction)
    folder = SCRATCH / "calibration"
    rows, start = [], time.perf_counter()
    for seed in range(n_cohorts):
        rows.append(one_cohort(seed, folder, **settings))
        print(
            f"cohort {seed + 1}/{n_cohorts}: AUC {rows[-1]['auc']:.3f}, any p_fwer<=0.05: "
            + ", ".join(f for f in FAMILIES if rows[-1][f"{f}_any_fwer"]),
            flush=True,
        )
    shutil.rmtree(folder, ignore_errors=True)

    # the largest false-positive count still consistent with a 5% rate (one-sided binomial, 5% level)
    margin = int(stats.binom.ppf(0.95, n_cohorts, 0.05))
    results = {
        "cohorts": n_cohorts,
        **settings,
        "folds": 3,
        "sites": 2,
        "seconds": round(time.perf_counter() - start, 1),
        "mean_cv_auc": round(float(np.mean([r["auc"] for r in rows])), 4),
        "lambda_gc_median": round(float(np.median([r["lambda_gc"] for r in rows])), 4),
        "fwer_allowed_count": margin,
        "families": {},
    }
    for family in FAMILIES:
        hits = int(sum(r[f"{family}_any_fwer"] for r in rows))
        fixed = np.array([r[f"{family}_fixed_p"] for r in rows])
        pooled = np.concatenate([r[f"{family}_pooled_p"] for r in rows])
        results["families"][family] = {
            "fwer_false_positive_cohorts": hits,
            "fwer_rate": round(hits / n_cohorts, 4),
            "fwer_ok": hits <= margin,
            "ks_fixed_feature_p": round(float(stats.kstest(fixed, "uniform").pvalue), 4),
            "fixed_feature_share_below_0.05": round(float((fixed <= 0.05).mean()), 4),
            "pooled_mean_p": round(float(pooled.mean()), 4),
            "pooled_share_below_0.05": round(float((pooled <= 0.05).mean()), 4),
        }
    common = np.array([r["snps_common_fixed_p"] for r in rows])
    results["snps_common_fixed_feature"] = {
        "ks_p": round(float(stats.kstest(common, "uniform").pvalue), 4),
        "share_below_0.05": round(float((common <= 0.05).mean()), 4),
    }
    p_assoc = np.concatenate([r["p_assoc"] for r in rows])
    results["p_assoc_share_below_0.05"] = round(float((p_assoc <= 0.05).mean()), 4)
    print(json.dumps(results, indent=2))
    name = "calibration" + ("_out_of_fold" if args.explain_fraction == 0 else "") + ("_quick" if args.quick else "")
    save(name, results)
    pd.DataFrame([{k: v for k, v in r.items() if not isinstance(v, list)} for r in rows]).to_csv(
        SCRATCH / f"{name}_cohorts.csv", index=False
    )


if __name__ == "__main__":
    main()
