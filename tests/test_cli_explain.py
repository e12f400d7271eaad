"""`migtrans-explain`: a report folder from a run (or --demo), one-line errors, never half a report."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from reports import cli
from reports import demo as run_demo

from conftest import files_under

FAST = ["--permutations", "39", "--ig-steps", "4", "--top-k", "5", "--device", "cpu"]


def _leftovers(parent: Path) -> list[str]:
    """Staging folders left beside the output (there must be none after success or failure)."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def report(baseline_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("explain") / "report"
    status = cli.main([str(baseline_run.out_dir), "--out", str(out), *FAST, "--formats", "png,svg", "--quiet"])
    assert status == 0
    return out


def test_report_folder_holds_the_report_tables_maps_and_run_summary(report):
    assert (report / "report.html").stat().st_size > 10_000
    for name in ("snps", "loci", "regions", "connections", "nodes", "modalities", "subjects", "ablation", "deletion"):
        assert (report / f"{name}.csv").is_file(), name
    assert (report / "smri_attribution.nii.gz").is_file()
    for name in ("metrics.csv", "predictions.csv", "config.toml", "manifest.json", "folds/1/history.csv"):
        assert (report / "run" / name).is_file(), name
    assert not list((report / "run").glob("folds/*/model.pt"))  # checkpoints stay in the run
    figures = report / "figures"
    assert (figures / "manhattan.png").is_file() and (figures / "manhattan.svg").is_file()
    assert not list(figures.glob("*.pdf"))  # only the formats asked for
    assert _leftovers(report.parent) == []


def test_every_relative_link_in_the_report_resolves(report):
    import re

    html = (report / "report.html").read_text()
    links = set(re.findall(r'href="([^"#:]+)"', html))
    assert links, "the report links its CSV files"
    missing = [link for link in links if not (report / link).exists()]
    assert missing == []


def test_existing_output_is_refused_and_kept(baseline_run, report, capsys):
    before = files_under(report)
    status = cli.main([str(baseline_run.out_dir), "--out", str(report), *FAST])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1 and "--overwrite" in err
    assert files_under(report) == before


@pytest.mark.parametrize(
    "case",
    ["missing_run", "missing_fold", "bad_format", "bad_atlas", "zero_perms", "demo_with_run", "no_run", "baseline_run"],
)
def test_bad_invocations_are_one_line_and_write_nothing(case, baseline_run, sim_cohort, tmp_path, capsys):
    run = str(baseline_run.out_dir)
    out = tmp_path / "out" / "report"
    extra = []
    if case == "missing_run":
        run = str(tmp_path / "nope")
    elif case == "missing_fold":
        shutil.copytree(baseline_run.out_dir, tmp_path / "broken")
        shutil.rmtree(tmp_path / "broken/folds/2")
        run = str(tmp_path / "broken")
    elif case == "bad_format":
        extra = ["--formats", "png,tiff"]
    elif case == "bad_atlas":
        extra = ["--atlas", str(tmp_path / "atlas.nii.gz")]
    elif case == "zero_perms":
        extra = ["--permutations", "0"]
    elif case == "demo_with_run":
        extra = ["--demo"]
    elif case == "baseline_run":
        from migtrans.training import TrainConfig, train

        run = str(
            train(
                sim_cohort.toml_path, tmp_path / "logistic", TrainConfig(n_folds=2, model="logistic"), progress=False
            ).out_dir
        )
    argv = ([] if case == "no_run" else [run]) + ["--out", str(out), *FAST, *extra]
    status = cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1 and err.startswith("migtrans-explain: error:"), err
    assert "Traceback" not in err
    assert not out.exists()
    assert not (tmp_path / "out").exists() or _leftovers(tmp_path / "out") == []


def test_a_failure_midway_leaves_no_partial_report(baseline_run, tmp_path, monkeypatch):
    from reports import _build

    def broken(*args, **kwargs):
        raise RuntimeError("figure backend crashed")

    monkeypatch.setattr(_build, "make_figures", broken)
    out = tmp_path / "report"
    with pytest.raises(RuntimeError, match="crashed"):
        cli.main([str(baseline_run.out_dir), "--out", str(out), *FAST, "--quiet", "--no-faithfulness"])
    assert not out.exists() and _leftovers(tmp_path) == []


def test_overwrite_replaces_a_report(baseline_run, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    from migtrans.utils import mark_output

    mark_output(out, "report")  # an earlier report (only those are replaced)
    (out / "stale.txt").write_text("old")
    status = cli.main(
        [str(baseline_run.out_dir), "--out", str(out), *FAST, "--quiet", "--no-faithfulness", "--overwrite"]
    )
    assert status == 0 and (out / "report.html").is_file() and not (out / "stale.txt").exists()
    assert not (out / "deletion.csv").exists()  # --no-faithfulness


def test_demo_simulates_trains_and_reports(tmp_path):
    report = run_demo(
        tmp_path / "demo",
        n_subjects=40,
        n_snps=200,
        n_folds=2,
        epochs=2,
        n_permutations=39,
        n_steps=4,
        faithfulness=False,
        device="cpu",
        progress=False,
    )
    folder = report.parent
    assert report.name == "report.html" and report.is_file()
    assert (folder / "cohort/truth.json").is_file() and (folder / "run/folds/2/model.pt").is_file()
    snps = pd.read_csv(folder / "snps.csv")
    removed = pd.read_csv(folder / "qc.csv").query("level == 'snp'")
    assert len(snps) + len(removed) == 200 and snps["rank"].tolist() == list(range(1, len(snps) + 1))
    assert (folder / "ancestry.csv").is_file() and (folder / "figures/ancestry_pcs.png").is_file()
    # the run moved with the report folder and still opens from there
    from migtrans.training import open_run

    assert open_run(folder / "run").cohort_path == (folder / "cohort/cohort.toml").resolve()
    assert "Demo cohort" in report.read_text()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("options, word", [(dict(n_permutations=20), "at least 39"), (dict(null="retraining"), "null")])
def test_demo_refuses_what_its_new_run_cannot_test_before_simulating(tmp_path, options, word):
    from migtrans.exceptions import ParameterError

    with pytest.raises(ParameterError, match=word):
        run_demo(tmp_path / "demo", n_subjects=40, n_snps=200, n_folds=2, progress=False, **options)
    assert not (tmp_path / "demo").exists()


def _readme_columns() -> dict:
    """file -> documented column names, from the README's column table."""
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme[readme.index("Columns of every CSV") :]
    out = {}
    lines = table.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| `"))
    for line in lines[first:]:
        if not line.startswith("| `"):
            break
        name, columns = line.split("|")[1:3]
        # backticked names, minus those quoted inside parenthesised explanations (e.g. `mean`, `sd`)
        out[name.strip().strip("`")] = re.findall(r"`([^`]+)`", re.sub(r"\([^)]*\)", "", columns))
    return out


def test_readme_documents_every_csv_column(report):
    documented = _readme_columns()
    csvs = sorted(p.relative_to(report).as_posix() for p in report.rglob("*.csv"))
    assert csvs, "the report has CSV files"
    for rel in csvs:
        key = "run/folds/<k>/history.csv" if rel.startswith("run/folds/") else rel
        assert key in documented, f"{rel} is not documented in the README"
        header = pd.read_csv(report / rel, nrows=0).columns.tolist()
        allowed = set(documented[key])
        # per-modality columns are documented once with a <modality> placeholder
        allowed |= {c.replace("<modality>", m) for c in documented[key] for m in ("snp", "fnc", "smri")}
        assert set(header) <= allowed, f"{rel}: undocumented columns {sorted(set(header) - allowed)}"
        required = {
            c
            for c in documented[key]
            if "<" not in c and c not in ("note", "label_name", "val_loss", "val_auc") and c != "site"
        }
        assert required <= set(header), f"{rel}: documented but missing {sorted(required - set(header))}"


def test_report_files_keep_the_fold_records_and_the_users_permissions(report):
    """The history figure's best-epoch dots need each fold's fold.json in the copied run; every file is as
    readable as a plain open() under the user's umask would make it (none private like a mkstemp file)."""
    import os

    for k in (1, 2):
        assert (report / "run" / "folds" / str(k) / "fold.json").is_file()
    mask = os.umask(0o022)
    os.umask(mask)
    modes = {str(p.relative_to(report)): p.stat().st_mode & 0o777 for p in report.rglob("*") if p.is_file()}
    wrong = {name: oct(mode) for name, mode in modes.items() if mode != 0o666 & ~mask}
    assert wrong == {}


def test_tables_only_rebuilds_the_same_tables_from_saved_attributions(baseline_run, report, tmp_path):
    """Nothing changed: every table equals the full run's, bit for bit, and no attribution is recomputed."""
    from explain import ExplanationFolder

    out = tmp_path / "again"
    argv = [str(baseline_run.out_dir), "--out", str(out), "--tables-only", "--from", str(report), *FAST]
    assert cli.main([*argv, "--formats", "png", "--quiet"]) == 0
    for name in (*ExplanationFolder.RESULT_TABLES, *ExplanationFolder.COHORT_TABLES, "ablation", "deletion"):
        if (report / f"{name}.csv").is_file():
            assert (out / f"{name}.csv").read_bytes() == (report / f"{name}.csv").read_bytes(), name
    for name in ("snp.npy", "fnc.npy", "smri.npy", "subjects.csv", ExplanationFolder.BRAINNET_EDGES):
        assert (out / name).read_bytes() == (report / name).read_bytes(), name
    assert (out / "report.html").is_file() and "figures" in {p.name for p in out.iterdir()}


def test_tables_only_takes_a_new_atlas_in_place(baseline_run, report, tmp_path):
    import json

    folder = tmp_path / "copy"
    shutil.copytree(report, folder)
    before = (folder / "regions.csv").read_text()
    argv = [str(baseline_run.out_dir), "--out", str(folder), "--tables-only", "--overwrite", *FAST]
    assert cli.main([*argv, "--atlas", "harvard-oxford", "--formats", "png", "--quiet"]) == 0
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["atlas"] == "harvard-oxford" and settings["tables_rebuilt_from"] == str(folder)
    assert (folder / "regions.csv").read_text() != before
    assert (folder / "snp.npy").read_bytes() == (report / "snp.npy").read_bytes()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--from", "x"], "--from: names the folder --tables-only rebuilds from"),
        (["--tables-only", "--from", "nowhere"], "holds no saved attributions"),
    ],
)
def test_tables_only_refuses_in_one_line(extra, words, baseline_run, tmp_path, capsys):
    argv = [
        str(baseline_run.out_dir),
        "--out",
        str(tmp_path / "r"),
        *[str(tmp_path / e) if e in ("x", "nowhere") else e for e in extra],
        *FAST,
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert not (tmp_path / "r").exists()


def test_highlight_marks_a_users_snps_and_a_missing_list_fails_first(baseline_run, report, tmp_path, capsys):
    snps = pd.read_csv(report / "snps.csv", dtype={"snp": str})
    wanted = tmp_path / "mine.txt"
    wanted.write_text(f"# my candidates\n{snps['snp'].iloc[0]}\nNOT_A_GENE\n")
    out = tmp_path / "hl"
    argv = [str(baseline_run.out_dir), "--out", str(out), "--tables-only", "--from", str(report), *FAST]
    assert cli.main([*argv, "--formats", "png", "--quiet", "--highlight", str(wanted)]) == 0
    html = (out / "report.html").read_text()
    assert "Highlighted SNPs" in html and snps["snp"].iloc[0] in html and "NOT_A_GENE" in html
    missing = tmp_path / "none.txt"
    assert cli.main([*argv[:2], str(tmp_path / "x"), *argv[3:], "--highlight", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err, err
    assert not (tmp_path / "x").exists()
