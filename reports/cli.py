"""The `migtrans-explain` command: parse, validate, call `explain_and_report` (or `demo`); errors a user
can cause become one line with exit status 2."""

from __future__ import annotations

import argparse
import sys

from migtrans.cli import OneLineParser, report_errors
from migtrans.exceptions import ParameterError


def build_parser() -> argparse.ArgumentParser:
    from migtrans import __version__

    parser = OneLineParser(
        prog="migtrans-explain",
        description="Explain a trained MIGTrans run on its held-out subjects (integrated gradients, attention rollout, "
        "permutation-tested rankings of SNPs, loci, regions and connections) and write a self-contained "
        "HTML report with its figures and CSV/NIfTI tables.",
    )
    parser.add_argument("run_dir", nargs="?", help="a finished run folder (migtrans train ... --out RUN_DIR)")
    parser.add_argument("--out", required=True, help="report folder to write (refused if not empty)")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="simulate a cohort, train and explain it (no RUN_DIR); writes cohort/ and run/ too",
    )
    parser.add_argument(
        "--permutations",
        type=int,
        default=1000,
        help="label permutations of the per-fold (or explanation-set) tests (default 1000)",
    )
    parser.add_argument(
        "--null",
        choices=["auto", "retraining", "per_fold"],
        default="auto",
        help="what the attribution p-values test: retraining (the run's migtrans-null runs), per_fold (each fold's "
        "model fixed, Bonferroni across folds) or auto (default: retraining when 19 or more null runs exist)",
    )
    parser.add_argument("--ig-steps", type=int, default=32, help="integrated-gradients steps (default 32)")
    parser.add_argument(
        "--baseline",
        choices=["mean", "held_out_mean", "zero"],
        default="mean",
        help="integrated-gradients baseline: the training fold's mean input (default), the mean input of the "
        "subjects each fold model explains, or zero input",
    )
    parser.add_argument(
        "--top-k", type=int, default=20, help="rows per table and edges/regions per figure (default 20)"
    )
    parser.add_argument(
        "--atlas",
        default="aal",
        help="aal (default), harvard-oxford, or a label image with <stem>.tsv (index, name) beside it",
    )
    parser.add_argument("--genes", help="grch37, grch38 or a BED file (default: the cohort's build)")
    parser.add_argument(
        "--highlight",
        metavar="FILE",
        help="SNP ids and gene symbols to mark in the Manhattan plot and list in the report (one per line)",
    )
    parser.add_argument(
        "--formats",
        default="png,pdf",
        help="figure formats, subset of png,pdf,svg (default png,pdf; PNG is always written)",
    )
    parser.add_argument(
        "--no-faithfulness", action="store_true", help="skip modality ablation and deletion curves (faster)"
    )
    parser.add_argument(
        "--cohort",
        help="an external cohort's TOML: explain its subjects (new ones, matched to the run's SNPs, nodes and grid "
        "as migtrans predict matches them) with the ensemble of the run's fold models",
    )
    parser.add_argument(
        "--allow-missing-snps",
        action="store_true",
        help="with --cohort: impute the run's SNPs the cohort lacks with the training mean (counted) instead "
        "of refusing",
    )
    parser.add_argument(
        "--tables-only",
        action="store_true",
        help="rebuild the tables, figures and report from attributions saved earlier (--from; another --atlas, "
        "--genes, --permutations or --null) without recomputing integrated gradients",
    )
    parser.add_argument(
        "--from",
        dest="tables_from",
        metavar="FOLDER",
        help="with --tables-only: the earlier report folder of this run (default: --out itself, with --overwrite)",
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda[:i]")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0; the demo uses 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    parser.add_argument(
        "--allow-changed-inputs",
        action="store_true",
        help="explain even if a cohort file changed since training (a warning instead of an error)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--version", action="version", version=f"migtrans {__version__}")
    return parser


def _run(args, argv) -> int:
    from ._build import demo, explain_and_report

    options = dict(
        n_permutations=args.permutations,
        null=args.null,
        n_steps=args.ig_steps,
        baseline=args.baseline,
        top_k=args.top_k,
        formats=args.formats.split(","),
        faithfulness=not args.no_faithfulness,
        device=args.device,
        overwrite=args.overwrite,
        progress=not args.quiet,
        command=["migtrans-explain", *argv],
    )
    if args.tables_from and not args.tables_only:
        raise ParameterError("--from: names the folder --tables-only rebuilds from; add --tables-only")
    if args.demo:
        if args.tables_only:
            raise ParameterError("--tables-only: the demo computes its attributions; leave --tables-only out")
        if args.highlight:
            raise ParameterError("--highlight: name SNPs of your own cohort's report, not of the simulated demo")
        if args.cohort or args.allow_missing_snps:
            raise ParameterError("--cohort: the demo explains its own simulated cohort; leave --cohort out")
        if args.run_dir:
            raise ParameterError("--demo: simulates its own cohort and run; do not pass RUN_DIR with it")
        report = demo(args.out, random_state=1 if args.seed is None else args.seed, **options)
    else:
        if not args.run_dir:
            raise ParameterError("RUN_DIR: expected a run folder to explain (or --demo)")
        report = explain_and_report(
            args.run_dir,
            args.out,
            atlas=args.atlas,
            genes=args.genes,
            allow_changed_inputs=args.allow_changed_inputs,
            cohort=args.cohort,
            allow_missing_snps=args.allow_missing_snps,
            tables_from=(args.tables_from or args.out) if args.tables_only else None,
            highlight=args.highlight,
            random_state=0 if args.seed is None else args.seed,
            **options,
        )
    print(f"report written to {report}")
    return 0


def main(argv=None) -> int:
    """Entry point of `migtrans-explain`; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    return report_errors("migtrans-explain", _run, args, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
