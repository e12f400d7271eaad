"""Read what the report shows: the explanation folder (tables, settings) and the run folder (config, manifest,
metrics). Every file is optional except the report folder itself; what could not be read is said, not raised."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from migtrans import ParameterError
from migtrans.training import RunFolder

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# Explanation tables the report knows, by file stem.
TABLE_FILES = ("snps", "loci", "regions", "connections", "nodes", "modalities", "subjects", "ablation", "deletion")
# Identifier columns read as text, so that "1" stays a chromosome name and "<script>" stays a string.
_TEXT_COLUMNS = (
    "snp",
    "a1",
    "a2",
    "gene",
    "genes",
    "locus",
    "lead_snp",
    "region",
    "atlas",
    "node",
    "node_i",
    "node_j",
    "domain",
    "domain_i",
    "domain_j",
    "subject_id",
    "modality",
    "note",
    "label_name",
    "chrom",
)


@dataclass
class ReportInputs:
    """Everything read from the report and run folders.

    Attributes
    ----------
    report_dir, run_dir : Path
        ``run_dir`` is None when it was neither given nor recorded in ``settings.json``.
    settings, config, manifest, cohort : dict
        ``settings.json``, the run's ``config.toml``, ``manifest.json`` and the cohort's TOML (empty when absent).
    cohort_path : Path or None
        The cohort TOML named by the run config, when it could be read.
    metrics, predictions : DataFrame or None
        ``predictions`` holds every subject of the run: the out-of-fold predictions, then the explanation
        set's (``fold`` = ``explanation_set``) when the run has one.
    tables : dict of str -> DataFrame
        The explanation tables present (keys from `TABLE_FILES`).
    problems : list of str
        Files that exist but could not be read, one line each.
    """

    report_dir: Path
    run_dir: Path | None
    settings: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    cohort: dict = field(default_factory=dict)
    cohort_path: Path | None = None
    metrics: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None
    tables: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)

    @property
    def run_label(self) -> str:
        """The run folder as the explanation recorded it (the report may read a copy of its summary)."""
        return str(self.settings.get("run") or self.run_dir or "")

    @property
    def train(self) -> dict:
        return self.config.get("train", {})

    @property
    def model(self) -> dict:
        return self.config.get("model", {})

    def metric(self, name: str, row: str = "mean") -> float | None:
        """A row (``mean``, ``sd`` or ``explanation_set``) of ``metrics.csv``, or None."""
        if self.metrics is None or name not in self.metrics or "fold" not in self.metrics:
            return None
        hit = self.metrics.loc[self.metrics["fold"].astype(str) == row, name]
        return float(hit.iloc[0]) if len(hit) and pd.notna(hit.iloc[0]) else None


def rank_rule(table) -> str:
    """What rank 1 of a result table means: the largest contrast, or (tables written before the contrast
    column existed) the smallest p_perm."""
    if "contrast" in table.columns:
        return "largest contrast, the mean log-odds gap between cases and controls"
    return "smallest permutation p"


def read_table(path, *, blank_text=False) -> pd.DataFrame:
    """A result CSV with its identifier columns read as text (chromosome "1" stays "1"); with
    ``blank_text`` a missing identifier becomes "" (for display) instead of NaN."""
    head = pd.read_csv(path, nrows=0)
    dtype = {c: str for c in head.columns if c in _TEXT_COLUMNS}
    table = pd.read_csv(path, dtype=dtype)
    if blank_text:
        for c in dtype:
            table[c] = table[c].astype(object).where(table[c].notna(), "")
    return table


def _read_csv(path: Path) -> pd.DataFrame:
    return read_table(path, blank_text=True)


def _read(path: Path, reader, problems: list, default=None):
    if not path.is_file():
        return default
    try:
        return reader(path)
    except (OSError, ValueError, UnicodeDecodeError, tomllib.TOMLDecodeError, pd.errors.ParserError) as exc:
        problems.append(f"{path.name}: could not be read ({type(exc).__name__}: {exc})")
        return default


def _json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _toml(path):
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def load_inputs(report_dir, run_dir=None) -> ReportInputs:
    """Read the report folder and, when known, the run folder behind it.

    Parameters
    ----------
    report_dir : path-like
        The explanation folder (``snps.csv``, ..., ``settings.json``).
    run_dir : path-like, optional
        The training run folder. Default: the ``run`` recorded in ``settings.json``.

    Returns
    -------
    ReportInputs
    """
    report_dir = Path(report_dir)
    if not report_dir.is_dir():
        raise ParameterError(f"report_dir: expected an explanation folder, found {str(report_dir)!r} (no such folder)")
    problems: list[str] = []
    settings = _read(report_dir / "settings.json", _json, problems, {}) or {}
    if run_dir is None and settings.get("run"):
        run_dir = settings["run"]
    run_dir = Path(run_dir) if run_dir is not None else None
    inputs = ReportInputs(report_dir=report_dir, run_dir=run_dir, settings=settings, problems=problems)
    for name in TABLE_FILES:
        table = _read(report_dir / f"{name}.csv", _read_csv, problems)
        if table is not None:
            inputs.tables[name] = table
    if run_dir is not None and run_dir.is_dir():
        run = RunFolder(run_dir)
        inputs.config = _read(run.config, _toml, problems, {}) or {}
        inputs.manifest = _read(run.manifest, _json, problems, {}) or {}
        inputs.metrics = _read(run.metrics, _read_csv, problems)
        inputs.predictions = _read(run.predictions, _read_csv, problems)
        held = _read(run.explanation_predictions, _read_csv, problems)
        if inputs.predictions is not None and held is not None:
            inputs.predictions = pd.concat([inputs.predictions, held], ignore_index=True)
        cohort = inputs.config.get("run", {}).get("cohort")
        if cohort and Path(cohort).is_file():
            inputs.cohort = _read(Path(cohort), _toml, problems, {}) or {}
            inputs.cohort_path = Path(cohort)
    return inputs
