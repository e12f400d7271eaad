"""Group SNPs into loci (contiguous windows on one chromosome): the genomic tokens of the model and the
units of the locus ranking."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .exceptions import ParameterError

__all__ = ["chrom_code", "locus_index", "normalise_chrom", "partition_loci"]

# PLINK's numeric codes for the non-autosomes, so "23" and "X" land in the same place.
_NAMED_CODES = {"X": 23, "Y": 24, "XY": 25, "MT": 26, "M": 26}
_PLINK_NAMES = {23: "X", 24: "Y", 25: "XY", 26: "MT"}


def normalise_chrom(value) -> str:
    """'chr1', 'Chr01', 1, '23', 'chrM' -> '1', '1', '1', 'X', 'MT'."""
    text = str(value).strip()
    text = re.sub(r"^chr", "", text, flags=re.IGNORECASE).upper()
    if text.isdigit():
        number = int(text)
        return _PLINK_NAMES.get(number, str(number))
    return "MT" if text == "M" else text


def chrom_code(chrom) -> int:
    """Integer code of a chromosome in natural order (1..22, X=23, Y=24, XY=25, MT=26).

    Parameters
    ----------
    chrom : str or int
        A chromosome name; a "chr" prefix and PLINK's numeric codes are accepted.

    Returns
    -------
    int
        The code; 0 for names outside 1..26 (e.g. unplaced contigs), which sort last by name.

    Examples
    --------
    >>> chrom_code("chr2"), chrom_code("X"), chrom_code(23), chrom_code("chrM")
    (2, 23, 23, 26)
    """
    name = normalise_chrom(chrom)
    if name.isdigit():
        number = int(name)
        return number if 1 <= number <= 26 else 0
    return _NAMED_CODES.get(name, 0)


def _sort_key(name: str) -> tuple:
    code = chrom_code(name)
    # Unknown contigs (code 0) go after MT, in name order, so the order is still total and stable.
    return (0, code, "") if code else (1, 0, name)


def partition_loci(snps: pd.DataFrame, *, window_kb: float = 250, max_snps: int = 64) -> pd.DataFrame:
    """Partition SNPs into loci: contiguous windows on one chromosome.

    SNPs are sorted by chromosome (natural order 1..22, X, Y, XY, MT, then other contigs by name) and
    position; a new locus starts when the chromosome changes, when a SNP lies more than
    ``window_kb * 1000`` bp after the locus's first SNP, or when the locus already holds ``max_snps`` SNPs.
    Every SNP belongs to exactly one locus.

    Parameters
    ----------
    snps : pandas.DataFrame
        One row per SNP, in the column order of the genotype matrix, with columns ``snp``, ``chrom``
        and ``pos`` (base pairs). Rows may be in any order; chromosome names may carry a "chr" prefix.
    window_kb : float, default=250
        Largest distance (kilobases) from a locus's first SNP to any other SNP of the locus.
    max_snps : int, default=64
        Largest number of SNPs in one locus.

    Returns
    -------
    pandas.DataFrame
        One row per locus, in genome order, with columns ``locus`` (e.g. ``"chr1:752566-981234"``),
        ``chrom`` (normalised name, e.g. ``"1"``, ``"X"``), ``chrom_code`` (see :func:`chrom_code`),
        ``start`` and ``end`` (bp, first and last SNP), ``n_snps`` and ``columns`` (an int64 array per
        row: positions of the locus's SNPs in ``snps``, i.e. column indices into the genotype matrix,
        in position order).

    Raises
    ------
    ParameterError
        If a column is missing, a position is not a non-negative integer, or ``window_kb`` or
        ``max_snps`` is not positive.

    Examples
    --------
    >>> import pandas as pd
    >>> snps = pd.DataFrame({"snp": ["a", "b", "c", "d"], "chrom": ["chr2", "1", "1", "1"],
    ...                      "pos": [500, 1_000, 2_000, 400_000]})
    >>> loci = partition_loci(snps, window_kb=250)
    >>> loci["locus"].tolist()
    ['chr1:1000-2000', 'chr1:400000-400000', 'chr2:500-500']
    >>> loci["columns"].iloc[0].tolist()
    [1, 2]
    """
    if not isinstance(snps, pd.DataFrame):
        raise ParameterError(f"snps: expected a pandas DataFrame, found {type(snps).__name__}")
    missing = [c for c in ("snp", "chrom", "pos") if c not in snps.columns]
    if missing:
        raise ParameterError(f"snps: expected columns snp, chrom, pos; missing {', '.join(missing)}")
    if (
        isinstance(window_kb, bool)
        or not isinstance(window_kb, (int, float, np.integer, np.floating))
        or not np.isfinite(window_kb)
        or window_kb <= 0
    ):
        raise ParameterError(f"window_kb: expected a positive number, found {window_kb!r}")
    if isinstance(max_snps, bool) or not isinstance(max_snps, (int, np.integer)) or max_snps < 1:
        raise ParameterError(f"max_snps: expected a positive integer, found {max_snps!r}")

    pos = pd.to_numeric(snps["pos"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(pos) | (pos < 0) | (pos != np.round(pos))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ParameterError(
            f"snps: column 'pos' must hold non-negative integers, found {snps['pos'].iloc[row]!r} "
            f"at row {row} (SNP {snps['snp'].iloc[row]!r})"
        )
    pos = pos.astype(np.int64)
    names = np.array([normalise_chrom(c) for c in snps["chrom"]], dtype=object)
    order_of = {name: i for i, name in enumerate(sorted(set(names), key=_sort_key))}
    rank = np.array([order_of[n] for n in names], dtype=np.int64)
    # lexsort keys are given last-first: chromosome, then position, then original row (stable ties).
    order = np.lexsort((np.arange(len(pos)), pos, rank))

    window = float(window_kb) * 1000.0
    rows = []
    sorted_rank, sorted_pos = rank[order], pos[order]
    bounds = np.flatnonzero(np.diff(sorted_rank)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(order)]):
        chrom_pos = sorted_pos[lo:hi]
        i = 0
        # One iteration per locus (not per SNP): the window end is a binary search.
        while i < len(chrom_pos):
            j = int(np.searchsorted(chrom_pos, chrom_pos[i] + window, side="right"))
            j = min(j, i + int(max_snps))
            columns = order[lo + i : lo + j].astype(np.int64)
            name = names[columns[0]]
            start, end = int(chrom_pos[i]), int(chrom_pos[j - 1])
            rows.append(
                {
                    "locus": f"chr{name}:{start}-{end}",
                    "chrom": name,
                    "chrom_code": chrom_code(name),
                    "start": start,
                    "end": end,
                    "n_snps": len(columns),
                    "columns": columns,
                }
            )
            i = j
    columns = ["locus", "chrom", "chrom_code", "start", "end", "n_snps", "columns"]
    table = pd.DataFrame(rows, columns=columns)
    return table.astype({"chrom_code": np.int64, "start": np.int64, "end": np.int64, "n_snps": np.int64})


def locus_index(loci, n_snps: int) -> tuple[np.ndarray, np.ndarray]:
    """Padded gather indices for the batched block-diagonal locus projection.

    Parameters
    ----------
    loci : pandas.DataFrame or sequence of array-like
        The output of :func:`partition_loci` (its ``columns`` column is used), or one array of SNP
        column indices per locus.
    n_snps : int
        Number of SNP columns in the genotype matrix the indices point into.

    Returns
    -------
    index : numpy.ndarray of shape (L, P), int64
        ``index[l, p]`` is the column of the p-th SNP of locus l; padding entries are 0.
        ``P`` is the size of the largest locus.
    valid : numpy.ndarray of shape (L, P), bool
        False on padding entries.

    Raises
    ------
    ParameterError
        If there are no loci, a locus is empty, or an index is outside ``[0, n_snps)``.

    Examples
    --------
    >>> index, valid = locus_index([[0, 1, 2], [3]], n_snps=4)
    >>> index.tolist(), valid.tolist()
    ([[0, 1, 2], [3, 0, 0]], [[True, True, True], [True, False, False]])
    """
    groups = loci["columns"].tolist() if isinstance(loci, pd.DataFrame) else list(loci)
    if isinstance(n_snps, bool) or not isinstance(n_snps, (int, np.integer)) or n_snps < 1:
        raise ParameterError(f"n_snps: expected a positive integer, found {n_snps!r}")
    if not groups:
        raise ParameterError("loci: expected at least one locus, found none")
    groups = [np.asarray(g, dtype=np.int64).ravel() for g in groups]
    width = max(len(g) for g in groups)
    index = np.zeros((len(groups), width), dtype=np.int64)
    valid = np.zeros((len(groups), width), dtype=bool)
    for row, group in enumerate(groups):
        if len(group) == 0:
            raise ParameterError(f"loci: locus {row} has no SNPs")
        if group.min() < 0 or group.max() >= n_snps:
            raise ParameterError(
                f"loci: locus {row} points at SNP columns outside [0, {n_snps}), found "
                f"{int(group.min())}..{int(group.max())}"
            )
        index[row, : len(group)] = group
        valid[row, : len(group)] = True
    return index, valid


def _standardised(genotypes, columns):
    """Mean-imputed, centred and unit-norm dosage columns (for correlations as dot products)."""
    x = np.asarray(genotypes[:, columns], dtype=np.float64)
    mean = np.nanmean(x, axis=0)
    x = np.where(np.isnan(x), mean, x) - mean
    norm = np.sqrt((x**2).sum(axis=0))
    return x / np.where(norm > 0, norm, np.inf)


def merge_loci_by_ld(loci: pd.DataFrame, genotypes, *, r2: float = 0.5, max_snps: int = 64) -> pd.DataFrame:
    """Merge neighbouring loci of one chromosome whose SNPs are in linkage disequilibrium.

    Walking along each chromosome, a locus joins the one before it when some SNP of one and some SNP of
    the other have r² >= ``r2`` (computed from the cohort's own genotypes; labels are never used) and
    the merged locus holds at most ``max_snps`` SNPs. Windows cut LD blocks at arbitrary places; merging
    puts a block back into one locus, so its SNPs share one token and one locus statistic.

    Parameters
    ----------
    loci : pandas.DataFrame
        From :func:`partition_loci`.
    genotypes : array of shape (n_subjects, n_snps)
        Dosages (NaN = missing), columns as in ``loci["columns"]``.
    r2 : float, default=0.5
    max_snps : int, default=64

    Returns
    -------
    pandas.DataFrame
        Same columns as :func:`partition_loci`, fewer or equal rows, in genome order.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = rng.binomial(2, 0.3, size=(200, 4)).astype(float)
    >>> g[:, 2] = g[:, 1]  # b (first window) and c (second window) in perfect LD: the windows merge
    >>> snps = pd.DataFrame({"snp": list("abcd"), "chrom": "1", "pos": [100, 200, 900_000, 2_000_000]})
    >>> merge_loci_by_ld(partition_loci(snps), g)["n_snps"].tolist()
    [3, 1]
    """
    if not 0 < r2 <= 1:
        raise ParameterError(f"ld_r2: expected a value in (0, 1], found {r2!r}")
    rows = []
    for row in loci.to_dict("records"):
        last = rows[-1] if rows else None
        if last is not None and last["chrom"] == row["chrom"] and last["n_snps"] + row["n_snps"] <= max_snps:
            a = _standardised(genotypes, last["columns"])
            b = _standardised(genotypes, row["columns"])
            if ((a.T @ b) ** 2).max() >= r2:
                columns = np.concatenate([last["columns"], row["columns"]])
                last.update(
                    end=row["end"],
                    n_snps=len(columns),
                    columns=columns,
                    locus=f"chr{row['chrom']}:{last['start']}-{row['end']}",
                )
                continue
        rows.append(dict(row))
    table = pd.DataFrame(rows, columns=loci.columns)
    return table.astype({"chrom_code": np.int64, "start": np.int64, "end": np.int64, "n_snps": np.int64})


def run_loci(cohort, *, window_kb: float = 250, max_snps: int = 64, ld_r2: float = 0.0) -> pd.DataFrame:
    """The locus partition of a run: windows on each chromosome, merged by LD when ``ld_r2 > 0``.

    The model's locus tokens and the locus ranking both use it, so one function builds it for both.
    """
    loci = partition_loci(cohort.snps.reset_index(drop=True), window_kb=window_kb, max_snps=max_snps)
    if ld_r2:
        loci = merge_loci_by_ld(loci, cohort.genotypes, r2=ld_r2, max_snps=max_snps)
    return loci
