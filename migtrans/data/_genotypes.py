"""Genotype input: `open_genotypes` picks the reader of the cohort's format and checks what every format shares
(subject ids, the SNP table); PLINK 1 .bed/.bim/.fam is read here with bed-reader, PLINK 2, VCF/BCF and BGEN in
the modules beside this one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import CohortError
from ._files import check_file

_BED_MAGIC = bytes([0x6C, 0x1B, 0x01])  # PLINK 1 magic + SNP-major mode
SNP_COLUMNS = ["snp", "chrom", "cm", "pos", "a1", "a2"]


class GenotypeReader:
    """One opened genotype source: its subject ids (in file order) and a way to read some of them.

    Attributes
    ----------
    subject_ids : list of str
        The subject id of each sample, in file order (IID for PLINK, the sample name for VCF, ID_2 for BGEN).
    ids_file : Path
        The file those ids come from, named in errors and warnings about a subject.
    id_name : str
        What the id is called in that file ("IID", "sample name", "ID_2").
    """

    subject_ids: list
    ids_file: Path
    id_name: str

    def read(self, rows: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
        """The SNP table (snp, chrom, cm, pos, a1, a2) and the allele-1 counts of the samples at ``rows`` (in
        that order): float32 (len(rows), m), NaN where the call is missing."""
        raise NotImplementedError


def with_extension(prefix: Path, extension: str) -> Path:
    """``prefix`` + ``extension``: appended, not swapped in, since a prefix may hold dots ("cohort.v2")."""
    return prefix.with_name(prefix.name + extension)


def read_table(path, n_columns, names, *, sep=r"\s+", skiprows=0) -> pd.DataFrame:
    """A headerless text table whose every field is kept as written, with exactly ``n_columns`` columns."""
    check_file(path)
    try:
        # every field as written: "NA" or "null" is an id here, not a missing value
        table = pd.read_csv(
            path,
            sep=sep,
            header=None,
            dtype=str,
            engine="c",
            keep_default_na=False,
            na_filter=False,
            skiprows=skiprows,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CohortError(f"cannot be parsed ({exc})", file=path) from None
    if n_columns is not None and table.shape[1] != n_columns:
        raise CohortError(f"expected {n_columns} whitespace-separated columns, found {table.shape[1]}", file=path)
    if names is not None:
        table.columns = names
    return table


def check_snp_table(snps: pd.DataFrame, file, where) -> pd.DataFrame:
    """Validate a SNP table as every format must give it, and return it with its columns in order.

    Positions (text as written, or integers) must be integers in [0, 2^31), PLINK's 32-bit field; the cM
    column becomes float (0 where absent or unreadable, as PLINK reads it); SNP ids must be unique. ``where(i)``
    names row ``i`` in an error: its line in a text table, the variant id in a VCF or BGEN.
    """
    pos = snps["pos"]
    if pos.dtype == object or pd.api.types.is_string_dtype(pos):
        # "1e30" or "1000.7" is a damaged file, not a position
        digits = pos.str.fullmatch(r"\d{1,10}")
        pos = pd.to_numeric(pos.where(digits), errors="coerce")
    bad = pos.isna() | (pos < 0) | (pos > 2**31 - 1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise CohortError(
            f"{where(row)}: base-pair position must be an integer in [0, 2^31), found {snps['pos'].iloc[row]!r}",
            file=file,
        )
    cm = pd.to_numeric(snps["cm"], errors="coerce").astype(float).fillna(0.0)
    snps = snps.assign(pos=pos.astype(np.int64), cm=cm)
    dup = snps["snp"][snps["snp"].duplicated()]
    if len(dup):
        raise CohortError(f"duplicate SNP id {dup.iloc[0]!r}", file=file)
    return snps[SNP_COLUMNS].reset_index(drop=True)


def in_file_order(rows: np.ndarray, read_sorted) -> np.ndarray:
    """``read_sorted(sorted_rows)`` gives the samples in increasing file order (all the readers want them so);
    put them back in the order of ``rows``."""
    order = np.argsort(rows, kind="stable")
    sorted_values = read_sorted(rows[order])
    values = np.empty_like(sorted_values)
    values[order] = sorted_values
    return values


def read_fam(bfile: Path) -> pd.DataFrame:
    """The .fam table (fid, iid, father, mother, sex, phenotype)."""
    return read_table(with_extension(bfile, ".fam"), 6, ["fid", "iid", "father", "mother", "sex", "pheno"])


def read_bim(bfile: Path) -> pd.DataFrame:
    """The .bim table as the SNP table: snp, chrom, cm, pos, a1, a2."""
    bim = read_table(with_extension(bfile, ".bim"), 6, ["chrom", "snp", "cm", "pos", "a1", "a2"])
    return check_snp_table(bim, with_extension(bfile, ".bim"), lambda row: f"line {row + 1}")


def check_bed(bfile: Path, n_subjects: int, n_snps: int) -> Path:
    """Check the .bed magic bytes and that its size matches the .fam and .bim line counts."""
    bed = check_file(with_extension(bfile, ".bed"))
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

    def read_sorted(sorted_rows):
        with open_bed(bed, iid_count=n_subjects, sid_count=n_snps, count_A1=True) as reader:
            return reader.read(index=np.s_[sorted_rows, :], dtype="float32", order="C")

    return in_file_order(rows, read_sorted)


class Plink1Reader(GenotypeReader):
    """PLINK 1 .bed/.bim/.fam through bed-reader: allele 1 is the .bim's 5th column (A1), IID the subject id."""

    def __init__(self, bfile: Path):
        fam, self.snps = read_fam(bfile), read_bim(bfile)
        self.bed = check_bed(bfile, len(fam), len(self.snps))
        self.subject_ids, self.ids_file, self.id_name = list(fam["iid"]), with_extension(bfile, ".fam"), "IID"

    def read(self, rows):
        return self.snps, read_dosages(self.bed, len(self.subject_ids), len(self.snps), rows)


def open_genotypes(spec) -> GenotypeReader:
    """Open the genotypes of a cohort's ``[genotypes]`` section and check its subject ids.

    Every format gives the same thing: dosages counting allele 1, the allele PLINK 1 calls A1 (the .bim's 5th
    column, PLINK 2's and VCF's ALT, a BGEN's first allele), NaN for missing calls.

    Parameters
    ----------
    spec : GenotypeSpec
        The validated ``[genotypes]`` section.

    Returns
    -------
    GenotypeReader

    Examples
    --------
    >>> from migtrans.simulate import simulate_cohort
    >>> from migtrans.data import read_cohort_spec
    >>> sim = simulate_cohort(tmp_path / "c", n_subjects=40, n_snps=200, seed=0, resolution=8)  # doctest: +SKIP
    >>> reader = open_genotypes(read_cohort_spec(sim.toml_path).genotypes)  # doctest: +SKIP
    >>> snps, dosages = reader.read(np.arange(3))  # doctest: +SKIP
    >>> dosages.shape  # doctest: +SKIP
    (3, 200)
    """
    if spec.format == "bfile":
        reader = Plink1Reader(spec.path)
    elif spec.format == "pfile":
        from ._pgen import Plink2Reader

        reader = Plink2Reader(spec.path)
    elif spec.format == "vcf":
        from ._vcf import VcfReader

        reader = VcfReader(spec.path, spec.field)
    elif spec.format == "bgen":
        from ._bgen import BgenReader

        reader = BgenReader(spec.path, spec.sample)
    else:  # read_cohort_spec lets no other through
        raise ValueError(f"unknown genotype format {spec.format!r}")
    ids = pd.Series(reader.subject_ids)
    dup = ids[ids.duplicated()]
    if len(dup):
        raise CohortError(f"duplicate subject id ({reader.id_name})", file=reader.ids_file, subject=dup.iloc[0])
    return reader
