"""Calibration of the attribution p-values (issues 5 and 16): on many simulated cohorts, the share of
p <= 0.05 in every table and the share of cohorts with a family-wise false positive, for the two nulls an
out-of-fold run can use — the per-fold fixed-model tests combined by Bonferroni (the fallback) and the
retraining null (null runs: the whole pipeline on labels permuted within fold x site).

Scenarios (``--scenario``):

- ``null``: `--null` cohorts (labels independent of every input). Every second cohort holds 30% cases.
- ``partial``: planted signal present; only null features count: SNPs outside the causal LD blocks, loci
  that hold none of their SNPs, regions not planted, connections not planted, nodes on no planted
  connection.
- ``structured`` (issue 17): null labels, but two ancestry groups (F_ST 0.05) whose case shares differ
  (35% / 65%): every ancestry-informative SNP is associated with the label. The run's defaults (genotype
  QC, genetic PCs regressed out of the dosages in each fold) must keep the model from relying on ancestry;
  lambda_GC of the classical association is recorded per cohort.

Each cohort: simulate (two sites), cross-validate a small MIGTrans (3 folds, every subject out of fold),
explain every subject (IG, 8 steps) and build every table with the per-fold test (B permutations per fold)
and, with ``--null-runs B_r``, against B_r null runs. Recorded per cohort, null and family: whether a null
feature reached p_fwer <= 0.05, the p of one fixed null feature (independent across cohorts) and every null
feature's p.

Run: python benchmarks/bench_calibration.py [--cohorts 100] [--scenario null|partial] [--null-runs 19]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

import numpy as np
import pandas as pd
from scipy import stats

from explain import explain_run, run_null
from migtrans.model import ModelConfig
from migtrans.simulate import simulate_cohort
from migtrans.training import TrainConfig, train

from _common import SCRATCH, save

FAMILIES = ("snps", "loci", "regions", "connections", "nodes")
MODEL = ModelConfig(d_model=16, n_heads=2, smri_cnn_channels=(4, 8), n_slice_attention_layers=1)
IG = dict(n_steps=8)


def null_features(table, family, truth):
    """Mask of the rows of ``table`` that carry no planted signal (all rows for a null cohort)."""
    if truth["label_model"]["null"]:
        return np.ones(len(table), dtype=bool)
    blocks = truth["causal_blocks"]

    def in_block(chrom, start, end):
        return any(str(b["chrom"]) == str(chrom) and start <= b["end"] and end >= b["start"] for b in blocks)

    if family == "snps":
        return ~np.array([in_block(c, p, p) for c, p in zip(table["chrom"], table["pos"])])
    if family == "loci":
        return ~np.array([in_block(c, s, e) for c, s, e in zip(table["chrom"], table["start"], table["end"])])
    if family == "regions":
        return ~table["region"].isin({r["region"] for r in truth["smri_regions"]}).to_numpy()
    edges = {frozenset((e["node_i"], e["node_j"])) for e in truth["fnc_edges"]}
    if family == "connections":
        return ~np.array([frozenset(p) in edges for p in zip(table["node_i"], table["node_j"])])
    touched = set().union(*edges)
    return ~table["node"].isin(touched).to_numpy()


def _file_order(table, family):
    """Position of each row before ranking: a stable identity per feature."""
    if family in ("snps", "loci"):
        key = "pos" if family == "snps" else "start"
        return table["chrom"].astype(str).str.zfill(2).str.cat(table[key].astype(str).str.zfill(10)).rank().to_numpy()
    if family == "connections":
        return (table["node_i"] + "|" + table["node_j"]).rank().to_numpy()
    return table["region" if family == "regions" else "node"].rank().to_numpy()


def summarise_tables(tables, truth, prefix):
    row = {}
    for family in FAMILIES:
        table = tables[family]
        keep = null_features(table, family, truth)
        null_rows = table[keep]
        row[f"{prefix}{family}_any_fwer"] = bool((null_rows["p_fwer"] <= 0.05).any())
        first = null_rows.iloc[int(np.argmin(_file_order(null_rows, family)))]
        row[f"{prefix}{family}_fixed_p"] = float(first["p_perm"])
        row[f"{prefix}{family}_pooled_p"] = null_rows["p_perm"].dropna().tolist()
        # also as a number, so that the per-cohort lines printed while running summarise a cut-short run
        row[f"{prefix}{family}_share_below_0.05"] = round(float((null_rows["p_perm"].dropna() <= 0.05).mean()), 4)
        row[f"{prefix}{family}_n_null"] = int(keep.sum())
    return row


def one_cohort(seed, folder, *, scenario, n_subjects, n_snps, n_permutations, epochs, null_runs):
    structured = scenario == "structured"
    share = None if structured else 0.3 if seed % 2 else 0.5
    sim = simulate_cohort(
        folder / "cohort",
        n_subjects=n_subjects,
        n_snps=n_snps,
        seed=1000 + seed,
        resolution=8,
        n_sites=2,
        null=scenario in ("null", "structured"),
        case_share=share or 0.5,
        n_ancestries=2 if structured else 1,
        fst=0.05,
        ancestry_case_shares=(0.35, 0.65) if structured else None,
        overwrite=True,
    )
    run = train(
        sim.toml_path,
        folder / "run",
        TrainConfig(n_folds=3, epochs=epochs, seed=seed, device="cpu"),
        MODEL,
        overwrite=True,
        progress=False,
    )
    row = {"seed": seed, "case_share": share, "auc": float(run.metrics.set_index("fold").loc["mean", "roc_auc"])}
    options = dict(out_dir=False, faithfulness=False, n_permutations=n_permutations, random_state=seed, device="cpu")
    start = time.perf_counter()
    fallback = explain_run(run.out_dir, null="per_fold", **options, **IG)
    row["fallback_seconds"] = round(time.perf_counter() - start, 2)
    row.update(summarise_tables(fallback.tables, sim.truth, "per_fold_"))
    row["lambda_gc"] = fallback.tables["snps"].attrs.get("lambda_gc")
    if null_runs:
        start = time.perf_counter()
        run_null(run.out_dir, f"1-{null_runs}", device="cpu", progress=False, random_state=seed, **IG)
        row["null_runs_seconds"] = round(time.perf_counter() - start, 2)
        retrained = explain_run(run.out_dir, null="retraining", **options, **IG)
        assert retrained.settings["n_null_runs"] == null_runs
        row.update(summarise_tables(retrained.tables, sim.truth, "retraining_"))
    return row


def summary(rows, prefix, n_cohorts):
    # the largest false-positive count still consistent with a 5% rate (one-sided binomial, 5% level)
    margin = int(stats.binom.ppf(0.95, n_cohorts, 0.05))
    out = {"fwer_allowed_count": margin}
    for family in FAMILIES:
        hits = int(sum(r[f"{prefix}{family}_any_fwer"] for r in rows))
        fixed = np.array([r[f"{prefix}{family}_fixed_p"] for r in rows])
        pooled = np.concatenate([r[f"{prefix}{family}_pooled_p"] for r in rows])
        share = float((pooled <= 0.05).mean())
        out[family] = {
            "fwer_false_positive_cohorts": hits,
            "fwer_rate": round(hits / n_cohorts, 4),
            "fwer_ok": hits <= margin,
            "fixed_feature_share_below_0.05": round(float((fixed <= 0.05).mean()), 4),
            "pooled_share_below_0.05": round(share, 4),
            "pooled_mean_p": round(float(pooled.mean()), 4),
            "null_features_per_cohort": round(float(np.mean([r[f"{prefix}{family}_n_null"] for r in rows])), 1),
        }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=100)
    parser.add_argument("--scenario", choices=["null", "partial", "structured"], default="null")
    parser.add_argument("--null-runs", type=int, default=0, help="B_r null runs per cohort (0: fallback only)")
    parser.add_argument("--quick", action="store_true", help="3 cohorts, for a smoke run")
    args = parser.parse_args()
    n_cohorts = 3 if args.quick else args.cohorts
    settings = dict(
        scenario=args.scenario,
        n_subjects=120,
        # structured: enough SNPs that about 180 survive LD pruning and the PCs find the two ancestries
        n_snps=2000 if args.scenario == "structured" else 400,
        n_permutations=199,
        epochs=3,
        null_runs=args.null_runs,
    )
    folder = SCRATCH / f"calibration-{args.scenario}"
    rows, start = [], time.perf_counter()
    for seed in range(n_cohorts):
        rows.append(one_cohort(seed, folder, **settings))
        fp = [f for f in FAMILIES if rows[-1][f"per_fold_{f}_any_fwer"]]
        fr = [f for f in FAMILIES if rows[-1].get(f"retraining_{f}_any_fwer")]
        print(f"cohort {seed + 1}/{n_cohorts}: AUC {rows[-1]['auc']:.3f}, p_fwer<=0.05 per-fold {fp} retraining {fr}")
        print(json.dumps({k: v for k, v in rows[-1].items() if not isinstance(v, list)}), flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    results = {
        "cohorts": n_cohorts,
        **settings,
        "folds": 3,
        "sites": 2,
        "case_shares": "0.35 / 0.65 by ancestry" if args.scenario == "structured" else "0.5 and 0.3, alternating",
        "seconds": round(time.perf_counter() - start, 1),
        "mean_cv_auc": round(float(np.mean([r["auc"] for r in rows])), 4),
        "mean_lambda_gc": round(float(np.mean([r["lambda_gc"] for r in rows])), 4),
        "per_fold": summary(rows, "per_fold_", n_cohorts),
    }
    if args.null_runs:
        results["retraining"] = summary(rows, "retraining_", n_cohorts)
        results["seconds_per_null_run"] = round(
            float(np.mean([r["null_runs_seconds"] for r in rows])) / args.null_runs, 2
        )
    print(json.dumps(results, indent=2))
    name = f"calibration_{args.scenario}" + (f"_retraining{args.null_runs}" if args.null_runs else "")
    save(name + ("_quick" if args.quick else ""), results)
    pd.DataFrame([{k: v for k, v in r.items() if not isinstance(v, list)} for r in rows]).to_csv(
        SCRATCH / f"{name}_cohorts.csv", index=False
    )


if __name__ == "__main__":
    main()
