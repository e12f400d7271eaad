"""Retraining null runs: labels permuted within fold x site, reproducible from the run's seed; null runs that
resume, shard and spread over processes without changing a result; the tables' p-values against them; the
`migtrans-null` command."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from explain import explain_run, gather_null_runs, null_key, retraining_p, run_fingerprint, run_null
from explain.cli import main
from migtrans.data import load_cohort
from migtrans.training import RunFolder, open_run, permuted_run_labels, run_folds

IG = dict(n_steps=4)


def _copy(run, tmp_path, name):
    """A private copy of the session's run folder (tests must not write into the shared one)."""
    return shutil.copytree(run.out_dir, tmp_path / name)


def _stats(run_dir):
    folder = RunFolder(run_dir)
    out = {}
    for path in sorted(folder.null.glob("perm-*")):
        with np.load(path / "stats.npz") as data:
            out[path.name] = {name: data[name] for name in data.files}
    return out


def _assert_same(a, b):
    assert sorted(a) == sorted(b)
    for run in a:
        assert sorted(a[run]) == sorted(b[run])
        for family in a[run]:
            np.testing.assert_array_equal(a[run][family], b[run][family])


@pytest.fixture(scope="module")
def reference(baseline_run, tmp_path_factory):
    """Null runs 1-3 of a copy of the session run, unsharded and uninterrupted."""
    folder = _copy(baseline_run, tmp_path_factory.mktemp("null"), "reference")
    run_null(folder, "1-3", device="cpu", progress=False, **IG)
    return folder


def test_null_labels_are_permuted_within_fold_and_site_from_the_run_seed(baseline_run, sim_cohort):
    run = open_run(baseline_run.out_dir)
    cohort = load_cohort(sim_cohort.toml_path)
    folds = run_folds(run, cohort)
    site = np.zeros(cohort.n_subjects, int) if cohort.site is None else pd.factorize(cohort.site)[0]
    first, again, second = (permuted_run_labels(run, cohort, b) for b in (1, 1, 2))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second) and not np.array_equal(first, cohort.labels)
    for stratum in np.unique(folds * 100 + site):  # every fold (and site within it) keeps its case count
        rows = folds * 100 + site == stratum
        assert first[rows].sum() == cohort.labels[rows].sum() == second[rows].sum()
    with pytest.raises(Exception, match="permutation"):
        permuted_run_labels(run, cohort, 0)


def test_a_null_run_reproduces_bit_for_bit(reference, baseline_run, tmp_path):
    again = _copy(baseline_run, tmp_path, "again")
    result = run_null(again, [2], device="cpu", progress=False, **IG)
    assert result["done"] == [2]
    stats = _stats(again)
    ref = _stats(reference)
    _assert_same(stats, {"perm-0002": ref["perm-0002"]})
    info = json.loads((RunFolder(again).null_run(2) / "null.json").read_text())
    assert info["permutation"] == 2 and info["key"] == null_key(**IG, run=run_fingerprint(again))
    # every family of the run is there, one statistic per feature, and the models were not kept
    assert set(ref["perm-0001"]) == {"snps", "loci", "connections", "nodes", "regions"}
    assert not any(RunFolder(again).null_run(2).rglob("*.pt"))


def test_shards_together_equal_one_unsharded_run(reference, baseline_run, tmp_path):
    sharded = _copy(baseline_run, tmp_path, "sharded")
    done = [run_null(sharded, "1-3", shard=f"{i}/3", device="cpu", progress=False, **IG)["done"] for i in (1, 2, 3)]
    assert done == [[1], [2], [3]]
    _assert_same(_stats(sharded), _stats(reference))


def test_an_interrupted_null_run_is_redone_and_equals_an_uninterrupted_one(
    reference, baseline_run, tmp_path, monkeypatch
):
    import explain._tables as tables

    resumed = _copy(baseline_run, tmp_path, "resumed")
    real, calls = tables.feature_matrices, []

    def interrupt_the_second(*args, **kwargs):  # after the second null run's training and IG
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(tables, "feature_matrices", interrupt_the_second)
    with pytest.raises(KeyboardInterrupt):
        run_null(resumed, "1-3", device="cpu", progress=False, **IG)
    folder = RunFolder(resumed)
    assert sorted(p.name for p in folder.null.iterdir()) == ["perm-0001"]  # no half-written null run left
    monkeypatch.setattr(tables, "feature_matrices", real)
    result = run_null(resumed, "1-3", device="cpu", progress=False, **IG)
    assert result["kept"] == [1] and result["done"] == [2, 3]
    _assert_same(_stats(resumed), _stats(reference))


@pytest.mark.slow
def test_local_jobs_give_the_same_null_runs(reference, baseline_run, tmp_path):
    parallel = _copy(baseline_run, tmp_path, "parallel")
    run_null(parallel, "1-3", jobs=2, device="cpu", progress=False, **IG)
    a, b = _stats(parallel), _stats(reference)
    assert sorted(a) == sorted(b)
    for run in a:  # other processes, other thread counts: equal up to float rounding
        for family in a[run]:
            np.testing.assert_allclose(a[run][family], b[run][family], rtol=1e-4, atol=1e-6)


def test_tables_test_against_the_null_runs_found_with_the_same_settings(reference, tmp_path):
    key = null_key(**IG, run=run_fingerprint(reference))
    found = gather_null_runs(reference, key)
    assert found.count == 3 and found.permutations == [1, 2, 3] and found.mismatched == 0
    # other explanation settings, or another run's null runs, are not gathered
    assert gather_null_runs(reference, null_key(n_steps=8, run=key["run"])).mismatched == 3
    assert gather_null_runs(reference, null_key(**IG, run="another run")).mismatched == 3
    att = explain_run(
        reference, out_dir=False, faithfulness=False, n_permutations=39, device="cpu", null="retraining", **IG
    )
    assert att.settings["null"] == "retraining" and att.settings["n_null_runs"] == 3
    assert "global null" in att.settings["null_tested"]
    nodes = att.tables["nodes"]
    # in file order, then p against the three null runs' statistics of the same nodes
    order = {name: i for i, name in enumerate(load_cohort(open_run(reference).cohort_path).nodes["name"])}
    nodes = nodes.iloc[np.argsort(nodes["node"].map(order).to_numpy())]
    p, p_fwer = retraining_p(nodes["stat"].to_numpy(), found.stats["nodes"])
    np.testing.assert_array_equal(nodes["p_perm"], p)
    np.testing.assert_array_equal(nodes["p_fwer"], p_fwer)
    assert set(np.round(nodes["p_perm"] * 4).astype(int)) <= {1, 2, 3, 4}
    # "auto" needs 19 null runs before it prefers them: with 3 it tests each fold with its model fixed
    auto = explain_run(reference, out_dir=False, faithfulness=False, n_permutations=39, device="cpu", **IG)
    assert auto.settings["null"] == "per_fold" and auto.settings["n_null_runs"] == 3


def test_migtrans_null_command(baseline_run, tmp_path, capsys):
    folder = _copy(baseline_run, tmp_path, "cli")
    for bad, word in [
        (["--permutations", "5-2"], "permutations"),
        (["--permutations", "1-3", "--shard", "4/3"], "shard"),
        (["--permutations", "1-3", "--jobs", "0"], "jobs"),
        (["--permutations", "1-3", "--atlas", str(tmp_path / "nowhere.nii")], "atlas"),
    ]:
        assert main([str(folder), *bad, "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and word in err[0]
    assert not RunFolder(folder).null.exists()
    assert main([str(folder), "--permutations", "1", "--ig-steps", "4", "--device", "cpu", "--quiet"]) == 0
    assert "1 null runs written" in capsys.readouterr().out
    assert (RunFolder(folder).null_run(1) / "null.json").is_file()
    assert main([str(tmp_path / "missing"), "--permutations", "1"]) == 2


def test_too_few_permutations_for_the_per_fold_test_is_refused_before_any_ig(
    baseline_run, tmp_path, capsys, monkeypatch
):
    import explain._explain as explain_module
    from reports.cli import main as explain_main

    def no_ig(*args, **kwargs):
        raise AssertionError("IG started before the options were checked")

    monkeypatch.setattr(explain_module, "_attribute", no_ig)
    out = tmp_path / "report"
    status = explain_main([str(baseline_run.out_dir), "--out", str(out), "--permutations", "20", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert "permutations" in err[0] and "at least 39" in err[0] and "2 folds" in err[0]
    assert not out.exists()
    status = explain_main([str(baseline_run.out_dir), "--out", str(out), "--null", "retraining", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "no matching null runs" in err[0] and "migtrans-null" in err[0]


def test_null_runs_refuse_other_settings_damaged_folders_and_changed_cohorts(reference, baseline_run, tmp_path):
    from migtrans.exceptions import MigtransError

    folder = _copy(baseline_run, tmp_path, "guarded")
    run_null(folder, [1], device="cpu", progress=False, **IG)
    # a finished null run of other settings is not "already there": one line naming it and what differs
    with pytest.raises(MigtransError, match=r"perm-0001: made with other settings \(n_steps\)"):
        run_null(folder, [1, 2], n_steps=6, device="cpu", progress=False)
    # a null run copied under another number is refused when gathered, not counted twice
    shutil.copytree(RunFolder(folder).null_run(1), RunFolder(folder).null_run(7))
    with pytest.raises(MigtransError, match="perm-0007: unreadable null run"):
        gather_null_runs(folder, null_key(**IG, run=run_fingerprint(folder)))
    shutil.rmtree(RunFolder(folder).null_run(7))
    (RunFolder(folder).null_run(1) / "stats.npz").write_bytes(b"not a zip")
    with pytest.raises(MigtransError, match="perm-0001: unreadable null run"):
        gather_null_runs(folder, null_key(**IG, run=run_fingerprint(folder)))


def test_a_run_from_before_whole_fold_fitting_is_refused(baseline_run, sim_cohort, tmp_path):
    from migtrans.exceptions import MigtransError
    from migtrans.training import retrain

    folder = _copy(baseline_run, tmp_path, "old")
    config = (folder / "config.toml").read_text()
    (folder / "config.toml").write_text(config.replace("validation_split = false\n", ""))
    # as a run from before checksums, whose recorded settings say the same (the edit itself is not the error)
    (folder / "run.sha256").unlink()
    resolved = json.loads((folder / ".resolved.json").read_text())
    del resolved["run"]["validation_split"]
    (folder / ".resolved.json").write_text(json.dumps(resolved, sort_keys=True))
    cohort = load_cohort(sim_cohort.toml_path)
    with pytest.raises(MigtransError, match="validation split"):
        retrain(folder, cohort.labels, tmp_path / "null", cohort=cohort)
    assert not (tmp_path / "null").exists()
