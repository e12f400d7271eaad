"""Shared fixtures: a seeded rng, the Agg backend, and a tiny hand-written cohort with odd sizes
(12 subjects, 31 SNPs, 5 FNC nodes, 7 x 8 x 9 volumes) so that a transposed axis fails loudly."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

N_SUBJECTS, N_SNPS, N_NODES, GRID, BATCH = 12, 31, 5, (7, 8, 9), 3
SUBSETS = [s for r in (1, 2, 3) for s in itertools.combinations(("snp", "fnc", "smri"), r)]


def model_inputs(batch=BATCH, seed=1):
    """A seeded batch of model inputs (symmetric FNC) for the tiny test shapes."""
    import torch

    g = torch.Generator().manual_seed(seed)
    fnc = torch.randn(batch, N_NODES, N_NODES, generator=g)
    return dict(
        snp=torch.randn(batch, N_SNPS, generator=g),
        fnc=(fnc + fnc.transpose(1, 2)) / 2,
        smri=torch.randn(batch, *GRID, generator=g),
    )


@pytest.fixture(scope="module")
def loci():
    """Locus partition of N_SNPS SNPs on two chromosomes: (table, (index, valid))."""
    import pandas as pd

    from migtrans.loci import locus_index, partition_loci

    chrom = ["1"] * 20 + ["2"] * (N_SNPS - 20)
    pos = np.concatenate([np.arange(20) * 30_000 + 1, np.arange(N_SNPS - 20) * 1_000 + 1])
    snps = pd.DataFrame({"snp": [f"rs{j}" for j in range(N_SNPS)], "chrom": chrom, "pos": pos})
    table = partition_loci(snps, window_kb=100, max_snps=3)
    return table, locus_index(table, N_SNPS)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own sMRI voxel cache folder."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("MIGTRANS_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


# A tiny MIGTrans run shared by the training and explanation tests.
# The network alone: on 40 subjects the default elastic-net prior keeps few features and the network's weight
# on it is often 0, which leaves a constant model with nothing to explain. The prior and its weight have their
# own tests (test_linear_prior.py).
TINY_MODEL = dict(d_model=8, n_heads=2, smri_cnn_channels=(4,), n_slice_attention_layers=1, linear_prior=False)
TINY_TRAIN = dict(n_folds=2, epochs=2, batch_size=16, patience=5)


@pytest.fixture(scope="session")
def sim_cohort(tmp_path_factory):
    """A 40-subject simulated cohort (200 SNPs, 8 mm sMRI)."""
    from migtrans.simulate import simulate_cohort

    return simulate_cohort(tmp_path_factory.mktemp("sim") / "c", n_subjects=40, n_snps=200, seed=3, resolution=8)


@pytest.fixture(scope="session")
def baseline_run(sim_cohort, tmp_path_factory):
    """A 2-fold, 2-epoch MIGTrans run on `sim_cohort` (every subject out of fold); tests must not write into it."""
    from migtrans.training import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "base"
    return train(sim_cohort.toml_path, out, TrainConfig(**TINY_TRAIN), TINY_MODEL, progress=False)


@pytest.fixture(scope="session")
def explanation_set_run(sim_cohort, tmp_path_factory):
    """The same tiny run with a quarter of the subjects held out of every fold as an explanation set."""
    from migtrans.training import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "set"
    config = TrainConfig(**TINY_TRAIN, explain_fraction=0.25)
    return train(sim_cohort.toml_path, out, config, TINY_MODEL, progress=False)


def write_tiny_cohort(folder, seed=0):
    """Write a small valid cohort in the real formats; return (toml path, the arrays written)."""
    import nibabel as nib
    from bed_reader import to_bed

    folder = Path(folder)
    (folder / "smri").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = [f"s{i:02d}" for i in range(N_SUBJECTS)]
    labels = np.array(["SZ", "HC"] * (N_SUBJECTS // 2))
    rng.shuffle(labels)
    lines = ["subject_id\tdiagnosis\tage\tsex\tsite"]
    for i, s in enumerate(ids):
        lines.append(f"{s}\t{labels[i]}\t{30 + i}\t{'MF'[i // 2 % 2]}\tsite{i % 2 + 1}")
    (folder / "phenotypes.tsv").write_text("\n".join(lines) + "\n")

    dosages = rng.integers(0, 3, size=(N_SUBJECTS, N_SNPS)).astype(np.float32)
    dosages[3, 4] = np.nan
    to_bed(
        folder / "genotypes.bed",
        dosages,
        properties={
            "fid": ids,
            "iid": ids,
            "sid": [f"rs{100 + j}" for j in range(N_SNPS)],
            "chromosome": ["1"] * 20 + ["2"] * (N_SNPS - 20),
            "bp_position": np.arange(1, N_SNPS + 1) * 1000,
            "allele_1": ["A"] * N_SNPS,
            "allele_2": ["G"] * N_SNPS,
        },
    )

    a = rng.normal(0, 0.3, size=(N_SUBJECTS, N_NODES, N_NODES)).astype(np.float32)
    fnc = (a + a.transpose(0, 2, 1)) / 2
    fnc[:, np.arange(N_NODES), np.arange(N_NODES)] = 0
    np.save(folder / "fnc.npy", fnc)
    (folder / "fnc_subjects.txt").write_text("\n".join(ids) + "\n")
    node_lines = ["name\tdomain\tx\ty\tz"] + [f"n{k}\t{'ABCDE'[k]}\t{k}\t{-k}\t{2 * k}" for k in range(N_NODES)]
    (folder / "fnc_nodes.tsv").write_text("\n".join(node_lines) + "\n")

    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = [-10, -12, -14]
    base = np.zeros(GRID, dtype=np.float32)
    base[1:-1, 1:-1, 1:-1] = 0.6
    volumes = []
    for s in ids:
        vol = np.clip(base + rng.normal(0, 0.05, GRID).astype(np.float32) * (base > 0), 0, 1)
        volumes.append(vol)
        nib.save(nib.Nifti1Image(vol, affine), folder / "smri" / f"{s}.nii.gz")

    (folder / "cohort.toml").write_text(
        """[phenotypes]
path = "phenotypes.tsv"
id_column = "subject_id"
label_column = "diagnosis"
positive_label = "SZ"
covariates = ["age", "sex", "site"]
site_column = "site"

[genotypes]
bfile = "genotypes"
build = "GRCh37"

[fnc]
path = "fnc.npy"
subjects = "fnc_subjects.txt"
nodes = "fnc_nodes.tsv"

[smri]
template = "smri/{subject_id}.nii.gz"
mask = "auto"
"""
    )
    arrays = {
        "ids": ids,
        "labels": labels,
        "dosages": dosages,
        "fnc": fnc,
        "volumes": np.stack(volumes),
        "affine": affine,
    }
    return folder / "cohort.toml", arrays


@pytest.fixture
def tiny_cohort(tmp_path):
    """(toml path, arrays) of a freshly written tiny cohort."""
    return write_tiny_cohort(tmp_path / "tiny")


def files_under(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())
