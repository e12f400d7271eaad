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


# Started before the measured code: samples the child's anonymous resident memory (RssAnon) every 0.2 s.
# ru_maxrss also counts the pages of memory-mapped files (the voxel cache, attributions summed on disk),
# which the kernel can write out and drop; the anonymous memory is what must fit in RAM.
_SAMPLER = """
import threading as _threading
import time as _time

def _anon_mib():
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")

_peak_anon = [_anon_mib()]

def _sample():
    while True:
        _peak_anon[0] = max(_peak_anon[0], _anon_mib())
        _time.sleep(0.2)

_threading.Thread(target=_sample, daemon=True).start()
"""

_REPORT = """
import json as _json
import resource as _resource
print(_json.dumps({
    "peak_rss_mib": _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss / 1024,
    "peak_anon_mib": round(max(_peak_anon[0], _anon_mib()), 1),
}))
"""


def run_child(code: str) -> dict:
    """Run Python code in a fresh process; it must print one JSON object last.

    The child's peak resident memory (ru_maxrss, MiB: mapped file pages included) is added as
    ``peak_rss_mib``, and the peak of its anonymous resident memory (RssAnon, sampled every 0.2 s, so a
    spike shorter than that may be missed) as ``peak_anon_mib``.
    """
    wrapper = _SAMPLER + code + _REPORT
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
