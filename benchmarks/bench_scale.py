"""Real sizes (issue 18, item 6): 500 subjects x 500,000 SNPs x 1.5 mm gray matter x 53 FNC nodes, end to end.

Each stage runs in its own process so that its peak resident memory is its own: simulate the cohort (written
to disk, volumes never all in memory), load it (genotype QC, LD pruning, PCs, the memory-mapped voxel cache),
train (2 folds, 1 epoch: a wall-time and memory measurement, not a model), and explain in two stages: IG
with 8 steps (saved), then the per-fold tables with B = 39 from the saved attributions. Each stage reports
its peak resident memory (``peak_rss_mib``, mapped files included) and its peak anonymous memory
(``peak_anon_mib``). Results go to results/scale.json and docs/benchmarks.md.

Run: python benchmarks/bench_scale.py [--snps 500000] [--subjects 500] [--resolution 1.5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

from _common import SCRATCH, run_child, save


def stage(name, code, results):
    start = time.perf_counter()
    out = run_child(code)
    out["seconds"] = round(time.perf_counter() - start, 1)
    results[name] = out
    print(name, json.dumps(out), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=500)
    parser.add_argument("--snps", type=int, default=500_000)
    parser.add_argument("--resolution", type=float, default=1.5)
    args = parser.parse_args()
    folder = SCRATCH / "scale"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cohort, run = folder / "cohort", folder / "run"
    results = {"subjects": args.subjects, "snps": args.snps, "resolution_mm": args.resolution}
    stage(
        "simulate",
        f"""
from migtrans.simulate import simulate_cohort
simulate_cohort({str(cohort)!r}, n_subjects={args.subjects}, n_snps={args.snps}, resolution={args.resolution},
                seed=0, keep_volumes=False)
""",
        results,
    )
    stage(
        "load",
        f"""
import json
from migtrans.data import load_cohort
c = load_cohort({str(cohort / "cohort.toml")!r})
print(json.dumps({{"snps_after_qc": int(c.genotypes.shape[1]), "voxels": int(c.voxels.shape[1]),
                  "loci_pruned_snps": int(c.pruned_snps.sum()), "pcs": int(c.pcs.shape[1])}}))
""",
        results,
    )
    stage(
        "train",
        f"""
import json
from migtrans.training import TrainConfig, train
r = train({str(cohort / "cohort.toml")!r}, {str(run)!r}, TrainConfig(n_folds=2, epochs=1, device="cpu"), progress=False)
print(json.dumps({{"cv_auc": float(r.metrics.set_index("fold").loc["mean", "roc_auc"])}}))
""",
        results,
    )
    # explain in two processes, each with its own time and peak memory: integrated gradients (saved, as
    # migtrans-explain saves them), then the per-fold tables from the saved, memory-mapped attributions
    explanations = folder / "explanations"
    stage(
        "explain_ig",
        f"""
import json
from explain import explain_run
a = explain_run({str(run)!r}, out_dir={str(explanations)!r}, n_steps=8, n_permutations=0, faithfulness=False,
                device="cpu")
print(json.dumps({{"modalities": list(a.modalities)}}))
""",
        results,
    )
    stage(
        "explain_tables",
        f"""
import json
from explain import rebuild_tables
a = rebuild_tables({str(run)!r}, {str(explanations)!r}, out_dir=False, n_permutations=39, null="per_fold")
print(json.dumps({{"tables": sorted(a.tables)}}))
""",
        results,
    )
    save("scale", results)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
