"""What a figure builder hands the report: where its files are, which section it belongs to, and the
tables behind it. Figures are drawn from the explanation's CSV tables; nothing here recomputes statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Report sections, in the order they appear.
SECTIONS = (
    "Summary",
    "Performance",
    "Modality contributions",
    "Genomics",
    "Connectome",
    "Morphology",
    "Methods",
    "Provenance",
    "Warnings",
)


@dataclass(frozen=True)
class FigureFile:
    """One saved figure.

    Attributes
    ----------
    name : str
        File stem inside ``figures/`` (``manhattan`` -> ``figures/manhattan.png``, ``.pdf``, ``.svg``).
    section : str
        One of `SECTIONS`.
    title, caption : str
        Shown above and below the figure in the report (plain text; the template escapes it).
    files : tuple of Path
        The saved files, the 300-dpi PNG first, then the vector formats.
    data : tuple of str
        The CSV/NIfTI files behind the figure, relative to the report folder.
    """

    name: str
    section: str
    title: str
    caption: str
    files: tuple[Path, ...]
    data: tuple[str, ...] = field(default_factory=tuple)

    @property
    def png(self) -> Path:
        return next(p for p in self.files if p.suffix == ".png")
