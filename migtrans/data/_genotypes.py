"""Read a PLINK 1 binary fileset (.bed/.bim/.fam) with bed-reader, after checking it is whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import CohortError
from ._files import check_file

_BED_MAGIC = bytes([0x6C, 0x1B, 0x01])  # PLINK 1 magic + SNP-major mode


def _read_plain(path, n_columns, names) -> pd.DataFrame:
    check_file(path)
    try:
        # every field as written: "NA" or "null" is an id here, not a missing value
        table = pd.read_csv(
            path, sep=r"\s+", header=None, dtype=str, engine="c", keep_default_na=False, na_filter=False
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CohortError(f"cannot be parsed ({exc})", file=path) from None
    if table.shape[1] != n_columns:
        raise CohortError(f"expected {n_columns} whitespace-separated columns, found {table.shape[1]}", file=path)
    table.columns = names
    return table


def read_fam(bfile: Path) -> pd.DataFrame:
    """The .fam table (fid, iid, father, mother, sex, phenotype)."""
    return _read_plain(bfile.with_suffix(".fam"), 6, ["fid", "iid", "father", "mother", "sex", "pheno"])


def read_bim(bfile: Path) -> pd.DataFrame:
    """The .bim table as the SNP table: snp, chrom, cm, pos, a1, a2."""
    bim = _read_plain(bfile.with_suffix(".bim"), 6, ["chrom", "snp", "cm", "pos", "a1", "a2"])
    # positions are integers that fit PLINK's 32-bit field: "1e30" or "1000.7" is a damaged file, not a position
    digits = bim["pos"].str.fullmatch(r"\d{1,10}")
    pos = pd.to_numeric(bim["pos"].where(digits), errors="coerce")
    bad = pos.isna() | (pos > 2**31 - 1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise CohortError(
            f"line {row + 1}: base-pair position must be an integer in [0, 2^31), found {bim['pos'].iloc[row]!r}",
            file=bfile.with_suffix(".bim"),
        )
    bim["pos"] = pos.astype(np.int64)
    bim["cm"] = pd.to_numeric(bim["cm"], errors="coerce").fillna(0.0)
    dup = bim["snp"][bim["snp"].duplicated()]
    if len(dup):
        raise CohortError(f"duplicate SNP id {dup.iloc[0]!r}", file=bfile.with_suffix(".bim"))
    return bim[["snp", "chrom", "cm", "pos", "a1", "a2"]]


def check_bed(bfile: Path, n_subjects: int, n_snps: int) -> Path:
    """Check the .bed magic bytes and that its size matches the .fam and .bim line counts."""
    bed = check_file(bfile.with_suffix(".bed"))
    with open(bed, "rb") as handle:
        magic = handle.read(3)
    if magic != _BED_MAGIC:
        raise CohortError("not a SNP-major PLINK 1 .bed file (bad magic bytes)", file=bed)
    expected = 3 + n_snps * ((n_subjects + 3) // 4)
    size = bed.stat().st_size
    if size != expected:
        state = "truncated" if size < expected else "too long"
        raise CohortError(
            f"{state}: {n_subjects} subjects (.fam) x {n_snps} SNPs (.bim) need {expected} bytes, found {size}",
            file=bed,
        )
    return bed


def read_dosages(bed: Path, n_subjects: int, n_snps: int, rows: np.ndarray) -> np.ndarray:
    """Allele-1 counts (PLINK's convention) for the given .fam rows, float32, NaN where missing."""
    from bed_reader import open_bed

    order = np.argsort(rows, kind="stable")
    with open_bed(bed, iid_count=n_subjects, sid_count=n_snps, count_A1=True) as reader:
        sorted_rows = reader.read(index=np.s_[rows[order], :], dtype="float32", order="C")
    dosages = np.empty_like(sorted_rows)
    dosages[order] = sorted_rows
    return dosages
