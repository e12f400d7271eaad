"""Publication figures: Manhattan geometry and thresholds, label placement, QQ band, displays of the other
tables, and make_figures over a synthetic report folder (all tables small, with distinct sizes)."""

from __future__ import annotations

import itertools
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from scipy import stats

from reports import (
    SECTIONS,
    AttributionMapDisplay,
    ConfusionDisplay,
    ConnectogramDisplay,
    ConnectomeDisplay,
    DeletionCurveDisplay,
    FNCMatrixDisplay,
    ManhattanDisplay,
    MetricsTableDisplay,
    ModalityContributionDisplay,
    QQDisplay,
    RegionalDisplay,
    RegionBarDisplay,
    RocCurvesDisplay,
    TrainingHistoryDisplay,
    make_figures,
    save_figure,
    significance_threshold,
)
from reports.plotting._connectome import node_order
from reports.plotting._genome import CHROMOSOME_LENGTHS, normalise_chromosome
from reports.plotting._genomics import MARKED
from reports.plotting._labels import place_labels

GRCH37 = CHROMOSOME_LENGTHS["GRCh37"]


def snp_table(rng, chroms=("1", "2", "9", "10", "22", "X"), per_chrom=(13, 11, 7, 9, 5, 6), prefix=""):
    """A small per-SNP table, a different number of SNPs per chromosome, with loci of three SNPs."""
    rows = []
    for c, n in zip(chroms, per_chrom):
        pos = np.sort(rng.choice(np.arange(1_000, 40_000_000, 1_000), n, replace=False))
        for k, p in enumerate(pos):
            rows.append(
                {
                    "snp": f"rs{c}_{k}",
                    "chrom": f"{prefix}{c}",
                    "pos": int(p),
                    "gene": f"G{c}_{k // 3}",
                    "locus": f"L{c}_{k // 3}",
                }
            )
    table = pd.DataFrame(rows)
    m = len(table)
    table["p_perm"] = rng.uniform(0.002, 1, m)
    table["p_fwer"] = np.minimum(1, table["p_perm"] * m)
    table["p_assoc"] = rng.uniform(1e-4, 1, m)
    table["stat"] = rng.normal(size=m)
    return table


def sorted_points(panel):
    order = np.lexsort((panel.logp, panel.x))
    return panel.x[order], panel.logp[order]


# --- chromosome names and the genome axis -------------------------------------------------------------------


def test_chromosome_names_normalise_to_one_spelling():
    assert [normalise_chromosome(c) for c in ("chr1", "CHR1", "1", 1, 1.0, "01")] == ["1"] * 6
    assert [normalise_chromosome(c) for c in ("chrX", "x", "23", "chrM", "MT", "26", "chrY")] == [
        "X",
        "X",
        "X",
        "MT",
        "MT",
        "MT",
        "Y",
    ]


def test_manhattan_shuffled_input_gives_the_same_positions_and_ticks(rng):
    table = snp_table(rng)
    a = ManhattanDisplay.from_table(table)
    b = ManhattanDisplay.from_table(table.sample(frac=1, random_state=3))
    assert not table["chrom"].equals(table.sample(frac=1, random_state=3)["chrom"].reset_index(drop=True))
    for pa, pb in zip(a.panels, b.panels):
        np.testing.assert_array_equal(sorted_points(pa)[0], sorted_points(pb)[0])
        np.testing.assert_array_equal(sorted_points(pa)[1], sorted_points(pb)[1])
    np.testing.assert_array_equal(a.tick_positions, b.tick_positions)
    assert a.tick_labels == b.tick_labels


def test_manhattan_ticks_at_chromosome_centres_in_natural_order(rng):
    table = snp_table(rng).sample(frac=1, random_state=1)
    d = ManhattanDisplay.from_table(table)
    assert d.tick_labels == ["1", "2", "9", "10", "22", "X"]
    # Offsets follow from the lengths of the chromosomes present only: no room for 3..8, 11..21.
    expected_offsets = np.cumsum([0] + [GRCH37[c] for c in ("1", "2", "9", "10", "22")])
    lengths = np.array([GRCH37[c] for c in ("1", "2", "9", "10", "22", "X")])
    np.testing.assert_allclose(d.tick_positions, expected_offsets + lengths / 2)
    assert np.all(np.diff(d.tick_positions) > 0)
    # Every point lies inside its chromosome's span.
    panel = d.panels[0]
    edges = np.append(expected_offsets, expected_offsets[-1] + GRCH37["X"])
    assert np.all((panel.x > 0) & (panel.x < edges[-1]))
    fig = d.plot().figure_
    assert [t.get_text() for t in d.axes_[-1].get_xticklabels() if t.get_text()][:3] == ["1", "2", "9"]
    np.testing.assert_allclose(d.axes_[-1].get_xticks(), d.tick_positions)
    plt.close(fig)


def test_manhattan_missing_chromosomes_are_absent_without_gaps(rng):
    table = snp_table(rng, chroms=("1", "3", "5"), per_chrom=(5, 7, 4))
    d = ManhattanDisplay.from_table(table)
    assert d.axis.chromosomes == ("1", "3", "5")
    assert d.axis.offsets == {"1": 0, "3": GRCH37["1"], "5": GRCH37["1"] + GRCH37["3"]}
    assert d.axis.total == GRCH37["1"] + GRCH37["3"] + GRCH37["5"]
    assert len(d.tick_positions) == 3


def test_manhattan_chr_prefix_gives_the_same_result(rng):
    plain = snp_table(np.random.default_rng(5))
    prefixed = snp_table(np.random.default_rng(5), prefix="chr")
    assert prefixed["chrom"].iloc[0] == "chr1"
    a, b = ManhattanDisplay.from_table(plain), ManhattanDisplay.from_table(prefixed)
    assert a.tick_labels == b.tick_labels
    np.testing.assert_array_equal(a.tick_positions, b.tick_positions)
    for pa, pb in zip(a.panels, b.panels):
        np.testing.assert_array_equal(pa.x, pb.x)
        assert pa.label_text == pb.label_text


def test_manhattan_build_and_long_chromosome_fallback(rng):
    table = snp_table(rng, chroms=("1", "2"), per_chrom=(4, 3))
    d38 = ManhattanDisplay.from_table(table, build="GRCh38")
    assert d38.axis.offsets["2"] == CHROMOSOME_LENGTHS["GRCh38"]["1"] != GRCH37["1"]
    table.loc[0, "pos"] = GRCH37["1"] + 12_345  # beyond the reference length
    d = ManhattanDisplay.from_table(table)
    assert d.axis.lengths["1"] == GRCH37["1"] + 12_345
    assert d.axis.offsets["2"] == GRCH37["1"] + 12_345
    with pytest.raises(ValueError, match="build"):
        ManhattanDisplay.from_table(table, build="hg17")


def test_manhattan_p_zero_is_finite_at_the_panel_maximum(rng):
    table = snp_table(rng)
    table.loc[4, "p_perm"] = 0.0
    table.loc[7, "p_assoc"] = 0.0
    d = ManhattanDisplay.from_table(table, n_permutations=999)
    perm, assoc = d.panels
    assert np.all(np.isfinite(perm.logp)) and np.all(np.isfinite(assoc.logp))
    assert perm.logp.max() == pytest.approx(3.0)  # 1/(B+1) = 1e-3
    assert assoc.logp.max() == pytest.approx(-np.log10(table["p_assoc"][table["p_assoc"] > 0].min()))
    assert perm.n_raised == 1 and assoc.n_raised == 1
    # All p = 0: still finite.
    table["p_assoc"] = 0.0
    assert np.all(np.isfinite(ManhattanDisplay.from_table(table).panels[1].logp))


def test_manhattan_nan_p_dropped_and_counted(rng):
    table = snp_table(rng)
    table.loc[[2, 5, 9], "p_perm"] = np.nan
    table.loc[[3], "p_assoc"] = np.nan
    table.loc[[11], "pos"] = np.nan
    d = ManhattanDisplay.from_table(table)
    assert d.n_dropped == {"p_perm": 3, "p_assoc": 1}
    assert d.n_unplaced == 1
    assert d.panels[0].x.size == len(table) - 1 - 3
    assert d.panels[0].n_features == len(table) - 1 - 3
    assert np.all(np.isfinite(d.panels[0].logp))


def test_manhattan_skips_absent_p_columns(rng):
    table = snp_table(rng).drop(columns="p_assoc")
    d = ManhattanDisplay.from_table(table)
    assert [p.column for p in d.panels] == ["p_perm"]
    d.plot()
    assert len(d.axes_) == 1
    with pytest.raises(ValueError, match="p column"):
        ManhattanDisplay.from_table(table.drop(columns="p_perm"))


# --- thresholds ----------------------------------------------------------------------------------------------


def test_threshold_is_the_fwer_boundary_between_neighbours():
    p = np.array([0.5, 1e-6, 3e-4, 1e-5, np.nan, 0.02])
    fwer = np.array([1.0, 0.001, 0.3, 0.04, np.nan, 1.0])
    t, rule = significance_threshold(p, fwer)
    assert t == pytest.approx(np.sqrt(1e-5 * 3e-4))
    assert "family-wise" in rule
    assert (p[fwer <= 0.05] <= t).all() and (p[fwer > 0.05] > t).all()


def test_threshold_falls_back_to_bonferroni():
    p = np.array([0.5, 1e-3, np.nan, 0.02, 0.3])
    t, rule = significance_threshold(p, np.array([1.0, 0.2, np.nan, 1.0, 1.0]))
    assert t == pytest.approx(0.05 / 4)
    assert rule.startswith("Bonferroni")
    assert significance_threshold(p)[0] == pytest.approx(0.05 / 4)
    assert significance_threshold(p, alpha=0.01)[0] == pytest.approx(0.01 / 4)


def test_threshold_with_ties_and_all_significant():
    # Permutation p ties at 1/(B+1): one significant and one not at the same p; the line goes through them.
    t, _ = significance_threshold([1e-3, 1e-3, 0.2], [0.04, 0.06, 1.0])
    assert t == pytest.approx(1e-3)
    t, _ = significance_threshold([1e-4, 2e-4], [0.01, 0.02])
    assert t == pytest.approx(2e-4)


def test_manhattan_panels_use_their_own_threshold_and_suggestive_line(rng):
    table = snp_table(rng)
    m = len(table)
    table["p_perm"] = np.linspace(0.001, 1, m)
    table["p_fwer"] = np.where(np.arange(m) < 4, 0.01, 0.5)  # the four smallest p_perm are significant
    d = ManhattanDisplay.from_table(table)
    perm, assoc = d.panels
    assert perm.threshold == pytest.approx(np.sqrt(table["p_perm"][3] * table["p_perm"][4]))
    assert assoc.threshold == pytest.approx(0.05 / m)  # no FWER column for p_assoc
    assert perm.suggestive == pytest.approx(1 / m)
    d.plot(label=False)
    dashed = [line.get_ydata()[0] for line in d.axes_[0].get_lines() if line.get_linestyle() == "--"]
    assert dashed == [pytest.approx(-np.log10(perm.threshold))]


# --- labels --------------------------------------------------------------------------------------------------


def boxes_overlap(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def assert_no_overlap(fig, texts):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2):
        assert not boxes_overlap(a, b), f"labels {texts[i].get_text()!r} and {texts[j].get_text()!r} overlap"


def test_place_labels_separates_labels_on_one_point():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 5)
    x, y = [5.0] * 6 + [5.05], [2.0] * 6 + [2.01]
    texts = [f"GENE{k}" for k in range(7)]
    labels, leaders = place_labels(ax, x, y, texts)
    assert [t.get_text() for t in labels] == texts and len(leaders) == 7
    assert_no_overlap(fig, labels)
    # Placement is deterministic.
    fig2, ax2 = plt.subplots(figsize=(3, 2))
    ax2.set_xlim(0, 10)
    ax2.set_ylim(0, 5)
    again, _ = place_labels(ax2, x, y, texts)
    assert [t.get_position() for t in again] == [t.get_position() for t in labels]


def test_manhattan_labels_do_not_overlap_in_a_dense_peak(rng):
    table = snp_table(rng, chroms=("1", "2", "3"), per_chrom=(30, 8, 9))
    # Ten loci in a 2 Mb peak on chromosome 1, each with its own gene, all near the top.
    peak = table.index[:30]
    table.loc[peak, "pos"] = 50_000_000 + np.arange(30) * 60_000
    table.loc[peak, "p_perm"] = 1e-7 * (1 + np.arange(30))
    table.loc[peak, "p_assoc"] = 1e-8 * (1 + np.arange(30))
    d = ManhattanDisplay.from_table(table, n_labels=8).plot()
    assert len(d.labels_) == 16
    assert {t.get_text() for t in d.labels_[:8]} == {f"G1_{k}" for k in range(8)}
    for ax in d.axes_:
        assert_no_overlap(d.figure_, [t for t in d.labels_ if t.axes is ax])
        # Every label stays inside its panel.
        box = ax.get_window_extent()
        for t in d.labels_:
            if t.axes is ax:
                e = t.get_window_extent()
                assert box.x0 - 1 <= e.x0 and e.x1 <= box.x1 + 1 and e.y1 <= box.y1 + 1


def test_manhattan_labels_name_the_lead_snp_gene(rng):
    table = snp_table(rng)
    table.loc[17, ["p_perm", "gene"]] = [1e-9, "AC058822.1;LNX1"]
    table.loc[18, ["p_perm", "gene"]] = [1e-9, ""]  # tie in p, larger |stat| wins the second place
    table.loc[18, "stat"] = 99.0
    table.loc[17, "stat"] = 1.0
    d = ManhattanDisplay.from_table(table, n_labels=2)
    texts = d.panels[0].label_text
    assert texts[0] in ("AC058822.1/LNX1", table.loc[18, "snp"])
    if table.loc[17, "locus"] != table.loc[18, "locus"]:
        assert texts == [table.loc[18, "snp"], "AC058822.1/LNX1"]


def test_manhattan_highlight_marks_the_listed_snps_and_the_snps_of_listed_genes(rng):
    table = snp_table(rng)
    table.loc[[3, 20], "gene"] = ["APOE", "TOMM40;APOE"]  # a gene list holding a listed gene counts too
    table.loc[20, "p_perm"] = np.nan  # marked, but has no point in the p_perm panel
    listed = ["rs2_4", "apoe", "G9_1", "NOPE", "rs_missing"]
    with pytest.warns(UserWarning, match=r"highlight: 2 of 5 names match .* not marked: NOPE, rs_missing"):
        d = ManhattanDisplay.from_table(table, highlight=listed)
    expected = table["snp"].isin(["rs2_4"]) | table.index.isin([3, 20]) | (table["gene"] == "G9_1")
    assert d.highlighted == table.loc[expected, "snp"].tolist() and len(d.highlighted) == 6
    assert d.highlight_unknown == ["NOPE", "rs_missing"] and d.highlight_found == ["rs2_4", "apoe", "G9_1"]
    d.plot()
    for ax, panel, marked in zip(d.axes_, d.panels, d.highlights_):
        drawn = table[expected & table[panel.column].notna()]
        x = d.axis.x(drawn["chrom"].map(normalise_chromosome), drawn["pos"])
        points = np.c_[x, -np.log10(drawn[panel.column].to_numpy())]
        assert sorted(map(tuple, np.asarray(marked.get_offsets()).round(6))) == sorted(map(tuple, points.round(6)))
        assert tuple(marked.get_facecolor()[0]) == to_rgba(MARKED)
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend[-1] == f"highlighted ({len(drawn)} SNPs)"
    assert [int(p.marked.sum()) for p in d.panels] == [5, 6]


def test_manhattan_without_a_highlight_marks_nothing_and_draws_no_legend_entry(rng):
    d = ManhattanDisplay.from_table(snp_table(rng)).plot()
    assert d.highlight == () and d.highlighted == [] and d.highlights_ == [None, None]
    assert all(p.marked is None for p in d.panels)
    assert not any("highlighted" in t.get_text() for ax in d.axes_ for t in ax.get_legend().get_texts())


# --- QQ and regional -----------------------------------------------------------------------------------------


def test_qq_band_and_lambda(rng):
    n = 400
    table = pd.DataFrame({"p_assoc": rng.uniform(size=n), "p_perm": (np.arange(n) + 1) / (n + 1)})
    table.loc[0, "p_perm"] = np.nan
    d = QQDisplay.from_table(table, lambda_gc=1.234)
    assoc, perm = d.panels
    assert assoc["lambda_gc"] == 1.234 and "analysis" in assoc["lambda_source"]
    expected_lambda = np.median(stats.chi2.isf(np.sort(table["p_perm"].dropna()), 1)) / stats.chi2.ppf(0.5, 1)
    assert perm["lambda_gc"] == pytest.approx(expected_lambda)
    assert perm["n"] == n - 1 and perm["n_dropped"] == 1
    i = 10
    lo, hi = stats.beta.ppf([0.975, 0.025], i, assoc["n"] - i + 1)
    assert assoc["lower"][i - 1] == pytest.approx(-np.log10(lo))
    assert assoc["upper"][i - 1] == pytest.approx(-np.log10(hi))
    assert np.all(assoc["lower"] <= assoc["expected"]) and np.all(assoc["expected"] <= assoc["upper"])
    d.plot()
    assert len(d.axes_) == 2


def test_regional_shows_the_rank_one_locus_and_its_neighbourhood(rng):
    table = snp_table(rng, chroms=("4", "7"), per_chrom=(12, 10))
    table.loc[table["chrom"] == "4", "pos"] = 10_000_000 + np.arange(12) * 50_000
    loci = (
        table.groupby("locus")
        .agg(
            chrom=("chrom", "first"),
            start=("pos", "min"),
            end=("pos", "max"),
            lead_snp=("snp", "first"),
            genes=("gene", "first"),
        )
        .reset_index()
    )
    loci["rank"] = np.arange(len(loci)) + 1
    target = "L4_1"
    loci.loc[loci["locus"] == target, "rank"] = 0
    d = RegionalDisplay.from_tables(table, loci, flank=120_000)
    assert d.locus == target and d.chrom == "4"
    members = table[table["locus"] == target]
    assert int(d.snps["in_locus"].sum()) == len(members)
    assert d.window == (members["pos"].min() - 120_000, members["pos"].max() + 120_000)
    assert d.snps["pos"].between(*d.window).all()
    assert len(d.snps) == len(members) + 4  # 2 SNPs on each side within 120 kb at a 50 kb spacing
    assert d.snps["is_lead"].sum() == 1
    d.plot()
    assert len(d.axes_) == 3  # p_perm, p_assoc, gene track


# --- sMRI ------------------------------------------------------------------------------------------------------


def mni_map(shape=(45, 54, 45), rng=None):
    """A signed map on a 4 mm MNI grid with a positive and a negative blob; (image, mask)."""
    import nibabel as nib

    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = [-90, -126, -72]
    ijk = np.indices(shape).reshape(3, -1).T
    mm = ijk @ affine[:3, :3].T + affine[:3, 3]
    inside = ((mm / [70, 100, 80]) ** 2).sum(axis=1) < 1
    rng = rng or np.random.default_rng(0)
    data = np.zeros(len(mm), dtype=np.float32)
    data[inside] = rng.normal(0, 1e-7, inside.sum())
    data += 5e-6 * np.exp(-(((mm - [30, -20, 10]) / 12) ** 2).sum(axis=1))
    data -= 4e-6 * np.exp(-(((mm - [-40, 20, 30]) / 12) ** 2).sum(axis=1))
    data[~inside] = 0
    return (
        nib.Nifti1Image(data.reshape(shape), affine),
        nib.Nifti1Image(inside.reshape(shape).astype(np.uint8), affine),
    )


def test_attribution_map_is_signed_and_symmetric():
    img, mask = mni_map()
    d = AttributionMapDisplay.from_image(img, mask)
    assert d.peak_mm == pytest.approx((30.0, -22.0, 8.0), abs=4)
    assert 0 < d.threshold < d.vmax
    assert d.n_voxels == int(np.asarray(mask.dataobj).sum())
    assert len(d.z_cuts) == 7 and d.z_cuts == sorted(d.z_cuts)
    d.plot(kind="glass")
    norm = d.display_._cbar.norm  # the signed map needs a colour bar on both sides of zero
    assert norm.vmin == pytest.approx(-norm.vmax) and norm.vmin < 0
    # five evenly spaced ticks, not nilearn's extra +-threshold ticks whose labels collide near zero
    ticks = d.display_._cbar.get_ticks()
    np.testing.assert_allclose(ticks, np.linspace(norm.vmin, norm.vmax, 5), rtol=1e-6)
    d.plot(kind="slices")
    with pytest.raises(ValueError, match="kind"):
        d.plot(kind="surface")


def test_region_bars_keep_the_best_ranked():
    regions = pd.DataFrame(
        {
            "region": [f"R{k}" for k in range(9)],
            "atlas": "aal",
            "stat": np.linspace(-3, 3, 9),
            "p_perm": np.linspace(0.5, 0.01, 9),
            "p_fwer": [1] * 8 + [0.01],
            "q_fdr": [1] * 7 + [0.03, 0.01],
            "rank": np.arange(9, 0, -1),
        }
    )
    d = RegionBarDisplay.from_table(regions, top_k=4).plot()
    assert list(d.regions["region"]) == ["R8", "R7", "R6", "R5"]
    labels = [t.get_text() for t in d.ax_.get_yticklabels()]
    assert labels[:3] == ["R8 *†", "R7 †", "R6"]  # best on top
    assert [p.get_width() for p in d.ax_.patches[:4]] == pytest.approx([3, 2.25, 1.5, 0.75])


# --- connectome ------------------------------------------------------------------------------------------------


def fnc_tables(rng, domains=("DM", "SC", "VI", "Z"), sizes=(3, 2, 4, 1)):
    nodes = pd.DataFrame([{"node": f"{d}{k + 1}", "domain": d} for d, n in zip(domains, sizes) for k in range(n)])
    nodes["x"], nodes["y"], nodes["z"] = rng.uniform(-60, 60, (3, len(nodes)))
    nodes = nodes.sample(frac=1, random_state=2).reset_index(drop=True)
    pairs = list(itertools.combinations(nodes["node"], 2))
    conn = pd.DataFrame(pairs, columns=["node_i", "node_j"])
    dom = dict(zip(nodes["node"], nodes["domain"]))
    conn["domain_i"], conn["domain_j"] = conn["node_i"].map(dom), conn["node_j"].map(dom)
    conn["attribution"] = rng.normal(size=len(conn))
    conn["p_perm"] = rng.uniform(size=len(conn))
    conn["p_fwer"] = 1.0
    conn["rank"] = conn["p_perm"].rank(method="first").astype(int)
    return conn, nodes


def test_node_order_by_domain_then_natural_name(rng):
    conn, nodes = fnc_tables(rng, domains=("DM", "SC", "VI", "Z"), sizes=(3, 2, 11, 1))
    order = node_order(conn, nodes)
    assert list(order["domain"].unique()) == ["SC", "VI", "DM", "Z"]  # NeuroMark order, unknown last
    vi = list(order.loc[order["domain"] == "VI", "node"])
    assert vi == [f"VI{k}" for k in range(1, 12)]  # VI2 before VI10
    assert list(node_order(conn, None)["node"]) == list(order["node"])


def test_fnc_matrix_places_values_symmetrically(rng):
    conn, nodes = fnc_tables(rng)
    conn.loc[5, "p_fwer"] = 0.01
    d = FNCMatrixDisplay.from_tables(conn, nodes)
    names = list(d.nodes["node"])
    row = conn.iloc[5]
    i, j = names.index(row["node_i"]), names.index(row["node_j"])
    assert d.matrix[i, j] == d.matrix[j, i] == row["attribution"]
    assert d.significant[i, j] and d.significant[j, i] and d.significant.sum() == 2
    assert np.isnan(np.diag(d.matrix)).all()
    assert np.isfinite(d.matrix[~np.eye(len(names), dtype=bool)]).all()
    d.plot()
    assert [t.get_text() for t in d.ax_.get_xticklabels()] == ["SC", "VI", "DM", "Z"]


def test_connectome_and_connectogram_draw_the_top_edges(rng):
    conn, nodes = fnc_tables(rng)
    d = ConnectomeDisplay.from_tables(conn, nodes, top_k=6)
    assert np.count_nonzero(np.triu(d.adjacency)) == 6
    top = conn.nsmallest(6, "rank")
    names = list(d.nodes["node"])
    for _, e in top.iterrows():
        assert d.adjacency[names.index(e["node_i"]), names.index(e["node_j"])] == e["attribution"]
    np.testing.assert_array_equal(d.coords[names.index("SC1")], nodes.set_index("node").loc["SC1", ["x", "y", "z"]])
    d.plot()
    g = ConnectogramDisplay.from_tables(conn, nodes, top_k=6)
    assert list(g.edges["rank"]) == sorted(top["rank"])
    # Nodes of one domain are contiguous on the circle.
    assert list(g.nodes["domain"]) == sorted(g.nodes["domain"], key=list(dict.fromkeys(g.nodes["domain"])).index)
    g.plot()
    assert len(g.ax_.patches) == 6


# --- performance and contributions ------------------------------------------------------------------------------


def predictions_table(rng, n=37, folds=3):
    label = np.array([0, 1] * n)[:n]
    prob = np.clip(0.5 + (label - 0.5) * 0.4 + rng.normal(0, 0.25, n), 0, 1)
    return pd.DataFrame(
        {
            "subject_id": [f"s{k}" for k in range(n)],
            "fold": np.arange(n) % folds + 1,
            "label": label,
            "prob_positive": prob,
            "predicted": (prob >= 0.5).astype(int),
            "label_name": np.where(label == 1, "SZ", "HC"),
        }
    )


def test_roc_and_confusion_from_predictions(rng):
    from sklearn.metrics import confusion_matrix, roc_auc_score

    pred = predictions_table(rng)
    roc = RocCurvesDisplay.from_predictions(pred)
    aucs = [roc_auc_score(g["label"], g["prob_positive"]) for _, g in pred.groupby("fold")]
    assert [f["auc"] for f in roc.folds] == pytest.approx(aucs)
    assert roc.mean_auc == pytest.approx(np.mean(aucs))
    assert roc.mean_tpr[0] == 0 and roc.mean_tpr[-1] == 1 and np.all(np.diff(roc.mean_tpr) >= -1e-12)
    roc.plot()
    cm = ConfusionDisplay.from_predictions(pred)
    np.testing.assert_array_equal(cm.matrix, confusion_matrix(pred["label"], pred["predicted"]))
    assert cm.labels == ["HC", "SZ"]
    cm.plot()


def test_metrics_table_shows_the_table_values_not_recomputed():
    metrics = pd.DataFrame(
        {"fold": ["1", "2", "mean", "sd"], "accuracy": [0.5, 0.7, 0.123, 0.045], "roc_auc": [0.6, 0.8, 0.7, 0.1]}
    )
    d = MetricsTableDisplay.from_table(metrics)
    assert d.folds == ["1", "2"]
    assert d.rows[0] == ("Accuracy", ["0.500", "0.700"], "0.123 ± 0.045", None)
    d.plot()
    held = pd.concat([metrics, pd.DataFrame({"fold": ["explanation_set"], "accuracy": [0.66], "roc_auc": [0.7]})])
    d = MetricsTableDisplay.from_table(held)
    assert d.folds == ["1", "2"] and d.rows[0] == ("Accuracy", ["0.500", "0.700"], "0.123 ± 0.045", "0.660")
    d.plot()
    header = [d.ax_.tables[0][0, c].get_text().get_text() for c in range(5)]
    assert header == ["Metric", "Fold 1", "Fold 2", "Mean ± SD", "Explanation set"]


def test_training_history_reads_folds_and_skips_empty(tmp_path):
    for fold, epochs in (("1", 4), ("2", 6)):
        folder = tmp_path / "folds" / fold
        folder.mkdir(parents=True)
        pd.DataFrame(
            {
                "epoch": np.arange(1, epochs + 1),
                "train_loss": np.linspace(0.7, 0.3, epochs),
                "val_loss": np.linspace(0.7, 0.5, epochs),
                "val_auc": np.linspace(0.5, 0.8, epochs),
            }
        ).to_csv(folder / "history.csv", index=False)
        (folder / "fold.json").write_text(json.dumps({"best_epoch": 2}))
    (tmp_path / "folds" / "3").mkdir()
    (tmp_path / "folds" / "3" / "history.csv").write_text("epoch\n")
    d = TrainingHistoryDisplay.from_run(tmp_path)
    assert list(d.histories) == ["1", "2"] and d.best_epochs == {"1": 2, "2": 2}
    assert [name for name, _ in d.panels] == ["loss", "val_auc"]
    d.plot()
    assert d.axes_[-1].get_legend().get_title().get_text() == "● best epoch"
    assert TrainingHistoryDisplay.from_run(tmp_path / "nowhere").histories == {}


def test_training_history_without_a_validation_split_draws_no_best_epoch_dots(tmp_path):
    # folds that fit on their whole training share: train loss only, and no legend promising dots
    folder = tmp_path / "folds" / "1"
    folder.mkdir(parents=True)
    pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.7, 0.5, 0.4], "lr": [1e-3, 5e-4, 0.0]}).to_csv(
        folder / "history.csv", index=False
    )
    (folder / "fold.json").write_text(json.dumps({"best_epoch": 3}))
    d = TrainingHistoryDisplay.from_run(tmp_path).plot()
    assert [name for name, _ in d.panels] == ["loss"]
    assert not d.axes_[0].collections  # no scatter dots
    assert d.axes_[-1].get_legend().get_title().get_text() == ""


def test_modality_contributions_leave_out_an_empty_measure():
    table = pd.DataFrame(
        {
            "modality": ["snp", "fnc"],
            "rollout_share": [0.7, 0.3],
            "ig_share": [0.4, 0.6],
            "ablation_auc_drop": [np.nan, np.nan],
        }
    )
    d = ModalityContributionDisplay.from_table(table).plot()
    assert list(d.measures) == ["rollout_share", "ig_share"] and len(d.axes_) == 2
    table["ablation_auc_drop"] = [0.1, -0.02]
    assert len(ModalityContributionDisplay.from_table(table).measures) == 3


def deletion_table():
    rows = []
    for m in ("snp", "smri"):
        for f in (0.0, 0.01, 0.1, 0.2):
            rows.append(
                {
                    "modality": m,
                    "fraction": f,
                    "n_features": int(f * 100),
                    "auc_top": 0.8 - f,
                    "auc_random_mean": 0.8 - f / 10,
                    "auc_random_sd": 0.01,
                }
            )
    return pd.DataFrame(rows)


def test_deletion_curves_one_panel_per_modality():
    d = DeletionCurveDisplay.from_table(deletion_table().sample(frac=1, random_state=0)).plot()
    assert list(d.curves) and set(d.curves) == {"snp", "smri"} and len(d.axes_) == 2
    assert list(d.curves["snp"]["fraction"]) == [0.0, 0.01, 0.1, 0.2]


# --- saving ------------------------------------------------------------------------------------------------------


def test_save_figure_writes_png_first_and_closes(tmp_path, rng):
    table = snp_table(rng, per_chrom=(600, 500, 400, 300, 200, 100))
    d = ManhattanDisplay.from_table(table).plot()
    number = d.figure_.number
    paths = save_figure(d.figure_, tmp_path / "out", "manhattan", formats=("svg", "png", "pdf"))
    assert [p.suffix for p in paths] == [".png", ".svg", ".pdf"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert not plt.fignum_exists(number)
    # Dense scatter goes into the vector files as an image, not as thousands of markers (the remaining
    # <use> elements are text glyphs).
    svg = paths[1].read_text()
    assert "<image" in svg and svg.count("<use") < len(table) / 4
    from PIL import Image

    with Image.open(paths[0]) as im:
        assert im.info.get("dpi", (0, 0))[0] == pytest.approx(300, abs=1)
    with pytest.raises(ValueError, match="formats"):
        save_figure(plt.figure(), tmp_path, "x", formats=("jpg",))


# --- make_figures -----------------------------------------------------------------------------------------------


def write_report(folder, rng, *, modalities=("snp", "fnc", "smri"), deletion=True):
    """A synthetic explanation folder with the tables of the given modalities."""
    import nibabel as nib

    folder.mkdir(parents=True)
    settings = {"n_permutations": 199, "lambda_gc": 1.02, "permutation_scheme": "within fold"}
    (folder / "settings.json").write_text(json.dumps(settings))
    rows = [
        {
            "modality": m,
            "rollout_share": 1 / len(modalities),
            "ig_share": 1 / len(modalities),
            "ablation_auc_drop": np.nan,
        }
        for m in modalities
    ]
    pd.DataFrame(rows).to_csv(folder / "modalities.csv", index=False)
    if "snp" in modalities:
        snps = snp_table(rng)
        snps["rank"] = snps["p_perm"].rank(method="first").astype(int)
        snps.to_csv(folder / "snps.csv", index=False)
        loci = (
            snps.groupby("locus")
            .agg(
                chrom=("chrom", "first"),
                start=("pos", "min"),
                end=("pos", "max"),
                lead_snp=("snp", "first"),
                genes=("gene", "first"),
                p_perm=("p_perm", "min"),
            )
            .reset_index()
        )
        loci["rank"] = loci["p_perm"].rank(method="first").astype(int)
        loci.to_csv(folder / "loci.csv", index=False)
    if "fnc" in modalities:
        conn, nodes = fnc_tables(rng)
        conn.to_csv(folder / "connections.csv", index=False)
        nodes.to_csv(folder / "nodes.csv", index=False)
    if "smri" in modalities:
        img, mask = mni_map(rng=rng)
        nib.save(img, folder / "smri_attribution.nii.gz")
        nib.save(mask, folder / "mask.nii.gz")
        pd.DataFrame(
            {
                "region": ["A", "B", "C"],
                "atlas": "aal",
                "n_voxels": [10, 20, 30],
                "stat": [2.0, -1.0, 0.5],
                "p_perm": [0.01, 0.2, 0.5],
                "p_fwer": [0.04, 1, 1],
                "q_fdr": [0.03, 0.3, 0.5],
                "rank": [1, 2, 3],
            }
        ).to_csv(folder / "regions.csv", index=False)
    if deletion:
        deletion_table()[lambda t: t["modality"].isin(modalities)].to_csv(folder / "deletion.csv", index=False)


def write_run(folder, rng, *, history=True):
    folder.mkdir(parents=True)
    predictions_table(rng).to_csv(folder / "predictions.csv", index=False)
    pd.DataFrame(
        {
            "fold": ["1", "2", "3", "mean", "sd"],
            "accuracy": [0.6, 0.7, 0.65, 0.65, 0.05],
            "roc_auc": [0.7, 0.75, 0.72, 0.72, 0.03],
        }
    ).to_csv(folder / "metrics.csv", index=False)
    for fold in ("1", "2", "3"):
        (folder / "folds" / fold).mkdir(parents=True)
        text = "epoch,train_loss,val_loss,val_auc\n1,0.7,0.7,0.5\n2,0.6,0.65,0.6\n" if history else "epoch\n"
        (folder / "folds" / fold / "history.csv").write_text(text)


ALL_FIGURES = [
    "roc_curves",
    "reliability",
    "confusion_matrix",
    "training_history",
    "modality_contributions",
    "deletion_curves",
    "manhattan",
    "qq",
    "regional_top_locus",
    "fnc_matrix",
    "connectome_top_edges",
    "connectogram",
    "smri_glass_brain",
    "smri_slices",
    "top_regions",
]


def test_make_figures_builds_every_figure_from_the_tables(tmp_path, rng):
    from PIL import Image

    report, run = tmp_path / "run" / "explanations", tmp_path / "run"
    write_run(run, rng)
    write_report(report, rng)
    records = make_figures(report, run, formats=("png", "pdf"), top_k=5)
    assert [r.name for r in records] == ALL_FIGURES
    sections = [r.section for r in records]
    assert sections == sorted(sections, key=SECTIONS.index)
    assert sorted(p.name for p in (report / "figures").iterdir()) == sorted(
        f"{n}.{ext}" for n in ALL_FIGURES for ext in ("png", "pdf")
    )
    for r in records:
        assert [p.suffix for p in r.files] == [".png", ".pdf"] and r.png == r.files[0]
        with Image.open(r.png) as im:
            im.load()
            assert im.width > 300 and im.height > 150
        assert 0 < r.png.stat().st_size < 600_000
        assert r.data and all((report / d).is_file() for d in r.data), r.name
        assert r.caption and r.title
    by_name = {r.name: r for r in records}
    assert by_name["roc_curves"].data == ("../predictions.csv",)
    assert (
        "B = 199" in by_name["manhattan"].caption
        and f"{len(snp_table(np.random.default_rng(0)))} SNPs" in by_name["manhattan"].caption
    )
    assert "λ = 1.020" in by_name["qq"].caption
    assert "Top 5 connections" == by_name["connectome_top_edges"].title


def test_figures_of_ranked_features_draw_what_the_ranking_follows(tmp_path, rng):
    report = tmp_path / "rep"
    write_report(report, rng, modalities=("fnc", "smri"), deletion=False)
    old = {r.name: r.caption for r in make_figures(report, formats=("png",))}
    assert (
        "smallest permutation p" in old["top_regions"] and "coloured by mean attribution" in old["connectome_top_edges"]
    )
    # tables ranked by contrast: the top-k figures draw the contrast, and say so
    for name in ("connections", "regions"):
        table = pd.read_csv(report / f"{name}.csv")
        table["contrast"] = -np.arange(len(table), dtype=float)
        table.to_csv(report / f"{name}.csv", index=False)
    new = {r.name: r.caption for r in make_figures(report, formats=("png",))}
    assert "coloured by contrast (mean attribution of cases minus controls" in new["connectome_top_edges"]
    assert "largest contrast" in new["connectome_top_edges"] and "largest contrast" in new["connectogram"]
    assert "bar: contrast" in new["top_regions"] and "red: positive contrast" in new["connectogram"]


def test_make_figures_skips_absent_modalities_and_history(tmp_path, rng):
    report, run = tmp_path / "rep", tmp_path / "run"
    write_run(run, rng, history=False)
    write_report(report, rng, modalities=("snp",), deletion=False)
    names = [r.name for r in make_figures(report, run, formats=("png",))]
    assert names == [
        "roc_curves",
        "reliability",
        "confusion_matrix",
        "modality_contributions",
        "manhattan",
        "qq",
        "regional_top_locus",
    ]
    # Without a run folder (none given, none recorded) the performance figures are skipped too.
    names = [r.name for r in make_figures(report, formats=("png",))]
    assert names == ["modality_contributions", "manhattan", "qq", "regional_top_locus"]


def test_make_figures_warns_and_goes_on_when_a_table_is_unusable(tmp_path, rng):
    report = tmp_path / "rep"
    write_report(report, rng, modalities=("fnc", "smri"), deletion=False)
    pd.read_csv(report / "regions.csv").drop(columns="p_perm").to_csv(report / "regions.csv", index=False)
    with pytest.warns(UserWarning, match="top_regions"):
        names = [r.name for r in make_figures(report, formats=("png",))]
    assert "top_regions" not in names and "smri_glass_brain" in names and "fnc_matrix" in names
    assert plt.get_fignums() == []


def test_make_figures_highlights_from_a_file_and_refuses_an_empty_one(tmp_path, rng):
    from migtrans import ParameterError

    report = tmp_path / "rep"
    write_report(report, rng, modalities=("snp",), deletion=False)
    listing = tmp_path / "list.txt"
    listing.write_text("# my genes\nG1_0   # three SNPs\nrs2_4\n\nNOPE\n")
    with pytest.warns(UserWarning, match="not marked: NOPE$"):
        records = make_figures(report, formats=("png",), highlight=listing)
    caption = next(r.caption for r in records if r.name == "manhattan")
    assert "Orange diamonds: the 4 SNPs of the highlight list (3 names: G1_0, rs2_4)" in caption
    assert "; 1 of them matches nothing in the table (see Warnings)." in caption
    listing.write_text("# nothing but comments\n\n")
    with pytest.raises(ParameterError, match=r"^highlight: .*found none in '.*list\.txt'$"):
        make_figures(report, formats=("png",), highlight=listing)
    with pytest.raises(ParameterError, match=r"could not read '.*nowhere\.txt'"):
        make_figures(report, formats=("png",), highlight=tmp_path / "nowhere.txt")
    with pytest.raises(ParameterError, match="empty list"):
        make_figures(report, formats=("png",), highlight=[])
    assert plt.get_fignums() == []


def test_every_display_has_the_one_plot_shape():
    import inspect

    import reports.plotting as plotting

    displays = [getattr(plotting, n) for n in plotting.__all__ if n.endswith("Display") and n != "Display"]
    assert len(displays) == 16
    for cls in displays:
        assert issubclass(cls, plotting.Display), cls
        first = list(inspect.signature(cls.plot).parameters.values())[1]
        assert (first.name, first.default) == ("ax", None), cls


def test_plot_sets_figure_axes_and_ax_and_refuses_an_axes_for_several_panels():
    import matplotlib.pyplot as plt

    from migtrans import ParameterError

    table = pd.DataFrame({"modality": ["snp", "fnc"], "rollout_share": [0.6, 0.4], "ig_share": [0.5, 0.5]})
    d = ModalityContributionDisplay.from_table(table).plot()
    assert d.figure_ is d.axes_[0].figure and d.ax_ is d.axes_[0] and len(d.axes_) == 2
    fig, ax = plt.subplots()
    with pytest.raises(ParameterError, match="expected a matplotlib Figure"):
        ModalityContributionDisplay.from_table(table).plot(ax)
    predictions = pd.DataFrame(
        {"fold": [1] * 4 + [2] * 4, "label": [0, 1] * 4, "prob_positive": np.linspace(0.1, 0.9, 8)}
    )
    single = RocCurvesDisplay.from_predictions(predictions).plot(ax)
    assert single.ax_ is ax and single.axes_ == [ax] and single.figure_ is fig


def test_training_history_caption_follows_the_curves_drawn(tmp_path, rng):
    report, run = tmp_path / "run" / "explanations", tmp_path / "run"
    write_run(run, rng)
    write_report(report, rng)
    by_name = {r.name: r for r in make_figures(report, run, formats=("png",), top_k=5)}
    assert "dots mark the epoch" in by_name["training_history"].caption
    for fold in ("1", "2", "3"):  # folds fitted on their whole training share: no validation columns
        (run / "folds" / fold / "history.csv").write_text("epoch,train_loss,lr\n1,0.7,0.001\n2,0.6,0.0\n")
    caption = {r.name: r for r in make_figures(report, run, formats=("png",), top_k=5)}["training_history"].caption
    assert "no validation split" in caption and "dots" not in caption and "validation (solid)" not in caption


def test_ancestry_display_colours_sites_and_marks_labels(rng):
    from migtrans.exceptions import ParameterError
    from reports.plotting import AncestryDisplay

    n = 60
    table = pd.DataFrame(
        {
            "subject_id": [f"s{i}" for i in range(n)],
            "label_name": np.where(np.arange(n) % 2, "SZ", "HC"),
            "site": np.where(np.arange(n) < 30, "a", "b"),
            **{f"PC{k}": rng.standard_normal(n) for k in range(1, 5)},
        }
    )
    d = AncestryDisplay.from_table(table).plot()
    assert [ax.get_xlabel() for ax in d.axes_] == ["PC1", "PC3"]
    collections = d.axes_[0].collections
    assert len(collections) == 4  # site x label
    colours = {c.get_label(): tuple(c.get_facecolor()[0]) for c in collections}
    assert colours["a, HC"] == colours["a, SZ"] != colours["b, HC"]
    # one site: colours tell the labels apart
    single = AncestryDisplay.from_table(table.drop(columns=["site", "PC3", "PC4"])).plot()
    assert len(single.axes_) == 1
    colours = {c.get_label(): tuple(c.get_facecolor()[0]) for c in single.axes_[0].collections}
    assert colours["HC"] != colours["SZ"]
    with pytest.raises(ParameterError, match="PC1 and PC2"):
        AncestryDisplay.from_table(table[["label_name", "PC1"]])


def test_metrics_table_of_leave_one_site_out_names_the_sites():
    metrics = pd.DataFrame(
        {
            "fold": ["1", "2", "mean", "sd"],
            "site": ["siteA", "siteB", "", ""],
            "accuracy": [0.5, 0.7, 0.6, 0.14],
            "roc_auc": [0.6, 0.8, 0.7, 0.14],
        }
    )
    d = MetricsTableDisplay.from_table(metrics).plot()
    assert [row[0] for row in d.rows] == ["Accuracy", "ROC AUC"]  # the site column is no metric
    header = [d.ax_.tables[0][0, c].get_text().get_text() for c in range(4)]
    assert header == ["Metric", "Site siteA", "Site siteB", "Mean ± SD"]
