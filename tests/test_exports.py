"""The community-format exports read back by the formats' own rules: GWAS-SSF (checked by a small validator
written from the specification), its metadata YAML, the FUMA / LocusZoom file, BrainNet Viewer's .node and
.edge; the association's beta, SE and z against statsmodels."""

from __future__ import annotations

import gzip
import hashlib
import re
from types import SimpleNamespace

import mpmath
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from explain import (
    Attributions,
    ExplanationFolder,
    association_covariates,
    covariate_matrix,
    logistic_association,
    write_exports,
)
from explain._association import ASSOCIATION_COLUMNS
from explain._exports import FUMA_COLUMNS, SSF_COLUMNS, _p_text
from explain._tables import _genomic_tables
from migtrans.data import load_cohort
from migtrans.exceptions import ParameterError
from migtrans.training import TrainConfig

MANDATORY = SSF_COLUMNS[:8]
METADATA_KEYS = {  # mandatory in GWAS-SSF v1.0 (Table 2), sample_size inside the sample block
    "genome_assembly",
    "coordinate_system",
    "trait_description",
    "genotyping_technology",
    "samples",
    "data_file_name",
    "file_type",
    "data_file_md5sum",
    "is_harmonised",
    "is_sorted",
    "date_metadata_last_modified",
}
# SNP table of the synthetic cohort: unsorted, named chromosomes, and rows GWAS-SSF cannot hold
SNPS = pd.DataFrame(
    {
        "snp": ["rs10", "rs7", "1:500_A_T", "rs3", "rsX", "rs_pos0", "rs_contig", "rs_allele0", "rs_mono", "rs2"],
        "chrom": ["chr2", "1", "1", "X", "23", "3", "GL000192.1", "4", "5", "MT"],
        "pos": [1000, 700, 500, 90, 80, 0, 10, 40, 50, 300],
        "a1": ["a", "G", "AT", "C", "T", "A", "A", "0", "A", "G"],
        "a2": ["G", "A", "A", "T", "C", "G", "G", "C", "C", "A"],
    }
)
LEFT_OUT = {"rs_pos0", "rs_contig", "rs_allele0", "rs_mono"}
_CODES = {"chr2": 2, "1": 1, "X": 23, "23": 23, "MT": 25}  # GWAS-SSF codes: X = 23 (PLINK's 23 too), MT = 25
#: variant_id (chromosome_position_other_effect) -> SNP id
SNP_OF = {f"{_CODES.get(s.chrom)}_{s.pos}_{s.a2}_{s.a1.upper()}": s.snp for s in SNPS.itertuples()}


@pytest.fixture(scope="module")
def cohort():
    """Genotypes (some calls missing, one SNP monomorphic), labels driven by SNP 0, and covariates."""
    rng = np.random.default_rng(20)
    n, m = 347, len(SNPS)
    g = rng.binomial(2, rng.uniform(0.1, 0.5, m), size=(n, m)).astype(float)
    g[:, 8] = 1.0  # rs_mono
    g[rng.random((n, m)) < 0.03] = np.nan
    cov = pd.DataFrame({"age": rng.normal(50, 9, n).round(1), "site": rng.choice(["a", "b", "c"], n)})
    eta = 0.7 * np.nan_to_num(g[:, 0], nan=1.0) - 0.8 + 0.02 * (cov["age"].to_numpy() - 50)
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return g, y, cov


def _snp_table(g, y, cov, snps=SNPS):
    """snps.csv's identifiers and association columns, as `result_tables` assembles them."""
    assoc = logistic_association(g, y, cov).rename(columns={"n_obs": "n_assoc"})
    table = pd.concat([snps.reset_index(drop=True), assoc[list(ASSOCIATION_COLUMNS)]], axis=1)
    table.attrs.update(
        genome_build="GRCh38",
        trait="diagnosis",
        label_names=["HC", "SZ"],
        n_cases=int(y.sum()),
        n_controls=int(len(y) - y.sum()),
        association_covariates=list(cov.columns),
    )
    return table


def _p_value(text: str) -> tuple[float, int]:
    """(mantissa, exponent) of a p written as text, so that a p below 1e-308 is still checked."""
    mantissa, _, exponent = text.lower().partition("e")
    return float(mantissa), int(exponent or 0)


def validate_gwas_ssf(path) -> pd.DataFrame:
    """Check a GWAS-SSF data file against the specification (v1.0, Table 1) and return it as text."""
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b", "not gzip-compressed"
    lines = gzip.decompress(raw).decode("utf-8").splitlines()
    header = lines[0].split("\t")
    assert tuple(header[:8]) == MANDATORY, header
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(r) == len(header) for r in rows)
    table = pd.DataFrame(rows, columns=header)
    for column in MANDATORY:
        assert not table[column].isin(["#NA", "NA", ""]).any(), f"{column} is mandatory"
    chrom = table["chromosome"].astype(int)
    assert table["chromosome"].str.fullmatch(r"[0-9]+").all() and chrom.between(1, 25).all()
    pos = table["base_pair_location"].astype(int)
    assert table["base_pair_location"].str.fullmatch(r"[0-9]+").all() and (pos > 0).all()
    for column in ("effect_allele", "other_allele"):
        assert table[column].str.fullmatch("[ACGT]+").all(), table[column].tolist()
    beta, se = table["beta"].astype(float), table["standard_error"].astype(float)
    assert np.isfinite(beta).all() and (se > 0).all()
    assert table["effect_allele_frequency"].astype(float).between(0, 1).all()
    for text in table["p_value"]:
        mantissa, exponent = _p_value(text)
        assert 0 < mantissa and (exponent < 0 or mantissa * 10.0**exponent <= 1), text
    assert table["n"].str.fullmatch(r"[0-9]+").all()
    assert table["variant_id"].str.fullmatch(r"([1-9]|1[0-9]|2[0-5])_[0-9]+_[ACGT]+_[ACGT]+").all()
    assert (table["rsid"].str.fullmatch(r"rs[0-9]+") | (table["rsid"] == "#NA")).all()
    key = list(zip(chrom, pos))
    assert key == sorted(key), "not sorted by chromosome, then position"
    return table


def test_gwas_ssf_follows_the_format_and_agrees_with_statsmodels(cohort, tmp_path):
    g, y, cov = cohort
    write_exports(tmp_path, {"snps": _snp_table(g, y, cov)})
    files = ExplanationFolder(tmp_path)
    table = validate_gwas_ssf(files.gwas_ssf)
    assert set(SNPS["snp"]) - set(table["variant_id"].map(SNP_OF)) == LEFT_OUT
    assert table["chromosome"].tolist() == ["1", "1", "2", "23", "23", "25"]  # X=23 (and PLINK's 23), MT=25
    assert table["effect_allele"].iloc[2] == "A"  # "a" upper-cased
    C, _ = covariate_matrix(cov, len(y))
    assoc = logistic_association(g, y, cov)
    for row in table.itertuples(index=False):
        j = int(np.flatnonzero(SNPS["snp"] == SNP_OF[row.variant_id])[0])
        ok = ~np.isnan(g[:, j])
        fit = sm.Logit(y[ok], np.column_stack([C[ok], g[ok, j]])).fit(disp=0, tol=1e-12, maxiter=100)
        assert float(row.beta) == pytest.approx(fit.params[-1], rel=1e-6)
        assert float(row.standard_error) == pytest.approx(fit.bse[-1], rel=1e-6)
        assert assoc.loc[j, "z_assoc"] == pytest.approx(fit.tvalues[-1], rel=1e-6)
        assert float(row.p_value) == assoc.loc[j, "p_assoc"]  # exactly the table's p_assoc
        assert float(row.p_value) == pytest.approx(fit.pvalues[-1], rel=1e-6)
        assert int(row.n) == ok.sum()
        assert float(row.effect_allele_frequency) == pytest.approx(g[ok, j].mean() / 2, rel=1e-12)
        assert (row.effect_allele, row.other_allele) == (SNPS.at[j, "a1"].upper(), SNPS.at[j, "a2"])
    assert float(table.loc[table["rsid"] == "rs10", "p_value"].item()) < 1e-3  # the SNP that drives the labels


def test_gwas_ssf_metadata_names_the_data_file_and_the_sample(cohort, tmp_path):
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the metadata back")
    g, y, cov = cohort
    write_exports(tmp_path, {"snps": _snp_table(g, y, cov)}, metadata={"sample_ancestry_category": ["European"]})
    files = ExplanationFolder(tmp_path)
    assert files.gwas_ssf_meta.name == files.gwas_ssf.name + "-meta.yaml"
    meta = yaml.safe_load(files.gwas_ssf_meta.read_text())
    assert METADATA_KEYS <= set(meta), METADATA_KEYS - set(meta)
    assert meta["data_file_name"] == files.gwas_ssf.name
    assert meta["data_file_md5sum"] == hashlib.md5(files.gwas_ssf.read_bytes()).hexdigest()
    assert re.fullmatch(r"GWAS-SSF v\d+(\.\d+)*", meta["file_type"])
    assert meta["is_sorted"] is True and meta["is_harmonised"] is False
    assert meta["genome_assembly"] == "GRCh38" and meta["coordinate_system"] == "1-based"
    assert meta["trait_description"] == ["diagnosis: SZ (cases) vs HC (controls)"]
    (sample,) = meta["samples"]
    assert sample["sample_size"] == len(y) and sample["case_count"] == y.sum()
    assert sample["case_count"] + sample["control_count"] == sample["sample_size"]
    assert sample["sample_ancestry_category"] == ["European"] and meta["genotyping_technology"] == ["NR"]
    assert meta["adjusted_covariates"] == ["age", "site"]
    # every left-out SNP is counted, once, under its reason
    counts = [int(n) for n in re.findall(r"(\d+) SNP\(s\)", meta["author_notes"])]
    assert sum(counts) == len(LEFT_OUT) and len(counts) == 4


def test_beta_is_the_effect_of_the_counted_allele(cohort, tmp_path):
    """Recoding a SNP to count the other allele (a1 <-> a2, dosage 2 - g) swaps the effect allele, negates
    beta, complements the frequency and keeps SE and p."""
    g, y, cov = cohort
    flipped = SNPS.assign(a1=SNPS["a2"], a2=SNPS["a1"].str.upper())
    write_exports(tmp_path / "a", {"snps": _snp_table(g, y, cov)})
    write_exports(tmp_path / "b", {"snps": _snp_table(2 - g, y, cov, flipped)})
    a = pd.read_csv(tmp_path / "a" / ExplanationFolder.GWAS_SSF, sep="\t")
    b = pd.read_csv(tmp_path / "b" / ExplanationFolder.GWAS_SSF, sep="\t")
    assert (a["effect_allele"] == b["other_allele"]).all() and (a["other_allele"] == b["effect_allele"]).all()
    np.testing.assert_allclose(a["beta"], -b["beta"], rtol=1e-7)
    np.testing.assert_allclose(a["standard_error"], b["standard_error"], rtol=1e-7)
    np.testing.assert_allclose(a["p_value"], b["p_value"], rtol=1e-6)
    np.testing.assert_allclose(a["effect_allele_frequency"], 1 - b["effect_allele_frequency"], rtol=1e-12)
    # SNP 0 (rs10) raises the risk per copy of its a1: a positive log odds ratio
    assert a.loc[a["rsid"] == "rs10", "beta"].item() > 0


def test_fuma_file_holds_the_same_rows_in_its_own_columns(cohort, tmp_path):
    g, y, cov = cohort
    write_exports(tmp_path, {"snps": _snp_table(g, y, cov)})
    files = ExplanationFolder(tmp_path)
    fuma = pd.read_csv(files.fuma, sep="\t", dtype=str, keep_default_na=False)
    ssf = validate_gwas_ssf(files.gwas_ssf)
    assert tuple(fuma.columns) == FUMA_COLUMNS
    assert fuma["CHR"].tolist() == ["1", "1", "2", "X", "X", "MT"]
    assert fuma["SNP"].tolist() == ssf["variant_id"].map(SNP_OF).tolist()
    pairs = {"BP": "base_pair_location", "A1": "effect_allele", "A2": "other_allele", "P": "p_value"}
    pairs.update(BETA="beta", SE="standard_error", N="n")
    for ours, theirs in pairs.items():
        assert fuma[ours].tolist() == ssf[theirs].tolist(), ours
    assert not fuma.isin(["", "NA", "#NA", "nan"]).any().any()


def test_a_p_that_underflows_is_written_from_its_z():
    z = np.array([40.0, -45.5, 2.0])
    p = np.array([0.0, 0.0, 0.04550026389635841])
    text = _p_text(p, z)
    assert text[2] == repr(float(p[2]))
    for t, zi in zip(text[:2], z[:2]):
        mantissa, exponent = _p_value(t)
        exact = mpmath.erfc(abs(zi) / mpmath.sqrt(2))  # two-sided normal p
        assert exponent == int(mpmath.floor(mpmath.log10(exact)))
        assert mantissa == pytest.approx(float(exact / mpmath.mpf(10) ** exponent), rel=1e-5)


def _connectome(rng, k=7):
    """nodes.csv and connections.csv of a k-node connectome, both ranked (so not in matrix order)."""
    names = [f"N {i}" if i == 3 else f"{d}{i}" for i, d in enumerate("SSDDVCC")]  # one name with a space
    domains = ["SC", "SC", "DM", "DM", "VI", "CC", "CC"][:k]
    iu = np.triu_indices(k, 1)
    connections = pd.DataFrame(
        {
            "node_i": np.array(names)[iu[0]],
            "node_j": np.array(names)[iu[1]],
            "contrast": rng.normal(0, 1e-3, len(iu[0])),
        }
    )
    connections.loc[4, "contrast"] = np.nan  # untestable: ranked last, never drawn
    nodes = pd.DataFrame(
        {
            "node": names,
            "domain": domains,
            "x": rng.normal(0, 40, k).round(2),
            "y": rng.normal(0, 40, k).round(2),
            "z": rng.normal(0, 30, k).round(2),
            "contrast": rng.normal(0, 1e-2, k),
        }
    )
    ranked = [
        t.sort_values("contrast", ascending=False, na_position="last", kind="mergesort").reset_index(drop=True)
        for t in (nodes, connections)
    ]
    for t in ranked:
        t["rank"] = np.arange(1, len(t) + 1)
    return names, ranked[0], ranked[1]


def test_brainnet_files_parse_back_to_their_tables(rng, tmp_path):
    names, nodes, connections = _connectome(rng)
    write_exports(tmp_path, {"nodes": nodes, "connections": connections}, top_k=5)
    files = ExplanationFolder(tmp_path)
    rows = [line.split() for line in files.brainnet_nodes.read_text().splitlines()]
    assert all(len(r) == 6 for r in rows)
    labels = [r[5] for r in rows]
    assert labels == [n.replace(" ", "_") for n in names]  # the cohort's matrix order, no spaces
    by_node = nodes.set_index("node")
    domain_index = {"SC": 1, "DM": 2, "VI": 3, "CC": 4}  # in the order the domains first occur
    for r, name in zip(rows, names):
        assert [float(v) for v in r[:3]] == by_node.loc[name, ["x", "y", "z"]].tolist()
        assert int(r[3]) == domain_index[by_node.loc[name, "domain"]]
        assert float(r[4]) == abs(by_node.loc[name, "contrast"])
    matrix = np.loadtxt(files.brainnet_edges)
    assert matrix.shape == (len(names), len(names))
    np.testing.assert_array_equal(matrix, matrix.T)
    assert (np.diag(matrix) == 0).all()
    top = connections.head(5)
    index = {n: i for i, n in enumerate(names)}
    for edge in top.itertuples():
        assert matrix[index[edge.node_i], index[edge.node_j]] == edge.contrast
    assert np.count_nonzero(np.triu(matrix)) == 5  # every other connection is 0


def test_saving_attributions_writes_the_exports(cohort, rng, tmp_path):
    g, y, cov = cohort
    _, nodes, connections = _connectome(rng)
    tables = {"snps": _snp_table(g, y, cov), "nodes": nodes, "connections": connections}
    subjects = pd.DataFrame({"subject_id": ["s1", "s2"], "fold": [1, 2], "label": [0, 1]})
    Attributions(subjects=subjects, tables=tables).save(tmp_path / "full")
    assert all((tmp_path / "full" / name).is_file() for name in ExplanationFolder.EXPORTS)
    # a snps table from before the association's SE (no se_assoc): no summary statistics, still the BrainNet files
    old = tables["snps"].drop(columns=["se_assoc", "z_assoc", "n_assoc", "a1_freq"])
    Attributions(subjects=subjects, tables={**tables, "snps": old}).save(tmp_path / "old")
    written = sorted(name for name in ExplanationFolder.EXPORTS if (tmp_path / "old" / name).is_file())
    assert written == sorted([ExplanationFolder.BRAINNET_EDGES, ExplanationFolder.BRAINNET_NODES])
    # saved again over the full folder: its summary statistics, now of no table, are gone
    Attributions(subjects=subjects, tables={**tables, "snps": old}).save(tmp_path / "full")
    assert not (tmp_path / "full" / ExplanationFolder.GWAS_SSF).exists()
    assert (tmp_path / "full" / ExplanationFolder.BRAINNET_NODES).is_file()


@pytest.mark.parametrize("metadata", [["NR"], {"samples": {"sample_size": 3}}, {"genotyping_technology": [1]}])
def test_metadata_of_the_wrong_kind_is_refused(cohort, tmp_path, metadata):
    g, y, cov = cohort
    with pytest.raises(ParameterError, match="metadata"):
        write_exports(tmp_path, {"snps": _snp_table(g, y, cov)}, metadata=metadata)


def test_snps_table_carries_the_association_of_the_cohort(sim_cohort, tmp_path):
    """snps.csv as `result_tables` builds it (its genomic part, on a simulated cohort with no model: the
    attribution tests are stand-ins) holds logistic_association's SE, z, n and allele-1 frequency, and its
    summary statistics pass the validator."""
    cohort = load_cohort(sim_cohort.toml_path)
    labels = cohort.labels.astype(int)

    def stand_in(family, X):
        k = X.shape[1]
        return pd.DataFrame({"attribution": 0.0, "contrast": np.linspace(1, 0, k), "p_perm": 0.5}, index=range(k))

    every = dict(labels=labels, strata=np.zeros(len(labels), dtype=int), n_permutations=19, random_state=0)
    oof = SimpleNamespace(cohort=cohort, run=SimpleNamespace(train=TrainConfig()))
    matrices = {"snps": np.zeros((len(labels), cohort.genotypes.shape[1]))}
    matrices["loci"] = np.zeros((len(labels), len(TrainConfig().loci(cohort))))
    snps = _genomic_tables(oof, matrices, None, stand_in, every)["snps"]
    reference = logistic_association(cohort.genotypes, labels, association_covariates(cohort))
    by_snp = snps.set_index("snp").loc[cohort.snps["snp"]]
    for column in ("beta_assoc", "se_assoc", "z_assoc", "p_assoc", "a1_freq"):
        np.testing.assert_array_equal(by_snp[column].to_numpy(), reference[column].to_numpy(), err_msg=column)
    np.testing.assert_array_equal(by_snp["n_assoc"].to_numpy(), reference["n_obs"].to_numpy())
    assert snps.attrs["n_cases"] == labels.sum() and snps.attrs["genome_build"] == cohort.spec.genotypes.build
    write_exports(tmp_path, {"snps": snps})
    table = validate_gwas_ssf(ExplanationFolder(tmp_path).gwas_ssf)
    assert len(table) == np.isfinite(reference["p_assoc"]).sum()  # the simulator's SNPs are all writable
