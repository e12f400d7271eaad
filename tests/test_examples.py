"""The examples run end to end at tiny settings, so they cannot rot."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd

from migtrans import load_cohort

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_writes_a_report_and_ranks_the_planted_snps(tmp_path, capsys):
    report = _load("quickstart").main(
        [
            "--out",
            str(tmp_path / "qs"),
            "--subjects",
            "40",
            "--snps",
            "200",
            "--folds",
            "2",
            "--epochs",
            "2",
            "--permutations",
            "39",
            "--ig-steps",
            "4",
        ]
    )
    out = capsys.readouterr().out
    assert "planted causal SNPs" in out and "4/4 report" in out
    assert report == tmp_path / "qs/report/report.html" and report.is_file()
    planted = [s["snp"] for s in json.loads((tmp_path / "qs/cohort/truth.json").read_text())["causal_snps"]]
    ranks = [line for line in out.splitlines() if " rank " in line]
    assert len(ranks) == len(planted) > 0 and all(any(snp in line for line in ranks) for snp in planted)
    for name in ("snps", "loci", "regions", "connections", "nodes", "modalities"):
        assert (report.parent / f"{name}.csv").is_file()


def test_bring_your_own_cohort_toml_reads_a_cohort_laid_out_like_it(sim_cohort, tmp_path):
    folder = tmp_path / "mine"
    shutil.copytree(sim_cohort.out_dir, folder)
    shutil.copy(EXAMPLES / "my_cohort.toml", folder / "my_cohort.toml")
    cohort = load_cohort(folder / "my_cohort.toml")
    assert cohort.n_subjects == 40 and cohort.modalities == ("snp", "fnc", "smri")
    assert list(cohort.covariates.columns) == ["age", "sex"]


def test_paper_results_regenerates_table_and_figures(baseline_run, tmp_path, capsys):
    from reports import cli

    assert (
        cli.main(
            [
                str(baseline_run.out_dir),
                "--out",
                str(tmp_path / "report"),
                "--permutations",
                "39",
                "--ig-steps",
                "4",
                "--no-faithfulness",
                "--quiet",
            ]
        )
        == 0
    )
    written = _load("paper_results").main(
        [
            str(baseline_run.out_dir),
            "--report",
            str(tmp_path / "report"),
            "--out",
            str(tmp_path / "paper"),
            "--formats",
            "pdf,png",
        ]
    )
    names = sorted(p.name for p in written)
    assert names == sorted(
        [
            "table_models.csv",
            "table_models.md",
            "table_models.tex",
            "figure_manhattan.png",
            "figure_manhattan.pdf",
            "figure_connectome.png",
            "figure_connectome.pdf",
            "figure_glass_brain.png",
            "figure_glass_brain.pdf",
        ]
    )
    table = pd.read_csv(tmp_path / "paper/table_models.csv")
    metrics = pd.read_csv(baseline_run.out_dir / "metrics.csv", dtype={"fold": str}).set_index("fold")
    assert table.loc[0, "accuracy_mean"] == metrics.loc["mean", "accuracy"]
    tex = (tmp_path / "paper/table_models.tex").read_text()
    assert tex.count(r"\pm") == 7 and r"\toprule" in tex  # one per metric, the Brier score included
