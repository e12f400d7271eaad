"""Train one fold of the MIGTrans model: AdamW, warm-up + cosine schedule, label smoothing,
early stopping on the inner validation split, mixed precision on CUDA, optional DDP."""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from ._distributed import DistContext


def resolve_device(name: str) -> torch.device:
    """ "auto" -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        from ..exceptions import ParameterError

        raise ParameterError(f"device: {name!r} requested but CUDA is not available on this machine")
    return torch.device(name)


def to_tensors(arrays: dict, device) -> dict:
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device, non_blocking=True) for k, v in arrays.items()}


def _batch_inputs(provider, batch, device, offsets=None) -> dict:
    """The model's keyword inputs for cohort rows ``batch``, with the linear prior's given log-odds
    (``offsets``, per cohort row; see `fit_fold`) when there are any."""
    inputs = to_tensors(provider(batch), device)
    if offsets is not None:
        inputs["prior_offset"] = torch.as_tensor(offsets[batch], dtype=torch.float32, device=device)
    return inputs


class Progress:
    """One status line per fold, rewritten in place on a terminal; plain lines otherwise."""

    def __init__(self, enabled=True, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self._last = 0.0

    def update(self, text, final=False):
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + text.ljust(100) + ("\n" if final else ""))
            self.stream.flush()
        elif final or now - self._last > 10:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last = now


def _lr_lambda(warmup_steps, total_steps):
    def schedule(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return schedule


@torch.no_grad()
def shrink_reads(model, step):
    """Group-lasso proximal step on the modality reads (`TrainConfig.read_sparsity`): every input
    feature's column of read weights shrinks in Euclidean norm by ``step * sqrt(d_model)`` (with ``step``
    = the learning rate, that is the largest move Adam makes on a column); shorter columns become zero."""
    for read in getattr(model, "reads", {}).values():
        w = read.proj.weight  # (d_model, n_features)
        amount = step * math.sqrt(w.shape[0])
        norm = w.norm(dim=0, keepdim=True)
        w.mul_((1 - amount / norm.clamp_min(1e-12)).clamp_min(0))


@torch.no_grad()
def predict_logits(model, provider, idx, batch_size, device, amp=False, offsets=None) -> np.ndarray:
    """Logits (n, 2) for rows ``idx`` in eval mode (``offsets``: the linear prior's log-odds to use, per
    cohort row, as in `fit_fold`)."""
    model.eval()
    out = []
    for start in range(0, len(idx), batch_size):
        batch = idx[start : start + batch_size]
        inputs = _batch_inputs(provider, batch, device, offsets)
        with torch.autocast(device_type=device.type, enabled=amp and device.type == "cuda"):
            out.append(model(**inputs).float().cpu())
    return torch.cat(out).numpy() if out else np.empty((0, 2), np.float32)


def fit_network_weight(model, provider, labels, val_idx, offsets, batch_size, device, amp=False) -> float:
    """Fit the weight of a trained network's log-odds on top of its linear prior (`TrainConfig.network_weight`).

    The weight ``a`` in [0, 1] maximises the Bernoulli likelihood of the labels of ``val_idx`` under the
    log-odds ``offsets + a * network`` (the prior's inner out-of-fold log-odds plus the network's own), on
    subjects the network never trained on; it is stored in ``model.prior.network_weight``. A network that
    only adds noise to the linear model gets a weight near 0.

    Returns
    -------
    float
        The weight.
    """
    from scipy.optimize import minimize_scalar

    model.prior.network_weight.fill_(1.0)
    logits = predict_logits(model, provider, val_idx, batch_size, device, amp, offsets).astype(np.float64)
    prior = np.asarray(offsets, dtype=np.float64)[val_idx]
    network = logits[:, 1] - logits[:, 0] - prior
    y = np.asarray(labels)[val_idx]

    def loss(a):
        z = prior + a * network
        return float(np.mean(np.logaddexp(0.0, z) - y * z))

    # the loss is convex in a: its minimum on [0, 1] is an end point or where the derivative vanishes
    weight = float(minimize_scalar(loss, bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-6}).x)
    weight = min((weight, 0.0, 1.0), key=loss)
    model.prior.network_weight.fill_(weight)
    return weight


def fit_fold(
    model, provider, labels, fit_idx, val_idx, cfg, device, *, dist=None, progress=None, label="", offsets=None
):
    """Train ``model`` on ``fit_idx``; keep the weights of the epoch chosen by ``cfg.select``.

    Parameters
    ----------
    model : torch.nn.Module
    provider : callable
        ``provider(idx) -> dict`` of float32 arrays (the fold's preprocessing applied).
    labels : ndarray of int
    fit_idx, val_idx : ndarray of int
        Subjects fitted, and subjects scored after every epoch under early stopping (with ``select="last"``
        they are not used here: empty, or kept for `fit_network_weight`).
    cfg : TrainConfig
    device : torch.device
    dist : DistContext, optional
        Data-parallel context; each rank takes its share of every batch.
    offsets : ndarray (n_subjects,), optional
        For a model with a linear prior (`ModelConfig.linear_prior`): the prior's out-of-fold log-odds of
        the fit and validation subjects (it was fitted on both), used instead of its log-odds of data it was
        fitted on, in training and in validation. The untrained model (the prior alone) is then scored as
        epoch 0, a candidate of early stopping.

    Returns
    -------
    best_state : dict of CPU tensors
    history : list of dict
        Per-epoch train loss, learning rate and, under early stopping, validation loss and AUC.
    """
    from ._metrics import classification_metrics

    dist = dist or DistContext()
    progress = progress or Progress(False)
    amp = cfg.amp and device.type == "cuda"
    rng = np.random.default_rng(cfg.seed)
    net = dist.wrap(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(fit_idx) / cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(cfg.warmup_epochs * steps_per_epoch, cfg.epochs * steps_per_epoch)
    )
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    y_all = torch.tensor(np.asarray(labels), dtype=torch.long)
    penalised = [p for name, p in model.named_parameters() if p.dim() >= 2 and "embedding" not in name]
    best_score, best_loss, best_state, best_epoch, waited = math.inf, math.inf, None, 0, 0
    history = []

    def validate(row):
        val_logits = predict_logits(model, provider, val_idx, cfg.batch_size * 2, device, amp, offsets)
        val_t = torch.from_numpy(val_logits)
        val_loss = float(F.cross_entropy(val_t, y_all[val_idx], label_smoothing=cfg.label_smoothing))
        val_auc = classification_metrics(labels[val_idx], torch.softmax(val_t, dim=1)[:, 1].numpy())["roc_auc"]
        row.update(val_loss=val_loss, val_auc=val_auc)
        return val_loss, val_auc

    # validation subjects are scored after every epoch only to choose one; with select="last" they are there
    # for the network's weight on its prior (`fit_network_weight`), scored once after training
    monitor = bool(len(val_idx)) and cfg.select != "last"
    if offsets is not None and monitor:
        row = {"epoch": 0, "train_loss": np.nan, "lr": 0.0}
        val_loss, val_auc = validate(row)
        history.append(row)
        best_score = {"val_loss": val_loss, "val_auc": -np.nan_to_num(val_auc, nan=0.5)}[cfg.select]
        best_loss = val_loss
        best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = fit_idx[rng.permutation(len(fit_idx))]
        total, seen = 0.0, 0
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start : start + cfg.batch_size]
            if len(batch) < dist.world_size:  # every rank needs a share; all ranks skip together
                continue
            batch = dist.shard(batch)
            inputs = _batch_inputs(provider, batch, device, offsets)
            target = y_all[batch].to(device)
            with torch.autocast(device_type=device.type, enabled=amp):
                logits = net(**inputs)
                loss = F.cross_entropy(logits.float(), target, label_smoothing=cfg.label_smoothing)
            objective = loss + cfg.l2 * sum((p.float() ** 2).sum() for p in penalised) if cfg.l2 else loss
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(objective).backward()
            scale = scaler.get_scale()
            scaler.step(optimizer)
            scaler.update()
            # the proximal step follows an optimizer step; under AMP a step skipped for inf/NaN gradients
            # shows as a lowered scale, and then nothing moved
            if cfg.read_sparsity and scaler.get_scale() >= scale:
                shrink_reads(model, cfg.read_sparsity * optimizer.param_groups[0]["lr"])
            scheduler.step()
            total += float(loss.detach()) * len(batch)
            seen += len(batch)
        row = {"epoch": epoch, "train_loss": total / max(seen, 1), "lr": optimizer.param_groups[0]["lr"]}
        val_loss = val_auc = np.nan
        if monitor:
            val_loss, val_auc = validate(row)
        history.append(row)
        progress.update(
            f"{label} epoch {epoch:3d}/{cfg.epochs} train loss {total / max(seen, 1):.3f}"
            + (f" val loss {val_loss:.3f} val AUC {val_auc:.3f}" if monitor else "")
        )
        # lower is better for every criterion; AUC is NaN when the split holds one class
        score = {"val_loss": val_loss, "val_auc": -np.nan_to_num(val_auc, nan=0.5), "last": -epoch}[cfg.select]
        if score < best_score - 1e-4:
            best_score, best_loss, best_epoch, waited = score, val_loss, epoch, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        elif cfg.select != "last":
            waited += 1
            if waited >= cfg.patience:
                break
    progress.update(
        f"{label} done: kept epoch {best_epoch} ({cfg.select})" + (f", val loss {best_loss:.3f}" if monitor else ""),
        final=True,
    )
    model.load_state_dict(best_state)
    return best_state, history, best_epoch
