"""The issue-2 acceptance round trip: `migtrans simulate` at 300 x 5000 then `load_cohort` gives back exactly
what the simulator holds in memory; plink1.9 reads the fileset and agrees on allele frequencies."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from migtrans import load_cohort
from migtrans.cli import main
from migtrans.simulate import simulate_cohort


@pytest.fixture(scope="module")
def cli_cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("rt") / "c"
    assert main(["simulate", str(out), "--subjects", "300", "--snps", "5000", "--seed", "1"]) == 0
    return out


@pytest.fixture(scope="module")
def in_memory(tmp_path_factory):
    return simulate_cohort(tmp_path_factory.mktemp("mem") / "c", n_subjects=300, n_snps=5000, seed=1)


def test_simulate_then_load_round_trips(cli_cohort, in_memory):
    cohort = load_cohort(cli_cohort / "cohort.toml")
    assert list(cohort.subject_ids) == list(in_memory.subject_ids)
    np.testing.assert_array_equal(cohort.labels, in_memory.labels)
    # what passed the genotype QC (the MAF filter removes the rarest SNPs; nobody is removed)
    kept = cohort.qc.keep_snps
    assert cohort.qc.keep_subjects.all() and 4900 < kept.sum() < 5000
    assert set(cohort.qc.table["filter"]) == {"maf"}
    np.testing.assert_array_equal(cohort.genotypes, in_memory.genotypes[:, kept])  # NaN where calls are missing
    assert np.isnan(cohort.genotypes).any()
    assert list(cohort.snps["snp"]) == list(in_memory.snps["snp"][kept])
    np.testing.assert_array_equal(cohort.snps["pos"], in_memory.snps["pos"][kept])
    np.testing.assert_array_equal(cohort.fnc, in_memory.fnc)
    np.testing.assert_array_equal(cohort.mask, in_memory.mask)
    np.testing.assert_array_equal(cohort.voxels, in_memory.voxels)
    assert list(cohort.nodes["name"]) == list(in_memory.nodes["name"])


@pytest.mark.skipif(shutil.which("plink1.9") is None, reason="plink1.9 is not installed")
def test_plink_reads_the_fileset_and_agrees_on_frequencies(cli_cohort, tmp_path, in_memory):
    result = subprocess.run(
        ["plink1.9", "--bfile", str(cli_cohort / "genotypes"), "--freq", "--out", str(tmp_path / "freq")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    freq = pd.read_csv(tmp_path / "freq.frq", sep=r"\s+")
    assert len(freq) == 5000 and list(freq["SNP"]) == list(in_memory.snps["snp"])
    # plink reports the sample minor allele as A1 (swapping when our A1 is > 50% in this sample)
    a1_freq = np.nanmean(in_memory.genotypes, axis=0) / 2
    np.testing.assert_allclose(freq["MAF"], np.minimum(a1_freq, 1 - a1_freq), atol=6e-5)  # 4 digits printed
    kept = a1_freq < 0.499
    assert (freq["A1"].to_numpy()[kept] == in_memory.snps["a1"].to_numpy()[kept]).all()
    assert (freq["A1"].to_numpy()[a1_freq > 0.501] == in_memory.snps["a2"].to_numpy()[a1_freq > 0.501]).all()
