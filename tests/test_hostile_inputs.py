"""The hostile-input review (issue 14), one test per finding, through the CLIs in-process: exit status 2, one
line on stderr naming the culprit, no traceback, nothing written, and every input still there byte for byte."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from migtrans.cli import main as migtrans_main
from reports.cli import main as explain_main

from conftest import TINY_MODEL, files_under

FAST = ["--permutations", "39", "--ig-steps", "2", "--top-k", "3", "--device", "cpu", "--no-faithfulness", "--quiet"]


def snapshot(*folders) -> dict:
    """path -> SHA-256 of every file under ``folders``."""
    out = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def refused(capsys, status, *culprits, warned=False) -> str:
    """Assert a one-line refusal naming every culprit (after one-line warnings, when ``warned``); return it."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err
    assert "Traceback" not in err
    if warned:
        assert all(": warning: " in line for line in lines[:-1]), err
        lines = lines[-1:]
    assert len(lines) == 1, err
    assert ": error: " in lines[0], lines[0]
    for culprit in culprits:
        assert culprit in lines[0], (culprit, lines[0])
    return lines[0]


def info(toml):
    return migtrans_main(["info", str(toml)])


def edit(path, old, new, count=1):
    path = Path(path)
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, count))


@pytest.fixture
def pair(sim_cohort, tmp_path):
    """A cohort of our own (a copy of `sim_cohort`) and a tiny run trained on it: (cohort toml, run folder)."""
    from migtrans.training import TrainConfig, train

    cohort = tmp_path / "cohort"
    shutil.copytree(sim_cohort.out_dir, cohort)
    run = tmp_path / "run"
    train(cohort / "cohort.toml", run, TrainConfig(n_folds=2, epochs=1, batch_size=16), TINY_MODEL, progress=False)
    return cohort / "cohort.toml", run


@pytest.fixture
def run_copy(baseline_run, tmp_path):
    """A copy of the shared tiny run (its cohort stays where it is) that a test may damage."""
    target = tmp_path / "damaged"
    shutil.copytree(baseline_run.out_dir, target)
    return target


@pytest.fixture
def legacy_run_copy(run_copy):
    """The same, without ``run.sha256`` (as runs from before it): every check behind the checksums must hold."""
    (run_copy / "run.sha256").unlink()
    return run_copy


@pytest.fixture
def legacy_set_run_copy(explanation_set_run, tmp_path):
    """A copy of the shared run with an explanation set, without ``run.sha256``."""
    target = tmp_path / "damaged-set"
    shutil.copytree(explanation_set_run.out_dir, target)
    (target / "run.sha256").unlink()
    return target


# --------------------------------------------------------------------------------------------- data loss
@pytest.mark.parametrize("where", ["the cohort folder", "its parent", "inside it"])
def test_1_train_never_writes_over_its_cohort(sim_cohort, tmp_path, capsys, where):
    cohort = tmp_path / "parent" / "cohort"
    shutil.copytree(sim_cohort.out_dir, cohort)
    out = {"the cohort folder": cohort, "its parent": cohort.parent, "inside it": cohort / "run"}[where]
    before = snapshot(cohort.parent)
    status = migtrans_main(["train", str(cohort / "cohort.toml"), "--out", str(out), "--overwrite", "--quiet"])
    refused(capsys, status, "--out", str(cohort))
    assert snapshot(cohort.parent) == before


def test_1_an_input_file_named_outside_the_cohort_folder_is_protected_too(sim_cohort, tmp_path, capsys):
    data = tmp_path / "data"
    cohort = tmp_path / "cohort"
    shutil.copytree(sim_cohort.out_dir, cohort)
    data.mkdir()
    for suffix in (".bed", ".bim", ".fam"):
        shutil.move(cohort / f"genotypes{suffix}", data / f"genotypes{suffix}")
    edit(cohort / "cohort.toml", 'bfile = "genotypes"', f'bfile = "{data / "genotypes"}"')
    before = snapshot(data)
    status = migtrans_main(["train", str(cohort / "cohort.toml"), "--out", str(data), "--overwrite"])
    refused(capsys, status, "--out", "genotype file")
    assert snapshot(data) == before


@pytest.mark.parametrize("target", ["the run", "the cohort", "the run's parent"])
def test_2_3_explain_never_writes_over_its_run_or_cohort(pair, capsys, target):
    toml, run = pair
    out = {"the run": run, "the cohort": toml.parent, "the run's parent": run.parent}[target]
    before = snapshot(run.parent)
    status = explain_main([str(run), "--out", str(out), "--overwrite", *FAST])
    refused(capsys, status, "--out")
    assert snapshot(run.parent) == before


def test_overwrite_replaces_only_a_folder_of_the_same_kind(pair, run_copy, tmp_path, capsys):
    toml, run = pair
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("years of work")
    for out, culprit in ((mine, "not a migtrans report folder"), (run_copy, "is a migtrans run folder")):
        before = snapshot(out)
        status = explain_main([str(run), "--out", str(out), "--overwrite", *FAST])
        refused(capsys, status, "--overwrite", culprit)
        assert snapshot(out) == before
    status = migtrans_main(["train", str(toml), "--out", str(mine), "--overwrite", "--quiet"])
    refused(capsys, status, "not a migtrans run folder")
    status = migtrans_main(["simulate", str(mine), "--subjects", "20", "--snps", "100", "--overwrite"])
    refused(capsys, status, "not a migtrans cohort folder")
    assert (mine / "chapter1.tex").read_text() == "years of work"


# ---------------------------------------------------------------------------------------------- security
@pytest.mark.parametrize(
    "bad_id, problem",
    [
        ("../../secret/evil", "path separator"),
        ("..", "relative folder"),
        ("a\\b", "path separator"),
        ("s\x01x", "control character"),
    ],
)
def test_4_subject_ids_must_be_path_safe(tiny_cohort, tmp_path, capsys, bad_id, problem):
    toml, _ = tiny_cohort
    secret = tmp_path / "secret"
    secret.mkdir()
    shutil.copy(toml.parent / "smri" / "s00.nii.gz", secret / "evil.nii.gz")
    edit(toml.parent / "phenotypes.tsv", "\ns00\t", f"\n{bad_id}\t")
    refused(capsys, info(toml), "phenotypes.tsv", problem, "subject_id")


def test_5_changed_inputs_are_refused_or_warned(pair, tmp_path, capsys):
    toml, run = pair
    phenotypes = toml.parent / "phenotypes.tsv"
    # flip the labels of one fold's held-out subjects: a silent change of the question
    held = json.loads((run / "folds/1/fold.json").read_text())["test_subjects"]
    lines = phenotypes.read_text().splitlines()
    flipped = [
        re.sub(r"\t(SZ|HC)\t", lambda m: "\tHC\t" if m.group(1) == "SZ" else "\tSZ\t", line)
        if line.split("\t")[0] in held
        else line
        for line in lines
    ]
    phenotypes.write_text("\n".join(flipped) + "\n")
    out = tmp_path / "report"
    status = explain_main([str(run), "--out", str(out), *FAST])
    refused(capsys, status, "phenotypes.tsv", "changed since the run was trained", "--allow-changed-inputs")
    assert not out.exists()

    np.save(toml.parent / "fnc.npy", np.load(toml.parent / "fnc.npy") * 1.01)
    status = explain_main([str(run), "--out", str(out), *FAST])
    line = refused(capsys, status, "changed since the run was trained")
    assert "1 more" in line

    status = explain_main([str(run), "--out", str(out), *FAST, "--allow-changed-inputs"])
    err = capsys.readouterr().err
    assert status == 0, err
    warned = [line for line in err.splitlines() if "warning" in line]
    assert any("phenotypes.tsv" in w and "changed" in w for w in warned)
    assert any("fnc.npy" in w for w in warned)
    assert "changed since the run was trained" in (out / "report.html").read_text()


def test_6_the_smri_cache_is_private_and_keyed_by_content(tiny_cohort, tmp_path, monkeypatch, capsys):
    import nibabel as nib

    from migtrans.data import load_cohort
    from migtrans.data._smri import default_cache_dir

    monkeypatch.delenv("MIGTRANS_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "migtrans"  # not the shared temp dir
    toml, arrays = tiny_cohort
    first = np.array(load_cohort(toml).voxels)
    cache = default_cache_dir()
    assert stat.S_IMODE(cache.stat().st_mode) & 0o077 == 0
    for path in cache.iterdir():  # voxel files only, named by content: nothing lists the subjects
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
        assert re.fullmatch(r"voxels-[0-9a-f]{32}\.f32", path.name), path.name

    # rewrite one image with other values, same size, and put its time stamps back
    image = toml.parent / "smri" / "s03.nii.gz"
    times = image.stat()
    volume = arrays["volumes"][3][::-1].copy()
    nib.save(nib.Nifti1Image(volume, arrays["affine"]), image)
    os.utime(image, ns=(times.st_atime_ns, times.st_mtime_ns))
    second = np.array(load_cohort(toml).voxels)
    assert not np.array_equal(first[3], second[3])
    assert np.array_equal(first[2], second[2])

    cache.chmod(0o777)
    refused(capsys, info(toml), "writable by other users", str(cache))
    cache.chmod(0o700)
    if os.geteuid() == 0:
        os.chown(cache, 65534, 65534)
        refused(capsys, info(toml), "belongs to another user")


# ---------------------------------------------------------------------------- tracebacks instead of one line
@pytest.mark.parametrize(
    "template, culprit",
    [
        ("smri/{subject_id}_{session}.nii.gz", "{session}"),
        ("smri/{}.nii.gz", "placeholder"),
        ("smri/{subject_id:>5}.nii.gz", "{subject_id:>5}"),
        ("smri/{subject_id}}.nii.gz", "malformed"),
    ],
)
def test_7_template_placeholders_are_checked(tiny_cohort, capsys, template, culprit):
    toml, _ = tiny_cohort
    edit(toml, 'template = "smri/{subject_id}.nii.gz"', f'template = "{template}"')
    refused(capsys, info(toml), "cohort.toml", "smri.template", culprit)


def test_7_literal_braces_are_allowed(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    (toml.parent / "smri").rename(toml.parent / "smri{v1}")
    edit(toml, 'template = "smri/{subject_id}.nii.gz"', 'template = "smri{{v1}}/{subject_id}.nii.gz"')
    assert info(toml) == 0, capsys.readouterr().err


def test_8_overlong_subject_ids_and_file_names(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    phenotypes = toml.parent / "phenotypes.tsv"
    original = phenotypes.read_text()
    edit(phenotypes, "\ns00\t", "\n" + "s" * 300 + "\t")
    refused(capsys, info(toml), "phenotypes.tsv", "300 characters long")
    phenotypes.write_text(original)
    long_id = "s" * 120
    edit(phenotypes, "\ns00\t", f"\n{long_id}\t")
    edit(toml, 'template = "smri/{subject_id}.nii.gz"', 'template = "smri/{subject_id}_' + "x" * 140 + '.nii.gz"')
    refused(capsys, info(toml), "longer than 255 bytes", long_id[:20])


@pytest.mark.parametrize(
    "option, value",
    [
        ("--lr", "inf"),
        ("--lr", "nan"),
        ("--l2", "nan"),
        ("--l2", "inf"),
        ("--read-sparsity", "nan"),
        ("--explain-fraction", "inf"),
        ("--ld-r2", "nan"),
        ("--seed", "-1"),
        ("--seed", "1099511627776"),
        ("--device", "mps"),
        ("--device", "cuda:x"),
        ("--epochs", "0"),
    ],
)
def test_9_11_12_train_options_are_checked_before_anything_is_written(sim_cohort, tmp_path, capsys, option, value):
    out = tmp_path / "run"
    status = migtrans_main(["train", str(sim_cohort.toml_path), "--out", str(out), option, value, "--quiet"])
    refused(capsys, status, option.lstrip("-").replace("-", "_"), value if value not in ("nan", "inf") else "")
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "option, value",
    [
        ("--seed", "-1"),
        ("--seed", "1099511627776"),
        ("--device", "mps"),
        ("--permutations", "0"),
        ("--ig-steps", "100000000"),
        ("--top-k", "0"),
    ],
)
def test_11_12_explain_options_are_checked(baseline_run, tmp_path, capsys, option, value):
    out = tmp_path / "report"
    status = explain_main([str(baseline_run.out_dir), "--out", str(out), *FAST, option, value])
    refused(capsys, status, option.lstrip("-").replace("-", "_"), value)
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "option, value",
    [
        ("--seed", "-1"),
        ("--seed", "4294967296"),
        ("--resolution", "nan"),
        ("--resolution", "0"),
        ("--sites", "50"),
        ("--subjects", "0"),
    ],
)
def test_11_simulate_options_are_checked(tmp_path, capsys, option, value):
    out = tmp_path / "c"
    status = migtrans_main(["simulate", str(out), "--subjects", "40", "--snps", "100", option, value])
    refused(capsys, status, option)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value, found", [(1e39, "beyond float32"), (np.inf, "infinite")])
def test_10_fnc_values_beyond_float32_are_refused(tiny_cohort, capsys, value, found):
    toml, arrays = tiny_cohort
    fnc = arrays["fnc"].astype(np.float64)
    fnc[4, 1, 2] = fnc[4, 2, 1] = value
    np.save(toml.parent / "fnc.npy", fnc)
    refused(capsys, info(toml), "fnc.npy", "'s04'", found)


def test_10_smri_values_beyond_float32_are_refused(tiny_cohort, capsys):
    import nibabel as nib

    toml, arrays = tiny_cohort
    volume = arrays["volumes"][5].astype(np.float64)
    volume[2, 2, 2] = 1e39
    nib.save(nib.Nifti1Image(volume, arrays["affine"]), toml.parent / "smri" / "s05.nii.gz")
    refused(capsys, info(toml), "s05.nii.gz", "infinite")


def test_13_compare_out_is_checked(baseline_run, tmp_path, capsys):
    run = str(baseline_run.out_dir)
    before = snapshot(baseline_run.out_dir)
    for out, culprit in (
        (tmp_path / "missing" / "x.csv", "does not exist"),
        (tmp_path, "found the folder"),
        (baseline_run.out_dir / "metrics.csv", "run folder"),
    ):
        status = migtrans_main(["compare", run, "--out", str(out)])
        refused(capsys, status, "--out", culprit)
    assert snapshot(baseline_run.out_dir) == before and list(tmp_path.iterdir()) == []


def _pickle_file(path):
    import pickle

    path.write_bytes(pickle.dumps({"snp_mean": np.zeros(3)}))


def _object_npz(path):
    with open(path, "wb") as handle:
        np.savez(handle, modalities=np.array(["snp"], dtype=object), n_imputed_train=np.array(0))


DAMAGE = {
    "preprocess.npz is a pickle": (
        lambda run: _pickle_file(run / "folds/1/preprocess.npz"),
        "preprocess.npz",
        "refused to load",
    ),
    "preprocess.npz holds an object array": (
        lambda run: _object_npz(run / "folds/1/preprocess.npz"),
        "preprocess.npz",
        "refused to load",
    ),
    "preprocess.npz deleted": (lambda run: (run / "folds/2/preprocess.npz").unlink(), "preprocess.npz", "missing"),
    "fold.json not JSON": (
        lambda run: (run / "folds/1/fold.json").write_text("{not json"),
        "fold.json",
        "not valid JSON",
    ),
    "fold.json a list": (lambda run: (run / "folds/1/fold.json").write_text("[1, 2]"), "fold.json", "expected"),
    "config.toml not TOML": (lambda run: (run / "config.toml").write_text("[train\n"), "config.toml", "not valid TOML"),
    "train.modalities edited": (
        lambda run: edit(run / "config.toml", 'modalities = ["snp", "fnc", "smri"]', 'modalities = ["snp"]'),
        "config.toml",
        "modalities",
    ),
    "unknown training option": (
        lambda run: edit(run / "config.toml", "[train]\n", "[train]\nturbo = true\n"),
        "config.toml",
        "turbo",
    ),
    "unknown subject in fold.json": (
        lambda run: edit(run / "folds/1/fold.json", '"test_subjects": [\n    "', '"test_subjects": [\n    "nobody", "'),
        "nobody",
        "not in the cohort",
    ),
    "model.pt deleted": (lambda run: (run / "folds/2/model.pt").unlink(), "model.pt", "not found"),
    "metrics.csv without its mean row": (
        lambda run: edit(run / "metrics.csv", "\nmean,", "\nmedian,"),
        "metrics.csv",
        "'mean'",
    ),
    "history.csv not a table": (
        lambda run: (run / "folds/1/history.csv").write_bytes(b"\xff\xfe\x00garbage"),
        "history.csv",
        "not a readable CSV",
    ),
    ".resolved.json edited": (
        lambda run: (run / ".resolved.json").write_text('{"train": {}}'),
        "config.toml",
        "differs from the settings",
    ),
    "manifest.json not JSON": (
        lambda run: (run / "manifest.json").write_text("nope"),
        "manifest.json",
        "not valid JSON",
    ),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_14_a_damaged_run_folder_is_refused_in_one_line(legacy_run_copy, tmp_path, capsys, case):
    damage, *culprits = DAMAGE[case]
    damage(legacy_run_copy)
    out = tmp_path / "report"
    status = explain_main([str(legacy_run_copy), "--out", str(out), *FAST])
    refused(capsys, status, *culprits)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["damaged"]


@pytest.mark.parametrize("case", [c for c in DAMAGE if "deleted" not in c and "TOML" not in c])
def test_14_run_sha256_catches_any_edit_after_training(run_copy, tmp_path, capsys, case):
    damage, culprit, _ = DAMAGE[case]
    damage(run_copy)
    out = tmp_path / "report"
    status = explain_main([str(run_copy), "--out", str(out), *FAST])
    line = refused(capsys, status)
    assert "changed after training" in line or culprit in line, line
    assert not out.exists()


def _edit_fold(run, k, change):
    path = run / "folds" / str(k) / "fold.json"
    info = json.loads(path.read_text())
    change(info)
    path.write_text(json.dumps(info))


FOLD_EDITS = {
    "a training subject also explained": (
        lambda info: info["explanation_subjects"].append(info["train_subjects"][0]),
        "is in both",
    ),
    "a test subject listed twice": (lambda info: info["test_subjects"].append(info["test_subjects"][0]), "twice"),
    "explanation set emptied": (lambda info: info.update(explanation_subjects=[]), "explain_fraction"),
}


@pytest.mark.parametrize("case", list(FOLD_EDITS))
def test_14_fold_lists_are_checked_even_without_checksums(legacy_set_run_copy, tmp_path, capsys, case):
    change, culprit = FOLD_EDITS[case]
    for k in (1, 2):
        _edit_fold(legacy_set_run_copy, k, change)
    status = explain_main([str(legacy_set_run_copy), "--out", str(tmp_path / "report"), *FAST])
    refused(capsys, status, "fold.json" if case != "explanation set emptied" else "config.toml", culprit)


def test_14_an_empty_manifest_does_not_turn_the_input_check_off(legacy_run_copy, tmp_path, capsys):
    manifest = json.loads((legacy_run_copy / "manifest.json").read_text())
    manifest["inputs"] = {}
    (legacy_run_copy / "manifest.json").write_text(json.dumps(manifest))
    status = explain_main([str(legacy_run_copy), "--out", str(tmp_path / "report"), *FAST])
    refused(capsys, status, "manifest.json", "inputs")


def test_14_compare_refuses_a_damaged_run_in_one_line(legacy_run_copy, capsys):
    run_copy = legacy_run_copy
    edit(run_copy / "metrics.csv", "\nsd,", "\nspread,")
    refused(capsys, migtrans_main(["compare", str(run_copy)]), "metrics.csv", "'sd'")


def test_a_header_naming_a_column_twice_is_refused(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    edit(
        toml.parent / "phenotypes.tsv", "subject_id\tdiagnosis\tage\tsex\tsite", "subject_id\tdiagnosis\tage\tsex\tage"
    )
    refused(capsys, info(toml), "phenotypes.tsv", "'age' twice")


def test_15_a_subject_file_removed_after_training(pair, tmp_path, capsys):
    toml, run = pair
    held = json.loads((run / "folds/1/fold.json").read_text())["test_subjects"][0]
    (toml.parent / "smri" / f"{held}.nii.gz").unlink()
    out = tmp_path / "report"
    status = explain_main([str(run), "--out", str(out), *FAST])
    refused(capsys, status, f"{held}.nii.gz", "missing")
    status = explain_main([str(run), "--out", str(out), *FAST, "--allow-changed-inputs"])
    line = refused(capsys, status, repr(held), "not in the cohort any more", "no sMRI data", warned=True)
    assert "fold.json" in line and not out.exists()


# ---------------------------------------------------------------------------------- silent wrong results
def _set_field(phenotypes, subject, column, value):
    lines = phenotypes.read_text().splitlines()
    header = lines[0].split("\t")
    for i, line in enumerate(lines):
        fields = line.split("\t")
        if fields[0] == subject:
            fields[header.index(column)] = value
            lines[i] = "\t".join(fields)
    phenotypes.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "case",
    [
        "n/a age",
        "typo in age",
        "infinite age",
        "constant covariate",
        "label as covariate",
        "id as covariate",
        "site with one subject",
        "site of cases only",
        "collinear covariates",
    ],
)
def test_16_covariates_the_association_cannot_use(tiny_cohort, capsys, case):
    toml, arrays = tiny_cohort
    phenotypes = toml.parent / "phenotypes.tsv"
    ids, labels = arrays["ids"], arrays["labels"]
    if case == "n/a age":
        _set_field(phenotypes, "s03", "age", "n/a")
        culprits = ["'s03'", "'age'", "missing"]
    elif case == "typo in age":
        _set_field(phenotypes, "s03", "age", "3O")
        culprits = ["'s03'", "'age'", "'3O' is not a number"]
    elif case == "infinite age":
        _set_field(phenotypes, "s07", "age", "inf")
        culprits = ["'s07'", "'age'", "infinite"]
    elif case == "constant covariate":
        for s in ids:
            _set_field(phenotypes, s, "sex", "F")
        culprits = ["'sex'", "same value"]
    elif case in ("label as covariate", "id as covariate"):
        column = "diagnosis" if case.startswith("label") else "subject_id"
        edit(toml, 'covariates = ["age", "sex", "site"]', f'covariates = ["age", "{column}"]')
        culprits = ["cohort.toml", column]
    elif case == "site with one subject":
        _set_field(phenotypes, "s05", "site", "site9")
        culprits = ["'site'", "'site9'", "single subject", "'s05'"]
    elif case == "site of cases only":
        for s in [s for s, label in zip(ids, labels) if label == "SZ"][:3]:
            _set_field(phenotypes, s, "site", "siteZ")
        culprits = ["'site'", "'siteZ'", "only 'SZ'"]
    else:
        lines = phenotypes.read_text().splitlines()
        lines = [lines[0] + "\tage_months"] + [f"{line}\t{12 * int(line.split(chr(9))[2])}" for line in lines[1:]]
        phenotypes.write_text("\n".join(lines) + "\n")
        edit(toml, 'covariates = ["age", "sex", "site"]', 'covariates = ["age", "sex", "age_months"]')
        culprits = ["'age_months'", "linear combination"]
    refused(capsys, info(toml), *culprits)


def test_16_a_one_class_site_that_is_not_a_covariate_is_a_warning(tiny_cohort, capsys):
    toml, arrays = tiny_cohort
    phenotypes = toml.parent / "phenotypes.tsv"
    for s in [s for s, label in zip(arrays["ids"], arrays["labels"]) if label == "SZ"][:3]:
        _set_field(phenotypes, s, "site", "siteZ")
    edit(toml, 'covariates = ["age", "sex", "site"]', 'covariates = ["age", "sex"]')
    assert info(toml) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "'siteZ'" in err and "permutations" in err and len(err.strip().splitlines()) == 1


def test_16_the_association_never_returns_all_nan_silently():
    import pandas as pd

    from explain import logistic_association
    from migtrans import ParameterError

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 30)
    g = rng.integers(0, 3, (60, 5)).astype(float)
    # age separates cases from controls perfectly: no SNP effect can be estimated beyond it
    age = pd.DataFrame({"age": np.where(y == 1, 50.0, 30.0) + rng.random(60)})
    with pytest.raises(ParameterError, match="age separate cases from controls"):
        logistic_association(g, y, age)
    assert np.isfinite(logistic_association(g, y, age.assign(age=rng.random(60)))["p_assoc"]).all()


def test_17_complex_fnc_is_refused(tiny_cohort, capsys):
    toml, arrays = tiny_cohort
    np.save(toml.parent / "fnc.npy", arrays["fnc"] + 0.5j)
    refused(capsys, info(toml), "fnc.npy", "complex")


def test_18_a_trailing_tab_is_tolerated_and_a_tab_inside_an_id_is_named(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    phenotypes = toml.parent / "phenotypes.tsv"
    original = phenotypes.read_text()
    lines = original.splitlines()
    phenotypes.write_text("\n".join([lines[0]] + [line + "\t" for line in lines[1:]]) + "\n")
    assert info(toml) == 0
    assert "subjects: 12" in capsys.readouterr().out
    phenotypes.write_text(original.replace("\ns04\t", "\ns\t04\t"))
    refused(capsys, info(toml), "phenotypes.tsv", "line 6 has 6 fields, the header 5")
    # a TSV has no quoting: a quote is a character, a TAB always a separator
    phenotypes.write_text(original.replace("\ns04\t", '\n"s\t04"\t'))
    refused(capsys, info(toml), "phenotypes.tsv", "line 6 has 6 fields")
    # in a CSV a quoted TAB is part of the id, which it may not hold
    csv = toml.parent / "phenotypes.csv"
    csv.write_text(original.replace("\t", ",").replace("\ns04,", '\n"s\t04",'))
    edit(toml, 'path = "phenotypes.tsv"', 'path = "phenotypes.csv"')
    refused(capsys, info(toml), "phenotypes.csv", "control character", "'s\\t04'")


def test_19_line_numbers_count_blank_lines(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    phenotypes = toml.parent / "phenotypes.tsv"
    lines = phenotypes.read_text().splitlines()
    # two blank lines, then the empty id on what is now line 13 of the file
    lines[5:5] = ["", ""]
    lines[12] = "\t" + lines[12].split("\t", 1)[1]
    phenotypes.write_text("\n".join(lines) + "\n")
    refused(capsys, info(toml), "empty subject id on line 13")


# ------------------------------------------------------------------------------------ sharing and hygiene
def test_20_outputs_take_the_users_umask(sim_cohort, tmp_path):
    from migtrans.simulate import simulate_cohort
    from migtrans.training import TrainConfig, train
    from reports import explain_and_report

    old = os.umask(0o027)
    try:
        sim = simulate_cohort(tmp_path / "cohort", n_subjects=40, n_snps=120, seed=2, resolution=8)
        run = train(
            sim.toml_path, tmp_path / "run", TrainConfig(n_folds=2, epochs=1, batch_size=16), TINY_MODEL, progress=False
        ).out_dir
        report = explain_and_report(
            run,
            tmp_path / "report",
            n_permutations=39,
            n_steps=2,
            top_k=3,
            faithfulness=False,
            device="cpu",
            progress=False,
        ).parent
    finally:
        os.umask(old)
    for folder in (sim.out_dir, run, report):
        for path in [folder, *folder.rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o750 if path.is_dir() else 0o640), (path, oct(mode))


_KILLED_STAGING = """
import os, signal, sys
from pathlib import Path
from migtrans.utils import staging_dir
tmp = staging_dir(Path(sys.argv[1]))
(tmp / "half.csv").write_text("half")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_21_staging_folders_of_killed_runs_are_cleaned(baseline_run, tmp_path, capsys):
    from migtrans.utils import staging_dir

    out = tmp_path / "report"
    killed = subprocess.run([sys.executable, "-c", _KILLED_STAGING, str(out)], check=False)
    assert killed.returncode == -9
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".report.tmp-") and p.is_dir()]
    assert len(left) == 1 and (left[0] / "half.csv").is_file()
    alive = staging_dir(tmp_path / "other")  # a staging folder still in use is never touched
    status = explain_main([str(baseline_run.out_dir), "--out", str(out), *FAST])
    assert status == 0, capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".report")) == []
    assert alive.is_dir()
    from migtrans.utils import clean_stale_staging, discard_staging

    clean_stale_staging(tmp_path, "other")
    assert alive.is_dir()
    discard_staging(alive)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_22_warnings_reach_stderr_as_one_line_each(capsys):
    import warnings

    from migtrans.cli import report_errors

    def noisy():
        for _ in range(3):
            warnings.warn("invalid value encountered in divide\n  x = a / b\nmore detail", RuntimeWarning, stacklevel=1)
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
        warnings.warn("a cohort note", UserWarning, stacklevel=1)
        return 0

    assert report_errors("migtrans info", noisy) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "migtrans info: warning: invalid value encountered in divide (3 times)",
        "migtrans info: warning: a cohort note",
    ]


def test_22_a_full_explain_prints_nothing_but_its_own_lines(pair, tmp_path, capsys):
    toml, run = pair
    status = explain_main(
        [
            str(run),
            "--out",
            str(tmp_path / "report"),
            "--permutations",
            "39",
            "--ig-steps",
            "2",
            "--top-k",
            "3",
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert status == 0
    for line in err.splitlines():
        assert not re.search(r"\w+Warning:|^\s+\S+\.py:\d+|Traceback", line), line
    assert files_under(tmp_path / "report")


# ------------------------------------------------------------------ found by a second review (issue 14)
def test_a_stray_quote_in_a_tsv_swallows_no_subject(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    phenotypes = toml.parent / "phenotypes.tsv"
    _set_field(phenotypes, "s03", "sex", '"M')
    _set_field(phenotypes, "s04", "sex", 'F"')
    edit(toml, 'covariates = ["age", "sex", "site"]', 'covariates = ["age", "site"]')
    assert info(toml) == 0
    assert "subjects: 12" in capsys.readouterr().out


def test_an_unclosed_quote_in_a_csv_names_its_line(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    text = (toml.parent / "phenotypes.tsv").read_text().replace("\t", ",")
    (toml.parent / "phenotypes.csv").write_text(text.replace("\ns03,", '\n"s03,', 1))
    edit(toml, 'path = "phenotypes.tsv"', 'path = "phenotypes.csv"')
    refused(capsys, info(toml), "phenotypes.csv", "line 5", "stray quote")


def test_compare_never_writes_over_an_input_or_a_foreign_file(pair, run_copy, tmp_path, capsys):
    toml, run = pair
    before = snapshot(toml.parent, run_copy)
    for out, culprit in (
        (toml.parent / "phenotypes.tsv", "cohort folder"),
        (run_copy / "config.toml", "run folder"),
        (tmp_path / "notes.csv", "not a table written by migtrans compare"),
    ):
        if out.name == "notes.csv":
            out.write_text("my,own,notes\n")
            before[str(out)] = hashlib.sha256(out.read_bytes()).hexdigest()
        status = migtrans_main(["compare", str(run), str(run_copy), "--out", str(out)])
        refused(capsys, status, "--out", culprit)
    assert (
        snapshot(toml.parent, run_copy) | {str(tmp_path / "notes.csv"): before[str(tmp_path / "notes.csv")]} == before
    )
    table = tmp_path / "table.csv"
    assert migtrans_main(["compare", str(run), "--out", str(table)]) == 0
    assert migtrans_main(["compare", str(run), str(run_copy), "--out", str(table)]) == 0  # its own table: replaced
    assert len(table.read_text().splitlines()) == 3


def test_a_failed_overwrite_keeps_the_old_run(pair, tmp_path, capsys, monkeypatch):
    from migtrans.training import _run

    toml, run = pair
    before = snapshot(run)

    def crash(*args, **kwargs):
        raise RuntimeError("out of GPU memory")

    monkeypatch.setattr(_run, "_train_fold", crash)
    with pytest.raises(RuntimeError, match="GPU"):
        migtrans_main(
            ["train", str(toml), "--out", str(run), "--overwrite", "--quiet", "--folds", "2", "--epochs", "1"]
        )
    assert snapshot(run) == before
    assert [p.name for p in run.parent.iterdir() if p.name.startswith(".")] == []


def test_a_fold_without_room_for_its_validation_split_fails_before_writing(tmp_path, capsys):
    cohort = tmp_path / "c"
    assert migtrans_main(["simulate", str(cohort), "--subjects", "20", "--snps", "100", "--resolution", "8"]) == 0
    capsys.readouterr()
    out = tmp_path / "run"
    status = migtrans_main(
        [
            "train",
            str(cohort / "cohort.toml"),
            "--out",
            str(out),
            "--folds",
            "2",
            "--explain-fraction",
            "0.5",
            "--model",
            "logistic",  # MIGTrans keeping its last epoch holds no validation split; a baseline does
            "--quiet",
        ]
    )
    refused(capsys, status, "val_fraction")
    assert not out.exists()


def test_look_alike_output_folders_are_not_replaced(pair, tmp_path, capsys):
    toml, _ = pair
    for kind, names in (
        ("cohort", ("cohort.toml", "truth.json")),
        ("run", ("config.toml", "manifest.json")),
        ("report", ("report.html", "settings.json")),
    ):
        mine = tmp_path / f"looks-like-a-{kind}"
        mine.mkdir()
        for name in (*names, "thesis.tex"):
            (mine / name).write_text("")
        argv = {
            "cohort": ["simulate", str(mine), "--subjects", "20", "--snps", "100", "--overwrite"],
            "run": ["train", str(toml), "--out", str(mine), "--overwrite", "--quiet"],
        }.get(kind)
        status = migtrans_main(argv) if argv else explain_main([str(_), "--out", str(mine), "--overwrite", *FAST])
        refused(capsys, status, f"not a migtrans {kind} folder")
        assert (mine / "thesis.tex").exists()
    status = migtrans_main(["train", str(toml), "--out", str(tmp_path / "looks-like-a-run"), "--resume"])
    refused(capsys, status, "not a migtrans run folder")


def test_braces_in_the_cohort_folder_are_literal(tiny_cohort, tmp_path, capsys):
    toml, _ = tiny_cohort
    for name in ("a{b}", "{subject_id}", "x{0}"):
        moved = tmp_path / name
        shutil.copytree(toml.parent, moved)
        assert info(moved / "cohort.toml") == 0, capsys.readouterr().err
        assert "subjects: 12" in capsys.readouterr().out


@pytest.mark.parametrize("pos", ["1e30", "1000.7", "-5", "4294967296"])
def test_bim_positions_must_be_integers_that_fit(tiny_cohort, capsys, pos):
    toml, _ = tiny_cohort
    bim = toml.parent / "genotypes.bim"
    lines = bim.read_text().splitlines()
    fields = lines[6].split("\t")
    fields[3] = pos
    lines[6] = "\t".join(fields)
    bim.write_text("\n".join(lines) + "\n")
    refused(capsys, info(toml), "genotypes.bim", "line 7", repr(pos))


def test_per_subject_fnc_holding_several_matrices_is_refused(tiny_cohort, capsys):
    toml, arrays = tiny_cohort
    folder = toml.parent / "fnc"
    folder.mkdir()
    for i, s in enumerate(arrays["ids"]):
        np.save(folder / f"{s}.npy", arrays["fnc"][i : i + (2 if s == "s02" else 1)])
    edit(toml, 'path = "fnc.npy"\nsubjects = "fnc_subjects.txt"', 'template = "fnc/{subject_id}.npy"')
    refused(capsys, info(toml), "s02.npy", "2 stacked")


def test_fnc_subject_lists_latin1_refused_and_bom_tolerated(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    listing = toml.parent / "fnc_subjects.txt"
    text = listing.read_text()
    listing.write_bytes(("\ufeff" + text).encode("utf-8"))
    assert info(toml) == 0 and "12 (" in capsys.readouterr().out
    listing.write_bytes(text.replace("s11", "s\xe911").encode("latin-1"))
    refused(capsys, info(toml), "fnc_subjects.txt", "not UTF-8")


def test_plink_ids_that_spell_missing_are_ids(tiny_cohort, capsys):
    toml, arrays = tiny_cohort
    for name in ("phenotypes.tsv", "fnc_subjects.txt"):
        edit(toml.parent / name, "s05", "NULL")
    (toml.parent / "smri" / "s05.nii.gz").rename(toml.parent / "smri" / "NULL.nii.gz")
    fam = toml.parent / "genotypes.fam"
    fam.write_text(fam.read_text().replace("s05", "NULL"))
    assert info(toml) == 0, capsys.readouterr().err
    assert "subjects: 12" in capsys.readouterr().out


@pytest.mark.parametrize("value, culprit", [("pheno\\u0000.tsv", "NUL"), ("p" * 300 + ".tsv", "255 bytes")])
def test_odd_paths_in_the_toml(tiny_cohort, capsys, value, culprit):
    toml, _ = tiny_cohort
    edit(toml, 'path = "phenotypes.tsv"', f'path = "{value}"')
    refused(capsys, info(toml), "cohort.toml", "phenotypes.path", culprit)


def test_outputs_below_a_file_or_at_a_broken_link(sim_cohort, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    broken = tmp_path / "broken"
    broken.symlink_to(tmp_path / "nowhere")
    for out, culprit in ((afile / "sub", "is not a folder"), (broken, "broken symbolic link")):
        status = migtrans_main(["simulate", str(out), "--subjects", "20", "--snps", "100"])
        refused(capsys, status, culprit)
        status = migtrans_main(["train", str(sim_cohort.toml_path), "--out", str(out), "--quiet"])
        refused(capsys, status, culprit)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "broken"]


@pytest.mark.parametrize("value", ["abc", ""])
def test_compare_refuses_metrics_that_are_not_numbers(legacy_run_copy, capsys, value):
    lines = (legacy_run_copy / "metrics.csv").read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("mean,"))
    lines[row] = ",".join(["mean", value or "x", *lines[row].split(",")[2:]])
    (legacy_run_copy / "metrics.csv").write_text("\n".join(lines) + "\n")
    refused(capsys, migtrans_main(["compare", str(legacy_run_copy)]), "metrics.csv", "not numbers")


def _damage_npz(path, **changes):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update({k: change(arrays[k]) for k, change in changes.items()})
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


@pytest.mark.parametrize("case", ["bbox moved", "bbox float", "NaN in snp_sd", "zero fnc_sd", "model.pt as text"])
def test_tampered_fold_files_are_refused_without_checksums(legacy_run_copy, tmp_path, capsys, case):
    prep = legacy_run_copy / "folds/1/preprocess.npz"
    if case == "bbox moved":
        _damage_npz(prep, bbox=lambda b: b + 1000)
    elif case == "bbox float":
        _damage_npz(prep, bbox=lambda b: b.astype(float))
    elif case == "NaN in snp_sd":
        _damage_npz(prep, snp_sd=lambda v: np.where(np.arange(len(v)) == 3, np.nan, v).astype(v.dtype))
    elif case == "zero fnc_sd":
        _damage_npz(prep, fnc_sd=lambda v: np.zeros_like(v))
    else:
        (legacy_run_copy / "folds/1/model.pt").write_text("hello")
    status = explain_main([str(legacy_run_copy), "--out", str(tmp_path / "report"), *FAST])
    line = refused(capsys, status, "model.pt" if case == "model.pt as text" else "preprocess.npz")
    assert "weights_only" not in line  # never pass on advice to unpickle a file that refused to load


def test_a_custom_atlas_is_checked_before_the_explanation(baseline_run, tmp_path, capsys):
    import nibabel as nib

    atlas = tmp_path / "atlas.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((5, 6, 7), np.int16), np.diag([2.0, 2, 2, 1]) + np.eye(4) * 0), atlas)
    (tmp_path / "atlas.tsv").write_text("index\tname\nabc\tleft\n")
    out = tmp_path / "report"
    status = explain_main([str(baseline_run.out_dir), "--out", str(out), *FAST, "--atlas", str(atlas)])
    refused(capsys, status, "atlas.tsv", "distinct integers")
    (tmp_path / "atlas.tsv").write_text("index\tname\n1\tfar away\n")
    far = np.eye(4)
    far[:3, 3] = 5000  # a label image nowhere near the brain
    nib.save(nib.Nifti1Image(np.ones((5, 6, 7), np.int16), far), atlas)
    status = explain_main([str(baseline_run.out_dir), "--out", str(out), *FAST, "--atlas", str(atlas)])
    refused(capsys, status, "atlas", "overlaps the sMRI mask")
    assert not out.exists()


def test_the_label_column_cannot_be_the_site(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    edit(toml, 'site_column = "site"', 'site_column = "diagnosis"')
    edit(toml, 'covariates = ["age", "sex", "site"]', 'covariates = ["age", "sex"]')
    refused(capsys, info(toml), "cohort.toml", "site_column", "'diagnosis'")


def test_library_log_lines_become_one_line_warnings(tiny_cohort, capsys):
    import nibabel as nib

    toml, arrays = tiny_cohort
    img = nib.Nifti1Image(arrays["volumes"][0], arrays["affine"])
    img.header["pixdim"][1:4] = 0  # nibabel logs a fix of this header through its own handler
    nib.save(img, toml.parent / "smri" / "s00.nii.gz")
    migtrans_main(["info", str(toml)])
    err = capsys.readouterr().err
    assert err.strip(), "the header fix is reported"
    for line in err.strip().splitlines():
        assert line.startswith("migtrans info: "), line


def test_hidden_folders_that_are_not_ours_survive_the_staging_cleanup(baseline_run, tmp_path, capsys):
    for name in ("s2", "r[1]"):
        notes = tmp_path / f".{name}.tmp-notes"
        notes.mkdir()
        (notes / "keep.txt").write_text("mine")
        status = explain_main([str(baseline_run.out_dir), "--out", str(tmp_path / name), *FAST])
        assert status == 0, capsys.readouterr().err
        assert (notes / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "argv, culprit",
    [
        (["--modalities", ""], "modalities"),
    ],
)
def test_an_empty_modality_list_is_refused(sim_cohort, tmp_path, capsys, argv, culprit):
    status = migtrans_main(["train", str(sim_cohort.toml_path), "--out", str(tmp_path / "r"), *argv, "--quiet"])
    refused(capsys, status, culprit)


def test_a_fifo_is_not_a_folder(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    (toml.parent / "phenotypes.tsv").unlink()
    os.mkfifo(toml.parent / "phenotypes.tsv")
    refused(capsys, info(toml), "phenotypes.tsv", "device, pipe or socket")


def test_a_toml_with_a_bom_reads(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    toml.write_bytes(b"\xef\xbb\xbf" + toml.read_bytes())
    assert info(toml) == 0, capsys.readouterr().err


def test_a_covariate_in_large_units_is_not_called_collinear(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    phenotypes = toml.parent / "phenotypes.tsv"
    for i in range(12):
        _set_field(phenotypes, f"s{i:02d}", "age", f"{30 + i}e36")  # ages in units of 1e-36 years
    assert info(toml) == 0, capsys.readouterr().err


def test_a_singular_affine_is_refused(tiny_cohort, capsys):
    import gzip
    import struct

    import nibabel as nib

    toml, arrays = tiny_cohort
    for i, s in enumerate(arrays["ids"]):
        path = toml.parent / "smri" / f"{s}.nii"
        nib.save(nib.Nifti1Image(arrays["volumes"][i], arrays["affine"]), path)
        header = bytearray(path.read_bytes())
        # qform off, sform on with all-zero rows: nibabel cannot write this, a damaged file can hold it
        header[252:256] = struct.pack("<hh", 0, 1)
        header[280:328] = bytes(48)
        (toml.parent / "smri" / f"{s}.nii.gz").write_bytes(gzip.compress(bytes(header)))
        path.unlink()
    refused(capsys, info(toml), "s00.nii.gz", "singular")


def test_invisible_characters_in_ids_are_refused(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    edit(toml.parent / "phenotypes.tsv", "\ns07\t", "\ns0\u200b7\t")
    refused(capsys, info(toml), "phenotypes.tsv", "control character")
