"""Retraining null runs (the label-permutation null of permutation importance with refitting): each null run
retrains a finished run's whole pipeline on labels permuted within fold x site, explains it with the same
integrated-gradients settings and keeps, per attribution family, the Welch statistic of every feature.
Null runs are independent jobs written under ``RUN/null/perm-<b>/``: resumable, and spread over local
processes (joblib) or a scheduler's job array (``shard``)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from migtrans import __version__
from migtrans.data import load_cohort
from migtrans.exceptions import ParameterError, RunError
from migtrans.training import RunFolder, open_run, permuted_run_labels, retrain
from migtrans.utils import discard_staging, release_staging, staging_dir, to_builtin
from migtrans.validation import check_number

STATS = "stats.npz"  # one array per family: the feature statistics of this null run, in table order
INFO = "null.json"  # permutation, settings key, timing; written last, so it marks a finished null run


def run_fingerprint(run_dir) -> str:
    """The SHA-256 of a finished run's checksum list (else of its config): null runs belong to one run."""
    import hashlib

    folder = RunFolder(Path(run_dir))
    source = folder.checksums if folder.checksums.is_file() else folder.config
    return hashlib.sha256(source.read_bytes()).hexdigest()


def null_key(
    *, n_steps=32, baseline="mean", smoothgrad_samples=0, noise_level=None, atlas="aal", random_state=0, run=None
):
    """The settings a null run must share with the explanation it serves: the run (`run_fingerprint`), the
    statistic, and the explanation's settings (null runs made otherwise are not gathered)."""
    key = {"n_steps": int(n_steps), "baseline": str(baseline), "atlas": str(atlas), "statistic": "welch_contrast"}
    if run is not None:
        key["run"] = run
    if smoothgrad_samples:  # the noise draws depend on the seed only then
        key.update(smoothgrad_samples=int(smoothgrad_samples), noise_level=noise_level, random_state=int(random_state))
    return key


def parse_permutations(text) -> list[int]:
    """``"K-L"`` (or ``"K..L"``) -> [K, ..., L]; ``"N"`` -> [1, ..., N].

    Examples
    --------
    >>> parse_permutations("3-5"), parse_permutations("4")
    ([3, 4, 5], [1, 2, 3, 4])
    """
    text = str(text).strip().replace("..", "-")
    try:
        if "-" in text:
            first, last = (int(v) for v in text.split("-", 1))
        else:
            first, last = 1, int(text)
    except ValueError:
        raise ParameterError(f"permutations: expected N or K-L (e.g. 1-99), found {text!r}") from None
    if first < 1 or last < first or last > 100_000:
        raise ParameterError(f"permutations: expected 1 <= K <= L <= 100000, found {text!r}")
    return list(range(first, last + 1))


def parse_shard(text) -> tuple[int, int]:
    """``"i/n"`` -> (i, n), 1 <= i <= n: this job takes every n-th permutation, starting with the i-th.

    Examples
    --------
    >>> parse_shard("2/3")
    (2, 3)
    """
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise ParameterError(f"shard: expected i/n (e.g. 3/10), found {text!r}") from None
    if not 1 <= i <= n:
        raise ParameterError(f"shard: expected 1 <= i <= n, found {text!r}")
    return i, n


def shard_of(permutations, shard=None) -> list[int]:
    """The permutations a shard runs: the i-th, (i + n)-th, ... of the list (all without a shard)."""
    if shard is None:
        return list(permutations)
    i, n = parse_shard(shard if isinstance(shard, str) else "/".join(str(v) for v in shard))
    return list(permutations)[i - 1 :: n]


@dataclass
class NullRuns:
    """The retraining null runs found for an explanation."""

    stats: dict  # family -> (B_r, features) statistics
    permutations: list  # which null runs, in the rows' order
    mismatched: int  # finished null runs made with other settings, left out

    @property
    def count(self) -> int:
        return len(self.permutations)


def gather_null_runs(run_dir, key: dict) -> NullRuns:
    """Every finished null run of ``run_dir`` made with the settings ``key`` (`null_key`)."""
    import zipfile

    folder = RunFolder(Path(run_dir))
    stats, found, mismatched = {}, [], 0
    if folder.null.is_dir():
        for path in sorted(folder.null.glob("perm-*")):
            info_path = path / INFO
            if not info_path.is_file():
                continue  # still running, or interrupted: not a null run yet
            try:
                info = json.loads(info_path.read_text(encoding="utf-8"))
                if not isinstance(info, dict) or path != folder.null_run(int(info["permutation"])):
                    raise ValueError(f"{INFO} does not name this null run")
                with np.load(path / STATS) as data:
                    arrays = {name: data[name] for name in data.files}
            except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
                raise RunError(f"{path}: unreadable null run ({exc}); delete it and run it again") from None
            if info.get("key") != key:
                mismatched += 1
                continue
            found.append(int(info["permutation"]))
            for family, values in arrays.items():
                stats.setdefault(family, []).append(values)
    sizes = {family: {len(v) for v in rows} for family, rows in stats.items()}
    bad = [family for family, n in sizes.items() if len(n) > 1]
    if bad:
        raise RunError(f"{folder.null}: null runs disagree on the number of {bad[0]} (made from other cohorts?)")
    return NullRuns({family: np.vstack(rows) for family, rows in stats.items()}, found, mismatched)


def run_null(
    run_dir,
    permutations,
    *,
    shard=None,
    jobs=1,
    n_steps=32,
    baseline="mean",
    smoothgrad_samples=0,
    noise_level=None,
    atlas="aal",
    batch_size=64,
    device="auto",
    random_state=0,
    progress=True,
) -> dict:
    """Run null permutations of a finished run and write each under ``RUN/null/perm-<b>/``.

    A finished null run is never redone; one that was interrupted (its staging folder left behind) is
    redone from the start. Null run ``b`` depends only on the run and ``b`` (its labels come from
    `permuted_run_labels`, its training from the run's seeds), so shards and jobs can run it anywhere, in
    any order, and together equal one unsharded run (bit for bit on the same device and thread count).

    Parameters
    ----------
    run_dir : path
        A finished MIGTrans run.
    permutations : sequence of int or str
        Which null runs (1-based), or ``"K-L"`` / ``"N"`` (`parse_permutations`).
    shard : "i/n" or (i, n), optional
        Run only every n-th of them, from the i-th (scheduler job arrays: one task per shard).
    jobs : int
        Local worker processes (joblib); torch threads are shared out between them, and CUDA devices
        assigned round robin when the device is "auto" or "cuda".
    n_steps, baseline, smoothgrad_samples, noise_level, atlas, random_state
        The explanation's settings (`explain_run`); `migtrans-explain` gathers only null runs made with its
        own.
    batch_size : int
        Subjects per IG chunk.
    device : str

    Returns
    -------
    dict with ``done`` (null runs computed now), ``kept`` (already finished) and ``seconds``.
    """
    from ._tables import atlas_regions_in_mask

    run = open_run(run_dir)
    if run.train.model != "migtrans":
        raise ParameterError(f"run_dir: {run.path} is a {run.train.model} baseline run; null runs need fold models")
    if baseline not in ("mean", "held_out_mean", "zero"):
        raise ParameterError(f"baseline: expected 'mean', 'held_out_mean' or 'zero', found {baseline!r}")
    if isinstance(permutations, str):
        permutations = parse_permutations(permutations)
    permutations = sorted(set(shard_of(permutations, shard)))
    check_number("jobs", jobs, minimum=1, integer=True)
    key = null_key(
        n_steps=n_steps,
        baseline=baseline,
        smoothgrad_samples=smoothgrad_samples,
        noise_level=noise_level,
        atlas=atlas,
        random_state=random_state,
        run=run_fingerprint(run.path),
    )
    options = dict(key=key, noise_level=noise_level, batch_size=batch_size, random_state=random_state)
    folder = RunFolder(run.path)
    kept = [b for b in permutations if (folder.null_run(b) / INFO).is_file()]
    for b in kept:  # a finished null run of other settings is not "already there"
        made = json.loads((folder.null_run(b) / INFO).read_text(encoding="utf-8")).get("key")
        if made != key:
            differ = sorted(k for k in set(key) | set(made or {}) if (made or {}).get(k) != key.get(k))
            raise ParameterError(
                f"{folder.null_run(b)}: made with other settings ({', '.join(differ)}); use the report's "
                f"settings, or move {folder.null} away to start afresh"
            )
    todo = [b for b in permutations if b not in kept]
    # before hours of retraining: the data must still be the run's, and the atlas must cover its brain mask
    run.check_inputs()
    if todo and "smri" in run.train.modalities:
        cohort = load_cohort(run.cohort_path)
        atlas_regions_in_mask(atlas, cohort.mask, cohort.affine)
    start = time.perf_counter()
    if progress and kept:
        print(f"{len(kept)} null runs already finished, kept", file=sys.stderr, flush=True)
    if jobs == 1 or len(todo) <= 1:
        cohort = load_cohort(run.cohort_path) if todo else None
        for b in todo:
            _one(run.path, b, device, options, cohort, progress)
    else:
        from joblib import Parallel, delayed

        # the cores this process may use (a scheduler's allocation, not the whole node)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = max(1, cores // jobs)
        Parallel(n_jobs=jobs, backend="loky")(
            delayed(_worker)(run.path, b, _device_for(device, i), options, threads, progress)
            for i, b in enumerate(todo)
        )
    return {"done": todo, "kept": kept, "seconds": round(time.perf_counter() - start, 1)}


def _device_for(device, i):
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return f"cuda:{i % torch.cuda.device_count()}"
    return device


_COHORTS = {}


def _worker(run_path, b, device, options, threads, progress):
    import torch

    torch.set_num_threads(threads)
    if run_path not in _COHORTS:  # a worker process serves several null runs: load the cohort once
        _COHORTS[run_path] = load_cohort(open_run(run_path).cohort_path)
    _one(run_path, b, device, options, _COHORTS[run_path], progress)


def _one(run_path, b, device, options, cohort, progress):
    """Null run ``b``: retrain on permuted labels, explain, keep each family's statistics."""
    from ._explain import _assemble, _attribute
    from ._oof import OutOfFold
    from ._tables import FamilyTest, feature_matrices

    run = open_run(run_path)
    target = RunFolder(run.path).null_run(b)
    if (target / INFO).is_file():
        return
    start = time.perf_counter()
    labels = permuted_run_labels(run, cohort, b)
    relabelled = dataclasses.replace(cohort, labels=labels.astype(np.int8))
    key = options["key"]
    stage = staging_dir(target)
    try:
        retrain(run.path, labels, stage / "run", cohort=cohort, device=device)
        oof = OutOfFold(stage / "run", device=device, cohort=relabelled)
        ig_options = dict(
            n_steps=key["n_steps"],
            internal_batch_size=None,
            smoothgrad_samples=key.get("smoothgrad_samples", 0),
            noise_level=options["noise_level"],
        )
        passes = _attribute(
            oof, key["baseline"], ig_options, "gradient", options["batch_size"], options["random_state"], False
        )
        attributions = _assemble(oof, passes, {})
        # the statistic the tables compute, with the permuted labels and the same strata
        stats = FamilyTest.of(oof, attributions).statistics(feature_matrices(oof, attributions, key["atlas"]))
        shutil.rmtree(stage / "run")
        np.savez(stage / STATS, **stats)
        info = {
            "permutation": b,
            "key": key,
            "cases_by_fold": attributions.subjects.groupby("fold")["label"].sum().to_dict(),
            "n_explained": len(attributions.subjects),
            "device": str(oof.device),
            "seconds": round(time.perf_counter() - start, 1),
            "migtrans_version": __version__,
        }
        (stage / INFO).write_text(json.dumps(to_builtin(info), indent=2) + "\n")
        try:
            os.replace(stage, target)
            release_staging(stage)
        except OSError:
            if not (target / INFO).is_file():
                raise
            discard_staging(stage)  # another job finished the same null run first: keep one
    except BaseException:
        discard_staging(stage)
        raise
    if progress:
        print(f"null run {b}: {info['seconds']:.0f} s", file=sys.stderr, flush=True)
