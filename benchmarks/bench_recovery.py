"""Planted recovery (issue 5) and deletion curves (issue 4) on a simulated cohort's report.

Reads a report folder written by `migtrans-explain --demo` (it holds cohort/truth.json), or builds one, and
measures how well the ranked tables recover what the simulator planted:

- causal SNPs ranked by the model's p_perm (ties broken by |stat|) against all SNPs: ROC AUC (target >= 0.9),
  and the same for the classical p_assoc;
- the rank of every locus holding a causal SNP (target: all in the top 10 loci);
- the rank of every planted sMRI region and FNC edge (target: in the top 10 of their tables);
- deletion curves: at how many fractions removing the top-attributed features lowers the held-out AUC
  more than removing random ones, per modality.

Run: python benchmarks/bench_recovery.py [--report demo [--retable] | --subjects 2000] [--quick]

--retable rebuilds the report folder's tables from its saved attributions, with the settings it was
explained with (B, seed, atlas, genes), before measuring: for a change to the tables alone, the
attributions of a long explanation need not be recomputed. report.html is then left as it was.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from migtrans.training import RunFolder

from _common import SCRATCH, save


def _score(table, column):
    """Higher = stronger: -log10 p with |stat| as a tie-breaker (p_perm is floored at 1/(B+1))."""
    p = table[column].fillna(1.0).clip(lower=1e-300)
    tie = table["stat"].abs().fillna(0) if "stat" in table and column == "p_perm" else 0
    return -np.log10(p) + 1e-9 * tie


def recovery(report: Path) -> dict:
    truth = json.loads((report / "cohort" / "truth.json").read_text())
    snps, loci = pd.read_csv(report / "snps.csv"), pd.read_csv(report / "loci.csv")
    regions, edges = pd.read_csv(report / "regions.csv"), pd.read_csv(report / "connections.csv")
    causal = {s["snp"] for s in truth["causal_snps"]}
    is_causal = snps["snp"].isin(causal).to_numpy()
    out = {
        "subjects": truth["settings"]["n_subjects"],
        "causal_snps": len(causal & set(snps["snp"])),
        "snps": len(snps),
    }
    for column in ("p_perm", "p_assoc"):
        out[f"snp_auc_{column}"] = round(float(roc_auc_score(is_causal, _score(snps, column))), 4)
    if "contrast" in snps:  # the tables' ranking
        score = snps["contrast"].fillna(snps["contrast"].min() - 1)
        out["snp_auc_contrast"] = round(float(roc_auc_score(is_causal, score)), 4)
        out["causal_snp_ranks"] = sorted(int(r) for r in snps.loc[is_causal, "rank"])
    causal_loci = set(snps.loc[is_causal, "locus"])
    out["causal_locus_ranks"] = sorted(int(r) for r in loci.loc[loci["locus"].isin(causal_loci), "rank"])
    names = {r["region"] for r in truth["smri_regions"]}
    out["planted_region_ranks"] = {
        r: int(regions.loc[regions["region"] == r, "rank"].iloc[0])
        for r in sorted(names)
        if (regions["region"] == r).any()
    }
    rank_of = {frozenset(k): int(r) for k, r in zip(zip(edges["node_i"], edges["node_j"]), edges["rank"])}
    out["planted_edge_ranks"] = {
        f"{e['node_i']}-{e['node_j']}": rank_of[frozenset((e["node_i"], e["node_j"]))] for e in truth["fnc_edges"]
    }
    out["targets"] = {
        "snp_auc_p_perm>=0.9": out["snp_auc_p_perm"] >= 0.9,
        "causal_loci_in_top10": all(r <= 10 for r in out["causal_locus_ranks"]),
        "regions_in_top10": all(r <= 10 for r in out["planted_region_ranks"].values()),
        "edges_in_top10": all(r <= 10 for r in out["planted_edge_ranks"].values()),
    }
    metrics = pd.read_csv(RunFolder(report / "run").metrics, dtype={"fold": str}).set_index("fold")
    out["model_accuracy"] = round(float(metrics.loc["mean", "accuracy"]), 4)
    out["model_auc"] = round(float(metrics.loc["mean", "roc_auc"]), 4)
    if "explanation_set" in metrics.index:  # the fold models' ensemble on the subjects the tables test
        out["explained_subjects"] = len(pd.read_csv(report / "subjects.csv"))
        out["explanation_set_accuracy"] = round(float(metrics.loc["explanation_set", "accuracy"]), 4)
        out["explanation_set_auc"] = round(float(metrics.loc["explanation_set", "roc_auc"]), 4)
    if (report / "deletion.csv").is_file():
        deletion = pd.read_csv(report / "deletion.csv")
        deletion = deletion[deletion["fraction"] > 0]
        out["deletion_top_below_random"] = {
            m: f"{int((g['auc_top'] < g['auc_random_mean']).sum())}/{len(g)}" for m, g in deletion.groupby("modality")
        }
        out["deletion"] = deletion.round(4).to_dict("records")
    return out


def retable(report: Path):
    from explain import Attributions, OutOfFold, result_tables, write_tables

    attributions = Attributions.load(report)
    s = attributions.settings
    tables = result_tables(
        OutOfFold(report / "run"),
        attributions,
        n_permutations=s["n_permutations"],
        genes=s.get("genes"),
        atlas=s.get("atlas", "aal"),
        random_state=s["random_state"],
        # retraining reports need their null runs (gathered by explain_run), so they are retabled per fold
        null="per_fold" if s.get("null") == "retraining" else s.get("null", "auto"),
    )
    write_tables(tables, report)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", help="a report folder from `migtrans-explain --demo` (default: build one)")
    parser.add_argument(
        "--subjects",
        type=int,
        default=600,
        help="cohort size of the demo it builds (default 600, the `make demo` size)",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny demo, to check the script runs")
    parser.add_argument(
        "--retable", action="store_true", help="with --report: rebuild its tables from the saved attributions first"
    )
    args = parser.parse_args()
    if args.report:
        report = Path(args.report)
        if args.retable:
            retable(report)
    else:
        from reports import demo

        report = SCRATCH / f"recovery_{args.subjects}"
        sizes = (
            dict(n_subjects=60, n_snps=300, n_folds=2, epochs=2, n_permutations=99)
            if args.quick
            else dict(n_subjects=args.subjects)
        )
        demo(report, overwrite=True, progress=True, **sizes)
    result = recovery(report)
    print(json.dumps(result, indent=2))
    size = result["subjects"]
    name = "recovery_quick" if args.quick else f"recovery_{size}"
    save(name, result)


if __name__ == "__main__":
    main()
