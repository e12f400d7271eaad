"""The self-contained HTML report: sections, inline images, interactive views, no remote links or loads, Methods
from the actual settings, escaping of hostile names, absent tables, export files, the highlight list and warnings
found in the folders."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from report_folder import ESCAPED, EVIL, N_SNPS, make_report_folder
from test_interactive import REMOTE, SCRIPTS, write_attribution_map

from migtrans import ParameterError
from reports import SECTIONS, FigureFile, build_methods, render_report
from reports.folder._inputs import load_inputs
from reports.page._report import _png_size, detect_warnings, format_p, section_id


class _Page(HTMLParser):
    """Sections, images, links and table rows of a rendered report."""

    def __init__(self):
        super().__init__()
        self.sections, self.imgs, self.hrefs, self.srcs, self.tables = [], [], [], [], {}
        self.frames, self.csp = [], None
        self._table, self._section = None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
            self._section = a.get("id")
        if tag == "iframe":
            self.frames.append({**a, "section": self._section})
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.csp = a["content"]
        if tag == "img":
            self.imgs.append(a)
        if "href" in a:
            self.hrefs.append(a["href"])
        if "src" in a:
            self.srcs.append(a["src"])
        if tag == "div" and a.get("class") == "table-block":
            self._table = a["id"]
            self.tables[self._table] = []
        if tag == "tr" and self._table:
            self.tables[self._table].append([])
        if tag == "td" and self._table:
            self.tables[self._table][-1].append(a)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _outer(html: str) -> str:
    """The page without the documents of its frames (an escaped srcdoc holds no raw double quote)."""
    return re.sub(r'srcdoc="[^"]*"', 'srcdoc=""', html)


def _script_sources(csp: str) -> list[str]:
    return next(d for d in csp.split(";") if d.strip().startswith("script-src")).split()[1:]


@pytest.fixture
def folder(tmp_path):
    return make_report_folder(tmp_path)


@pytest.fixture
def report(folder):
    report_dir, run_dir, figures = folder
    path = render_report(
        report_dir,
        run_dir,
        figures,
        command=["migtrans-explain", "run", "--out", EVIL],
        warnings=["caller warning first"],
    )
    return path, path.read_text(encoding="utf-8")


def test_every_section_in_order_with_its_id(report):
    path, html = report
    assert path.name == "report.html"
    page = _parse(html)
    assert page.sections == [section_id(s) for s in SECTIONS]
    assert page.sections[2] == "modality-contributions"


def test_images_are_inline_png_data_uris_of_the_figure_files(report, folder):
    _, html = report
    figures = folder[2]
    imgs = _parse(html).imgs
    assert len(imgs) == len(figures)
    for img, fig in zip(imgs, figures):
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix)
        assert base64.b64decode(img["src"][len(prefix) :]) == fig.png.read_bytes()
        # a 2 x 1 inch figure saved at 50 dpi is shown at 1.5 x its print size (96 CSS px per inch)
        assert (img["width"], img["height"]) == ("288", "144")
    assert "%PDF" not in html and "application/pdf" not in html


def test_no_network_links_and_local_links_resolve(report, folder):
    path, html = report
    page = _parse(html)
    outer = _outer(html)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", outer, flags=re.I)
    assert "@import" not in outer and "url(" not in outer
    # the views' documents load nothing either: no remote script, stylesheet or CSS url()
    assert page.frames and all(REMOTE.search(f["srcdoc"]) is None for f in page.frames)
    assert REMOTE.search(html) is None
    files = [h for h in page.hrefs if not h.startswith("#")]
    assert "../metrics.csv" in files and "snps.csv" in files and "figures/manhattan.pdf" in files
    assert "figures/manhattan.png" in files
    assert '<a href="../folds/2/history.csv">folds/2/history.csv</a>' in html
    for href in files:
        assert not href.startswith(("/", "file:", "http")), href
        assert (path.parent / href).exists(), href
    assert "default-src 'none'" in html


def test_methods_names_the_actual_settings(report, folder):
    _, html = report
    methods = build_methods(folder[0], folder[1])
    text = methods.text
    for expected in (
        "B = 123 permutations",
        "17 points of Gauss-Legendre quadrature",
        "3-fold cross-validation",
        "diagnosis x site (site)",
        "d_model = 48",
        "3 attention heads",
        "at most 41 epochs",
        "patience 6 epochs",
        "peak learning rate 0.0007 after 3 warm-up epochs",
        "weight decay 0.02",
        "2 self-attention layers",
        "within fold x site",
        "max-T",
        "Benjamini-Hochberg",
        "\u03bbGC = 1.230",
        "GRCh38",
        "AAL atlas",
        "adjusted for age and sex",
        "One seed (11)",
        "PyTorch 9.9.9 (training) and",
        "one linear read of each modality",
        "group-lasso proximal step shrank each feature's column of read weights by 0.4 x",
        "Caveat: the permutations hold the attributions fixed",
        "a region's the sum over its voxels",
        "were compared by their contrast: the mean attribution of cases minus that of controls within "
        "each permutation stratum",
        "divided by its exact standard deviation under the permutations (a z statistic)",
        "Features were ranked by their contrast, largest first",
    ):
        assert expected in text, expected
    for ref in ("Sundararajan", "Kokhlikyan", "Abnar", "Chefer", "Westfall", "Benjamini", "Abraham", "Shaik"):
        assert ref in text, ref
    # the same numbers reach the page
    assert "B = 123 permutations" in html and "d_model = 48" in html


def test_methods_describe_the_linear_prior_only_when_the_model_had_one(folder):
    import dataclasses

    report_dir, run_dir, _ = folder
    inputs = load_inputs(report_dir, run_dir)
    sentence = "An elastic-net logistic regression, fitted on each fold's training subjects"
    assert sentence not in build_methods(report_dir, run_dir, inputs=inputs).text
    config = {**inputs.config, "model": {**inputs.model, "linear_prior": True}}
    with_prior = dataclasses.replace(inputs, config=config)
    text = build_methods(report_dir, run_dir, inputs=with_prior).text
    assert sentence in text and "out-of-fold log-odds" in text
    assert "weighted by a factor in [0, 1]" not in text and "to weigh the network" not in text
    train = {**inputs.train, "select": "last", "network_weight": "validation"}
    weighed = dataclasses.replace(with_prior, config={**config, "train": train})
    text = build_methods(report_dir, run_dir, inputs=weighed).text
    assert "weighted by a factor in [0, 1]" in text and "held out (stratified) to weigh the network" in text


def test_methods_name_only_the_aggregations_of_the_tables_present(folder):
    report_dir, run_dir, _ = folder
    text = build_methods(report_dir, run_dir).text
    assert (
        "An FNC edge's attribution was the sum of the (i, j) and (j, i) entries; a node's the sum over its "
        "edges; a locus's the sum over its SNPs; a region's the sum over its voxels"
    ) in text
    for name in ("connections", "nodes", "loci", "snps"):
        (report_dir / f"{name}.csv").unlink()
    text = build_methods(report_dir, run_dir).text
    assert "A region's the sum over its voxels (integrated gradients are additive)." in text
    assert "FNC edge's attribution" not in text and "locus's" not in text


def test_methods_of_a_report_made_before_the_contrast_name_its_pooled_t(folder):
    report_dir, run_dir, _ = folder
    settings = json.loads((report_dir / "settings.json").read_text())
    settings["statistic"] = "two-sample t (pooled variance), cases - controls"
    del settings["ranking"]
    (report_dir / "settings.json").write_text(json.dumps(settings))
    text = build_methods(report_dir, run_dir).text
    assert "a two-sample t statistic with pooled variance (cases minus controls) contrasted the out-of-fold" in text
    assert "z statistic" not in text and "ranked by their contrast" not in text


def test_methods_and_summary_describe_the_explanation_set_and_drop_the_caveat(folder):
    report_dir, run_dir, figures = folder
    config = (run_dir / "config.toml").read_text()
    (run_dir / "config.toml").write_text(config.replace("seed = 11\n", "seed = 11\nexplain_fraction = 0.25\n"))
    settings = json.loads((report_dir / "settings.json").read_text())
    settings.update(out_of_fold=False, n_explained=4, permutation_scheme="labels shuffled within site")
    (report_dir / "settings.json").write_text(json.dumps(settings))
    pd.DataFrame(
        {
            "subject_id": ["h1", "h2", "h3", "h4"],
            "fold": "explanation_set",
            "label": [1, 0, 1, 0],
            "prob_positive": 0.5,
            "predicted": 1,
        }
    ).to_csv(run_dir / "explanation_predictions.csv", index=False)
    text = build_methods(report_dir, run_dir).text
    for expected in (
        "The cohort comprised 16 subjects",  # 12 cross-validated + 4 held out
        "A stratified 25% of subjects (diagnosis x site), the explanation set, was held out of all training",
        "scored by the mean log-odds of the 3 fold models",
        "The 4 subjects of the explanation set, whose labels no model had seen, were explained by the "
        "ensemble of the 3 fold models",
        "attributions of the explanation set's two groups",
        "(labels shuffled within site, so that site effects",
        "gives an exact null distribution",
    ):
        assert expected in text, expected
    assert "Caveat" not in text and "all predictions and explanations are out of fold" not in text
    metrics = pd.read_csv(run_dir / "metrics.csv", dtype={"fold": str})
    held = {c: 0.5 for c in metrics.columns if c != "fold"} | {
        "fold": "explanation_set",
        "accuracy": 0.7125,
        "roc_auc": 0.8125,
    }
    pd.concat([metrics, pd.DataFrame([held])]).to_csv(run_dir / "metrics.csv", index=False)
    html = render_report(report_dir, run_dir, figures).read_text(encoding="utf-8")
    assert "16 subjects" in html and "4 held out of all training as the explanation set" in html
    assert "explanation set, fold models&#39; ensemble: accuracy 0.713, ROC AUC 0.812" in html


def test_hostile_names_are_escaped_never_raw(report):
    _, html = report
    assert EVIL not in html
    assert html.count("<script") == 1  # our own sorting script only
    # SNP id (table), node name (two tables), subject id (IG warning and dropped list), figure title, command
    assert html.count(ESCAPED) >= 6
    assert f"{ESCAPED} (0.2)" in html
    assert f"{ESCAPED}x (no fnc data)" in html


def test_top_k_rows_and_number_formats(folder):
    report_dir, run_dir, figures = folder
    html = render_report(report_dir, run_dir, figures, top_k=5).read_text(encoding="utf-8")
    tables = _parse(html).tables
    assert len([r for r in tables["table-snps"] if r]) == 5
    assert f"Top 5 of {N_SNPS} SNPs by rank (largest contrast, the mean log-odds gap between cases" in html
    # a table written before the contrast column existed was ranked by p_perm, and the note says so
    snps = pd.read_csv(report_dir / "snps.csv")
    snps.drop(columns="contrast").to_csv(report_dir / "snps.csv", index=False)
    old = render_report(report_dir, run_dir, figures, top_k=5).read_text(encoding="utf-8")
    assert f"Top 5 of {N_SNPS} SNPs by rank (smallest permutation p)" in old
    snps.to_csv(report_dir / "snps.csv", index=False)
    # numeric cells carry their raw value for sorting; a missing p-value has none and reads NA
    html_all = render_report(report_dir, run_dir, figures, top_k=100).read_text(encoding="utf-8")
    snp_rows = [r for r in _parse(html_all).tables["table-snps"] if r]
    assert len(snp_rows) == N_SNPS
    assert sum("data-v" not in cell for row in snp_rows for cell in row[-7:]) >= 4  # stat, p_perm, p_fwer, q_fdr
    assert ">NA</td>" in html_all


def test_format_p():
    assert format_p(0.04213) == "0.0421"
    assert format_p(1.0) == "1"
    assert format_p(0.000999000999) == "9.99e-4"
    assert format_p(3.2e-12) == "3.20e-12"
    assert format_p(float("nan")) == "NA"
    assert format_p(None) == "NA"


def test_absent_tables_are_said_not_fatal(folder):
    report_dir, run_dir, _ = folder
    for name in ("snps", "loci", "regions", "connections", "nodes", "modalities"):
        (report_dir / f"{name}.csv").unlink()
    html = render_report(report_dir, run_dir, []).read_text(encoding="utf-8")
    assert _parse(html).sections == [section_id(s) for s in SECTIONS]
    for text in (
        "snps.csv and loci.csv are absent",
        "connections.csv and nodes.csv are absent",
        "regions.csv is absent",
        "modalities.csv is absent",
    ):
        assert text in html


def test_bare_folder_without_run_still_renders(tmp_path):
    report_dir = tmp_path / "empty"
    report_dir.mkdir()
    html = render_report(report_dir).read_text(encoding="utf-8")
    assert _parse(html).sections == [section_id(s) for s in SECTIONS]
    assert "settings.json is absent" in html and "run folder was not found" in html


def test_warnings_found_in_the_folders(folder):
    report_dir, run_dir, _ = folder
    warnings = detect_warnings(load_inputs(report_dir, run_dir))
    text = "\n".join(warnings)
    assert "near chance: mean out-of-fold ROC AUC 0.550" in text
    assert "did not converge for 1 of 12 subjects" in text and EVIL in text
    assert f"snps.csv: 1 of {N_SNPS} features has no p-value" in text
    assert "dropped 1 subject(s)" in text
    assert "stand-in node: test fixture" in text
    assert "\u03bbGC = 1.230" in text
    assert "Only 123 permutations" in text
    assert not any("gene annotation source" in w for w in warnings)  # recorded in settings here


def test_caller_warnings_come_first_and_bad_figures_are_reported(folder, tmp_path):
    report_dir, run_dir, figures = folder
    ghost = FigureFile("ghost", "Genomics", "Ghost", "", (tmp_path / "nowhere.png",))
    odd = FigureFile("odd", "Appendix", "Odd", "", figures[0].files)
    html = render_report(report_dir, run_dir, [*figures, ghost, odd], warnings=["first!"]).read_text("utf-8")
    warnings = html[html.index('id="warnings"') :]
    assert warnings.index("first!") < warnings.index("near chance")
    assert "figure &#39;ghost&#39;: no readable PNG" in warnings
    assert "unknown section &#39;Appendix&#39;" in warnings
    assert len(_parse(html).imgs) == len(figures) + 1


def test_written_atomically_and_readable(folder):
    report_dir, run_dir, figures = folder
    path = render_report(report_dir, run_dir, figures)
    assert sorted(p.name for p in report_dir.iterdir() if p.name.startswith(".report-")) == []
    assert path.stat().st_mode & 0o044  # shared like the CSVs beside it, not private like a mkstemp file


def test_report_stays_small(folder):
    report_dir, run_dir, figures = folder
    static = render_report(report_dir, run_dir, figures, interactive=False).stat().st_size
    assert static < 200_000
    # both views (their JavaScript inline) add under 4.5 MB: the demo's ~4 MB of figures keeps it under 15 MB
    write_attribution_map(report_dir)
    full = render_report(report_dir, run_dir, figures)
    assert len(_parse(full.read_text(encoding="utf-8")).frames) == 2
    assert 3_000_000 < full.stat().st_size - static < 4_500_000


def test_views_present_exactly_when_their_inputs_are(folder):
    report_dir, run_dir, figures = folder
    page = _parse(render_report(report_dir, run_dir, figures).read_text(encoding="utf-8"))
    assert [f["section"] for f in page.frames] == ["connectome"]  # connections and nodes with MNI coordinates
    write_attribution_map(report_dir)
    html = render_report(report_dir, run_dir, figures).read_text(encoding="utf-8")
    page = _parse(html)
    assert [f["section"] for f in page.frames] == ["connectome", "morphology"]
    assert all(f["sandbox"] == "allow-scripts" for f in page.frames)
    assert "brainsprite(" in page.frames[1]["srcdoc"] and "connectomeInfo" in page.frames[0]["srcdoc"]
    # below the section's static figures, above its tables
    connectome = html[html.index('id="connectome"') : html.index('id="morphology"')]
    assert connectome.index("<img") < connectome.index("<iframe") < connectome.index('id="table-connections"')
    # the policy allows our script and exactly the views' scripts, by hash; eval only for plotly's 3-D view
    sources = _script_sources(page.csp)
    expected = {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for f in page.frames
        for s in SCRIPTS.findall(f["srcdoc"])
    }
    assert set(sources) - {"'unsafe-eval'"} - expected == {sources[0]} and expected <= set(sources)
    assert "'unsafe-eval'" in sources and "'unsafe-inline'" not in sources
    assert "default-src 'none'" in page.csp
    # no view without its inputs, or when asked for none
    for name in ("nodes.csv", "smri_attribution.nii.gz"):
        (report_dir / name).unlink()
    page = _parse(render_report(report_dir, run_dir, figures).read_text(encoding="utf-8"))
    assert page.frames == [] and _script_sources(page.csp) == sources[:1]
    write_attribution_map(report_dir)
    assert _parse(render_report(report_dir, run_dir, figures, interactive=False).read_text("utf-8")).frames == []


def test_an_unreadable_map_is_a_warning_not_a_failure(folder):
    report_dir, run_dir, figures = folder
    (report_dir / "smri_attribution.nii.gz").write_bytes(b"\x1f\x8b not gzip")
    html = render_report(report_dir, run_dir, figures).read_text(encoding="utf-8")
    warnings = html[html.index('id="warnings"') :]
    assert "interactive sMRI slice viewer left out" in warnings
    assert [f["section"] for f in _parse(html).frames] == ["connectome"]


def test_export_files_are_linked_where_they_exist(folder):
    report_dir, run_dir, figures = folder
    html = render_report(report_dir, run_dir, figures, interactive=False).read_text(encoding="utf-8")
    exports = ("association.tsv.gz", "association.tsv.gz-meta.yaml", "association_fuma.tsv.gz")
    exports += ("nodes.node", "connections.edge")
    assert not any(f'href="{name}"' in html for name in exports)
    for name in exports:
        (report_dir / name).write_bytes(b"x")
    html = render_report(report_dir, run_dir, figures, interactive=False).read_text(encoding="utf-8")
    genomics = html[html.index('id="genomics"') : html.index('id="connectome"')]
    connectome = html[html.index('id="connectome"') : html.index('id="morphology"')]
    for name in exports[:3]:
        assert f'href="{name}"' in genomics and f'href="{name}"' not in connectome
    for name in exports[3:]:
        assert f'href="{name}"' in connectome and f'href="{name}"' not in genomics
    assert "GWAS-SSF summary statistics" in genomics and "BrainNet Viewer edge file" in connectome
    (report_dir / "association_fuma.tsv.gz").unlink()  # only those present
    html = render_report(report_dir, run_dir, figures, interactive=False).read_text(encoding="utf-8")
    assert 'href="association.tsv.gz"' in html and "association_fuma.tsv.gz" not in html


def test_highlighted_snps_are_listed_and_unknown_names_warned(folder, tmp_path):
    report_dir, run_dir, figures = folder
    snps = pd.read_csv(report_dir / "snps.csv")
    snps.loc[[4, 7, 8], "gene"] = ["APOE", "TOMM40;apoe", "BDNF"]
    snps.to_csv(report_dir / "snps.csv", index=False)
    listing = tmp_path / "highlight.txt"
    listing.write_text("# candidates\nApoE\nrs11  # a SNP\n\nNOT_THERE\n")
    html = render_report(report_dir, run_dir, figures, highlight=listing, interactive=False).read_text("utf-8")
    rows = [r for r in _parse(html).tables["table-highlighted"] if r]
    table = html[html.index('id="table-highlighted"') :]
    table = table[: table.index("</table>")]
    # the SNPs of APOE (any case, also in a gene list) and rs11, by rank; not BDNF's
    assert len(rows) == 3 and re.findall(r"<td>(rs\d+)</td>", table) == ["rs4", "rs7", "rs11"]
    assert "3 of 31 SNPs marked by the highlight list (3 names; found: ApoE, rs11)" in html
    warnings = html[html.index('id="warnings"') :]
    assert "highlight: 1 of 3 names match no SNP id or gene of snps.csv and are not marked: NOT_THERE" in warnings
    # the same line from make_figures (passed in as a caller warning) is shown once
    again = render_report(
        report_dir,
        run_dir,
        figures,
        highlight=["APOE", "NOT_THERE", "rs11"],
        warnings=["highlight: 1 of 3 names match no SNP id or gene of snps.csv and are not marked: NOT_THERE"],
        interactive=False,
    ).read_text("utf-8")
    assert again.count("are not marked: NOT_THERE") == 1
    nothing = render_report(report_dir, run_dir, figures, highlight=["NOPE"], interactive=False).read_text()
    assert "table-highlighted" not in nothing and "none of its 1 names is a SNP id or gene of snps.csv" in nothing
    assert "table-highlighted" not in render_report(report_dir, run_dir, figures, interactive=False).read_text()


@pytest.mark.parametrize("content", ["", "# only a comment\n\n   \n"])
def test_an_empty_highlight_file_is_one_line_naming_it(folder, tmp_path, content):
    listing = tmp_path / "genes.txt"
    listing.write_text(content)
    with pytest.raises(ParameterError, match=r"^highlight: .*found none in '.*genes\.txt'$"):
        render_report(folder[0], folder[1], highlight=listing)
    with pytest.raises(ParameterError, match=r"^highlight: .*could not read '.*missing\.txt' \(No such file"):
        render_report(folder[0], folder[1], highlight=tmp_path / "missing.txt")


def test_invalid_arguments(tmp_path, folder):
    with pytest.raises(ParameterError, match="report_dir"):
        render_report(tmp_path / "missing")
    with pytest.raises(ValueError, match="top_k"):
        render_report(folder[0], folder[1], top_k=0)


def test_png_size_reads_dpi(tmp_path):
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots(figsize=(3, 2))
    fig.savefig(tmp_path / "a.png", dpi=200)
    plt.close(fig)
    assert _png_size((tmp_path / "a.png").read_bytes()) == (432, 288)
    assert _png_size(b"not a png") is None


def test_relative_figure_paths_resolve_from_the_working_folder(folder, monkeypatch):
    report_dir, run_dir, figures = folder
    monkeypatch.chdir(report_dir.parent.parent)
    rel = [
        FigureFile(f.name, f.section, f.title, f.caption, tuple(Path(os.path.relpath(p)) for p in f.files), f.data)
        for f in figures
    ]
    html = render_report(Path(os.path.relpath(report_dir)), run_dir, rel).read_text(encoding="utf-8")
    assert len(_parse(html).imgs) == len(figures) and 'href="figures/connectome.pdf"' in html


NULL_SETTINGS = {
    "retraining": dict(n_permutations=99, n_null_runs=99, p_floor=0.01, n_null_runs_other_settings=4),
    "per_fold": dict(n_permutations=999, n_null_runs=3, p_floor=0.003, combination="Bonferroni across folds"),
    "explanation_set": dict(n_permutations=500, n_null_runs=0, p_floor=1 / 501, out_of_fold=False),
}
NULL_TEXT = {
    "retraining": (
        "p-values test the global null of a retraining permutation scheme (Altmann et al., 2010)",
        "labels permuted within fold x site, each fold keeping its case count, B_r = 99 times",
        "4 further null runs, made with other explanation settings, were not used",
        "retraining null, 99 null runs",
    ),
    "per_fold": (
        "p-values test per-fold fixed-model exchangeability",
        "within site B = 999 times with that fold's model fixed",
        "combined by Bonferroni, p = min(1, K min_k p_k), valid whatever the dependence between folds",
        "The K = 3 fold p-values",
        "3 retraining null runs were found and not used (fewer than the 19 needed for a p-value of 0.05)",
        "per-fold fixed-model tests (999 permutations within site per fold, Bonferroni across 3 folds)",
    ),
    "explanation_set": (
        "p-values test fixed-model exchangeability on the explanation set",
        "within site B = 500 times with the fold models fixed",
        "explanation set&#39;s labels permuted within site (500 permutations), models fixed",
    ),
}


@pytest.mark.parametrize("null", list(NULL_SETTINGS))
def test_methods_and_summary_name_the_null_each_p_value_tests(folder, null):
    report_dir, run_dir, figures = folder
    settings = json.loads((report_dir / "settings.json").read_text())
    settings.update(statistic_id="welch_contrast", ranking_id="contrast", null=null, **NULL_SETTINGS[null])
    (report_dir / "settings.json").write_text(json.dumps(settings))
    text = build_methods(report_dir, run_dir).text
    html = render_report(report_dir, run_dir, figures).read_text(encoding="utf-8")
    assert "over its unpooled standard error (a stratified Welch statistic (Welch, 1947))" in text
    for expected in NULL_TEXT[null]:
        assert expected in (html if expected in NULL_TEXT[null][-1:] else text), expected
    # no sentence of another null, nor the old caveat, nor the z statistic
    assert "Caveat: the permutations hold the attributions fixed" not in text and "z statistic" not in text
    # the fixed-model caveat belongs to the fixed-model tests only
    assert ("not whether the model relies on the feature" in text) == (null != "retraining")
    assert ("not a test of reliance: features the model barely uses" in html) == (null != "retraining")
    for other in set(NULL_TEXT) - {null}:
        assert NULL_TEXT[other][0] not in text


def _methods_with(folder, settings=None, train=None):
    """Methods of the fixture report after changing its settings.json and its run's [train] table."""
    report_dir, run_dir, _ = folder
    path = report_dir / "settings.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **(settings or {})}))
    if train:
        config = (run_dir / "config.toml").read_text()
        extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in train.items())
        (run_dir / "config.toml").write_text(config.replace("[model]", extra + "\n[model]"))
    return build_methods(report_dir, run_dir).text


@pytest.mark.parametrize(
    "covariates, expected, absent",
    [
        ([], "on dosage without covariates (p_assoc)", "site as a categorical covariate"),
        (["age", "sex"], "on dosage adjusted for age and sex (p_assoc)", "site as a categorical covariate"),
        (
            ["age", "sex", "site", "PC1", "PC2", "PC3"],
            "adjusted for age, sex, site and 3 genetic principal components (site as a categorical covariate)",
            "without covariates",
        ),
        (["site"], "adjusted for site (site as a categorical covariate)", "residualised"),
    ],
)
def test_methods_say_which_covariates_the_association_used(folder, covariates, expected, absent):
    text = _methods_with(folder, {"association_covariates": covariates})
    assert expected in text and absent not in text
    if len(covariates) > 1 and "site" in covariates or covariates == ["age", "sex"]:
        assert "residualised on the other covariates" in text


@pytest.mark.parametrize(
    "train, settings, expected",
    [
        ({"adjust": "none"}, {}, "No covariate was regressed out of the model inputs."),
        (
            {"adjust": "regress"},
            {"n_pcs": 4},
            "least-squares regression removed age, sex and site out of every FNC edge and gray-matter voxel and "
            "the 4 genetic principal components out of every dosage, with coefficients fitted on the fold's "
            "training subjects only",
        ),
        ({"fold_by": "site", "adjust": "regress"}, {}, "leave-one-site-out cross-validation (3 sites"),
    ],
)
def test_methods_say_how_the_folds_adjusted_and_split(folder, train, settings, expected):
    assert expected in _methods_with(folder, settings, train)


def test_methods_report_genotype_qc_and_pcs(folder):
    settings = {
        "qc_thresholds": {
            "snp_missing": 0.1,
            "subject_missing": 0.1,
            "maf": 0.01,
            "mac": None,
            "hwe": 1e-6,
            "missing_diff": None,
            "het_sd": None,
            "kinship": None,
            "relatives": "drop",
        },
        "qc_summary": {
            "subject_missing": 2,
            "snp_missing": 5,
            "hwe": 1,
            "maf": 23,
            "snps_kept": 4971,
            "subjects_kept": 598,
        },
        "qc_notes": ["heterozygosity and relatedness not checked: only 444 LD-pruned common SNPs"],
        "n_pcs": 10,
        "n_pruned_snps": 444,
        "lambda_gc": 1.02,
        "lambda_gc_interval": [0.97, 1.08],
        "lambda_gc_snps": 440,
    }
    text = _methods_with(folder, settings)
    for expected in (
        "subjects with more than 0.1 missing calls (2)",
        "SNPs with a Hardy-Weinberg exact p < 1e-06 in controls (1)",
        "SNPs with minor allele frequency < 0.01 (23)",
        "4971 SNPs and 598 subjects remained",
        "Heterozygosity and relatedness not checked: only 444 LD-pruned common SNPs.",
        "10 genetic principal components of 444 LD-pruned common SNPs",
        "\u03bbGC = 1.020 (95% bootstrap interval 0.970\u20131.080, over 440 LD-pruned common SNPs)",
    ):
        assert expected in text, expected
    assert "differed between cases and controls" not in text  # a filter switched off is not claimed


@pytest.mark.parametrize(
    "interval, warned", [([0.98, 1.07], False), ([1.06, 1.2], True), ([0.85, 0.94], True), (None, False)]
)
def test_inflation_warning_uses_the_bootstrap_interval(interval, warned):
    from reports.page._report import _inflation_warning

    settings = {"lambda_gc": 1.03 if interval is None else sum(interval) / 2, "lambda_gc_interval": interval}
    assert bool(_inflation_warning(settings)) is warned


def test_genomics_section_says_what_the_qc_removed_and_lambda_with_its_interval(folder):
    report_dir, run_dir, figures = folder
    path = report_dir / "settings.json"
    settings = json.loads(path.read_text())
    settings.update(
        qc_thresholds={"snp_missing": 0.1, "maf": 0.01, "hwe": 1e-6, "het_sd": None, "kinship": None},
        qc_summary={"maf": 49, "subject_missing": 1, "snps_kept": 4951, "subjects_kept": 599, "related_pairs": 0},
        qc_notes=["heterozygosity and relatedness not checked: only 433 LD-pruned common SNPs"],
        lambda_gc=1.094,
        lambda_gc_interval=[0.95, 1.2],
        lambda_gc_snps=433,
    )
    path.write_text(json.dumps(settings))
    pd.DataFrame({"level": ["snp"], "id": ["rs1"], "filter": ["maf"], "value": [0.004], "threshold": [0.01]}).to_csv(
        report_dir / "qc.csv", index=False
    )
    html = render_report(report_dir, run_dir, figures=figures).read_text()
    assert "Genotype QC removed 1 subject by subject call rate, 49 SNPs by minor allele frequency; 4951 SNPs" in html
    assert "Heterozygosity and relatedness not checked: only 433 LD-pruned common SNPs." in html
    assert "\u03bbGC = 1.094 (95% bootstrap interval 0.950\u20131.200, over 433 LD-pruned common SNPs)" in html
    assert 'href="qc.csv"' in html


def test_methods_name_tiv_and_the_template_space(folder):
    report_dir, run_dir, _ = folder
    cohort = run_dir.parent / "cohort" / "cohort.toml"
    cohort.write_text(
        cohort.read_text()
        + '\n[smri]\ntemplate = "smri/{subject_id}.nii"\ntiv_xml = "report/cat_{subject_id}.xml"\n'
        + 'space = "MNI152NLin2009cAsym"\n'
    )
    text = _methods_with(folder, {}, {"adjust": "regress"})
    assert "total intracranial volume from CAT12's reports out of every gray-matter voxel" in text
    assert "Gray-matter maps were in MNI152NLin2009cAsym space" in text


def test_qq_caption_says_lambda_is_over_the_pruned_snps(folder):
    from reports.page._figures import _qq

    report_dir, run_dir, _ = folder
    path = report_dir / "settings.json"
    settings = json.loads(path.read_text())
    settings.update(lambda_gc=1.094, lambda_gc_interval=[0.875, 1.371], lambda_gc_snps=433)
    path.write_text(json.dumps(settings))
    from reports.page._figures import _Context

    _, display, caption, _ = _qq(_Context(report_dir, run_dir), {})
    assert (
        "λ = 1.094 (from the analysis; 95% bootstrap interval 0.875–1.371, over 433 LD-pruned common SNPs)" in caption
    )
