"""Benchmark cross-validated training (issue 3 targets).

- accuracy table: three-modality MIGTrans vs every single-modality variant and the scikit-learn baselines,
  same folds, on a seeded simulated cohort (target: fusion beats each single modality by >= 3 points of
  mean accuracy and beats logistic regression); with the default settings every subject is cross-validated
  (results in docs/benchmarks.md from before issue 16 used a held-out explanation set, recorded beside);
- a --null cohort: mean CV accuracy within 0.5 +/- 0.06;
- speed: wall time of 5 folds of the demo configuration (target < 2 min on 2 cores), training throughput
  (subjects per second) and parameter count.

Run: python benchmarks/bench_training.py [--subjects 300] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

import pandas as pd

from migtrans.simulate import simulate_cohort
from migtrans.training import TrainConfig, compare_runs, format_comparison, open_run, train

from _common import RESULTS, SCRATCH, save

VARIANTS = [
    ("migtrans_all", dict(model="migtrans")),
    ("migtrans_snp", dict(model="migtrans", modalities=("snp",))),
    ("migtrans_fnc", dict(model="migtrans", modalities=("fnc",))),
    ("migtrans_smri", dict(model="migtrans", modalities=("smri",))),
    ("logistic_all", dict(model="logistic")),
    ("svm_all", dict(model="svm")),
    ("mlp_all", dict(model="mlp")),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=300)
    parser.add_argument("--snps", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script runs")
    parser.add_argument("--only", help="comma-separated variant names")
    args = parser.parse_args()
    n, m, epochs = (60, 500, 2) if args.quick else (args.subjects, args.snps, None)
    root = SCRATCH / f"training_{n}"
    shutil.rmtree(root, ignore_errors=True)
    cohort = simulate_cohort(root / "cohort", n_subjects=n, n_snps=m, seed=args.seed)
    null = simulate_cohort(root / "null", n_subjects=n, n_snps=m, seed=args.seed, null=True)
    extra = {"epochs": epochs} if epochs else {}
    results = {"subjects": n, "snps": m, "seed": args.seed, "runs": {}}
    wanted = set(args.only.split(",")) if args.only else None
    run_dirs = []
    for name, options in VARIANTS:
        if wanted and name not in wanted:
            continue
        start = time.perf_counter()
        result = train(cohort.toml_path, root / name, TrainConfig(**options, **extra), progress=False)
        seconds = time.perf_counter() - start
        run_dirs.append(result.out_dir)
        metrics = result.metrics.set_index("fold")
        mean = metrics.loc["mean"]
        results["runs"][name] = {
            "seconds": round(seconds, 1),
            "accuracy": float(mean["accuracy"]),
            "roc_auc": float(mean["roc_auc"]),
        }
        if "explanation_set" in metrics.index:  # the fold models' ensemble on the held-out quarter
            results["runs"][name].update(
                explanation_set_accuracy=float(metrics.loc["explanation_set", "accuracy"]),
                explanation_set_roc_auc=float(metrics.loc["explanation_set", "roc_auc"]),
            )
        print(name, results["runs"][name], flush=True)
        if name == "migtrans_all":
            run = open_run(result.out_dir)
            n_train = sum(
                len(run.fold_info(k)["train_subjects"]) * _epochs_run(run, k) for k in range(1, run.n_folds + 1)
            )
            results["five_fold_seconds"] = round(seconds, 1)
            results["train_subjects_per_second"] = round(n_train / seconds, 1)
            results["parameters"] = _n_parameters(result.out_dir)
    table = compare_runs(run_dirs)
    results["table_markdown"] = format_comparison(table)
    if not wanted or "null" in wanted:
        null_result = train(null.toml_path, root / "null_run", TrainConfig(**extra), progress=False)
        null_metrics = null_result.metrics.set_index("fold")
        results["null_accuracy"] = float(null_metrics.loc["mean", "accuracy"])
        if "explanation_set" in null_metrics.index:
            results["null_explanation_set_accuracy"] = float(null_metrics.loc["explanation_set", "accuracy"])
    print(results["table_markdown"])
    name = "training" + ("_quick" if args.quick else f"_{n}")
    if wanted:  # a partial rerun updates the saved results instead of replacing them
        previous = RESULTS / f"{name}.json"
        if previous.is_file():
            old = json.loads(previous.read_text())
            old["runs"].update(results.pop("runs"))
            results.pop("table_markdown")  # the saved table covers the full set of runs
            results = {**old, **results}
    save(name, results)


def _epochs_run(run, k):
    history = pd.read_csv(run.folder.fold(k).history)
    return len(history)


def _n_parameters(run_dir):
    import torch

    state = torch.load(run_dir / "folds/1/model.pt", weights_only=True)
    # buffers (locus index, masks) are not parameters
    skip = ("index", "valid", "locus_chrom")
    return int(sum(v.numel() for k, v in state.items() if not k.endswith(skip) and v.is_floating_point()))


if __name__ == "__main__":
    main()
