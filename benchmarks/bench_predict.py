"""External validation (issue 18): does `migtrans predict` on a second cohort from the same generator reproduce
what the run's own held-out subjects say?

One cohort (400 subjects x 5,000 SNPs, the demo's generator) is cross-validated with an explanation set (a
stratified quarter held out of every fold, scored by the fold models' ensemble). A replicate cohort of 400 new
subjects from the same generator (`--subjects-seed`) is scored by `predict` with the same ensemble. The two
accuracies (and AUCs) should agree within their binomial noise.

Run: python benchmarks/bench_predict.py
"""

from __future__ import annotations

import json
import shutil
import time

import numpy as np

from migtrans.simulate import simulate_cohort
from migtrans.training import TrainConfig, predict, train

from _common import SCRATCH, save


def main():
    folder = SCRATCH / "predict"
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    first = simulate_cohort(folder / "first", n_subjects=400, n_snps=5000, seed=1, keep_volumes=False)
    second = simulate_cohort(
        folder / "second", n_subjects=400, n_snps=5000, seed=1, subjects_seed=2, keep_volumes=False
    )
    run = train(first.toml_path, folder / "run", TrainConfig(explain_fraction=0.25, device="cpu"), progress=False)
    metrics = run.metrics.set_index("fold")
    held = metrics.loc["explanation_set"]
    result = predict(run.out_dir, second.toml_path, folder / "pred", device="cpu")
    external = result.metrics.iloc[0]
    n_held, n_ext = int(round(400 * 0.25)), len(result.predictions)
    se = np.sqrt(
        held["accuracy"] * (1 - held["accuracy"]) / n_held + external["accuracy"] * (1 - external["accuracy"]) / n_ext
    )
    results = {
        "n_subjects": 400,
        "n_snps": 5000,
        "cv_accuracy_mean": round(float(metrics.loc["mean", "accuracy"]), 4),
        "cv_auc_mean": round(float(metrics.loc["mean", "roc_auc"]), 4),
        "explanation_set": {
            "n": n_held,
            "accuracy": round(float(held["accuracy"]), 4),
            "auc": round(float(held["roc_auc"]), 4),
        },
        "replicate_predict": {
            "n": n_ext,
            "accuracy": round(float(external["accuracy"]), 4),
            "auc": round(float(external["roc_auc"]), 4),
        },
        "accuracy_difference": round(float(external["accuracy"] - held["accuracy"]), 4),
        "difference_se": round(float(se), 4),
        "within_2_se": bool(abs(external["accuracy"] - held["accuracy"]) <= 2 * se),
        "alignment": {k: v for k, v in result.alignment.items() if k != "imputed_snp_ids"},
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(results, indent=2))
    save("predict", results)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
