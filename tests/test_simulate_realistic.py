"""Tests of the simulator's presets and switches: the easy preset is the earlier simulator, the realistic one
plants polygenic genetics on an array-like map, spread imaging effects, cross-modal interactions and a
nonlinear liability, and records all of it."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from migtrans.atlases import load_atlas, resample_atlas
from migtrans.cli import main
from migtrans.exceptions import ParameterError
from migtrans.simulate import _architecture, _genotypes, simulate_cohort

TINY = dict(n_subjects=40, n_snps=300, resolution=16)
# Large enough to estimate effects of 0.01-0.5 % of the liability; AAL planting spares loading Harvard-Oxford
BIG = dict(n_subjects=2500, n_snps=3000, resolution=8, seed=1, preset="realistic", plant_atlas="aal")


@pytest.fixture(scope="module")
def realistic(tmp_path_factory):
    """The realistic preset as it comes (Harvard-Oxford planting included)."""
    return simulate_cohort(
        tmp_path_factory.mktemp("realistic") / "cohort",
        preset="realistic",
        n_subjects=300,
        n_snps=3000,
        resolution=8,
        seed=2,
    )


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    return simulate_cohort(tmp_path_factory.mktemp("big") / "cohort", **BIG)


@pytest.fixture(scope="module")
def big_off(tmp_path_factory):
    """The generator of ``big`` with the interactions off and a linear liability, fewer subjects."""
    kw = {**BIG, "n_subjects": 1500, "interactions": False, "liability": "linear"}
    return simulate_cohort(tmp_path_factory.mktemp("big_off") / "cohort", **kw)


def _hashes(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _subjects(sim):
    return pd.read_csv(sim.out_dir / "truth_subjects.tsv", sep="\t")


def _region_means(sim, atlas="aal"):
    """Mean GM of every region of ``atlas`` present in the mask over the subject's mean GM (proportional
    scaling, as VBM analyses do: it removes the global, age and site scales), name -> array over subjects."""
    img, labels = load_atlas(atlas)
    grid = np.asarray(resample_atlas(img, sim.affine, sim.mask.shape).dataobj)[sim.mask]
    names = dict(zip(labels["index"], labels["name"]))
    whole = sim.voxels.mean(axis=1)
    return {names[k]: sim.voxels[:, grid == k].mean(axis=1) / whole for k in np.unique(grid) if k in names}


def _edge_values(sim, edges):
    """Each subject's mean of ``edges`` (truth entries), signed by their direction."""
    names = sim.nodes["name"].tolist()
    columns = [
        sim.fnc[:, names.index(e["node_i"]), names.index(e["node_j"])] * (1 if e["direction"] == "increase" else -1)
        for e in edges
    ]
    return np.mean(columns, axis=0)


def _ols(y, *columns):
    """OLS of y on an intercept and ``columns``: coefficients and t statistics (intercept dropped)."""
    x = np.column_stack([np.ones(len(y)), *columns])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    sigma2 = resid @ resid / (len(y) - x.shape[1])
    se = np.sqrt(np.diag(np.linalg.inv(x.T @ x)) * sigma2)
    return coef[1:], (coef / se)[1:]


def _auc(score, labels):
    return stats.mannwhitneyu(score[labels == 1], score[labels == 0]).statistic / (labels.sum() * (1 - labels).sum())


# --- the easy preset is the earlier simulator ------------------------------------------------------------


def test_easy_preset_and_its_switches_write_the_default_bytes(tmp_path):
    default = simulate_cohort(tmp_path / "default", seed=4, **TINY)
    explicit = simulate_cohort(tmp_path / "explicit", seed=4, preset="easy", **TINY, **_architecture.PRESETS["easy"])
    assert _hashes(default.out_dir) == _hashes(explicit.out_dir)
    assert default.truth["settings"]["preset"] == "easy" and default.truth["settings"]["interactions"] == 0.0
    # the label model, the planted SNPs and the per-subject table are the earlier ones
    assert "coefficients" not in default.truth["label_model"] and "role" not in default.truth["causal_snps"][0]
    assert list(_subjects(default).columns) == ["subject_id", "label", "site", "z_snp", "z_fnc", "z_smri", "liability"]
    # one switch off the easy values is another cohort
    other = simulate_cohort(tmp_path / "other", seed=4, interactions=0.5, **TINY)
    assert _hashes(other.out_dir)["fnc.npy"] != _hashes(default.out_dir)["fnc.npy"]


def test_easy_records_five_snps_of_five_percent(tmp_path):
    sim = simulate_cohort(tmp_path / "c", seed=4, n_subjects=400, n_snps=300, resolution=16)
    genetic = sim.truth["architecture"]["genetic"]
    shares = [s["variance_explained"] for s in genetic["snps"]]
    # five standardized causal dosages share a quarter of the liability (less their sample correlation)
    assert len(shares) == 5 and all(0.04 < v < 0.06 for v in shares) and abs(sum(shares) - 0.25) < 0.03
    assert sim.truth["architecture"]["terms"]["noise"]["share"] == 0.25
    assert 0.9 < sim.truth["architecture"]["expected_auc"] < 0.95


# --- the realistic preset records everything -------------------------------------------------------------


def test_realistic_records_preset_switches_and_terms(realistic):
    truth = json.loads((realistic.out_dir / "truth.json").read_text())
    assert truth == realistic.truth
    settings = truth["settings"]
    assert {k: settings[k] for k in ("preset", *_architecture.SWITCHES)} == {
        "preset": "realistic",
        "genetic_architecture": "polygenic",
        "snp_layout": "array",
        "imaging_effects": "spread",
        "interactions": 1.0,
        "liability": "nonlinear",
        "plant_atlas": "harvard-oxford",
    }
    arch = truth["architecture"]
    assert arch["budget"] == _architecture.BUDGETS["realistic"]
    assert set(arch["terms"]) == set(_architecture.TERMS)
    assert sum(t["share"] for t in arch["terms"].values()) == pytest.approx(1.0)
    assert 0.72 < arch["expected_auc"] < 0.82
    assert arch["snp_map"]["layout"] == "array" and arch["imaging"]["effects"] == "spread"
    # every term of every subject, and they add up to the liability that labelled them
    subj = _subjects(realistic)
    terms = subj[[f"term_{t}" for t in _architecture.TERMS]].sum(axis=1)
    np.testing.assert_allclose(terms, subj["liability"], atol=1e-5)
    assert subj["liability"][realistic.labels == 1].min() >= subj["liability"][realistic.labels == 0].max()
    assert {"z_smri_x", "z_fnc_x", "deficit"} <= set(subj.columns)
    assert truth["label_model"]["liability"] == _architecture.formula(realistic_arch())
    assert truth["label_model"]["coefficients"]["c_noise"] == pytest.approx(np.sqrt(0.62), abs=1e-6)


def realistic_arch():
    return _architecture.resolve_architecture("realistic")


def test_realistic_records_snps_regions_edges_and_interactions(realistic):
    truth = realistic.truth
    roles = [c["role"] for c in truth["causal_snps"]]
    assert roles.count("large") == 5 and roles.count("small") == 300 and roles.count("modifier") == 1
    assert len(truth["causal_blocks"]) == len(truth["causal_snps"])
    assert all({"variance_explained", "beta_per_allele"} <= set(c) for c in truth["causal_snps"])
    # every planted region and edge: its latent, its effect and its case-control d in this cohort
    regions = truth["smri_regions"]
    assert len(regions) == 13 and {r["latent"] for r in regions} == {"z_smri", "z_smri_x"}
    assert all(r["atlas"] == "Harvard-Oxford" and r["n_voxels"] > 0 for r in regions)
    main_d = [r["cohens_d"] for r in regions if r["latent"] == "z_smri"]
    assert max(main_d) < 0 and -0.6 < np.mean(main_d) < -0.1
    edges = truth["fnc_edges"]
    assert {e["latent"] for e in edges} == {"z_fnc", "z_fnc_x"} and all("cohens_d" in e for e in edges)
    interactions = truth["architecture"]["interactions"]
    modifier = next(c for c in truth["causal_snps"] if c["role"] == "modifier")
    assert interactions["snp_x_smri"]["snp"] == modifier["snp"] and modifier["maf"] >= 0.2
    assert interactions["snp_x_smri"]["region"] == "Left_Middle_Temporal_Gyrus_posterior_division"
    conditional = [[e["node_i"], e["node_j"]] for e in edges if e["latent"] == "z_fnc_x"]
    assert interactions["fnc_given_smri"]["edges"] == conditional and len(conditional) == 10
    assert all({e["domain_i"], e["domain_j"]} <= {"DM", "CC"} for e in edges if e["latent"] == "z_fnc_x")


def test_planting_atlas_differs_from_the_tables_atlas_and_the_overlap_is_measured(realistic):
    truth = realistic.truth
    assert truth["settings"]["plant_atlas"] == "harvard-oxford"
    assert truth["architecture"]["atlas"]["plant"] == "harvard-oxford"
    assert truth["architecture"]["atlas"]["tables"] == "aal"
    img, labels = load_atlas("harvard-oxford")
    ho = np.asarray(resample_atlas(img, realistic.affine, realistic.mask.shape).dataobj)
    img, labels_aal = load_atlas("aal")
    aal = np.asarray(resample_atlas(img, realistic.affine, realistic.mask.shape).dataobj)
    aal_names = dict(zip(labels_aal["index"], labels_aal["name"]))
    hippocampus = next(r for r in truth["smri_regions"] if r["region"] == "Left_Hippocampus")
    voxels = (ho == hippocampus["label"]) & realistic.mask
    assert voxels.sum() == hippocampus["n_voxels"]
    # the recorded overlap is the share of the planted voxels that each AAL region holds
    overlap = hippocampus["overlap"]
    assert overlap["atlas"] == "AAL" and overlap["regions"][0]["region"] == "Hippocampus_L"
    values, counts = np.unique(aal[voxels], return_counts=True)
    measured = {aal_names.get(v, "outside the atlas"): c / counts.sum() for v, c in zip(values, counts)}
    for entry in overlap["regions"]:
        assert entry["share"] == pytest.approx(measured[entry["region"]], abs=1e-4)
    assert overlap["regions"][0]["share"] < 0.95  # the AAL table's region is not the planted one


def test_a_switch_overrides_the_preset(tmp_path):
    sim = simulate_cohort(tmp_path / "c", seed=3, preset="realistic", snp_layout="blocks", plant_atlas="aal", **TINY)
    settings = sim.truth["settings"]
    assert settings["snp_layout"] == "blocks" and settings["genetic_architecture"] == "polygenic"
    assert sim.truth["architecture"]["snp_map"]["layout"] == "blocks"
    assert all(r["atlas"] == "AAL" and "overlap" not in r for r in sim.truth["smri_regions"])
    # blocks: runs of SNPs a few kb apart
    gaps = np.diff(sim.snps["pos"].to_numpy())[np.diff(sim.snps["block"].to_numpy()) == 0]
    assert np.median(gaps) < 10_000


# --- polygenic genetics ----------------------------------------------------------------------------------


def test_polygenic_shares_are_in_their_ranges_and_add_up_to_the_budget(big):
    snps = big.truth["architecture"]["genetic"]["snps"]
    share = {r: np.array([s["variance_explained"] for s in snps if s["role"] == r]) for r in ("large", "small")}
    assert len(share["large"]) == 5 and len(share["small"]) == 300
    assert share["large"].min() >= 0.003 * 0.99 and share["large"].max() <= 0.005 * 1.01
    assert share["small"].min() >= 1e-4 * 0.8 and share["small"].max() <= 1e-3 * 1.2
    assert sum(s["variance_explained"] for s in snps) == pytest.approx(0.14, abs=1e-4)


def test_polygenic_effects_are_what_the_liability_shows(big):
    """Regressing the liability on the causal dosages (read from the files) recovers the recorded effects."""
    truth = big.truth
    index = big.snps.set_index("snp").index
    causal = [c for c in truth["causal_snps"] if c["role"] in ("large", "small")]
    columns = [index.get_loc(c["snp"]) for c in causal]
    dosages = big.genotypes[:, columns].astype(float)  # causal SNPs are never missing
    beta = np.array([c["beta_per_allele"] for c in causal])
    liability = _subjects(big)["liability"].to_numpy()
    # the recorded per-allele effects rebuild a score with about 14 % of the liability variance
    r2 = np.corrcoef(dosages @ beta, liability)[0, 1] ** 2
    assert 0.10 < r2 < 0.19, r2
    # joint OLS: estimated effects line up with the recorded ones (slope about 1) ...
    x = dosages - dosages.mean(axis=0)
    estimate, *_ = np.linalg.lstsq(x, liability - liability.mean(), rcond=None)
    slope = (estimate @ beta) / (beta @ beta)
    assert 0.85 < slope < 1.15, slope
    # ... and the small SNPs' average share, corrected for estimation noise, is about 0.04 % (0.01-0.1 %)
    resid = liability - liability.mean() - x @ estimate
    se2 = np.diag(np.linalg.inv(x.T @ x)) * (resid @ resid) / (len(liability) - x.shape[1])
    p = np.array([c["maf"] for c in causal])
    small = np.array([c["role"] == "small" for c in causal])
    measured = np.mean((estimate**2 - se2)[small] * 2 * p[small] * (1 - p[small])) / liability.var()
    recorded = np.mean([c["variance_explained"] for c, s in zip(causal, small) if s])
    assert 0.0002 < measured < 0.0008 and abs(measured - recorded) < 0.00015, (measured, recorded)
    # the large SNPs each explain 0.3-0.5 %: their mean marginal r^2 is of that size
    large = [index.get_loc(c["snp"]) for c in causal if c["role"] == "large"]
    r2_large = [np.corrcoef(big.genotypes[:, k], liability)[0, 1] ** 2 for k in large]
    assert 0.0015 < np.mean(r2_large) < 0.008, r2_large


# --- the array layout ------------------------------------------------------------------------------------


def test_array_layout_spreads_snps_along_chromosomes_and_ld_decays_with_distance(tmp_path):
    sim = simulate_cohort(tmp_path / "c", seed=5, n_subjects=200, n_snps=60_000, resolution=16, snp_layout="array")
    snps = sim.snps
    assert sim.truth["architecture"]["snp_map"]["layout"] == "array"
    # spread over whole chromosomes at array density (one SNP per ~48 kb here), no packed blocks
    for c, length in enumerate(_genotypes.GRCH37_LENGTHS, start=1):
        pos = snps.loc[snps["chrom"] == str(c), "pos"].to_numpy()
        assert (pos.max() - pos.min()) / length > 0.95, c
        assert np.diff(pos).max() < 0.02 * length
    gaps = np.concatenate([np.diff(g["pos"].to_numpy()) for _, g in snps.groupby("chrom")])
    assert 40_000 < gaps.mean() < 56_000 and np.median(gaps) > 20_000
    # LD: mean r^2 of pairs of common SNPs falls with their distance
    common = snps["maf"].to_numpy() >= 0.05
    g = np.where(np.isnan(sim.genotypes), np.nanmean(sim.genotypes, axis=0), sim.genotypes)[:, common]
    x = ((g - g.mean(axis=0)) / g.std(axis=0)).astype(np.float32)
    pos, chrom = snps["pos"].to_numpy()[common], snps["chrom"].to_numpy()[common]
    bins = np.array([0, 20_000, 50_000, 100_000, 200_000, 500_000, 2_000_000])
    sums, counts = np.zeros(len(bins) - 1), np.zeros(len(bins) - 1)
    for lag in range(1, 40):
        same = chrom[lag:] == chrom[:-lag]
        r2 = (x[:, lag:] * x[:, :-lag]).mean(axis=0) ** 2 - 1 / len(x)  # minus the sampling bias of r^2
        k = np.digitize(pos[lag:] - pos[:-lag], bins) - 1
        ok = same & (k < len(bins) - 1)
        np.add.at(sums, k[ok], r2[ok])
        np.add.at(counts, k[ok], 1)
    mean_r2 = sums / counts
    assert counts.min() > 100, counts
    assert mean_r2[0] > 0.25 and mean_r2[-1] < 0.005, mean_r2
    assert np.all(np.diff(mean_r2) < 0), mean_r2
    assert 0.05 < mean_r2[2] < 0.25, mean_r2  # 50-100 kb, European-like


def test_siblings_share_a_quarter_of_their_genome_on_the_array_layout(tmp_path):
    sim = simulate_cohort(
        tmp_path / "c", seed=6, n_subjects=120, n_snps=20_000, resolution=16, snp_layout="array", relative_share=0.4
    )
    ids = list(sim.subject_ids)
    pairs = np.array([(ids.index(a), ids.index(b)) for a, b, _ in sim.truth["relatives"]])
    assert len(pairs) == 24 and "Mb window" in sim.truth["population"]["relatedness"]["model"]
    g = np.nan_to_num(sim.genotypes, nan=-1.0)
    het, hom0, hom2 = ((g == k).astype(float) for k in (1, 0, 2))
    n_het = het.sum(axis=1)
    king = (het @ het.T - 2 * (hom0 @ hom2.T + hom2 @ hom0.T)) / (n_het[:, None] + n_het[None, :])
    siblings = king[pairs[:, 0], pairs[:, 1]]
    unrelated = np.triu(np.ones_like(king, dtype=bool), 1)
    unrelated[pairs[:, 0], pairs[:, 1]] = False
    assert abs(siblings.mean() - 0.25) < 0.05 and abs(king[unrelated].mean()) < 0.02
    assert siblings.min() > np.percentile(king[unrelated], 99)


# --- interactions and the nonlinear liability ------------------------------------------------------------


def _snp_x_region(sim, snp, region):
    """t statistic of dosage x region GM in an OLS of the liability on dosage, GM and their product."""
    dosage = sim.genotypes[:, sim.snps.set_index("snp").index.get_loc(snp)].astype(float)
    called = ~np.isnan(dosage)  # a SNP that is no modifier may have missing calls
    gm = stats.zscore(_region_means(sim)[region])[called]
    dosage = dosage[called]
    _, t = _ols(_subjects(sim)["liability"].to_numpy()[called], dosage, gm, dosage * gm)
    return t[2]


def test_snp_x_region_interaction_is_present_where_planted_and_absent_when_off(big, big_off):
    planted = big.truth["architecture"]["interactions"]["snp_x_smri"]
    assert planted["region"] == "Temporal_Mid_L" and planted["variance_share"] == pytest.approx(0.03)
    # with the latent itself, the estimate is the recorded coefficient (per allele per SD)
    subj = _subjects(big)
    dosage = big.genotypes[:, big.snps.set_index("snp").index.get_loc(planted["snp"])].astype(float)
    coef, _ = _ols(subj["liability"].to_numpy(), dosage, subj["z_smri_x"], dosage * subj["z_smri_x"])
    assert coef[2] == pytest.approx(planted["coefficient"], abs=0.05) and abs(coef[0]) < 0.05
    # from the features: less GM in the region weighs on the liability in carriers only
    assert _snp_x_region(big, planted["snp"], planted["region"]) < -3
    # off: the same SNP and region carry nothing
    assert big_off.truth["architecture"]["interactions"] is None
    assert "z_smri_x" not in _subjects(big_off).columns
    assert abs(_snp_x_region(big_off, planted["snp"], planted["region"])) < 3


def test_fnc_edges_weigh_on_the_liability_only_with_a_structural_deficit(big, big_off):
    edges = [e for e in big.truth["fnc_edges"] if e["latent"] == "z_fnc_x"]
    subj = _subjects(big)
    deficit = subj["deficit"].to_numpy() == 1
    assert abs(deficit.mean() - 1 / 3) < 0.03
    np.testing.assert_array_equal(deficit, subj["z_smri"] > _architecture.DEFICIT_Z)
    connectivity = stats.zscore(_edge_values(big, edges))
    liability = subj["liability"].to_numpy()
    _, t_with = _ols(liability[deficit], connectivity[deficit])
    _, t_without = _ols(liability[~deficit], connectivity[~deficit])
    # the edges' direction is "decrease" or "increase" of connectivity with z_fnc_x, which raises the liability
    assert t_with[0] > 5 and abs(t_without[0]) < 3, (t_with, t_without)
    # off: no such edges are planted, and the same edges carry nothing in either group
    assert not [e for e in big_off.truth["fnc_edges"] if e["latent"] == "z_fnc_x"]
    subj_off = _subjects(big_off)
    deficit_off = subj_off["z_smri"].to_numpy() > _architecture.DEFICIT_Z
    connectivity_off = stats.zscore(_edge_values(big_off, edges))
    _, t_off = _ols(subj_off["liability"].to_numpy()[deficit_off], connectivity_off[deficit_off])
    assert abs(t_off[0]) < 3


def test_nonlinear_liability_has_a_threshold_and_a_product(big, big_off):
    for sim, nonlinear in ((big, True), (big_off, False)):
        subj = _subjects(sim)
        z, liability = subj["z_smri"].to_numpy(), subj["liability"].to_numpy()
        low, high = z < 0, z > 0
        (slope_low,), _ = _ols(liability[low], z[low])
        (slope_high,), _ = _ols(liability[high], z[high])
        product, _ = _ols(liability, subj["z_snp"], subj["z_fnc"], subj["z_snp"] * subj["z_fnc"])
        if nonlinear:
            # below the mean the structural latent does nothing; above it, c_smri / SD(relu) = 0.48 per SD
            assert abs(slope_low) < 0.12 and 0.35 < slope_high < 0.65, (slope_low, slope_high)
            assert product[2] == pytest.approx(sim.truth["label_model"]["coefficients"]["c_snp_x_fnc"], abs=0.05)
        else:
            assert abs(slope_low - slope_high) < 0.15 and abs(product[2]) < 0.05, (slope_low, slope_high, product)


def test_realistic_imaging_is_learnable_at_a_thousand_subjects(big):
    """A model fed the planted features (mean GM of the regions, signed mean of the edges) and trained on 1,000
    subjects separates the others' labels; the genetic part is not learnable at that size."""
    from sklearn.linear_model import LogisticRegression

    regions = _region_means(big)
    gm = np.column_stack([regions[r["region"]] for r in big.truth["smri_regions"] if r["latent"] == "z_smri"])
    main_edges = [e for e in big.truth["fnc_edges"] if e["latent"] == "z_fnc"]
    features = stats.zscore(np.column_stack([gm.mean(axis=1), _edge_values(big, main_edges)]), axis=0)
    train, test = np.arange(1000), np.arange(1000, len(big.labels))
    model = LogisticRegression().fit(features[train], big.labels[train])
    auc = _auc(model.decision_function(features[test]), big.labels[test])
    assert 0.62 < auc < 0.75, auc
    assert 0.72 < big.truth["architecture"]["cohort"]["auc_noise_free"] < 0.83


# --- the null ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "switches",
    [
        dict(preset="realistic", plant_atlas="aal"),
        dict(genetic_architecture="polygenic"),
        dict(snp_layout="array"),
        dict(imaging_effects="spread"),
        dict(interactions=2.0),
        dict(liability="nonlinear"),
    ],
)
def test_null_labels_stay_independent_of_the_features_under_every_switch(tmp_path, switches):
    kw = dict(seed=8, n_subjects=300, n_snps=2000, resolution=16, **switches)
    null = simulate_cohort(tmp_path / "null", null=True, **kw)
    planted = simulate_cohort(tmp_path / "planted", **kw)
    # the features are those of the cohort with a label model: only the labels differ
    np.testing.assert_array_equal(null.genotypes, planted.genotypes)
    np.testing.assert_array_equal(null.fnc, planted.fnc)
    np.testing.assert_array_equal(null.voxels, planted.voxels)
    assert not np.array_equal(null.labels, planted.labels)
    # and they carry no sign of the planted liability, which does separate the planted cohort's labels
    subj = _subjects(null)
    noise_free = subj["liability"] - subj["term_noise"]
    assert stats.mannwhitneyu(noise_free[null.labels == 1], noise_free[null.labels == 0]).pvalue > 0.01
    assert null.truth["architecture"]["cohort"]["auc_noise_free"] == pytest.approx(0.5, abs=0.08)
    assert planted.truth["architecture"]["cohort"]["auc_noise_free"] > 0.65
    assert null.truth["label_model"]["null"] is True and null.labels.sum() == 150


# --- parameters and the command line ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(preset="hard"), "preset: expected one of easy, realistic"),
        (dict(snp_layout="grid"), "snp_layout"),
        (dict(genetic_architecture="monogenic"), "genetic_architecture"),
        (dict(imaging_effects=1), "imaging_effects"),
        (dict(liability="quadratic"), "liability"),
        (dict(plant_atlas="destrieux"), "plant_atlas"),
        (dict(interactions=-1), "interactions"),
        (dict(interactions=4.0), "interactions"),
        (dict(interactions="yes"), "interactions"),
    ],
)
def test_preset_and_switch_errors(tmp_path, kwargs, match):
    with pytest.raises(ParameterError, match=match) as info:
        simulate_cohort(tmp_path / "c", **TINY, **kwargs)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_interactions_true_is_strength_one(tmp_path):
    sim = simulate_cohort(tmp_path / "c", seed=1, interactions=True, **TINY)
    assert sim.truth["settings"]["interactions"] == 1.0
    share = sim.truth["architecture"]["terms"]["snp_x_smri"]["variance"]
    assert share == pytest.approx(_architecture.BUDGETS["easy"]["snp_x_smri"])


CLI_SMALL = ["--subjects", "40", "--snps", "2000", "--resolution", "16", "--seed", "3"]


def test_cli_preset_realistic_writes_what_the_api_writes(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["simulate", str(out), *CLI_SMALL, "--preset", "realistic", "--plant-atlas", "aal"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith(
        "  preset realistic: polygenic genetics, array SNP layout, spread imaging effects, interactions x1, "
        "nonlinear liability, regions planted in aal"
    )
    api = simulate_cohort(
        tmp_path / "api",
        n_subjects=40,
        n_snps=2000,
        resolution=16,
        seed=3,
        preset="realistic",
        plant_atlas="aal",
        keep_volumes=False,
    )
    for name in ("genotypes.bed", "genotypes.bim", "truth_subjects.tsv", "fnc.npy", "truth.json"):
        assert (out / name).read_bytes() == (api.out_dir / name).read_bytes(), name


def test_cli_switch_flags_reach_the_library(tmp_path, capsys):
    out = tmp_path / "c"
    flags = ["--snp-layout", "array", "--interactions", "0.5", "--liability", "nonlinear"]
    flags += ["--genetic-architecture", "polygenic", "--imaging-effects", "spread"]
    assert main(["simulate", str(out), *CLI_SMALL, *flags]) == 0
    settings = json.loads((out / "truth.json").read_text())["settings"]
    assert settings["preset"] == "easy" and settings["interactions"] == 0.5
    assert (settings["snp_layout"], settings["liability"], settings["genetic_architecture"]) == (
        "array",
        "nonlinear",
        "polygenic",
    )
    assert settings["imaging_effects"] == "spread" and settings["plant_atlas"] == "aal"
    assert "preset easy: polygenic genetics" in capsys.readouterr().out


@pytest.mark.parametrize(
    "options, flag",
    [
        (["--preset", "hard"], "--preset"),
        (["--snp-layout", "grid"], "--snp-layout"),
        (["--interactions", "5"], "--interactions"),
        (["--interactions", "-0.1"], "--interactions"),
        (["--plant-atlas", "destrieux"], "--plant-atlas"),
    ],
)
def test_cli_refuses_bad_switches_in_one_line(tmp_path, capsys, options, flag):
    status = main(["simulate", str(tmp_path / "c"), *CLI_SMALL, *options])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1 and flag in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_realistic_replication_cohort_shares_the_generator(tmp_path):
    kw = dict(seed=9, n_snps=2000, resolution=16, preset="realistic", plant_atlas="aal")
    first = simulate_cohort(tmp_path / "first", n_subjects=60, **kw)
    again = simulate_cohort(tmp_path / "again", n_subjects=50, subjects_seed=3, **kw)
    generator = [{k: v for k, v in t["architecture"].items() if k != "cohort"} for t in (first.truth, again.truth)]
    assert generator[0] == generator[1]
    assert [c["snp"] for c in first.truth["causal_snps"]] == [c["snp"] for c in again.truth["causal_snps"]]

    # the planted edges too, but for their case-control d in each cohort
    def planted(sim):
        return [{k: v for k, v in e.items() if k != "cohens_d"} for e in sim.truth["fnc_edges"]]

    assert planted(first) == planted(again)
    assert not np.array_equal(first.genotypes[:20], again.genotypes[:20], equal_nan=True)
