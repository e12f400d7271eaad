"""Attention rollout: plain rollout of self-attention stacks (Abnar & Zuidema, 2020), and relevance
propagation through every self- and cross-attention map of a MIGTrans model with the generic rules of
Chefer, Gur & Wolf (ICCV 2021), giving relevance per locus, node and slice token and per modality."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from migtrans import ParameterError

__all__ = ["RelevanceResult", "relevance_rollout", "rollout"]

_HEAD_FUSIONS = ("mean", "max", "min")
_METHODS = ("gradient", "attention")
_TARGETS = (0, 1, "difference")


def _check_option(name, value, options):
    if isinstance(value, bool) or value not in options:
        raise ParameterError(f"{name}: expected one of {', '.join(map(repr, options))}, found {value!r}")
    return value


# --- plain rollout --------------------------------------------------------------------------------


def rollout(maps, *, head_fusion="mean"):
    """Attention rollout of a stack of self-attention maps over one token set.

    Each layer's heads are fused, the residual connection is modelled by adding the identity, rows
    are renormalised, and layers are multiplied, later layer on the left (Abnar & Zuidema, 2020)::

        Â_l = rownorm(fuse_heads(A_l) + I),    rollout = Â_n · ... · Â_2 · Â_1

    With ``head_fusion="mean"`` and maps whose rows sum to one, ``Â_l = (A_l + I) / 2``.

    Parameters
    ----------
    maps : sequence of torch.Tensor or array-like, or mapping of name to those
        Attention probabilities, first layer first, each of shape (..., heads, T, T) with the same
        leading (batch) dimensions, e.g. the fusion maps of
        :meth:`migtrans.model.MIGTrans.attention_maps`. A mapping is read in its iteration order.
    head_fusion : {"mean", "max", "min"}, default="mean"
        How the heads of a layer are combined before the identity is added. "mean" is the original
        method; "max" and "min" are common variants.

    Returns
    -------
    torch.Tensor of shape (..., T, T)
        Row i gives how much token i at the last layer draws on each input token; rows sum to 1.
        Same dtype and device as the maps.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> maps = [torch.randn(3, 2, 5, 5).softmax(-1) for _ in range(4)]   # (batch, heads, T, T)
    >>> joint = rollout(maps)
    >>> tuple(joint.shape), bool(torch.allclose(joint.sum(-1), torch.ones(3, 5)))
    ((3, 5, 5), True)
    """
    _check_option("head_fusion", head_fusion, _HEAD_FUSIONS)
    if isinstance(maps, Mapping):
        maps = list(maps.values())
    if isinstance(maps, (torch.Tensor, np.ndarray)) or not isinstance(maps, Sequence) or not maps:
        raise ParameterError(
            f"maps: expected a non-empty list of (..., heads, T, T) attention maps, found {type(maps).__name__}"
        )
    maps = [m.detach() if isinstance(m, torch.Tensor) else torch.as_tensor(np.asarray(m)) for m in maps]
    shape = tuple(maps[0].shape)
    for i, m in enumerate(maps):
        if m.ndim < 3 or m.shape[-1] != m.shape[-2] or tuple(m.shape) != shape:
            raise ParameterError(
                f"maps[{i}]: expected shape (..., heads, T, T) equal to maps[0] {shape}, found {tuple(m.shape)}"
            )
    eye = torch.eye(shape[-1], dtype=maps[0].dtype, device=maps[0].device)
    joint = None
    for m in maps:
        if head_fusion == "mean":
            fused = m.mean(dim=-3)
        elif head_fusion == "max":
            fused = m.amax(dim=-3)
        else:
            fused = m.amin(dim=-3)
        layer = fused + eye
        layer = layer / layer.sum(dim=-1, keepdim=True)
        joint = layer if joint is None else layer @ joint
    return joint


# --- relevance propagation (Chefer et al., 2021) ----------------------------------------------------


def _fuse_heads(maps, grads, method):
    """Ā per map: E_h[(∇A ⊙ A)^+] ("gradient") or E_h[A] ("attention"), as float64 (B, Q, K)."""
    cams = OrderedDict()
    for name, probs in maps.items():
        probs = probs.detach().double()
        grad = None if grads is None else grads.get(name)
        if method == "attention":
            cams[name] = probs.mean(dim=1)
        elif grad is None:
            # A map the backward pass never reached has no effect on the target: no relevance.
            cams[name] = torch.zeros_like(probs[:, 0])
        else:
            cams[name] = (grad.detach().double() * probs).clamp(min=0).mean(dim=1)
    return cams


def _normalise_self(block):
    """Eqs. 8-9 of Chefer et al.: R̄ = rownorm(R - I) + I, on a square self-relevance block (B, n, n).

    A row of R - I that is all zero (a token that has gathered no context yet, e.g. a locus token
    before any attention) stays zero, so that token stands for itself alone; the paper does not meet
    this case because every stream of its models has self-attention before any co-attention.
    """
    eye = torch.eye(block.shape[-1], dtype=block.dtype, device=block.device)
    residual = block - eye
    sums = residual.sum(dim=-1, keepdim=True)
    residual = torch.where(
        sums > 0, residual / torch.where(sums > 0, sums, torch.ones_like(sums)), torch.zeros_like(residual)
    )
    return residual + eye


def _stream_index(streams, device):
    """Stream name -> LongTensor of its token positions in the fused sequence."""
    index, start = {}, 0
    for name, count in streams.items():
        index[name] = torch.arange(start, start + count, device=device)
        start += count
    return index, start


def _propagate(cams, specs, streams):
    """Relevance matrix R (B, T, T) over the fused tokens after every attention map in ``cams``.

    ``cams``: name -> Ā (B, Q, K) in execution order; ``specs``: name -> {"kind", "queries", "keys"}
    as in :meth:`migtrans.model.MIGTrans.attention_specs`; ``streams``: stream name -> token count,
    in fused-sequence order. R[b, i, j] is the relevance of input token j for token i as it stands
    after the maps processed so far. See :func:`relevance_rollout` for the rules.
    """
    first = next(iter(cams.values()))
    batch, device = first.shape[0], first.device
    index, n_tokens = _stream_index(streams, device)
    relevance = torch.eye(n_tokens, dtype=torch.float64, device=device).repeat(batch, 1, 1)
    for name, cam in cams.items():
        spec = specs[name]
        q = torch.cat([index[s] for s in spec["queries"]])
        k = torch.cat([index[s] for s in spec["keys"]])
        if tuple(cam.shape) != (batch, len(q), len(k)):
            raise ParameterError(
                f"{name}: expected an attention map of {len(q)} queries x {len(k)} keys for streams "
                f"{spec['queries']} <- {spec['keys']}, found {tuple(cam.shape[1:])}"
            )
        if spec["kind"] not in ("self", "cross"):
            raise ParameterError(f"{name}: expected an attention kind 'self' or 'cross', found {spec['kind']!r}")
        rows_k = relevance[:, k]  # (B, |k|, T): what the keys carry, before this layer
        if spec["kind"] == "self":
            # Eqs. 6-7: R[q, :] += Ā · R[q, :] (queries and keys are the same tokens).
            relevance[:, q] = relevance[:, q] + cam @ rows_k
            continue
        # Cross-attention, queries s <- keys K, both read from R before this layer.
        other = torch.ones(n_tokens, dtype=torch.bool, device=device)
        other[k] = False
        other = other.nonzero().squeeze(1)
        r_ss = relevance[:, q][:, :, q]
        r_kk = rows_k[:, :, k]
        # Eq. 10: R[s, K] += R̄_ssᵀ · Ā · R̄_KK.
        add_keys = _normalise_self(r_ss).transpose(-1, -2) @ cam @ _normalise_self(r_kk)
        # Eq. 11, generalised to every column outside K (s itself, CLS, other streams):
        # R[s, j] += Ā · R[K, j] -- the queries inherit what the keys had gathered from elsewhere.
        add_other = cam @ rows_k[:, :, other]
        rows_q = relevance[:, q]
        rows_q[:, :, k] += add_keys
        rows_q[:, :, other] += add_other
        relevance[:, q] = rows_q
    return relevance


@dataclass
class RelevanceResult:
    """Relevance of every input token for the CLS token of MIGTrans (see :func:`relevance_rollout`).

    Attributes
    ----------
    cls : ndarray of shape (B, T)
        CLS row of the final relevance matrix over the fused sequence ``[CLS; snp; fnc; smri]``
        (present streams only, see ``token_streams``); column 0 is CLS's self-relevance.
    snp, fnc, smri : ndarray of shape (B, n_tokens) or None
        The CLS row cut per stream: relevance of each locus token (L), FNC node token (K) and sMRI
        slice token (S); None for a modality the model does not use.
    shares : ndarray of shape (B, M)
        Each present modality's share of the CLS row, CLS's self-relevance excluded; columns in the
        order of ``modalities``; rows sum to 1 (NaN for a subject whose relevance is all zero).
    modalities : tuple of str
        Present modalities, in fused-sequence order (the columns of ``shares``).
    token_streams : dict
        Stream name -> token count, in fused-sequence order (``cls`` first).
    logits : ndarray of shape (B, 2)
        The model's logits for the explained inputs.
    method : str
    target : int or str
    matrix : ndarray of shape (B, T, T) or None
        The whole final relevance matrix when asked for with ``return_matrix=True``.
    """

    cls: np.ndarray
    snp: np.ndarray | None
    fnc: np.ndarray | None
    smri: np.ndarray | None
    shares: np.ndarray
    modalities: tuple
    token_streams: dict
    logits: np.ndarray
    method: str
    target: object
    matrix: np.ndarray | None = field(default=None, repr=False)

    def share(self, modality):
        """Share column of one modality, shape (B,)."""
        if modality not in self.modalities:
            raise ParameterError(f"modality: expected one of {self.modalities}, found {modality!r}")
        return self.shares[:, self.modalities.index(modality)]


def _objective(logits, target):
    if target == "difference":
        return (logits[:, 1] - logits[:, 0]).sum()
    return logits[:, target].sum()


def _prepare_inputs(model, inputs):
    if not isinstance(inputs, Mapping):
        raise ParameterError(
            f"inputs: expected a mapping of modality name to batch (snp, fnc, smri), found {type(inputs).__name__}"
        )
    modalities = [s for s in model.token_streams() if s != "cls"]
    missing = [m for m in modalities if inputs.get(m) is None]
    if missing:
        raise ParameterError(f"inputs: the model uses {modalities}, found no {missing[0]!r} batch")
    param = next(model.parameters())
    prepared = {m: torch.as_tensor(inputs[m], dtype=param.dtype, device=param.device) for m in modalities}
    sizes = {m: x.shape[0] if x.ndim else None for m, x in prepared.items()}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise ParameterError(f"inputs: expected batches of one size, found {sizes}")
    return prepared, next(iter(sizes.values()))


def _relevance_chunk(model, batch, method, target):
    """(R (B, T, T) float64, logits (B, 2)) for one chunk of subjects."""
    if method == "attention":
        with torch.no_grad(), model.keep_maps():
            logits = model(**batch)
        maps, grads = model.attention_maps(), None
    else:
        with torch.enable_grad(), model.keep_maps(grads=True):
            # Inputs that require grad put every map on the graph even for a fully frozen model.
            batch = {m: x.detach().clone().requires_grad_(True) for m, x in batch.items()}
            logits = model(**batch)
            maps = model.attention_maps()
            # autograd.grad, not backward(): the parameters' .grad of the caller's model stay untouched.
            values = torch.autograd.grad(_objective(logits, target), list(maps.values()), allow_unused=True)
        grads = OrderedDict(zip(maps, values))
    cams = _fuse_heads(maps, grads, method)
    # Free the graph the kept maps hold on to.
    model.clear_maps()
    return _propagate(cams, model.attention_specs(), model.token_streams()), logits.detach()


def relevance_rollout(model, inputs, *, target=1, method="gradient", batch_size=None, return_matrix=False):
    """Relevance of every locus, node and slice token, and of each modality, for a MIGTrans prediction.

    Relevance is propagated through *all* attention maps of the model, in execution order (sMRI
    slice self-attention, the stepwise cross-attention steps, the fusion self-attention), with the
    generic rules of Chefer, Gur & Wolf (ICCV 2021), extended from two modalities to the token
    streams CLS, snp, fnc and smri. One relevance matrix R over all T fused tokens is kept,
    starting from the identity; row i says how much token i, as it stands after the maps processed
    so far, draws on each input token. For each map, with heads fused into

    - ``method="gradient"`` (class-specific, eq. 5): Ā = E_heads[(∇A ⊙ A)^+], ∇A the gradient of
      the explained output with respect to the attention probabilities A;
    - ``method="attention"`` (class-agnostic baseline): Ā = E_heads[A],

    the rules are

    - self-attention over tokens q (eqs. 6-7): ``R[q, :] += Ā · R[q, :]``;
    - cross-attention, queries s (one stream) attend to keys K (the key streams concatenated), whose
      output is added to s residually (eqs. 10-11):
      ``R[s, K] += R̄[s, s]ᵀ · Ā · R̄[K, K]`` and, for every other column j (s itself, CLS and streams
      outside the step), ``R[s, j] += Ā · R[K, j]``, where eqs. 8-9 normalise a self-relevance block
      as R̄ = rownorm(R - I) + I (a zero row of R - I stays zero). Both use R from before the step.

    The encoders of the snp and fnc streams contain no attention and act per token, so those tokens
    enter R as themselves. The result is the CLS row of R after the last fusion layer.

    Parameters
    ----------
    model : migtrans.model.MIGTrans
        Run in evaluation mode (restored afterwards) so that dropout does not blur the maps and
        subjects stay independent of each other.
    inputs : mapping
        ``{"snp": (B, n_snps), "fnc": (B, K, K), "smri": (B, X, Y, Z)}`` as for the model's forward,
        tensors or arrays; every modality of the model is required, others are ignored.
    target : {1, 0, "difference"}, default=1
        The output explained with ``method="gradient"``: the logit of class 1 (the positive class,
        as Chefer et al. explain the class logit), of class 0, or the log-odds
        ``logit[1] - logit[0]``, the quantity the predicted probability depends on.
    method : {"gradient", "attention"}, default="gradient"
        Gradient-weighted (class-specific) or raw attention maps, as above.
    batch_size : int, optional
        Explain this many subjects per forward pass (all at once when None). Results do not depend
        on it: subjects are independent in evaluation mode.
    return_matrix : bool, default=False
        Also return the whole (B, T, T) relevance matrix (memory grows as B * T**2).

    Returns
    -------
    RelevanceResult
        ``cls`` (B, T), per-stream rows ``snp`` (B, L), ``fnc`` (B, K), ``smri`` (B, S), and
        ``shares`` (B, M) over ``modalities``, rows summing to 1, CLS's self-relevance excluded.

    Notes
    -----
    Only attention is followed. The sMRI encoder's bidirectional recurrent layer also mixes
    slices (added back residually, so each token stays anchored to its slice); that mixing is not
    seen here. The cost is O(T**3) per fusion layer and subject, computed in float64.

    References
    ----------
    H. Chefer, S. Gur, L. Wolf. Generic Attention-model Explainability for Interpreting Bi-Modal and
    Encoder-Decoder Transformers. ICCV 2021, 397-406.

    Examples
    --------
    >>> import torch
    >>> from migtrans.model import MIGTrans, ModelConfig
    >>> _ = torch.manual_seed(0)
    >>> cfg = ModelConfig(modalities=("fnc", "smri"), d_model=8, n_heads=2, smri_cnn_channels=(4,),
    ...                   smri_downsample=1, linear_prior=False)
    >>> model = MIGTrans(cfg, n_nodes=5, volume_shape=(7, 8, 9))
    >>> result = relevance_rollout(model, {"fnc": torch.randn(3, 5, 5), "smri": torch.randn(3, 7, 8, 9)})
    >>> result.fnc.shape, result.smri.shape, result.modalities
    ((3, 5), (3, 9), ('fnc', 'smri'))
    >>> bool(abs(result.shares.sum(1) - 1).max() < 1e-12)
    True
    """
    _check_option("method", method, _METHODS)
    _check_option("target", target, _TARGETS)
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1
    ):
        raise ParameterError(f"batch_size: expected a positive integer or None, found {batch_size!r}")
    if not hasattr(model, "attention_specs") or not hasattr(model, "token_streams"):
        raise ParameterError(f"model: expected a MIGTrans model, found {type(model).__name__}")
    prepared, n = _prepare_inputs(model, inputs)
    step = n if batch_size is None else int(batch_size)
    was_training = model.training
    model.eval()
    rows, matrices, logits = [], [], []
    try:
        for start in range(0, n, step):
            chunk = {m: x[start : start + step] for m, x in prepared.items()}
            relevance, chunk_logits = _relevance_chunk(model, chunk, method, target)
            rows.append(relevance[:, 0].cpu().numpy())
            logits.append(chunk_logits.cpu().numpy())
            if return_matrix:
                matrices.append(relevance.cpu().numpy())
    finally:
        model.train(was_training)
    cls_row, logits = np.concatenate(rows), np.concatenate(logits)

    streams = OrderedDict(model.token_streams())
    per_stream, start = {}, 0
    for name, count in streams.items():
        per_stream[name] = cls_row[:, start : start + count]
        start += count
    modalities = tuple(s for s in streams if s != "cls")
    totals = np.stack([per_stream[m].sum(axis=1) for m in modalities], axis=1)
    denominator = totals.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(denominator > 0, totals / denominator, np.nan)
    return RelevanceResult(
        cls=cls_row,
        snp=per_stream.get("snp"),
        fnc=per_stream.get("fnc"),
        smri=per_stream.get("smri"),
        shares=shares,
        modalities=modalities,
        token_streams=dict(streams),
        logits=logits,
        method=method,
        target=target,
        matrix=np.concatenate(matrices) if return_matrix else None,
    )
