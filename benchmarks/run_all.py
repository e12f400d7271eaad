"""Run every benchmark script in turn (`make bench`); each writes its results to benchmarks/results/.

The figures in docs/benchmarks.md come from these results. Expect several hours on 2 CPU cores (the
1,000-subject training table alone takes ~15 minutes; the calibration with 19 retraining null runs per
cohort ~1.6 hours per 100 cohorts on one core, global and partial null alike; the power benchmark ~20
minutes; the recoveries at 600, 1,000 and 2,000 subjects roughly 8, 13 and 35). `bench_partial_null.py`
reads a report folder (e.g. the demo's) and is run by hand.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ["bench_cohort_io.py"],
    ["bench_training.py"],
    ["bench_training.py", "--subjects", "1000"],
    ["bench_explain.py"],
    ["bench_permutation.py"],
    ["bench_calibration.py", "--cohorts", "100", "--scenario", "null", "--null-runs", "19"],
    ["bench_calibration.py", "--cohorts", "100", "--scenario", "partial", "--null-runs", "19"],
    ["bench_null_power.py", "--cohorts", "3", "--subjects", "400"],
    ["bench_coupling.py"],
    ["bench_recovery.py"],
    ["bench_recovery.py", "--subjects", "1000"],
    ["bench_recovery.py", "--subjects", "2000"],
]


def main():
    for script, *args in RUNS:
        print(f"== {script} {' '.join(args)}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *args], cwd=HERE, check=True)


if __name__ == "__main__":
    main()
