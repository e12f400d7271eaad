"""Read VCF/BCF genotypes (GT hard calls, or DS dosages) with cyvcf2.

cyvcf2 rather than pysam: both wrap htslib and ship wheels for Linux and macOS (x86-64 and arm64), and install
to about the same size (13 and 14 MB; cyvcf2 brings click and coloredlogs along), but cyvcf2 hands each
record's calls and FORMAT values over as numpy arrays filled in C, where pysam builds a Python object per
sample per record: reading the GT of 2,000 subjects x 2,000 SNPs took 0.3 s with cyvcf2 and 3.3 s with pysam
(0.35.0 and 0.24.1, one core).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import CohortError
from ._files import check_file
from ._genotypes import GenotypeReader, check_snp_table, in_file_order

_UNKNOWN = 3  # cyvcf2's gt_types code for a missing call (with gts012=True)


def _open(path, **kwargs):
    from cyvcf2 import VCF

    try:
        return VCF(str(path), gts012=True, strict_gt=True, **kwargs)
    except Exception as exc:  # cyvcf2 raises bare Exception (and OSError) for files htslib cannot read
        raise CohortError(f"cannot be read as VCF or BCF ({exc})", file=path) from None


class VcfReader(GenotypeReader):
    """VCF or BCF (plain, bgzipped or BCF): allele 1 is ALT, the sample name the subject id.

    With ``field="GT"`` a call counts its ALT alleles; a half-missing call (``./1``) is missing, as PLINK 1
    cannot hold one, and a haploid call counts twice (``1`` is 2), as PLINK 1 stores a haploid call as
    homozygous. With ``field="DS"`` the DS values are the counts (ALT dosages in [0, 2] by the VCF spec).
    """

    def __init__(self, path: Path, field: str = "GT"):
        self.path, self.field = check_file(path), field
        self.ids_file, self.id_name = self.path, "sample name"
        vcf = _open(self.path)
        try:
            self.subject_ids = list(vcf.samples)
            formats = sorted(h.info().get("ID") for h in vcf.header_iter() if h.type == "FORMAT")
        finally:
            vcf.close()
        if not self.subject_ids:
            raise CohortError("holds no samples (a sites-only VCF has no genotypes)", file=self.path)
        if field not in formats:
            raise CohortError(
                f"FORMAT field {field!r} is not declared in the header (declared: {', '.join(formats) or 'none'})"
                + ('; read the hard calls with field = "GT"' if field == "DS" and "GT" in formats else ""),
                file=self.path,
            )

    def read(self, rows):
        table = {}

        def read_sorted(sorted_rows):
            names = [self.subject_ids[r] for r in sorted_rows]
            # cyvcf2 returns a sample subset in file order, which sorted_rows is
            vcf = _open(self.path, samples=None if len(names) == len(self.subject_ids) else names, lazy=True)
            try:
                table.update(self._read_records(vcf, names))
            finally:
                vcf.close()
            return table.pop("dosages")

        dosages = in_file_order(rows, read_sorted)
        snps = check_snp_table(pd.DataFrame(table), self.path, lambda row: f"variant {table['snp'][row]!r}")
        return snps, dosages

    def _read_records(self, vcf, names) -> dict:
        columns = {key: [] for key in ("snp", "chrom", "cm", "pos", "a1", "a2")}
        counts = []
        records, last = iter(vcf), None
        while True:
            try:
                record = next(records, None)
            except Exception as exc:  # a record htslib cannot parse (cyvcf2 raises bare Exception)
                after = f" after variant {last!r}" if last else " in the first record"
                raise CohortError(f"cannot be read{after} ({exc})", file=self.path) from None
            if record is None:
                break
            if len(record.ALT) > 1:
                raise CohortError(
                    f"variant {record.ID or f'{record.CHROM}:{record.POS}'!r} is multi-allelic (REF {record.REF}, "
                    f"ALT {','.join(record.ALT)}); only biallelic variants are read: split it (bcftools norm "
                    "-m -any, with new ids) or drop it (bcftools view -M2) first",
                    file=self.path,
                )
            # a monomorphic site's ALT "." is PLINK 1's missing allele "0"
            a1, a2 = (record.ALT[0] if record.ALT else "0"), record.REF
            # a missing id, as plink2 --set-missing-var-ids @:#:$r:$a would fill it
            last = record.ID or f"{record.CHROM}:{record.POS}:{a2}:{a1}"
            for key, value in zip(columns, (last, record.CHROM, 0.0, record.POS, a1, a2)):
                columns[key].append(value)
            counts.append(self._counts(record, last, names))
        columns["dosages"] = np.stack(counts, axis=1) if counts else np.empty((len(names), 0), np.float32)
        return columns

    def _counts(self, record, snp, names) -> np.ndarray:
        if self.field == "GT":
            if record.genotype is None:
                raise CohortError(f"variant {snp!r} has no GT values", file=self.path)
            types = record.gt_types
            counts = types.astype(np.float32)
            counts[types == _UNKNOWN] = np.nan
            return counts
        values = record.format("DS")
        if values is None:
            raise CohortError(f"variant {snp!r} has no DS values", file=self.path)
        counts = values[:, 0].astype(np.float32)
        bad = (counts < 0) | (counts > 2)  # False for NaN, a missing value
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise CohortError(
                f"variant {snp!r}: DS must be an ALT dosage in [0, 2], found {counts[row]:g}",
                file=self.path,
                subject=names[row],
            )
        return counts
