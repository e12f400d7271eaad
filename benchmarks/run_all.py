"""Run every benchmark script in turn (`make bench`); each writes its results to benchmarks/results/.

The figures in docs/benchmarks.md come from these results. Expect well over an hour on 2 CPU cores
(the 1,000-subject training table alone takes ~15 minutes, the 200-cohort null calibration ~10, the
recoveries at 600, 1,000 and 2,000 subjects roughly 8, 13 and 35).
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
    ["bench_calibration.py", "--cohorts", "200"],
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
