"""Integrated gradients over the three inputs at once (captum), chunked so memory stays bounded,
with the per-subject completeness delta, and optional SmoothGrad averaging."""

from __future__ import annotations

import torch

from migtrans.exceptions import ParameterError

MODALITY_ORDER = ("snp", "fnc", "smri")


class LogOdds(torch.nn.Module):
    """Positive-class log-odds (logit difference) of a two-logit model, taking inputs positionally."""

    def __init__(self, model, names):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *tensors):
        logits = self.model(**dict(zip(self.names, tensors)))
        return (logits[:, 1] - logits[:, 0]).float()


def integrated_gradients(
    model,
    inputs,
    baselines=None,
    *,
    n_steps=32,
    method="gausslegendre",
    internal_batch_size=None,
    smoothgrad_samples=0,
    noise_level=None,
    random_state=0,
):
    """Integrated gradients of the positive-class log-odds with respect to every input modality.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(snp=..., fnc=..., smri=...)`` and returning (B, 2) logits.
    inputs : dict of str -> Tensor
        One batch per modality, first dimension = subjects.
    baselines : dict of str -> Tensor, optional
        Same shapes as ``inputs`` (or broadcastable, e.g. one row). Default: zeros, which is the
        training-fold mean for inputs standardised on that fold.
    n_steps : int
        Points on the straight path from baseline to input.
    method : str
        captum's quadrature ("gausslegendre", "riemann_trapezoid", ...).
    internal_batch_size : int, optional
        Most path points evaluated in one forward/backward; subjects are processed in chunks of
        ``max(1, internal_batch_size // n_steps)`` so memory does not grow with the cohort. Default:
        64 on CPU (measured: 32-64-row passes run faster per row than 256-row passes on 2 cores),
        1024 on CUDA.
    smoothgrad_samples : int
        If > 0, average IG over this many noisy copies of each input (SmoothGrad).
    noise_level : dict of str -> float, optional
        SmoothGrad noise SD per modality, relative to that modality's SD in ``inputs``
        (default 0.1 for every modality).
    random_state : int

    Returns
    -------
    attributions : dict of str -> Tensor
        Same shapes as ``inputs``; they sum (over a subject's features, all modalities together) to
        f(input) - f(baseline) up to the completeness delta.
    delta : Tensor, shape (B,)
        Completeness error: sum of attributions - (f(input) - f(baseline)) per subject.

    Examples
    --------
    >>> import torch
    >>> class Linear(torch.nn.Module):
    ...     def forward(self, snp):
    ...         return torch.stack([torch.zeros(len(snp)), snp @ torch.tensor([1., -2., 3.])], 1)
    >>> attr, delta = integrated_gradients(Linear(), {"snp": torch.ones(2, 3)})
    >>> attr["snp"][0].tolist(), float(delta.abs().max()) < 1e-5
    ([1.0, -2.0, 3.0], True)
    """
    from captum.attr import IntegratedGradients

    if n_steps < 2:
        raise ParameterError(f"n_steps: expected an integer >= 2, found {n_steps!r}")
    device = next(iter(inputs.values())).device
    if internal_batch_size is None:
        internal_batch_size = 1024 if device.type == "cuda" else 64
    if internal_batch_size < 1:
        raise ParameterError(f"internal_batch_size: expected a positive integer, found {internal_batch_size!r}")
    names = [m for m in MODALITY_ORDER if m in inputs] + [m for m in inputs if m not in MODALITY_ORDER]
    baselines = baselines or {}
    ig = IntegratedGradients(LogOdds(model, names))
    n = next(iter(inputs.values())).shape[0]
    chunk = max(1, internal_batch_size // n_steps)
    generator = torch.Generator(device="cpu").manual_seed(random_state)
    levels = {m: 0.1 for m in names}
    levels.update(noise_level or {})
    sd = {m: float(inputs[m].float().std()) for m in names}

    attributions = {m: torch.zeros_like(inputs[m], dtype=torch.float32) for m in names}
    delta = torch.zeros(n, dtype=torch.float32)
    repeats = max(1, smoothgrad_samples)
    for start in range(0, n, chunk):
        rows = slice(start, min(n, start + chunk))
        x = tuple(inputs[m][rows].float() for m in names)
        b = tuple(_baseline(baselines.get(m), inputs[m], rows, device) for m in names)
        for _ in range(repeats):
            if smoothgrad_samples:
                x_noisy = tuple(
                    t + levels[m] * sd[m] * torch.randn(t.shape, generator=generator).to(device)
                    for m, t in zip(names, x)
                )
            else:
                x_noisy = x
            attr, d = ig.attribute(
                x_noisy,
                baselines=b,
                n_steps=n_steps,
                method=method,
                internal_batch_size=internal_batch_size,
                return_convergence_delta=True,
            )
            for m, a in zip(names, attr):
                attributions[m][rows] += a.detach().float() / repeats
            delta[rows] += d.detach().float().cpu() / repeats
    return attributions, delta


def _baseline(value, full, rows, device):
    if value is None:
        return torch.zeros_like(full[rows], dtype=torch.float32)
    value = torch.as_tensor(value, dtype=torch.float32, device=device)
    if value.shape == full.shape:
        return value[rows]
    return value.expand_as(full[rows]).contiguous()


def relative_delta(delta, attributions):
    """|completeness delta| / |f(input) - f(baseline)| per subject.

    captum's delta is sum(attributions) - (f(input) - f(baseline)), so the denominator is recovered
    from the attributions themselves.
    """
    total = sum(a.reshape(a.shape[0], -1).sum(dim=1) for a in attributions.values())
    change = (total - delta).abs()
    return delta.abs() / change.clamp_min(1e-12)
