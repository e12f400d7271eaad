"""Benchmark the simulator and the loader (issue 2 targets).

- simulate 1,000 subjects x 20,000 SNPs at 4 mm: target < 60 s
- load_cohort of that cohort: target < 20 s (cold sMRI cache)
- peak memory of load_cohort on 500 subjects at 1.5 mm: target < 2 GB (raw volumes > 4 GB)

Each measurement runs in a fresh process so peak RSS is that step's own.
Run: python benchmarks/bench_cohort_io.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil

from _common import SCRATCH, run_child, save

SIMULATE = """
import time, json
from migtrans.simulate import simulate_cohort
t = time.perf_counter()
sim = simulate_cohort({out!r}, n_subjects={n}, n_snps={m}, seed=1, resolution={res}, overwrite=True,
                      keep_volumes=False)
print(json.dumps({{'seconds': round(time.perf_counter() - t, 2)}}))
"""

LOAD = """
import time, json, os
os.environ['MIGTRANS_CACHE_DIR'] = {cache!r}
from migtrans import load_cohort
t = time.perf_counter()
c = load_cohort({toml!r})
print(json.dumps({{'seconds': round(time.perf_counter() - t, 2), 'n_subjects': int(c.n_subjects),
                  'n_voxels': int(c.voxels.shape[1]), 'grid': list(c.mask.shape),
                  'raw_volume_gib': round(c.n_subjects * c.mask.size * 4 / 2**30, 2)}}))
"""


def measure(label, n, m, res, results):
    out = str(SCRATCH / label)
    cache = str(SCRATCH / f"{label}-cache")
    shutil.rmtree(cache, ignore_errors=True)
    sim = run_child(SIMULATE.format(out=out, n=n, m=m, res=res))
    load = run_child(LOAD.format(cache=cache, toml=os.path.join(out, "cohort.toml")))
    results[label] = {
        "subjects": n,
        "snps": m,
        "resolution_mm": res,
        "simulate_seconds": sim["seconds"],
        "simulate_peak_rss_mib": round(sim["peak_rss_mib"]),
        "load_seconds": load["seconds"],
        "load_peak_rss_mib": round(load["peak_rss_mib"]),
        "grid": load["grid"],
        "voxels_in_mask": load["n_voxels"],
        "raw_volumes_gib": load["raw_volume_gib"],
    }
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script runs")
    args = parser.parse_args()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    results = {}
    if args.quick:
        measure("quick", 60, 1000, 6.0, results)
    else:
        measure("sim1000_snp20000_4mm", 1000, 20000, 4.0, results)
        measure("sim500_snp1000_1.5mm", 500, 1000, 1.5, results)
    save("cohort_io" + ("_quick" if args.quick else ""), results)


if __name__ == "__main__":
    main()
