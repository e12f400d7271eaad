"""Read a PLINK 2 fileset (.pgen/.pvar/.psam) with pgenlib, the reader maintained with PLINK 2 itself."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import CohortError
from ._files import check_file
from ._genotypes import SNP_COLUMNS, GenotypeReader, check_snp_table, in_file_order, read_table, with_extension

_BLOCK = 4096  # variants read at once: bounds the variant-major buffer to 4096 x n float32


def _header(path) -> tuple[int, str | None]:
    """The number of leading ``##`` lines and the line after them (the header when it starts with ``#``)."""
    check_file(path)
    skipped = 0
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        for line in handle:
            if not line.startswith("##"):
                return skipped, line.rstrip("\r\n")
            skipped += 1
    return skipped, None


def _with_header(path, required) -> tuple[pd.DataFrame, int]:
    """A PLINK 2 text table: after its ``##`` lines, a ``#``-header naming the columns; (table, first data line)."""
    skipped, header = _header(path)
    columns = header[1:].split("\t" if "\t" in header else None)
    missing = [c for c in required if c not in columns]
    if missing:
        raise CohortError(f"header line {skipped + 1} has no {missing[0]} column, found {header!r}", file=path)
    sep = "\t" if "\t" in header else r"\s+"
    return read_table(path, len(columns), columns, sep=sep, skiprows=skipped + 1), skipped + 2


def read_psam(psam: Path) -> list[str]:
    """The IID of each sample: the ``IID`` column of a ``#FID``/``#IID`` header, or a .fam's 2nd column."""
    _, header = _header(psam)
    if header is not None and header.startswith("#"):
        table, _ = _with_header(psam, ["IID"])
        return list(table["IID"])
    return list(read_table(psam, 6, None)[1])


def read_pvar(pvar: Path) -> pd.DataFrame:
    """The .pvar as the SNP table: allele 1 = ALT (what pgenlib counts), allele 2 = REF.

    A headerless .pvar is laid out as a .bim (its 5th column is ALT, as PLINK 2 reads a .bim).
    """
    packed = with_extension(pvar, ".zst")
    if not pvar.exists() and packed.exists():
        raise CohortError(f"file not found, only {packed.name} (decompress it: zstd -d {packed.name})", file=pvar)
    _, header = _header(pvar)
    if header is not None and header.startswith("#"):
        table, first_line = _with_header(pvar, ["CHROM", "POS", "ID", "REF", "ALT"])
        if "CM" not in table.columns:
            table["CM"] = "0"
        names = {"CHROM": "chrom", "POS": "pos", "ID": "snp", "REF": "a2", "ALT": "a1", "CM": "cm"}
        table = table.rename(columns=names)
    else:
        table, first_line = read_table(pvar, 6, ["chrom", "snp", "cm", "pos", "a1", "a2"]), 1
    table = table[SNP_COLUMNS]
    multi = table["a1"].str.contains(",", regex=False)
    if multi.any():
        row = int(np.flatnonzero(multi)[0])
        raise CohortError(
            f"line {first_line + row}: variant {table['snp'].iloc[row]!r} is multi-allelic (REF "
            f"{table['a2'].iloc[row]}, ALT {table['a1'].iloc[row]}); only biallelic variants are read: split it "
            "(bcftools norm -m -any, with new ids) or drop it (plink2 --max-alleles 2) first",
            file=pvar,
        )
    # PLINK 2 writes a missing allele (a monomorphic SNP's ALT) as ".", PLINK 1 as "0": one spelling for both
    table[["a1", "a2"]] = table[["a1", "a2"]].replace(".", "0")
    # a missing id, as plink2 --set-missing-var-ids @:#:$r:$a would fill it
    missing_id = table["snp"] == "."
    table.loc[missing_id, "snp"] = (table["chrom"] + ":" + table["pos"] + ":" + table["a2"] + ":" + table["a1"])[
        missing_id
    ]
    return check_snp_table(table, pvar, lambda row: f"line {first_line + row}")


def _pgenlib_error(exc) -> str:
    message = exc.args[0] if exc.args else exc
    text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    return text.strip()


class Plink2Reader(GenotypeReader):
    """PLINK 2 .pgen/.pvar/.psam: allele 1 is ALT, IID the subject id; stored dosages are read as dosages."""

    def __init__(self, pfile: Path):
        import pgenlib

        self.pgen = check_file(with_extension(pfile, ".pgen"))
        self.ids_file, self.id_name = with_extension(pfile, ".psam"), "IID"
        self.subject_ids = read_psam(self.ids_file)
        self.snps = read_pvar(with_extension(pfile, ".pvar"))
        try:
            with pgenlib.PgenReader(os.fsencode(self.pgen)) as reader:
                shape = reader.get_raw_sample_ct(), reader.get_variant_ct()
        except RuntimeError as exc:
            raise CohortError(f"cannot be read as a .pgen ({_pgenlib_error(exc)})", file=self.pgen) from None
        if shape != (len(self.subject_ids), len(self.snps)):
            raise CohortError(
                f"holds {shape[0]} samples x {shape[1]} variants, but the .psam lists {len(self.subject_ids)} "
                f"and the .pvar {len(self.snps)}",
                file=self.pgen,
            )

    def read(self, rows):
        import pgenlib

        n_snps = len(self.snps)

        def read_sorted(sorted_rows):
            dosages = np.empty((len(sorted_rows), n_snps), dtype=np.float32)
            buffer = np.empty((min(_BLOCK, n_snps), len(sorted_rows)), dtype=np.float32)
            try:
                with pgenlib.PgenReader(os.fsencode(self.pgen), sample_subset=sorted_rows.astype(np.uint32)) as reader:
                    for start in range(0, n_snps, _BLOCK):
                        stop = min(start + _BLOCK, n_snps)
                        # allele_idx=1: ALT counts, the dosage where one is stored, else the hard call
                        reader.read_dosages_range(start, stop, buffer[: stop - start], allele_idx=1)
                        dosages[:, start:stop] = buffer[: stop - start].T
            except RuntimeError as exc:
                raise CohortError(f"cannot be read as a .pgen ({_pgenlib_error(exc)})", file=self.pgen) from None
            dosages[dosages == -9] = np.nan  # pgenlib's missing-call code
            return dosages

        return self.snps, in_file_order(rows, read_sorted)
