"""Gene annotation of SNPs and loci: nearest or overlapping genes from an annotation shipped inside a pip
package (GeneLocator's GENCODE 32 genes for GRCh37 and GRCh38; read offline) or a user BED file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from migtrans.exceptions import ParameterError
from migtrans.loci import normalise_chrom

_BUILDS = {"grch37": "GRCh37", "grch38": "GRCh38"}


def gene_table(source="grch37", *, coding_only=True) -> pd.DataFrame:
    """Genes as a table: chrom, start, end (1-based, inclusive), gene.

    Parameters
    ----------
    source : {"grch37", "grch38"} or path
        A genome build (GeneLocator's packaged GENCODE 32 annotation; nothing is downloaded) or a BED
        file (chrom, start (0-based), end, name; further columns ignored).
    coding_only : bool
        With a build: protein-coding-like genes only (GeneLocator's "codinglike" set).
    """
    key = str(source).lower()
    if key in _BUILDS:
        from genelocator import get_genelocator

        locator = get_genelocator(_BUILDS[key], coding_only=coding_only)
        # GeneLocator keeps ensg -> (chrom, start, end, symbol); one table serves every lookup below
        rows = list(locator._gene_info.values())
        table = pd.DataFrame(rows, columns=["chrom", "start", "end", "gene"])
    else:
        path = Path(source)
        if not path.is_file():
            raise ParameterError(f"genes: expected grch37, grch38 or a BED file, found {str(source)!r} (no such file)")
        try:
            bed = pd.read_csv(path, sep="\t", header=None, comment="#", usecols=[0, 1, 2, 3], dtype={0: str})
        except (ValueError, pd.errors.ParserError) as exc:
            raise ParameterError(f"genes: {path} is not a BED file with at least 4 columns ({exc})") from None
        table = pd.DataFrame(
            {
                "chrom": bed[0],
                "start": bed[1].astype(np.int64) + 1,
                "end": bed[2].astype(np.int64),
                "gene": bed[3].astype(str),
            }
        )
    table["chrom"] = table["chrom"].map(normalise_chrom)
    return table.sort_values(["chrom", "start"], kind="stable").reset_index(drop=True)


def nearest_genes(chrom, pos, genes: pd.DataFrame, *, chunk=2048) -> pd.DataFrame:
    """For each position: overlapping genes (joined by ';', distance 0) or else the nearest gene and its
    distance in bp to the gene's nearer end. Positions on a chromosome without genes get '' and NaN.

    Examples
    --------
    >>> genes = pd.DataFrame({"chrom": ["1", "1"], "start": [100, 500], "end": [200, 900], "gene": ["A", "B"]})
    >>> nearest_genes(["1", "1", "chr1", "2"], [150, 300, 950, 5], genes)["gene"].tolist()
    ['A', 'A', 'B', '']
    """
    chrom = pd.Series([normalise_chrom(c) for c in chrom])
    pos = np.asarray(pos, dtype=np.int64)
    gene = np.full(len(pos), "", dtype=object)
    distance = np.full(len(pos), np.nan)
    for name, rows in chrom.groupby(chrom).groups.items():
        on = genes[genes["chrom"] == name]
        if on.empty:
            continue
        starts, ends, names = on["start"].to_numpy(), on["end"].to_numpy(), on["gene"].to_numpy()
        rows = np.asarray(rows)
        for s in range(0, len(rows), chunk):
            idx = rows[s : s + chunk]
            p = pos[idx][:, None]
            d = np.maximum(np.maximum(starts[None, :] - p, p - ends[None, :]), 0)
            best = d.min(axis=1)
            distance[idx] = best
            for i, row in enumerate(idx):
                hits = np.flatnonzero(d[i] == best[i])
                gene[row] = ";".join(dict.fromkeys(names[hits]))
    return pd.DataFrame({"gene": gene, "gene_distance": distance})


def locus_genes(loci: pd.DataFrame, genes: pd.DataFrame) -> list[str]:
    """Genes overlapping each locus [start, end], or else the nearest one, joined by ';'."""
    out = []
    for chrom, start, end in zip(loci["chrom"], loci["start"], loci["end"]):
        on = genes[(genes["chrom"] == normalise_chrom(chrom)) & (genes["start"] <= end) & (genes["end"] >= start)]
        if len(on):
            out.append(";".join(dict.fromkeys(on["gene"])))
        else:
            middle = (int(start) + int(end)) // 2
            out.append(nearest_genes([chrom], [middle], genes)["gene"].iloc[0])
    return out
