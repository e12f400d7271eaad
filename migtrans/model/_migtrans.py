"""MIGTrans: the three encoders and the fusion transformer, with access to every attention map."""

from __future__ import annotations

import contextlib
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from ..exceptions import ParameterError
from ._attention import Attention
from ._config import ModelConfig
from ._encoders import (
    ConnectomeEncoder,
    LocusEncoder,
    MLPGenomicEncoder,
    ModalityRead,
    SpatialSequenceEncoder,
)
from ._fusion import FusionTransformer
from ._prior import LinearPrior


def _positive_int(name, value):
    # numpy integers are welcome (sizes often come from array shapes); bools are not.
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(f"{name}: expected a positive integer, found {value!r}")
    return int(value)


class MIGTrans(nn.Module):
    """Multi-modal Imaging Genomics Transformer (our reading of Shaik et al., 2024).

    Encoders turn each modality into tokens of width ``d_model``; stepwise cross-modal attention
    fuses them (default: FNC node tokens attend to sMRI slice tokens, then locus tokens attend to
    the fused FNC + sMRI tokens); self-attention blocks run over the fused sequence; the CLS token
    gives two logits (index 1 = positive class).

    Fused sequence, in this order (absent modalities left out): ``[CLS; snp tokens; fnc tokens;
    smri tokens]`` -- see :meth:`token_streams`.

    Parameters
    ----------
    config : ModelConfig
    n_snps : int, optional
        Number of SNP columns m. Required when "snp" is a modality.
    loci_index : tuple (index, valid), optional
        Arrays of shape (L, P) from :func:`migtrans.loci.locus_index`. Required with
        ``snp_encoder="locus"``.
    locus_chrom : array-like of int, shape (L,), optional
        Chromosome code per locus (the ``chrom_code`` column of :func:`migtrans.loci.partition_loci`),
        for the chromosome embedding. All loci share one embedding when None.
    n_nodes : int, optional
        FNC nodes K. Required when "fnc" is a modality.
    volume_shape : tuple of 3 int, optional
        (X, Y, Z) of the cropped sMRI volume. Required when "smri" is a modality.

    Examples
    --------
    >>> import torch
    >>> from migtrans.model import MIGTrans, ModelConfig
    >>> _ = torch.manual_seed(0)
    >>> cfg = ModelConfig(modalities=("fnc", "smri"), d_model=16, n_heads=2)
    >>> model = MIGTrans(cfg, n_nodes=5, volume_shape=(7, 8, 9)).eval()
    >>> with model.keep_maps():
    ...     logits = model(fnc=torch.randn(3, 5, 5), smri=torch.randn(3, 7, 8, 9))
    >>> tuple(logits.shape), list(model.attention_maps())
    ((3, 2), ['smri.slice.0', 'cross.fnc<-smri', 'fusion.0'])
    >>> dict(model.token_streams())
    {'cls': 1, 'fnc': 5, 'smri': 5}
    """

    def __init__(
        self, config: ModelConfig, *, n_snps=None, loci_index=None, locus_chrom=None, n_nodes=None, volume_shape=None
    ):
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise ParameterError(f"config: expected a ModelConfig, found {type(config).__name__}")
        config.validate()
        self.config = config
        d, mods = config.d_model, config.modalities
        self.snp_encoder = self.fnc_encoder = self.smri_encoder = None
        self.input_shapes = {}
        if "snp" in mods:
            n_snps = _positive_int("n_snps", n_snps)
            self.input_shapes["snp"] = (n_snps,)
            if not config.modality_tokens:
                pass
            elif config.snp_encoder == "locus":
                if loci_index is None:
                    raise ParameterError("loci_index: required with snp_encoder='locus', found None")
                index, valid = loci_index
                self.snp_encoder = LocusEncoder(
                    n_snps,
                    index,
                    valid,
                    locus_chrom,
                    d_model=d,
                    hidden=config.locus_hidden,
                    max_tokens=config.max_genomic_tokens,
                    dropout=config.dropout,
                    norm=config.token_norm,
                )
            else:
                self.snp_encoder = MLPGenomicEncoder(
                    n_snps,
                    d_model=d,
                    hidden=config.snp_mlp_hidden,
                    n_tokens=config.snp_mlp_tokens,
                    dropout=config.dropout,
                    norm=config.token_norm,
                )
        if "fnc" in mods:
            n_nodes = _positive_int("n_nodes", n_nodes)
            self.input_shapes["fnc"] = (n_nodes, n_nodes)
            if config.modality_tokens:
                self.fnc_encoder = ConnectomeEncoder(
                    n_nodes, d_model=d, dropout=config.dropout, projection=config.fnc_projection, norm=config.token_norm
                )
        if "smri" in mods:
            if volume_shape is None or len(tuple(volume_shape)) != 3:
                raise ParameterError(f"volume_shape: expected (X, Y, Z), found {volume_shape!r}")
            volume_shape = tuple(_positive_int("volume_shape", size) for size in volume_shape)
            self.input_shapes["smri"] = volume_shape
            if config.modality_tokens:
                self.smri_encoder = SpatialSequenceEncoder(volume_shape, config)
        self.fusion = FusionTransformer(config)
        # one linear read per modality, summed into the CLS token (ModelConfig.modality_reads)
        self.reads = nn.ModuleDict(
            {
                m: ModalityRead(shape, d, downsample=config.smri_downsample if m == "smri" else 1)
                for m, shape in self.input_shapes.items()
            }
            if config.modality_reads
            else {}
        )
        # a fixed linear model's log-odds added to the network's (ModelConfig.linear_prior); with a zero head
        # the untrained network is that linear model
        self.prior = LinearPrior(self.input_shapes) if config.linear_prior else None
        if self.prior is not None:
            nn.init.zeros_(self.fusion.head.weight)
            nn.init.zeros_(self.fusion.head.bias)
        self._attention = OrderedDict(self._name_attention())

    def _name_attention(self):
        """Stable public names for every Attention module, in forward execution order."""
        if self.smri_encoder is not None:
            for i, block in enumerate(self.smri_encoder.blocks):
                yield f"smri.slice.{i}", block.attn
        for (name, _, _), block in zip(self.fusion.steps, self.fusion.cross):
            yield name, block.attn
        for i, block in enumerate(self.fusion.blocks):
            yield f"fusion.{i}", block.attn

    def _check(self, name, x):
        if not isinstance(x, torch.Tensor):
            raise ParameterError(f"{name}: expected a torch.Tensor, found {type(x).__name__}")
        expected = self.input_shapes[name]
        if x.ndim != 1 + len(expected) or tuple(x.shape[1:]) != expected:
            raise ParameterError(
                f"{name}: expected shape (batch, {', '.join(map(str, expected))}), found {tuple(x.shape)}"
            )

    def encode(self, snp=None, fnc=None, smri=None) -> "OrderedDict[str, torch.Tensor]":
        """Per-modality tokens before fusion: stream name -> (B, n_tokens, d_model), fused order."""
        inputs = {"snp": snp, "fnc": fnc, "smri": smri}
        encoders = {"snp": self.snp_encoder, "fnc": self.fnc_encoder, "smri": self.smri_encoder}
        tokens, batch = OrderedDict(), None
        for name in self.fusion.streams:
            x = inputs[name]
            if x is None:
                raise ParameterError(f"{name}: the model was built with this modality, found no input")
            self._check(name, x)
            if batch is not None and x.shape[0] != batch:
                raise ParameterError(f"{name}: expected batch size {batch} like the other inputs, found {x.shape[0]}")
            batch = x.shape[0]
            tokens[name] = encoders[name](x)
        return tokens

    def forward(self, snp=None, fnc=None, smri=None, prior_offset=None):
        """Logits for a batch.

        Parameters
        ----------
        snp : torch.Tensor of shape (B, n_snps), optional
            Standardised dosages.
        fnc : torch.Tensor of shape (B, K, K), optional
            FNC matrices.
        smri : torch.Tensor of shape (B, X, Y, Z), optional
            Cropped, standardised volumes (zeros outside the mask).

        prior_offset : torch.Tensor of shape (B,), optional
            With ``config.linear_prior``: the log-odds to add instead of the prior's own (the trainer passes
            the linear model's out-of-fold log-odds of its fit subjects).

        Every modality in ``config.modalities`` is required; inputs of other modalities are ignored.

        Returns
        -------
        torch.Tensor of shape (B, 2)
            Logits; column 1 is the positive class.
        """
        tokens = self.encode(snp=snp, fnc=fnc, smri=smri)
        inputs = {"snp": snp, "fnc": fnc, "smri": smri}
        if not self.config.modality_tokens:  # reads only: encode() checked nothing
            for name in self.input_shapes:
                if inputs[name] is None:
                    raise ParameterError(f"{name}: the model was built with this modality, found no input")
                self._check(name, inputs[name])
        reads = sum(read(inputs[m]) for m, read in self.reads.items()) if len(self.reads) else None
        logits = self.fusion(tokens, cls_offset=reads)
        if self.prior is None:
            return logits
        offset = self.prior(inputs) if prior_offset is None else prior_offset.to(logits.dtype)
        return self.prior.combine(logits, offset)

    # --- attention access -------------------------------------------------------------------------

    def attention_modules(self) -> "OrderedDict[str, Attention]":
        """Name -> Attention module, in forward execution order.

        Names: ``smri.slice.{i}`` (slice self-attention in the sMRI encoder), ``cross.{q}<-{a}[+{b}]``
        (cross-attention steps, queries from stream q, keys from the named streams concatenated in
        that order), ``fusion.{i}`` (self-attention over the fused sequence).
        """
        return OrderedDict(self._attention)

    def attention_specs(self) -> "OrderedDict[str, dict]":
        """Name -> {"kind": "self" | "cross", "stage": "encoder" | "cross" | "fusion",
        "queries": streams, "keys": streams} for every attention map, in execution order.

        Streams are given as tuples of names (``"cls"`` included for fusion maps), in token order,
        so each map's axes can be split with :meth:`token_streams`.
        """
        specs = OrderedDict()
        fused = tuple(self.token_streams())
        for name in self._attention:
            if name.startswith("smri."):
                specs[name] = dict(kind="self", stage="encoder", queries=("smri",), keys=("smri",))
            elif name.startswith("cross."):
                _, query, keys = next(s for s in self.fusion.steps if s[0] == name)
                specs[name] = dict(kind="cross", stage="cross", queries=(query,), keys=tuple(keys))
            else:
                specs[name] = dict(kind="self", stage="fusion", queries=fused, keys=fused)
        return specs

    def token_streams(self) -> "OrderedDict[str, int]":
        """Token streams of the fused sequence and their token counts, in sequence order:
        ``cls`` (1), then ``snp`` (loci, or ``snp_mlp_tokens``), ``fnc`` (K nodes), ``smri`` (slices),
        present streams only."""
        encoders = {"snp": self.snp_encoder, "fnc": self.fnc_encoder, "smri": self.smri_encoder}
        streams = OrderedDict(cls=1)
        for name in self.fusion.streams:
            streams[name] = encoders[name].n_tokens
        return streams

    def set_keep_maps(self, maps: bool = True, grads: bool = False) -> None:
        """Keep (or stop keeping) attention maps, and their gradients, on every later forward."""
        for module in self._attention.values():
            module.keep_maps, module.keep_grads = bool(maps or grads), bool(grads)

    @contextlib.contextmanager
    def keep_maps(self, grads: bool = False):
        """Context manager: forwards inside it keep every attention map (and with ``grads=True``
        retain their gradients for the next ``backward()``). Maps stay readable after the block,
        until the next forward outside it clears them.

        Examples
        --------
        >>> with model.keep_maps(grads=True):              # doctest: +SKIP
        ...     model(snp=x, fnc=f, smri=v)[:, 1].sum().backward()
        >>> model.attention_maps(), model.attention_grads()  # doctest: +SKIP
        """
        previous = [(m.keep_maps, m.keep_grads) for m in self._attention.values()]
        self.set_keep_maps(True, grads)
        try:
            yield self
        finally:
            for module, (maps, grads_) in zip(self._attention.values(), previous):
                module.keep_maps, module.keep_grads = maps, grads_

    def clear_maps(self) -> None:
        """Drop every kept map (and its graph), e.g. before ``copy.deepcopy(model)``, which refuses
        maps kept with gradients."""
        for module in self._attention.values():
            module.probs = None

    def attention_maps(self) -> "OrderedDict[str, torch.Tensor]":
        """Kept maps of the last forward: name -> (batch, heads, queries, keys), rows summing to 1.

        Empty when the last forward kept none. Maps kept with gradients are still attached to the
        graph; ``.detach()`` them to store.
        """
        return OrderedDict((n, m.probs) for n, m in self._attention.items() if m.probs is not None)

    def attention_grads(self) -> "OrderedDict[str, torch.Tensor]":
        """Gradients of the kept maps after ``backward()``: name -> tensor shaped like the map
        (None for a map the backward pass did not reach)."""
        return OrderedDict((n, m.probs_grad) for n, m in self._attention.items() if m.probs is not None)

    def n_parameters(self, trainable_only: bool = True) -> int:
        """Number of (trainable) parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
