"""A fixed linear model's log-odds, read from MIGTrans's own inputs (`ModelConfig.linear_prior`)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..exceptions import ParameterError


class LinearPrior(nn.Module):
    """``x . w + b`` over every modality's input, with weights fitted outside the network (not trained by it).

    The trainer fits an elastic-net logistic regression on the fold's fit subjects and copies its
    coefficients here (`set_linear`); the transformer's logits are added to this log-odds, so the network
    learns what the linear model misses and starts, with a zero head, as the linear model itself. The weights
    are buffers: saved with the model, never touched by the optimiser or weight decay. So is
    ``network_weight``, the weight of the network's log-odds in the sum (1 unless the trainer fits it on
    subjects the network did not train on, `TrainConfig.network_weight`).

    Parameters
    ----------
    input_shapes : dict of str -> tuple
        The model's input shape per modality (without the batch axis): SNPs ``(m,)``, FNC ``(K, K)``, sMRI
        the cropped volume ``(X, Y, Z)``.

    Examples
    --------
    >>> prior = LinearPrior({"fnc": (3, 3)})
    >>> prior.set_linear(np.array([1.0, 2.0, 3.0]), 0.5, {"fnc": slice(0, 3)})
    >>> x = torch.arange(9, dtype=torch.float32).reshape(1, 3, 3)  # upper triangle: 1, 2, 5
    >>> float(prior({"fnc": x})[0])
    20.5
    """

    def __init__(self, input_shapes: dict):
        super().__init__()
        self.names = tuple(input_shapes)
        for name, shape in input_shapes.items():
            self.register_buffer(f"weight_{name}", torch.zeros(int(np.prod(shape))))
        self.register_buffer("bias", torch.zeros(()))
        self.register_buffer("network_weight", torch.ones(()))
        self.shapes = {name: tuple(shape) for name, shape in input_shapes.items()}

    def set_linear(self, coef, intercept, blocks: dict, crop_mask=None) -> None:
        """Take a linear model fitted on `migtrans.training.flatten_features` columns.

        ``coef`` (p,) and ``intercept`` give its log-odds; ``blocks`` maps each modality to its columns
        (`feature_blocks`: SNPs as they are, the FNC upper triangle row-major, the masked voxels); the voxels
        go back into the cropped volume through ``crop_mask`` (the brain mask within the volume's box).
        """
        coef = np.asarray(coef, dtype=np.float64).ravel()
        if set(blocks) != set(self.names):
            expected, found = ", ".join(self.names), ", ".join(blocks)
            raise ParameterError(f"linear prior: expected columns of {expected}, found {found}")
        for name, columns in blocks.items():
            shape, w = self.shapes[name], coef[columns]
            if name == "fnc":
                k = shape[0]
                full = np.zeros((k, k))
                full[np.triu_indices(k, 1)] = w  # the upper triangle of the symmetric input counts once
            elif name == "smri":
                if crop_mask is None or crop_mask.shape != shape or int(crop_mask.sum()) != len(w):
                    raise ParameterError(f"linear prior: {len(w)} voxel weights do not fit the sMRI volume {shape}")
                full = np.zeros(shape)
                full[crop_mask] = w
            else:
                full = w
            if full.size != int(np.prod(shape)):
                raise ParameterError(f"linear prior: {name} has {full.size} weights for an input of shape {shape}")
            getattr(self, f"weight_{name}").copy_(torch.from_numpy(np.ascontiguousarray(full).ravel()))
        self.bias.fill_(float(intercept))

    def combine(self, logits, offset) -> torch.Tensor:
        """The network's ``logits`` (B, 2), weighted by ``network_weight``, plus the log-odds ``offset`` (B,)."""
        return logits * self.network_weight.to(logits.dtype) + torch.stack([torch.zeros_like(offset), offset], dim=1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # models saved before the network's weight existed added the network's log-odds in full
        state_dict.setdefault(prefix + "network_weight", torch.ones(()))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, inputs: dict) -> torch.Tensor:
        """Log-odds (B,) of the inputs (each (B, *shape))."""
        total = self.bias
        for name in self.names:
            x = inputs[name]
            total = total + x.flatten(1) @ getattr(self, f"weight_{name}").to(x.dtype)
        return total
