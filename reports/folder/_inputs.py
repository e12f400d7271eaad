"""Read what the report shows: the explanation folder (tables, settings) and the run folder (config, manifest,
metrics). Every file is optional except the report folder itself; what could not be read is said, not raised."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from migtrans import ParameterError

from ._report_folder import ReportFolder

# Explanation tables the report knows, by file stem.
TABLE_FILES = ReportFolder.TABLES


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
    folder = ReportFolder(report_dir, run_dir)
    inputs = ReportInputs(
        report_dir=report_dir, run_dir=folder.run_dir, settings=folder.read_settings(), problems=folder.problems
    )
    for name in TABLE_FILES:
        table = folder.read_result(name, blank_text=True)
        if table is not None:
            inputs.tables[name] = table
    run = folder.run
    if run is not None:
        inputs.config = folder.read_toml(run.config)
        inputs.manifest = folder.read_json(run.manifest)
        inputs.metrics = folder.read_csv(run.metrics, blank_text=True)
        inputs.predictions = folder.read_csv(run.predictions, blank_text=True)
        held = folder.read_csv(run.explanation_predictions, blank_text=True)
        if inputs.predictions is not None and held is not None:
            inputs.predictions = pd.concat([inputs.predictions, held], ignore_index=True)
        cohort = inputs.config.get("run", {}).get("cohort")
        if cohort and Path(cohort).is_file():
            inputs.cohort = folder.read_toml(Path(cohort))
            inputs.cohort_path = Path(cohort)
    return inputs
