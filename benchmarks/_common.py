"""Helpers shared by the benchmark scripts: a scratch folder, timing, peak memory of a child process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRATCH = HERE / "_scratch"
RESULTS = HERE / "results"


@contextmanager
def timer(label, sink):
    start = time.perf_counter()
    yield
    sink[label] = round(time.perf_counter() - start, 2)


def run_child(code: str) -> dict:
    """Run Python code in a fresh process; it must print one JSON object last.

    The child's peak resident memory (ru_maxrss, MiB) is added as ``peak_rss_mib``.
    """
    wrapper = (
        code + "\nimport resource, json as _j\nprint(_j.dumps({'peak_rss_mib': "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper], check=True, capture_output=True, text=True).stdout
    result = {}
    for line in out.strip().splitlines():
        if line.startswith("{"):
            result.update(json.loads(line))
    return result


def save(name: str, result: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, indent=2, sort_keys=True))
