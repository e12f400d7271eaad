"""Does the transformer earn its place (issue 19)? MIGTrans against the baselines a reviewer asks for, on the
simulator's `easy` and `realistic` presets, with the same folds for every row.

Rows (each a 5-fold cross-validated run with seed 1, so every model sees the same folds and preprocessing):

- every size (300, 600, 1,000 subjects): MIGTrans on all three modalities, without and with its elastic-net
  prior (``linear_prior = true``; trained 12 epochs, early-stopped, or with the network's weight fitted on a
  validation split), elastic-net logistic regression (inner-CV tuned), late fusion of per-modality
  sparse models stacked on out-of-fold scores, and MIGTrans on one modality at a time;
- 600 subjects: the two ablations of what the transformer adds
  beyond its linear modality reads (reads only: ``modality_tokens = false``; tokens only:
  ``modality_reads = false``);
- ``easy_x3`` (600, 1,000, 2,000 subjects): the `easy` preset with the cross-modal interactions at their
  largest (``interactions=3``: the genotype-by-region and connectome-given-structure terms each carry 2.25
  units of liability variance against 1 for each modality's main effect), where a model that combines
  modalities has the most to gain over a linear one (issue 19's "+3 points on cohorts with cross-modal
  interactions"; bench_interactions.py gives an oracle's bound);
- the learning curves beyond 1,000 subjects (``--sizes 2000``);
- a null cohort (the `realistic` preset with labels independent of every feature, 600 subjects): MIGTrans,
  elastic net and late fusion (and MIGTrans with its prior), which must stay at chance (0.5 +- 0.06).

Results go to results/models.json after every row; a rerun skips the rows already there (``--fresh`` redoes
them). ``--cohort-seed S`` draws every cohort again with seed S (rows keyed ``.../seedS/...``), for the
cohort-to-cohort variation. Run: python benchmarks/bench_models.py [--presets easy,realistic]
[--sizes 300,600,1000] [--only NAME] [--rows KEYS] [--cohort-seed S]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

from migtrans.model import ModelConfig
from migtrans.simulate import simulate_cohort
from migtrans.training import RunFolder, TrainConfig, train

from _common import RESULTS, SCRATCH

ALL = ("snp", "fnc", "smri")
# Every MIGTrans row names its prior settings, so that a row means the same model whatever the defaults are:
# the network alone (the default until session 11), and the network with its elastic-net prior.
ALONE = ({"network_weight": "fixed"}, {"linear_prior": False})
# name -> (TrainConfig overrides, ModelConfig overrides)
MODELS = {
    "migtrans": ALONE,
    "migtrans_prior": ({"network_weight": "fixed"}, {"linear_prior": True}),
    # the prior with early stopping on a validation split, the prior alone (epoch 0) one of the candidates
    "migtrans_prior_stop": ({"select": "val_auc", "network_weight": "fixed"}, {"linear_prior": True}),
    # the prior with the network's log-odds weighted by a factor fitted on a validation split (stacking)
    "migtrans_prior_weight": ({"network_weight": "validation"}, {"linear_prior": True}),
    "elasticnet": ({"model": "elasticnet"}, {}),
    "late_fusion": ({"model": "late_fusion"}, {}),
    "migtrans_snp": ({**ALONE[0], "modalities": ("snp",)}, ALONE[1]),
    "migtrans_fnc": ({**ALONE[0], "modalities": ("fnc",)}, ALONE[1]),
    "migtrans_smri": ({**ALONE[0], "modalities": ("smri",)}, ALONE[1]),
    "migtrans_reads_only": (ALONE[0], {**ALONE[1], "modality_tokens": False}),
    "migtrans_tokens_only": (ALONE[0], {**ALONE[1], "modality_reads": False}),
}
EVERY_SIZE = (
    "migtrans",
    "migtrans_prior",
    "migtrans_prior_stop",
    "migtrans_prior_weight",
    "elasticnet",
    "late_fusion",
)
SINGLES = ("migtrans_snp", "migtrans_fnc", "migtrans_smri")
AT_600 = ("migtrans_reads_only", "migtrans_tokens_only")


# scenario -> simulate_cohort arguments; a scenario that is not a preset of the simulator sets switches of one
SCENARIOS = {
    "easy": {"preset": "easy"},
    "realistic": {"preset": "realistic"},
    "easy_x3": {"preset": "easy", "interactions": 3.0},
}


def plan(presets, sizes):
    rows = []
    for preset in presets:
        for n in sizes:
            rows += [(preset, n, False, m) for m in EVERY_SIZE + SINGLES]
            if n == 600:
                rows += [(preset, n, False, m) for m in AT_600]
    if "realistic" in presets:
        rows += [("realistic", 600, True, m) for m in EVERY_SIZE]
    return rows


def key(preset, n, null, model, seed=1):
    """The row's name in results/models.json; cohorts drawn with another seed than 1 carry it."""
    return f"{preset}/{n}{'/null' if null else ''}{f'/seed{seed}' if seed != 1 else ''}/{model}"


def cohort(preset, n, null, seed=1):
    folder = SCRATCH / "models" / f"{preset}-{n}{'-null' if null else ''}{f'-seed{seed}' if seed != 1 else ''}"
    toml = folder / "cohort.toml"
    if not toml.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        settings = SCENARIOS[preset]
        simulate_cohort(folder, n_subjects=n, n_snps=5000, seed=seed, null=null, keep_volumes=False, **settings)
    return toml


def run_row(preset, n, null, model, seed=1):
    train_over, model_over = MODELS[model]
    out = SCRATCH / "models" / "runs" / key(preset, n, null, model, seed).replace("/", "-")
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    result = train(
        cohort(preset, n, null, seed),
        out,
        TrainConfig(seed=1, device="cpu", **train_over),
        ModelConfig(**model_over) if model_over else None,
        progress=False,
    )
    metrics = result.metrics.set_index("fold")
    row = {"seconds": round(time.perf_counter() - start, 1)}
    for metric in ("accuracy", "roc_auc", "brier"):
        if metric in metrics.columns:
            row[metric] = round(float(metrics.loc["mean", metric]), 4)
            row[f"{metric}_sd"] = round(float(metrics.loc["sd", metric]), 4)
    folder = RunFolder(out)
    weights = [json.loads(folder.fold(k).info.read_text()).get("network_weight") for k in range(1, 6)]
    if any(w is not None for w in weights):  # the network's weight on the prior, per fold
        row["network_weight"] = [round(w, 3) for w in weights]
    shutil.rmtree(out, ignore_errors=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", default="easy,realistic")
    parser.add_argument("--sizes", default="300,600,1000")
    parser.add_argument("--only", help="run only the rows whose key contains this text")
    parser.add_argument("--rows", help="comma-separated keys (preset/size[/null]/model) to run, in this order")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument(
        "--cohort-seed", type=int, default=1, help="simulate the cohorts with this seed (another draw of each)"
    )
    args = parser.parse_args(argv)
    path = RESULTS / "models.json"
    results = {} if args.fresh or not path.is_file() else json.loads(path.read_text())
    rows = plan(args.presets.split(","), [int(s) for s in args.sizes.split(",")])
    if args.rows:  # a chosen order (the most informative rows first when time is short)
        by_key = {key(*row): row for row in rows}
        rows = [by_key[name] for name in args.rows.split(",")]
    for preset, n, null, model in rows:
        name = key(preset, n, null, model, args.cohort_seed)
        if name in results or (args.only and args.only not in name):
            continue
        results[name] = run_row(preset, n, null, model, args.cohort_seed)
        print(name, results[name], flush=True)
        RESULTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
