"""The examples run end to end at tiny settings, so they cannot rot."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_runs_and_writes_every_table(tmp_path, capsys):
    attributions = _load("quickstart").main(["--out", str(tmp_path / "demo"), "--subjects", "40", "--snps", "200",
                                             "--folds", "2", "--epochs", "2", "--permutations", "19"])
    out = capsys.readouterr().out
    assert "planted causal SNPs" in out and "3/3" in out
    folder = tmp_path / "demo/run/explanations"
    for name in ("snps", "loci", "regions", "connections", "nodes", "modalities"):
        assert (folder / f"{name}.csv").is_file()
    assert len(attributions.subjects) == 40
