"""Permutation engine against a brute-force scipy loop, stratified shuffling, BH, and the classical
association against statsmodels and plink1.9."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from explain import bh_fdr, covariate_matrix, genomic_inflation, logistic_association, permutation_test, permuted_labels


def _brute_force_p(stat_of, X, perms, observed):
    """p_perm and p_fwer from an explicit loop of ``stat_of(X, labels)`` over the permutations."""
    null = np.nan_to_num(np.abs(np.array([stat_of(X, p) for p in perms])))
    B = len(perms)
    tol = np.abs(observed) * (1 - 1e-6)
    p_perm = ((null >= tol).sum(axis=0) + 1) / (B + 1)
    p_fwer = ((null.max(axis=1)[:, None] >= tol).sum(axis=0) + 1) / (B + 1)
    return p_perm, p_fwer


def _stratified_z(X, y, strata):
    """Written out per stratum: the Mantel-Haenszel difference of means over its hypergeometric SD."""
    num, var, weight = 0.0, 0.0, 0.0
    for s in np.unique(strata):
        xs, ys = X[strata == s], y[strata == s]
        n1, n0 = ys.sum(), (1 - ys).sum()
        if n1 and n0:
            w = n1 * n0 / len(ys)
            num = num + w * (xs[ys == 1].mean(0) - xs[ys == 0].mean(0))
            var = var + w * xs.var(axis=0, ddof=1)  # = n1 n0 / (n (n - 1)) x the sum of squares
            weight += w
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / np.sqrt(var), num / weight


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # the constant feature, on purpose
def test_permutation_p_values_equal_a_brute_force_loop(rng):
    n, f, B = 37, 11, 60
    y = np.array([0, 1] * 18 + [1])
    strata = np.arange(n) % 3
    X = rng.normal(size=(n, f)) + 3.0 * strata[:, None]  # stratum offsets: the contrast is taken within
    X[:, 0] += 1.2 * y
    X[:, 5] = 7.0  # constant feature: no statistic, NaN p
    X[:, 6] = strata  # constant within every stratum: nothing moves under the permutations either
    res = permutation_test(X, y, strata=strata, n_permutations=B, random_state=4, perm_chunk=16, dtype=np.float64)
    perms = np.concatenate(list(permuted_labels(y, strata, B, np.random.default_rng(4), 16)))
    obs, contrast = _stratified_z(X, y, strata)
    ok = np.isfinite(res.stat)
    assert not ok[5] and not ok[6] and ok.sum() == f - 2
    np.testing.assert_allclose(res.stat[ok], obs[ok], rtol=1e-9)
    np.testing.assert_allclose(res.contrast[ok], contrast[ok], rtol=1e-9)
    p_perm, p_fwer = _brute_force_p(lambda X, p: _stratified_z(X, p, strata)[0][ok], X, perms, obs[ok])
    np.testing.assert_array_equal(res.p_perm[ok], p_perm)
    np.testing.assert_array_equal(res.p_fwer[ok], p_fwer)
    assert np.isnan(res.p_perm[~ok]).all() and np.isnan(res.p_fwer[~ok]).all() and np.isnan(res.q_fdr[~ok]).all()
    assert res.p_perm[0] == 1 / (B + 1)


def test_with_one_stratum_the_p_values_are_those_of_the_pooled_t(rng):
    n, f, B = 41, 9, 80
    y = rng.permutation(np.r_[np.ones(17, int), np.zeros(24, int)])
    X = rng.normal(size=(n, f))
    X[:, 0] += 0.9 * y
    X[:, 1] = rng.binomial(2, 0.2, n)  # discrete: ties between permutations
    res = permutation_test(X, y, n_permutations=B, random_state=2, perm_chunk=32)
    perms = np.concatenate(list(permuted_labels(y, np.zeros(n, int), B, np.random.default_rng(2), 32)))
    t = stats.ttest_ind(X[y == 1], X[y == 0], axis=0).statistic
    p_perm, p_fwer = _brute_force_p(lambda X, p: stats.ttest_ind(X[p == 1], X[p == 0], axis=0).statistic, X, perms, t)
    np.testing.assert_array_equal(res.p_perm, p_perm)
    np.testing.assert_array_equal(res.p_fwer, p_fwer)
    # z is a monotone function of t: z^2 = (n - 1) t^2 / (n - 2 + t^2)
    np.testing.assert_allclose(res.stat, np.sign(t) * np.sqrt((n - 1) * t**2 / (n - 2 + t**2)), rtol=1e-9)
    np.testing.assert_allclose(res.contrast, X[y == 1].mean(0) - X[y == 0].mean(0), rtol=1e-9)


def test_the_statistic_has_mean_0_and_sd_1_under_permutations_within_strata(rng):
    # the closed-form SD against the spread of 20,000 permutations, with unequal case shares by stratum
    strata = np.repeat([0, 1, 2], [12, 20, 9])
    y = np.r_[np.repeat([0, 1], [9, 3]), np.repeat([0, 1], [6, 14]), np.repeat([0, 1], [4, 5])]
    X = rng.exponential(size=(len(y), 3)) + 5.0 * strata[:, None]
    perms = np.concatenate(list(permuted_labels(y, strata, 20_000, np.random.default_rng(0), 5_000)))
    z = np.array([_stratified_z(X, p, strata)[0] for p in perms])
    np.testing.assert_allclose(z.mean(0), 0.0, atol=0.03)
    np.testing.assert_allclose(z.std(0), 1.0, rtol=0.03)
    res = permutation_test(X, y, strata=strata, n_permutations=9)
    np.testing.assert_allclose(res.stat, _stratified_z(X, y, strata)[0], rtol=1e-9)


def test_labels_never_move_across_strata(rng):
    y = rng.integers(0, 2, 50)
    strata = rng.integers(0, 4, 50)
    for block in permuted_labels(y, strata, 100, np.random.default_rng(0), 30):
        for perm in block:
            for s in range(4):
                assert perm[strata == s].sum() == y[strata == s].sum()
    # and they do move within strata
    assert not (next(permuted_labels(y, strata, 5, np.random.default_rng(1), 5)) == y).all()


def test_null_p_values_are_uniform():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(80, 400))
    y = np.repeat([0, 1], 40)
    res = permutation_test(X, y, n_permutations=499, random_state=1)
    assert stats.kstest(res.p_perm, "uniform").pvalue > 0.01
    # max-T controls the family-wise error: no null feature reaches p_fwer < 0.05 here most of the time
    assert (res.p_fwer < 0.05).sum() <= 1


def test_contrast_is_the_label_coefficient_with_stratum_fixed_effects(rng):
    def contrast(X, y, strata=None):
        return permutation_test(X, y, strata=strata, n_permutations=1).contrast

    n = 90
    site = np.repeat([0, 1, 2, 3], [30, 30, 25, 5])
    # cases crowd the later sites; site 3 holds cases only
    y = np.r_[
        rng.permutation([1] * 5 + [0] * 25),
        rng.permutation([1] * 10 + [0] * 20),
        rng.permutation([1] * 20 + [0] * 5),
        np.ones(5, int),
    ]
    X = rng.normal(size=(n, 4)) + 5.0 * site[:, None] + 0.7 * y[:, None] * np.arange(4)
    # OLS of each feature on the label and site dummies: the label's coefficient is the contrast
    design = np.column_stack([y, pd.get_dummies(site).to_numpy(float)])
    expected = [sm.OLS(X[:, j], design).fit().params[0] for j in range(4)]
    np.testing.assert_allclose(contrast(X, y, strata=site), expected, rtol=1e-10)
    # without strata: the plain difference of means, which the site offsets bias here
    np.testing.assert_allclose(contrast(X, y), X[y == 1].mean(0) - X[y == 0].mean(0), rtol=1e-12)
    assert abs(contrast(X, y)[0]) > 1.0 > abs(contrast(X, y, strata=site)[0])
    # no stratum holding both classes: undefined, NaN
    assert np.isnan(contrast(X[site == 3], y[site == 3] * 0 + [0, 1, 1, 1, 1], strata=[0, 1, 1, 1, 1])).all()


def test_bh_is_nan_safe_and_matches_statsmodels(rng):
    p = rng.random(30)
    p[[3, 17]] = np.nan
    q = bh_fdr(p)
    assert np.isnan(q[[3, 17]]).all()
    ok = np.isfinite(p)
    np.testing.assert_allclose(q[ok], multipletests(p[ok], method="fdr_bh")[1])


@pytest.fixture(scope="module")
def gwas_data():
    rng = np.random.default_rng(5)
    n, m = 600, 120
    g = rng.binomial(2, rng.uniform(0.05, 0.5, m), size=(n, m)).astype(float)
    g[rng.random((n, m)) < 0.01] = np.nan
    cov = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n).round(1),
            "sex": rng.choice(["M", "F"], n),
            "site": rng.choice(["s1", "s2", "s3"], n),
        }
    )
    eta = 0.6 * np.nan_to_num(g[:, 0], nan=1.0) - 0.6 + 0.03 * (cov["age"].to_numpy() - 40)
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return g, y, cov


def test_association_matches_statsmodels(gwas_data):
    g, y, cov = gwas_data
    res = logistic_association(g, y, cov, chunk=50)
    C, names = covariate_matrix(cov, len(y))
    assert names == ["intercept", "age", "sex[M]", "site[s2]", "site[s3]"]
    for j in range(g.shape[1]):
        ok = ~np.isnan(g[:, j])
        fit = sm.Logit(y[ok], np.column_stack([C[ok], g[ok, j]])).fit(disp=0, tol=1e-12, maxiter=100)
        assert res.loc[j, "beta_assoc"] == pytest.approx(fit.params[-1], rel=1e-6)
        assert res.loc[j, "p_assoc"] == pytest.approx(fit.pvalues[-1], rel=1e-6)
        assert res.loc[j, "n_obs"] == ok.sum()
    assert res.loc[0, "p_assoc"] < 1e-3


def test_genomic_inflation_closed_form():
    p = stats.chi2.sf(np.array([0.1, 0.455, 2.0, np.nan]), 1)
    assert genomic_inflation(p) == pytest.approx(0.455 / stats.chi2.ppf(0.5, 1), rel=1e-9)
    uniform = (np.arange(1, 10001) - 0.5) / 10000
    assert genomic_inflation(uniform) == pytest.approx(1.0, abs=1e-3)


def test_monomorphic_snp_gives_nan_not_a_number(gwas_data):
    g, y, cov = gwas_data
    g = g.copy()
    g[:, 3] = 1.0
    res = logistic_association(g[:, :5], y, cov)
    assert np.isnan(res.loc[3, "p_assoc"]) and np.isfinite(res.loc[0, "p_assoc"])


@pytest.mark.skipif(shutil.which("plink1.9") is None, reason="plink1.9 is not installed")
def test_association_agrees_with_plink_logistic(gwas_data, tmp_path):
    from bed_reader import to_bed

    g, y, cov = gwas_data
    n, m = g.shape
    ids = [f"i{k}" for k in range(n)]
    # plink counts A1 in .bed: our dosage is the A1 count
    to_bed(
        tmp_path / "d.bed",
        g.astype(np.float32),
        properties={
            "fid": ids,
            "iid": ids,
            "sid": [f"rs{j}" for j in range(m)],
            "chromosome": ["1"] * m,
            "bp_position": np.arange(1, m + 1) * 100,
            "allele_1": ["A"] * m,
            "allele_2": ["G"] * m,
            "pheno": (y + 1).astype(str),
        },
    )
    C, names = covariate_matrix(cov, n)
    cov_file = pd.DataFrame(C[:, 1:], columns=[c.replace("[", "_").replace("]", "") for c in names[1:]])
    cov_file.insert(0, "IID", ids)
    cov_file.insert(0, "FID", ids)
    cov_file.to_csv(tmp_path / "cov.txt", sep=" ", index=False)
    done = subprocess.run(
        [
            "plink1.9",
            "--bfile",
            str(tmp_path / "d"),
            "--logistic",
            "hide-covar",
            "--covar",
            str(tmp_path / "cov.txt"),
            "--allow-no-sex",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    plink = pd.read_csv(tmp_path / "out.assoc.logistic", sep=r"\s+")
    ours = logistic_association(g, y, cov)
    both = np.isfinite(plink["P"].to_numpy()) & np.isfinite(ours["p_assoc"].to_numpy())
    rho = stats.spearmanr(plink["P"][both], ours["p_assoc"][both]).statistic
    assert rho >= 0.999
    # plink reports the sample minor allele as A1; where that is our A2 the effect changes sign
    sign = np.where(plink["A1"] == "A", 1.0, -1.0)
    np.testing.assert_allclose(sign[both] * np.log(plink["OR"][both]), ours["beta_assoc"][both], rtol=2e-3, atol=2e-3)


def test_trend_max_t_equals_a_brute_force_loop_and_the_closed_form(rng):
    from explain import trend_permutation_test

    n, m, B = 60, 30, 99
    y = np.repeat([0, 1], 30)
    g = rng.binomial(2, 0.3, size=(n, m)).astype(float)
    g[rng.random((n, m)) < 0.05] = np.nan
    g[:, :11] = rng.binomial(2, 0.3, size=(n, 11))  # the first block has no missing call
    strata = np.repeat([0, 1, 2], 20)
    res = trend_permutation_test(g, y, strata=strata, n_permutations=B, random_state=3, perm_chunk=7, snp_chunk=11)

    def trend(labels):
        mean = np.nanmean(g, axis=0)
        c = np.where(np.isnan(g), 0, g - mean)
        n1 = labels.sum()
        return (labels @ c) / np.sqrt((c**2).sum(axis=0) / n * n1 * (n - n1) / n)

    observed = trend(y)
    perms = np.concatenate(list(permuted_labels(y, strata, B, np.random.default_rng(3), 7)))
    null = np.abs(np.array([trend(p) for p in perms]))
    np.testing.assert_allclose(res.stat, observed, rtol=1e-12)
    np.testing.assert_array_equal(res.p_perm, ((null >= np.abs(observed) * (1 - 1e-9)).sum(0) + 1) / (B + 1))
    np.testing.assert_array_equal(
        res.p_fwer, ((null.max(1)[:, None] >= np.abs(observed) * (1 - 1e-9)).sum(0) + 1) / (B + 1)
    )
    # closed form on complete data: T = sqrt(n) * Pearson r (the Armitage trend statistic)
    complete = ~np.isnan(g).any(axis=0)
    r = np.array([stats.pearsonr(y, g[:, j])[0] for j in np.flatnonzero(complete)])
    np.testing.assert_allclose(res.stat[complete], np.sqrt(n) * r, rtol=1e-10)
