"""The report folder: its layout (`ReportFolder`, the one reader of its files) and what the page reads from it."""

from ._inputs import ReportInputs, load_inputs, rank_rule
from ._report_folder import ReportFolder, read_table

__all__ = ["ReportFolder", "ReportInputs", "load_inputs", "rank_rule", "read_table"]
