"""Run every benchmark script in turn (`make bench`); each writes its results to benchmarks/results/.

The figures in docs/benchmarks.md come from these results. Expect well over an hour on 2 CPU cores
(the 100-cohort null calibration alone takes ~13 minutes, the training table ~10).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["bench_cohort_io.py", "bench_training.py", "bench_explain.py", "bench_permutation.py",
           "bench_calibration.py", "bench_recovery.py"]


def main():
    extra = {"bench_calibration.py": ["--cohorts", "100"]}
    for script in SCRIPTS:
        print(f"== {script}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *extra.get(script, [])], cwd=HERE, check=True)


if __name__ == "__main__":
    main()
