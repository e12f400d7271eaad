"""`ReportFolder`: the report folder's layout and its one reader. An explanation folder (`explain.ExplanationFolder`)
with ``figures/``, a summary copy of the run (``run/``, a `RunFolder`) and ``report.html`` added; the page
(`load_inputs`) and the figures (`make_figures`) read every file through it, each file once."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from explain import ExplanationFolder
from migtrans.training import RunFolder

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TEXT_COLUMNS = ExplanationFolder.TEXT_COLUMNS


def read_table(path, *, blank_text=False) -> pd.DataFrame:
    """A result CSV with its identifier columns read as text (chromosome "1" stays "1"); with
    ``blank_text`` a missing identifier becomes "" (for display) instead of NaN."""
    head = pd.read_csv(path, nrows=0)
    dtype = {c: str for c in head.columns if c in TEXT_COLUMNS}
    table = pd.read_csv(path, dtype=dtype)
    if blank_text:
        for c in dtype:
            table[c] = table[c].astype(object).where(table[c].notna(), "")
    return table


class ReportFolder(ExplanationFolder):
    """A report folder, read once: every file is optional but the folder itself, and a file that exists but
    cannot be read is a line in `problems`, not an exception.

    Parameters
    ----------
    path : path-like
        The report (or explanation) folder.
    run_dir : path-like, optional
        The run folder behind it; default: the ``run`` recorded in ``settings.json``.
    """

    FIGURES = "figures"
    REPORT = "report.html"
    RUN = "run"  # the run's small files, copied so that every link resolves inside the folder
    #: every table the report knows, by name
    TABLES = (
        *ExplanationFolder.RESULT_TABLES,
        "subjects",
        *ExplanationFolder.CHECK_TABLES,
        *ExplanationFolder.COHORT_TABLES,
    )

    def __init__(self, path, run_dir=None):
        super().__init__(path)
        self.problems: list[str] = []
        self._cache = {}
        if run_dir is None and self.read_settings().get("run"):
            run_dir = self.read_settings()["run"]
        self.run_dir = Path(run_dir) if run_dir is not None else None

    figures = property(lambda self: self.path / self.FIGURES)
    report = property(lambda self: self.path / self.REPORT)

    @property
    def run(self) -> RunFolder | None:
        """The run folder behind the report (None when unknown or gone)."""
        return RunFolder(self.run_dir) if self.run_dir is not None and self.run_dir.is_dir() else None

    def _read(self, path: Path, reader, default=None):
        key = (str(path), reader)
        if key not in self._cache:
            value = default
            if path.is_file():
                try:
                    value = reader(path)
                except (OSError, ValueError, UnicodeDecodeError, tomllib.TOMLDecodeError, pd.errors.ParserError) as exc:
                    self.problems.append(f"{path.name}: could not be read ({type(exc).__name__}: {exc})")
            self._cache[key] = value
        return self._cache[key]

    def read_settings(self) -> dict:
        return self._read(self.settings, _json, {}) or {}

    def read_csv(self, path, *, blank_text=False) -> pd.DataFrame | None:
        """Any CSV of the report or its run, identifiers as text; None when absent."""
        return self._read(Path(path), _display_table if blank_text else read_table)

    def read_result(self, name, *, blank_text=False) -> pd.DataFrame | None:
        """Table ``name`` of the report (`TABLES`); None when absent."""
        return self.read_csv(self.table(name), blank_text=blank_text)

    def read_toml(self, path) -> dict:
        return self._read(Path(path), _toml, {}) or {}

    def read_json(self, path) -> dict:
        return self._read(Path(path), _json, {}) or {}


def _display_table(path):
    return read_table(path, blank_text=True)


def _json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _toml(path):
    with open(path, "rb") as fh:
        return tomllib.load(fh)


__all__ = ["ReportFolder", "read_table"]
