"""Chromosome names, their natural order and lengths, and the cumulative x axis of genome-wide plots."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from migtrans.exceptions import ParameterError

# Primary-assembly lengths (bp) from the UCSC/GRC chromosome size tables (hg19 = GRCh37, hg38 = GRCh38).
CHROMOSOME_LENGTHS = {
    "GRCh37": {
        "1": 249250621,
        "2": 243199373,
        "3": 198022430,
        "4": 191154276,
        "5": 180915260,
        "6": 171115067,
        "7": 159138663,
        "8": 146364022,
        "9": 141213431,
        "10": 135534747,
        "11": 135006516,
        "12": 133851895,
        "13": 115169878,
        "14": 107349540,
        "15": 102531392,
        "16": 90354753,
        "17": 81195210,
        "18": 78077248,
        "19": 59128983,
        "20": 63025520,
        "21": 48129895,
        "22": 51304566,
        "X": 155270560,
        "Y": 59373566,
        "MT": 16569,
    },
    "GRCh38": {
        "1": 248956422,
        "2": 242193529,
        "3": 198295559,
        "4": 190214555,
        "5": 181538259,
        "6": 170805979,
        "7": 159345973,
        "8": 145138636,
        "9": 138394717,
        "10": 133797422,
        "11": 135086622,
        "12": 133275309,
        "13": 114364328,
        "14": 107043718,
        "15": 101991189,
        "16": 90338345,
        "17": 83257441,
        "18": 80373285,
        "19": 58617616,
        "20": 64444167,
        "21": 46709983,
        "22": 50818468,
        "X": 156040895,
        "Y": 57227415,
        "MT": 16569,
    },
}
BUILD_ALIASES = {"grch37": "GRCh37", "hg19": "GRCh37", "b37": "GRCh37", "grch38": "GRCh38", "hg38": "GRCh38"}

# PLINK writes the sex and mitochondrial chromosomes as numbers.
_PLINK_CODES = {"23": "X", "24": "Y", "25": "XY", "26": "MT"}
_SPECIAL_ORDER = {"X": 0, "Y": 1, "XY": 2, "MT": 3}


def normalise_chromosome(name) -> str:
    """Canonical chromosome name: no ``chr`` prefix, ``X``/``Y``/``XY``/``MT``, PLINK codes 23-26 mapped.

    Examples
    --------
    >>> [normalise_chromosome(c) for c in ("chr1", "1", 1, "chrX", "chrM", "23", "01", 2.0)]
    ['1', '1', '1', 'X', 'MT', 'X', '1', '2']
    """
    if isinstance(name, (float, np.floating)) and float(name).is_integer():
        name = int(name)
    text = re.sub(r"^chr", "", str(name).strip(), flags=re.IGNORECASE)
    if text.isdigit():
        text = str(int(text))
        return _PLINK_CODES.get(text, text)
    upper = text.upper()
    if upper in ("M", "MT"):
        return "MT"
    return upper if upper in _SPECIAL_ORDER else text


def chromosome_sort_key(name: str):
    """Sort key giving the natural order 1..22, X, Y, XY, MT, then any other names alphabetically."""
    if name.isdigit():
        return (0, int(name), "")
    if name in _SPECIAL_ORDER:
        return (1, _SPECIAL_ORDER[name], "")
    return (2, 0, name)


def resolve_build(build) -> str:
    """``"GRCh37"`` or ``"GRCh38"`` from a build name or alias (hg19, hg38)."""
    key = BUILD_ALIASES.get(str(build).lower())
    if key is None:
        raise ParameterError(f"build: expected one of GRCh37, GRCh38 (or hg19, hg38), found {build!r}")
    return key


@dataclass(frozen=True)
class GenomeAxis:
    """Cumulative genome coordinates for the chromosomes present in a table.

    Attributes
    ----------
    chromosomes : tuple of str
        Chromosomes present, in natural order.
    offsets, lengths : dict of str to int
        Start of each chromosome on the cumulative axis, and the length used for it: the reference length of
        the build, or the largest observed position when that is longer (or the chromosome is not in the
        reference).
    """

    chromosomes: tuple
    offsets: dict
    lengths: dict

    @classmethod
    def from_positions(cls, chrom, pos, *, build="GRCh37"):
        """Axis for canonical chromosome names ``chrom`` and base-pair positions ``pos``."""
        reference = CHROMOSOME_LENGTHS[resolve_build(build)]
        observed = pd.Series(np.asarray(pos, dtype=float)).groupby(np.asarray(chrom)).max()
        chromosomes = tuple(sorted(observed.index, key=chromosome_sort_key))
        lengths, offsets, start = {}, {}, 0
        for c in chromosomes:
            lengths[c] = int(max(reference.get(c, 0), observed[c]))
            offsets[c] = start
            start += lengths[c]
        return cls(chromosomes, offsets, lengths)

    def x(self, chrom, pos) -> np.ndarray:
        """Cumulative positions of (canonical ``chrom``, ``pos``) pairs."""
        offsets = pd.Series(self.offsets, dtype=float)
        return offsets.reindex(np.asarray(chrom)).to_numpy() + np.asarray(pos, dtype=float)

    @property
    def centres(self) -> np.ndarray:
        """The middle of each chromosome on the cumulative axis, in natural order."""
        return np.array([self.offsets[c] + self.lengths[c] / 2 for c in self.chromosomes], dtype=float)

    @property
    def total(self) -> int:
        return int(sum(self.lengths.values()))
