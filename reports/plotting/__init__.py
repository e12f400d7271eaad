"""Figures as Display objects: built from the explanation tables (`from_*`), drawn by `plot`; and `save_figure`."""

from ._ancestry import AncestryDisplay
from ._brain import AttributionMapDisplay, RegionBarDisplay
from ._calibration import ReliabilityDisplay
from ._connectome import ConnectogramDisplay, ConnectomeDisplay, FNCMatrixDisplay
from ._contributions import DeletionCurveDisplay, ModalityContributionDisplay
from ._display import Display
from ._genomics import ManhattanDisplay, QQDisplay, RegionalDisplay, significance_threshold
from ._performance import ConfusionDisplay, MetricsTableDisplay, RocCurvesDisplay, TrainingHistoryDisplay
from ._save import save_figure

__all__ = [
    "AncestryDisplay",
    "AttributionMapDisplay",
    "ConfusionDisplay",
    "ConnectogramDisplay",
    "ConnectomeDisplay",
    "DeletionCurveDisplay",
    "Display",
    "FNCMatrixDisplay",
    "ManhattanDisplay",
    "MetricsTableDisplay",
    "ModalityContributionDisplay",
    "QQDisplay",
    "RegionBarDisplay",
    "ReliabilityDisplay",
    "RegionalDisplay",
    "RocCurvesDisplay",
    "TrainingHistoryDisplay",
    "save_figure",
    "significance_threshold",
]
