"""The `migtrans-null` command: run retraining null permutations of a finished run (each retrains, explains
and contrasts the run's pipeline on permuted labels) as independent, resumable jobs under ``RUN/null/``;
`migtrans-explain` gathers them. Errors a user can cause become one line with exit status 2."""

from __future__ import annotations

import sys

from migtrans.cli import OneLineParser, report_errors


def build_parser():
    from migtrans import __version__

    parser = OneLineParser(
        prog="migtrans-null",
        description="Run retraining null permutations of a finished run: the whole pipeline (fold-fitted "
        "preprocessing, training, integrated gradients) on labels permuted within fold x site, each written to "
        "RUN/null/perm-<b>/. Finished null runs are kept, interrupted ones redone. migtrans-explain then "
        "tests every attribution against them (p = (R + 1)/(B_r + 1), max-T across each table).",
    )
    parser.add_argument("run_dir", help="a finished run folder (migtrans train ... --out RUN_DIR)")
    parser.add_argument(
        "--permutations",
        required=True,
        help="which null runs: N (1..N) or K-L, e.g. 1-99 (99 null runs let p reach 0.01)",
    )
    parser.add_argument(
        "--shard",
        help="i/n: run only every n-th of them from the i-th (one task of a job array, e.g. "
        "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument("--ig-steps", type=int, default=32, help="integrated-gradients steps (default 32)")
    parser.add_argument(
        "--baseline",
        choices=["mean", "held_out_mean", "zero"],
        default="mean",
        help="integrated-gradients baseline, as the report will use (default mean)",
    )
    parser.add_argument("--atlas", default="aal", help="the atlas the report will use (default aal)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda[:i]")
    parser.add_argument("--seed", type=int, default=0, help="the report's seed (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--version", action="version", version=f"migtrans {__version__}")
    return parser


def _run(args) -> int:
    from migtrans.validation import check_device, check_number, check_seed

    from ._null import parse_permutations, parse_shard, run_null
    from ._tables import region_atlas

    permutations = parse_permutations(args.permutations)
    shard = parse_shard(args.shard) if args.shard else None
    check_number("jobs", args.jobs, minimum=1, maximum=256, integer=True)
    check_number("ig_steps", args.ig_steps, minimum=2, maximum=4096, integer=True)
    check_device("device", args.device)
    check_seed("seed", args.seed)
    region_atlas(args.atlas)
    result = run_null(
        args.run_dir,
        permutations,
        shard=shard,
        jobs=args.jobs,
        n_steps=args.ig_steps,
        baseline=args.baseline,
        atlas=args.atlas,
        device=args.device,
        random_state=args.seed,
        progress=not args.quiet,
    )
    print(
        f"{len(result['done'])} null runs written, {len(result['kept'])} already there "
        f"({result['seconds']:.0f} s); migtrans-explain gathers them"
    )
    return 0


def main(argv=None) -> int:
    """Entry point of `migtrans-null`; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    return report_errors("migtrans-null", _run, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
