"""Genotypes as PLINK 2, VCF/BCF and BGEN load exactly as the PLINK 1 fileset they were converted from: the
same dosages (allele-1 counts, NaN missing), SNP table and subject order, hence the same association."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from migtrans import load_cohort
from migtrans.data import CohortWarning
from migtrans.exceptions import CohortError

PLINK2, PLINK19 = shutil.which("plink2"), shutil.which("plink1.9")
needs_plink2 = pytest.mark.skipif(PLINK2 is None, reason="plink2 not installed (apt-get install plink2)")
needs_plink19 = pytest.mark.skipif(PLINK19 is None, reason="plink1.9 not installed (apt-get install plink1.9)")

# odd sizes, three chromosomes; the .fam lists the subjects in another order than the phenotype table
N, CHROMS = 37, {"1": 97, "2": 73, "3": 41}
M = sum(CHROMS.values())
MONOMORPHIC = 5  # this SNP has one allele only: A1 is PLINK 1's "0"


def _write_cohort(folder, seed=0):
    """Phenotypes and a PLINK 1 fileset ``g`` (37 x 211, 2% missing calls, A1 the major allele at about half
    the SNPs); return (ids in phenotype order, .fam order, dosages in .fam order, SNP properties)."""
    from bed_reader import to_bed

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = [f"g{i:02d}" for i in range(N)]
    labels = np.array(["SZ", "HC"] * (N // 2) + ["SZ"])
    rng.shuffle(labels)
    rows = ["subject_id\tdiagnosis\tage"] + [f"{s}\t{y}\t{20 + i % 41}" for i, (s, y) in enumerate(zip(ids, labels))]
    (folder / "phenotypes.tsv").write_text("\n".join(rows) + "\n")

    fam_order = list(rng.permutation(ids))
    freq = rng.uniform(0.05, 0.95, M)  # of A1: above 0.5 A1 is the major allele
    dosages = rng.binomial(2, freq, size=(N, M)).astype(np.float32)
    dosages[rng.random((N, M)) < 0.02] = np.nan
    dosages[:, MONOMORPHIC] = 0
    pairs = [("A", "G"), ("C", "T"), ("G", "T"), ("A", "C")]
    a1 = [pairs[j % 4][j % 2] for j in range(M)]
    a2 = [pairs[j % 4][1 - j % 2] for j in range(M)]
    a1[MONOMORPHIC] = "0"
    chrom = [c for c, k in CHROMS.items() for _ in range(k)]
    pos = np.concatenate([np.sort(rng.choice(10**7, k, replace=False)) + 1 for k in CHROMS.values()])
    properties = {
        "fid": [f"fam{s}" for s in fam_order],  # not the IID: every format must take the IID
        "iid": fam_order,
        "sid": [f"rs{1000 + j}" for j in range(M)],
        "chromosome": chrom,
        "bp_position": pos,
        "allele_1": a1,
        "allele_2": a2,
    }
    to_bed(folder / "g.bed", dosages, properties=properties)
    return ids, fam_order, dosages, properties


def _toml(folder, genotypes, name="cohort.toml"):
    toml = Path(folder) / name
    toml.write_text(
        f"""[phenotypes]
path = "{Path(folder) / "phenotypes.tsv"}"
id_column = "subject_id"
label_column = "diagnosis"
positive_label = "SZ"
covariates = ["age"]

[genotypes]
{genotypes}
pcs = 2

[qc]
enabled = false  # every SNP, the monomorphic one included, reaches the comparison
"""
    )
    return toml


def _write_vcf(path, fam_order, dosages, properties, ds=False):
    """A plain VCF written by hand: ALT = A1 and GT counts it, as plink2 --export vcf writes a .bed."""
    lines = ["##fileformat=VCFv4.2", '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">']
    if ds:
        lines.append('##FORMAT=<ID=DS,Number=A,Type=Float,Description="ALT dosage">')
    lines += [f"##contig=<ID={c}>" for c in CHROMS]
    lines.append("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *fam_order]))
    calls = {0.0: "0/0", 1.0: "0/1", 2.0: "1/1"}
    for j in range(dosages.shape[1]):
        alt = "." if properties["allele_1"][j] == "0" else properties["allele_1"][j]
        fields = [properties["chromosome"][j], str(properties["bp_position"][j]), properties["sid"][j]]
        fields += [properties["allele_2"][j], alt, ".", ".", ".", "GT:DS" if ds else "GT"]
        for d in dosages[:, j]:
            gt = "./." if np.isnan(d) else calls[float(d)]
            fields.append(f"{gt}:{'.' if np.isnan(d) else f'{d:g}'}" if ds else gt)
        lines.append("\t".join(fields))
    Path(path).write_text("\n".join(lines) + "\n")


def _plink(*args, cwd):
    tool = args[0]
    limits = ["--threads", "1", "--memory", "1000"]  # plink2 wants >= 640 MB
    subprocess.run([tool, *args[1:], *limits], cwd=cwd, check=True, capture_output=True)


# format -> the [genotypes] lines naming the converted files (all beside g.bed)
CONVERTED = {
    "pfile": 'pfile = "p"',
    "vcf": 'vcf = "v.vcf.gz"',
    "vcf DS": 'vcf = "ds.vcf.gz"\nfield = "DS"',
    "bcf": 'vcf = "b.bcf"',
    "bgen 1.2": 'bgen = "b12.bgen"\nsample = "b12.sample"',
    "bgen 1.3": 'bgen = "b13.bgen"\nsample = "b13.sample"',
    "plink1.9 vcf": 'vcf = "v19.vcf.gz"',
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The PLINK 1 cohort and its conversions by plink2 (and plink1.9); tests must not write into it."""
    if PLINK2 is None:
        pytest.skip("plink2 not installed (apt-get install plink2)")
    folder = tmp_path_factory.mktemp("formats")
    *_, properties = _write_cohort(folder)
    bfile = ["--bfile", "g"]
    _plink(PLINK2, *bfile, "--make-pgen", "--out", "p", cwd=folder)
    # id-paste=iid: the VCF sample name is the IID (plink2 writes FID_IID when the FIDs differ from it)
    _plink(PLINK2, *bfile, "--export", "vcf", "bgz", "id-paste=iid", "--out", "v", cwd=folder)
    _plink(PLINK2, *bfile, "--export", "vcf", "bgz", "vcf-dosage=DS-force", "id-paste=iid", "--out", "ds", cwd=folder)
    _plink(PLINK2, *bfile, "--export", "bcf", "id-paste=iid", "--out", "b", cwd=folder)
    # ref-last puts ALT (the .bim's A1) first, the allele a BGEN is read as counting
    _plink(PLINK2, *bfile, "--export", "bgen-1.2", "ref-last", "--out", "b12", cwd=folder)
    _plink(PLINK2, *bfile, "--export", "bgen-1.3", "ref-last", "--out", "b13", cwd=folder)
    _plink(PLINK2, *bfile, "--export", "bgen-1.2", "ref-first", "--out", "b12ref", cwd=folder)
    _plink(PLINK2, *bfile, "--export", "bgen-1.1", "--out", "b11", cwd=folder)
    if PLINK19:
        _plink(PLINK19, *bfile, "--recode", "vcf-iid", "bgz", "--keep-allele-order", "--out", "v19", cwd=folder)
        _plink(PLINK19, *bfile, "--recode", "vcf-iid", "bgz", "--out", "v19minor", cwd=folder)
    reference = load_cohort(_toml(folder, 'bfile = "g"', "bfile.toml"))
    return folder, reference, properties


def _association(cohort):
    from explain import logistic_association

    return logistic_association(cohort.genotypes, cohort.labels, cohort.covariates)["p_assoc"].to_numpy()


@needs_plink2
@pytest.mark.parametrize("fmt", list(CONVERTED))
def test_every_format_loads_what_plink1_loads(converted, fmt):
    folder, reference, _ = converted
    if fmt.startswith("plink1.9") and PLINK19 is None:
        pytest.skip("plink1.9 not installed (apt-get install plink1.9)")
    cohort = load_cohort(_toml(folder, CONVERTED[fmt], f"{fmt.replace(' ', '_')}.toml"))
    assert reference.genotypes.shape == (N, M) and (reference.snps["a1"] == "0").sum() == 1
    np.testing.assert_array_equal(cohort.subject_ids, reference.subject_ids)
    np.testing.assert_array_equal(cohort.labels, reference.labels)
    pd.testing.assert_frame_equal(cohort.snps, reference.snps)
    np.testing.assert_array_equal(cohort.genotypes, reference.genotypes)  # NaN in the same places
    assert np.isnan(cohort.genotypes).sum() > 100 and cohort.genotypes.dtype == np.float32
    pd.testing.assert_frame_equal(cohort.pcs, reference.pcs)
    np.testing.assert_array_equal(_association(cohort), _association(reference))
    assert set(cohort.spec.genotypes.files()) <= set(cohort.input_files())


@needs_plink2
def test_bgen_ref_first_counts_the_ref_allele(converted):
    folder, reference, _ = converted
    cohort = load_cohort(_toml(folder, 'bgen = "b12ref.bgen"\nsample = "b12ref.sample"', "ref_first.toml"))
    # allele 1 is the first allele of the .bgen: with ref-first that is REF, the .bim's A2
    swapped = reference.snps[["a2", "a1"]].set_axis(["a1", "a2"], axis=1)
    pd.testing.assert_frame_equal(cohort.snps[["a1", "a2"]], swapped)
    np.testing.assert_array_equal(cohort.genotypes, 2 - reference.genotypes)


@needs_plink2
@needs_plink19
def test_plink19_vcf_without_keep_allele_order_has_the_minor_allele_as_alt(converted):
    folder, reference, _ = converted
    cohort = load_cohort(_toml(folder, 'vcf = "v19minor.vcf.gz"', "minor.toml"))
    # plink1.9 resets A1 to the minor allele unless --keep-allele-order: those SNPs come back flipped
    flipped = (cohort.snps["a1"] != reference.snps["a1"]).to_numpy()
    major = np.nanmean(reference.genotypes, axis=0) > 1
    assert flipped.any() and (~flipped).any()
    np.testing.assert_array_equal(flipped, major)
    np.testing.assert_array_equal(cohort.genotypes[:, flipped], 2 - reference.genotypes[:, flipped])
    np.testing.assert_array_equal(cohort.genotypes[:, ~flipped], reference.genotypes[:, ~flipped])


@needs_plink2
def test_male_chrx_calls_read_as_plink1_stores_them(tmp_path):
    """plink2 writes a male's chrX call haploid (VCF "1", BGEN ploidy 1); PLINK 1 stores it as homozygous."""
    from bed_reader import to_bed

    from migtrans.data._bgen import BgenReader
    from migtrans.data._genotypes import Plink1Reader
    from migtrans.data._pgen import Plink2Reader
    from migtrans.data._vcf import VcfReader
    from migtrans.loci import normalise_chrom

    rng = np.random.default_rng(5)
    sex = np.array([1, 2, 1, 2, 1, 1, 2, 2, 1])  # 1 = male
    dosages = rng.integers(0, 3, (9, 7)).astype(np.float32)
    dosages[sex == 1, 3:] = rng.choice([0.0, 2.0], size=(5, 4))
    dosages[0, 4] = np.nan
    ids = [f"x{i}" for i in range(9)]
    to_bed(
        tmp_path / "x.bed",
        dosages,
        properties={
            "iid": ids,
            "sex": sex,
            "sid": [f"rs{j}" for j in range(7)],
            "chromosome": ["1"] * 3 + ["23"] * 4,
            "bp_position": np.arange(1, 8) * 100,
        },
    )
    _plink(PLINK2, "--bfile", "x", "--make-pgen", "--out", "x", cwd=tmp_path)
    _plink(PLINK2, "--bfile", "x", "--export", "vcf", "id-paste=iid", "--out", "x", cwd=tmp_path)
    _plink(PLINK2, "--bfile", "x", "--export", "bgen-1.3", "ref-last", "--out", "x", cwd=tmp_path)
    rows = np.array([8, 0, 3, 5, 1, 2, 7, 4, 6])
    snps, expected = Plink1Reader(tmp_path / "x").read(rows)
    readers = (
        Plink2Reader(tmp_path / "x"),
        VcfReader(tmp_path / "x.vcf"),
        BgenReader(tmp_path / "x.bgen", tmp_path / "x.sample"),
    )
    for reader in readers:
        got_snps, got = reader.read(rows)
        np.testing.assert_array_equal(got, expected)
        # plink2 writes X where the .bim says 23; the loci code reads both as X
        assert list(got_snps["chrom"].map(normalise_chrom)) == list(snps["chrom"].map(normalise_chrom))
        pd.testing.assert_frame_equal(got_snps.drop(columns="chrom"), snps.drop(columns="chrom"))


def test_hand_written_vcf_loads_what_plink1_loads(tmp_path):
    """Without plink2: a VCF (GT, and DS) written here from the same dosages."""
    ids, fam_order, dosages, properties = _write_cohort(tmp_path)
    _write_vcf(tmp_path / "h.vcf", fam_order, dosages, properties, ds=True)
    reference = load_cohort(_toml(tmp_path, 'bfile = "g"', "bfile.toml"))
    for lines in ('vcf = "h.vcf"', 'vcf = "h.vcf"\nfield = "DS"'):
        cohort = load_cohort(_toml(tmp_path, lines))
        np.testing.assert_array_equal(cohort.subject_ids, ids)
        pd.testing.assert_frame_equal(cohort.snps, reference.snps)
        np.testing.assert_array_equal(cohort.genotypes, reference.genotypes)


def test_vcf_calls_count_alt_half_calls_are_missing_haploid_counts_twice(tmp_path):
    from migtrans.data._vcf import VcfReader

    vcf = tmp_path / "calls.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        '##FORMAT=<ID=DS,Number=A,Type=Float,Description="ALT dosage">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\tb\tc\td\te\tf\tg\n"
        "1\t10\t.\tA\tG\t.\t.\t.\tGT:DS\t0/0:0\t0|1:0.9\t1/1:2\t./.:.\t./1:1.5\t1:1\t0:0\n"
    )
    snps, gt = VcfReader(vcf).read(np.arange(7)[::-1])
    np.testing.assert_array_equal(gt[::-1, 0], [0, 1, 2, np.nan, np.nan, 2, 0])
    assert snps.loc[0, "snp"] == "1:10:A:G" and (snps.loc[0, "a1"], snps.loc[0, "a2"]) == ("G", "A")
    _, ds = VcfReader(vcf, "DS").read(np.arange(7))
    np.testing.assert_allclose(ds[:, 0], [0, 0.9, 2, np.nan, 1.5, 1, 0])


def test_bgen_probabilities_give_the_expected_allele1_count():
    from migtrans.data._bgen import allele1_dosage

    nan = np.nan
    unphased = np.array([[1, 0, 0], [0.2, 0.5, 0.3], [0, 0, 1], [0.6, 0.4, nan], [nan, nan, nan]])
    got = allele1_dosage(unphased, False, np.array([2, 2, 2, 1, 2]), np.array([0, 0, 0, 0, 1], bool))
    np.testing.assert_allclose(got, [2, 0.9, 0, 1.2, nan])
    phased = np.array([[1, 0, 0, 1], [0.7, 0.3, 0.9, 0.1]])
    np.testing.assert_allclose(allele1_dosage(phased, True, np.array([2, 2]), np.zeros(2, bool)), [1, 1.6])
    haploid = np.array([[1, 0], [0.3, 0.7]])  # a chrY or male chrX variant: no diploid sample at all
    np.testing.assert_allclose(allele1_dosage(haploid, False, np.array([1, 1]), np.zeros(2, bool)), [2, 0.6])


@pytest.mark.parametrize(
    ("lines", "culprits"),
    [
        ('bfile = "g"\nvcf = "h.vcf"', ("exactly one of", "'bfile' and 'vcf'")),
        ('build = "GRCh37"', ("exactly one of", "found none")),
        ('bgen = "g.bgen"', ("genotypes.bgen", "needs 'genotypes.sample'")),
        ('vcf = "h.vcf"\nsample = "g.sample"', ("genotypes.sample", "'genotypes.bgen' only")),
        ('pfile = "p"\nfield = "DS"', ("genotypes.field", "'genotypes.vcf' only")),
        ('vcf = "h.vcf"\nfield = "GP"', ("genotypes.field", "GT, DS", "'GP'")),
        ('bfile = "g.pgen"', ("genotypes.bfile", "genotypes.pfile")),
        ('bfile = "g"\nbfiles = "x"', ("genotypes.bfiles", "allowed")),
    ],
)
def test_genotype_keys_are_checked(tmp_path, lines, culprits):
    _write_cohort(tmp_path)
    with pytest.raises(CohortError) as info:
        load_cohort(_toml(tmp_path, lines))
    message = str(info.value)
    assert "\n" not in message and "cohort.toml" in message
    for culprit in culprits:
        assert culprit in message, (culprit, message)


def test_bgen_without_its_sample_file(tmp_path):
    _write_cohort(tmp_path)
    (tmp_path / "g.bgen").write_bytes(b"\0" * 64)
    with pytest.raises(CohortError, match=r"g\.sample: file not found"):
        load_cohort(_toml(tmp_path, 'bgen = "g.bgen"\nsample = "g.sample"'))


def test_vcf_sample_lists_are_matched_as_a_fam_is(tmp_path):
    """A genotype-only subject is ignored and a subject without genotypes dropped with a warning, as for a
    .fam: the VCF and the .fam name the same extra subject and lack the same one."""
    ids, fam_order, dosages, properties = _write_cohort(tmp_path)
    renamed = [("zz99" if s == "g05" else s) for s in fam_order]
    _write_vcf(tmp_path / "h.vcf", renamed, dosages, properties)
    fam = tmp_path / "g.fam"
    fam.write_text(fam.read_text().replace(" g05 ", " zz99 "))
    loaded = []
    for lines in ('bfile = "g"', 'vcf = "h.vcf"'):
        with pytest.warns(CohortWarning, match="g05"):
            loaded.append(load_cohort(_toml(tmp_path, lines)))
    for cohort in loaded:
        assert cohort.dropped == {"g05": "no genotype data"}
        assert list(cohort.subject_ids) == [s for s in ids if s != "g05"]
    np.testing.assert_array_equal(loaded[1].genotypes, loaded[0].genotypes)


def test_vcf_without_the_ds_field(tmp_path):
    _, fam_order, dosages, properties = _write_cohort(tmp_path)
    _write_vcf(tmp_path / "h.vcf", fam_order, dosages, properties)
    with pytest.raises(CohortError, match=r"h\.vcf: FORMAT field 'DS' is not declared in the header .*GT"):
        load_cohort(_toml(tmp_path, 'vcf = "h.vcf"\nfield = "DS"'))


def test_dosage_outside_0_2_names_variant_and_subject(tmp_path):
    _, fam_order, dosages, properties = _write_cohort(tmp_path)
    dosages[fam_order.index("g07"), 9] = 1
    _write_vcf(tmp_path / "h.vcf", fam_order, dosages, properties, ds=True)
    vcf = tmp_path / "h.vcf"
    lines = vcf.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if "\trs1009\t" in line)
    column = 9 + fam_order.index("g07")
    fields = lines[row].split("\t")
    fields[column] = "0/1:2.5"
    lines[row] = "\t".join(fields)
    vcf.write_text("\n".join(lines) + "\n")
    with pytest.raises(CohortError, match=r"subject 'g07': variant 'rs1009': DS must be .* found 2.5"):
        load_cohort(_toml(tmp_path, 'vcf = "h.vcf"\nfield = "DS"'))


def test_multiallelic_vcf_site_is_refused_with_its_id(tmp_path):
    _, fam_order, dosages, properties = _write_cohort(tmp_path)
    _write_vcf(tmp_path / "h.vcf", fam_order, dosages, properties)
    vcf = tmp_path / "h.vcf"
    text = vcf.read_text()
    record = next(line for line in text.splitlines() if "\trs1012\t" in line)
    fields = record.split("\t")
    fields[4] += ",A" if fields[4] != "A" and fields[3] != "A" else ",C"
    vcf.write_text(text.replace(record, "\t".join(fields)))
    with pytest.raises(CohortError, match=r"h\.vcf: variant 'rs1012' is multi-allelic .*bcftools norm -m -any"):
        load_cohort(_toml(tmp_path, 'vcf = "h.vcf"'))


@needs_plink2
def test_multiallelic_pvar_variant_is_refused_with_its_id(converted, tmp_path):
    folder, _, _ = converted
    shutil.copy(folder / "phenotypes.tsv", tmp_path)
    text = gzip.decompress((folder / "v.vcf.gz").read_bytes()).decode()  # BGZF is gzip
    record = next(line for line in text.splitlines() if "\trs1012\t" in line)
    fields = record.split("\t")
    fields[4] += ",A" if fields[4] != "A" and fields[3] != "A" else ",C"
    (tmp_path / "multi.vcf").write_text(text.replace(record, "\t".join(fields)))
    _plink(PLINK2, "--vcf", "multi.vcf", "--make-pgen", "--out", "multi", cwd=tmp_path)
    with pytest.raises(CohortError, match=r"multi\.pvar: line \d+: variant 'rs1012' is multi-allelic"):
        load_cohort(_toml(tmp_path, 'pfile = "multi"'))


def test_multiallelic_bgen_variant_is_refused_with_its_id(tmp_path):
    """plink2 cannot export a multi-allelic BGEN yet: one uncompressed v1.2 variant written byte by byte."""
    import struct

    _write_cohort(tmp_path)
    (tmp_path / "multi.sample").write_text(
        "ID_1 ID_2 missing\n0 0 0\n" + "".join(f"g{i:02d} g{i:02d} 0\n" for i in range(N))
    )

    def text(value, length_format):
        return struct.pack(length_format, len(value)) + value.encode()

    header = struct.pack("<IIII4sI", 20, 20, 1, N, b"bgen", 2 << 2)  # layout 2, no compression
    variant = text("", "<H") + text("rs77", "<H") + text("1", "<H") + struct.pack("<IH", 500, 3)
    variant += b"".join(text(allele, "<I") for allele in "ACG") + struct.pack("<I", 4) + b"\0" * 4
    (tmp_path / "multi.bgen").write_bytes(header + variant)
    with pytest.raises(CohortError, match=r"multi\.bgen: variant 'rs77' has 3 alleles \(A,C,G\)"):
        load_cohort(_toml(tmp_path, 'bgen = "multi.bgen"\nsample = "multi.sample"'))


@needs_plink2
def test_damaged_bgen_and_pgen_stop_with_one_line(converted, tmp_path):
    folder, _, _ = converted
    shutil.copy(folder / "phenotypes.tsv", tmp_path)
    data = (folder / "b13.bgen").read_bytes()
    (tmp_path / "cut.bgen").write_bytes(data[: len(data) // 2])  # cbgen's own index would crash the process
    shutil.copy(folder / "b13.sample", tmp_path / "cut.sample")
    with pytest.raises(CohortError, match=r"cut\.bgen: truncated: the file ends inside variant \d+ of 211"):
        load_cohort(_toml(tmp_path, 'bgen = "cut.bgen"\nsample = "cut.sample"'))
    with pytest.raises(CohortError, match=r"b11\.bgen: BGEN v1\.1 \(layout 1\) is not read"):
        load_cohort(_toml(tmp_path, f'bgen = "{folder / "b11.bgen"}"\nsample = "{folder / "b11.sample"}"'))
    for ext in (".pgen", ".pvar"):
        shutil.copy(folder / f"p{ext}", tmp_path / f"p{ext}")
    psam = (folder / "p.psam").read_text().splitlines()
    (tmp_path / "p.psam").write_text("\n".join(psam[:-1]) + "\n")
    with pytest.raises(CohortError, match=r"p\.pgen: holds 37 samples x 211 variants, but the \.psam lists 36"):
        load_cohort(_toml(tmp_path, 'pfile = "p"'))


def test_plink_prefix_with_a_dot(tmp_path):
    _write_cohort(tmp_path)
    for ext in (".bed", ".bim", ".fam"):
        (tmp_path / f"g{ext}").rename(tmp_path / f"cohort.v2{ext}")
    cohort = load_cohort(_toml(tmp_path, 'bfile = "cohort.v2"'))
    assert cohort.genotypes.shape == (N, M)
    assert tmp_path / "cohort.v2.bim" in cohort.input_files()
