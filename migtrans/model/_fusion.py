"""Fusion transformer: stepwise cross-modal attention, then self-attention over [CLS; all tokens],
then a linear head on CLS."""

from __future__ import annotations

import torch
from torch import nn

from ._attention import Block

STREAM_ORDER = ("snp", "fnc", "smri")


class FusionTransformer(nn.Module):
    """Stepwise cross-modal attention then self-attention over the fused sequence.

    Parameters
    ----------
    config : ModelConfig
        Its ``cross_steps()`` (steps resolved against ``modalities``) fixes the cross blocks.

    Attributes
    ----------
    steps : list of (str, str, tuple of str)
        (map name, query stream, key streams) per cross-attention block, in order.
    streams : tuple of str
        Present streams in fused-sequence order (after CLS): snp, fnc, smri.
    """

    def __init__(self, config):
        super().__init__()
        d = config.d_model
        kwargs = dict(ffn_mult=config.ffn_mult, dropout=config.dropout, attention_dropout=config.attention_dropout)
        # without modality tokens (an ablation) the sequence is the CLS token alone, started from the reads
        tokens = getattr(config, "modality_tokens", True)
        self.streams = tuple(s for s in STREAM_ORDER if s in config.modalities) if tokens else ()
        self.steps, names = [], set()
        for query, keys in config.cross_steps() if tokens else ():
            name = f"cross.{query}<-{'+'.join(keys)}"
            base, n = name, 2
            while name in names:  # the same step configured twice keeps two distinct map names
                name, n = f"{base}#{n}", n + 1
            names.add(name)
            self.steps.append((name, query, keys))
        self.cross = nn.ModuleList(Block(d, config.n_heads, cross=True, **kwargs) for _ in self.steps)
        self.cls_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, config.n_heads, **kwargs) for _ in range(config.n_fusion_layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 2)

    def forward(self, tokens: dict, cls_offset=None):
        """``tokens``: stream name -> (B, n_tokens, d_model); ``cls_offset``: (B, d_model) added to the
        CLS embedding (the modality reads), or None. Returns logits (B, 2)."""
        tokens = dict(tokens)
        for (_, query, keys), block in zip(self.steps, self.cross):
            context = torch.cat([tokens[k] for k in keys], dim=1)
            tokens[query] = block(tokens[query], context)
        batch = next(iter(tokens.values())).shape[0] if tokens else cls_offset.shape[0]
        cls = self.cls_token.expand(batch, -1, -1)
        if cls_offset is not None:
            cls = cls + cls_offset[:, None]
        sequence = torch.cat([cls] + [tokens[s] for s in self.streams], dim=1)
        for block in self.blocks:
            sequence = block(sequence)
        return self.head(self.norm(sequence[:, 0]))
