"""Genotype QC (migtrans.genetics): statistics and filters checked against plink1.9 on a simulated cohort with
planted problems (missing SNPs and subjects, HWE failures, differential missingness, heterozygosity outliers,
siblings and duplicates), KING kinship against a plain loop, and the bookkeeping of the filter sequence."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact

from migtrans.exceptions import CohortError, ParameterError
from migtrans.genetics import (
    QCThresholds,
    genotype_qc,
    king_kinship,
    snp_statistics,
    subject_statistics,
)

PLINK = shutil.which("plink1.9")
needs_plink = pytest.mark.skipif(PLINK is None, reason="plink1.9 is not installed")

# Odd, distinct sizes: 291 unrelated subjects + 2 sibling pairs + 2 duplicates = 297 subjects; 2003 SNPs.
N_UNRELATED, N_SNPS = 291, 2003
# The QC thresholds plink's own filters can reproduce (its run has no --test-missing, --het or kinship filter).
PLINK_FILTERS = QCThresholds(missing_diff=None, het_sd=None, kinship=None)


@dataclass
class Cohort:
    dosages: np.ndarray
    labels: np.ndarray
    snp_ids: np.ndarray
    subject_ids: np.ndarray
    planted: dict
    bfile: Path


def _simulate(rng):
    """Genotypes with planted problems; every planted set is named in ``planted`` (indices)."""
    m = N_SNPS
    freq = rng.uniform(0.05, 0.5, m)
    freq = np.where(rng.random(m) < 0.5, freq, 1 - freq)  # allele 1 is the minor allele at about half the SNPs
    roles = rng.permutation(m)
    rare, hwe, diff, geno = roles[:30], roles[30:45], roles[45:57], roles[57:82]
    freq[rare] = rng.uniform(0.0005, 0.006, len(rare))
    freq[hwe] = rng.uniform(0.25, 0.5, len(hwe))

    founders = rng.binomial(2, freq, size=(N_UNRELATED, m))
    siblings = []
    for _ in range(2):  # two parents (not in the sample), each child gets one of each parent's two alleles
        parents = rng.random((2, 2, m)) < freq
        for _ in range(2):
            siblings.append(sum(parents[k, rng.integers(0, 2, m), np.arange(m)] for k in range(2)))
    genotypes = np.vstack([founders, np.array(siblings, dtype=founders.dtype)])
    genotypes[:, hwe] = 2 * (rng.random((len(genotypes), len(hwe))) < freq[hwe])  # homozygotes only

    het_excess, het_deficit = [10, 11, 12], [13, 14]
    for i in het_excess:  # contamination-like: a third of the calls read heterozygous
        genotypes[i, rng.random(m) < 0.35] = 1
    for i in het_deficit:  # inbreeding-like: a third of the calls replaced by homozygotes
        where = rng.random(m) < 0.35
        genotypes[i, where] = 2 * (rng.random(where.sum()) < freq[where])
    originals = [30, 31]
    duplicates = genotypes[originals].copy()
    discordant = rng.random(duplicates.shape) < 0.003
    duplicates[discordant] = rng.integers(0, 3, discordant.sum())
    genotypes = np.vstack([genotypes, duplicates])
    n = len(genotypes)

    labels = rng.permutation(np.arange(n) % 2)
    missing = rng.random((n, m)) < 0.01
    missing[:, geno] |= rng.random((n, len(geno))) < 0.2
    high_missing = [20, 21, 22, 23]
    missing[high_missing] |= rng.random((len(high_missing), m)) < 0.2
    cases = np.flatnonzero(labels == 1)
    missing[:, diff] &= labels[:, None] == 1  # no control misses these SNPs ...
    for j in diff:  # ... and 24 cases do
        missing[rng.choice(cases, 24, replace=False), j] = True
    dosages = genotypes.astype(np.float32)
    dosages[missing] = np.nan

    sib = N_UNRELATED
    related = [(sib, sib + 1), (sib + 2, sib + 3), (originals[0], n - 2), (originals[1], n - 1)]
    planted = dict(
        rare=rare,
        hwe=hwe,
        missing_diff=diff,
        snp_missing=geno,
        subject_missing=high_missing,
        heterozygosity=het_excess + het_deficit,
        related=related,
    )
    return dosages, labels, planted


def _write_bed(path, dosages, labels, snp_ids, subject_ids, rng):
    from bed_reader import to_bed

    m = dosages.shape[1]
    chrom = 1 + (np.arange(m) * 22) // m  # contiguous chromosome blocks, as plink wants them
    to_bed(
        path,
        dosages,
        properties={
            "fid": subject_ids,
            "iid": subject_ids,
            "sex": rng.integers(1, 3, len(subject_ids)),
            "pheno": (labels + 1).astype(str),
            "chromosome": chrom.astype(str),
            "sid": snp_ids,
            "bp_position": 1_000 + 5_000 * np.arange(m),
            "allele_1": np.full(m, "A"),
            "allele_2": np.full(m, "G"),
        },
        num_threads=1,
    )


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    rng = np.random.default_rng(20240611)
    dosages, labels, planted = _simulate(rng)
    snp_ids = np.array([f"rs{j}" for j in range(dosages.shape[1])])
    subject_ids = np.array([f"S{i:03d}" for i in range(dosages.shape[0])])
    bfile = tmp_path_factory.mktemp("plink") / "sim"
    _write_bed(bfile.with_suffix(".bed"), dosages, labels, snp_ids, subject_ids, rng)
    return Cohort(dosages, labels, snp_ids, subject_ids, planted, bfile)


def _plink(bfile, out, *flags):
    # --allow-no-sex keeps phenotypes of any sex; one thread and little memory leave the machine to others
    cmd = [PLINK, "--bfile", str(bfile), "--allow-no-sex", "--threads", "1", "--memory", "256", "--out", str(out)]
    subprocess.run([*cmd, *flags], check=True, capture_output=True, text=True)
    return out


def _read(path):
    return pd.read_csv(path, sep=r"\s+")


def _read_plain(path):
    return pd.read_csv(path, sep=r"\s+", header=None, dtype=str)


@pytest.fixture(scope="module")
def plink_stats(cohort):
    out = _plink(
        cohort.bfile, cohort.bfile.parent / "stats", "--freq", "--missing", "--hardy", "--test-missing", "--het"
    )
    hardy = _read(out.with_suffix(".hwe"))
    return dict(
        frq=_read(out.with_suffix(".frq")),
        lmiss=_read(out.with_suffix(".lmiss")),
        imiss=_read(out.with_suffix(".imiss")),
        hwe=hardy[hardy["TEST"] == "UNAFF"],
        missing=_read(out.with_suffix(".missing")),
        het=_read(out.with_suffix(".het")),
    )


@pytest.fixture(scope="module")
def stats(cohort):
    return snp_statistics(cohort.dosages, cohort.labels)


@needs_plink
def test_snp_statistics_match_plink(cohort, stats, plink_stats):
    assert list(plink_stats["frq"]["SNP"]) == list(cohort.snp_ids)
    np.testing.assert_allclose(stats["maf"], plink_stats["frq"]["MAF"], atol=1e-4)  # plink prints 4 digits
    lmiss = plink_stats["lmiss"]
    np.testing.assert_array_equal(np.round(stats["missing_rate"] * lmiss["N_GENO"]), lmiss["N_MISS"])

    hwe = plink_stats["hwe"]
    assert list(hwe["SNP"]) == list(cohort.snp_ids)
    np.testing.assert_allclose(stats["hwe_p_controls"], hwe["P"], rtol=1e-3, atol=1e-300)
    assert (stats["hwe_p_controls"].to_numpy()[cohort.planted["hwe"]] < 1e-6).all()

    # --test-missing leaves out SNPs with no missing call (our p-value is 1 there)
    missing = plink_stats["missing"].set_index("SNP")
    ours = stats.set_index(cohort.snp_ids)
    np.testing.assert_allclose(ours.loc[missing.index, "p_missing_diff"], missing["P"], rtol=1e-3)
    assert (ours.drop(missing.index)["p_missing_diff"] == 1).all()
    assert (stats["p_missing_diff"].to_numpy()[cohort.planted["missing_diff"]] < 1e-5).all()


@needs_plink
def test_subject_statistics_match_plink(cohort, plink_stats):
    ours = subject_statistics(cohort.dosages)
    imiss, het = plink_stats["imiss"], plink_stats["het"]
    assert list(imiss["IID"]) == list(cohort.subject_ids)
    np.testing.assert_array_equal(np.round(ours["missing_rate"] * imiss["N_GENO"]), imiss["N_MISS"])
    np.testing.assert_array_equal(ours["o_hom"], het["O(HOM)"])
    np.testing.assert_array_equal(ours["n_nm"], het["N(NM)"])
    np.testing.assert_allclose(ours["e_hom"], het["E(HOM)"], rtol=5e-4)  # plink prints 4 significant digits
    np.testing.assert_allclose(ours["het_f"], het["F"], atol=1e-3)


@needs_plink
def test_filters_remove_what_plink_removes(cohort):
    out = _plink(
        cohort.bfile,
        cohort.bfile.parent / "qc",
        *("--geno", "0.1", "--mind", "0.1", "--maf", "0.01", "--hwe", "1e-6", "--make-bed"),
    )
    result = genotype_qc(cohort.dosages, cohort.labels, cohort.snp_ids, cohort.subject_ids, PLINK_FILTERS)
    kept_snps = _read_plain(out.with_suffix(".bim"))[1]
    kept_subjects = _read_plain(out.with_suffix(".fam"))[1]
    assert list(cohort.snp_ids[result.keep_snps]) == list(kept_snps)
    assert list(cohort.subject_ids[result.keep_subjects]) == list(kept_subjects)

    # the counts plink logs per filter are ours per filter: same order, same attribution
    log = out.with_suffix(".log").read_text()
    logged = {
        "subject_missing": r"(\d+) people removed due to missing genotype data \(--mind\)",
        "snp_missing": r"(\d+) variants? removed due to missing genotype data \(--geno\)",
        "hwe": r"--hwe: (\d+) variants? removed",
        "maf": r"(\d+) variants? removed due to minor allele threshold",
    }
    summary = result.summary()
    for name, pattern in logged.items():
        assert summary[name] == int(re.search(pattern, log).group(1)), name
    assert summary["subject_missing"] > 0 and summary["snp_missing"] > 0 and summary["hwe"] > 0
    assert summary["maf"] > 0


def _king_loop(g, i, j):
    """KING-robust between-family kinship of one pair, written out SNP by SNP."""
    het_het = opposite = het_i = het_j = 0
    for a, b in zip(g[i], g[j]):
        if np.isnan(a) or np.isnan(b):
            continue
        het_het += a == 1 and b == 1
        opposite += abs(a - b) == 2
        het_i += a == 1
        het_j += b == 1
    low = min(het_i, het_j)
    return (het_het - 2 * opposite) / (2 * low) + 0.5 - (het_i + het_j) / (4 * low)


def test_king_matches_the_formula_pair_by_pair(cohort):
    kinship = king_kinship(cohort.dosages)
    np.testing.assert_array_equal(kinship, kinship.T)
    np.testing.assert_array_equal(np.diag(kinship), 0.5)
    sib, dup = cohort.planted["related"][0], cohort.planted["related"][2]
    # related, unrelated, heterozygosity outliers, a high-missingness subject
    for i, j in [sib, dup, (0, 1), (10, 40), (13, 20), (5, 296)]:
        assert kinship[i, j] == pytest.approx(_king_loop(cohort.dosages, i, j), abs=1e-12)


@needs_plink
def test_king_agrees_with_plink_genome_for_relatives(cohort):
    out = _plink(cohort.bfile, cohort.bfile.parent / "genome", "--genome")
    genome = _read(out.with_suffix(".genome"))
    pi_hat = {(a, b): p for a, b, p in zip(genome["IID1"], genome["IID2"], genome["PI_HAT"])}
    kinship = king_kinship(cohort.dosages)
    ids = cohort.subject_ids
    for i, j in cohort.planted["related"]:
        reported = pi_hat.get((ids[i], ids[j]), pi_hat.get((ids[j], ids[i])))
        assert abs(kinship[i, j] - reported / 2) < 0.05, (ids[i], ids[j], kinship[i, j], reported)


def test_qc_finds_the_planted_problems(cohort):
    result = genotype_qc(cohort.dosages, cohort.labels, cohort.snp_ids, cohort.subject_ids)
    table, planted, ids = result.table, cohort.planted, cohort.subject_ids

    def listed(name):
        return set(table.loc[table["filter"] == name, "id"])

    assert listed("snp_missing") == set(cohort.snp_ids[planted["snp_missing"]])
    assert set(cohort.snp_ids[planted["hwe"]]) <= listed("hwe")
    assert listed("missing_diff") == set(cohort.snp_ids[planted["missing_diff"]])
    assert listed("subject_missing") == set(ids[planted["subject_missing"]])
    assert listed("heterozygosity") == set(ids[planted["heterozygosity"]])
    # exactly the planted pairs are related, and one of each goes
    found = {frozenset(pair) for pair in zip(result.kinship_pairs["id1"], result.kinship_pairs["id2"])}
    assert found == {frozenset(ids[list(pair)]) for pair in planted["related"]}
    dropped = table[table["filter"] == "relatedness"]
    assert len(dropped) == 4
    for subject, partner in zip(dropped["id"], dropped["detail"]):
        assert frozenset((subject, partner)) in found
    # the heterozygosity row reads as a z-score beyond the threshold
    het = table[table["filter"] == "heterozygosity"]
    assert (het["value"].abs() > het["threshold"]).all()

    kept = genotype_qc(
        cohort.dosages, cohort.labels, cohort.snp_ids, cohort.subject_ids, QCThresholds(relatives="keep")
    )
    assert kept.summary()["relatedness"] == 0 and len(kept.kinship_pairs) == 4
    np.testing.assert_array_equal(kept.keep_subjects, result.keep_subjects | np.isin(ids, dropped["id"]))


def test_relatives_are_dropped_greedily_and_deterministically():
    rng = np.random.default_rng(3)
    base = rng.binomial(2, 0.3, size=(20, 3000)).astype(np.float32)
    # s00, d0a and d0b are three copies of one genome (a triangle: two pairs each); s05 and d5 are a pair
    dosages = np.vstack([base, base[[0, 0, 5]]])
    ids = [f"s{i:02d}" for i in range(20)] + ["d0a", "d0b", "d5"]
    dosages[5, :30] = np.nan  # s05 misses more calls than its duplicate d5
    thresholds = QCThresholds(het_sd=None, missing_diff=None, hwe=None)
    result = genotype_qc(dosages, np.arange(23) % 2, [f"rs{j}" for j in range(3000)], ids, thresholds)
    dropped = result.table.loc[result.table["filter"] == "relatedness", ["id", "detail"]]
    # most pairs first (the triangle; equal missingness, so the id sorting last: s00); then one pair each,
    # where s05 has the higher missing rate; then d0a/d0b, equal again, so d0b
    assert dropped.values.tolist() == [["s00", "d0a;d0b"], ["s05", "d5"], ["d0b", "d0a"]]
    assert result.summary()["related_pairs"] == 4
    assert set(np.asarray(ids)[result.keep_subjects]) >= {"d0a", "d5"}


def test_a_snp_is_listed_under_its_first_failed_filter_only():
    rng = np.random.default_rng(5)
    n, m = 101, 403
    dosages = rng.binomial(2, 0.3, size=(n, m)).astype(np.float32)
    dosages[:, 0] = 0  # monomorphic ...
    dosages[:30, 0] = np.nan  # ... and 30% missing: listed under snp_missing, not again under maf
    dosages[:, 1] = 0  # monomorphic only
    dosages[:, 2] = 2 * rng.binomial(1, 0.5, n)  # no heterozygotes, and 20% missing
    dosages[:20, 2] = np.nan
    dosages[:, 3] = 2 * rng.binomial(1, 0.5, n)  # no heterozygotes only
    dosages[0, 10:60] = np.nan  # subject 0 misses 12% of the SNPs
    labels = np.arange(n) % 2
    result = genotype_qc(dosages, labels, [f"rs{j}" for j in range(m)], [f"s{i}" for i in range(n)])
    table = result.table
    assert table["id"].is_unique
    first = dict(zip(table["id"], table["filter"]))
    assert first["rs0"] == "snp_missing" and first["rs1"] == "maf"
    assert first["rs2"] == "snp_missing" and first["rs3"] == "hwe"
    assert first["s0"] == "subject_missing"
    assert list(table["filter"]) == sorted(table["filter"], key=list(FILTER_ORDER).index)

    summary = result.summary()
    snp_filters = ["snp_missing", "hwe", "maf", "mac", "missing_diff"]
    subject_filters = ["subject_missing", "heterozygosity", "relatedness"]
    assert sum(summary[k] for k in snp_filters) + summary["snps_kept"] == m
    assert sum(summary[k] for k in subject_filters) + summary["subjects_kept"] == n
    assert summary["snps_kept"] == result.keep_snps.sum() == m - (table["level"] == "snp").sum()
    # the missing rate of rs0 is counted among the 100 subjects left after --mind
    assert table.set_index("id").loc["rs0", "value"] == pytest.approx(29 / 100)

    # a switched-off filter removes nothing and the next one takes its SNPs
    no_geno = genotype_qc(
        dosages, labels, [f"rs{j}" for j in range(m)], [f"s{i}" for i in range(n)], QCThresholds(snp_missing=None)
    )
    first = dict(zip(no_geno.table["id"], no_geno.table["filter"]))
    assert no_geno.summary()["snp_missing"] == 0 and first["rs0"] == "maf" and first["rs2"] == "hwe"


FILTER_ORDER = (
    "subject_missing",
    "snp_missing",
    "hwe",
    "maf",
    "mac",
    "missing_diff",
    "heterozygosity",
    "relatedness",
)


def test_hwe_and_missingness_p_values_match_closed_forms():
    # 40 controls with 8 / 20 / 12 genotypes (A1A1 / het / A2A2): the exact test enumerates every het count
    controls = np.repeat([2.0, 1.0, 0.0], [8, 20, 12])
    cases = np.repeat([2.0, 1.0, 0.0, np.nan], [5, 10, 3, 6])
    dosages = np.concatenate([controls, cases])[:, None].astype(np.float32)
    labels = np.repeat([0, 1], [40, 24])
    stats = snp_statistics(dosages, labels)

    from math import comb, factorial

    n, rare = 40, 2 * 8 + 20

    def prob(het):
        hom_rare, hom_common = (rare - het) // 2, n - het - (rare - het) // 2
        ways = factorial(n) // (factorial(hom_rare) * factorial(het) * factorial(hom_common))
        return ways * 2**het / comb(2 * n, rare)

    probs = {het: prob(het) for het in range(0, rare + 1, 2)}
    expected = sum(p for p in probs.values() if p <= probs[20] * (1 + 1e-9))
    assert sum(probs.values()) == pytest.approx(1)
    assert stats.loc[0, "hwe_p_controls"] == pytest.approx(expected, rel=1e-9)
    assert stats.loc[0, "p_missing_diff"] == pytest.approx(fisher_exact([[6, 18], [0, 40]]).pvalue)
    assert stats.loc[0, "maf"] == pytest.approx(56 / 116)  # 2 * (8 + 5) + 20 + 10 allele-1 copies in 58 calls
    assert stats.loc[0, "mac"] == 56


def test_thresholds_from_mapping():
    thresholds = QCThresholds.from_mapping({"maf": 0.05, "hwe": False, "relatives": "keep"}, file="cohort.toml")
    assert (thresholds.maf, thresholds.hwe, thresholds.relatives, thresholds.kinship) == (0.05, None, "keep", 0.0884)
    with pytest.raises(CohortError, match=r"cohort\.toml: unknown keys in \[qc\]: geno, mind; allowed keys: het_sd"):
        QCThresholds.from_mapping({"geno": 0.1, "mind": 0.1, "maf": 0.01}, file="cohort.toml")
    with pytest.raises(CohortError, match=r"qc\.maf: expected a finite number in \[0, 0\.5\], found 0\.7"):
        QCThresholds.from_mapping({"maf": 0.7}, file="cohort.toml")
    with pytest.raises(CohortError, match=r"qc\.mac: expected an integer >= 0, found 2\.5"):
        QCThresholds.from_mapping({"mac": 2.5})
    with pytest.raises(CohortError, match=r"qc\.hwe: expected .*, found '1e-6'"):
        QCThresholds.from_mapping({"hwe": "1e-6"})
    with pytest.raises(CohortError, match=r"qc\.relatives: expected one of drop, keep, found False"):
        QCThresholds.from_mapping({"relatives": False})
    with pytest.raises(CohortError, match=r"\[qc\] must be a table"):
        QCThresholds.from_mapping([("maf", 0.01)])
    with pytest.raises(ParameterError, match=r"^kinship: expected a finite number in \(0, 0\.5\], found 0$"):
        QCThresholds(kinship=0)


def test_inputs_are_checked():
    dosages = np.zeros((5, 7), dtype=np.float32)
    dosages[2, 4] = 0.5
    message = r"^dosages: expected allele counts 0, 1, 2 or NaN, found 0\.5 in SNP column 4$"
    with pytest.raises(ParameterError, match=message):
        snp_statistics(dosages, np.arange(5) % 2)
    with pytest.raises(ParameterError, match=r"^labels: expected 0 \(control\) or 1 \(case\), found 2$"):
        snp_statistics(np.zeros((5, 7)), [0, 1, 2, 0, 1])
    with pytest.raises(ParameterError, match=r"^labels: expected shape \(5,\)"):
        snp_statistics(np.zeros((5, 7)), [0, 1])
    with pytest.raises(ParameterError, match=r"^subject_ids: expected unique ids, found 'a' more than once$"):
        genotype_qc(np.zeros((3, 7)), [0, 1, 0], [f"rs{j}" for j in range(7)], ["a", "b", "a"])
    with pytest.raises(ParameterError, match=r"^labels: the missing_diff filter needs cases \(1\) and controls"):
        genotype_qc(np.zeros((3, 7)), [0, 0, 0], [f"rs{j}" for j in range(7)], ["a", "b", "c"])
    only_hwe = QCThresholds(missing_diff=None)
    with pytest.raises(ParameterError, match=r"^labels: the hwe filter needs controls \(0\), found only cases$"):
        genotype_qc(np.zeros((3, 7)), [1, 1, 1], [f"rs{j}" for j in range(7)], ["a", "b", "c"], only_hwe)
    # without a phenotype every subject is a control, as in PLINK: Hardy-Weinberg is tested in all of them
    assert genotype_qc(np.zeros((3, 7)), [0, 0, 0], [f"rs{j}" for j in range(7)], ["a", "b", "c"], only_hwe)
    with pytest.raises(ParameterError, match=r"^snp_mask: expected 7 booleans"):
        subject_statistics(np.zeros((3, 7)), snp_mask=[1, 0])


def test_the_cohort_summary_says_what_qc_removed_and_what_it_could_not_check(sim_cohort):
    from migtrans.data import load_cohort

    cohort = load_cohort(sim_cohort.toml_path)
    removed = int((cohort.qc.table["level"] == "snp").sum())
    text = cohort.summary()
    assert f"genotype QC: {removed} SNPs removed by maf" in text and removed > 0
    assert "heterozygosity and relatedness not checked: only" in text
    assert "ancestry: 2 genetic principal components from" in text  # 40 subjects: one PC per 20
