"""LD pruning and genetic PCs: checked against plink 1.9 on a simulated three-population cohort, against a
literal port of plink's pruning loop, and against closed forms on hand-made SNPs."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from migtrans.exceptions import ParameterError
from migtrans.genetics import GeneticPCs, ancestry_pcs, genetic_pcs, ld_prune, project_pcs

PLINK = shutil.which("plink1.9")
needs_plink = pytest.mark.skipif(PLINK is None, reason="plink1.9 is not installed")
PLINK2 = shutil.which("plink2")
needs_plink2 = pytest.mark.skipif(PLINK2 is None, reason="plink2 is not installed")

# Distinct sizes so that a transposed axis fails loudly.
POP_SIZES = (90, 100, 110)
CHROM_SIZES = (1100, 1000, 900)
EPS = 2.0**-44  # plink's SMALL_EPSILON


def simulate(seed, pop_sizes=POP_SIZES, chrom_sizes=CHROM_SIZES, fst=0.03, missing=0.005):
    """Balding-Nichols populations with short-range LD and a few missing calls.

    Ancestral frequencies p ~ U(0.05, 0.5); each population draws Beta(p(1-F)/F, (1-p)(1-F)/F). Along each
    chromosome a haplotype copies its allele at the previous SNP with a SNP-specific probability in
    [0, 0.95), which gives LD decaying with distance; a few SNPs are exact copies of their neighbour so
    that equal-MAF ties occur.
    """
    rng = np.random.default_rng(seed)
    m = sum(chrom_sizes)
    p = rng.uniform(0.05, 0.5, m)
    freq = rng.beta(p * (1 - fst) / fst, (1 - p) * (1 - fst) / fst, size=(len(pop_sizes), m))
    population = np.repeat(np.arange(len(pop_sizes)), pop_sizes)
    hap_freq = np.repeat(freq[population], 2, axis=0)
    alleles = rng.random(hap_freq.shape) < hap_freq
    copies = rng.random(hap_freq.shape) < rng.uniform(0, 0.95, m)
    copies[:, np.cumsum((0,) + tuple(chrom_sizes[:-1]))] = False  # chromosomes are independent
    haplotypes = alleles
    for j in range(1, m):
        haplotypes[:, j] = np.where(copies[:, j], haplotypes[:, j - 1], alleles[:, j])
    dosages = haplotypes[0::2].astype(np.float32) + haplotypes[1::2]
    for j in rng.choice(np.arange(1, m), size=m // 100, replace=False):
        dosages[:, j] = dosages[:, j - 1]
    dosages[rng.random(dosages.shape) < missing] = np.nan
    chrom = np.repeat([str(c + 1) for c in range(len(chrom_sizes))], chrom_sizes)
    pos = np.concatenate([np.arange(size) * 1_000 + 1 for size in chrom_sizes])
    snps = pd.DataFrame({"snp": [f"rs{j}" for j in range(m)], "chrom": chrom, "pos": pos})
    return dosages, snps, population


@pytest.fixture(scope="module")
def cohort():
    return simulate(seed=7)


@pytest.fixture(scope="module")
def plink_results(cohort, tmp_path_factory):
    """plink 1.9's --maf 0.05 --indep-pairwise 50 5 0.2, then --pca 10 on the kept SNPs."""
    if PLINK is None:
        pytest.skip("plink1.9 is not installed")
    from bed_reader import to_bed

    dosages, snps, _ = cohort
    folder = tmp_path_factory.mktemp("plink")
    ids = [f"s{i}" for i in range(dosages.shape[0])]
    properties = {"fid": ids, "iid": ids, "sid": snps["snp"], "chromosome": snps["chrom"], "bp_position": snps["pos"]}
    to_bed(folder / "sim.bed", dosages, properties=properties, num_threads=1)
    common = [PLINK, "--bfile", "sim", "--threads", "1", "--memory", "1000"]
    run = dict(cwd=folder, check=True, capture_output=True)
    subprocess.run(common + ["--maf", "0.05", "--indep-pairwise", "50", "5", "0.2", "--out", "prune"], **run)
    subprocess.run(common + ["--extract", "prune.prune.in", "--pca", "10", "--out", "pca"], **run)
    kept = set((folder / "prune.prune.in").read_text().split())
    eigenvec = pd.read_csv(folder / "pca.eigenvec", sep=r"\s+", header=None)
    return dict(kept=kept, scores=eigenvec.iloc[:, 2:].to_numpy(), eigenvalues=np.loadtxt(folder / "pca.eigenval"))


# --- agreement with plink -----------------------------------------------------------------------------------


@needs_plink
def test_ld_prune_keeps_plinks_set(cohort, plink_results):
    dosages, snps, _ = cohort
    ours = set(snps["snp"][ld_prune(dosages, snps, window=50, step=5, r2=0.2, min_maf=0.05)])
    theirs = plink_results["kept"]
    jaccard = len(ours & theirs) / len(ours | theirs)
    # pruning must have had work to do, or the comparison says little
    assert 0.2 * len(snps) < len(theirs) < 0.8 * len(snps)
    differ = f"only ours {sorted(ours - theirs)[:5]}, only plink's {sorted(theirs - ours)[:5]}"
    assert ours == theirs, f"Jaccard {jaccard:.4f}; {differ}"


@needs_plink
def test_genetic_pcs_match_plink_eigenvec(cohort, plink_results):
    dosages, snps, _ = cohort
    pcs = genetic_pcs(dosages, 10, snp_mask=snps["snp"].isin(plink_results["kept"]).to_numpy())
    theirs = plink_results["scores"]
    correlations = [abs(np.corrcoef(pcs.scores[:, k], theirs[:, k])[0, 1]) for k in range(10)]
    assert min(correlations[:4]) >= 0.9999, correlations
    # same matrix, so all ten agree to plink's six printed digits once plink's arbitrary signs are aligned
    signs = np.sign(np.sum(pcs.scores * theirs, axis=0))
    np.testing.assert_allclose(pcs.scores, theirs * signs, atol=2e-6)
    np.testing.assert_allclose(pcs.eigenvalues, plink_results["eigenvalues"], rtol=5e-6)  # printed to 6 digits


@needs_plink
def test_ancestry_pcs_is_prune_then_pca(cohort, plink_results):
    dosages, snps, _ = cohort
    pcs = ancestry_pcs(dosages, snps, n_components=4)
    assert set(snps["snp"][pcs.snp_mask]) == plink_results["kept"]
    np.testing.assert_allclose(pcs.eigenvalues, plink_results["eigenvalues"][:4], rtol=5e-6)


# --- behaviour without plink --------------------------------------------------------------------------------


def test_ancestry_pcs_separate_populations_without_labels(cohort):
    dosages, snps, population = cohort
    scores = ancestry_pcs(dosages, snps, n_components=2).scores
    centroids = np.stack([scores[population == g].mean(axis=0) for g in range(len(POP_SIZES))])
    nearest = np.argmin(((scores[:, None, :] - centroids[None]) ** 2).sum(axis=2), axis=1)
    assert np.mean(nearest == population) >= 0.95


def plink_prune_reference(dosages, chrom, window, step, r2, min_maf):
    """A literal, pair-by-pair port of the pairwise branch of plink 1.9's ld_prune() (plink_ld.c).

    live / start mirror plink's live_indices / start_arr: start[i] is the first partner i still has to
    be compared with, so no pair is examined twice.
    """
    x = dosages.astype(np.float64)
    called = ~np.isnan(x)
    n_called = called.sum(axis=0)
    freq = np.where(n_called > 0, np.nansum(x, axis=0) / np.maximum(2 * n_called, 1), 0.5)
    maf = np.minimum(freq, 1 - freq)
    threshold = r2 * (1 + EPS)

    def pair_r2(a, b):
        both = called[:, a] & called[:, b]
        xa, xb, n = x[both, a], x[both, b], both.sum()
        cov = n * (xa @ xb) - xa.sum() * xb.sum()
        var = (n * (xa @ xa) - xa.sum() ** 2) * (n * (xb @ xb) - xb.sum() ** 2)
        return cov * cov / var if var else np.nan

    keep = np.zeros(x.shape[1], dtype=bool)
    for name in pd.unique(chrom):
        if name == "0":
            continue
        idx = [j for j in np.flatnonzero(chrom == name) if maf[j] >= min_maf * (1 - EPS)]
        m = len(idx)
        if m < 2:
            keep[idx] = True
            continue
        own = [np.var(x[called[:, j], j]) if called[:, j].any() else 0.0 for j in idx]
        pruned = [v == 0 for v in own]
        s, end = 0, min(window, m)
        live = list(range(end))
        start = {i: i + 1 for i in live}
        while True:
            while len(live) > 1:
                dropped = False
                for u in range(len(live) - 1):
                    i = live[u]
                    if pruned[i]:
                        continue
                    v = u + 1
                    while v < len(live) and live[v] < start[i]:
                        v += 1
                    while v < len(live):
                        j = live[v]
                        if not pruned[j] and pair_r2(idx[i], idx[j]) > threshold:
                            dropped = True
                            if maf[idx[i]] < (1 - EPS) * maf[idx[j]]:
                                pruned[i] = True
                            else:
                                pruned[j] = True
                                v += 1
                                while v < len(live) and pruned[live[v]]:
                                    v += 1
                                if v < len(live):
                                    start[i] = live[v]
                            break
                        v += 1
                    if v == len(live):
                        start[i] = end
                if not dropped:
                    break
            s = min(s + step, m)
            if s == m:
                break
            live = [i for i in live if i >= s and not pruned[i]]
            for _ in range(step):
                if end == m:
                    break
                live.append(end)
                start[end] = end + 1
                end += 1
        keep[np.asarray(idx)[~np.asarray(pruned)]] = True
    return keep


@pytest.mark.parametrize(
    "window, step, r2, min_maf", [(50, 5, 0.2, 0.05), (10, 3, 0.1, 0.0), (7, 7, 0.5, 0.1), (12, 1, 0.05, 0.02)]
)
def test_ld_prune_matches_literal_port_of_plink_loop(window, step, r2, min_maf):
    dosages, snps, _ = simulate(seed=3, pop_sizes=(23, 17, 21), chrom_sizes=(130, 97, 111), missing=0.03)
    dosages[:, 40] = 1.0  # constant: pruned at load when min_maf is 0
    for j in range(5, len(snps), 15):
        dosages[:, j] = dosages[:, j - 1]  # equal MAFs: the later SNP of the pair goes
    expected = plink_prune_reference(dosages, snps["chrom"].to_numpy(), window, step, r2, min_maf)
    kept = ld_prune(dosages, snps, window=window, step=step, r2=r2, min_maf=min_maf)
    assert 0 < expected.sum() < len(snps)
    np.testing.assert_array_equal(kept, expected)


def _one_chromosome(n_snps, chrom="1"):
    return pd.DataFrame({"snp": [f"rs{j}" for j in range(n_snps)], "chrom": chrom, "pos": np.arange(n_snps) + 1})


def test_pair_at_the_threshold_keeps_both():
    # r² of x = (0, 0, 2, 2) and y = (0, 1, 1, 2) is exactly 0.5; both MAFs are 0.5
    x = np.array([0, 0, 2, 2] * 3, dtype=np.float32)
    y = np.array([0, 1, 1, 2] * 3, dtype=np.float32)
    dosages, snps = np.stack([x, y], axis=1), _one_chromosome(2)
    assert ld_prune(dosages, snps, r2=0.5, min_maf=0).tolist() == [True, True]
    assert ld_prune(dosages, snps, r2=0.4999, min_maf=0).tolist() == [True, False]  # tie: the later goes


@pytest.mark.parametrize("swap", [False, True])
def test_lower_maf_snp_of_a_pair_goes(rng, swap):
    common = rng.binomial(2, 0.4, size=60).astype(np.float32)
    rarer = common.copy()
    rarer[np.flatnonzero(common == 2)[:3]] = 1  # r² stays high, MAF drops
    dosages = np.stack([rarer, common] if swap else [common, rarer], axis=1)
    kept = ld_prune(dosages, _one_chromosome(2), min_maf=0)
    assert kept.tolist() == ([False, True] if swap else [True, False])


def test_r2_uses_subjects_called_at_both_snps(rng):
    x = rng.binomial(2, 0.4, size=(20, 1)).astype(np.float32)
    y = x.copy()
    y[:6] = np.nan  # identical where both are called; mean imputation would give r² near 0.7
    kept = ld_prune(np.hstack([x, y]), _one_chromosome(2), r2=0.99, min_maf=0)
    assert kept.sum() == 1


def test_window_counts_snps_within_a_chromosome(rng):
    base = rng.binomial(2, 0.3, size=(40, 1)).astype(np.float32)
    fillers = rng.binomial(2, 0.3, size=(40, 9)).astype(np.float32)
    dosages = np.hstack([base, fillers, base, base])  # copies 10 SNPs away, and on another chromosome
    snps = pd.DataFrame({"snp": [f"rs{j}" for j in range(12)], "chrom": ["1"] * 11 + ["2"], "pos": np.arange(12)})
    kept = ld_prune(dosages, snps, window=10, step=1, r2=0.9)
    assert kept[[0, 10, 11]].tolist() == [True, True, True]
    assert not ld_prune(dosages, snps, window=11, step=1, r2=0.9)[10]


def test_low_maf_and_chromosome_zero_are_never_kept(rng):
    dosages = rng.binomial(2, 0.3, size=(50, 4)).astype(np.float32)
    dosages[:, 1] = 0
    dosages[:2, 1] = 1  # MAF 0.02
    snps = pd.DataFrame({"snp": list("abcd"), "chrom": ["1", "1", "1", "0"], "pos": [1, 2, 3, 4]})
    assert ld_prune(dosages, snps, min_maf=0.05).tolist() == [True, False, True, False]


def test_genetic_pcs_match_eigenvectors_of_pairwise_complete_grm(rng):
    dosages = rng.binomial(2, rng.uniform(0.1, 0.5, 23), size=(13, 23)).astype(np.float32)
    dosages[rng.random(dosages.shape) < 0.1] = np.nan
    called = ~np.isnan(dosages)
    p = np.nansum(dosages, axis=0) / (2 * called.sum(axis=0))
    z = (dosages - 2 * p) / np.sqrt(2 * p * (1 - p))
    grm = np.empty((13, 13))
    for j in range(13):
        for k in range(13):
            both = called[j] & called[k]
            grm[j, k] = np.mean(z[j, both] * z[k, both])
    values, vectors = np.linalg.eigh(grm)
    pcs = genetic_pcs(dosages, n_components=3)
    np.testing.assert_allclose(pcs.eigenvalues, values[::-1][:3], rtol=1e-10)
    np.testing.assert_allclose(np.abs(pcs.scores), np.abs(vectors[:, ::-1][:, :3]), atol=1e-10)


def test_genetic_pcs_do_not_depend_on_which_allele_is_counted(cohort):
    dosages, _, _ = cohort
    sub = dosages[:60, :400]
    a, b = genetic_pcs(sub, 3), genetic_pcs(2 - sub, 3)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-10)
    np.testing.assert_allclose(a.eigenvalues, b.eigenvalues, rtol=1e-12)


def test_results_are_deterministic_and_sign_fixed(cohort):
    dosages, snps, _ = cohort
    first, second = ancestry_pcs(dosages, snps, n_components=5), ancestry_pcs(dosages.copy(), snps, n_components=5)
    assert first.scores.tobytes() == second.scores.tobytes()
    assert first.eigenvalues.tobytes() == second.eigenvalues.tobytes()
    assert np.array_equal(first.snp_mask, second.snp_mask)
    largest = first.scores[np.argmax(np.abs(first.scores), axis=0), np.arange(5)]
    assert np.all(largest > 0)
    np.testing.assert_allclose(np.linalg.norm(first.scores, axis=0), 1.0)


def test_as_frame_names_components_and_subjects(rng):
    dosages = rng.binomial(2, 0.3, size=(9, 40)).astype(np.float32)
    pcs = genetic_pcs(dosages, n_components=3)
    ids = [f"sub-{i}" for i in range(9)]
    frame = pcs.as_frame(ids)
    assert list(frame.columns) == ["PC1", "PC2", "PC3"]
    assert list(frame.index) == ids and frame.index.name == "subject_id"
    np.testing.assert_array_equal(frame.to_numpy(), pcs.scores)
    with pytest.raises(ParameterError, match="subject_ids"):
        pcs.as_frame(ids[:-1])
    assert isinstance(pcs, GeneticPCs) and pcs.n_snps_used == 40


# --- projection of new subjects ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split_cohort():
    """Two Balding-Nichols populations (130 and 110 subjects, a few missing calls): every third subject is
    held out as a new subject, the others are the reference cohort the components are fitted on."""
    dosages, snps, population = simulate(seed=11, pop_sizes=(130, 110), chrom_sizes=(700, 600, 500))
    new = np.arange(len(population)) % 3 == 0
    pcs = ancestry_pcs(dosages[~new], snps, n_components=3)
    return dict(pcs=pcs, snps=snps, dosages=dosages, population=population, new=new)


def test_projecting_the_reference_gives_back_its_scores(cohort):
    dosages, snps, _ = cohort
    complete = np.where(np.isnan(dosages), 0.0, dosages).astype(np.float32)
    pcs = ancestry_pcs(complete, snps, n_components=4)
    assert 0 < pcs.n_snps_used < len(snps)  # the loadings must map through the mask
    assert pcs.loadings.shape == (pcs.n_snps_used, 4) and pcs.frequencies.shape == (pcs.n_snps_used,)
    np.testing.assert_allclose(project_pcs(pcs, complete), pcs.scores, atol=1e-10)


def test_projecting_the_reference_with_missing_calls_is_close(cohort):
    dosages, snps, _ = cohort  # 0.5% missing calls
    pcs = ancestry_pcs(dosages, snps, n_components=4)
    error = np.abs(project_pcs(pcs, dosages) - pcs.scores).max(axis=0) / pcs.scores.std(axis=0)
    # per-pair counts in plink's matrix, per-subject counts in the projection: close, not exact
    assert np.all(error < 0.02) and np.any(error > 1e-6), error


def test_new_subjects_land_on_their_populations_side_of_pc1(split_cohort):
    pcs, new, population = split_cohort["pcs"], split_cohort["new"], split_cohort["population"]
    projected = project_pcs(pcs, split_cohort["dosages"][new])
    assert projected.shape == (new.sum(), 3)
    reference_pc1 = pcs.scores[:, 0]
    centroids = np.array([reference_pc1[population[~new] == g].mean() for g in (0, 1)])
    nearest = np.argmin(np.abs(projected[:, [0]] - centroids[None]), axis=1)
    assert np.mean(nearest == population[new]) >= 0.95
    # the same axis as a fit on everyone (shrunk towards 0, as out-of-sample scores are)
    joint = ancestry_pcs(split_cohort["dosages"], split_cohort["snps"], n_components=1).scores[new, 0]
    assert abs(np.corrcoef(joint, projected[:, 0])[0, 1]) > 0.98


@needs_plink2
def test_projection_is_plink2_score_of_the_loadings(split_cohort, tmp_path):
    """plink2 --score, variance-standardised with the reference frequencies (--read-freq), missing calls
    thrown out: its average over called alleles times 2 M is the projection."""
    from bed_reader import to_bed

    pcs, snps, new = split_cohort["pcs"], split_cohort["snps"], split_cohort["new"]
    dosages = split_cohort["dosages"][new]
    assert np.isnan(dosages[:, pcs.snp_mask]).any()  # so that the treatment of missing calls is compared
    ids = [f"n{i}" for i in range(len(dosages))]
    alleles = dict(allele_1=np.full(len(snps), "A"), allele_2=np.full(len(snps), "G"))  # A1 = A is counted
    properties = {"fid": ids, "iid": ids, "sid": snps["snp"], "chromosome": snps["chrom"], **alleles}
    to_bed(tmp_path / "new.bed", dosages, properties=properties, num_threads=1)
    used = snps[pcs.snp_mask]
    frequencies = {"#CHROM": used["chrom"], "ID": used["snp"], "REF": "G", "ALT": "A", "ALT_FREQS": pcs.frequencies}
    pd.DataFrame(frequencies).to_csv(tmp_path / "ref.afreq", sep="\t", index=False, float_format="%.17g")
    loadings = pd.DataFrame(pcs.loadings, columns=["PC1", "PC2", "PC3"])
    loadings.insert(0, "A1", "A")
    loadings.insert(0, "ID", used["snp"].to_numpy())
    loadings.to_csv(tmp_path / "loadings.tsv", sep="\t", index=False, float_format="%.17g")
    score = ["--score", "loadings.tsv", "1", "2", "header-read", "variance-standardize", "no-mean-imputation"]
    subprocess.run(
        [PLINK2, "--bfile", "new", "--read-freq", "ref.afreq", *score, "--score-col-nums", "3-5"]
        + ["--threads", "1", "--memory", "1000", "--out", "proj"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    theirs = pd.read_csv(tmp_path / "proj.sscore", sep="\t")[["PC1_AVG", "PC2_AVG", "PC3_AVG"]].to_numpy()
    # plink prints six significant digits of averages near 3e-5
    np.testing.assert_allclose(project_pcs(pcs, dosages), theirs * 2 * pcs.n_snps_used, rtol=1e-4, atol=1e-6)


def test_projection_refuses_a_wrong_snp_count_in_one_line(split_cohort):
    pcs, dosages = split_cohort["pcs"], split_cohort["dosages"]
    with pytest.raises(ParameterError, match=r"^new_dosages: expected 1800 SNP columns .*found 1799$") as info:
        project_pcs(pcs, dosages[:5, :-1])
    assert "\n" not in str(info.value)
    with pytest.raises(ParameterError, match="^pcs: expected GeneticPCs"):
        project_pcs(pcs.scores, dosages[:5])
    bad = dosages[:5].copy()
    bad[2, 7] = 3
    with pytest.raises(ParameterError, match=r"^new_dosages: expected allele counts .*subject row 2, SNP column 7"):
        project_pcs(pcs, bad)
    uncalled = dosages[:5].copy()
    uncalled[3, pcs.snp_mask] = np.nan
    with pytest.raises(ParameterError, match="^new_dosages: .*none for subject row 3$"):
        project_pcs(pcs, uncalled)


# --- refusals -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_components", [0, -1, 9, 12, 2.5, True])
def test_bad_n_components_is_refused(rng, n_components):
    dosages = rng.binomial(2, 0.3, size=(9, 40)).astype(np.float32)
    with pytest.raises(ParameterError, match="^n_components: "):
        genetic_pcs(dosages, n_components=n_components)


def test_fewer_polymorphic_snps_than_components_is_refused(rng):
    dosages = rng.binomial(2, 0.3, size=(9, 5)).astype(np.float32)
    dosages[:, 2:] = 2.0  # monomorphic
    with pytest.raises(ParameterError, match="^dosages: .*3 polymorphic SNPs, found 2"):
        genetic_pcs(dosages, n_components=3)
    with pytest.raises(ParameterError, match="^snp_mask: .*2 polymorphic SNPs, found 1"):
        genetic_pcs(dosages, n_components=2, snp_mask=np.array([True, False, True, True, True]))
    with pytest.raises(ParameterError, match="^snp_mask: expected a boolean array"):
        genetic_pcs(dosages, n_components=1, snp_mask=np.ones(4, dtype=bool))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(window=1), "^window: "),
        (dict(window=5, step=6), "^step: expected at most window=5"),
        (dict(r2=1.0), r"^r2: expected a number in \[0.0, 1.0\)"),
        (dict(min_maf=0.6), "^min_maf: "),
    ],
)
def test_bad_pruning_parameters_are_refused(rng, kwargs, match):
    dosages = rng.binomial(2, 0.3, size=(9, 6)).astype(np.float32)
    with pytest.raises(ParameterError, match=match):
        ld_prune(dosages, _one_chromosome(6), **kwargs)


def test_bad_inputs_are_refused(rng):
    dosages = rng.binomial(2, 0.3, size=(9, 6)).astype(np.float32)
    with pytest.raises(ParameterError, match="^snps: expected 6 rows"):
        ld_prune(dosages, _one_chromosome(5))
    split = _one_chromosome(6).assign(chrom=["1", "1", "2", "2", "1", "1"])
    with pytest.raises(ParameterError, match="^snps: .*chromosome '1' split"):
        ld_prune(dosages, split)
    bad = dosages.copy()
    bad[3, 4] = 0.5
    with pytest.raises(ParameterError, match=r"^dosages: expected allele counts .*SNP column 4\)"):
        genetic_pcs(bad, 2)
    with pytest.raises(ParameterError, match="^dosages: expected a 2-D"):
        genetic_pcs(dosages[0], 1)
