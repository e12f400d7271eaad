"""Each kind of bad cohort input stops `migtrans info` with one line naming the culprit, exit 2,
no traceback, and nothing written."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from migtrans.cli import main

from conftest import files_under


def run_info(capsys, toml, *extra):
    status = main(["info", str(toml), *extra])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, *culprits):
    assert status == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for culprit in culprits:
        assert culprit in lines[0], (culprit, lines[0])


def edit(path, old, new):
    path = Path(path)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_valid_cohort_prints_summary(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    status, out, err = run_info(capsys, toml)
    assert status == 0, err
    assert "12 (6 SZ, 6 HC)" in out
    assert "31 SNPs" in out and "5 nodes" in out and "(7, 8, 9)" in out


def test_missing_phenotype_file(tiny_cohort, capsys, _isolated_cache):
    toml, _ = tiny_cohort
    (toml.parent / "phenotypes.tsv").unlink()
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "phenotypes.tsv", "not found")
    assert files_under(_isolated_cache) == []


def test_missing_cohort_file(tmp_path, capsys):
    status, _, err = run_info(capsys, tmp_path / "nope.toml")
    assert_one_line_error(status, err, "nope.toml", "not found")


def test_empty_file(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    (toml.parent / "fnc_subjects.txt").write_text("")
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "fnc_subjects.txt", "empty")


def test_duplicate_subject_id(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    edit(toml.parent / "phenotypes.tsv", "s05\t", "s04\t")
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "phenotypes.tsv", "'s04'", "duplicate")


def test_duplicate_iid_in_fam(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    fam = toml.parent / "genotypes.fam"
    edit(fam, "s05 s05", "s04 s04")
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "genotypes.fam", "'s04'", "duplicate")


def test_label_with_one_class(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    path = toml.parent / "phenotypes.tsv"
    path.write_text(path.read_text().replace("\tHC\t", "\tSZ\t"))
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "phenotypes.tsv", "'diagnosis'", "two classes")


def test_label_with_a_third_value(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    path = toml.parent / "phenotypes.tsv"
    text = path.read_text()
    line = next(row for row in text.splitlines() if row.startswith("s07\t"))
    path.write_text(text.replace(line, re.sub(r"\t(SZ|HC)\t", "\tBP\t", line)))
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "phenotypes.tsv", "'s07'", "'BP'")


def test_missing_label_column(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    edit(toml, 'label_column = "diagnosis"', 'label_column = "dx"')
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "phenotypes.tsv", "'dx'", "not found")


def test_bim_and_bed_counts_disagree(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    bim = toml.parent / "genotypes.bim"
    bim.write_text(bim.read_text() + "2\trs999\t0\t999999\tA\tG\n")
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "genotypes.bed", "32 SNPs", "need")


def test_truncated_bed(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    bed = toml.parent / "genotypes.bed"
    bed.write_bytes(bed.read_bytes()[:-7])
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "genotypes.bed", "truncated")


def test_bed_with_bad_magic(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    bed = toml.parent / "genotypes.bed"
    bed.write_bytes(b"XYZ" + bed.read_bytes()[3:])
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "genotypes.bed", "magic")


def test_fnc_of_the_wrong_size(tiny_cohort, capsys):
    toml, arrays = tiny_cohort
    np.save(toml.parent / "fnc.npy", arrays["fnc"][:, :4, :4])
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "fnc.npy", "5 x 5", "4 x 4")


def test_node_table_rows_do_not_match_k(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    nodes = toml.parent / "fnc_nodes.tsv"
    nodes.write_text("\n".join(nodes.read_text().splitlines()[:-1]) + "\n")
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "fnc.npy", "4 nodes in the node table")


def test_fnc_not_symmetric(tiny_cohort, capsys):
    toml, arrays = tiny_cohort
    fnc = arrays["fnc"].copy()
    fnc[9, 1, 3] += 0.5
    np.save(toml.parent / "fnc.npy", fnc)
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "fnc.npy", "'s09'", "not symmetric")


def test_fnc_with_nan(tiny_cohort, capsys):
    toml, arrays = tiny_cohort
    fnc = arrays["fnc"].copy()
    fnc[2, 0, 1] = fnc[2, 1, 0] = np.nan
    np.save(toml.parent / "fnc.npy", fnc)
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "fnc.npy", "'s02'", "NaN")


def test_fnc_rows_and_subject_list_disagree(tiny_cohort, capsys):
    toml, arrays = tiny_cohort
    np.save(toml.parent / "fnc.npy", arrays["fnc"][:-1])
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "fnc.npy", "expected 12 rows")


def _resave(path, data=None, affine=None):
    img = nib.load(path)
    data = np.asarray(img.dataobj) if data is None else data
    nib.save(nib.Nifti1Image(data, img.affine if affine is None else affine), path)


def test_nifti_shapes_differ(tiny_cohort, capsys, _isolated_cache):
    toml, arrays = tiny_cohort
    _resave(toml.parent / "smri" / "s06.nii.gz", data=np.zeros((7, 8, 10), np.float32))
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "s06.nii.gz", "'s06'", "(7, 8, 10)")
    assert files_under(_isolated_cache) == []


def test_nifti_affines_differ(tiny_cohort, capsys):
    toml, arrays = tiny_cohort
    affine = arrays["affine"].copy()
    affine[0, 3] += 1.5
    _resave(toml.parent / "smri" / "s08.nii.gz", affine=affine)
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "s08.nii.gz", "'s08'", "affine")


def test_nan_voxels(tiny_cohort, capsys, _isolated_cache):
    toml, arrays = tiny_cohort
    vol = arrays["volumes"][10].copy()
    vol[3, 3, 3] = np.nan
    _resave(toml.parent / "smri" / "s10.nii.gz", data=vol)
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "s10.nii.gz", "'s10'", "1 NaN")
    assert files_under(_isolated_cache) == []


@pytest.mark.parametrize("mask", ["auto", "given"])
def test_corrupt_nifti_gz(tiny_cohort, capsys, _isolated_cache, mask):
    toml, arrays = tiny_cohort
    if mask == "given":
        nib.save(nib.Nifti1Image(np.ones((7, 8, 9), np.uint8), arrays["affine"]), toml.parent / "mask.nii.gz")
        edit(toml, 'mask = "auto"', 'mask = "mask.nii.gz"')
    path = toml.parent / "smri" / "s11.nii.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw)[:-40])  # header intact, data cut short
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "s11.nii.gz", "'s11'")
    assert files_under(_isolated_cache) == []


def test_garbage_nifti(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    (toml.parent / "smri" / "s01.nii.gz").write_bytes(b"not an image at all")
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "s01.nii.gz", "'s01'", "NIfTI")


def test_mask_on_another_grid(tiny_cohort, capsys):
    toml, arrays = tiny_cohort
    nib.save(nib.Nifti1Image(np.ones((7, 8, 8), np.uint8), arrays["affine"]), toml.parent / "mask.nii.gz")
    edit(toml, 'mask = "auto"', 'mask = "mask.nii.gz"')
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "mask.nii.gz", "does not match")


@pytest.mark.parametrize(
    ("old", "new", "culprit"),
    [
        ('bfile = "genotypes"', 'bfile = "genotypes"\nbfiles = "x"', "genotypes.bfiles"),
        ("[smri]", "[smry]\nx = 1\n[smri]", "[smry]"),
        ('label_column = "diagnosis"', 'label_colum = "diagnosis"', "phenotypes.label_colum"),
    ],
)
def test_unknown_toml_key_lists_allowed_keys(tiny_cohort, capsys, old, new, culprit):
    toml, _ = tiny_cohort
    edit(toml, old, new)
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "cohort.toml", culprit, "allowed")


def test_invalid_toml_syntax(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    edit(toml, 'build = "GRCh37"', "build = GRCh37")
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "cohort.toml", "TOML")


def test_template_without_placeholder(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    edit(toml, 'template = "smri/{subject_id}.nii.gz"', 'template = "smri/s00.nii.gz"')
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "cohort.toml", "{subject_id}")


def test_missing_covariate_value(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    path = toml.parent / "phenotypes.tsv"
    path.write_text(re.sub(r"^(s03\t\w+\t)33\t", r"\1\t", path.read_text(), flags=re.M))
    status, _, err = run_info(capsys, toml)
    assert_one_line_error(status, err, "'s03'", "'age'", "missing")


def test_dropped_subject_warns_and_strict_refuses(tiny_cohort, capsys):
    toml, _ = tiny_cohort
    (toml.parent / "smri" / "s05.nii.gz").unlink()
    status, out, err = run_info(capsys, toml)
    assert status == 0
    assert "11 (" in out
    assert "warning" in err and "s05" in err and "Traceback" not in err
    status, _, err = run_info(capsys, toml, "--strict")
    assert_one_line_error(status, err, "'s05'", "no sMRI data", "strict")


def test_bad_cli_option_is_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["simulate", "x", "--subjects", "many"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--subjects" in err
