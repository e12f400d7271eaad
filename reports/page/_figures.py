"""Build every publication figure whose inputs exist, from a report (explanation) folder and its run folder.

Each figure reads the tables written by ``explain`` and ``migtrans train`` and nothing else; a figure whose
table is absent (a modality not in the model, a baseline run without training history) is skipped."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from migtrans.exceptions import ParameterError
from migtrans.training import RunFolder

from ..folder import ReportFolder, rank_rule
from ..plotting import (
    AncestryDisplay,
    AttributionMapDisplay,
    ConfusionDisplay,
    ConnectogramDisplay,
    ConnectomeDisplay,
    DeletionCurveDisplay,
    FNCMatrixDisplay,
    ManhattanDisplay,
    ModalityContributionDisplay,
    QQDisplay,
    RegionalDisplay,
    RegionBarDisplay,
    ReliabilityDisplay,
    RocCurvesDisplay,
    TrainingHistoryDisplay,
    save_figure,
)
from ._figure import FigureFile
from ._methods import lambda_detail


class _Context:
    """The folders, the settings and the tables, each read once (through the `ReportFolder`)."""

    def __init__(self, report_dir, run_dir):
        self.report_dir = Path(report_dir)
        self.folder = ReportFolder(report_dir, run_dir)
        self.settings = self.folder.read_settings()
        self.run_dir = self.folder.run.path if self.folder.run is not None else None

    def table(self, name, *, run=False):
        """Table ``name`` of the report (or, with ``run``, of the run folder); None when absent or empty."""
        if run and self.run_dir is None:
            return None
        table = (
            self.folder.read_csv(RunFolder(self.run_dir) / RunFolder.file(name))
            if run
            else self.folder.read_result(name)
        )
        return table if table is not None and len(table) else None

    def rel(self, path):
        """``path`` relative to the report folder (files of the run folder get ``../`` paths)."""
        return os.path.relpath(Path(path), self.report_dir)

    def data(self, *names, run=False):
        folder = self.run_dir if run else self.report_dir
        return tuple(self.rel(folder / n) for n in names if (folder / n).exists())

    @property
    def n_permutations(self):
        """B such that 1/(B + 1) is the smallest attainable p_perm (what the figures draw as the floor):
        the recorded count, or for per-fold tests combined by Bonferroni, K/(B + 1) expressed that way."""
        floor = self.settings.get("p_floor")
        if floor:
            return max(1, int(round(1 / float(floor))) - 1)
        b = self.settings.get("n_permutations")
        return int(b) if b else None

    def permutation_text(self):
        s = self.settings
        b = s.get("n_permutations")
        scheme = s.get("permutation_scheme", "labels permuted")
        if not b:
            return "Permutation p-values (number of permutations not recorded)."
        if s.get("null") == "retraining":
            return (
                f"p = (R + 1)/(B_r + 1) against B_r = {b} retraining null runs ({scheme}); the smallest attainable "
                f"p is {s['p_floor']:.2g}."
            )
        if s.get("null") == "per_fold":
            return (
                f"Per fold, p_k = (R + 1)/(B + 1) with B = {b} ({scheme}); combined by Bonferroni across "
                f"{s.get('folds')} folds (K x min p_k), so the smallest attainable p is {s['p_floor']:.2g}."
            )
        return (
            f"Permutation p = (R + 1)/(B + 1) with B = {b} ({scheme}); the smallest attainable p is "
            f"1/(B + 1) = {1 / (b + 1):.2g}."
        )


# Each figure function returns None when its inputs are absent, else (title, display, caption, data files).


def _roc_curves(ctx, opts):
    predictions = ctx.table("predictions", run=True)
    if predictions is None:
        return None
    d = RocCurvesDisplay.from_predictions(predictions)
    if not d.folds:
        return None
    return (
        "ROC curves (out of fold)",
        d.plot(),
        f"Receiver-operating characteristic of each of the {len(d.folds)} cross-validation folds (thin lines), "
        f"computed on the subjects that fold's model did not train on, and their mean on a common "
        f"false-positive grid (thick) with ± 1 SD across folds. Mean AUC {d.mean_auc:.3f} ± {d.sd_auc:.3f} "
        f"(SD) over {len(predictions)} subjects.",
        ctx.data(RunFolder.PREDICTIONS, run=True),
    )


def _reliability(ctx, opts):
    predictions = ctx.table("predictions", run=True)
    if predictions is None or predictions["label"].nunique() < 2:
        return None
    d = ReliabilityDisplay.from_predictions(predictions)
    return (
        "Calibration (out of fold)",
        d.plot(),
        f"Reliability of the predicted probabilities: the {d.n} out-of-fold predictions sorted into "
        f"{len(d.table)} bins of equal count, each bin's mean predicted probability against the share of "
        f"positives in it, with its 95% Wilson interval; points on the diagonal are calibrated, points below it "
        f"over-confident at high probabilities. Brier score {d.brier:.3f} (predicting the case share for everyone "
        f"scores {d.brier_reference:.3f}); expected calibration error {d.table.attrs['ece']:.3f}.",
        ctx.data(RunFolder.PREDICTIONS, run=True),
    )


def _confusion_matrix(ctx, opts):
    predictions = ctx.table("predictions", run=True)
    if predictions is None:
        return None
    d = ConfusionDisplay.from_predictions(predictions)
    return (
        "Confusion matrix (out of fold)",
        d.plot(),
        f"Out-of-fold predictions of all {int(d.matrix.sum())} subjects pooled across folds: counts and, in "
        f"brackets, the share of each true class. Positive class: {d.labels[1]}.",
        ctx.data(RunFolder.PREDICTIONS, run=True),
    )


def _training_history(ctx, opts):
    if ctx.run_dir is None:
        return None
    d = TrainingHistoryDisplay.from_run(ctx.run_dir)
    if not d.histories:
        return None
    files = tuple(ctx.rel(RunFolder(ctx.run_dir).fold(int(f)).history) for f in d.histories)
    validated = any(column.startswith("val_") for _, columns in d.panels for column in columns)
    caption = (
        f"Per-epoch training (dashed) and validation (solid) loss and validation metrics of each of the "
        f"{len(d.histories)} folds; dots mark the epoch whose weights each fold kept."
        if validated
        else f"Per-epoch training loss of each of the {len(d.histories)} folds, each fitted on its whole training "
        f"share for a fixed budget (its last epoch kept; no validation split)."
    )
    return (
        "Training history",
        d.plot(),
        caption,
        files,
    )


def _modality_contributions(ctx, opts):
    modalities = ctx.table("modalities")
    if modalities is None:
        return None
    d = ModalityContributionDisplay.from_table(modalities)
    described = {
        "rollout_share": "share of attention-rollout relevance reaching each modality's tokens",
        "ig_share": "share of the summed absolute integrated-gradients attribution",
        "ablation_auc_drop": "drop in the explained subjects' held-out ROC AUC when the modality is "
        "replaced by its baseline",
    }
    missing = "" if "ablation_auc_drop" in d.measures else " Modality ablation was not run."
    return (
        "Modality contributions",
        d.plot(),
        "Per modality: " + "; ".join(described[m] for m in d.measures) + "." + missing,
        ctx.data(ReportFolder.file("modalities")),
    )


def _deletion_curves(ctx, opts):
    deletion = ctx.table("deletion")
    if deletion is None:
        return None
    d = DeletionCurveDisplay.from_table(deletion)
    return (
        "Deletion curves",
        d.plot(),
        "Held-out ROC AUC of the explained subjects as the most-attributed features of one modality (ranked "
        "by mean |attribution| across subjects) are replaced by the baseline, against the same number of random "
        "features (mean ± SD over random draws). A faithful attribution makes the AUC fall faster for the top "
        "features; the dotted line is chance.",
        ctx.data(ReportFolder.file("deletion")),
    )


def _snps_with_p(ctx):
    snps = ctx.table("snps")
    return snps if snps is not None and {"p_perm", "p_assoc"} & set(snps.columns) else None


def read_highlight(highlight):
    """The names of a highlight list: SNP ids and gene symbols to mark in the Manhattan plot.

    Parameters
    ----------
    highlight : str, path-like, sequence of str or None
        A text file, one SNP id or gene symbol per line (names on one line may also be separated by spaces or
        commas; ``#`` starts a comment, blank lines are skipped), or the names themselves.

    Returns
    -------
    list of str or None
        The names in the order given, each once; None when ``highlight`` is None.

    Raises
    ------
    ParameterError
        When the file cannot be read or names nothing, or the list is empty.

    Examples
    --------
    >>> read_highlight(["APOE", " rs429358 ", "APOE"])
    ['APOE', 'rs429358']
    """
    if highlight is None:
        return None
    if isinstance(highlight, (str, os.PathLike)):
        path = Path(highlight)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or type(error).__name__
            raise ParameterError(
                f"highlight: expected a text file of SNP ids or gene symbols, could not read {str(path)!r} ({reason})"
            ) from None
        names = [n for line in text.splitlines() for n in re.split(r"[\s,]+", line.split("#", 1)[0]) if n]
        if not names:
            raise ParameterError(
                f"highlight: expected SNP ids or gene symbols, one per line, found none in {str(path)!r}"
            )
    else:
        try:
            names = [str(n).strip() for n in highlight if str(n).strip()]
        except TypeError:
            raise ParameterError(
                f"highlight: expected a file or a list of SNP ids and gene symbols, found {type(highlight).__name__}"
            ) from None
        if not names:
            raise ParameterError("highlight: expected at least one SNP id or gene symbol, found an empty list")
    return list(dict.fromkeys(names))


def _manhattan(ctx, opts):
    snps = _snps_with_p(ctx)
    if snps is None:
        return None
    d = ManhattanDisplay.from_table(
        snps,
        build=opts["build"],
        n_permutations=ctx.n_permutations,
        n_labels=opts["n_labels"],
        highlight=opts["highlight"],
    )
    lines = []
    for p in d.panels:
        what = {
            "p_perm": "model: permutation p of the case-control contrast of held-out attributions",
            "p_assoc": "classical: per-SNP logistic-regression association p",
        }.get(p.column, p.column)
        dropped = f", {p.n_dropped} missing p left out" if p.n_dropped else ""
        lines.append(
            f"{p.column} ({what}; {p.n_features} SNPs{dropped}): dashed line {p.threshold_rule}, "
            f"p = {p.threshold:.2g}; dotted suggestive line 1/m = {p.suggestive:.2g} (one false positive "
            f"expected per scan)"
        )
    caption = (
        f"Manhattan plot of {len(snps)} SNPs on {len(d.axis.chromosomes)} chromosomes (x offsets from "
        f"{opts['build']} chromosome lengths). "
        + "; ".join(lines)
        + ". "
        + (ctx.permutation_text() + " " if "p_perm" in d.n_dropped else "")
        + f"Labels: the gene of the lead SNP of the {opts['n_labels']} loci with the smallest p in each "
        "panel, whether or not they pass a line; red points pass the dashed line."
    )
    if d.highlight:
        found, unknown = d.highlight_found, d.highlight_unknown
        verb = "matches" if len(unknown) == 1 else "match"
        caption += (
            f" Orange diamonds: the {len(d.highlighted)} SNPs of the highlight list ({len(d.highlight)} names"
            + (f": {', '.join(found[:8])}{', ...' if len(found) > 8 else ''}" if found else "")
            + "), the listed SNP ids and every SNP annotated to a listed gene"
            + (f"; {len(unknown)} of them {verb} nothing in the table (see Warnings)" if unknown else "")
            + "."
        )
    return "Manhattan plot", d.plot(), caption, ctx.data(ReportFolder.file("snps"), ReportFolder.SETTINGS)


def _qq(ctx, opts):
    snps = _snps_with_p(ctx)
    if snps is None:
        return None
    d = QQDisplay.from_table(snps, lambda_gc=ctx.settings.get("lambda_gc"), n_permutations=ctx.n_permutations)
    s = ctx.settings

    def lam(p):
        # the analysis's lambda rests on the LD-pruned common SNPs, not on every point drawn
        detail = lambda_detail(s) if p["column"] == "p_assoc" and p["lambda_source"] == "from the analysis" else ""
        return f"λ = {p['lambda_gc']:.3f} ({p['lambda_source']}{'; ' + detail if detail else ''})"

    parts = [f"{p['column']}: n = {p['n']}, {lam(p)}" for p in d.panels]
    return (
        "QQ plot",
        d.plot(),
        f"Observed against expected −log10 p under the uniform null, with a pointwise {d.confidence:.0%} band "
        f"(quantiles of Beta(i, n − i + 1) for the i-th smallest p). "
        + "; ".join(parts)
        + ". λ = median of χ²(1) quantiles of the p-values / 0.455 (genomic inflation). "
        + (ctx.permutation_text() if any(p["column"] == "p_perm" for p in d.panels) else ""),
        ctx.data(ReportFolder.file("snps"), ReportFolder.SETTINGS),
    )


def _regional_top_locus(ctx, opts):
    snps, loci = _snps_with_p(ctx), ctx.table("loci")
    if snps is None or (loci is None and "locus" not in snps.columns):
        return None
    d = RegionalDisplay.from_tables(snps, loci, n_permutations=ctx.n_permutations)
    return (
        f"Top locus {d.locus}",
        d.plot(),
        f"−log10 p of the {len(d.snps)} SNPs in {d.window[0]:,}-{d.window[1]:,} bp of chromosome {d.chrom} "
        f"around the rank-1 locus {d.locus} (shaded; {int(d.snps['in_locus'].sum())} SNPs, lead SNP "
        f"{d.lead_snp}). Gene bars span the SNPs annotated to each gene (the tables hold no gene coordinates).",
        ctx.data(ReportFolder.file("snps"), ReportFolder.file("loci")),
    )


def _fnc_matrix(ctx, opts):
    connections = ctx.table("connections")
    if connections is None:
        return None
    d = FNCMatrixDisplay.from_tables(connections, ctx.table("nodes"))
    n_sig = int(d.significant.sum() // 2)
    return (
        "FNC attribution matrix",
        d.plot(),
        f"Mean integrated-gradients attribution of each of the {len(connections)} functional connections between "
        f"{len(d.nodes)} nodes, sorted by domain (lines mark domain boundaries). Circles: {n_sig} "
        f"connection(s) with max-T family-wise p_fwer ≤ 0.05. {ctx.permutation_text()}",
        ctx.data(ReportFolder.file("connections"), ReportFolder.file("nodes")),
    )


def _ranked_value(table):
    """The column a figure of top-ranked features draws, and its words: what the ranking follows."""
    if "contrast" in table:
        return "contrast", "contrast (mean attribution of cases minus controls, log-odds)"
    return "attribution", "mean attribution"


def _connectome_top_edges(ctx, opts):
    connections, nodes = ctx.table("connections"), ctx.table("nodes")
    if connections is None or nodes is None or not {"x", "y", "z"} <= set(nodes.columns):
        return None
    value, what = _ranked_value(connections)
    d = ConnectomeDisplay.from_tables(connections, nodes, top_k=opts["top_k"], value=value)
    n = len(d.edges)
    return (
        f"Top {n} connections",
        d.plot(),
        f"The {n} top-ranked connections ({rank_rule(connections)}; ranks 1-{n} of {len(connections)}) on a glass "
        f"brain (nilearn), coloured by {what}; nodes at their MNI coordinates, coloured by domain.",
        ctx.data(ReportFolder.file("connections"), ReportFolder.file("nodes")),
    )


def _connectogram(ctx, opts):
    connections = ctx.table("connections")
    if connections is None:
        return None
    value, what = _ranked_value(connections)
    d = ConnectogramDisplay.from_tables(connections, ctx.table("nodes"), top_k=opts["top_k"], value=value)
    return (
        "Connectogram",
        d.plot(),
        f"The {len(d.edges)} top-ranked connections ({rank_rule(connections)}) as chords between "
        f"{len(d.nodes)} nodes grouped by domain; red: positive {what}, blue: negative; "
        f"chord width ∝ |{value}|.",
        ctx.data(ReportFolder.file("connections"), ReportFolder.file("nodes")),
    )


def _smri_map(ctx, kind):
    image = ctx.report_dir / ReportFolder.SMRI_MAP
    if not image.is_file():
        return None
    mask = ctx.report_dir / ReportFolder.MASK
    d = AttributionMapDisplay.from_image(image, mask if mask.is_file() else None)
    view = (
        "Glass-brain projections (nilearn) of the"
        if kind == "glass"
        else "Axial slices on the MNI152 template (nilearn's packaged copy) of the"
    )
    caption = (
        f"{view} signed mean integrated-gradients attribution per voxel ({d.n_voxels} voxels in the mask, "
        f"MNI space): red pushes towards the positive class, blue away. Voxels below the "
        f"{d.threshold_percentile:g}th percentile of |attribution| ({d.threshold:.2g}) are hidden; the "
        f"symmetric colour scale ends at the {d.vmax_percentile:g}th percentile ({d.vmax:.2g})."
    )
    title = "sMRI attribution (glass brain)" if kind == "glass" else "sMRI attribution (axial slices)"
    return title, d.plot(kind=kind), caption, ctx.data(ReportFolder.SMRI_MAP, ReportFolder.MASK)


def _top_regions(ctx, opts):
    regions = ctx.table("regions")
    if regions is None:
        return None
    value = "contrast" if "contrast" in regions else "stat"
    d = RegionBarDisplay.from_table(regions, top_k=opts["top_k"], value=value)
    atlas = ", ".join(sorted(set(regions["atlas"].dropna().astype(str)))) if "atlas" in regions else "atlas"
    bar = (
        "contrast: the region's summed attribution, mean of cases minus controls (log-odds)"
        if value == "contrast"
        else "signed statistic (cases − controls)"
    )
    return (
        f"Top {len(d.regions)} regions",
        d.plot(),
        f"The {len(d.regions)} top-ranked of {d.n_total} {atlas} regions ({rank_rule(regions)}); "
        f"bar: {bar}, text: permutation p of the case-control contrast (p_perm); "
        f"* p_fwer ≤ 0.05 (max-T), † q_fdr ≤ 0.05 (Benjamini-Hochberg). {ctx.permutation_text()}",
        ctx.data(ReportFolder.file("regions")),
    )


def _ancestry_pcs(ctx, opts):
    ancestry = ctx.table("ancestry")
    if ancestry is None or "PC2" not in ancestry:
        return None
    d = AncestryDisplay.from_table(ancestry)
    s = ctx.settings
    return (
        "Genetic principal components",
        d.plot(),
        f"Genetic principal components of the {len(ancestry)} subjects, from {s.get('n_pruned_snps', '?')} LD-pruned "
        "common SNPs (MAF ≥ 0.05, r² < 0.2 in windows of 50 SNPs; label-free, as PLINK 1.9 --pca), coloured by "
        f"site and marked by diagnosis. All {s.get('n_pcs', d.pcs.shape[1])} components enter the association as "
        "covariates; groups that separate here and differ in case share would confound an unadjusted analysis.",
        ctx.data(ReportFolder.file("ancestry"), ReportFolder.SETTINGS),
    )


# (section, file stem, builder), in report order.
FIGURES = (
    ("Performance", "roc_curves", _roc_curves),
    ("Performance", "reliability", _reliability),
    ("Performance", "confusion_matrix", _confusion_matrix),
    ("Performance", "training_history", _training_history),
    ("Modality contributions", "modality_contributions", _modality_contributions),
    ("Modality contributions", "deletion_curves", _deletion_curves),
    ("Genomics", "manhattan", _manhattan),
    ("Genomics", "qq", _qq),
    ("Genomics", "ancestry_pcs", _ancestry_pcs),
    ("Genomics", "regional_top_locus", _regional_top_locus),
    ("Connectome", "fnc_matrix", _fnc_matrix),
    ("Connectome", "connectome_top_edges", _connectome_top_edges),
    ("Connectome", "connectogram", _connectogram),
    ("Morphology", "smri_glass_brain", lambda ctx, opts: _smri_map(ctx, "glass")),
    ("Morphology", "smri_slices", lambda ctx, opts: _smri_map(ctx, "slices")),
    ("Morphology", "top_regions", _top_regions),
)


def make_figures(report_dir, run_dir=None, *, formats=("png", "pdf"), top_k=20, build="GRCh37", highlight=None):
    """Draw every figure whose inputs exist into ``report_dir/figures``.

    Parameters
    ----------
    report_dir : str or Path
        The explanation folder (``snps.csv``, ``loci.csv``, ``regions.csv``, ``connections.csv``,
        ``nodes.csv``, ``modalities.csv``, ``deletion.csv``, ``smri_attribution.nii.gz``, ``settings.json``).
    run_dir : str, Path or None
        The training run folder (``predictions.csv``, ``metrics.csv``, ``folds/<k>/history.csv``); the run
        recorded in ``settings.json`` when None, and no performance figures when that is absent too.
    formats : sequence of {"png", "pdf", "svg"}, default=("png", "pdf")
        Formats saved per figure (see `save_figure`).
    top_k : int, default=20
        Regions and connections drawn in the top-k figures.
    build : {"GRCh37", "GRCh38"}, default="GRCh37"
        Reference chromosome lengths of the Manhattan plot.
    highlight : str, path-like, sequence of str or None
        SNP ids and gene symbols to mark in the Manhattan plot (the listed SNPs and the SNPs annotated to the
        listed genes): a text file, one per line, ``#`` comments allowed, or a list (see `read_highlight`).
        Names found nowhere in ``snps.csv`` are a `UserWarning`; an unreadable or empty file a `ParameterError`.

    Returns
    -------
    list of FigureFile
        In report order (by section, then figure). A figure whose table is absent is skipped silently; one
        whose table is present but unusable (a required column missing) is skipped with a warning.

    Examples
    --------
    >>> figures = make_figures("run/explanations", "run")  # doctest: +SKIP
    >>> [f.name for f in figures if f.section == "Genomics"]  # doctest: +SKIP
    ['manhattan', 'qq', 'regional_top_locus']
    """
    import matplotlib.pyplot as plt

    ctx = _Context(report_dir, run_dir)
    if not ctx.report_dir.is_dir():
        raise ParameterError(f"report_dir: expected an explanation folder, found nothing at {str(ctx.report_dir)!r}")
    # read before drawing: a bad list is the caller's error, not a figure to skip with a warning
    opts = {"top_k": int(top_k), "build": build, "n_labels": 5, "highlight": read_highlight(highlight)}
    out = ctx.folder.figures
    records = []
    for section, name, builder in FIGURES:
        open_before = set(plt.get_fignums())
        try:
            built = builder(ctx, opts)
        except ValueError as error:
            # A table that is present but not what this figure needs: say so and keep the other figures.
            warnings.warn(f"figure {name!r} skipped: {error}", stacklevel=2)
            for number in set(plt.get_fignums()) - open_before:
                plt.close(number)
            continue
        if built is None:
            continue
        title, display, caption, data = built
        files = save_figure(display.figure_, out, name, formats)
        records.append(FigureFile(name=name, section=section, title=title, caption=caption, files=files, data=data))
    return records
