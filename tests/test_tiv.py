"""Total intracranial volume from CAT12 report XMLs or a phenotype column: read at load, an sMRI-only
covariate of the fold adjustment, recorded in the run and named in the Methods."""

from __future__ import annotations

import numpy as np
import pytest

from migtrans.cli import main
from migtrans.data import load_cohort
from migtrans.preprocess import Preprocessor, covariate_columns

CAT12 = """<?xml version="1.0" encoding="utf-8"?>
<S>
  <catlog>CAT12.8 (r2043)</catlog>
  <subjectmeasures>
    <vol_TIV>{tiv}</vol_TIV>
    <vol_abs_CGW>{csf} {gm} {wm} 0 0</vol_abs_CGW>
  </subjectmeasures>
</S>
"""


def _with_tiv(toml, arrays, source="xml", values=None):
    folder = toml.parent
    tiv = np.linspace(1300, 1700, len(arrays["ids"])) if values is None else values
    if source == "xml":
        (folder / "report").mkdir(exist_ok=True)
        for subject, value in zip(arrays["ids"], tiv):
            (folder / "report" / f"cat_{subject}.xml").write_text(CAT12.format(tiv=value, csf=300, gm=700, wm=500))
        extra = 'tiv_xml = "report/cat_{subject_id}.xml"\nspace = "MNI152NLin2009cAsym (CAT12 shooting)"\n'
    else:
        lines = (folder / "phenotypes.tsv").read_text().splitlines()
        lines = [lines[0] + "\tTIV"] + [f"{line}\t{v}" for line, v in zip(lines[1:], tiv)]
        (folder / "phenotypes.tsv").write_text("\n".join(lines) + "\n")
        extra = 'tiv_column = "TIV"\n'
    toml.write_text(toml.read_text() + extra)
    return tiv


@pytest.mark.parametrize("source", ["xml", "column"])
def test_tiv_is_read_and_adjusts_smri_only(tiny_cohort, source):
    toml, arrays = tiny_cohort
    tiv = _with_tiv(toml, arrays, source)
    cohort = load_cohort(toml)
    np.testing.assert_array_equal(cohort.tiv, tiv)
    assert "tiv" in covariate_columns(cohort, "smri") and "tiv" not in covariate_columns(cohort, "fnc")
    # voxels that scale with head size: the adjustment leaves no TIV in them, fitted on the training half
    cohort.voxels = np.asarray(cohort.voxels) + (cohort.tiv[:, None] - 1500) / 400
    train = np.arange(0, cohort.n_subjects, 2)
    values = Preprocessor().fit(cohort, train, ("smri",), adjust="regress").transform(cohort, train, volumes=False)
    r = np.corrcoef(cohort.tiv[train], values["voxels"].T)[0, 1:]
    assert np.nanmax(np.abs(r)) < 1e-4
    raw = Preprocessor().fit(cohort, train, ("smri",), adjust="none").transform(cohort, train, volumes=False)
    assert np.nanmax(np.abs(np.corrcoef(cohort.tiv[train], raw["voxels"].T)[0, 1:])) > 0.9


def test_the_run_records_space_and_tiv_source(tiny_cohort, tmp_path):
    import json

    from migtrans.training import TrainConfig, train

    from conftest import TINY_MODEL

    toml, arrays = tiny_cohort
    _with_tiv(toml, arrays)
    run = train(toml, tmp_path / "run", TrainConfig(n_folds=2, epochs=1, batch_size=4), TINY_MODEL, progress=False)
    manifest = json.loads((run.out_dir / "manifest.json").read_text())
    assert manifest["smri_space"] == "MNI152NLin2009cAsym (CAT12 shooting)" and manifest["tiv_source"] == "cat12_xml"
    assert any(path.endswith("cat_s03.xml") for path in manifest["inputs"])  # checksummed like every input


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / "report" / "cat_s03.xml").unlink(), "CAT12 report file not found"),
        (lambda f: (f / "report" / "cat_s03.xml").write_text("<S><x>1</x></S>"), "no <vol_TIV> element"),
        (lambda f: (f / "report" / "cat_s03.xml").write_text("<S><vol_TIV>-3</vol_TIV></S>"), "positive number"),
        (lambda f: (f / "report" / "cat_s03.xml").write_text("<S><vol_TIV>"), "not a readable CAT12 report XML"),
        (
            lambda f: (f / "cohort.toml").write_text((f / "cohort.toml").read_text() + 'tiv_column = "TIV"\n'),
            "one TIV source",
        ),
    ],
)
def test_tiv_errors_are_one_line_naming_file_and_subject(tiny_cohort, damage, message, capsys):
    toml, arrays = tiny_cohort
    _with_tiv(toml, arrays)
    damage(toml.parent)
    assert main(["info", str(toml)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    if "cat_s03" in err[0]:
        assert "s03" in err[0]
