"""Benchmark integrated gradients (issue 4 targets), on the demo-sized MIGTrans model.

- batched multi-modal IG (this package) vs a per-subject captum loop, same model and subjects;
- the floor: n_steps batched forward + backward passes over the same subjects without captum;
- peak memory of chunked IG as the cohort grows from 200 to 800 subjects (fresh process each).

Run: python benchmarks/bench_explain.py [--quick]
"""

from __future__ import annotations

import argparse

from _common import SCRATCH, run_child, save

SIMULATE = """
from migtrans.simulate import simulate_cohort
simulate_cohort({out!r}, n_subjects={n}, n_snps=5000, seed=1, overwrite=True, keep_volumes=False)
"""

SETUP = """
import time, json, numpy as np, torch
from migtrans import load_cohort
from migtrans.loci import partition_loci
from migtrans.model import ModelConfig
from migtrans.preprocess import Preprocessor
from migtrans.training import build_model
cohort = load_cohort({out!r} + "/cohort.toml")
prep = Preprocessor().fit(cohort, np.arange(cohort.n_subjects), ("snp", "fnc", "smri"))
torch.manual_seed(0)
model = build_model(ModelConfig(), cohort, prep, partition_loci(cohort.snps)).eval()
"""

SPEED = (
    SETUP
    + """
from captum.attr import IntegratedGradients
from explain import integrated_gradients, relative_delta
from explain import LogOdds
steps, n = {steps}, {n}
inputs = {{k: torch.from_numpy(v) for k, v in prep.transform(cohort, np.arange(n)).items()}}
# warm-up: the first large batch pays for memory allocation
integrated_gradients(model, {{k: v[:8] for k, v in inputs.items()}}, n_steps=steps)
t = time.perf_counter(); attr, delta = integrated_gradients(model, inputs, n_steps=steps)
batched = time.perf_counter() - t
wrapped = LogOdds(model, list(inputs))
ig = IntegratedGradients(wrapped)
t = time.perf_counter()
for i in range(n):
    x = tuple(v[i:i + 1] for v in inputs.values())
    ig.attribute(x, baselines=tuple(torch.zeros_like(v) for v in x), n_steps=steps)
loop = time.perf_counter() - t
# floor: the same number of rows (n * steps) through forward + backward, 64 rows at a time (the CPU default)
rows = n * steps
t = time.perf_counter()
done = 0
while done < rows:
    b = min(64, rows - done)
    idx = np.arange(done, done + b) % n
    x = {{k: v[idx].clone().requires_grad_(True) for k, v in inputs.items()}}
    out = wrapped(*x.values()).sum()
    torch.autograd.grad(out, list(x.values()))
    done += b
floor = time.perf_counter() - t
print(json.dumps({{"subjects": n, "n_steps": steps, "batched_seconds": round(batched, 2),
                  "per_subject_captum_seconds": round(loop, 2), "floor_seconds": round(floor, 2),
                  "speedup_vs_loop": round(loop / batched, 2), "ratio_to_floor": round(batched / floor, 3),
                  "median_relative_delta": float(relative_delta(delta, attr).median())}}))
"""
)

MEMORY = (
    SETUP
    + """
from explain import integrated_gradients
t = time.perf_counter()
for start in range(0, cohort.n_subjects, 64):
    idx = np.arange(start, min(cohort.n_subjects, start + 64))
    inputs = {{k: torch.from_numpy(v) for k, v in prep.transform(cohort, idx).items()}}
    integrated_gradients(model, inputs, n_steps={steps})
print(json.dumps({{"subjects": {n}, "seconds": round(time.perf_counter() - t, 1)}}))
"""
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    steps = 8 if args.quick else 32
    n_speed, sizes = (20, (40, 80)) if args.quick else (200, (200, 800))
    # simulation runs in its own process so the peak memory below is that of loading + IG only
    run_child(SIMULATE.format(out=str(SCRATCH / "explain_speed"), n=n_speed))
    results = {"speed": run_child(SPEED.format(out=str(SCRATCH / "explain_speed"), n=n_speed, steps=steps))}
    results["memory"] = []
    for n in sizes:
        run_child(SIMULATE.format(out=str(SCRATCH / f"explain_mem_{n}"), n=n))
        results["memory"].append(run_child(MEMORY.format(out=str(SCRATCH / f"explain_mem_{n}"), n=n, steps=steps)))
    save("explain" + ("_quick" if args.quick else ""), results)


if __name__ == "__main__":
    main()
