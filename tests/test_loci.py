"""Tests of the SNP -> locus partition and the padded locus gather index."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from migtrans import ParameterError
from migtrans.loci import chrom_code, locus_index, partition_loci


@pytest.fixture
def snps(rng):
    """31 SNPs on chromosomes 1, 2, 10, X and MT with mixed 'chr' prefixes, rows shuffled."""
    chrom = ["1"] * 12 + ["chr2"] * 7 + ["10"] * 5 + ["chrX"] * 4 + ["MT"] * 3
    pos = np.concatenate(
        [
            np.arange(12) * 40_000 + 1_000,  # 1: spans 441 kb, so at least two 250 kb windows
            np.arange(7) * 10_000 + 5,  # 2: one window
            [100, 200, 900_000, 900_100, 5_000_000],
            [10, 20, 30, 40],
            [1, 2, 3],
        ]
    )
    table = pd.DataFrame({"snp": [f"rs{i}" for i in range(31)], "chrom": chrom, "pos": pos})
    return table.iloc[rng.permutation(31)].reset_index(drop=True)


def test_chromosomes_in_natural_order_despite_shuffle_and_prefixes(snps):
    loci = partition_loci(snps)
    order = loci["chrom"].tolist()
    # 10 after 2 (natural, not lexicographic), X and MT last.
    assert list(dict.fromkeys(order)) == ["1", "2", "10", "X", "MT"]
    assert loci["chrom_code"].is_monotonic_increasing
    for _, row in loci.iterrows():
        assert row["locus"] == f"chr{row['chrom']}:{row['start']}-{row['end']}"


def test_every_snp_in_exactly_one_locus_and_columns_point_back(snps):
    loci = partition_loci(snps)
    allcols = np.concatenate(loci["columns"].tolist())
    assert sorted(allcols.tolist()) == list(range(len(snps)))
    assert loci["n_snps"].sum() == len(snps)
    norm = snps["chrom"].str.replace("chr", "", regex=False)
    for _, row in loci.iterrows():
        cols = row["columns"]
        assert cols.dtype == np.int64 and len(cols) == row["n_snps"]
        assert (norm.iloc[cols] == row["chrom"]).all()
        pos = snps["pos"].to_numpy()[cols]
        assert np.all(np.diff(pos) >= 0)
        assert pos[0] == row["start"] and pos[-1] == row["end"]


@pytest.mark.parametrize("window_kb, max_snps", [(250, 64), (50, 64), (1_000, 3), (0.5, 100)])
def test_window_and_max_snps_respected(snps, window_kb, max_snps):
    loci = partition_loci(snps, window_kb=window_kb, max_snps=max_snps)
    assert (loci["end"] - loci["start"] <= window_kb * 1000).all()
    assert (loci["n_snps"] <= max_snps).all()
    # Greedy windows: the next locus on the same chromosome starts beyond the window or after a full one.
    for (_, a), (_, b) in zip(loci.iloc[:-1].iterrows(), loci.iloc[1:].iterrows()):
        if a["chrom"] == b["chrom"]:
            assert b["start"] - a["start"] > window_kb * 1000 or a["n_snps"] == max_snps


def test_known_partition():
    snps = pd.DataFrame(
        {
            "snp": list("abcdef"),
            "chrom": ["2", "1", "1", "1", "chr1", "1"],
            "pos": [5, 1_000, 251_000, 251_001, 2_000, 600_000],
        }
    )
    loci = partition_loci(snps, window_kb=250)
    # 251_000 - 1_000 is exactly the window (kept); 600_000 - 251_001 exceeds it (new locus).
    assert loci["locus"].tolist() == ["chr1:1000-251000", "chr1:251001-251001", "chr1:600000-600000", "chr2:5-5"]
    assert [c.tolist() for c in loci["columns"]] == [[1, 4, 2], [3], [5], [0]]


def test_locus_index_gathers_the_right_columns(snps, rng):
    loci = partition_loci(snps, window_kb=100, max_snps=4)
    index, valid = locus_index(loci, len(snps))
    assert index.shape == valid.shape == (len(loci), loci["n_snps"].max())
    assert index.dtype == np.int64 and valid.dtype == bool
    x = rng.normal(size=(3, len(snps)))
    gathered = x[:, index] * valid
    for row, cols in enumerate(loci["columns"]):
        np.testing.assert_array_equal(gathered[:, row, : len(cols)], x[:, cols])
        assert valid[row].sum() == len(cols)
        np.testing.assert_array_equal(gathered[:, row, len(cols) :], 0)


def test_chrom_code():
    assert [chrom_code(c) for c in ["chr1", "22", "X", "chrY", 23, "XY", "M", "chrMT", "GL000192.1"]] == [
        1,
        22,
        23,
        24,
        23,
        25,
        26,
        26,
        0,
    ]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(window_kb=0), "window_kb"),
        (dict(window_kb=-3), "window_kb"),
        (dict(window_kb=float("nan")), "window_kb"),
        (dict(max_snps=0), "max_snps"),
        (dict(max_snps=2.5), "max_snps"),
    ],
)
def test_invalid_parameters_name_the_field(snps, kwargs, field):
    with pytest.raises(ParameterError, match=field):
        partition_loci(snps, **kwargs)


def test_invalid_tables():
    with pytest.raises(ParameterError, match="pos"):
        partition_loci(pd.DataFrame({"snp": ["a"], "chrom": ["1"]}))
    with pytest.raises(ParameterError, match="pos"):
        partition_loci(pd.DataFrame({"snp": ["a"], "chrom": ["1"], "pos": [-5]}))
    with pytest.raises(ParameterError, match="outside"):
        locus_index([[0, 7]], n_snps=5)
    with pytest.raises(ParameterError, match="no SNPs"):
        locus_index([[0], []], n_snps=5)


def _r2(g, a, b):
    """Brute-force largest r² between any SNP of columns a and any of columns b (np.corrcoef; a monomorphic
    SNP correlates with nothing)."""
    x = np.where(np.isnan(g), np.nanmean(g, axis=0), g)
    with np.errstate(invalid="ignore", divide="ignore"):
        return max(np.nan_to_num(np.corrcoef(x[:, i], x[:, j])[0, 1]) ** 2 for i in a for j in b)


def test_ld_merge_joins_windows_in_ld_and_keeps_independent_ones_apart(sim_cohort):
    from migtrans import load_cohort
    from migtrans.loci import merge_loci_by_ld

    cohort = load_cohort(sim_cohort.toml_path)
    g = cohort.genotypes
    windows = partition_loci(cohort.snps, window_kb=2, max_snps=64)  # small windows cut LD blocks
    merged = merge_loci_by_ld(windows, g, r2=0.5, max_snps=64)
    assert len(merged) < 0.6 * len(windows)  # simulated blocks average 15 SNPs
    cols = np.sort(np.concatenate(merged["columns"].to_list()))
    assert cols.tolist() == list(range(g.shape[1]))  # every SNP exactly once
    assert (merged["n_snps"] <= 64).all()
    # each merged locus is a chain of windows, each linked by r² >= 0.5 to the windows before it ...
    window_of = {int(c[0]): c for c in windows["columns"]}
    for columns in merged["columns"]:
        parts, i = [], 0
        while i < len(columns):
            part = window_of[int(columns[i])]
            parts.append(part)
            i += len(part)
        assert all(_r2(g, np.concatenate(parts[:k]), parts[k]) >= 0.5 for k in range(1, len(parts)))
    # ... and neighbouring merged loci of one chromosome are not (none here hits max_snps)
    for (_, a), (_, b) in zip(merged.iloc[:-1].iterrows(), merged.iloc[1:].iterrows()):
        if a["chrom"] == b["chrom"]:
            assert _r2(g, a["columns"], b["columns"]) < 0.5


def test_ld_merge_respects_max_snps_and_validates_r2(sim_cohort):
    from migtrans import load_cohort
    from migtrans.loci import merge_loci_by_ld

    cohort = load_cohort(sim_cohort.toml_path)
    windows = partition_loci(cohort.snps, window_kb=2, max_snps=4)
    merged = merge_loci_by_ld(windows, cohort.genotypes, r2=0.2, max_snps=4)
    assert (merged["n_snps"] <= 4).all()
    with pytest.raises(ParameterError, match="ld_r2"):
        merge_loci_by_ld(windows, cohort.genotypes, r2=0)


def test_a_run_with_ld_r2_uses_the_merged_partition(sim_cohort):
    from migtrans import load_cohort
    from migtrans.loci import merge_loci_by_ld
    from migtrans.training import TrainConfig

    cohort = load_cohort(sim_cohort.toml_path)
    expected = merge_loci_by_ld(partition_loci(cohort.snps, window_kb=2), cohort.genotypes, r2=0.5)
    got = TrainConfig(window_kb=2, ld_r2=0.5).loci(cohort)
    assert got["locus"].tolist() == expected["locus"].tolist()
    assert len(TrainConfig(window_kb=2).loci(cohort)) > len(got)
    with pytest.raises(ParameterError, match="ld_r2"):
        TrainConfig(ld_r2=1.5)
