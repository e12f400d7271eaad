"""Integrated gradients (exact on linear models, complete on MIGTrans), explanation of a run's held-out
subjects (its explanation set with the fold models' ensemble, or every subject out of fold),
the Attributions container, and faithfulness tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from explain import Attributions, OutOfFold, explain_run, integrated_gradients, relative_delta
from migtrans.data import load_cohort


class _MultiLinear(torch.nn.Module):
    """log-odds = w_s . snp + <W_f, fnc> + <W_m, smri> + b, exactly linear in every input."""

    def __init__(self, rng):
        super().__init__()
        self.ws = torch.tensor(rng.normal(size=7), dtype=torch.float32)
        self.wf = torch.tensor(rng.normal(size=(5, 5)), dtype=torch.float32)
        self.wm = torch.tensor(rng.normal(size=(3, 4, 2)), dtype=torch.float32)

    def forward(self, snp, fnc, smri):
        z = snp @ self.ws + (fnc * self.wf).sum((1, 2)) + (smri * self.wm).sum((1, 2, 3)) + 0.3
        return torch.stack([torch.zeros_like(z), z], dim=1)


def test_ig_on_a_linear_model_is_w_times_x_minus_baseline(rng):
    model = _MultiLinear(rng)
    x = {"snp": torch.randn(6, 7), "fnc": torch.randn(6, 5, 5), "smri": torch.randn(6, 3, 4, 2)}
    base = {"snp": torch.randn(1, 7), "fnc": torch.zeros(1, 5, 5), "smri": torch.full((1, 3, 4, 2), 0.5)}
    attr, delta = integrated_gradients(model, x, base, n_steps=8, internal_batch_size=16)
    torch.testing.assert_close(attr["snp"], model.ws * (x["snp"] - base["snp"]), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(attr["fnc"], model.wf * x["fnc"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(attr["smri"], model.wm * (x["smri"] - 0.5), rtol=1e-5, atol=1e-5)
    assert float(delta.abs().max()) < 1e-4


def test_ig_chunking_does_not_change_the_result(rng):
    model = _MultiLinear(rng)
    x = {"snp": torch.randn(9, 7), "fnc": torch.randn(9, 5, 5), "smri": torch.randn(9, 3, 4, 2)}
    one, _ = integrated_gradients(model, x, n_steps=8, internal_batch_size=1000)
    many, _ = integrated_gradients(model, x, n_steps=8, internal_batch_size=8)
    for m in x:
        torch.testing.assert_close(one[m], many[m])


def test_smoothgrad_with_zero_noise_equals_ig(rng):
    model = _MultiLinear(rng)
    x = {"snp": torch.randn(3, 7), "fnc": torch.randn(3, 5, 5), "smri": torch.randn(3, 3, 4, 2)}
    plain, _ = integrated_gradients(model, x, n_steps=8)
    smooth, _ = integrated_gradients(
        model, x, n_steps=8, smoothgrad_samples=3, noise_level={"snp": 0.0, "fnc": 0.0, "smri": 0.0}
    )
    for m in x:
        torch.testing.assert_close(plain[m], smooth[m])


@pytest.fixture(scope="module")
def explained(baseline_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("expl")
    return explain_run(
        baseline_run.out_dir, out_dir=out, n_steps=16, deletion_fractions=(0.0, 0.05, 0.2), n_permutations=49
    ), out


@pytest.fixture(scope="module")
def out_of_fold_run(baseline_run):
    """The tiny run (the default: no explanation set), every subject explained by its own held-out fold."""
    return baseline_run, explain_run(baseline_run.out_dir, out_dir=False, n_steps=16, faithfulness=False)


@pytest.fixture(scope="module")
def explained_set(explanation_set_run):
    """The run with an explanation set, explained by its fold models' ensemble, with tables."""
    return explain_run(explanation_set_run.out_dir, out_dir=False, n_steps=16, faithfulness=False, n_permutations=49)


def test_explanation_set_explained_by_the_ensemble_of_fold_models(explained_set, explanation_set_run):
    attributions = explained_set
    held = pd.read_csv(explanation_set_run.out_dir / "explanation_predictions.csv", dtype={"subject_id": str})
    subjects = attributions.subjects
    assert sorted(subjects["subject_id"]) == sorted(held["subject_id"]) and (subjects["fold"] == 0).all()
    # the explained function is the one training scored the set with: the mean of the fold models' log-odds
    held = held.set_index("subject_id").loc[subjects["subject_id"]]
    np.testing.assert_allclose(subjects["log_odds"], held["log_odds"], rtol=1e-4, atol=1e-5)
    assert attributions.settings["out_of_fold"] is False and attributions.settings["n_explained"] == 10


def test_explanation_set_attributions_are_the_mean_of_each_fold_models(explained_set, explanation_set_run):
    attributions = explained_set
    oof = OutOfFold(explanation_set_run.out_dir)
    row = int(oof.rows[3])
    per_model = [
        integrated_gradients(f.model, oof.inputs(f, [row]), oof.baselines(f), n_steps=16)[0]["snp"][0]
        for f in oof.folds
    ]
    np.testing.assert_allclose(attributions.snp[3], np.mean(per_model, axis=0), rtol=1e-4, atol=1e-6)
    assert not np.allclose(per_model[0], per_model[1], rtol=1e-3)


def test_every_subject_explained_by_its_held_out_fold(out_of_fold_run):
    run, attributions = out_of_fold_run
    preds = pd.read_csv(run.out_dir / "predictions.csv", dtype={"subject_id": str}).set_index("subject_id")
    subjects = attributions.subjects.set_index("subject_id")
    assert len(subjects) == 40 and attributions.settings["out_of_fold"] is True
    assert (subjects["fold"] == preds.loc[subjects.index, "fold"]).all()
    # the explained model's output is the held-out prediction written by training (its own log-odds, before
    # the run's calibration of the reported probability)
    np.testing.assert_allclose(subjects["log_odds"], preds.loc[subjects.index, "log_odds"], rtol=1e-4, atol=1e-5)


def test_attributions_match_a_direct_ig_with_the_own_fold_model_only(out_of_fold_run):
    run, attributions = out_of_fold_run
    oof = OutOfFold(run.out_dir)
    row = int(oof.folds[1].test_idx[0])
    own, other = oof.folds[1], oof.folds[0]
    results = {}
    for fold in (own, other):
        attr, _ = integrated_gradients(fold.model, oof.inputs(fold, [row]), oof.baselines(fold), n_steps=16)
        results[fold.fold] = attr["snp"][0].numpy()
    np.testing.assert_allclose(attributions.snp[row], results[own.fold], rtol=1e-4, atol=1e-6)
    assert not np.allclose(attributions.snp[row], results[other.fold], rtol=1e-3)


def test_completeness_and_shapes(explained, sim_cohort):
    attributions, _ = explained
    n = 40  # every subject, out of fold
    # every SNP that passed the genotype QC (the MAF filter drops the rarest of the 200 in 40 subjects)
    kept = load_cohort(sim_cohort.toml_path).snps
    assert 180 <= len(kept) < 200
    assert attributions.snp.shape == (n, len(kept))
    assert attributions.fnc.shape == (n, 53, 53)
    np.testing.assert_array_equal(attributions.fnc, attributions.fnc.transpose(0, 2, 1))
    assert attributions.smri.shape == (n, int(sim_cohort.mask.sum()))
    assert np.median(attributions.subjects["ig_relative_delta"]) < 0.01
    for column in ("rollout_share", "ig_abs_share"):
        shares = attributions.subjects[[f"{column}_{m}" for m in ("snp", "fnc", "smri")]].sum(axis=1)
        np.testing.assert_allclose(shares, 1.0, atol=1e-6)


def test_attributions_round_trip_through_their_folder(explained):
    attributions, out = explained
    back = Attributions.load(out)
    pd.testing.assert_frame_equal(back.subjects, attributions.subjects, check_exact=False, rtol=1e-12)
    for name in ("snp", "fnc", "smri", "rollout_snp", "rollout_fnc", "rollout_smri"):
        np.testing.assert_array_equal(np.asarray(getattr(back, name)), getattr(attributions, name))
    np.testing.assert_array_equal(back.mask, attributions.mask)
    img = back.smri_image()
    assert img.shape == back.mask.shape
    np.testing.assert_allclose(np.asarray(img.dataobj)[back.mask], np.asarray(back.smri).mean(axis=0), rtol=1e-6)
    assert back.settings["n_steps"] == 16 and back.settings["baseline"] == "mean"
    assert back.settings["n_permutations"] == 49 and back.settings["fwer"] == "max-T"
    for name in ("snps", "loci", "regions", "connections", "nodes", "modalities"):
        written = pd.read_csv(out / f"{name}.csv")
        assert len(written) == len(attributions.tables[name])


def test_optional_parts_are_saved_and_loaded_by_attributions_itself(explained):
    attributions, out = explained
    back = Attributions.load(out)
    for part in ("ablation", "deletion"):
        pd.testing.assert_frame_equal(getattr(back, part), getattr(attributions, part), check_exact=False, rtol=1e-12)
    assert sorted(back.tables) == sorted(attributions.tables)
    for name, table in attributions.tables.items():
        loaded = back.tables[name]
        assert list(loaded.columns) == list(table.columns), name
        for column in table.columns:
            if pd.api.types.is_float_dtype(table[column]):
                np.testing.assert_allclose(loaded[column], table[column], rtol=1e-12, err_msg=f"{name}.{column}")
            else:
                assert loaded[column].astype(str).tolist() == table[column].astype(str).tolist(), f"{name}.{column}"
    bare = Attributions(subjects=attributions.subjects.iloc[:2], settings={})
    assert bare.ablation is None and bare.deletion is None and bare.tables == {}


@pytest.mark.parametrize("run", ["baseline_run", "explanation_set_run"])
def test_large_attributions_are_summed_on_disk_to_the_same_values_and_files(run, request, monkeypatch, tmp_path):
    """Over `ON_DISK_MB` the SNP and voxel IG arrays are summed in maps of unnamed temporary files under
    TMPDIR: the same values, subject shares and saved files as in memory, and no file left behind."""
    import tempfile

    from explain import _explain

    oof = OutOfFold(request.getfixturevalue(run).out_dir, device="cpu")
    options = dict(n_steps=8, internal_batch_size=None, smoothgrad_samples=0, noise_level=None)

    def attributions():
        passes = _explain._attribute(oof, "mean", options, "gradient", 16, 0, False)
        return passes["ig"], _explain._assemble(oof, passes, {})

    memory, in_memory = attributions()
    assert not any(isinstance(values, np.memmap) for values in memory.values())
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(_explain, "ON_DISK_MB", 0)
    disk, on_disk = attributions()
    assert isinstance(disk["snp"], np.memmap) and isinstance(disk["smri"], np.memmap)
    assert not isinstance(disk["fnc"], np.memmap)  # small: in memory whatever the size
    for m in ("snp", "fnc", "smri"):
        np.testing.assert_array_equal(disk[m], memory[m])
    pd.testing.assert_frame_equal(on_disk.subjects, in_memory.subjects, check_exact=True)
    assert list(scratch.iterdir()) == []  # the files have no name: nothing to clean up, even after a kill
    written = {name: folder for name, folder in (("memory", tmp_path / "a"), ("disk", tmp_path / "b"))}
    in_memory.save(written["memory"])
    on_disk.save(written["disk"])
    for name in ("snp.npy", "fnc.npy", "smri.npy", "subjects.csv", "smri_attribution.nii.gz"):
        assert (written["disk"] / name).read_bytes() == (written["memory"] / name).read_bytes(), name
    assert list(scratch.iterdir()) == [] and not list(written["disk"].glob(".*.tmp"))


def test_large_attributions_are_saved_over_the_files_they_are_mapped_from(explained, tmp_path):
    """Tables rebuilt in place save a loaded folder's memory maps over their own files: each is written
    aside and renamed over the old one, never truncated under its map."""
    import shutil

    _, out = explained
    folder = tmp_path / "copy"
    shutil.copytree(out, folder)
    loaded = Attributions.load(folder)
    assert isinstance(loaded.snp, np.memmap)
    loaded.save(folder)
    for name in ("snp.npy", "fnc.npy", "smri.npy"):
        assert (folder / name).read_bytes() == (out / name).read_bytes(), name


def test_abs_shares_and_deletion_ranking_read_a_block_of_subjects_at_a_time_to_the_same_bits():
    from explain._explain import _abs_row_sums
    from explain._faithfulness import _mean_abs

    rng = np.random.default_rng(2)
    X = (rng.standard_normal((203, 10_007)) * rng.lognormal(0, 3, 10_007)).astype(np.float32)
    np.testing.assert_array_equal(_abs_row_sums(X, memory_mb=0.1), np.abs(X).sum(axis=1, dtype=np.float64))
    np.testing.assert_array_equal(_mean_abs(X), np.abs(X).mean(axis=0))


def test_region_sums_in_one_pass_equal_a_sum_per_region(tmp_path):
    """Regions are summed a block of subjects at a time from one sort of the voxels by region: equal to
    gathering each region's voxels (to float64 rounding: numpy's pairwise sums are blocked differently),
    and the same to the bit whatever the block."""
    from explain._tables import _region_sums

    rng = np.random.default_rng(3)
    n, V = 37, 5003
    voxel_label = rng.integers(0, 12, V)  # 0 and 11: voxels outside every named region
    voxel_label[17] = 40  # a region of one voxel
    regions = [*range(1, 11), 40]
    X = np.lib.format.open_memmap(tmp_path / "smri.npy", mode="w+", dtype=np.float32, shape=(n, V))
    X[:] = rng.standard_normal((n, V)) * rng.lognormal(0, 2, V)
    X.flush()
    gathered = np.column_stack([X[:, voxel_label == v].sum(axis=1, dtype=np.float64) for v in regions])
    whole = _region_sums(X, voxel_label, regions)
    blocks = _region_sums(X, voxel_label, regions, memory_mb=0.2)
    assert 0.2 * 2**20 < 12 * V * n  # the small budget does split the subjects
    np.testing.assert_allclose(whole, gathered, rtol=1e-13, atol=0)
    np.testing.assert_array_equal(blocks, whole)
    np.testing.assert_array_equal(whole[:, -1], X[:, 17])


def test_faithfulness_tables(explained):
    attributions, out = explained
    ablation = pd.read_csv(out / "ablation.csv")
    assert list(ablation["modality"]) == ["snp", "fnc", "smri"]
    np.testing.assert_allclose(ablation["ablation_auc_drop"], ablation["auc_full"] - ablation["auc_ablated"])
    deletion = pd.read_csv(out / "deletion.csv")
    assert set(deletion["modality"]) == {"snp", "fnc", "smri"}
    first = deletion[deletion["fraction"] == 0]
    np.testing.assert_allclose(first["auc_top"], ablation["auc_full"].iloc[0])


def test_relative_delta_is_relative_to_the_output_change():
    delta = torch.tensor([0.1, 0.0])
    attr = {"snp": torch.tensor([[1.0, 1.1], [2.0, -1.0]])}  # sums 2.1 and 1.0 -> changes 2.0 and 1.0
    torch.testing.assert_close(relative_delta(delta, attr), torch.tensor([0.05, 0.0]))


_TESTED = ("attribution", "contrast", "stat", "p_perm", "p_fwer", "q_fdr")
CONTRACT = {
    "snps": ["snp", "chrom", "pos", "a1", "a2", "gene", "locus", *_TESTED, "beta_assoc", "p_assoc", "rank"],
    "loci": ["locus", "chrom", "start", "end", "n_snps", "lead_snp", "genes", *_TESTED, "rank"],
    "regions": ["region", "atlas", "n_voxels", *_TESTED, "rank"],
    "connections": ["node_i", "node_j", "domain_i", "domain_j", *_TESTED, "rank"],
    "nodes": ["node", "domain", "x", "y", "z", *_TESTED, "rank"],
    "modalities": ["modality", "rollout_share", "ig_share", "ablation_auc_drop"],
    "qc": ["level", "id", "filter", "value", "threshold", "detail"],
    "ancestry": ["subject_id", "label_name", "PC1", "PC2"],  # and site, when the cohort has one
}


def test_result_tables_follow_the_contract(explained, baseline_run, sim_cohort, tmp_path):
    from explain import result_tables, write_tables

    attributions, _ = explained
    tables = result_tables(OutOfFold(baseline_run.out_dir), attributions, n_permutations=99)
    paths = write_tables(tables, tmp_path)
    assert sorted(p.name for p in paths) == sorted(f"{name}.csv" for name in CONTRACT)
    for name, columns in CONTRACT.items():
        table = pd.read_csv(tmp_path / f"{name}.csv")
        assert all(c in table.columns for c in columns), (name, set(columns) - set(table.columns))
        if "rank" in table:
            assert table["rank"].tolist() == list(range(1, len(table) + 1))
            p = table["p_perm"].dropna()
            assert ((p >= 1 / 100) & (p <= 1)).all()
            tested = table.dropna(subset=["p_perm"])
            assert (tested["p_fwer"] >= tested["p_perm"] - 1e-12).all()
            assert (tested["contrast"].diff().dropna() <= 0).all()  # ranked by contrast, untestable rows last
            assert table["p_perm"].iloc[len(tested) :].isna().all()
    snps = tables["snps"]
    removed = set(tables["qc"].loc[tables["qc"]["level"] == "snp", "id"])
    assert set(snps["snp"]) == set(sim_cohort.snps["snp"]) - removed and len(snps) + len(removed) == 200
    loci = tables["loci"].set_index("locus")
    assert loci["n_snps"].sum() == len(snps)
    ancestry = tables["ancestry"]
    assert ancestry["subject_id"].tolist() == sorted(ancestry["subject_id"]) and list(ancestry.columns[-2:]) == [
        "PC1",
        "PC2",
    ]
    by_snp = snps.set_index("snp")
    for locus, row in loci.iterrows():
        # the lead SNP: the testable member with the largest contrast in the locus's direction
        members = by_snp[(by_snp["locus"] == locus) & by_snp["p_perm"].notna()]
        if len(members):
            share = members["contrast"] * (1 if row["contrast"] >= 0 else -1)
            assert row["lead_snp"] == share.idxmax(), locus
        assert by_snp.loc[row["lead_snp"], "locus"] == locus
    top = snps.iloc[0]
    if loci.loc[top["locus"], "contrast"] >= 0:  # the top SNP leads its locus when that locus helps too
        assert loci.loc[top["locus"], "lead_snp"] == top["snp"]
    assert (loci["contrast"] < 0).any() and loci["p_perm"].notna().all()
    assert (snps["gene"].str.len() > 0).all()
    regions = tables["regions"]
    assert regions["n_voxels"].sum() <= int(sim_cohort.mask.sum()) and (regions["atlas"] == "aal").all()
    assert len(tables["connections"]) == 53 * 52 // 2 and len(tables["nodes"]) == 53
    np.testing.assert_allclose(tables["modalities"]["ablation_auc_drop"], attributions.ablation["ablation_auc_drop"])


def test_user_label_atlas_gives_its_regions_with_exact_voxel_counts(explained, baseline_run, tmp_path):
    import nibabel as nib

    from explain import result_tables
    from migtrans import ParameterError

    attributions, _ = explained
    # a 2 mm MNI label image: 1 = left hemisphere (x < 0), 2 = right; labels in atlas.tsv beside it
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-90, -126, -72]
    shape = (91, 109, 91)
    x_mm = affine[0, 0] * np.arange(shape[0]) + affine[0, 3]
    labels = np.broadcast_to(np.where(x_mm < 0, 1, 2)[:, None, None], shape).astype(np.int16)
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "halves.nii.gz")
    pd.DataFrame({"index": [1, 2], "name": ["Left", "Right"]}).to_csv(tmp_path / "halves.tsv", sep="\t", index=False)
    tables = result_tables(
        OutOfFold(baseline_run.out_dir), attributions, n_permutations=39, atlas=tmp_path / "halves.nii.gz"
    )
    regions = tables["regions"].set_index("region")
    # expected counts from the mask voxels' own MNI x coordinate (left of 0 mm, or right)
    ijk = np.argwhere(attributions.mask)
    x = (attributions.affine @ np.c_[ijk, np.ones(len(ijk))].T)[0]
    assert regions.loc["Left", "n_voxels"] + regions.loc["Right", "n_voxels"] == len(ijk)
    assert abs(regions.loc["Left", "n_voxels"] - int((x < 0).sum())) <= int((np.abs(x) < 4).sum())
    assert (regions["atlas"] == str(tmp_path / "halves.nii.gz")).all()
    (tmp_path / "halves.tsv").unlink()
    with pytest.raises(ParameterError, match="halves.tsv"):
        result_tables(
            OutOfFold(baseline_run.out_dir), attributions, n_permutations=39, atlas=tmp_path / "halves.nii.gz"
        )


def test_tables_of_an_explanation_set_permute_its_labels_within_site(explained_set, explanation_set_run):
    from explain import permutation_test

    attributions = explained_set
    oof = OutOfFold(explanation_set_run.out_dir)
    cohort = oof.cohort
    site = np.zeros(cohort.n_subjects, int) if cohort.site is None else pd.factorize(cohort.site)[0]
    # labels of the explanation set shuffled within site: the fold plays no part (one ensemble explains all)
    expected = permutation_test(
        attributions.snp, attributions.subjects["label"], strata=site[oof.rows], n_permutations=49, random_state=0
    )
    snps = attributions.tables["snps"].set_index("snp").loc[cohort.snps["snp"]]
    np.testing.assert_allclose(snps["p_perm"], expected.p_perm)
    np.testing.assert_allclose(snps["stat"], expected.stat, rtol=1e-6)
    assert (
        attributions.settings["null"] == "explanation_set" and "explanation set" in attributions.settings["null_tested"]
    )
    # contrast: mean attribution of the cases minus the controls (one site); the ensemble's baseline output is
    # one constant for all subjects, so the contrasts of every input add up to the mean log-odds gap
    y = attributions.subjects["label"].to_numpy() == 1
    snp = np.asarray(attributions.snp, dtype=np.float64)
    np.testing.assert_allclose(snps["contrast"], snp[y].mean(0) - snp[~y].mean(0), rtol=1e-9, atol=1e-15)
    log_odds = attributions.subjects["log_odds"].to_numpy()
    gap = log_odds[y].mean() - log_odds[~y].mean()
    total = sum(
        float((a[y].mean(0) - a[~y].mean(0)).sum())
        for a in (snp, np.asarray(attributions.edges(), np.float64), np.asarray(attributions.smri, np.float64))
    )
    delta = attributions.subjects["ig_delta"].to_numpy()
    assert abs(total - gap) <= abs(delta[y].mean() - delta[~y].mean()) + 1e-4 * abs(gap) + 1e-6


def test_out_of_fold_tables_combine_per_fold_tests_and_the_association_uses_every_subject(explained, baseline_run):
    from explain import association_covariates, logistic_association, per_fold_test, welch_statistic

    attributions, _ = explained
    oof = OutOfFold(baseline_run.out_dir)
    cohort = oof.cohort
    site = np.zeros(cohort.n_subjects, int) if cohort.site is None else pd.factorize(cohort.site)[0]
    folds = attributions.subjects["fold"].to_numpy()
    labels = attributions.subjects["label"].to_numpy()
    # each fold's labels shuffled within site with its own model fixed, combined by Bonferroni across folds
    expected = per_fold_test(attributions.snp, labels, folds, strata=site[oof.rows], n_permutations=49, random_state=0)
    snps = attributions.tables["snps"].set_index("snp").loc[cohort.snps["snp"]]
    np.testing.assert_array_equal(snps["p_perm"], expected.p_perm)
    np.testing.assert_array_equal(snps["p_fwer"], expected.p_fwer)
    np.testing.assert_allclose(snps["stat"], expected.stat, rtol=1e-9)
    assert attributions.settings["null"] == "per_fold" and "Bonferroni" in attributions.settings["combination"]
    assert set(np.round(snps["p_perm"].dropna() * 50)) <= {2 * k for k in range(1, 26)} | {50}  # 2 x (R + 1)/50
    # contrast within fold x site; a locus's is the sum of its SNPs'
    strata = folds * 10_000 + site[oof.rows]
    snp = np.asarray(attributions.snp, dtype=np.float64)
    np.testing.assert_allclose(snps["contrast"], welch_statistic(snp, labels, strata)[1], rtol=1e-9, atol=1e-15)
    loci = attributions.tables["loci"]
    member_sums = snps.groupby("locus")["contrast"].sum().loc[loci["locus"]]
    np.testing.assert_allclose(loci["contrast"], member_sums, rtol=1e-6, atol=1e-12)
    # completeness within each fold (one model, one baseline output): the contrasts of every input add up to
    # the gap in mean log-odds within fold x site, up to the IG error
    contrast = lambda X: welch_statistic(np.asarray(X, np.float64).reshape(len(labels), -1), labels, strata)[1]  # noqa: E731
    total = sum(float(np.nansum(contrast(a))) for a in (snp, attributions.edges(), attributions.smri))
    gap = contrast(attributions.subjects["log_odds"].to_numpy())[0]
    delta = contrast(attributions.subjects["ig_delta"].to_numpy())[0]
    assert abs(total - gap) <= abs(delta) + 1e-4 * abs(gap) + 1e-6
    # the classical association involves no model: all 40 subjects
    assoc = logistic_association(cohort.genotypes, cohort.labels, association_covariates(cohort))
    np.testing.assert_allclose(snps["p_assoc"], assoc["p_assoc"], rtol=1e-10)
    assert attributions.tables["snps"].attrs["association_covariates"] == [*cohort.covariates.columns, "PC1", "PC2"]


def test_held_out_mean_baseline_is_the_mean_input_of_the_subjects_each_fold_explains(baseline_run):
    oof = OutOfFold(baseline_run.out_dir)
    fold = oof.folds[1]
    rows = fold.test_idx
    base = oof.baselines(fold, "held_out_mean")
    inputs = oof.inputs(fold, rows)
    for m in ("snp", "fnc", "smri"):
        assert base[m].shape == (1, *inputs[m].shape[1:])
        torch.testing.assert_close(base[m], inputs[m].double().mean(dim=0, keepdim=True).float(), rtol=1e-5, atol=1e-6)
    # a label-free reference of the fold's own subjects: their attributions are complete against it too
    att = explain_run(baseline_run.out_dir, out_dir=False, n_steps=16, faithfulness=False, baseline="held_out_mean")
    assert att.settings["baseline"] == "held_out_mean"
    assert np.median(att.subjects["ig_relative_delta"]) < 0.01
    with pytest.raises(Exception, match="held_out_mean"):
        oof.baselines(fold, "median")
