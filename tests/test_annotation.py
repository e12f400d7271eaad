"""Gene annotation from the packaged GENCODE genes (checked against GeneLocator's own lookup) and BED files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from explain import gene_table, locus_genes, nearest_genes
from migtrans import ParameterError


@pytest.fixture(scope="module")
def grch37():
    return gene_table("grch37")


def test_known_genes_grch37(grch37):
    # RNF223 spans chr1:1,006,347-1,009,686 on GRCh37 (GENCODE 32 lift)
    res = nearest_genes(["chr1", "1"], [1_007_000, 1_000_000], grch37)
    assert res.loc[0, "gene"] == "RNF223" and res.loc[0, "gene_distance"] == 0
    assert res.loc[1, "gene_distance"] > 0


def test_agrees_with_genelocator_lookup(grch37):
    from genelocator import get_genelocator

    locator = get_genelocator("GRCh37", coding_only=True)
    rng = np.random.default_rng(0)
    chroms = rng.choice([str(c) for c in range(1, 23)], 60)
    positions = rng.integers(1_000_000, 50_000_000, 60)
    ours = nearest_genes(chroms, positions, grch37)
    for (c, p), g in zip(zip(chroms, positions), ours["gene"]):
        theirs = {hit["symbol"] for hit in locator.at(c, int(p))}
        assert set(g.split(";")) & theirs, (c, p, g, theirs)


def test_builds_differ():
    a = nearest_genes(["6"], [32_500_000], gene_table("grch37"))["gene"].iloc[0]
    b = nearest_genes(["6"], [32_500_000], gene_table("grch38"))["gene"].iloc[0]
    assert a and b


def test_user_bed_file(tmp_path):
    bed = tmp_path / "genes.bed"
    bed.write_text("chr2\t99\t200\tGENE_A\t0\t+\n2\t499\t900\tGENE_B\n")
    genes = gene_table(bed)
    assert genes["start"].tolist() == [100, 500]  # BED starts are 0-based
    res = nearest_genes(["2", "2", "2"], [100, 320, 1000], genes)
    assert res["gene"].tolist() == ["GENE_A", "GENE_A", "GENE_B"]
    assert res["gene_distance"].tolist() == [0, 120, 100]
    loci = pd.DataFrame({"chrom": ["2", "2"], "start": [150, 300], "end": [600, 320]})
    assert locus_genes(loci, genes) == ["GENE_A;GENE_B", "GENE_A"]
    with pytest.raises(ParameterError, match="genes"):
        gene_table(tmp_path / "missing.bed")
