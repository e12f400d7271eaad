"""Population structure (issue 17): genomic inflation of the classical association on structured null cohorts.

Each cohort: two ancestry groups (Balding-Nichols, F_ST 0.02) whose case shares differ (35% / 65%), labels
otherwise independent of every input (`--null`), two sites, 600 subjects x 5,000 SNPs as the demo. Loaded with
the defaults (genotype QC, LD pruning, 10 genetic principal components), the per-SNP logistic association is
fitted three ways: no covariates, the cohort's covariates and site, and those plus the PCs (the default).
lambda_GC is computed on the LD-pruned common SNPs (with its bootstrap interval) and, for comparison, on every
SNP. A cohort of one ancestry gives the reference.

Run: python benchmarks/bench_structure.py [--cohorts 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

import numpy as np
import pandas as pd

from explain import association_covariates, genomic_inflation, inflation_interval, logistic_association
from migtrans.data import load_cohort
from migtrans.simulate import simulate_cohort

from _common import SCRATCH, save


def one_cohort(seed, folder, ancestries):
    sim = simulate_cohort(
        folder,
        n_subjects=600,
        n_snps=5000,
        seed=500 + seed,
        resolution=8,
        n_sites=2,
        null=True,
        n_ancestries=ancestries,
        fst=0.02,
        ancestry_case_shares=(0.35, 0.65) if ancestries == 2 else None,
        overwrite=True,
        keep_volumes=False,
    )
    cohort = load_cohort(sim.toml_path)
    pruned = cohort.pruned_snps
    design = association_covariates(cohort)
    without_pcs = design.drop(columns=list(cohort.pcs.columns))
    row = {"seed": seed, "ancestries": ancestries, "n_pcs": int(cohort.pcs.shape[1]), "n_pruned": int(pruned.sum())}
    for name, covariates in (("none", None), ("covariates_site", without_pcs), ("covariates_site_pcs", design)):
        p = logistic_association(cohort.genotypes, cohort.labels, covariates)["p_assoc"].to_numpy()
        lam, low, high = inflation_interval(p[pruned], random_state=seed)
        row[name] = {"lambda_pruned": round(lam, 4), "interval": [round(low, 4), round(high, 4)]}
        row[name]["lambda_all_snps"] = round(genomic_inflation(p), 4)
    # how well PC1 separates the ancestry groups (|point-biserial r|)
    if ancestries == 2:
        subjects = pd.read_csv(sim.out_dir / "truth_subjects.tsv", sep="\t").set_index("subject_id")
        group = subjects.loc[cohort.subject_ids, "ancestry"].to_numpy()
        row["pc1_ancestry_abs_r"] = round(abs(float(np.corrcoef(cohort.pcs["PC1"], group)[0, 1])), 4)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=5)
    args = parser.parse_args()
    folder = SCRATCH / "structure" / "cohort"
    start, rows = time.perf_counter(), []
    for ancestries in (2, 1):
        for seed in range(args.cohorts):
            rows.append(one_cohort(seed, folder, ancestries))
            print(json.dumps(rows[-1]), flush=True)
    shutil.rmtree(folder.parent, ignore_errors=True)

    def mean(key, ancestries):
        return round(float(np.mean([r[key]["lambda_pruned"] for r in rows if r["ancestries"] == ancestries])), 4)

    results = {
        "cohorts_per_setting": args.cohorts,
        "n_subjects": 600,
        "n_snps": 5000,
        "fst": 0.02,
        "ancestry_case_shares": [0.35, 0.65],
        "seconds": round(time.perf_counter() - start, 1),
        "mean_lambda_pruned": {
            f"{a}_ancestries": {k: mean(k, a) for k in ("none", "covariates_site", "covariates_site_pcs")}
            for a in (2, 1)
        },
        "max_lambda_pruned_with_pcs_2_ancestries": max(
            r["covariates_site_pcs"]["lambda_pruned"] for r in rows if r["ancestries"] == 2
        ),
        "cohorts": rows,
    }
    print(json.dumps({k: v for k, v in results.items() if k != "cohorts"}, indent=2))
    save("structure", results)


if __name__ == "__main__":
    main()
