"""The `migtrans` command: parse, validate, call the library; user errors become one line and exit 2."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import warnings
from pathlib import Path

from .exceptions import MigtransError, ParameterError


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad invocation as one line (exit status 2), not usage + error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_signal(text: str) -> dict:
    """Parse ``snp=1,fnc=0.5,smri=1`` into a dict of floats."""
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ParameterError(f"--signal: expected key=value items like snp=1,fnc=1,smri=1, found {item!r}")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise ParameterError(f"--signal: value for {key.strip()!r} must be a number, found {value!r}") from None
    return out


def _cmd_simulate(args) -> int:
    from .simulate import simulate_cohort
    from .validation import check_number, check_option, check_seed

    # the options' own names in errors (the library names its parameters)
    check_number("--subjects", args.subjects, minimum=20, maximum=100_000, integer=True)
    check_number("--snps", args.snps, minimum=100, maximum=5_000_000, integer=True)
    check_number("--sites", args.sites, minimum=1, maximum=max(1, args.subjects // 20), integer=True)
    check_seed("--seed", args.seed)
    check_number("--resolution", args.resolution, minimum=0.75, maximum=32)
    check_number("--case-share", args.case_share, minimum=0.1, maximum=0.9)
    check_number("--ancestries", args.ancestries, minimum=1, maximum=5, integer=True)
    check_number("--fst", args.fst, minimum=0, maximum=0.5, low_open=True, high_open=True)
    shares = None
    if args.ancestry_case_shares is not None:
        try:
            shares = tuple(float(part) for part in args.ancestry_case_shares.split(","))
        except ValueError:
            raise ParameterError(
                f"--ancestry-case-shares: expected comma-separated numbers like 0.35,0.65, found "
                f"{args.ancestry_case_shares!r}"
            ) from None
        if len(shares) != args.ancestries:
            raise ParameterError(
                f"--ancestry-case-shares: expected {args.ancestries} shares (one per group of --ancestries), "
                f"found {args.ancestry_case_shares!r}"
            )
        if args.case_share != 0.5:
            raise ParameterError("--case-share: not with --ancestry-case-shares, which sets the share of every group")
        for share in shares:
            check_number("--ancestry-case-shares", share, minimum=0.1, maximum=0.9)
    check_number("--relatives", args.relatives, minimum=0, maximum=0.5)
    if args.site_effect is not None:
        check_number("--site-effect", args.site_effect, minimum=0, maximum=5)
    check_number("--sex-effect", args.sex_effect, minimum=-5, maximum=5)
    if args.subjects_seed is not None:
        check_seed("--subjects-seed", args.subjects_seed)
    check_option("--preset", args.preset, ("easy", "realistic"))
    for flag, allowed in (
        ("--genetic-architecture", ("oligogenic", "polygenic")),
        ("--snp-layout", ("blocks", "array")),
        ("--imaging-effects", ("focal", "spread")),
        ("--liability", ("linear", "nonlinear")),
        ("--plant-atlas", ("aal", "harvard-oxford")),
    ):
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            check_option(flag, value, allowed)
    if args.interactions is not None:
        check_number("--interactions", args.interactions, minimum=0, maximum=3)

    sim = simulate_cohort(
        args.out_dir,
        n_subjects=args.subjects,
        n_snps=args.snps,
        seed=args.seed,
        resolution=args.resolution,
        n_sites=args.sites,
        signal=parse_signal(args.signal) if args.signal else None,
        null=args.null,
        case_share=args.case_share,
        n_ancestries=args.ancestries,
        fst=args.fst,
        ancestry_case_shares=shares,
        relative_share=args.relatives,
        site_effect=args.site_effect,
        sex_effect=args.sex_effect,
        subjects_seed=args.subjects_seed,
        preset=args.preset,
        genetic_architecture=args.genetic_architecture,
        snp_layout=args.snp_layout,
        imaging_effects=args.imaging_effects,
        interactions=args.interactions,
        liability=args.liability,
        plant_atlas=args.plant_atlas,
        overwrite=args.overwrite,
        keep_volumes=False,
    )
    truth = sim.truth
    print(f"simulated cohort written to {sim.out_dir}")
    print(f"  describe it with: {sim.toml_path}")
    null_note = " (null cohort: labels independent of all data" + (" but ancestry)" if shares else ")")
    print(
        f"  planted: {len(truth.get('causal_snps', []))} causal SNPs, "
        f"{len(truth.get('smri_regions', []))} sMRI regions, {len(truth.get('fnc_edges', []))} FNC edges"
        + (null_note if args.null else "")
    )
    structure = []
    if args.ancestries > 1:
        realized = "/".join(f"{s:.0%}" for s in truth["population"]["ancestry"]["case_shares"])
        structure.append(f"{args.ancestries} ancestry groups (F_ST {args.fst:g}; cases {realized})")
    if args.relatives > 0:
        structure.append(f"{truth['population']['relatedness']['n_sibling_pairs']} sibling pairs")
    if args.site_effect is not None:
        structure.append(f"site effect x{args.site_effect:g}" + ("" if args.sites > 1 else " (one site: none)"))
    if args.sex_effect:
        structure.append(f"sex effect {args.sex_effect:g} SD on GM and FNC")
    if structure:
        print(f"  also: {', '.join(structure)} (see truth.json)")
    switches = ("genetic_architecture", "snp_layout", "imaging_effects", "interactions", "liability", "plant_atlas")
    if args.preset != "easy" or any(getattr(args, name) is not None for name in switches):
        settings = truth["settings"]
        interactions = f"interactions x{settings['interactions']:g}" if settings["interactions"] else "no interactions"
        print(
            f"  preset {settings['preset']}: {settings['genetic_architecture']} genetics, {settings['snp_layout']} "
            f"SNP layout, {settings['imaging_effects']} imaging effects, {interactions}, {settings['liability']} "
            f"liability, regions planted in {settings['plant_atlas']} (expected AUC of the noise-free liability "
            f"{truth['architecture']['expected_auc']:.2f})"
        )
    if args.subjects_seed is not None:
        print(
            f"  replication cohort: the generator of --seed {args.seed}, new subjects from --subjects-seed "
            f"{args.subjects_seed} ({sim.subject_ids[0]}...)"
        )
    return 0


def _folds_option(text: str):
    """``--folds``: an integer, or ``site`` for leave-one-site-out."""
    if text == "site":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'site', found {text!r}") from None


def _cmd_info(args) -> int:
    from .data import load_cohort

    cohort = load_cohort(args.cohort, strict=args.strict or None)
    print(cohort.summary())
    return 0


def _cmd_train(args) -> int:
    from .training import TrainConfig, compare_runs, format_comparison, read_training_config, train

    from_file, model_config = read_training_config(args.config) if args.config else ({}, None)

    overrides = {
        k: v
        for k, v in {
            "n_folds": None if args.folds == "site" else args.folds,
            "fold_by": "site" if args.folds == "site" else None,
            "adjust": args.adjust,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "l2": args.l2,
            "read_sparsity": args.read_sparsity,
            "explain_fraction": args.explain_fraction,
            "ld_r2": args.ld_r2,
            "device": args.device,
            "seed": args.seed,
            "model": args.model,
            "modalities": None if args.modalities is None else tuple(m.strip() for m in args.modalities.split(",")),
        }.items()
        if v is not None
    }
    if args.no_amp:
        overrides["amp"] = False
    if args.folds is not None and args.folds != "site" and from_file.get("fold_by") == "site":
        overrides["fold_by"] = "label"  # --folds 5 asks for label folds, whatever the file says
    config = TrainConfig(**{**from_file, **overrides})
    result = train(
        args.cohort,
        args.out,
        config,
        model_config,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.quiet,
        argv=["migtrans", *args.argv],
    )
    if not _is_worker():
        print(format_comparison(compare_runs([result.out_dir])))
        print(f"run written to {result.out_dir}")
    return 0


def _is_worker() -> bool:
    import os

    return int(os.environ.get("RANK", "0")) != 0


def _cmd_predict(args) -> int:
    from .training import predict

    result = predict(
        args.run,
        args.cohort,
        args.out,
        allow_missing_snps=args.allow_missing_snps,
        device=args.device,
        overwrite=args.overwrite,
    )
    text = f"{len(result.predictions)} subjects scored by the run's fold-model ensemble"
    if len(result.metrics):
        row = result.metrics.iloc[0]
        text += (
            f": on the {int(row['n_subjects'])} with a label, accuracy {row['accuracy']:.3f}, "
            f"ROC AUC {row['roc_auc']:.3f}"
        )
    else:
        text += " (no subject has a label: no metrics)"
    if result.alignment["snps_imputed"]:
        text += f"; {result.alignment['snps_imputed']} missing SNPs imputed"
    print(text)
    print(f"predictions written to {result.out_dir}")
    return 0


def _cmd_compare(args) -> int:
    from .training import compare_runs, format_comparison
    from .utils import atomic_write_text, check_outside_inputs

    if args.out:
        out = Path(args.out).expanduser().absolute()
        if out.is_dir():
            raise ParameterError(f"--out: expected a CSV file name, found the folder {str(out)!r}")
        if not out.parent.is_dir():
            raise ParameterError(f"--out: the folder {str(out.parent)!r} does not exist")
        table = compare_runs(args.runs)  # opens every run first: a damaged one is refused before anything is written
        check_outside_inputs(out, _run_inputs(args.runs))
        if out.exists():
            with open(out, "rb") as handle:
                header = handle.readline()
            if not header.startswith(b"run,model,modalities,folds,"):
                raise ParameterError(
                    f"--out: {str(out)!r} exists and is not a table written by migtrans compare (nothing was changed)"
                )
    else:
        table = compare_runs(args.runs)
    print(format_comparison(table))
    if args.out:
        atomic_write_text(out, table.to_csv(index=False, float_format="%.17g"))
        print(f"table written to {out}")
    return 0


def _run_inputs(runs) -> list:
    """(description, path) of the run folders and of everything their cohorts are read from."""
    from .data import read_cohort_spec
    from .training import open_run

    inputs = []
    for path in runs:
        run = open_run(path)
        inputs.append(("run folder", run.path))
        try:
            inputs += read_cohort_spec(run.cohort_path).inputs()
        except MigtransError:  # a cohort that is not where the run says: nothing of it to protect
            pass
    return inputs


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = OneLineParser(
        prog="migtrans",
        description="Multi-modal imaging genomics: simulate, validate and (later) train on cohorts of "
        "SNP genotypes, FNC connectomes and structural MRI.",
    )
    parser.add_argument("--version", action="version", version=f"migtrans {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    p = sub.add_parser("simulate", help="write a simulated cohort with planted ground truth")
    p.add_argument("out_dir", help="folder to create (refused if it exists and is not empty)")
    p.add_argument("--subjects", type=int, default=300, help="number of subjects (default 300)")
    p.add_argument("--snps", type=int, default=5000, help="number of SNPs (default 5000)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files (default 0)")
    p.add_argument("--resolution", type=float, default=4.0, help="sMRI voxel size in mm (default 4)")
    p.add_argument("--sites", type=int, default=1, help="number of acquisition sites (default 1)")
    p.add_argument("--signal", default=None, help="per-modality signal weights, e.g. snp=1,fnc=1,smri=1")
    p.add_argument("--null", action="store_true", help="labels independent of all data (calibration)")
    p.add_argument("--case-share", type=float, default=0.5, help="share of cases, in [0.1, 0.9] (default 0.5)")
    p.add_argument("--ancestries", type=int, default=1, help="number of ancestry groups, 1 to 5 (default 1)")
    p.add_argument("--fst", type=float, default=0.02, help="F_ST between ancestry groups, in (0, 0.5) (default 0.02)")
    p.add_argument(
        "--ancestry-case-shares",
        default=None,
        help="share of cases in each ancestry group, e.g. 0.35,0.65 (a confounded cohort; replaces --case-share)",
    )
    p.add_argument(
        "--relatives", type=float, default=0.0, help="share of subjects in sibling pairs, in [0, 0.5] (default 0)"
    )
    p.add_argument(
        "--site-effect",
        type=float,
        default=None,
        help="size of the scanner offsets and scales with several sites, in [0, 5] (0: none; default: the "
        "earlier model, FNC offsets and GM scales only)",
    )
    p.add_argument(
        "--sex-effect", type=float, default=0.0, help="male - female difference in GM and FNC, in SD (default 0)"
    )
    p.add_argument(
        "--subjects-seed",
        type=int,
        default=None,
        help="draw a replication cohort: new subjects (ids sub-r<N>-0001...) from the generator of --seed (same "
        "SNP map, causal SNPs, planted edges and regions, ancestry frequencies, site effects); give the first "
        "cohort's other options",
    )
    p.add_argument(
        "--preset",
        metavar="{easy,realistic}",
        default="easy",
        help="easy: the earlier simulator (few large effects); realistic: polygenic genetics on an array-like SNP "
        "map, spread imaging effects of realistic size planted in Harvard-Oxford, cross-modal interactions, a "
        "nonlinear liability. Sets the defaults of the switches below (default easy)",
    )
    p.add_argument(
        "--genetic-architecture",
        metavar="{oligogenic,polygenic}",
        default=None,
        help="5 causal SNPs, or 5 larger and up to 300 small ones (default: the preset's)",
    )
    p.add_argument(
        "--snp-layout",
        metavar="{blocks,array}",
        default=None,
        help="SNPs packed in LD blocks, or spread along each chromosome with LD decaying with distance "
        "(default: the preset's)",
    )
    p.add_argument(
        "--imaging-effects",
        metavar="{focal,spread}",
        default=None,
        help="4 regions and 6 edges, or 12 regions and 30%% of the edges of six domain pairs (default: the preset's)",
    )
    p.add_argument(
        "--interactions",
        type=float,
        default=None,
        help="strength of the SNP x sMRI and FNC-given-structural-deficit terms, in [0, 3] (0: none; default: the "
        "preset's, 0 for easy, 1 for realistic)",
    )
    p.add_argument(
        "--liability",
        metavar="{linear,nonlinear}",
        default=None,
        help="nonlinear: a thresholded structural term and a polygenic x FNC product (default: the preset's)",
    )
    p.add_argument(
        "--plant-atlas",
        metavar="{aal,harvard-oxford}",
        default=None,
        help="atlas whose regions are planted; tables read AAL by default (default: the preset's)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("info", help="load and validate a cohort TOML, print its summary")
    p.add_argument("cohort", help="cohort TOML file")
    p.add_argument("--strict", action="store_true", help="a subject missing a modality is an error")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("train", help="cross-validate MIGTrans (or a baseline) on a cohort")
    p.add_argument("cohort", help="cohort TOML file")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument(
        "--config",
        help="TOML file with [train] (TrainConfig) and [model] (ModelConfig) fields; a run's config.toml is one. "
        "Options given on the command line override it",
    )
    p.add_argument(
        "--folds",
        type=_folds_option,
        help="outer cross-validation folds (default 5), or 'site' for leave-one-site-out (metrics per site)",
    )
    p.add_argument(
        "--adjust",
        choices=["regress", "none"],
        help="covariate adjustment inside each training fold: regress (default) the covariates and site out of "
        "FNC and sMRI and the genetic PCs out of genotypes, or none",
    )
    p.add_argument("--epochs", type=int, help="epochs per fold (default 12)")
    p.add_argument("--batch-size", type=int, help="batch size (default 32)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 1e-3)")
    p.add_argument("--l2", type=float, help="coupled L2 penalty on weight matrices (default 2e-3)")
    p.add_argument(
        "--read-sparsity", type=float, help="feature selection in the modality reads, in [0, 1) (default 0.5; 0: off)"
    )
    p.add_argument(
        "--explain-fraction",
        type=float,
        help="share of subjects held out of every fold as an explanation set, in [0, 0.5] (default 0: every "
        "subject is cross-validated and explained out of fold)",
    )
    p.add_argument("--ld-r2", type=float, help="merge neighbouring SNP windows in LD (r² >= this; default 0: off)")
    p.add_argument("--modalities", help="comma-separated subset of snp,fnc,smri (default all three)")
    p.add_argument(
        "--model",
        choices=["migtrans", "logistic", "svm", "mlp", "elasticnet", "late_fusion"],
        help="default migtrans; baselines: logistic, svm, mlp (regularisation chosen on a validation split), "
        "elasticnet (elastic-net logistic regression) and late_fusion (per-modality sparse models stacked on "
        "their out-of-fold log-odds), both tuned by inner cross-validation of the training fold",
    )
    p.add_argument("--device", help="auto (default), cpu or cuda[:i]")
    p.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run, keeping finished folds")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("compare", help="one table of mean ± SD metrics across run folders")
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--out", help="also write the table as CSV")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("predict", help="apply a trained run's fold models to a new cohort (external validation)")
    p.add_argument("run", help="a finished MIGTrans run folder")
    p.add_argument("cohort", help="the new cohort's TOML file")
    p.add_argument("--out", required=True, help="folder to write predictions.csv, metrics.csv and predict.json")
    p.add_argument(
        "--allow-missing-snps",
        action="store_true",
        help="impute the run's SNPs this cohort lacks with the training mean (counted in predict.json)",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda[:i]")
    p.add_argument("--overwrite", action="store_true", help="replace an existing predictions folder")
    p.set_defaults(func=_cmd_predict)
    return parser


def report_errors(prog: str, func, *args) -> int:
    """Call ``func(*args)`` the way a command should: a user error (`MigtransError`) becomes one line
    ``PROG: error: ...`` on stderr and exit status 2; every warning becomes one line ``PROG: warning: ...``
    (the first line of its message, each distinct message once), deprecation notices of dependencies are
    dropped; bugs still raise with a traceback."""
    error = None
    with warnings.catch_warnings(record=True) as caught, _logs_as_warnings():
        warnings.simplefilter("always")
        try:
            status = func(*args)
        except MigtransError as exc:
            status, error = 2, f"error: {_one_line(exc)}"
        except KeyboardInterrupt:
            status, error = 130, "interrupted"
        finally:  # the warnings first, the error (if any) as the last line
            _print_warnings(prog, caught)
    if error:
        print(f"{prog}: {error}", file=sys.stderr)
    return status


class _WarnHandler(logging.Handler):
    def emit(self, record):
        warnings.warn(record.getMessage(), UserWarning, stacklevel=2)


@contextlib.contextmanager
def _logs_as_warnings(names=("", "nibabel.global")):
    """Route library log records of level WARNING and up (nibabel prints its header fixes through its own
    handler) into warnings, so they reach stderr as our one-line warnings too."""
    saved = {}
    handler = _WarnHandler(logging.WARNING)
    for name in names:
        logger = logging.getLogger(name)
        saved[name] = (logger.handlers[:], logger.propagate)
        logger.handlers, logger.propagate = [handler], False
    try:
        yield
    finally:
        for name, (handlers, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate = handlers, propagate


def _one_line(message) -> str:
    return " ".join(str(message).split())


def _print_warnings(prog, caught) -> None:
    counts = {}
    for warning in caught:
        if issubclass(warning.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
            continue
        text = _one_line(
            str(warning.message).strip().splitlines()[0] if str(warning.message).strip() else warning.category.__name__
        )
        counts[text] = counts.get(text, 0) + 1
    for text, count in counts.items():
        print(f"{prog}: warning: {text}" + (f" ({count} times)" if count > 1 else ""), file=sys.stderr)


def main(argv=None) -> int:
    """Entry point of the `migtrans` command; returns the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    return report_errors(f"migtrans {args.command}", args.func, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
