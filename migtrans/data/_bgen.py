"""Read BGEN genotypes (v1.2 and v1.3: layout 2, zlib or zstd) and their .sample file; cbgen decodes the
probabilities.

cbgen rather than bgen-reader: bgen-reader is a layer over cbgen that brings dask, xarray and pyarrow (about
60 MB of wheels) for lazy arrays we do not use; cbgen alone is a 0.6 MB wheel (Linux, macOS, Windows) plus
cffi, at the same C speed. We walk the variant headers ourselves and hand cbgen the offset of each genotype
block: its own index (a "metafile" written to disk) crashes the process on a truncated .bgen, where our walk
stops with an error naming the file. cbgen cannot decode layout 1 (BGEN v1.1), which we refuse.
cbgen is imported only when a .bgen is read: the import makes an empty folder in the user's cache
($BGEN_CACHE_HOME, for its example files).
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import CohortError
from ._files import check_file
from ._genotypes import GenotypeReader, check_snp_table, in_file_order, read_table


def read_sample_file(path: Path) -> list[str]:
    """The ID_2 column of an Oxford .sample file (line 1: names, line 2: column types, then one line a
    sample); plink2 --export bgen-1.x writes the IID there."""
    table = read_table(path, None, None)
    names = list(table.iloc[0]) if len(table) else []
    if names[:2] != ["ID_1", "ID_2"] or len(table) < 2 or list(table.iloc[1, :2]) != ["0", "0"]:
        raise CohortError(
            "not an Oxford .sample file: expected a first line 'ID_1 ID_2 missing ...' and a second line of "
            f"column types '0 0 0 ...', found {' '.join(names[:3])!r}",
            file=path,
        )
    return list(table.iloc[2:, 1])


class _Walker:
    """Reads little-endian fields of a memory-mapped file, stopping with an error past its end."""

    def __init__(self, data, path):
        self.data, self.path, self.pos = data, path, 0

    def unpack(self, fmt, what):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise CohortError(f"truncated: the file ends inside {what}", file=self.path)
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def text(self, length_fmt, what):
        length = self.unpack(length_fmt, what)
        if self.pos + length > len(self.data):
            raise CohortError(f"truncated: the file ends inside {what}", file=self.path)
        value = bytes(self.data[self.pos : self.pos + length]).decode("utf-8", "surrogateescape")
        self.pos += length
        return value


def walk_bgen(path: Path) -> tuple[int, pd.DataFrame, np.ndarray]:
    """The sample count, the SNP table and the genotype-block offset of each variant of a .bgen.

    The SNP id is the rsid field (PLINK 2 reads and writes ids there), else the variant id field, else
    ``chrom:pos:allele1:allele2``; allele 1 is the first allele of the variant.
    """
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        walk = _Walker(data, path)
        first_variant = walk.unpack("<I", "the header") + 4
        header_length, n_variants, n_samples, magic = walk.unpack("<III4s", "the header")
        if magic not in (b"bgen", b"\0\0\0\0"):
            raise CohortError("not a BGEN file (bad magic bytes)", file=path)
        walk.pos = 4 + header_length - 4
        flags = walk.unpack("<I", "the header")
        compression, layout = flags & 3, (flags >> 2) & 15
        if layout == 1:
            raise CohortError(
                "BGEN v1.1 (layout 1) is not read; convert it to v1.2 or v1.3 first (plink2 --bgen "
                f"{path.name} ref-last --export bgen-1.3 ref-last, or qctool -bgen-bits 8)",
                file=path,
            )
        if layout != 2 or compression == 3:
            raise CohortError(
                f"unknown BGEN layout {layout} with compression {compression} (expected BGEN v1.2 or v1.3)", file=path
            )
        walk.pos = first_variant
        rows, offsets = [], np.empty(n_variants, dtype=np.int64)
        for index in range(n_variants):
            what = f"variant {index + 1} of {n_variants}"
            varid, rsid, chrom = (walk.text("<H", what) for _ in range(3))
            pos = walk.unpack("<I", what)
            n_alleles = walk.unpack("<H", what)
            alleles = [walk.text("<I", what) for _ in range(n_alleles)]
            snp = rsid or varid or f"{chrom}:{pos}:{':'.join(alleles)}"
            if n_alleles != 2:
                raise CohortError(
                    f"variant {snp!r} has {n_alleles} alleles ({','.join(alleles)}); only biallelic variants are "
                    "read: split it or drop it first (qctool, or plink2 --max-alleles 2)",
                    file=path,
                )
            offsets[index] = walk.pos
            block_length = walk.unpack("<I", what)  # read first: `walk.pos += ...` would add to the old pos
            walk.pos += block_length
            if walk.pos > len(data):
                raise CohortError(f"truncated: the file ends inside {what}", file=path)
            rows.append((snp, chrom, 0.0, pos, *alleles))
    snps = pd.DataFrame(rows, columns=["snp", "chrom", "cm", "pos", "a1", "a2"])
    # a missing allele written "." (plink2 exports a monomorphic SNP so) is PLINK 1's "0"
    snps[["a1", "a2"]] = snps[["a1", "a2"]].replace(".", "0")
    return n_samples, snps, offsets


def allele1_dosage(probability, phased, ploidy, missing) -> np.ndarray:
    """Expected count of the first allele from one variant's probabilities, as cbgen gives them.

    Unphased diploid columns are P(11), P(12), P(22); phased ones P(hap 1 = 1), P(hap 1 = 2), P(hap 2 = 1),
    P(hap 2 = 2). A haploid sample's P(1) counts twice, as PLINK 1 stores a haploid call as homozygous.
    """
    p = probability
    dosage = 2 * p[:, 0]
    if p.shape[1] >= (4 if phased else 3):  # fewer columns: every sample is haploid
        diploid = p[:, 0] + p[:, 2] if phased else 2 * p[:, 0] + p[:, 1]
        dosage = np.where(ploidy == 1, dosage, diploid)
    dosage[missing] = np.nan
    return dosage.astype(np.float32)


class BgenReader(GenotypeReader):
    """BGEN + .sample: allele 1 is the first allele of each variant, the .sample's ID_2 the subject id."""

    def __init__(self, path: Path, sample: Path):
        self.path = check_file(path)
        self.ids_file, self.id_name = sample, "ID_2"
        self.subject_ids = read_sample_file(sample)
        n_samples, self.snps, self.offsets = walk_bgen(self.path)
        if n_samples != len(self.subject_ids):
            raise CohortError(
                f"lists {len(self.subject_ids)} samples, but {self.path.name} holds {n_samples}", file=sample
            )
        self.snps = check_snp_table(self.snps, self.path, lambda row: f"variant {self.snps['snp'].iloc[row]!r}")

    def read(self, rows):
        import cbgen

        def read_sorted(sorted_rows):
            dosages = np.empty((len(sorted_rows), len(self.offsets)), dtype=np.float32)
            try:
                with cbgen.bgen_file(self.path) as bgen:
                    for j, offset in enumerate(self.offsets):
                        g = bgen.read_genotype(int(offset))
                        if g.ploidy.max(initial=1) > 2:
                            raise CohortError(
                                f"variant {self.snps['snp'].iloc[j]!r}: ploidy {g.ploidy.max()}; only haploid "
                                "and diploid samples are read",
                                file=self.path,
                            )
                        dosages[:, j] = allele1_dosage(g.probability, g.phased, g.ploidy, g.missing)[sorted_rows]
            except RuntimeError as exc:  # cbgen's message for a block it cannot decode
                raise CohortError(f"cannot be read ({exc})", file=self.path) from None
            return dosages

        return self.snps, in_file_order(rows, read_sorted)
