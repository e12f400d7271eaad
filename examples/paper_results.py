"""Regenerate the paper-style results from finished runs and a report folder: the model comparison table
(mean ± SD over folds, as CSV, Markdown and LaTeX) and the main figures as vector files.

    python examples/paper_results.py runs/all runs/snp runs/fnc runs/smri runs/logistic \\
        --report reports/all --out paper

Nothing is recomputed: the table comes from each run's metrics.csv, the figures from the report's tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import pandas as pd

from migtrans.training import compare_runs, format_comparison
from reports import AttributionMapDisplay, ConnectomeDisplay, ManhattanDisplay, save_figure


def latex_table(table: pd.DataFrame) -> str:
    """The comparison as a LaTeX tabular (booktabs): accuracy-type metrics in percent, AUC as a fraction."""
    from migtrans.training import METRIC_COLUMNS

    names = {
        "accuracy": "Accuracy",
        "balanced_accuracy": "Balanced acc.",
        "precision": "Precision",
        "recall": "Recall",
        "f1": "F1",
        "roc_auc": "ROC AUC",
        "brier": "Brier",
    }
    header = ["Run", "Model", "Modalities", *(names[m] for m in METRIC_COLUMNS)]
    lines = [
        r"\begin{tabular}{lll" + "c" * len(METRIC_COLUMNS) + "}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
    ]
    for _, row in table.iterrows():
        cells = [str(row["run"]).replace("_", r"\_"), row["model"], row["modalities"].replace("+", " + ")]
        for metric in METRIC_COLUMNS:
            mean, sd = row[f"{metric}_mean"], row[f"{metric}_sd"]
            cells.append(
                f"{mean:.3f} $\\pm$ {sd:.3f}"
                if metric in ("roc_auc", "brier")
                else f"{100 * mean:.1f} $\\pm$ {100 * sd:.1f}"
            )
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (migtrans train)")
    parser.add_argument("--report", help="a report folder (migtrans-explain) for the figures")
    parser.add_argument("--out", default="paper", help="output folder (default paper)")
    parser.add_argument("--formats", default="pdf,svg,png", help="figure formats (default pdf,svg,png)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    table = compare_runs(args.runs)
    table.to_csv(out / "table_models.csv", index=False)
    (out / "table_models.md").write_text(format_comparison(table) + "\n")
    (out / "table_models.tex").write_text(latex_table(table))
    print(format_comparison(table))
    written = [out / "table_models.csv", out / "table_models.md", out / "table_models.tex"]

    if args.report:
        report = Path(args.report)
        formats = tuple(args.formats.split(","))
        if (report / "snps.csv").is_file():
            display = ManhattanDisplay.from_table(pd.read_csv(report / "snps.csv")).plot()
            written += save_figure(display.figure_, out / "figures", "figure_manhattan", formats)
        if (report / "connections.csv").is_file() and (report / "nodes.csv").is_file():
            display = ConnectomeDisplay.from_tables(
                pd.read_csv(report / "connections.csv"), pd.read_csv(report / "nodes.csv"), top_k=20
            ).plot()
            written += save_figure(display.figure_, out / "figures", "figure_connectome", formats)
        if (report / "smri_attribution.nii.gz").is_file():
            display = AttributionMapDisplay.from_image(nib.load(report / "smri_attribution.nii.gz")).plot(kind="glass")
            written += save_figure(display.figure_, out / "figures", "figure_glass_brain", formats)
    print(f"written: {', '.join(str(p) for p in written)}")
    return written


if __name__ == "__main__":
    main()
