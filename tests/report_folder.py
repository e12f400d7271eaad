"""A small synthetic report folder and run folder for the HTML report tests: odd table sizes, settings with
distinctive numbers (123 permutations, 17 IG steps, 3 folds) and hostile identifiers in every kind of name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from reports import FigureFile

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
N_SUBJECTS, N_SNPS, N_LOCI, N_REGIONS, N_NODES = 12, 31, 9, 11, 5

SETTINGS = {
    "baseline": "mean",
    "fdr": "Benjamini-Hochberg",
    "fwer": "max-T",
    "folds": 3,
    "fnc_edge_attribution": "sum of the (i, j) and (j, i) entries",
    "ig_relative_delta_max": 0.2,
    "ig_relative_delta_median": 0.001,
    "lambda_gc": 1.23,
    "method": "integrated_gradients",
    "n_permutations": 123,
    "n_steps": 17,
    "out_of_fold": True,
    "permutation_scheme": "labels shuffled within fold x site",
    "quadrature": "gausslegendre",
    "random_state": 5,
    "rollout_method": "gradient",
    "smoothgrad_samples": 0,
    "seconds": 3.2,
    "statistic": "contrast within strata over its permutation SD (z), cases - controls",
    "target": "positive-class log-odds",
    "genes": "grch38",
    "atlas": "aal",
    "region_attribution": "sum over its voxels",
    "ranking": "contrast (mean attribution of cases minus controls within strata), largest first; ties by p_perm",
}

CONFIG = """[run]
cohort = "{cohort}"
migtrans_version = "0.1.0"

[train]
modalities = ["snp", "fnc", "smri"]
n_folds = 3
epochs = 41
batch_size = 16
lr = 0.0007
weight_decay = 0.02
read_sparsity = 0.4
warmup_epochs = 3
patience = 6
val_fraction = 0.2
label_smoothing = 0.05
window_kb = 125.0
max_snps_per_locus = 48
seed = 11
model = "migtrans"

[model]
modalities = ["snp", "fnc", "smri"]
d_model = 48
n_heads = 3
ffn_mult = 2
dropout = 0.1
snp_encoder = "locus"
fnc_projection = "shared"
locus_hidden = 16
smri_slice_axis = 2
smri_downsample = 2
smri_cnn_channels = [8, 16]
smri_rnn = "gru"
n_slice_attention_layers = 1
cross_attention = ["fnc<-smri", "snp<-fnc+smri"]
n_fusion_layers = 2
modality_reads = true
"""


def _tested(rng, n):
    p = np.sort(rng.uniform(0.0005, 1, n))
    contrast = np.sort(rng.normal(0, 1e-2, n))[::-1]  # ranked by contrast, largest first
    return pd.DataFrame(
        {
            "attribution": rng.normal(0, 1e-4, n),
            "contrast": contrast,
            "stat": rng.normal(0, 2, n),
            "p_perm": p,
            "p_fwer": np.minimum(1, p * 10),
            "q_fdr": np.minimum(1, p * 3),
            "rank": np.arange(1, n + 1),
        }
    )


def _figure(folder: Path, name: str, section: str, data: tuple) -> FigureFile:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1, 2], [1, 3, 2])
    files = []
    for ext in ("png", "pdf"):
        path = folder / "figures" / f"{name}.{ext}"
        fig.savefig(path, dpi=50)
        files.append(path)
    plt.close(fig)
    return FigureFile(name, section, f"{name} title {EVIL}", f"{name} caption", tuple(files), data)


def make_report_folder(root: Path, *, seed: int = 0) -> tuple[Path, Path, list[FigureFile]]:
    """Write ``root/run`` (config, manifest, metrics, predictions, cohort) and ``root/run/explanations``.

    Returns
    -------
    report_dir, run_dir, figures
    """
    rng = np.random.default_rng(seed)
    run = root / "run"
    report = run / "explanations"
    cohort = root / "cohort"
    for folder in (report / "figures", cohort):
        folder.mkdir(parents=True, exist_ok=True)

    subjects = [f"sub-{i:02d}" for i in range(N_SUBJECTS - 1)] + [EVIL]
    labels = np.arange(N_SUBJECTS) % 2
    # stand-in node labels are flagged the way migtrans's simulator flags them: a "note" column
    nodes = [f"N{i}" for i in range(N_NODES - 1)] + [EVIL]
    pd.DataFrame(
        {
            "name": nodes,
            "domain": ["SC", "AU", "SM", "VI", "CC"],
            "x": 1.0,
            "y": 2.0,
            "z": 3.0,
            "note": "stand-in node: test fixture",
        }
    ).to_csv(cohort / "fnc_nodes.tsv", sep="\t", index=False)
    (cohort / "cohort.toml").write_text(
        '[phenotypes]\npath = "p.tsv"\ncovariates = ["age", "sex"]\n'
        'site_column = "site"\n\n[genotypes]\nbfile = "g"\nbuild = "GRCh38"\n\n'
        '[fnc]\npath = "fnc.npy"\nnodes = "fnc_nodes.tsv"\n'
    )
    (run / "config.toml").write_text(CONFIG.format(cohort=(cohort / "cohort.toml").as_posix()))
    manifest = {
        "command": ["migtrans", "train", "cohort.toml", "--out", "run"],
        "seed": 11,
        "started": "2026-01-02T03:04:05+0000",
        "versions": {"migtrans": "0.1.0", "python": "3.11.7", "torch": "9.9.9"},
        "platform": "test",
        "inputs": {(cohort / "cohort.toml").as_posix(): "ab" * 32},
        "subjects": subjects,
        "dropped": {EVIL + "x": "no fnc data"},
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    metrics = pd.DataFrame(
        {
            "fold": ["1", "2", "3", "mean", "sd"],
            "accuracy": [0.5, 0.6, 0.55, 0.55, 0.05],
            "balanced_accuracy": [0.5, 0.6, 0.55, 0.55, 0.05],
            "precision": 0.5,
            "recall": 0.5,
            "f1": 0.5,
            "roc_auc": [0.52, 0.58, 0.55, 0.55, 0.03],
        }
    )
    metrics.to_csv(run / "metrics.csv", index=False)
    pd.DataFrame(
        {
            "subject_id": subjects,
            "fold": np.arange(N_SUBJECTS) % 3 + 1,
            "label": labels,
            "prob_positive": 0.5,
            "predicted": 1,
        }
    ).to_csv(run / "predictions.csv", index=False)

    snp_ids = [f"rs{j}" for j in range(N_SNPS)]
    snp_ids[2] = EVIL
    snps = pd.concat(
        [
            pd.DataFrame(
                {
                    "snp": snp_ids,
                    "chrom": ["1"] * 20 + ["10"] * 11,
                    "pos": np.arange(N_SNPS) * 1000 + 1,
                    "a1": "A",
                    "a2": "G",
                    "gene": ["GENE1"] * N_SNPS,
                    "locus": ["L1"] * N_SNPS,
                }
            ),
            _tested(rng, N_SNPS),
            pd.DataFrame({"beta_assoc": rng.normal(size=N_SNPS), "p_assoc": rng.uniform(size=N_SNPS)}),
        ],
        axis=1,
    )
    snps.loc[N_SNPS - 1, ["stat", "p_perm", "p_fwer", "q_fdr"]] = np.nan  # a monomorphic SNP
    snps.to_csv(report / "snps.csv", index=False)
    loci = pd.concat(
        [
            pd.DataFrame(
                {
                    "locus": [f"chr1:{i}-{i + 9}" for i in range(N_LOCI)],
                    "chrom": "1",
                    "start": np.arange(N_LOCI),
                    "end": np.arange(N_LOCI) + 9,
                    "n_snps": 3,
                    "lead_snp": "rs1",
                    "genes": "GENE1;GENE2",
                }
            ),
            _tested(rng, N_LOCI),
        ],
        axis=1,
    )
    loci.to_csv(report / "loci.csv", index=False)
    regions = pd.concat(
        [
            pd.DataFrame({"region": [f"Region_{i}" for i in range(N_REGIONS)], "atlas": "aal", "n_voxels": 7}),
            _tested(rng, N_REGIONS),
        ],
        axis=1,
    )
    regions.to_csv(report / "regions.csv", index=False)
    iu = np.triu_indices(N_NODES, 1)
    edges = pd.concat(
        [
            pd.DataFrame(
                {"node_i": np.array(nodes)[iu[0]], "node_j": np.array(nodes)[iu[1]], "domain_i": "SC", "domain_j": "CC"}
            ),
            _tested(rng, len(iu[0])),
        ],
        axis=1,
    )
    edges.to_csv(report / "connections.csv", index=False)
    pd.concat(
        [pd.DataFrame({"node": nodes, "domain": "SC", "x": 1.5, "y": -2.5, "z": 30.25}), _tested(rng, N_NODES)], axis=1
    ).to_csv(report / "nodes.csv", index=False)
    pd.DataFrame(
        {
            "modality": ["snp", "fnc", "smri"],
            "rollout_share": [0.5, 0.3, 0.2],
            "ig_share": [0.2, 0.7, 0.1],
            "ablation_auc_drop": np.nan,
        }
    ).to_csv(report / "modalities.csv", index=False)
    delta = np.full(N_SUBJECTS, 0.001)
    delta[-1] = 0.2  # the hostile subject is the one whose completeness error is large
    pd.DataFrame(
        {"subject_id": subjects, "fold": np.arange(N_SUBJECTS) % 3 + 1, "label": labels, "ig_relative_delta": delta}
    ).to_csv(report / "subjects.csv", index=False)
    (report / "settings.json").write_text(json.dumps({**SETTINGS, "run": run.as_posix()}))
    figures = [
        _figure(report, "manhattan", "Genomics", ("snps.csv",)),
        _figure(report, "connectome", "Connectome", ("connections.csv", "nodes.csv")),
        _figure(report, "history", "Performance", ("../folds/1/history.csv", "../folds/2/history.csv")),
    ]
    for k in (1, 2):
        (run / "folds" / str(k)).mkdir(parents=True)
        (run / "folds" / str(k) / "history.csv").write_text("epoch,train_loss\n1,0.7\n")
    return report, run, figures
