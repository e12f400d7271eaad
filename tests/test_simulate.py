"""Tests of the ground-truth cohort simulator: file formats, genetics, planted signals, reproducibility."""

import hashlib
import json
import tomllib

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from bed_reader import open_bed
from scipy import stats

from migtrans.atlases import load_atlas, resample_atlas
from migtrans.exceptions import ParameterError
from migtrans.simulate import SimulatedCohort, _simulator, simulate_cohort

SMALL = dict(n_subjects=120, n_snps=2000, resolution=8)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate_cohort(tmp_path_factory.mktemp("sim") / "cohort", seed=3, **SMALL)


@pytest.fixture(scope="module")
def sim_sites(tmp_path_factory):
    return simulate_cohort(
        tmp_path_factory.mktemp("sites") / "cohort", seed=4, n_subjects=60, n_snps=300, resolution=8, n_sites=3
    )


def _hashes(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _r2_adjacent(g):
    x = g - np.nanmean(g, axis=0)
    x = np.where(np.isnan(x), 0.0, x)
    num = (x[:, 1:] * x[:, :-1]).mean(axis=0)
    den = x[:, 1:].std(axis=0) * x[:, :-1].std(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (num / den) ** 2


def _cohens_d(x, y):
    a, b = x[y == 1], x[y == 0]
    return (a.mean() - b.mean()) / np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)


# --- files and formats ------------------------------------------------------------------------


def test_returns_cohort_and_writes_every_file(sim):
    assert isinstance(sim, SimulatedCohort)
    out = sim.out_dir
    for name in [
        "cohort.toml",
        "phenotypes.tsv",
        "genotypes.bed",
        "genotypes.bim",
        "genotypes.fam",
        "fnc.npy",
        "fnc_subjects.txt",
        "fnc_nodes.tsv",
        "mask.nii.gz",
        "truth.json",
        "truth_subjects.tsv",
    ]:
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "smri").iterdir()) == [f"{s}.nii.gz" for s in sim.subject_ids]
    # Nothing left over from the temporary folder.
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_cohort_toml_matches_contract(sim, sim_sites):
    toml = tomllib.loads(sim.toml_path.read_text())
    assert toml == {
        "phenotypes": {
            "path": "phenotypes.tsv",
            "id_column": "subject_id",
            "label_column": "diagnosis",
            "positive_label": "SZ",
            "covariates": ["age", "sex"],
        },
        "genotypes": {"bfile": "genotypes", "build": "GRCh37"},
        "fnc": {"path": "fnc.npy", "subjects": "fnc_subjects.txt", "nodes": "fnc_nodes.tsv"},
        "smri": {"template": "smri/{subject_id}.nii.gz", "mask": "mask.nii.gz"},
    }
    sites = tomllib.loads(sim_sites.toml_path.read_text())["phenotypes"]
    assert sites["covariates"] == ["age", "sex", "site"] and sites["site_column"] == "site"


def test_phenotypes_table(sim, sim_sites):
    ph = pd.read_csv(sim.out_dir / "phenotypes.tsv", sep="\t")
    assert ph.columns.tolist() == ["subject_id", "diagnosis", "age", "sex"]
    assert ph["subject_id"].tolist() == list(sim.subject_ids) == [f"sub-{i:04d}" for i in range(1, 121)]
    np.testing.assert_array_equal((ph["diagnosis"] == "SZ").to_numpy(), sim.labels == 1)
    assert set(ph["diagnosis"]) == {"SZ", "HC"} and sim.labels.sum() == 60
    assert set(ph["sex"]) == {"M", "F"} and ph["age"].between(18, 65).all()
    ph3 = pd.read_csv(sim_sites.out_dir / "phenotypes.tsv", sep="\t")
    assert sorted(ph3["site"].unique()) == ["site1", "site2", "site3"]


def test_plink_fileset_round_trip(sim):
    bed = open_bed(sim.out_dir / "genotypes.bed", count_A1=True)
    g = bed.read(dtype="float32")
    np.testing.assert_array_equal(g, sim.genotypes)
    assert sim.genotypes.dtype == np.float32
    np.testing.assert_array_equal(bed.iid, sim.subject_ids)
    np.testing.assert_array_equal(bed.fid, sim.subject_ids)
    bim = pd.read_csv(sim.out_dir / "genotypes.bim", sep="\t", header=None, dtype={0: str})
    np.testing.assert_array_equal(bim[0], sim.snps["chrom"])
    np.testing.assert_array_equal(bim[1], sim.snps["snp"])
    np.testing.assert_array_equal(bim[3], sim.snps["pos"])
    np.testing.assert_array_equal(bim[4], sim.snps["a1"])
    np.testing.assert_array_equal(bim[5], sim.snps["a2"])
    fam = (sim.out_dir / "genotypes.fam").read_text().splitlines()
    assert all(len(line.split()) == 6 for line in fam)
    # A few missing calls, none on causal SNPs.
    missing = np.isnan(g)
    assert 0.0005 < missing.mean() < 0.005
    causal = sim.snps.index[sim.snps["snp"].isin([c["snp"] for c in sim.truth["causal_snps"]])]
    assert not missing[:, causal].any()


def test_fnc_files(sim):
    fnc = np.load(sim.out_dir / "fnc.npy")
    np.testing.assert_array_equal(fnc, sim.fnc)
    assert fnc.shape == (120, 53, 53) and fnc.dtype == np.float32
    np.testing.assert_array_equal(fnc, fnc.transpose(0, 2, 1))
    assert np.all(np.diagonal(fnc, axis1=1, axis2=2) == 0)
    assert (sim.out_dir / "fnc_subjects.txt").read_text().split() == list(sim.subject_ids)
    nodes = pd.read_csv(sim.out_dir / "fnc_nodes.tsv", sep="\t")
    assert nodes.columns[:5].tolist() == ["name", "domain", "x", "y", "z"]
    assert nodes["note"].str.contains("Seitzman").all()
    # Domain structure: within-domain coupling is stronger than between domains.
    dom = nodes["domain"].to_numpy()
    same = (dom[:, None] == dom[None, :]) & ~np.eye(53, dtype=bool)
    mean_fnc = fnc.mean(axis=0)
    assert mean_fnc[same].mean() > mean_fnc[~same & ~np.eye(53, dtype=bool)].mean() + 0.1


def test_smri_files_and_voxels(sim):
    mask_img = nib.load(sim.out_dir / "mask.nii.gz")
    assert mask_img.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(mask_img.dataobj).astype(bool), sim.mask)
    np.testing.assert_allclose(mask_img.affine, sim.affine)
    assert np.allclose(np.diag(sim.affine)[:3], 8.0)
    assert sim.voxels.shape == (120, sim.mask.sum()) and sim.voxels.dtype == np.float32
    for k in (0, 57):
        img = nib.load(sim.out_dir / "smri" / f"{sim.subject_ids[k]}.nii.gz")
        vol = np.asarray(img.dataobj)
        assert vol.dtype == np.float32 and vol.shape == sim.mask.shape
        np.testing.assert_array_equal(vol[sim.mask], sim.voxels[k])
        assert vol.min() >= 0 and vol.max() <= 1


def test_truth_json_matches_returned_truth(sim):
    truth = json.loads((sim.out_dir / "truth.json").read_text())
    assert truth == sim.truth
    assert truth["settings"]["seed"] == 3
    assert truth["settings"]["signal"] == {"snp": 1.0, "fnc": 1.0, "smri": 1.0}
    assert len(truth["causal_snps"]) == _simulator.N_CAUSAL_SNPS
    regions = truth["smri_regions"]
    assert {r["region"] for r in regions} == {"Hippocampus_L", "Temporal_Sup_L", "Insula_R", "Thalamus_R"}
    assert all(r["atlas"] == "AAL" and r["direction"] == "decrease" and r["n_voxels"] > 0 for r in regions)
    assert {e["direction"] for e in truth["fnc_edges"]} == {"increase", "decrease"}
    subj = pd.read_csv(sim.out_dir / "truth_subjects.tsv", sep="\t")
    assert subj["subject_id"].tolist() == list(sim.subject_ids)


# --- genetics ---------------------------------------------------------------------------------


def test_snp_map_realistic(sim):
    snps = sim.snps
    assert snps.columns.tolist() == ["snp", "chrom", "pos", "a1", "a2", "maf", "block"]
    assert snps["chrom"].tolist() == sorted(snps["chrom"], key=int)
    assert set(snps["chrom"]) == {str(c) for c in range(1, 23)}
    for _, grp in snps.groupby("chrom"):
        assert grp["pos"].is_monotonic_increasing and grp["pos"].is_unique
    # SNP density follows chromosome length: chr1 holds ~4-5 times as many SNPs as chr21.
    counts = snps["chrom"].value_counts()
    assert 3.5 < counts["1"] / counts["21"] < 6
    assert (snps["a1"] != snps["a2"]).all() and set(snps["a1"]) <= set("ACGT")
    assert snps["maf"].between(0.01, 0.5).all()
    assert snps["maf"].median() < 0.25  # skewed towards rare alleles
    # Blocks are contiguous runs inside one chromosome.
    assert snps.groupby("block")["chrom"].nunique().max() == 1
    assert (np.diff(snps["block"]) >= 0).all()
    # A1 is the minor allele in the sample too.
    obs = np.nanmean(sim.genotypes, axis=0) / 2
    assert np.corrcoef(obs, snps["maf"])[0, 1] > 0.9
    assert obs.max() < 0.62


def test_ld_within_blocks_not_across(sim):
    r2 = _r2_adjacent(sim.genotypes)
    block = sim.snps["block"].to_numpy()
    same = block[1:] == block[:-1]
    within, across = np.nanmean(r2[same]), np.nanmean(r2[~same])
    assert within > 0.3
    assert across < 0.05


def test_hardy_weinberg_holds(sim):
    g = sim.genotypes[:, sim.snps["maf"].to_numpy() >= 0.1]
    n = np.sum(~np.isnan(g), axis=0)
    counts = np.stack([np.sum(g == k, axis=0) for k in (0, 1, 2)])
    p = (counts[1] + 2 * counts[2]) / (2 * n)
    expected = np.stack([(1 - p) ** 2, 2 * p * (1 - p), p**2]) * n
    chi2 = ((counts - expected) ** 2 / expected).sum(axis=0)
    pvals = stats.chi2.sf(chi2, df=1)
    # Under HWE, p-values are roughly uniform: few small ones, none pile up near zero.
    assert np.mean(pvals < 0.01) < 0.03
    assert 0.35 < np.median(pvals) < 0.65


def test_causal_snps_detectable(tmp_path):
    import statsmodels.api as sm

    sim = simulate_cohort(tmp_path / "c", n_subjects=1000, n_snps=500, resolution=8, seed=11)
    index = sim.snps.set_index("snp").index
    for c in sim.truth["causal_snps"]:
        assert c["maf"] >= 0.1
        x = sim.genotypes[:, index.get_loc(c["snp"])]
        fit = sm.Logit(sim.labels.astype(float), sm.add_constant(x.astype(float))).fit(disp=0)
        assert fit.pvalues[1] < 1e-4, c
        assert np.sign(fit.params[1]) == np.sign(c["effect"])
    assert len({c["block"] for c in sim.truth["causal_snps"]}) == len(sim.truth["causal_snps"])


# --- planted imaging signal and labels --------------------------------------------------------


def test_planted_regions_decrease_in_cases(sim):
    atlas, _ = load_atlas("aal")
    grid = np.asarray(resample_atlas(atlas, sim.affine, sim.mask.shape).dataobj)[sim.mask]
    z = pd.read_csv(sim.out_dir / "truth_subjects.tsv", sep="\t")["z_smri"].to_numpy()
    for region in sim.truth["smri_regions"]:
        in_region = grid == region["label"]
        assert in_region.sum() == region["n_voxels"]
        mean = sim.voxels[:, in_region].mean(axis=1)
        assert _cohens_d(mean, sim.labels) < -0.3, region["region"]
        assert np.corrcoef(mean, z)[0, 1] < -0.5
    # An unplanted region carries no label signal.
    _, labels = load_atlas("aal")
    control = grid == int(labels.loc[labels["name"] == "Precentral_L", "index"].iloc[0])
    assert abs(_cohens_d(sim.voxels[:, control].mean(axis=1), sim.labels)) < 0.4


def test_planted_edges_shift_in_their_direction(sim):
    names = sim.nodes["name"].tolist()
    for edge in sim.truth["fnc_edges"]:
        values = sim.fnc[:, names.index(edge["node_i"]), names.index(edge["node_j"])]
        d = _cohens_d(values, sim.labels)
        assert (d > 0.3) if edge["direction"] == "increase" else (d < -0.3), edge


def test_labels_follow_liability(sim):
    subj = pd.read_csv(sim.out_dir / "truth_subjects.tsv", sep="\t")
    assert subj["liability"][sim.labels == 1].min() >= subj["liability"][sim.labels == 0].max()
    for col in ("z_snp", "z_fnc", "z_smri"):
        assert abs(subj[col].mean()) < 1e-5 and abs(subj[col].std(ddof=0) - 1) < 1e-4
        assert stats.pointbiserialr(sim.labels, subj[col])[0] > 0.2


def test_null_labels_independent_of_scores(tmp_path):
    sim = simulate_cohort(tmp_path / "null", null=True, seed=5, n_subjects=200, n_snps=300, resolution=8)
    assert sim.labels.sum() == 100 and sim.truth["label_model"]["null"] is True
    subj = pd.read_csv(sim.out_dir / "truth_subjects.tsv", sep="\t")
    for col in ("z_snp", "z_fnc", "z_smri", "liability"):
        assert stats.pointbiserialr(sim.labels, subj[col]).pvalue > 0.01, col


def test_case_share_sets_the_share_of_cases_from_the_top_of_the_liability(tmp_path):
    sim = simulate_cohort(tmp_path / "imb", case_share=0.3, seed=5, n_subjects=101, n_snps=300, resolution=8)
    assert sim.labels.sum() == 30 and sim.truth["label_model"]["rule"].endswith("top 30% of the liability")
    subj = pd.read_csv(sim.out_dir / "truth_subjects.tsv", sep="\t")
    assert subj["liability"][sim.labels == 1].min() >= subj["liability"][sim.labels == 0].max()
    null = simulate_cohort(
        tmp_path / "imb-null", case_share=0.3, null=True, seed=5, n_subjects=100, n_snps=300, resolution=8
    )
    assert null.labels.sum() == 30 and "30% cases" in null.truth["label_model"]["null_rule"]


def test_signal_zero_removes_a_modality(tmp_path):
    sim = simulate_cohort(tmp_path / "nofnc", signal={"fnc": 0.0}, seed=6, n_subjects=200, n_snps=300, resolution=8)
    assert sim.truth["label_model"]["weights"] == {"snp": 1.0, "fnc": 0.0, "smri": 1.0}
    subj = pd.read_csv(sim.out_dir / "truth_subjects.tsv", sep="\t")
    assert stats.pointbiserialr(sim.labels, subj["z_fnc"]).pvalue > 0.01
    assert stats.pointbiserialr(sim.labels, subj["z_smri"]).pvalue < 1e-4


# --- reproducibility and safety ---------------------------------------------------------------


def test_same_seed_same_bytes_different_seed_differs(sim, tmp_path):
    again = simulate_cohort(tmp_path / "again", seed=3, **SMALL)
    first, second = _hashes(sim.out_dir), _hashes(again.out_dir)
    assert first == second
    other = _hashes(simulate_cohort(tmp_path / "other", seed=4, **SMALL).out_dir)
    assert other.keys() == first.keys()
    # Files that depend on the seed all change; the fixed ones (toml, ids, nodes, mask) may not.
    fixed = ("cohort.toml", "fnc_subjects.txt", "fnc_nodes.tsv", "mask.nii.gz", ".migtrans-output")
    assert all(other[k] != first[k] for k in first if k not in fixed)


def test_keep_volumes_false_writes_same_volumes(sim, tmp_path):
    lean = simulate_cohort(tmp_path / "lean", seed=3, keep_volumes=False, **SMALL)
    assert lean.voxels is None
    a, b = _hashes(sim.out_dir), _hashes(lean.out_dir)
    assert {k: v for k, v in a.items() if k != "truth.json"} == {k: v for k, v in b.items() if k != "truth.json"}


def test_sites_shift_imaging(sim_sites):
    site = pd.read_csv(sim_sites.out_dir / "phenotypes.tsv", sep="\t")["site"].to_numpy()
    means = [sim_sites.voxels[site == s].mean() for s in ("site1", "site2", "site3")]
    assert np.ptp(means) > 0.001


def test_overwrite_and_nonempty_dir(tmp_path):
    from migtrans.utils import mark_output

    out = tmp_path / "c"
    out.mkdir()
    (out / "old.txt").write_text("x")
    mark_output(out, "cohort")  # an earlier simulated cohort (only those are replaced)
    with pytest.raises(ParameterError, match="out_dir.*overwrite"):
        simulate_cohort(out, n_subjects=20, n_snps=100, resolution=8)
    assert (out / "old.txt").exists()
    simulate_cohort(out, n_subjects=20, n_snps=100, resolution=8, overwrite=True)
    assert not (out / "old.txt").exists() and (out / "cohort.toml").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_failure_leaves_nothing(tmp_path, monkeypatch):
    from migtrans.simulate import _smri

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(_smri, "subject_volume", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        simulate_cohort(tmp_path / "c", n_subjects=20, n_snps=100, resolution=8)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(signal={"genes": 1.0}), "'genes'"),
        (dict(signal={"fnc": -0.5}), r"signal\['fnc'\]"),
        (dict(signal={"smri": "big"}), r"signal\['smri'\]"),
        (dict(n_subjects=19), "n_subjects"),
        (dict(n_snps=99), "n_snps"),
        (dict(resolution=0), "resolution"),
        (dict(resolution=-2.0), "resolution"),
        (dict(n_sites=0), "n_sites"),
        (dict(case_share=0.95), "case_share"),
    ],
)
def test_parameter_errors(tmp_path, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        simulate_cohort(tmp_path / "c", **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_fine_resolution_streams(tmp_path):
    sim = simulate_cohort(tmp_path / "fine", n_subjects=20, n_snps=100, resolution=1.5, keep_volumes=False)
    assert sim.voxels is None
    assert np.allclose(np.diag(sim.affine)[:3], 1.5)
    img = nib.load(sim.out_dir / "smri" / "sub-0001.nii.gz")
    assert img.shape == sim.mask.shape and sim.mask.sum() > 200_000


def test_cohort_loader_reads_simulation(sim_sites):
    # The contract between the simulator and migtrans.data: what is written is what is read.
    from migtrans.data import load_cohort

    cohort = load_cohort(sim_sites.toml_path)
    np.testing.assert_array_equal(cohort.subject_ids, sim_sites.subject_ids)
    np.testing.assert_array_equal(np.asarray(cohort.labels), sim_sites.labels)
    np.testing.assert_array_equal(np.asarray(cohort.genotypes), sim_sites.genotypes)
    np.testing.assert_array_equal(np.asarray(cohort.fnc), sim_sites.fnc)
    np.testing.assert_array_equal(np.asarray(cohort.voxels), sim_sites.voxels)
    np.testing.assert_array_equal(cohort.mask, sim_sites.mask)
