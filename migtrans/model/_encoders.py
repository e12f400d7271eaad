"""The three modality encoders: genomic locus tokens (or an MLP ablation), connectome node tokens and
the sMRI Spatial Sequence Attention encoder (slice tokens)."""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..exceptions import ParameterError
from ._attention import Block


def _embedding(n, d):
    # Small-std init (as in ViT/BERT) so embeddings perturb, not swamp, the content projections.
    return nn.Parameter(torch.randn(n, d) * 0.02)


class LocusEncoder(nn.Module):
    """Genomic encoder: one token per locus (or per group of consecutive loci, at most ``max_tokens``).

    Each locus's SNPs go through the locus's own dense projection to ``hidden`` units + GELU, then a
    shared linear map to ``d_model``; learned locus and chromosome embeddings are added. The
    per-locus projections are one block-diagonal operation: gather ``x[:, index] * valid`` to
    (B, L, P), gather the per-SNP weight rows to (L, P, hidden), one ``einsum``.

    Weights are stored per SNP (``weight`` of shape (n_snps, hidden)), so padding costs no
    parameters; row j belongs to the locus that holds SNP j.

    Parameters
    ----------
    n_snps : int
    index, valid : array-like of shape (L, P)
        From :func:`migtrans.loci.locus_index`; every SNP column at most once.
    locus_chrom : array-like of int, shape (L,), optional
        Chromosome code per locus (``chrom_code`` from :func:`migtrans.loci.partition_loci`);
        all zeros when None.
    d_model, hidden : int
    max_tokens : int, optional
        With more loci than this, consecutive loci are pooled into ``max_tokens`` groups of near-equal size
        (the mean of their hidden units) before the map to ``d_model``; group and chromosome (of the group's
        first locus) embeddings replace the locus embeddings.
    dropout : float
    """

    def __init__(
        self,
        n_snps,
        index,
        valid,
        locus_chrom=None,
        *,
        d_model=64,
        hidden=16,
        max_tokens=None,
        dropout=0.0,
        norm=False,
    ):
        super().__init__()
        index = torch.as_tensor(np.array(index, dtype=np.int64))
        valid = torch.as_tensor(np.array(valid, dtype=bool))
        if index.ndim != 2 or index.shape != valid.shape:
            raise ParameterError(
                f"loci_index: expected (index, valid) of one shape (L, P), found {tuple(index.shape)} "
                f"and {tuple(valid.shape)}"
            )
        used = index[valid]
        if used.numel() == 0 or used.min() < 0 or used.max() >= n_snps:
            raise ParameterError(f"loci_index: expected SNP columns in [0, {n_snps}), found others")
        if torch.unique(used).numel() != used.numel():
            raise ParameterError("loci_index: a SNP column appears in more than one locus slot")
        if (valid.sum(1) == 0).any():
            raise ParameterError("loci_index: a locus has no SNPs")
        n_loci = index.shape[0]
        if locus_chrom is None:
            locus_chrom = np.zeros(n_loci, dtype=np.int64)
        locus_chrom = torch.tensor(np.array(locus_chrom, dtype=np.int64))
        if locus_chrom.shape != (n_loci,) or (locus_chrom < 0).any():
            raise ParameterError(
                f"locus_chrom: expected {n_loci} non-negative integers, found shape {tuple(locus_chrom.shape)}"
            )
        self.n_snps, self.n_loci, self.hidden = n_snps, n_loci, hidden
        self.register_buffer("index", index)
        self.register_buffer("valid", valid.float())
        self.register_buffer("locus_chrom", locus_chrom)
        # Uniform(+-1/sqrt(fan_in)) like nn.Linear, with fan_in = the size of each SNP's own locus.
        sizes = valid.sum(1).float()
        fan_in = torch.zeros(n_snps)
        fan_in[used] = sizes[:, None].expand_as(valid)[valid]
        bound = 1.0 / fan_in.clamp(min=1).sqrt()
        self.weight = nn.Parameter((torch.rand(n_snps, hidden) * 2 - 1) * bound[:, None])
        self.bias = nn.Parameter((torch.rand(n_loci, hidden) * 2 - 1) / sizes.sqrt()[:, None])
        self.proj = nn.Linear(hidden, d_model)
        # pooling only when the loci outnumber the tokens allowed: smaller cohorts keep one token per locus
        self.grouped = max_tokens is not None and n_loci > max_tokens
        n_groups = max_tokens if self.grouped else n_loci
        group = np.repeat(np.arange(n_groups), [len(a) for a in np.array_split(np.arange(n_loci), n_groups)])
        group = torch.as_tensor(group, dtype=torch.int64)
        # derived from the locus partition, which the run rebuilds: not saved, so older checkpoints still load
        self.register_buffer("group", group, persistent=False)
        self.register_buffer("group_size", torch.bincount(group, minlength=n_groups).float(), persistent=False)
        first = torch.searchsorted(group, torch.arange(n_groups))
        self.register_buffer("token_chrom", locus_chrom[first] if self.grouped else locus_chrom, persistent=False)
        self.n_groups = n_groups
        self.locus_embedding = _embedding(n_groups, d_model)
        self.chrom_embedding = _embedding(int(locus_chrom.max()) + 1, d_model)
        self.norm = nn.LayerNorm(d_model) if norm else nn.Identity()
        self.drop = nn.Dropout(dropout)

    def locus_projection(self, x):
        """Per-locus hidden units, GELU applied: (B, n_snps) -> (B, L, hidden)."""
        gathered = x[:, self.index] * self.valid.to(x.dtype)  # (B, L, P); padding -> 0
        weight = self.weight[self.index]  # (L, P, hidden); padding rows meet zeros above
        return F.gelu(torch.einsum("blp,lph->blh", gathered, weight.to(gathered.dtype)) + self.bias)

    def forward(self, x):
        hidden = self.locus_projection(x)
        if self.grouped:
            pooled = hidden.new_zeros(hidden.shape[0], self.n_groups, hidden.shape[2])
            hidden = pooled.index_add_(1, self.group, hidden) / self.group_size[:, None].to(hidden.dtype)
        tokens = self.proj(hidden)
        tokens = tokens + self.locus_embedding + self.chrom_embedding[self.token_chrom]
        return self.drop(self.norm(tokens))

    @property
    def n_tokens(self):
        return self.n_groups


class MLPGenomicEncoder(nn.Module):
    """Ablation genomic encoder: dense + GELU over all SNPs, reshaped into a few tokens."""

    def __init__(self, n_snps, *, d_model=64, hidden=128, n_tokens=4, dropout=0.0, norm=False):
        super().__init__()
        self.n_tokens, self.d_model = n_tokens, d_model
        self.mlp = nn.Sequential(
            nn.Linear(n_snps, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_tokens * d_model),
        )
        self.token_embedding = _embedding(n_tokens, d_model)
        self.norm = nn.LayerNorm(d_model) if norm else nn.Identity()
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        tokens = self.mlp(x).reshape(x.shape[0], self.n_tokens, self.d_model)
        return self.drop(self.norm(F.gelu(tokens) + self.token_embedding))


class ConnectomeEncoder(nn.Module):
    """Connectome encoder: node k's FNC row -> dense + GELU + learned node embedding -> token k.

    ``projection="shared"``: one dense layer for every row. ``"per_node"``: node k's own (K x hidden)
    projection then a shared (hidden -> d_model) map, batched as one einsum.
    """

    def __init__(self, n_nodes, *, d_model=64, dropout=0.0, projection="shared", hidden=8, norm=False):
        super().__init__()
        self.n_tokens = n_nodes
        self.projection = projection
        if projection == "per_node":
            self.weight = nn.Parameter(torch.randn(n_nodes, n_nodes, hidden) / math.sqrt(n_nodes))
            self.bias = nn.Parameter(torch.zeros(n_nodes, hidden))
            self.proj = nn.Linear(hidden, d_model)
        else:
            self.proj = nn.Linear(n_nodes, d_model)
        self.node_embedding = _embedding(n_nodes, d_model)
        self.norm = nn.LayerNorm(d_model) if norm else nn.Identity()
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        if self.projection == "per_node":
            hidden = F.gelu(torch.einsum("bkj,kjh->bkh", x, self.weight) + self.bias)
            content = self.proj(hidden)
        else:
            content = F.gelu(self.proj(x))
        return self.drop(self.norm(content + self.node_embedding))


class SliceCNN(nn.Module):
    """Shared 2D slice backbone: [conv3x3 - norm - GELU - maxpool2] per channel count, then an adaptive
    average pool to a ``pool_grid`` x ``pool_grid`` map, flattened.

    Input (N, 1, H, W), output (N, channels[-1] * pool_grid**2). The pooled grid keeps *where* in the
    slice a pattern sits (a regional gray-matter change), which a global mean would wash out; for the
    same reason the default norm is none: a per-sample GroupNorm followed by pooling removes most
    between-subject differences (measured: the model could not fit 64 subjects). ``ceil_mode``
    pooling lets odd and tiny slices (down to 1 x 1) pass through any depth.
    """

    def __init__(self, channels=(8, 16), norm="none", pool_grid=6):
        super().__init__()
        layers, c_in = [], 1
        for c in channels:
            if norm == "batch":
                norm_layer = nn.BatchNorm2d(c)
            elif norm == "group":
                norm_layer = nn.GroupNorm(4 if c % 4 == 0 else 1, c)
            else:
                norm_layer = nn.Identity()
            layers += [
                nn.Conv2d(c_in, c, 3, padding=1, bias=norm == "none"),
                norm_layer,
                nn.GELU(),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.pool_grid = pool_grid
        self.out_channels = c_in * pool_grid * pool_grid

    def forward(self, x):
        return F.adaptive_avg_pool2d(self.features(x), self.pool_grid).flatten(1)


class SpatialSequenceEncoder(nn.Module):
    """sMRI encoder, Spatial Sequence Attention: volume -> slice tokens.

    The (B, X, Y, Z) volume is optionally average-pooled, cut into slices along ``slice_axis``;
    the shared :class:`SliceCNN` gives one vector per slice, projected to ``d_model`` with a learned
    slice-position embedding; a bidirectional GRU/LSTM over the slice sequence is added back
    (residual, so each token stays anchored to its slice for attribution); then
    ``n_attention_layers`` self-attention blocks across slices.

    Parameters
    ----------
    volume_shape : tuple of 3 int
    config : ModelConfig
    """

    def __init__(self, volume_shape, config):
        super().__init__()
        self.volume_shape = tuple(int(s) for s in volume_shape)
        self.axis = config.smri_slice_axis
        self.downsample = config.smri_downsample
        self.n_tokens = math.ceil(self.volume_shape[self.axis] / self.downsample)
        d = config.d_model
        self.cnn = SliceCNN(config.smri_cnn_channels, config.smri_cnn_norm, config.smri_pool_grid)
        if config.smri_backbone_weights is not None:
            self._load_backbone(config.smri_backbone_weights)
        if config.smri_freeze_backbone:
            self.cnn.requires_grad_(False)
        self.proj = nn.Linear(self.cnn.out_channels, d)
        self.slice_embedding = _embedding(self.n_tokens, d)
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}.get(config.smri_rnn)
        self.rnn = None if rnn is None else rnn(d, d // 2, batch_first=True, bidirectional=True)
        self.rnn_norm = nn.LayerNorm(d)
        self.blocks = nn.ModuleList(
            Block(
                d,
                config.n_heads,
                ffn_mult=config.ffn_mult,
                dropout=config.dropout,
                attention_dropout=config.attention_dropout,
            )
            for _ in range(config.n_slice_attention_layers)
        )
        self.norm = nn.LayerNorm(d) if config.token_norm else nn.Identity()
        self.drop = nn.Dropout(config.dropout)

    def _load_backbone(self, path):
        if not os.path.isfile(path):
            raise ParameterError(f"smri_backbone_weights: expected a local state-dict file, found no file at {path!r}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error here
            raise ParameterError(f"smri_backbone_weights: cannot read {path!r} ({exc})") from None
        try:
            self.cnn.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise ParameterError(
                f"smri_backbone_weights: {path!r} does not fit the slice CNN with the configured "
                f"smri_cnn_channels/smri_cnn_norm/smri_pool_grid ({exc})"
            ) from None

    def forward(self, x):
        if self.downsample > 1:
            x = F.avg_pool3d(x.unsqueeze(1), self.downsample, ceil_mode=True).squeeze(1)
        x = x.movedim(1 + self.axis, 1)
        batch, n_slices, height, width = x.shape
        features = self.cnn(x.reshape(batch * n_slices, 1, height, width)).reshape(batch, n_slices, -1)
        tokens = self.drop(self.proj(features) + self.slice_embedding)
        if self.rnn is not None:
            recurrent, _ = self.rnn(tokens)
            tokens = self.rnn_norm(tokens + recurrent)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)


class ModalityRead(nn.Module):
    """One linear read of a modality's whole input, to a ``d_model`` vector (added to CLS by the fusion).

    Attention pools tokens by averaging; a weak signal carried by a few of many tokens is diluted by
    it. This read sums evidence over every input feature, as a linear model does, and gives the
    transformer that view from the first step. An sMRI volume is average-pooled by ``downsample``
    first (as the slice encoder's input), which also averages voxel noise within a region.
    """

    def __init__(self, input_shape, d_model, *, downsample=1):
        super().__init__()
        self.downsample = downsample
        shape = tuple(math.ceil(s / downsample) for s in input_shape) if downsample > 1 else tuple(input_shape)
        self.proj = nn.Linear(math.prod(shape), d_model)

    def forward(self, x):
        if self.downsample > 1:
            x = F.avg_pool3d(x.unsqueeze(1), self.downsample, ceil_mode=True).squeeze(1)
        return self.proj(x.flatten(1))
