"""`TrainConfig`: every training choice, with documented defaults, saved with each run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..exceptions import ParameterError
from ..validation import check_device, check_number, check_seed

MODALITIES = ("snp", "fnc", "smri")
MODELS = ("migtrans", "logistic", "svm", "mlp", "elasticnet", "late_fusion")


@dataclass
class TrainConfig:
    """How a run is trained and evaluated.

    Parameters
    ----------
    modalities : tuple of str
        Subset of ("snp", "fnc", "smri") fed to the model (ablations use fewer).
    n_folds : int
        Outer stratified folds (label x site when the cohort has a site column). With ``fold_by="site"``
        it is set to the number of sites.
    fold_by : {"label", "site"}
        ``"label"``: stratified K-fold; ``"site"``: leave-one-site-out cross-validation, each site held out in
        turn (metrics per site), which asks whether the model carries over to a scanner it never saw.
    adjust : {"regress", "none"}
        Covariate adjustment inside each training fold (`migtrans.preprocess.covariate_columns`): FNC and
        sMRI features are replaced by their residuals on the cohort's covariates and site, genotypes by their
        residuals on the genetic principal components, with coefficients fitted on the fold's training
        subjects only. ``"none"`` feeds the raw (standardised) features.
    calibrate : {"temperature", "none"}
        Post-hoc calibration of the reported probabilities (`calibrate_folds`): each fold's log-odds are
        divided by a temperature fitted on the other folds' out-of-fold predictions (its own labels unused).
        Accuracy and AUC do not change; the model, its log-odds and every attribution stay as trained.
        Measured on the demo without it: expected calibration error 0.15, over-confident (docs/benchmarks.md).
    epochs : int
        Epochs per fold (the most, under early stopping).
    batch_size : int
    lr : float
        Peak AdamW learning rate (after linear warm-up, then cosine decay to 0).
    weight_decay : float
        AdamW's decoupled weight decay.
    l2 : float
        Coupled L2 penalty added to the loss: ``l2 * sum of squared weight-matrix entries`` (embeddings
        and biases excluded). AdamW's decoupled decay alone barely regularises the wide input
        projections of this model; 2e-3 is about what scikit-learn's MLP picks on the demo cohort
        (alpha / (2 n)); 1e-2 gave the same accuracy (docs/benchmarks.md).
    read_sparsity : float
        Feature selection in the modality reads (``ModelConfig.modality_reads``), in [0, 1): after every
        optimizer step each input feature's column of read weights shrinks in norm by
        ``read_sparsity * lr * sqrt(d_model)`` and becomes exactly zero when shorter (a group-lasso
        proximal step). ``lr * sqrt(d_model)`` is the largest step Adam gives a column whose gradient keeps
        its sign, while a column with pure-noise gradients moves about a quarter of that; so a feature
        keeps weight only when its gradient is consistent across batches. 0 turns it off; at 1 or
        more nothing survives.
    warmup_epochs : int
    patience : int
        Early stopping: epochs without improvement of the selection criterion.
    select : {"last", "val_loss", "val_auc"}
        Which epoch's weights a fold keeps: the last of a fixed budget (the default), or the epoch with
        the lowest validation loss / highest validation AUC (early stopping with ``patience``). On the
        demo cohort the validation split (about 36 subjects) is too small to choose an epoch well:
        early stopping on its loss stopped before the model had learned anything.
    network_weight : {"validation", "fixed"}
        With a linear prior (`migtrans.model.ModelConfig.linear_prior`, on by default): how much of the network's
        log-odds is added to the prior's. ``"validation"`` (the default): a weight in [0, 1] fitted by maximum
        likelihood on the fold's validation split (``val_fraction``, held out for it; the network never trained
        on it and the prior's log-odds there are inner out-of-fold), so that a network that only adds noise to
        the linear model is given little weight (stacking; 0 is the elastic net alone). ``"fixed"``: all of it,
        and with ``select="last"`` the fold fits on its whole training share. Without a prior there is no
        weight and nothing is held out for it. Runs trained before it existed read back as ``"fixed"``.
    explain_fraction : float
        Share of subjects, in [0, 0.5], held out of every training fold as an **explanation set**
        (stratified by label x site), explained by the ensemble of the fold models. 0 (the default)
        explains every subject out of fold, by the fold model that never saw it (K-fold cross-fitting): all
        subjects train models and all are tested (docs/design-changes.md, "§5").
    val_fraction : float
        Share of each training fold held out (stratified) for early stopping (``select`` "val_loss" or
        "val_auc"), for the network's weight on the linear prior (``network_weight="validation"``) and for the
        logistic, svm and mlp baselines' choice of regularisation. With ``select="last"`` and no weight to fit
        MIGTrans fits on the whole training fold and holds nothing out, and so do "elasticnet" and
        "late_fusion", which tune by inner cross-validation instead.
    label_smoothing : float
    window_kb, max_snps_per_locus : float, int
        Locus partition of the SNPs (contiguous windows on a chromosome).
    ld_r2 : float
        When > 0, neighbouring windows are merged while SNPs across them reach this r² in the cohort's
        own genotypes (LD blocks stay whole); 0 (default) keeps plain windows.
    device : str
        "auto" (CUDA when available, else CPU), "cpu" or "cuda[:i]".
    amp : bool
        Mixed precision on CUDA (ignored on CPU).
    seed : int
        One seed reproduces folds, initialisation and batches.
    model : str
        "migtrans" or a baseline on the fold-standardised features: "logistic", "svm", "mlp" (regularisation
        chosen on the validation split); "elasticnet" (elastic-net logistic regression, ``l1_ratio`` and ``C``
        tuned by stratified inner cross-validation of the whole training fold) or "late_fusion" (one
        elastic-net model per modality, tuned the same way, combined by a non-negative logistic stacker
        trained on their inner out-of-fold log-odds); both in ``migtrans/training/_elasticnet.py``.
    """

    modalities: tuple = MODALITIES
    n_folds: int = 5
    epochs: int = 12
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    l2: float = 2e-3
    read_sparsity: float = 0.5
    warmup_epochs: int = 2
    patience: int = 8
    select: str = "last"
    network_weight: str = "validation"
    explain_fraction: float = 0.0
    val_fraction: float = 0.15
    label_smoothing: float = 0.1
    window_kb: float = 250.0
    max_snps_per_locus: int = 64
    ld_r2: float = 0.0
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    model: str = "migtrans"
    fold_by: str = "label"
    adjust: str = "regress"
    calibrate: str = "temperature"

    def __post_init__(self):
        self.modalities = tuple(self.modalities)
        bad = [m for m in self.modalities if m not in MODALITIES]
        if not self.modalities or bad or len(set(self.modalities)) != len(self.modalities):
            raise ParameterError(
                f"modalities: expected a non-empty subset of {', '.join(MODALITIES)}, found {self.modalities}"
            )
        # keep a canonical order so that "fnc,snp" and "snp,fnc" are the same run
        self.modalities = tuple(m for m in MODALITIES if m in self.modalities)
        for name in ("n_folds", "epochs", "batch_size", "patience", "max_snps_per_locus", "warmup_epochs"):
            minimum = {"n_folds": 2, "warmup_epochs": 0}.get(name, 1)
            check_number(name, getattr(self, name), minimum=minimum, integer=True)
        check_number("lr", self.lr, minimum=0, low_open=True)
        check_number("window_kb", self.window_kb, minimum=0, low_open=True)
        check_number("weight_decay", self.weight_decay, minimum=0)
        check_number("l2", self.l2, minimum=0)
        check_number("label_smoothing", self.label_smoothing, minimum=0, maximum=1, high_open=True)
        check_number("val_fraction", self.val_fraction, minimum=0, maximum=0.5, low_open=True, high_open=True)
        check_number("explain_fraction", self.explain_fraction, minimum=0, maximum=0.5)
        check_number("read_sparsity", self.read_sparsity, minimum=0, maximum=1, high_open=True)
        check_number("ld_r2", self.ld_r2, minimum=0, maximum=1)
        check_seed("seed", self.seed)
        if self.select not in ("val_loss", "val_auc", "last"):
            raise ParameterError(f"select: expected val_loss, val_auc or last, found {self.select!r}")
        if self.network_weight not in ("validation", "fixed"):
            raise ParameterError(f"network_weight: expected validation or fixed, found {self.network_weight!r}")
        if self.model not in MODELS:
            raise ParameterError(f"model: expected one of {', '.join(MODELS)}, found {self.model!r}")
        if self.fold_by not in ("label", "site"):
            raise ParameterError(f"fold_by: expected label or site, found {self.fold_by!r}")
        if self.adjust not in ("regress", "none"):
            raise ParameterError(f"adjust: expected regress or none, found {self.adjust!r}")
        if self.calibrate not in ("temperature", "none"):
            raise ParameterError(f"calibrate: expected temperature or none, found {self.calibrate!r}")
        check_device("device", self.device)
        if not isinstance(self.amp, bool):
            raise ParameterError(f"amp: expected true or false, found {self.amp!r}")

    def loci(self, cohort):
        """The run's locus partition of ``cohort``'s SNPs (model tokens and locus ranking share it)."""
        from ..loci import run_loci

        return run_loci(cohort, window_kb=self.window_kb, max_snps=self.max_snps_per_locus, ld_r2=self.ld_r2)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["modalities"] = list(self.modalities)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParameterError(f"unknown training option {unknown[0]!r}; known: {', '.join(sorted(known))}")
        return cls(**values)


# What a run's own config.toml holds besides [train] and [model]: read back, never applied.
_RUN_KEYS = {"cohort", "cohort_relative", "migtrans_version", "validation_split"}


def read_training_config(path) -> tuple[dict, dict | None]:
    """The ``[train]`` and ``[model]`` tables of a training config file, validated.

    The file holds any `TrainConfig` field under ``[train]`` and any `migtrans.model.ModelConfig` field under
    ``[model]``; a run's resolved ``config.toml`` is itself such a file (its ``[run]`` table, which records
    where the run came from, is accepted and ignored). Every unknown section or key is listed in one error.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    (train, model) : dict, dict or None
        Field values as written (validated by building the configs once); ``model`` is None without a
        ``[model]`` table.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "c.toml"
    >>> _ = f.write_text("[train]\\nepochs = 3\\n[model]\\nd_model = 16\\n")
    >>> read_training_config(f)
    ({'epochs': 3}, {'d_model': 16})
    """
    import sys
    from pathlib import Path

    from ..model import ModelConfig

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    path = Path(path)
    where = f"--config {path}"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ParameterError(f"{where}: file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ParameterError(f"{where}: not a readable TOML file ({exc})") from None
    unknown = [f"[{name}]" for name in raw if name not in ("run", "train", "model")]
    for name, known in (
        ("run", _RUN_KEYS),
        ("train", {f.name for f in fields(TrainConfig)}),
        ("model", {f.name for f in fields(ModelConfig)}),
    ):
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise ParameterError(f"{where}: '{name}' must be a [{name}] table")
        unknown += [f"{name}.{key}" for key in table if key not in known]
    if unknown:
        raise ParameterError(
            f"{where}: unknown {'entries' if len(unknown) > 1 else 'entry'} {', '.join(unknown)} (sections [train] "
            "with TrainConfig fields, [model] with ModelConfig fields)"
        )
    train, model = dict(raw.get("train", {})), raw.get("model")
    try:
        TrainConfig(**train)
        if model is not None:
            ModelConfig.from_dict(dict(model))
    except ParameterError as exc:
        raise ParameterError(f"{where}: {exc}") from None
    return train, (dict(model) if model is not None else None)
