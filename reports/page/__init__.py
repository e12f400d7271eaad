"""The HTML page: which figures it shows (`make_figures`), its Methods text and its rendering (`render_report`)."""

from ._figure import SECTIONS, FigureFile
from ._figures import make_figures, read_highlight
from ._methods import build_methods
from ._report import render_report

__all__ = ["SECTIONS", "FigureFile", "build_methods", "make_figures", "read_highlight", "render_report"]
