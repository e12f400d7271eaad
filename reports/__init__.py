"""Figures and the self-contained HTML report built from a run's explanation tables (`migtrans-explain`).

Figures are drawn from the CSV tables that `explain` writes, never recomputing statistics; the report
embeds them with the ranked tables, the Methods text and the provenance of the run.
"""

from ._build import demo, explain_and_report
from .folder import ReportFolder
from .page import SECTIONS, FigureFile, build_methods, make_figures, render_report
from .plotting import (
    AttributionMapDisplay,
    ConfusionDisplay,
    ConnectogramDisplay,
    ConnectomeDisplay,
    DeletionCurveDisplay,
    FNCMatrixDisplay,
    ManhattanDisplay,
    MetricsTableDisplay,
    ModalityContributionDisplay,
    QQDisplay,
    RegionalDisplay,
    RegionBarDisplay,
    RocCurvesDisplay,
    TrainingHistoryDisplay,
    save_figure,
    significance_threshold,
)

__all__ = [
    "SECTIONS",
    "AttributionMapDisplay",
    "ConfusionDisplay",
    "ConnectogramDisplay",
    "ConnectomeDisplay",
    "DeletionCurveDisplay",
    "FNCMatrixDisplay",
    "FigureFile",
    "ManhattanDisplay",
    "MetricsTableDisplay",
    "ModalityContributionDisplay",
    "QQDisplay",
    "RegionBarDisplay",
    "ReportFolder",
    "RegionalDisplay",
    "RocCurvesDisplay",
    "TrainingHistoryDisplay",
    "build_methods",
    "demo",
    "explain_and_report",
    "make_figures",
    "render_report",
    "save_figure",
    "significance_threshold",
]
