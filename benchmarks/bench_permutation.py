"""Benchmark the permutation engine (issue 5 speed targets), both sides in one run.

- max-T permutations of a per-SNP association statistic on 1,000 subjects x 10,000 SNPs x 10,000
  permutations: `trend_permutation_test` (Armitage trend statistic, exact int8 case sums) and, for
  reference, the general engine's pooled t, vs `plink1.9 --assoc mperm=10000` on the same fileset;
- 10,000 permutations of 20,000 attribution features x 1,000 subjects (target < 10 s).

Run: python benchmarks/bench_permutation.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time

import numpy as np

from explain import permutation_test, trend_permutation_test

from _common import SCRATCH, save


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, m, B, f = (200, 500, 200, 2000) if args.quick else (1000, 10000, 10000, 20000)
    rng = np.random.default_rng(0)
    results = {"subjects": n, "snps": m, "permutations": B, "features": f}

    X = rng.normal(size=(n, f)).astype(np.float32)
    y = np.repeat([0, 1], n // 2)
    start = time.perf_counter()
    permutation_test(X, y, n_permutations=B, random_state=0)
    results["attribution_features_seconds"] = round(time.perf_counter() - start, 2)

    g = rng.binomial(2, rng.uniform(0.05, 0.5, m), size=(n, m)).astype(np.float32)
    start = time.perf_counter()
    permutation_test(g, y, n_permutations=B, random_state=0)
    results["engine_snps_seconds"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    trend_permutation_test(g, y, n_permutations=B, random_state=0)
    results["trend_snps_seconds"] = round(time.perf_counter() - start, 2)
    holes = g.copy()
    holes[rng.random(holes.shape) < 0.01] = np.nan  # 1% missing calls, as after a typical call-rate QC
    start = time.perf_counter()
    trend_permutation_test(holes, y, n_permutations=B, random_state=0)
    results["trend_snps_1pct_missing_seconds"] = round(time.perf_counter() - start, 2)

    if shutil.which("plink1.9"):
        from bed_reader import to_bed

        folder = SCRATCH / "permutation"
        folder.mkdir(parents=True, exist_ok=True)
        ids = [f"i{k}" for k in range(n)]
        to_bed(folder / "d.bed", g, properties={
            "fid": ids, "iid": ids, "sid": [f"rs{j}" for j in range(m)], "chromosome": ["1"] * m,
            "bp_position": np.arange(1, m + 1) * 100, "allele_1": ["A"] * m, "allele_2": ["G"] * m,
            "pheno": (y + 1).astype(str)})
        start = time.perf_counter()
        subprocess.run(["plink1.9", "--bfile", str(folder / "d"), "--assoc", f"mperm={B}", "--allow-no-sex",
                        "--threads", "2", "--seed", "1", "--out", str(folder / "out")], check=True,
                       capture_output=True)
        results["plink_assoc_mperm_seconds"] = round(time.perf_counter() - start, 2)
    save("permutation" + ("_quick" if args.quick else ""), results)


if __name__ == "__main__":
    main()
