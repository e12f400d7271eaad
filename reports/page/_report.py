"""The self-contained HTML report: one file with every figure inline (PNG as data: URIs), the interactive views
(nilearn's, in sandboxed frames), sortable top-k tables, the Methods text, provenance and warnings, linking the CSV,
vector and export files that sit beside it."""

from __future__ import annotations

import base64
import hashlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import jinja2
import markupsafe
import pandas as pd

from migtrans.genetics import SUBJECT_FILTERS
from migtrans.training import RunFolder
from migtrans.utils import atomic_write_text
from migtrans.validation import check_number

from ..folder import ReportFolder, ReportInputs, load_inputs, rank_rule
from ..plotting._genomics import highlight_mask, highlight_warning
from ._figure import SECTIONS, FigureFile
from ._figures import read_highlight
from ._interactive import InteractiveView, make_views
from ._methods import Methods, atlas_name, build_methods, gene_source, lambda_detail

__all__ = ["render_report", "detect_warnings", "format_p", "section_id", "REPORT_FILE"]

REPORT_FILE = ReportFolder.REPORT
P_COLUMNS = ("p_perm", "p_fwer", "q_fdr", "p_assoc")
# Completeness error above which integrated gradients did not integrate the model well enough.
IG_DELTA_LIMIT = 0.05
# Mean out-of-fold AUC below which the model is treated as near chance.
CHANCE_AUC = 0.6

# Result tables: file stem -> (section, title, shown columns, what one row is).
_STATS = ("attribution", "contrast", "stat", "p_perm", "p_fwer", "q_fdr")
_TABLES = {
    # chrom/start/end are spelled out in the locus name; the CSV keeps them
    "loci": ("Genomics", "Top loci", ("rank", "locus", "n_snps", "lead_snp", "genes", *_STATS), "loci"),
    "snps": (
        "Genomics",
        "Top SNPs",
        ("rank", "snp", "chrom", "pos", "a1", "a2", "gene", "locus", *_STATS, "beta_assoc", "p_assoc"),
        "SNPs",
    ),
    "connections": (
        "Connectome",
        "Top connections",
        ("rank", "node_i", "node_j", "domain_i", "domain_j", *_STATS),
        "edges",
    ),
    "nodes": ("Connectome", "Top nodes", ("rank", "node", "domain", "x", "y", "z", *_STATS), "nodes"),
    "regions": ("Morphology", "Top regions", ("rank", "region", "atlas", "n_voxels", *_STATS), "regions"),
}
_ABSENT = {
    "Genomics": (
        "snps.csv and loci.csv are absent: the run did not use genotypes, or the explanation was run "
        "without permutation statistics."
    ),
    "Connectome": (
        "connections.csv and nodes.csv are absent: the run did not use FNC, or the explanation was run "
        "without permutation statistics."
    ),
    "Morphology": (
        "regions.csv is absent: the run did not use structural MRI, or the explanation was run without "
        "permutation statistics."
    ),
    "Modality contributions": "modalities.csv is absent.",
}
_HELP = {
    "p_perm": "permutation p-value, (R + 1)/(B + 1)",
    "p_fwer": "family-wise p-value (max-T over the features of this table)",
    "q_fdr": "Benjamini-Hochberg q-value",
    "p_assoc": "classical logistic association p-value (covariate-adjusted)",
    "beta_assoc": "classical logistic association: log-odds per allele",
    "stat": "contrast over its SD under the permutations (z; cases - controls)",
    "attribution": "mean attribution over subjects (log-odds)",
    "contrast": "mean attribution of cases minus controls (log-odds): the feature's share of the gap the model opens",
    "rank": "1 = top of the ranking (the note under the table says what it follows); untestable rows last",
    "rollout_share": "share of attention-rollout relevance",
    "ig_share": "share of absolute integrated-gradients attribution",
    "ablation_auc_drop": "drop in AUC when the modality is replaced by its baseline",
}
# Text columns whose values may be long lists or paths without spaces: they may break anywhere rather than
# widen the table; other identifiers (SNP ids, loci) stay on one line.
_WRAP = ("genes", "gene", "note", "file", "value", "setting")
# Figures are shown at this multiple of their print size: 6-7 pt publication text is too small on a screen.
SCREEN_SCALE = 1.5


@dataclass
class _Cell:
    text: str
    sort: float | None = None


@dataclass
class _Column:
    name: str
    numeric: bool
    help: str = ""
    wrap: bool = False


@dataclass
class _Link:
    label: str
    href: str | None


@dataclass
class _Table:
    id: str
    title: str
    columns: list
    rows: list
    note: str = ""
    links: list = field(default_factory=list)
    sortable: bool = True


@dataclass
class _Figure:
    id: str
    title: str
    caption: str
    src: str
    links: list
    width: int | None = None
    height: int | None = None


@dataclass
class _View:
    id: str
    title: str
    caption: str
    html: str
    width: int
    height: int
    legend: list
    links: list


@dataclass
class _Block:
    kind: str  # "p", "note", "table", "figure", "view", "summary", "methods", "kv", "warnings", "links", "details"
    value: object
    title: str = ""


@dataclass
class _Section:
    id: str
    title: str
    blocks: list = field(default_factory=list)


def section_id(title: str) -> str:
    """The HTML id of a section: ``"Modality contributions"`` -> ``"modality-contributions"``."""
    return "-".join(title.lower().split())


def format_p(p) -> str:
    """A p-value for reading: 3 significant digits, scientific below 0.001, ``NA`` when missing.

    Examples
    --------
    >>> format_p(0.04213), format_p(0.000999), format_p(float("nan"))
    ('0.0421', '9.99e-4', 'NA')
    """
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "NA"
    p = float(p)
    if p != 0 and abs(p) < 1e-3:
        return _sci(p)
    return f"{p:.3g}"


def _sci(value: float) -> str:
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _format_number(value) -> str:
    value = float(value)
    if value == 0:
        return "0"
    if abs(value) < 1e-3:
        return _sci(value)
    if abs(value) >= 1e4:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _cells(series: pd.Series, column: str) -> tuple[list[_Cell], bool]:
    """Display text and sort key of every value of a column; numeric when the column's dtype is."""
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return [_Cell("" if pd.isna(v) else str(v)) for v in series], False
    if pd.api.types.is_integer_dtype(series):
        return [_Cell(str(int(v)), float(v)) for v in series], True
    fmt = format_p if column in P_COLUMNS else _format_number
    return [_Cell("NA", None) if pd.isna(v) else _Cell(fmt(v), float(v)) for v in series], True


def _table(
    table_id: str, title: str, df: pd.DataFrame, columns=None, *, note="", links=(), sortable=True, formatter=None
) -> _Table:
    columns = [c for c in (columns or df.columns) if c in df.columns]
    cols, per_column = [], []
    for c in columns:
        if formatter is not None and pd.api.types.is_float_dtype(df[c]):
            cells = [_Cell("NA", None) if pd.isna(v) else _Cell(formatter(v), float(v)) for v in df[c]]
            numeric = True
        else:
            cells, numeric = _cells(df[c], c)
        cols.append(_Column(c, numeric, _HELP.get(c, ""), wrap=c in _WRAP))
        per_column.append(cells)
    rows = [list(r) for r in zip(*per_column)] if per_column else []
    return _Table(table_id, title, cols, rows, note=note, links=list(links), sortable=sortable)


def _href(path, report_dir: Path) -> str:
    """A relative, URL-quoted link from the report to ``path`` (never an absolute or remote URL)."""
    path = Path(path)
    if not path.is_absolute():
        path = report_dir / path
    rel = os.path.relpath(path.resolve(), report_dir.resolve())
    return "/".join(quote(part) for part in Path(rel).as_posix().split("/"))


def _resolve(path, report_dir: Path) -> Path:
    """A figure file as given: absolute, relative to the working folder, or else relative to the report folder."""
    path = Path(path)
    return path if path.is_absolute() or path.exists() else report_dir / path


def _file_link(path, report_dir: Path, label=None) -> _Link:
    """A link to a file beside the report; ``href`` None (shown as missing) when the file is not there."""
    full = Path(path) if Path(path).is_absolute() else report_dir / path
    return _Link(label or Path(path).name, _href(full, report_dir) if full.exists() else None)


def _top(df: pd.DataFrame, k: int) -> pd.DataFrame:
    if "rank" in df:
        df = df.sort_values("rank", kind="stable")
    return df.head(k)


def _count_significant(df: pd.DataFrame, column: str, alpha: float = 0.05) -> int | None:
    return int((df[column] < alpha).sum()) if column in df else None


# -- sections ---------------------------------------------------------------------------------------------------


def _cohort_counts(inputs: ReportInputs):
    pred = inputs.predictions if inputs.predictions is not None else inputs.tables.get("subjects")
    if pred is None:
        return None
    n = len(pred)
    if "label" not in pred:
        return n, None, None, "", ""
    cases = int((pred["label"] == 1).sum())
    names = ("", "")
    if "label_name" in pred:
        pos, neg = pred.loc[pred["label"] == 1, "label_name"], pred.loc[pred["label"] == 0, "label_name"]
        names = (f" ({pos.iloc[0]})" if len(pos) else "", f" ({neg.iloc[0]})" if len(neg) else "")
    return n, cases, n - cases, *names


def _contrast_text(row) -> str:
    value = row.get("contrast", float("nan"))
    return f"contrast {value:+.3g}, " if pd.notna(value) else ""


def _top_line(df: pd.DataFrame, label_of, unit: str, n_top: int = 3) -> str:
    top = _top(df, n_top)
    items = [
        f"{label_of(row)} ({_contrast_text(row)}p_FWER {format_p(row.get('p_fwer', float('nan')))})"
        for _, row in top.iterrows()
    ]
    hits = _count_significant(df, "p_fwer")
    tail = f" — {hits} of {len(df)} {unit} with p_FWER < 0.05" if hits is not None else ""
    return ", ".join(items) + tail


# fixed-model p-values (and the p_FWER counts below them) are not a test of reliance: Methods says why
FIXED_MODEL_NOTE = "; not a test of reliance: features the model barely uses can reach small p (see Methods)"


def _null_summary(s) -> str | None:
    """One line on what the tables' p-values test (reports from before the ``null`` setting: none)."""
    null = s.get("null")
    if null == "retraining":
        return (
            f"retraining null, {s.get('n_null_runs')} null runs (the whole pipeline on permuted labels): p says "
            f"whether the model relies on a feature more than a model trained on random labels would"
        )
    if null == "per_fold":
        found = s.get("n_null_runs") or 0
        return (
            f"per-fold fixed-model tests ({s.get('n_permutations')} permutations within site per fold, Bonferroni "
            f"across {s.get('folds')} folds): p says whether a feature's attribution differs between cases and "
            f"controls given the model"
            + (f"; {found} retraining null runs found, fewer than the 19 needed" if 0 < found < 19 else "")
            + FIXED_MODEL_NOTE
        )
    if null == "external":
        return (
            f"the external cohort's labels permuted within site ({s.get('n_permutations')} permutations), the "
            f"run's models fixed" + FIXED_MODEL_NOTE
        )
    if null == "explanation_set":
        return (
            f"explanation set's labels permuted within site ({s.get('n_permutations')} permutations), models fixed"
            + FIXED_MODEL_NOTE
        )
    return None


def _summary(inputs: ReportInputs) -> list:
    lines = []
    counts = _cohort_counts(inputs)
    n_folds = inputs.train.get("n_folds") or inputs.settings.get("folds")
    if counts:
        n, cases, controls, pos, neg = counts
        text = f"{n} subjects" + (f": {cases} cases{pos}, {controls} controls{neg}" if cases is not None else "")
        explained = inputs.settings.get("n_explained")
        if inputs.settings.get("external_cohort_name"):
            text = (
                f"trained on {text} ({n_folds}-fold cross-validation); explained: {explained} subjects of the "
                f"external cohort {inputs.settings['external_cohort_name']}, none of whom trained a model, by the "
                f"ensemble of the {n_folds} fold models"
            )
        elif n_folds and inputs.settings.get("out_of_fold", True) is False and explained:
            text += (
                f"; {explained} held out of all training as the explanation set (explained by the ensemble of "
                f"the {n_folds} fold models), {n_folds}-fold cross-validation on the others"
            )
        elif n_folds:
            text += f"; {n_folds}-fold cross-validation, every prediction and explanation out of fold"
        lines.append(("Cohort", text))
    auc = inputs.metric("roc_auc")
    if auc is not None and auc < CHANCE_AUC:
        lines.append(
            (
                "Caution",
                f"the model is near chance (mean ROC AUC {auc:.3f}): the attributions below describe "
                f"the model, not the disease (see Warnings)",
            )
        )
    perf = []
    for name, label in (
        ("accuracy", "accuracy"),
        ("balanced_accuracy", "balanced accuracy"),
        ("roc_auc", "ROC AUC"),
        ("brier", "Brier score"),
    ):
        mean, sd = inputs.metric(name), inputs.metric(name, "sd")
        if mean is not None:
            perf.append(f"{label} {mean:.3f}" + (f" ± {sd:.3f}" if sd is not None else ""))
    if perf:
        text = ", ".join(perf) + " (mean ± SD over folds)"
        held_acc, held_auc = inputs.metric("accuracy", "explanation_set"), inputs.metric("roc_auc", "explanation_set")
        if held_acc is not None:
            text += f"; explanation set, fold models' ensemble: accuracy {held_acc:.3f}" + (
                f", ROC AUC {held_auc:.3f}" if held_auc is not None else ""
            )
        external = inputs.settings.get("external_metrics") or {}
        if external.get("accuracy") is not None:
            text += (
                f"; external cohort {inputs.settings.get('external_cohort_name')}, fold models' ensemble: "
                f"accuracy {external['accuracy']:.3f}"
                + (f", ROC AUC {external['roc_auc']:.3f}" if external.get("roc_auc") is not None else "")
            )
        lines.append(("Performance", text))
    null = _null_summary(inputs.settings)
    if null:
        lines.append(("p-values", null))
    mods = inputs.tables.get("modalities")
    if mods is not None and "modality" in mods:
        parts = []
        for _, row in mods.iterrows():
            shares = [
                f"{100 * row[c]:.0f}% {lbl}"
                for c, lbl in (("rollout_share", "rollout"), ("ig_share", "IG"))
                if c in row and pd.notna(row[c])
            ]
            parts.append(f"{row['modality']} {' / '.join(shares)}")
        lines.append(("Modality shares", "; ".join(parts)))
    if "loci" in inputs.tables:

        def locus(row):
            genes = row.get("genes", "")
            return f"{row['locus']}" + (f" [{genes}]" if genes else "")

        lines.append(("Top loci", _top_line(inputs.tables["loci"], locus, "loci")))
    if "regions" in inputs.tables:
        lines.append(("Top regions", _top_line(inputs.tables["regions"], lambda r: str(r["region"]), "regions")))
    if "connections" in inputs.tables:
        lines.append(
            (
                "Top connections",
                _top_line(inputs.tables["connections"], lambda r: f"{r['node_i']} – {r['node_j']}", "edges"),
            )
        )
    return lines


def _table_block(name: str, inputs: ReportInputs, top_k: int) -> _Block:
    section, title, columns, unit = _TABLES[name]
    df = inputs.tables[name]
    shown = _top(df, top_k)
    note = f"Top {len(shown)} of {len(df)} {unit} by rank ({rank_rule(df)}). Click a column header to sort."
    links = [_file_link(ReportFolder.file(name), inputs.report_dir, f"{ReportFolder.file(name)} (all {len(df)} rows)")]
    return _Block("table", _table(f"table-{name}", title, shown, columns, note=note, links=links))


def _png_size(data: bytes, default_dpi: float = 300.0) -> tuple[int, int] | None:
    """CSS size of a PNG shown at `SCREEN_SCALE` x its print size: pixels x 96 / dpi x scale (dpi from the pHYs
    chunk, else 300). Without this a small figure would be stretched to the page width and its text blown up.
    """
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    dpi, pos = default_dpi, 8
    while pos + 8 <= len(data):
        length, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        if kind == b"pHYs" and length >= 9:
            ppu, unit = int.from_bytes(data[pos + 8 : pos + 12], "big"), data[pos + 16]
            if unit == 1 and ppu > 0:  # pixels per metre
                dpi = ppu * 0.0254
            break
        if kind in (b"IDAT", b"IEND"):  # pHYs must come before the image data
            break
        pos += 12 + length
    scale = SCREEN_SCALE * 96.0 / dpi
    return max(1, round(width * scale)), max(1, round(height * scale))


def _figure_block(fig: FigureFile, report_dir: Path, index: int, problems: list) -> _Block | None:
    try:
        data = _resolve(fig.png, report_dir).read_bytes()
    except (StopIteration, OSError):
        problems.append(f"figure {fig.name!r}: no readable PNG among {[str(f) for f in fig.files]}; left out")
        return None
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    # the PNG is linked too: it opens at full resolution; PDF/SVG are linked, never inlined (size)
    links = [
        _file_link(_resolve(f, report_dir).absolute(), report_dir, Path(f).suffix.lstrip(".").upper())
        for f in fig.files
    ]
    names = [Path(d).name for d in fig.data]
    for d, name in zip(fig.data, names):
        # files of the same name (folds/1/history.csv, folds/2/history.csv) are told apart by their folders
        label = name if names.count(name) == 1 else "/".join(p for p in Path(d).parts[-3:] if p != "..")
        links.append(_file_link(d, report_dir, label))
    size = _png_size(data) or (None, None)
    return _Block("figure", _Figure(f"fig-{index}-{section_id(fig.name)}", fig.title, fig.caption, src, links, *size))


def _view_block(view: InteractiveView, report_dir: Path, index: int) -> _Block:
    links = [_file_link(d, report_dir) for d in view.data if (report_dir / d).is_file()]
    return _Block(
        "view",
        _View(
            f"view-{index}-{section_id(view.name)}",
            view.title,
            view.caption,
            view.html,
            view.width,
            view.height,
            list(view.legend),
            links,
        ),
    )


# The tables in community formats (`explain.write_exports`, docs/exports.md), by section: file and what it is.
_EXPORTS = {
    "Genomics": (
        (ReportFolder.GWAS_SSF, "GWAS-SSF summary statistics of the classical association"),
        (ReportFolder.GWAS_SSF_META, "their GWAS-SSF metadata"),
        (ReportFolder.FUMA, "the same rows for FUMA / LocusZoom"),
    ),
    "Connectome": (
        (ReportFolder.BRAINNET_NODES, "BrainNet Viewer node file"),
        (ReportFolder.BRAINNET_EDGES, "BrainNet Viewer edge file"),
    ),
}


def _export_links(section: str, report_dir: Path) -> list:
    """Links to the export files of ``section`` that exist beside the report (none: no block)."""
    present = [(name, what) for name, what in _EXPORTS[section] if (report_dir / name).is_file()]
    if not present:
        return []
    return [_Block("links", [_file_link(name, report_dir, f"{name} ({what})") for name, what in present])]


# Rows of the highlighted-SNPs table at most: a list of many genes could match thousands of SNPs.
HIGHLIGHT_ROWS = 200


def _highlight_blocks(inputs: ReportInputs, names, problems: list) -> list:
    """The rows of ``snps.csv`` that the highlight list marks, by rank; names found nowhere go to Warnings."""
    snps = inputs.tables.get("snps")
    if snps is None:
        problems.append(f"highlight: {len(names)} names given, but snps.csv is absent; nothing is marked")
        return []
    mask, unknown = highlight_mask(snps, names)
    if unknown:
        problems.append(highlight_warning(unknown, len(names)))
    marked = _top(snps[mask], len(snps))
    if not len(marked):
        return [_Block("note", f"Highlight list: none of its {len(names)} names is a SNP id or gene of snps.csv.")]
    shown = marked.head(HIGHLIGHT_ROWS)
    found = [n for n in names if n not in set(unknown)]
    note = (
        f"{len(marked)} of {len(snps)} SNPs marked by the highlight list ({len(names)} names"
        + (f"; found: {', '.join(found[:12])}{', ...' if len(found) > 12 else ''}" if found else "; none found")
        + "): the listed SNP ids and every SNP annotated to a listed gene, by rank"
        + (f"; the first {len(shown)} shown" if len(shown) < len(marked) else "")
        + "."
    )
    columns = _TABLES["snps"][2]
    links = [_file_link(ReportFolder.file("snps"), inputs.report_dir, f"{ReportFolder.file('snps')} (all rows)")]
    return [_Block("table", _table("table-highlighted", "Highlighted SNPs", shown, columns, note=note, links=links))]


def _performance(inputs: ReportInputs) -> list:
    blocks = []
    run = inputs.run_dir
    if inputs.metrics is not None:
        folder = RunFolder(run)
        links = [
            _file_link(path.absolute(), inputs.report_dir)
            for path in (folder.metrics, folder.predictions, folder.explanation_predictions)
            if path.is_file()
        ]
        note = "Per outer fold on out-of-fold predictions, then mean and SD."
        if "explanation_set" in inputs.metrics["fold"].astype(str).tolist():
            note += (
                " explanation_set: the fold models' ensemble (mean log-odds) on the subjects held out of all "
                "training, the ones explained below."
            )
        blocks.append(
            _Block(
                "table",
                _table(
                    "table-metrics",
                    "Cross-validated performance",
                    inputs.metrics,
                    note=note,
                    links=links,
                    sortable=False,
                    formatter=lambda v: f"{v:.3f}",
                ),
            )
        )
    else:
        blocks.append(
            _Block(
                "note",
                "metrics.csv not found in the run folder"
                + (f" ({run})" if run else " (no run folder given or recorded)")
                + ".",
            )
        )
    return blocks


def _modalities(inputs: ReportInputs) -> list:
    blocks = []
    if "modalities" in inputs.tables:
        mods = inputs.tables["modalities"]
        note = "Shares of relevance (attention rollout) and of absolute attribution (IG), averaged over subjects."
        if "ablation_auc_drop" in mods and mods["ablation_auc_drop"].isna().all():
            note += " ablation_auc_drop is NA: the faithfulness checks (modality ablation) were not run."
        blocks.append(
            _Block(
                "table",
                _table(
                    "table-modalities",
                    "Modality contributions",
                    mods,
                    note=note,
                    links=[_file_link(ReportFolder.file("modalities"), inputs.report_dir)],
                ),
            )
        )
    if "ablation" in inputs.tables:
        blocks.append(
            _Block(
                "table",
                _table(
                    "table-ablation",
                    "Modality ablation",
                    inputs.tables["ablation"],
                    links=[_file_link(ReportFolder.file("ablation"), inputs.report_dir)],
                ),
            )
        )
    if "deletion" in inputs.tables:
        blocks.append(
            _Block(
                "links",
                [
                    _file_link(
                        ReportFolder.file("deletion"),
                        inputs.report_dir,
                        "deletion.csv (deletion curves: output as top-attributed features are removed)",
                    )
                ],
            )
        )
    return blocks


def _provenance(inputs: ReportInputs, methods: Methods, command) -> list:
    m, s = inputs.manifest, inputs.settings
    kv = []
    if command is not None:
        kv.append(("Report command", " ".join(map(str, command)) if not isinstance(command, str) else command))
    if m.get("command"):
        cmd = m["command"]
        kv.append(("Training command", " ".join(map(str, cmd)) if isinstance(cmd, list) else str(cmd)))
    for key, label in (("seed", "Seed"), ("started", "Training started"), ("platform", "Platform")):
        if m.get(key) is not None:
            kv.append((label, str(m[key])))
    if inputs.run_dir is not None:
        kv.append(("Run folder", inputs.run_label))
    kv.append(("Report folder", str(inputs.report_dir)))
    if s.get("seconds") is not None:
        kv.append(("Explanation time", f"{s['seconds']} s"))
    if s.get("random_state") is not None:
        kv.append(("Explanation random_state", str(s["random_state"])))
    kv.append(("Report written", time.strftime("%Y-%m-%d %H:%M:%S %z")))
    blocks = [_Block("kv", kv)]
    rows = pd.DataFrame(
        [
            {"package": k, "training run (manifest)": v["run"] or "", "this report": v["now"] or ""}
            for k, v in methods.versions.items()
        ]
    )
    blocks.append(_Block("table", _table("table-versions", "Software versions", rows, sortable=False)))
    if s:
        settings = pd.DataFrame({"setting": list(s), "value": [str(v) for v in s.values()]})
        blocks.append(
            _Block(
                "details",
                _table(
                    "table-settings",
                    "Explanation settings (settings.json)",
                    settings,
                    sortable=False,
                    links=[_file_link(ReportFolder.SETTINGS, inputs.report_dir)],
                ),
                title=f"Explanation settings ({len(s)})",
            )
        )
    inputs_ = m.get("inputs") or {}
    if inputs_:
        checks = pd.DataFrame({"file": list(inputs_), "sha256": list(inputs_.values())})
        links = [_file_link(RunFolder(inputs.run_dir).manifest.absolute(), inputs.report_dir)] if inputs.run_dir else []
        blocks.append(
            _Block(
                "details",
                _table("table-inputs", "Input checksums (SHA-256)", checks, sortable=False, links=links),
                title=f"Input checksums ({len(inputs_)} files)",
            )
        )
    return blocks


# -- warnings ---------------------------------------------------------------------------------------------------


def _ids(values, limit=5) -> str:
    values = [str(v) for v in values]
    return ", ".join(values[:limit]) + (f", ... ({len(values) - limit} more)" if len(values) > limit else "")


def _standin_note(inputs: ReportInputs) -> str | None:
    """The note of stand-in FNC nodes, from nodes.csv or the cohort's node table (migtrans marks them there)."""
    nodes = inputs.tables.get("nodes")
    if nodes is not None and "note" in nodes:
        notes = [n for n in nodes["note"] if "stand-in" in str(n).lower()]
        if notes:
            return notes[0]
    fnc = (inputs.cohort.get("fnc") or {}) if inputs.cohort else {}
    if fnc.get("nodes") and inputs.cohort_path is not None:
        path = Path(fnc["nodes"])
        path = path if path.is_absolute() else inputs.cohort_path.parent / path
        try:
            table = pd.read_csv(path, sep="\t", dtype=str)
        except (OSError, ValueError, pd.errors.ParserError):
            return None
        if "note" in table:
            notes = [n for n in table["note"].dropna() if "stand-in" in n.lower()]
            if notes:
                return notes[0]
    return None


def _qc_blocks(inputs: ReportInputs, report_dir) -> list:
    """What genotype QC removed, filter by filter, with a link to ``qc.csv`` (one row per removal)."""
    s = inputs.settings
    if "qc_thresholds" not in s:
        return []
    if s["qc_thresholds"] is None:
        return [_Block("note", "Genotype QC: off (the cohort file's [qc] enabled = false).")]
    counts = s.get("qc_summary") or {}
    names = {
        "subject_missing": "subject call rate",
        "snp_missing": "SNP call rate",
        "hwe": "Hardy-Weinberg in controls",
        "maf": "minor allele frequency",
        "mac": "minor allele count",
        "missing_diff": "differential missingness",
        "heterozygosity": "heterozygosity",
        "relatedness": "relatedness",
    }
    removed = [
        f"{counts[k]} {'subject' if k in SUBJECT_FILTERS else 'SNP'}{'s' if counts[k] != 1 else ''} by {names[k]}"
        for k in names
        if counts.get(k)
    ]
    notes = [note[0].upper() + note[1:] + "." for note in s.get("qc_notes") or []]
    text = " ".join(
        [
            "Genotype QC removed "
            + (", ".join(removed) if removed else "nothing")
            + f"; {counts.get('snps_kept', '?')} SNPs and {counts.get('subjects_kept', '?')} subjects kept"
            + (f"; {counts['related_pairs']} related pair(s) found" if counts.get("related_pairs") else "")
            + ".",
            *notes,
            "Thresholds: " + ", ".join(f"{k} {v}" for k, v in s["qc_thresholds"].items() if v is not None) + ".",
        ]
    )
    blocks = [_Block("note", text)]
    if (Path(report_dir) / ReportFolder.file("qc")).is_file():
        blocks.append(
            _Block("links", [_file_link(ReportFolder.file("qc"), report_dir, "qc.csv (one row per removal)")])
        )
    return blocks


def _inflation_warning(s) -> list[str]:
    """lambda_GC is a median over SNPs and moves by chance: warn only when its bootstrap interval lies
    wholly beyond 1.05 (or below 0.95); without an interval (older explanations), outside [0.9, 1.1]."""
    lam, interval = s.get("lambda_gc"), s.get("lambda_gc_interval")
    if lam is None:
        return []
    lam = float(lam)
    if interval and all(v is not None and math.isfinite(float(v)) for v in interval):
        low, high = (float(v) for v in interval)
        if low <= 1.05 and high >= 0.95:
            return []
        shown = f"\u03bbGC = {lam:.3f} (95% bootstrap interval {low:.3f}\u2013{high:.3f})"
        where = "wholly above 1.05" if low > 1.05 else "wholly below 0.95"
    elif 0.9 <= lam <= 1.1:
        return []
    else:
        shown, where = f"\u03bbGC = {lam:.3f}", "outside [0.9, 1.1]"
    return [
        f"Genomic inflation {shown} is {where}: the classical association p-values (p_assoc) may be "
        f"miscalibrated (population structure not captured by the principal components, relatedness or a "
        f"covariate missing)."
    ]


def detect_warnings(inputs: ReportInputs) -> list[str]:
    """What a reader must know before trusting the report, found in the report and run folders.

    Parameters
    ----------
    inputs : ReportInputs
        From `load_inputs`.

    Returns
    -------
    list of str
        One plain-text sentence or two per problem: a model near chance, large integrated-gradients
        completeness errors, features without p-values, dropped subjects, stand-in node labels, genomic
        inflation, few permutations, unrecorded settings and unreadable files.
    """
    out = list(inputs.problems)
    s, tables = inputs.settings, inputs.tables
    auc = inputs.metric("roc_auc")
    if auc is not None and auc < CHANCE_AUC:
        out.append(
            f"The model is near chance: mean out-of-fold ROC AUC {auc:.3f} (< {CHANCE_AUC}). Explanations of "
            f"a model at chance are not evidence about the disease; the attributions below describe the "
            f"model only."
        )
    if inputs.run_dir is None or not inputs.run_dir.is_dir():
        out.append(
            "The run folder was not found"
            + (f" ({inputs.run_dir})" if inputs.run_dir else "")
            + ": performance, Methods and provenance are incomplete."
        )
    if not s:
        out.append("settings.json is absent: the Methods cannot describe how the explanations were computed.")

    subjects = tables.get("subjects")
    delta_max = s.get("ig_relative_delta_max")
    if subjects is not None and "ig_relative_delta" in subjects:
        bad = subjects[subjects["ig_relative_delta"] > IG_DELTA_LIMIT].sort_values("ig_relative_delta", ascending=False)
        if len(bad):
            worst = [f"{sid} ({d:.3g})" for sid, d in zip(bad.get("subject_id", bad.index), bad["ig_relative_delta"])]
            out.append(
                f"Integrated gradients did not converge for {len(bad)} of {len(subjects)} subjects: relative "
                f"completeness error above {IG_DELTA_LIMIT} ({_ids(worst)}). Raise n_steps "
                f"(now {s.get('n_steps', '?')})."
            )
    elif delta_max is not None and delta_max > IG_DELTA_LIMIT:
        out.append(
            f"Integrated gradients: largest relative completeness error {delta_max:.3g} (> {IG_DELTA_LIMIT}); "
            f"raise n_steps (now {s.get('n_steps', '?')})."
        )

    id_columns = {"snps": "snp", "loci": "locus", "regions": "region", "nodes": "node"}
    for name in ("snps", "loci", "regions", "connections", "nodes"):
        df = tables.get(name)
        if df is None or "p_perm" not in df:
            continue
        missing = df[df["p_perm"].isna()]
        if len(missing):
            if name == "connections":
                ids = [f"{a}–{b}" for a, b in zip(missing.get("node_i", []), missing.get("node_j", []))]
            else:
                ids = list(missing.get(id_columns[name], missing.index))
            one = len(missing) == 1
            out.append(
                f"{name}.csv: {len(missing)} of {len(df)} features {'has' if one else 'have'} no p-value "
                f"({'its' if one else 'their'} attribution is constant across subjects, e.g. a monomorphic "
                f"SNP): {_ids(ids)}. {'It is' if one else 'They are'} ranked last and not counted in the FWER "
                f"and FDR corrections."
            )

    dropped = inputs.manifest.get("dropped") or {}
    if dropped:
        out.append(
            f"The cohort loader dropped {len(dropped)} subject(s): "
            + _ids([f"{k} ({v})" for k, v in dropped.items()], limit=10)
            + "."
        )
    listed = inputs.manifest.get("subjects")
    if listed and subjects is not None and len(listed) != len(subjects):
        out.append(f"The run manifest lists {len(listed)} subjects but subjects.csv explains {len(subjects)}.")

    note = _standin_note(inputs)
    if note and ("nodes" in tables or "connections" in tables):
        out.append(
            f"FNC node labels are stand-ins: {note}. Node names and domains in the Connectome section do "
            f"not name real components."
        )

    out += _inflation_warning(s)
    B = s.get("n_permutations")
    floor = s.get("p_floor") or (1 / (B + 1) if B else None)
    if s.get("null") == "retraining" and floor > 0.01:
        out.append(f"Only {B} retraining null runs: the smallest attainable p-value is 1/(B_r + 1) = {floor:.3g}.")
    elif s.get("null") != "retraining" and B and B < 1000:
        out.append(f"Only {B} permutations: the smallest attainable p-value is {floor:.3g}.")
    if "snps" in tables or "loci" in tables:
        source, recorded = gene_source(inputs)
        if not recorded:
            out.append(
                "settings.json does not record the gene annotation source; the Methods assume the default "
                f"({source or 'unknown'}, from the cohort's genotype build)."
            )
    if "regions" in tables and atlas_name(inputs) is None:
        out.append("The atlas of regions.csv is not recorded.")
    return out


# -- rendering --------------------------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    # autoescape everywhere: subject, SNP and node names come from user files and are never trusted as markup
    return jinja2.Environment(
        loader=jinja2.PackageLoader("reports.page", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_report(
    report_dir, run_dir=None, figures=(), *, command=None, warnings=(), top_k=20, highlight=None, interactive=True
) -> Path:
    """Write ``report.html``: one self-contained file (inline PNG figures, interactive views, styles and scripts;
    nothing is fetched from the network).

    Parameters
    ----------
    report_dir : path-like
        The explanation folder: ``snps.csv``, ``loci.csv``, ``regions.csv``, ``connections.csv``, ``nodes.csv``,
        ``modalities.csv``, ``subjects.csv``, ``settings.json``, ... Any table may be absent.
    run_dir : path-like, optional
        The training run folder (``config.toml``, ``manifest.json``, ``metrics.csv``). Default: the run recorded
        in ``settings.json``.
    figures : sequence of FigureFile
        Saved figures; each PNG is embedded, its PDF/SVG and data files are linked (relative links).
    command : sequence of str or str, optional
        The command line that made the report, shown under Provenance.
    warnings : sequence of str
        Warnings collected by the caller; shown first under Warnings, before those found in the folders.
    top_k : int, default=20
        Rows shown in each result table (the CSV behind it holds all), and connections in the 3-D connectome.
    highlight : str, path-like, sequence of str or None
        The Manhattan plot's highlight list (see `make_figures`): the Genomics section lists the SNPs it marks;
        names found nowhere in ``snps.csv`` are a line under Warnings.
    interactive : bool, default=True
        Embed nilearn's interactive views, each in a sandboxed frame below the static figures: a 3-D connectome
        of the top connections (Connectome, about 2.8 MB) and a slice viewer of ``smri_attribution.nii.gz``
        (Morphology, about 0.7 MB), where their inputs exist. Their JavaScript is nilearn's packaged copy, inline.

    Returns
    -------
    Path
        ``report_dir / "report.html"``, written atomically (a temporary file in the same folder, then replaced).

    Examples
    --------
    >>> from reports.page._report import render_report
    >>> render_report("demo/run/explanations", "demo/run", [])  # doctest: +SKIP
    PosixPath('demo/run/explanations/report.html')
    """
    check_number("top_k", top_k, minimum=1, integer=True)
    names = read_highlight(highlight)
    inputs = load_inputs(report_dir, run_dir)
    report_dir = inputs.report_dir
    methods = build_methods(report_dir, inputs=inputs)

    problems: list[str] = []
    by_section: dict[str, list] = {title: [] for title in SECTIONS}
    for i, fig in enumerate(figures):
        block = _figure_block(fig, report_dir, i, problems)
        if block is None:
            continue
        if fig.section not in by_section:
            problems.append(f"figure {fig.name!r}: unknown section {fig.section!r}; shown under Warnings")
            by_section["Warnings"].append(block)
        else:
            by_section[fig.section].append(block)
    views, view_problems = make_views(inputs, top_k=top_k) if interactive else ([], [])
    problems += view_problems
    for i, view in enumerate(views):
        # below the static figures of the section, above its tables
        by_section[view.section].append(_view_block(view, report_dir, i))
    highlighted = _highlight_blocks(inputs, names, problems) if names else []

    all_warnings = list(dict.fromkeys([*map(str, warnings), *detect_warnings(inputs), *problems]))
    sections = {title: _Section(section_id(title), title) for title in SECTIONS}
    sections["Summary"].blocks.append(_Block("summary", _summary(inputs)))
    sections["Performance"].blocks += _performance(inputs)
    sections["Modality contributions"].blocks += _modalities(inputs)
    for name in _TABLES:
        if name in inputs.tables:
            sections[_TABLES[name][0]].blocks.append(_table_block(name, inputs, top_k))
    sections["Genomics"].blocks += highlighted
    for title in _EXPORTS:
        sections[title].blocks += _export_links(title, report_dir)
    if (report_dir / ReportFolder.SMRI_MAP).is_file():
        sections["Morphology"].blocks.append(
            _Block(
                "links",
                [
                    _file_link(
                        ReportFolder.SMRI_MAP,
                        report_dir,
                        "smri_attribution.nii.gz (voxel-wise mean attribution, NIfTI)",
                    )
                ],
            )
        )
    for title, text in _ABSENT.items():
        has_table = any(_TABLES[n][0] == title for n in _TABLES if n in inputs.tables) or (
            title == "Modality contributions" and "modalities" in inputs.tables
        )
        if not has_table:
            sections[title].blocks.append(_Block("note", text))
    if "snps" in inputs.tables and inputs.settings.get("lambda_gc") is not None:
        sections["Genomics"].blocks.append(
            _Block(
                "note",
                f"Genomic inflation of the classical association (p_assoc): \u03bbGC = "
                f"{float(inputs.settings['lambda_gc']):.3f}"
                + (f" ({lambda_detail(inputs.settings)})" if lambda_detail(inputs.settings) else "")
                + ".",
            )
        )
    sections["Genomics"].blocks += _qc_blocks(inputs, report_dir)
    sections["Methods"].blocks.append(_Block("methods", methods))
    sections["Provenance"].blocks += _provenance(inputs, methods, command)
    sections["Warnings"].blocks.insert(0, _Block("warnings", all_warnings))
    for title, blocks in by_section.items():
        # figures lead their section, before its tables; the Summary keeps its one-line digest first
        at = 1 if title in ("Summary", "Warnings") else 0
        sections[title].blocks[at:at] = blocks

    env = _environment()
    script, style = (env.loader.get_source(env, name)[0] for name in ("report.js", "report.css"))
    # The CSP allows exactly our script and the views' inline scripts (by their hashes; the sandboxed frames
    # inherit the policy) and no other. plotly.js 1.x, in nilearn's 3-D view, compiles its WebGL array code with
    # new Function: with that view only, 'unsafe-eval' lets those hashed scripts do so.
    sources = ["'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"]
    sources += [h for view in views for h in view.script_hashes]
    sources += ["'unsafe-eval'"] if any(view.needs_eval for view in views) else []
    html = env.get_template("report.html.j2").render(
        # our own static files, inserted verbatim
        script=markupsafe.Markup(script),
        style=markupsafe.Markup(style),
        script_src=" ".join(dict.fromkeys(sources)),
        sections=[sections[t] for t in SECTIONS],
        n_warnings=len(all_warnings),
        title="MIGTrans explanation report",
        run=inputs.run_label,
        version=methods.versions.get("migtrans", {}).get("now") or "",
        written=time.strftime("%Y-%m-%d %H:%M"),
    )
    target = report_dir / REPORT_FILE
    atomic_write_text(target, html)
    return target
