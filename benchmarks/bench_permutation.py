"""Benchmark the permutation engine (issue 5 speed targets), both sides in one run.

- max-T permutations of a per-SNP association statistic on 1,000 subjects x 10,000 SNPs x 10,000
  permutations: `trend_permutation_test` (Armitage trend statistic, exact int8 case sums) and, for
  reference, the general engine (`permutation_test`), vs `plink1.9 --assoc mperm=10000` on the same fileset;
- 10,000 permutations of 20,000 attribution features x 1,000 subjects (target < 10 s).

Every timing is the best of 3 runs (both sides alike), so that a background hiccup does not decide it.

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

REPEATS = 3


def best_seconds(run, repeats=REPEATS):
    """The fastest of ``repeats`` wall-clock timings of ``run()``, rounded to 0.01 s."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return round(min(times), 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, m, B, f = (200, 500, 200, 2000) if args.quick else (1000, 10000, 10000, 20000)
    rng = np.random.default_rng(0)
    results = {"subjects": n, "snps": m, "permutations": B, "features": f}

    X = rng.normal(size=(n, f)).astype(np.float32)
    y = np.repeat([0, 1], n // 2)
    results["attribution_features_seconds"] = best_seconds(lambda: permutation_test(X, y, n_permutations=B))

    g = rng.binomial(2, rng.uniform(0.05, 0.5, m), size=(n, m)).astype(np.float32)
    results["engine_snps_seconds"] = best_seconds(lambda: permutation_test(g, y, n_permutations=B))
    results["trend_snps_seconds"] = best_seconds(lambda: trend_permutation_test(g, y, n_permutations=B))
    holes = g.copy()
    holes[rng.random(holes.shape) < 0.01] = np.nan  # 1% missing calls, as after a typical call-rate QC
    results["trend_snps_1pct_missing_seconds"] = best_seconds(
        lambda: trend_permutation_test(holes, y, n_permutations=B)
    )

    if shutil.which("plink1.9"):
        from bed_reader import to_bed

        folder = SCRATCH / "permutation"
        folder.mkdir(parents=True, exist_ok=True)
        ids = [f"i{k}" for k in range(n)]
        to_bed(
            folder / "d.bed",
            g,
            properties={
                "fid": ids,
                "iid": ids,
                "sid": [f"rs{j}" for j in range(m)],
                "chromosome": ["1"] * m,
                "bp_position": np.arange(1, m + 1) * 100,
                "allele_1": ["A"] * m,
                "allele_2": ["G"] * m,
                "pheno": (y + 1).astype(str),
            },
        )
        command = [
            "plink1.9",
            "--bfile",
            str(folder / "d"),
            "--assoc",
            f"mperm={B}",
            "--allow-no-sex",
            "--threads",
            "2",
            "--seed",
            "1",
            "--out",
            str(folder / "out"),
        ]
        results["plink_assoc_mperm_seconds"] = best_seconds(
            lambda: subprocess.run(command, check=True, capture_output=True)
        )
    results["timing"] = f"best of {REPEATS} runs"
    save("permutation" + ("_quick" if args.quick else ""), results)


if __name__ == "__main__":
    main()
