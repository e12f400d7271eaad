"""ModelConfig: every size and choice of the MIGTrans network, validated, JSON-safe."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from ..exceptions import ParameterError

MODALITIES = ("snp", "fnc", "smri")
_STEP = re.compile(r"^\s*(\w+)\s*<-\s*(\w+(?:\s*\+\s*\w+)*)\s*$")


def parse_step(step: str) -> tuple[str, tuple[str, ...]]:
    """'snp<-fnc+smri' -> ('snp', ('fnc', 'smri')); raises ParameterError on a malformed step."""
    match = _STEP.match(step) if isinstance(step, str) else None
    if match is None:
        raise ParameterError(f"cross_attention: expected steps like 'fnc<-smri' or 'snp<-fnc+smri', found {step!r}")
    query = match.group(1)
    keys = tuple(k.strip() for k in match.group(2).split("+"))
    for name in (query, *keys):
        if name not in MODALITIES:
            raise ParameterError(f"cross_attention: expected modalities from {MODALITIES}, found {name!r} in {step!r}")
    if query in keys or len(set(keys)) != len(keys):
        raise ParameterError(f"cross_attention: a step's query and key modalities must be distinct, found {step!r}")
    return query, keys


@dataclass
class ModelConfig:
    """Sizes and choices of the MIGTrans network.

    Every field is a plain type (str, int, float, bool, tuple of those, or None) so that the config
    round-trips through JSON/TOML with :meth:`to_dict` / :meth:`from_dict`. Defaults are our reading
    of the paper, which does not pin them.

    Parameters
    ----------
    modalities : tuple of str, default=("snp", "fnc", "smri")
        Which input streams the model uses; any non-empty subset. Absent streams are skipped
        everywhere (encoders, cross-attention steps, fused sequence).
    d_model : int, default=32
        Width of every token.
    n_heads : int, default=2
        Heads of every attention module; must divide ``d_model``.
    ffn_mult : int, default=2
        Hidden width of the feed-forward sublayers, as a multiple of ``d_model``.
    dropout : float, default=0.1
        Dropout on token embeddings and residual branches.
    attention_dropout : float, default=0.0
        Dropout on attention probabilities (the stored maps are taken before it). Off by default:
        on CPU, drawing a mask over every (batch x heads x queries x keys) map costs about as much
        as the attention itself, for little gain on small cohorts.
    fnc_projection : {"shared", "per_node"}, default="shared"
        Connectome encoder input projection: one dense layer shared by every node's FNC row (DESIGN
        §4), or each node's own small projection (one batched einsum), which lets a token weigh its
        own edges (a, b) independently of every other (i, b).
    snp_encoder : {"locus", "mlp"}, default="locus"
        "locus": one token per locus, each from its own dense projection of the locus's SNPs
        (one batched block-diagonal operation) + GELU, then a shared linear map to ``d_model``, plus
        learned locus and chromosome embeddings. "mlp": ablation, a dense + GELU MLP over all SNPs
        giving ``snp_mlp_tokens`` tokens.
    locus_hidden : int, default=16
        Width of each locus's own projection before the shared map to ``d_model``; kept small so the
        per-locus weights (n_snps x locus_hidden in all) stay far below one d_model-wide projection.
    max_genomic_tokens : int, default=512
        The most genomic tokens the fusion sees. With more loci (SNPs spread like a genotyping array give
        thousands of 250 kb windows), consecutive loci are pooled into this many tokens of near-equal locus
        counts (the mean of their locus projections), so attention stays quadratic in a bounded number
        whatever the array; each locus keeps its own SNP weights, and the locus table still reports every
        locus. Cohorts with fewer loci (the simulator's LD blocks: about 300 for 5,000 SNPs) are unchanged.
    snp_mlp_hidden : int, default=128
        Hidden width of the "mlp" genomic encoder.
    snp_mlp_tokens : int, default=4
        Number of tokens the "mlp" genomic encoder emits.
    smri_slice_axis : {0, 1, 2}, default=2
        Volume axis cut into slices (2 = axial for RAS-oriented grids).
    smri_downsample : int, default=2
        Average-pool the volume by this factor along every axis before slicing (1 = no pooling);
        a cheap speed knob for fine grids.
    smri_cnn_channels : tuple of int, default=(8, 16)
        Output channels of the shared 2D slice CNN's blocks (conv 3x3 - norm - GELU - max-pool 2),
        followed by an adaptive average pool to ``smri_pool_grid`` x ``smri_pool_grid``, flattened.
    smri_cnn_norm : {"none", "group", "batch"}, default="none"
        Normalisation in the slice CNN. "none" keeps between-subject intensity differences (a
        per-sample GroupNorm removed too much of them to learn regional atrophy on small cohorts);
        "group" is batch-independent; "batch" suits BatchNorm backbones.
    smri_pool_grid : int, default=6
        Side of the pooled feature map kept per slice, so slice tokens know *where* in the slice a
        change lies.
    smri_rnn : {"gru", "lstm", "none"}, default="gru"
        Bidirectional recurrent layer across slices (``d_model // 2`` units per direction, added
        back to its input). GRU by default: as good as LSTM on sequences this short, with fewer
        parameters.
    n_slice_attention_layers : int, default=1
        Transformer self-attention blocks across slices, after the recurrent layer.
    smri_backbone_weights : str or None, default=None
        Path of a local state dict for the slice CNN (loaded with ``torch.load(weights_only=True)``);
        nothing is ever downloaded.
    smri_freeze_backbone : bool, default=False
        Keep the slice CNN's weights fixed during training.
    cross_attention : tuple of str, default=("fnc<-smri", "snp<-fnc+smri")
        Stepwise cross-modal attention, in order. ``"q<-a+b"`` means: the tokens of stream ``q``
        attend to the (current, already fused) tokens of streams ``a`` and ``b`` concatenated, then
        replace ``q``'s tokens (residual, norm, feed-forward). Steps whose query stream is absent, or
        all of whose key streams are absent, are skipped; absent key streams are dropped from a step.
    n_fusion_layers : int, default=1
        Transformer self-attention blocks over ``[CLS; snp; fnc; smri]`` tokens.
    label_smoothing : float, default=0.1
        Label smoothing of the cross-entropy loss (used by the trainer, recorded here).
    modality_reads : bool, default=True
        Start the CLS token from one linear read of each modality's whole input (every SNP, every
        FNC entry, every voxel of the average-pooled volume) added to the learned CLS embedding.
        Attention pools tokens by *averaging*, so weak evidence spread over a few of hundreds of
        loci, edges or slices is diluted; a linear read *sums* it, as a linear model does. Measured
        on the demo cohort: without the reads every variant stayed at chance (docs/benchmarks.md).
    modality_tokens : bool, default=True
        Feed the encoders' tokens to the fusion. False is an ablation ("reads only"): no encoders, no
        cross-attention, the fusion blocks and head see the CLS token started from the modality reads
        alone, which makes the model a small network on one linear read per modality. It needs
        ``modality_reads``; such a model trains and predicts but has no tokens to explain.
    token_norm : bool, default=False
        LayerNorm on each encoder's output tokens. Off by default: a LayerNorm right after an input
        projection makes the projection scale-free, so weight decay / L2 cannot regularise it and
        the effective learning rate grows as the weights shrink; the pre-norm fusion blocks normalise
        their own inputs anyway.
    linear_prior : bool, default=True
        Add a fixed linear model's log-odds to the network's (`LinearPrior`): the trainer fits an
        elastic-net logistic regression on each fold's training share (tuned by inner cross-validation, as
        ``--model elasticnet``), trains the network on its out-of-fold log-odds as an offset, and the
        fitted model reads the same inputs at prediction. The head starts at zero, so the untrained
        network is the elastic net, and early stopping can keep it (epoch 0). With the default
        ``TrainConfig.network_weight = "validation"`` the network's log-odds are then weighted by a factor
        in [0, 1] fitted on a validation split. On by default since it was measured to help (on `easy` at
        600 subjects 71.8% / AUC 0.787 against 68.5% / 0.758 without; docs/benchmarks.md, "Issue 19");
        runs trained before it existed read back with it off.
    """

    modalities: tuple = MODALITIES
    d_model: int = 32
    n_heads: int = 2
    ffn_mult: int = 2
    dropout: float = 0.1
    attention_dropout: float = 0.0
    snp_encoder: str = "locus"
    fnc_projection: str = "shared"
    locus_hidden: int = 16
    max_genomic_tokens: int = 512
    snp_mlp_hidden: int = 128
    snp_mlp_tokens: int = 4
    smri_slice_axis: int = 2
    smri_downsample: int = 2
    smri_cnn_channels: tuple = (8, 16)
    smri_cnn_norm: str = "none"
    smri_pool_grid: int = 6
    smri_rnn: str = "gru"
    n_slice_attention_layers: int = 1
    smri_backbone_weights: str | None = None
    smri_freeze_backbone: bool = False
    cross_attention: tuple = ("fnc<-smri", "snp<-fnc+smri")
    n_fusion_layers: int = 1
    label_smoothing: float = 0.1
    modality_reads: bool = True
    modality_tokens: bool = True
    token_norm: bool = False
    linear_prior: bool = True

    def __post_init__(self):
        # Lists arrive from JSON/TOML; store tuples so configs compare and hash the same way.
        for name in ("modalities", "smri_cnn_channels", "cross_attention"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                setattr(self, name, tuple(value))
        self.validate()

    def validate(self) -> ModelConfig:
        """Check every field; raise ParameterError naming the first bad one. Returns self."""

        def fail(name, expected):
            raise ParameterError(f"{name}: expected {expected}, found {getattr(self, name)!r}")

        def integer(name, low):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                fail(name, f"an integer >= {low}")

        def fraction(name):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                fail(name, "a number in [0, 1)")

        def choice(name, options):
            if getattr(self, name) not in options:
                fail(name, "one of " + ", ".join(repr(o) for o in options))

        mods = self.modalities
        if (
            not isinstance(mods, tuple)
            or not mods
            or any(m not in MODALITIES for m in mods)
            or len(set(mods)) != len(mods)
        ):
            fail("modalities", f"a non-empty subset of {MODALITIES} without repeats")
        for name, low in (
            ("d_model", 2),
            ("n_heads", 1),
            ("ffn_mult", 1),
            ("locus_hidden", 1),
            ("max_genomic_tokens", 1),
            ("snp_mlp_hidden", 1),
            ("snp_mlp_tokens", 1),
            ("smri_downsample", 1),
            ("n_slice_attention_layers", 0),
            ("n_fusion_layers", 1),
        ):
            integer(name, low)
        if self.d_model % self.n_heads:
            fail("n_heads", f"a divisor of d_model={self.d_model}")
        for name in ("dropout", "attention_dropout", "label_smoothing"):
            fraction(name)
        choice("snp_encoder", ("locus", "mlp"))
        choice("fnc_projection", ("shared", "per_node"))
        choice("smri_slice_axis", (0, 1, 2))
        if isinstance(self.smri_slice_axis, bool):
            fail("smri_slice_axis", "one of 0, 1, 2")
        choice("smri_cnn_norm", ("none", "group", "batch"))
        integer("smri_pool_grid", 1)
        choice("smri_rnn", ("gru", "lstm", "none"))
        if self.smri_rnn != "none" and self.d_model % 2:
            fail("d_model", "an even number (the bidirectional smri_rnn has d_model // 2 units per direction)")
        chans = self.smri_cnn_channels
        if (
            not isinstance(chans, tuple)
            or not chans
            or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in chans)
        ):
            fail("smri_cnn_channels", "a non-empty tuple of positive integers")
        if self.smri_backbone_weights is not None and not isinstance(self.smri_backbone_weights, str):
            fail("smri_backbone_weights", "a path string or None")
        for name in ("smri_freeze_backbone", "modality_reads", "modality_tokens", "token_norm", "linear_prior"):
            if not isinstance(getattr(self, name), bool):
                fail(name, "True or False")
        if not self.modality_tokens and not self.modality_reads:
            fail("modality_tokens", "True when modality_reads is False (the model would see no input)")
        if not isinstance(self.cross_attention, tuple):
            fail("cross_attention", "a tuple of steps like 'fnc<-smri'")
        for step in self.cross_attention:
            parse_step(step)
        return self

    def to_dict(self) -> dict:
        """Plain-typed dict (tuples as lists) that survives ``json.dumps`` and TOML writers.

        ``smri_backbone_weights`` is omitted when None, since TOML has no null.
        """
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        """Build and validate a config from :meth:`to_dict` output; unknown keys raise ParameterError."""
        if not isinstance(values, dict):
            raise ParameterError(f"model config: expected a mapping, found {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParameterError(
                f"{unknown[0]}: unknown model config field (expected one of {', '.join(sorted(known))})"
            )
        return cls(**values)

    def cross_steps(self) -> list[tuple[str, tuple[str, ...]]]:
        """The cross-attention steps that apply to ``modalities``, as (query, keys) after dropping
        absent streams, in order."""
        steps = []
        for step in self.cross_attention:
            query, keys = parse_step(step)
            keys = tuple(k for k in keys if k in self.modalities)
            if query in self.modalities and keys:
                steps.append((query, keys))
        return steps
