"""Genomic token count (issue 18, item 6): training throughput of MIGTrans when SNPs are spread like a
genotyping array, with one token per locus (unbounded) against at most `max_genomic_tokens` (512, the
default).

The layouts: 300 loci (the simulator's LD blocks for 5,000 SNPs), 2,344 loci (3,000 SNPs spread like an
array in 250 kb windows, the issue's measurement) and 17,007 loci (500,000 array SNPs). Each run times
forward + backward + an AdamW step of the three-modality model (defaults: d_model 32, 53 FNC nodes, a
4 mm gray-matter volume) on random inputs, batch 32, and reports subjects per second (median of 5 steps
after 1 warm-up). Single-modality (SNP only) throughput is reported too, since the genomic stream is what
grows.

With one token per locus the 17,007-locus layout is not run: one attention map is 17,008^2 floats (1.2 GB)
per head and subject.

Run: python benchmarks/bench_tokens.py
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from migtrans.model import MIGTrans, ModelConfig

from _common import save

BATCH = 32


def layout(n_loci, snps_per_locus):
    n_snps = n_loci * snps_per_locus
    index = np.arange(n_snps).reshape(n_loci, snps_per_locus)
    chrom = np.minimum(np.arange(n_loci) * 22 // n_loci, 21)
    return n_snps, (index, np.ones_like(index, dtype=bool)), chrom


def throughput(n_loci, snps_per_locus, max_tokens, modalities):
    torch.manual_seed(0)
    n_snps, loci, chrom = layout(n_loci, snps_per_locus)
    config = ModelConfig(modalities=modalities, max_genomic_tokens=max_tokens)
    shape = (40, 48, 40)
    model = MIGTrans(config, n_snps=n_snps, loci_index=loci, locus_chrom=chrom, n_nodes=53, volume_shape=shape)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    inputs = {"snp": torch.randn(BATCH, n_snps)}
    if "fnc" in modalities:
        inputs["fnc"] = torch.randn(BATCH, 53, 53)
    if "smri" in modalities:
        inputs["smri"] = torch.randn(BATCH, *shape)
    labels = torch.randint(0, 2, (BATCH,))
    times = []
    for step in range(6):
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(**inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:
            times.append(time.perf_counter() - start)
    return {
        "genomic_tokens": model.snp_encoder.n_tokens,
        "subjects_per_second": round(BATCH / float(np.median(times)), 1),
    }


def main():
    torch.set_num_threads(2)
    rows = []
    for n_loci, per in ((300, 17), (2344, 1), (17007, 29)):
        for max_tokens in (10**9, 512):
            if n_loci <= 512 and max_tokens == 512:
                continue
            for modalities in (("snp",), ("snp", "fnc", "smri")):
                if n_loci == 17007 and max_tokens == 10**9:
                    # one token per locus: each attention map alone is 17,008^2 x 4 bytes = 1.2 GB per head and
                    # subject, so a batch of 32 cannot be held in 24 GB
                    continue
                row = {"loci": n_loci, "snps": n_loci * per, "max_genomic_tokens": None if max_tokens == 10**9 else 512}
                row["modalities"] = "+".join(modalities)
                row.update(throughput(n_loci, per, max_tokens, modalities))
                rows.append(row)
                print(json.dumps(row), flush=True)
    save("tokens", {"batch": BATCH, "threads": 2, "rows": rows})


if __name__ == "__main__":
    main()
