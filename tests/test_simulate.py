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
from migtrans.cli import main
from migtrans.exceptions import ParameterError
from migtrans.simulate import SimulatedCohort, _simulator, simulate_cohort

SMALL = dict(n_subjects=120, n_snps=2000, resolution=8)
SITES = ("site1", "site2", "site3")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate_cohort(tmp_path_factory.mktemp("sim") / "cohort", seed=3, **SMALL)


@pytest.fixture(scope="module")
def sim_sites(tmp_path_factory):
    return simulate_cohort(
        tmp_path_factory.mktemp("sites") / "cohort", seed=4, n_subjects=60, n_snps=300, resolution=8, n_sites=3
    )


@pytest.fixture(scope="module")
def structured(tmp_path_factory):
    """Two ancestry groups (F_ST 0.05) with different case shares, and sibling pairs."""
    return simulate_cohort(
        tmp_path_factory.mktemp("structured") / "cohort",
        seed=7,
        n_subjects=200,
        n_snps=2000,
        resolution=8,
        n_ancestries=2,
        fst=0.05,
        ancestry_case_shares=(0.3, 0.7),
        relative_share=0.2,
    )


@pytest.fixture(scope="module")
def scanners(tmp_path_factory):
    """One seed, three sites: no site effect, site effect 3, and no site effect with a sex effect of 2 SD."""
    folder = tmp_path_factory.mktemp("scanners")
    kw = dict(n_subjects=90, n_snps=300, resolution=8, n_sites=3, seed=12)
    return {
        "none": simulate_cohort(folder / "none", site_effect=0, **kw),
        "strong": simulate_cohort(folder / "strong", site_effect=3, **kw),
        "sex": simulate_cohort(folder / "sex", site_effect=0, sex_effect=2, **kw),
    }


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
    assert cohort.qc.keep_subjects.all()
    np.testing.assert_array_equal(np.asarray(cohort.genotypes), sim_sites.genotypes[:, cohort.qc.keep_snps])
    np.testing.assert_array_equal(np.asarray(cohort.fnc), sim_sites.fnc)
    np.testing.assert_array_equal(np.asarray(cohort.voxels), sim_sites.voxels)
    np.testing.assert_array_equal(cohort.mask, sim_sites.mask)


# --- what real cohorts add: ancestry, relatives, scanners, sex ---------------------------------

# Digests of the files written before ancestry, relatives, site_effect and sex_effect existed (computed with
# that code, in this environment): with every new option at its default (preset "easy" included) the files
# must not change. NIfTI volumes are compared by their voxels, truth.json without the keys added since.
EARLIER_DIGESTS = {
    "sim": {
        "genotypes.bed": "34edf6ffce35c3da",
        "genotypes.bim": "ab237939247faf8f",
        "genotypes.fam": "9e9e173de6746506",
        "phenotypes.tsv": "061cedaf939fcf2c",
        "truth_subjects.tsv": "6de05337ff34b5f1",
        "cohort.toml": "646d1e37d1ec37e7",
        "fnc.npy": "24776034af80225e",
        "smri": "3eba4eb287534670",
        "truth.json": "d446df1a57c1ed3c",
    },
    "sim_sites": {
        "genotypes.bed": "d650f47c5da62702",
        "genotypes.bim": "f30efc604a274923",
        "genotypes.fam": "f8e8c7bdf60e0558",
        "phenotypes.tsv": "5923a06113d2e92c",
        "truth_subjects.tsv": "2e004c363964a5ab",
        "cohort.toml": "23ca9daab6252c0e",
        "fnc.npy": "16633e4e731c7cd6",
        "smri": "4bc34806bd84e82a",
        "truth.json": "90dc01e55f4190a1",
    },
    "null": {
        "genotypes.bed": "e206fae59c7955bc",
        "genotypes.bim": "067f7ddab1784f6e",
        "genotypes.fam": "e295cb4e04823944",
        "phenotypes.tsv": "a1c1ef92fc55510a",
        "truth_subjects.tsv": "be20c090a6916ae7",
        "cohort.toml": "23ca9daab6252c0e",
        "fnc.npy": "778f2dca2665ca7b",
        "smri": "7796346f733211b7",
        "truth.json": "fab0022f25ae7a44",
    },
}


def _earlier_digest(folder):
    def sha(data):
        return hashlib.sha256(data).hexdigest()[:16]

    names = ("genotypes.bed", "genotypes.bim", "genotypes.fam", "phenotypes.tsv", "truth_subjects.tsv", "cohort.toml")
    out = {name: sha((folder / name).read_bytes()) for name in names}
    out["fnc.npy"] = sha(np.load(folder / "fnc.npy").tobytes())
    volumes = hashlib.sha256()
    for path in sorted((folder / "smri").iterdir()):
        volumes.update(np.asarray(nib.load(path).dataobj).tobytes())
    out["smri"] = volumes.hexdigest()[:16]
    truth = json.loads((folder / "truth.json").read_text())
    for key in _simulator.NEW_SECTIONS + _simulator.PRESET_SECTIONS:
        del truth[key]
    for key in _simulator.NEW_SETTINGS + _simulator.PRESET_SETTINGS:
        del truth["settings"][key]
    out["truth.json"] = sha((json.dumps(truth, sort_keys=True, indent=2) + "\n").encode())
    return out


@pytest.mark.parametrize("name", ["sim", "sim_sites", "null"])
def test_defaults_write_the_files_of_earlier_versions(name, request, tmp_path):
    if name == "null":
        kw = dict(seed=5, n_subjects=60, n_snps=300, resolution=8, n_sites=2, null=True, case_share=0.3)
        cohort = simulate_cohort(tmp_path / "null", **kw)
    else:
        cohort = request.getfixturevalue(name)
    assert _earlier_digest(cohort.out_dir) == EARLIER_DIGESTS[name]


def _hudson_fst(g1, g2):
    """Hudson's F_ST (ratio of averages, sample-size corrected) from two groups' dosages."""
    n1, n2 = 2 * np.sum(~np.isnan(g1), axis=0), 2 * np.sum(~np.isnan(g2), axis=0)
    p1, p2 = np.nanmean(g1, axis=0) / 2, np.nanmean(g2, axis=0) / 2
    num = (p1 - p2) ** 2 - p1 * (1 - p1) / (n1 - 1) - p2 * (1 - p2) / (n2 - 1)
    return np.sum(num) / np.sum(p1 * (1 - p2) + p2 * (1 - p1))


def test_ancestry_groups_differ_by_the_requested_fst(structured, tmp_path):
    subj = pd.read_csv(structured.out_dir / "truth_subjects.tsv", sep="\t")
    ancestry = subj["ancestry"].to_numpy()
    assert np.bincount(ancestry).tolist() == [0, 100, 100]
    g = structured.genotypes
    assert 0.035 < _hudson_fst(g[ancestry == 1], g[ancestry == 2]) < 0.065
    assert abs(structured.truth["population"]["ancestry"]["fst_populations"] - 0.05) < 0.01

    # Inside a group genotypes are in Hardy-Weinberg proportions; pooled, the groups lack heterozygotes
    # (Wahlund effect, about F / 2 with two groups).
    def observed_over_expected_heterozygosity(dosages):
        common = dosages[:, structured.snps["maf"].to_numpy() >= 0.2]
        p = np.nanmean(common, axis=0) / 2
        return np.nanmean(common == 1) / np.mean(2 * p * (1 - p))

    assert abs(observed_over_expected_heterozygosity(g[ancestry == 1]) - 1) < 0.015
    assert observed_over_expected_heterozygosity(g) < 0.985
    # Without structure the two halves of a cohort differ only by sampling.
    flat = simulate_cohort(tmp_path / "flat", seed=7, n_subjects=200, n_snps=2000, resolution=8)
    half = np.arange(200) % 2 == 0
    assert abs(_hudson_fst(flat.genotypes[half], flat.genotypes[~half])) < 0.005


def test_case_shares_are_set_per_ancestry_group(structured):
    subj = pd.read_csv(structured.out_dir / "truth_subjects.tsv", sep="\t")
    ancestry, labels = subj["ancestry"].to_numpy(), structured.labels
    assert [labels[ancestry == k].mean() for k in (1, 2)] == [0.3, 0.7]
    assert structured.truth["population"]["ancestry"]["case_shares"] == [0.3, 0.7]
    for k in (1, 2):  # the top of the liability within each group
        liability, y = subj["liability"][ancestry == k], labels[ancestry == k]
        assert liability[y == 1].min() >= liability[y == 0].max()
    model = structured.truth["label_model"]
    assert model["rule"] == "label 1 (SZ) for the top 30% / 70% of the liability within ancestry group 1 / 2"
    assert structured.truth["settings"]["case_share"] is None


def _lambda_trend(genotypes, labels):
    """lambda_GC of the Armitage trend test (n r^2 between mean-imputed dosage and label)."""
    g = np.where(np.isnan(genotypes), np.nanmean(genotypes, axis=0), genotypes)
    g = g[:, g.std(axis=0) > 0]
    x = (g - g.mean(axis=0)) / g.std(axis=0)
    y = (labels - labels.mean()) / labels.std()
    chi2 = len(y) * (y @ x / len(y)) ** 2
    return np.median(chi2) / stats.chi2.ppf(0.5, 1)


def test_ancestry_dependent_case_shares_confound_a_null_cohort(tmp_path):
    kw = dict(n_subjects=300, n_snps=1000, resolution=8, seed=9, null=True, n_ancestries=2, fst=0.05)
    confounded = simulate_cohort(tmp_path / "confounded", ancestry_case_shares=(0.3, 0.7), **kw)
    subj = pd.read_csv(confounded.out_dir / "truth_subjects.tsv", sep="\t")
    assert [confounded.labels[subj["ancestry"] == k].mean() for k in (1, 2)] == [0.3, 0.7]
    assert "30% / 70% cases in ancestry group 1 / 2" in confounded.truth["label_model"]["null_rule"]
    # Each SNP's chi2 is inflated by about n F r^2, r = 0.4 the correlation of label and group: lambda about
    # 1 + 300 x 0.05 x 0.16 = 3.4.
    assert _lambda_trend(confounded.genotypes, confounded.labels) > 2.0
    # The same structure with equal shares leaves a null calibrated.
    balanced = simulate_cohort(tmp_path / "balanced", **kw)
    assert _lambda_trend(balanced.genotypes, balanced.labels) < 1.3


def test_siblings_share_a_quarter_of_their_genome(structured):
    ids = list(structured.subject_ids)
    relatives = structured.truth["relatives"]
    assert len(relatives) == structured.truth["population"]["relatedness"]["n_sibling_pairs"] == 20
    assert all(kind == "sibling" for *_, kind in relatives)
    pairs = np.array([(ids.index(a), ids.index(b)) for a, b, _ in relatives])
    assert len(np.unique(pairs)) == 40 and (pairs[:, 0] < pairs[:, 1]).all()
    subj = pd.read_csv(structured.out_dir / "truth_subjects.tsv", sep="\t")
    ancestry, family = subj["ancestry"].to_numpy(), subj["family"].to_numpy()
    assert (ancestry[pairs[:, 0]] == ancestry[pairs[:, 1]]).all()
    assert (family[pairs[:, 0]] == family[pairs[:, 1]]).all() and subj["family"].nunique() == 200 - 20
    # KING-robust kinship: 0.25 for siblings, 0 for unrelated subjects of one group (negative across groups).
    g = np.nan_to_num(structured.genotypes, nan=-1.0)
    het, hom0, hom2 = ((g == k).astype(float) for k in (1, 0, 2))
    n_het = het.sum(axis=1)
    king = (het @ het.T - 2 * (hom0 @ hom2.T + hom2 @ hom0.T)) / (n_het[:, None] + n_het[None, :])
    siblings = king[pairs[:, 0], pairs[:, 1]]
    unrelated = np.triu(ancestry[:, None] == ancestry[None, :], 1)
    unrelated[pairs[:, 0], pairs[:, 1]] = False
    assert abs(siblings.mean() - 0.25) < 0.04 and abs(king[unrelated].mean()) < 0.02
    assert siblings.min() > np.percentile(king[unrelated], 99)


def test_site_effect_zero_removes_scanner_differences_and_three_makes_them_clear(scanners):
    site = pd.read_csv(scanners["none"].out_dir / "phenotypes.tsv", sep="\t")["site"].to_numpy()
    iu = np.triu_indices(scanners["none"].fnc.shape[1], 1)

    def site_p_values(cohort):
        gm = cohort.voxels.mean(axis=1)
        edges = cohort.fnc[:, iu[0], iu[1]]
        return (
            stats.f_oneway(*[gm[site == s] for s in SITES]).pvalue,
            stats.f_oneway(*[edges[site == s] for s in SITES], axis=0).pvalue,
        )

    gm_p, edge_p = site_p_values(scanners["none"])
    assert gm_p > 0.05 and np.mean(edge_p < 0.01) < 0.02
    gm_p, edge_p = site_p_values(scanners["strong"])
    assert gm_p < 1e-6 and np.mean(edge_p < 0.01) > 0.5


def test_truth_records_each_site_offset_and_scale(scanners):
    none, strong = scanners["none"], scanners["strong"]
    effects = strong.truth["site_effects"]
    assert effects["site_effect"] == 3.0
    assert effects["fnc_offset_sd"] == pytest.approx(0.09) and effects["smri_offset_sd"] == pytest.approx(0.03)
    assert effects["fnc_scale_sd"] == pytest.approx(0.12) and effects["smri_scale_sd"] == pytest.approx(0.06)
    assert [s["site"] for s in effects["sites"]] == list(SITES)
    assert all(s["fnc_scale"] == 1 and s["smri_offset"] == 0 for s in none.truth["site_effects"]["sites"])
    # Same seed, so the strong cohort is the cohort without site effects put through the recorded ones.
    site = pd.read_csv(none.out_dir / "phenotypes.tsv", sep="\t")["site"].str[4:].astype(int).to_numpy() - 1
    k = none.fnc.shape[1]
    offset = np.zeros((3, k, k))
    for j, s in enumerate(effects["sites"]):
        offset[j][np.triu_indices(k, 1)] = s["fnc_offset"]
    offset += offset.transpose(0, 2, 1)
    scale = np.array([s["fnc_scale"] for s in effects["sites"]])
    np.testing.assert_allclose(strong.fnc, scale[site, None, None] * none.fnc + offset[site], atol=1e-5)
    # GM: each site's mean shifts by (scale - 1) x its mean GM + offset (noise is added after scaling).
    gm_none, gm_strong = none.voxels.mean(axis=1), strong.voxels.mean(axis=1)
    for j, s in enumerate(effects["sites"]):
        expected = (s["smri_scale"] - 1) * gm_none[site == j].mean() + s["smri_offset"]
        assert gm_strong[site == j].mean() - gm_none[site == j].mean() == pytest.approx(expected, abs=0.003)


def test_sex_effect_shifts_gm_and_every_edge(scanners):
    none, sex_cohort = scanners["none"], scanners["sex"]
    male = pd.read_csv(none.out_dir / "phenotypes.tsv", sep="\t")["sex"].to_numpy() == "M"
    # Every edge moves by sex_effect x 0.10 x (+0.5 male, -0.5 female); the diagonal stays 0.
    shift = np.where(male, 0.1, -0.1)[:, None, None] * (1 - np.eye(none.fnc.shape[1]))
    np.testing.assert_allclose(sex_cohort.fnc - none.fnc, shift, atol=1e-6)
    gm = sex_cohort.voxels.mean(axis=1)
    assert abs(_cohens_d(none.voxels.mean(axis=1), male)) < 0.5 and _cohens_d(gm, male) > 1.0
    sex = sex_cohort.truth["covariate_effects"]["sex"]
    assert sex["sex_effect"] == 2.0 and sex["code"] == {"M": 0.5, "F": -0.5}
    assert "age - 35" in sex_cohort.truth["covariate_effects"]["age"]["smri"]


def test_truth_records_every_new_setting(structured, sim, scanners):
    settings = json.loads((structured.out_dir / "truth.json").read_text())["settings"]
    assert {k: settings[k] for k in _simulator.NEW_SETTINGS} == {
        "n_ancestries": 2,
        "fst": 0.05,
        "ancestry_case_shares": [0.3, 0.7],
        "relative_share": 0.2,
        "site_effect": None,
        "sex_effect": 0.0,
        "subjects_seed": None,
    }
    assert scanners["sex"].truth["settings"]["site_effect"] == 0.0
    assert scanners["sex"].truth["settings"]["sex_effect"] == 2.0
    # The defaults: one population, no relatives, the earlier scanner model, no sex effect.
    truth = sim.truth
    assert {k: truth["settings"][k] for k in _simulator.NEW_SETTINGS} == {
        "n_ancestries": 1,
        "fst": 0.02,
        "ancestry_case_shares": None,
        "relative_share": 0.0,
        "site_effect": None,
        "sex_effect": 0.0,
        "subjects_seed": None,
    }
    assert truth["relatives"] == [] and truth["population"]["ancestry"]["group_sizes"] == [120]
    assert truth["site_effects"]["sites"] == [] and set(_simulator.NEW_SECTIONS) <= set(truth)
    columns = pd.read_csv(sim.out_dir / "truth_subjects.tsv", sep="\t").columns
    assert "ancestry" not in columns and "family" not in columns


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_ancestries=6), "n_ancestries"),
        (dict(n_ancestries=1.5), "n_ancestries"),
        (dict(n_ancestries=2, fst=0.0), "fst"),
        (dict(n_ancestries=2, fst=0.5), "fst"),
        (dict(n_ancestries=2, ancestry_case_shares=(0.5,)), "ancestry_case_shares: expected 2 shares"),
        (dict(n_ancestries=2, ancestry_case_shares="0.3,0.7"), "ancestry_case_shares: expected 2 shares"),
        (dict(n_ancestries=2, ancestry_case_shares=(0.3, 0.95)), r"ancestry_case_shares\[1\]"),
        (dict(n_ancestries=2, ancestry_case_shares=(0.3, 0.7), case_share=0.4), "case_share"),
        (dict(relative_share=0.6), "relative_share"),
        (dict(relative_share=-0.1), "relative_share"),
        (dict(site_effect=-1.0), "site_effect"),
        (dict(site_effect=float("nan")), "site_effect"),
        (dict(sex_effect=9.0), "sex_effect"),
        (dict(subjects_seed=-1), "subjects_seed"),
        (dict(subjects_seed=1.5), "subjects_seed"),
    ],
)
def test_new_parameter_errors(tmp_path, kwargs, match):
    with pytest.raises(ParameterError, match=match) as info:
        simulate_cohort(tmp_path / "c", n_subjects=20, n_snps=100, resolution=8, **kwargs)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


CLI_SMALL = ["--subjects", "40", "--snps", "100", "--resolution", "8"]


@pytest.mark.parametrize(
    "options, flag",
    [
        (["--ancestries", "0"], "--ancestries"),
        (["--ancestries", "2", "--fst", "0.7"], "--fst"),
        (["--ancestries", "2", "--ancestry-case-shares", "0.3"], "--ancestry-case-shares"),
        (["--ancestries", "2", "--ancestry-case-shares", "0.3,x"], "--ancestry-case-shares"),
        (["--ancestries", "2", "--ancestry-case-shares", "0.3,0.95"], "--ancestry-case-shares"),
        (["--ancestries", "2", "--ancestry-case-shares", "0.3,0.7", "--case-share", "0.4"], "--case-share"),
        (["--case-share", "0.95"], "--case-share"),
        (["--relatives", "0.8"], "--relatives"),
        (["--site-effect", "-1"], "--site-effect"),
        (["--sex-effect", "inf"], "--sex-effect"),
        (["--subjects-seed", "-1"], "--subjects-seed"),
    ],
)
def test_cli_refuses_bad_new_flags_in_one_line(tmp_path, capsys, options, flag):
    status = main(["simulate", str(tmp_path / "c"), *CLI_SMALL, *options])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1 and flag in err, err
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_and_reports_a_structured_cohort(tmp_path, capsys):
    out = tmp_path / "c"
    options = ["--ancestries", "2", "--ancestry-case-shares", "0.3,0.7", "--relatives", "0.1", "--null"]
    assert main(["simulate", str(out), *CLI_SMALL, *options, "--sites", "2", "--site-effect", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "labels independent of all data but ancestry" in lines[2]
    assert lines[3] == (
        "  also: 2 ancestry groups (F_ST 0.02; cases 30%/70%), 2 sibling pairs, site effect x2 (see truth.json)"
    )
    settings = json.loads((out / "truth.json").read_text())["settings"]
    assert settings["ancestry_case_shares"] == [0.3, 0.7] and settings["relative_share"] == 0.1
    assert settings["site_effect"] == 2.0 and settings["null"] is True
    # Nothing new switched on: no extra line.
    assert main(["simulate", str(tmp_path / "plain"), *CLI_SMALL]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


# --- replication cohorts -------------------------------------------------------------------------------------

REPLICATION = dict(
    seed=21,
    n_snps=1500,
    resolution=8,
    n_sites=2,
    site_effect=1.0,
    n_ancestries=2,
    fst=0.05,
    relative_share=0.1,
    signal={"snp": 2.0},
)
# truth.json entries that describe a cohort's own subjects rather than its generator
SUBJECT_TRUTH = ("relatives", "causal_snps")


@pytest.fixture(scope="module")
def replication(tmp_path_factory):
    """A cohort with ancestry groups, siblings and scanner effects; a replication cohort of other size drawn
    from its generator; and a cohort of another seed for contrast."""
    folder = tmp_path_factory.mktemp("replication")
    return {
        "first": simulate_cohort(folder / "first", n_subjects=160, **REPLICATION),
        "again": simulate_cohort(folder / "again", n_subjects=140, subjects_seed=5, **REPLICATION),
        "other": simulate_cohort(folder / "other", n_subjects=140, **{**REPLICATION, "seed": 22}),
    }


def _generator_truth(truth):
    """truth.json without what describes the cohort's own subjects."""
    out = {k: v for k, v in truth.items() if k not in SUBJECT_TRUTH}
    out["settings"] = {k: v for k, v in truth["settings"].items() if k not in ("n_subjects", "subjects_seed")}
    out["label_model"] = {k: v for k, v in truth["label_model"].items() if k != "prevalence"}
    out["architecture"] = {k: v for k, v in truth["architecture"].items() if k != "cohort"}
    ancestry = truth["population"]["ancestry"]
    out["population"] = {
        "ancestry": {k: v for k, v in ancestry.items() if k not in ("group_sizes", "case_shares")},
        "relatedness": {k: v for k, v in truth["population"]["relatedness"].items() if k != "n_sibling_pairs"},
    }
    return out


def test_replicate_shares_the_generator_and_redraws_the_subjects(replication):
    first, again = replication["first"], replication["again"]
    for name in ("genotypes.bim", "fnc_nodes.tsv", "mask.nii.gz", "cohort.toml"):
        assert (first.out_dir / name).read_bytes() == (again.out_dir / name).read_bytes(), name
    assert _generator_truth(again.truth) == _generator_truth(first.truth)
    assert again.truth["site_effects"]["sites"] and again.truth["population"]["ancestry"]["fst_populations"]
    mine, theirs = first.truth["causal_snps"], again.truth["causal_snps"]
    assert [(c["snp"], c["a1"], np.sign(c["effect"])) for c in mine] == [
        (c["snp"], c["a1"], np.sign(c["effect"])) for c in theirs
    ]
    # the per-SD effects are the cohort's own sample's (standardised over its subjects)
    np.testing.assert_allclose([c["effect"] for c in theirs], [c["effect"] for c in mine], rtol=0.1)
    assert again.truth["settings"]["subjects_seed"] == 5 and first.truth["settings"]["subjects_seed"] is None
    # new subjects, named apart
    assert again.subject_ids[0] == "sub-r5-0001" and len(again.subject_ids) == 140
    assert not set(again.subject_ids) & set(first.subject_ids)
    fam = pd.read_csv(again.out_dir / "genotypes.fam", sep=" ", header=None)
    assert fam[1].tolist() == list(again.subject_ids)
    assert all(a.startswith("sub-r5-") and b.startswith("sub-r5-") for a, b, _ in again.truth["relatives"])
    assert again.genotypes.shape == (140, 1500)
    assert not np.array_equal(again.genotypes[:20], first.genotypes[:20], equal_nan=True)


def test_replicate_keeps_the_populations_and_the_fnc_structure(replication):
    first, again, other = replication["first"], replication["again"], replication["other"]

    def group_difference(sim):
        group = pd.read_csv(sim.out_dir / "truth_subjects.tsv", sep="\t")["ancestry"].to_numpy()
        return np.nanmean(sim.genotypes[group == 1], axis=0) - np.nanmean(sim.genotypes[group == 2], axis=0)

    def mean_edges(sim):
        return sim.fnc.mean(axis=0)[np.triu_indices(sim.fnc.shape[1], 1)]

    # the same Balding-Nichols frequencies of the two groups: their differences agree SNP by SNP
    same = np.corrcoef(group_difference(first), group_difference(again))[0, 1]
    assert same > 0.5 and np.corrcoef(group_difference(first), group_difference(other))[0, 1] < 0.2, same
    # the same population FNC (and site offsets): the mean matrices agree, beyond what any two seeds share
    same, differ = (np.corrcoef(mean_edges(first), mean_edges(sim))[0, 1] for sim in (again, other))
    assert same > 0.98 and differ < same - 0.05, (same, differ)


def _auc(score, labels):
    return stats.mannwhitneyu(score[labels == 1], score[labels == 0]).statistic / (labels.sum() * (1 - labels).sum())


def test_replicate_labels_follow_the_causal_snps_alike(replication):
    first, again = replication["first"], replication["again"]
    snps = first.snps.set_index("snp").index
    causal = [snps.get_loc(c["snp"]) for c in first.truth["causal_snps"]]
    signs = np.sign([c["effect"] for c in first.truth["causal_snps"]])  # the first cohort's, applied to both
    aucs = []
    for sim in (first, again):
        dosages = sim.genotypes[:, causal]  # causal SNPs are never missing
        score = ((dosages - dosages.mean(axis=0)) / dosages.std(axis=0)) @ signs
        aucs.append(_auc(score, sim.labels))
        names = sim.nodes["name"].tolist()
        z_fnc = pd.read_csv(sim.out_dir / "truth_subjects.tsv", sep="\t")["z_fnc"].to_numpy()
        for edge in sim.truth["fnc_edges"]:
            r = np.corrcoef(sim.fnc[:, names.index(edge["node_i"]), names.index(edge["node_j"])], z_fnc)[0, 1]
            assert (r > 0.2) if edge["direction"] == "increase" else (r < -0.2), edge
    assert min(aucs) > 0.75 and abs(aucs[0] - aucs[1]) < 0.08, aucs


def test_subjects_seed_equal_to_seed_still_draws_new_subjects(tmp_path):
    kw = dict(n_subjects=20, n_snps=100, resolution=16, seed=2)
    first = simulate_cohort(tmp_path / "first", **kw)
    again = simulate_cohort(tmp_path / "again", subjects_seed=2, **kw)
    assert (first.out_dir / "genotypes.bim").read_bytes() == (again.out_dir / "genotypes.bim").read_bytes()
    assert not np.array_equal(first.genotypes, again.genotypes, equal_nan=True)
    assert not np.array_equal(first.fnc, again.fnc) and not np.array_equal(first.voxels, again.voxels)


def test_cli_subjects_seed_writes_the_replicate(replication, tmp_path, capsys):
    out = tmp_path / "again"
    options = ["--seed", "21", "--snps", "1500", "--resolution", "8", "--sites", "2", "--site-effect", "1"]
    options += ["--ancestries", "2", "--fst", "0.05", "--relatives", "0.1", "--signal", "snp=2"]
    assert main(["simulate", str(out), "--subjects", "140", *options, "--subjects-seed", "5"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert (
        last == "  replication cohort: the generator of --seed 21, new subjects from --subjects-seed 5 (sub-r5-0001...)"
    )
    api = replication["again"].out_dir
    for name in ("genotypes.bed", "genotypes.fam", "phenotypes.tsv", "truth_subjects.tsv", "fnc.npy"):
        assert (out / name).read_bytes() == (api / name).read_bytes(), name
    assert json.loads((out / "truth.json").read_text())["settings"]["subjects_seed"] == 5
