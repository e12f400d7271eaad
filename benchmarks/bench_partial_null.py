"""The partial null on a report folder with planted truth (issue 16): for every table, how the null features
(no planted signal: see `bench_calibration.null_features`) fare under the report's p-values — share of
p_perm <= 0.05, count with p_fwer <= 0.05 — beside the planted ones, and the spread of the null features'
pooled Welch statistic.

Run: python benchmarks/bench_partial_null.py REPORT [--name demo]   (REPORT from `migtrans-explain --demo`,
     or any report folder with cohort/truth.json beside its tables)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from bench_calibration import FAMILIES, null_features
from sklearn.metrics import roc_auc_score

from _common import save


def analyse(report: Path) -> dict:
    truth = json.loads((report / "cohort" / "truth.json").read_text())
    settings = json.loads((report / "settings.json").read_text())
    out = {"null": settings.get("null"), "baseline": settings.get("baseline"), "families": {}}
    for family in FAMILIES:
        table = pd.read_csv(report / f"{family}.csv")
        keep = null_features(table, family, truth)
        null, planted = table[keep], table[~keep]
        stat = null["stat"].dropna()
        out["families"][family] = {
            "null_features": int(keep.sum()),
            "null_share_p_le_0.05": round(float((null["p_perm"].dropna() <= 0.05).mean()), 4),
            "null_fwer_hits": int((null["p_fwer"] <= 0.05).sum()),
            "planted": int((~keep).sum()),
            "planted_fwer_hits": int((planted["p_fwer"] <= 0.05).sum()),
            "null_stat_sd": round(float(stat.std()), 3),
            "null_stat_share_beyond_1.96": round(float((stat.abs() > 1.96).mean()), 4),
        }
    snps = pd.read_csv(report / "snps.csv")
    causal = snps["snp"].isin({c["snp"] for c in truth["causal_snps"]})
    out["causal_snp_auc_p_perm"] = round(float(roc_auc_score(causal, -snps["p_perm"].fillna(1.0))), 4)
    out["causal_snp_auc_p_assoc"] = round(float(roc_auc_score(causal, -snps["p_assoc"].fillna(1.0))), 4)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--name", default="demo")
    args = parser.parse_args()
    results = analyse(args.report)
    print(json.dumps(results, indent=2))
    save(f"partial_null_{args.name}", results)


if __name__ == "__main__":
    main()
