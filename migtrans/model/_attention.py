"""Our own multi-head attention (self or cross) that can keep its softmax maps and their gradients,
plus the pre-norm transformer block built on it."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..exceptions import ParameterError


class Attention(nn.Module):
    """Multi-head scaled dot-product attention that can keep its probability maps.

    Written out by hand (no ``nn.MultiheadAttention``, no fused ``scaled_dot_product_attention``) so
    that the softmax probabilities exist as an ordinary tensor that explanation methods (attention
    rollout, gradient-weighted rollout) can read, batched.

    Parameters
    ----------
    d_model : int
        Width of query, key and value tokens and of the output.
    n_heads : int
        Number of heads; must divide ``d_model``.
    dropout : float, default=0.0
        Dropout on the attention probabilities. The kept maps are the probabilities *before*
        dropout, so they are proper distributions in training mode too.

    Attributes
    ----------
    keep_maps : bool
        When True, the next forward keeps its probabilities in :attr:`probs` (detached).
    keep_grads : bool
        When True, the next forward keeps its probabilities in :attr:`probs` *attached* to the graph
        and calls ``retain_grad()`` on them, so that after ``backward()`` :attr:`probs_grad` holds
        d(output)/d(probabilities). Implies keeping the maps.
    probs : torch.Tensor or None
        Probabilities of the last forward, shape (batch, heads, queries, keys), rows summing to 1;
        None when neither flag was on.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> attn = Attention(8, 2)
    >>> attn.keep_maps = True
    >>> out = attn(torch.randn(3, 5, 8), torch.randn(3, 7, 8))
    >>> tuple(out.shape), tuple(attn.probs.shape)
    ((3, 5, 8), (3, 2, 5, 7))
    """

    def __init__(self, d_model: int, n_heads: int, *, dropout: float = 0.0):
        super().__init__()
        if d_model % n_heads:
            raise ParameterError(f"n_heads: expected a divisor of d_model={d_model}, found {n_heads}")
        self.d_model, self.n_heads = d_model, n_heads
        self.head_dim = d_model // n_heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.keep_maps = False
        self.keep_grads = False
        self.probs = None

    def _heads(self, x):
        batch, tokens, _ = x.shape
        return x.reshape(batch, tokens, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, x, context=None, *, key_padding_mask=None):
        """Attend from ``x`` to ``context`` (to ``x`` itself when None).

        Parameters
        ----------
        x : torch.Tensor of shape (batch, queries, d_model)
        context : torch.Tensor of shape (batch, keys, d_model), optional
        key_padding_mask : torch.Tensor of shape (batch, keys), bool, optional
            True where a key must be ignored.

        Returns
        -------
        torch.Tensor of shape (batch, queries, d_model)
        """
        context = x if context is None else context
        # Scale the (small) queries rather than the (batch x heads x Q x K) scores: on CPU the
        # elementwise passes over the score tensor dominate the cost of attention.
        q = self._heads(self.query(x) * self.scale)
        k, v = self._heads(self.key(context)), self._heads(self.value(context))
        scores = torch.matmul(q, k.transpose(-2, -1))
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        probs = scores.softmax(dim=-1)
        if self.keep_grads and probs.requires_grad:
            probs.retain_grad()
            self.probs = probs
        elif self.keep_maps or self.keep_grads:
            self.probs = probs.detach()
        else:
            # Drop the last map so that a stale one is never mistaken for this forward's.
            self.probs = None
        if self.training and self.dropout.p > 0:
            probs = self.dropout(probs)
        mixed = torch.matmul(probs, v)
        batch, _, queries, _ = mixed.shape
        return self.out(mixed.transpose(1, 2).reshape(batch, queries, self.d_model))

    @property
    def probs_grad(self):
        """Gradient of the kept probabilities after ``backward()`` (same shape), or None."""
        return None if self.probs is None else self.probs.grad


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x), LN(context)), then x + FFN(LN(x)).

    Pre-norm (rather than the original post-norm) because it trains stably without warm-up on
    the small cohorts this model sees.

    Parameters
    ----------
    d_model, n_heads : int
    ffn_mult : int
        Feed-forward hidden width as a multiple of ``d_model``.
    dropout : float
        Dropout on the residual branches and inside the feed-forward sublayer.
    attention_dropout : float
        Dropout on attention probabilities.
    cross : bool, default=False
        Whether the block attends to a separate context (then it has its own norm for the context).
    """

    def __init__(self, d_model, n_heads, *, ffn_mult=2, dropout=0.0, attention_dropout=0.0, cross=False):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.context_norm = nn.LayerNorm(d_model) if cross else None
        self.attn = Attention(d_model, n_heads, dropout=attention_dropout)
        self.ffn_norm = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, ffn_mult * d_model),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(ffn_mult * d_model, d_model),
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x, context=None):
        h = self.norm(x)
        if self.context_norm is None:
            attended = self.attn(h)
        else:
            attended = self.attn(h, self.context_norm(context))
        x = x + self.drop(attended)
        return x + self.drop(self.ffn(self.ffn_norm(x)))
