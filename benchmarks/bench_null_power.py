"""Power of the attribution p-values under each null (issue 16), same cohorts and folds for every row:

- ``explanation_set``: a quarter held out of every fold, explained by the fold models' ensemble, its labels
  permuted within site (the session-5 default);
- ``per_fold``: every subject out of fold, each fold's model fixed, Bonferroni across folds (the fallback);
- ``retraining``: the same out-of-fold run against B_r retraining null runs.

Per cohort and row: the AUC with which p_perm separates the causal SNPs from the others, and how many causal
loci, planted regions and planted connections reach p_fwer <= 0.05. Also the wall time of one null run.

Run: python benchmarks/bench_null_power.py [--cohorts 3] [--subjects 400] [--null-runs 19]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from explain import explain_run, run_null
from migtrans.model import ModelConfig
from migtrans.simulate import simulate_cohort
from migtrans.training import TrainConfig, train

from _common import SCRATCH, save

MODEL = ModelConfig(d_model=16, n_heads=2, smri_cnn_channels=(4, 8), n_slice_attention_layers=1)


def recovery(tables, truth):
    snps = tables["snps"]
    causal = snps["snp"].isin({c["snp"] for c in truth["causal_snps"]}).to_numpy()
    p = snps["p_perm"].fillna(1.0).to_numpy()
    loci = tables["loci"]

    def holds_causal(row):
        return any(
            str(b["chrom"]) == str(row["chrom"]) and row["start"] <= b["end"] and row["end"] >= b["start"]
            for b in truth["causal_blocks"]
        )

    causal_loci = loci[loci.apply(holds_causal, axis=1)]
    regions = tables["regions"][tables["regions"]["region"].isin({r["region"] for r in truth["smri_regions"]})]
    edges = {frozenset((e["node_i"], e["node_j"])) for e in truth["fnc_edges"]}
    conn = tables["connections"]
    planted = conn[[frozenset(p) in edges for p in zip(conn["node_i"], conn["node_j"])]]
    return {
        "causal_snp_auc": round(float(roc_auc_score(causal, -p)), 4),
        "causal_loci_fwer": int((causal_loci["p_fwer"] <= 0.05).sum()),
        "regions_fwer": int((regions["p_fwer"] <= 0.05).sum()),
        "edges_fwer": int((planted["p_fwer"] <= 0.05).sum()),
        "causal_loci": len(causal_loci),
        "planted_regions": len(regions),
        "planted_edges": len(planted),
    }


def one_cohort(seed, folder, *, n_subjects, n_snps, epochs, null_runs, n_permutations):
    sim = simulate_cohort(
        folder / "cohort", n_subjects=n_subjects, n_snps=n_snps, seed=2000 + seed, resolution=8, overwrite=True
    )
    config = dict(n_folds=3, epochs=epochs, seed=seed, device="cpu")
    options = dict(out_dir=False, faithfulness=False, n_permutations=n_permutations, n_steps=8, device="cpu")
    rows = {}
    held = train(
        sim.toml_path,
        folder / "set",
        TrainConfig(**config, explain_fraction=0.25),
        MODEL,
        overwrite=True,
        progress=False,
    )
    rows["explanation_set"] = {
        "accuracy": float(held.metrics.set_index("fold").loc["explanation_set", "accuracy"]),
        **recovery(explain_run(held.out_dir, **options).tables, sim.truth),
    }
    run = train(sim.toml_path, folder / "oof", TrainConfig(**config), MODEL, overwrite=True, progress=False)
    accuracy = float(run.metrics.set_index("fold").loc["mean", "accuracy"])
    rows["per_fold"] = {
        "accuracy": accuracy,
        **recovery(explain_run(run.out_dir, null="per_fold", **options).tables, sim.truth),
    }
    start = time.perf_counter()
    run_null(run.out_dir, f"1-{null_runs}", n_steps=8, device="cpu", progress=False)
    seconds = (time.perf_counter() - start) / null_runs
    rows["retraining"] = {
        "accuracy": accuracy,
        **recovery(explain_run(run.out_dir, null="retraining", **options).tables, sim.truth),
        "seconds_per_null_run": round(seconds, 1),
    }
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=3)
    parser.add_argument("--subjects", type=int, default=400)
    parser.add_argument("--snps", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--null-runs", type=int, default=19)
    args = parser.parse_args()
    settings = dict(
        n_subjects=args.subjects, n_snps=args.snps, epochs=args.epochs, null_runs=args.null_runs, n_permutations=999
    )
    folder = SCRATCH / "null-power"
    per_cohort, start = [], time.perf_counter()
    for seed in range(args.cohorts):
        per_cohort.append(one_cohort(seed, folder, **settings))
        print(json.dumps({"seed": seed, **per_cohort[-1]}), flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    summary = {}
    for row in ("explanation_set", "per_fold", "retraining"):
        values = [c[row] for c in per_cohort]
        summary[row] = {
            key: round(float(np.mean([v[key] for v in values])), 4)
            for key in values[0]
            if key != "seconds_per_null_run"
        }
    summary["retraining"]["seconds_per_null_run"] = round(
        float(np.mean([c["retraining"]["seconds_per_null_run"] for c in per_cohort])), 1
    )
    results = {
        "cohorts": args.cohorts,
        **settings,
        "folds": 3,
        "model": "d_model 16, 2 heads, sMRI CNN (4, 8), 1 slice-attention layer",
        "ig_steps": 8,
        "seconds": round(time.perf_counter() - start, 1),
        "mean": summary,
        "per_cohort": per_cohort,
    }
    print(json.dumps(results["mean"], indent=2))
    save(f"null_power_{args.subjects}", results)


if __name__ == "__main__":
    main()
