"""load_cohort reads every supported layout and returns exactly what was written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.io

from migtrans import load_cohort
from migtrans.data import CohortWarning


def _set_fnc_section(toml, section):
    text = toml.read_text()
    start = text.index("[fnc]")
    end = text.index("[smri]")
    toml.write_text(text[:start] + section + "\n" + text[end:])


def test_round_trip_of_every_modality(tiny_cohort):
    toml, a = tiny_cohort
    cohort = load_cohort(toml)
    assert list(cohort.subject_ids) == a["ids"]
    assert np.array_equal(cohort.labels, (a["labels"] == "SZ").astype(np.int8))
    assert cohort.label_names == ("HC", "SZ")
    np.testing.assert_array_equal(cohort.genotypes, a["dosages"])  # NaN in the same place
    assert np.isnan(cohort.genotypes[3, 4])
    np.testing.assert_allclose(cohort.fnc, a["fnc"], atol=1e-7)
    assert list(cohort.snps.columns) == ["snp", "chrom", "cm", "pos", "a1", "a2"]
    assert cohort.snps["pos"].iloc[-1] == 31000
    assert list(cohort.nodes["name"]) == [f"n{k}" for k in range(5)]
    # auto mask: voxels whose mean exceeds 0.2 are exactly the non-zero core of the tiny volumes
    assert cohort.mask.shape == (7, 8, 9) and cohort.mask.sum() == 5 * 6 * 7
    np.testing.assert_array_equal(cohort.voxels, a["volumes"][:, cohort.mask])
    np.testing.assert_array_equal(cohort.affine, a["affine"])
    assert cohort.covariates["age"].dtype == float
    assert not pd.api.types.is_numeric_dtype(cohort.covariates["sex"])
    assert list(cohort.site[:3]) == ["site1", "site2", "site1"]


def test_voxels_are_a_read_only_memmap_reused_from_cache(tiny_cohort, _isolated_cache):
    toml, _ = tiny_cohort
    first = load_cohort(toml)
    assert isinstance(first.voxels, np.memmap)
    with pytest.raises(ValueError):
        first.voxels[0, 0] = 1.0
    cached = sorted(_isolated_cache.glob("voxels-*.f32"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    second = load_cohort(toml)
    assert cached[0].stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(first.voxels, second.voxels)


def test_subjects_matched_by_id_whatever_the_order(tiny_cohort):
    toml, a = tiny_cohort
    pheno = toml.parent / "phenotypes.tsv"
    header, *rows = pheno.read_text().splitlines()
    pheno.write_text("\n".join([header, *rows[::-1]]) + "\n")
    cohort = load_cohort(toml)
    assert list(cohort.subject_ids) == a["ids"][::-1]
    np.testing.assert_array_equal(cohort.genotypes, a["dosages"][::-1])
    np.testing.assert_allclose(cohort.fnc, a["fnc"][::-1], atol=1e-7)
    np.testing.assert_array_equal(cohort.voxels, a["volumes"][::-1][:, cohort.mask])


def test_csv_phenotypes(tiny_cohort):
    toml, a = tiny_cohort
    tsv = toml.parent / "phenotypes.tsv"
    (toml.parent / "phenotypes.csv").write_text(tsv.read_text().replace("\t", ","))
    toml.write_text(toml.read_text().replace("phenotypes.tsv", "phenotypes.csv"))
    assert list(load_cohort(toml).subject_ids) == a["ids"]


def test_stacked_upper_triangles_and_npz(tiny_cohort):
    toml, a = tiny_cohort
    iu = np.triu_indices(5, 1)
    np.savez(toml.parent / "fnc.npz", fnc=a["fnc"][:, iu[0], iu[1]])
    _set_fnc_section(toml, '[fnc]\npath = "fnc.npz"\nsubjects = "fnc_subjects.txt"\nnodes = "fnc_nodes.tsv"\n')
    np.testing.assert_allclose(load_cohort(toml).fnc, a["fnc"], atol=1e-7)


@pytest.mark.parametrize("fmt", ["npy", "csv", "tsv", "mat", "npy-vector"])
def test_per_subject_fnc_files(tiny_cohort, fmt):
    toml, a = tiny_cohort
    folder = toml.parent / "fnc"
    folder.mkdir()
    iu = np.triu_indices(5, 1)
    for subject, matrix in zip(a["ids"], a["fnc"]):
        matrix = matrix.astype(np.float64)
        if fmt == "npy":
            np.save(folder / f"{subject}.npy", matrix)
        elif fmt == "npy-vector":
            np.save(folder / f"{subject}.npy", matrix[iu])
        elif fmt == "csv":
            np.savetxt(folder / f"{subject}.csv", matrix, delimiter=",", fmt="%.9g")
        elif fmt == "tsv":
            np.savetxt(folder / f"{subject}.tsv", matrix, delimiter="\t", fmt="%.9g")
        else:
            scipy.io.savemat(folder / f"{subject}.mat", {"fnc": matrix})
    ext = "npy" if fmt.startswith("npy") else fmt
    _set_fnc_section(toml, f'[fnc]\ntemplate = "fnc/{{subject_id}}.{ext}"\nnodes = "fnc_nodes.tsv"\n')
    np.testing.assert_allclose(load_cohort(toml).fnc, a["fnc"], atol=1e-6)


def test_missing_genotypes_subject_dropped_with_warning(tiny_cohort):
    toml, a = tiny_cohort
    pheno = toml.parent / "phenotypes.tsv"
    pheno.write_text(pheno.read_text() + "extra1\tSZ\t50\tM\tsite1\n")
    with pytest.warns(CohortWarning, match="extra1"):
        cohort = load_cohort(toml)
    assert "extra1" not in cohort.subject_ids and cohort.dropped == {"extra1": "no genotype data"}


def test_given_mask_selects_its_voxels(tiny_cohort):
    import nibabel as nib

    toml, a = tiny_cohort
    mask = np.zeros((7, 8, 9), np.uint8)
    mask[2, 3, 4] = mask[5, 1, 7] = 1
    nib.save(nib.Nifti1Image(mask, a["affine"]), toml.parent / "mask.nii.gz")
    toml.write_text(toml.read_text().replace('mask = "auto"', 'mask = "mask.nii.gz"'))
    cohort = load_cohort(toml)
    np.testing.assert_array_equal(cohort.voxels, a["volumes"][:, [2, 5], [3, 1], [4, 7]])


def test_single_modality_cohort(tiny_cohort):
    toml, a = tiny_cohort
    text = toml.read_text()
    toml.write_text(text[: text.index("[genotypes]")])
    with pytest.raises(Exception, match="no modality"):
        load_cohort(toml)
    toml.write_text(text[: text.index("[fnc]")])
    cohort = load_cohort(toml)
    assert cohort.modalities == ("snp",) and cohort.fnc is None and cohort.voxels is None
