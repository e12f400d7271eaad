"""Total intracranial volume (TIV) of each subject, from CAT12's per-subject report XML (``<vol_TIV>``, in cm³)
or from a column of the phenotype table."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import numpy as np
import pandas as pd

from ..exceptions import CohortError
from ._files import check_file, subject_path


def read_cat12_tiv(template: str, subjects) -> np.ndarray:
    """TIV of every subject from CAT12 report files (``report/cat_<subject>.xml``), float64.

    CAT12 writes the volumes of its segmentation under ``subjectmeasures``; ``vol_TIV`` is the total
    intracranial volume in cm³. The first ``vol_TIV`` element of the file is read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "cat_s1.xml").write_text("<S><subjectmeasures><vol_TIV>1432.5</vol_TIV></subjectmeasures></S>")
    >>> read_cat12_tiv(str(folder / "cat_{subject_id}.xml"), ["s1"]).tolist()
    [1432.5]
    """
    values = np.empty(len(subjects))
    for i, subject in enumerate(subjects):
        path = subject_path(template, subject)
        if not path.is_file():
            raise CohortError("CAT12 report file not found ([smri] tiv_xml)", file=path, subject=subject)
        check_file(path)
        try:
            root = ElementTree.parse(path).getroot()
        except ElementTree.ParseError as exc:
            raise CohortError(f"not a readable CAT12 report XML ({exc})", file=path, subject=subject) from None
        element = root if root.tag == "vol_TIV" else root.find(".//vol_TIV")
        text = None if element is None else (element.text or "").strip()
        if not text:
            raise CohortError("no <vol_TIV> element (a CAT12 report XML holds one)", file=path, subject=subject)
        values[i] = _positive(text, path, subject)
    return values


def tiv_from_column(table: pd.DataFrame, column: str, subjects, file) -> np.ndarray:
    """TIV of every subject from a phenotype-table column, float64."""
    if column not in table.columns:
        raise CohortError(f"[smri] tiv_column {column!r} is not a column of the phenotype table", file=file)
    values = table.loc[list(subjects), column]
    return np.array([_positive(v, file, s) for s, v in zip(subjects, values)])


def _positive(value, file, subject) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number) or number <= 0:
        raise CohortError(f"TIV must be a positive number (cm³), found {value!r}", file=file, subject=subject)
    return number
