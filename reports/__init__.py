"""Figures and the self-contained HTML report built from a run's explanation tables (`migtrans-explain`).

Figures are drawn from the CSV tables that `explain` writes, never recomputing statistics; the report
embeds them with the ranked tables, the Methods text and the provenance of the run.
"""

from ._brain import AttributionMapDisplay, RegionBarDisplay
from ._build import demo, explain_and_report
from ._connectome import ConnectogramDisplay, ConnectomeDisplay, FNCMatrixDisplay
from ._contributions import DeletionCurveDisplay, ModalityContributionDisplay
from ._figure import SECTIONS, FigureFile
from ._figures import make_figures
from ._folder import ReportFolder
from ._genomics import ManhattanDisplay, QQDisplay, RegionalDisplay, significance_threshold
from ._methods import build_methods
from ._performance import ConfusionDisplay, MetricsTableDisplay, RocCurvesDisplay, TrainingHistoryDisplay
from ._report import render_report
from ._save import save_figure

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
