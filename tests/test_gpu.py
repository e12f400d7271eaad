"""The CUDA paths: mixed-precision training and integrated gradients on a GPU agree with the CPU. Marked `gpu`;
they skip on machines without CUDA (run them with `pytest -m gpu` where the `device` tool lends one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import TINY_MODEL, TINY_TRAIN

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none on this machine)"),
]


def test_integrated_gradients_on_cuda_equal_the_cpu(baseline_run):
    from explain import OutOfFold, integrated_gradients

    results = {}
    for device in ("cpu", "cuda"):
        oof = OutOfFold(baseline_run.out_dir, device=device)
        fold = oof.folds[0]
        inputs = oof.inputs(fold, oof.rows[:6])
        attr, delta = integrated_gradients(fold.model, inputs, oof.baselines(fold), n_steps=16)
        results[device] = {m: a.double().cpu().numpy() for m, a in attr.items()}
    for modality, cpu in results["cpu"].items():
        scale = np.abs(cpu).max()
        np.testing.assert_allclose(results["cuda"][modality], cpu, atol=1e-4 * scale, err_msg=modality)


def test_mixed_precision_training_on_cuda_matches_full_precision(sim_cohort, tmp_path):
    from migtrans.training import TrainConfig, train

    runs = {}
    for amp in (False, True):  # the same device, seed and random streams: only float16 arithmetic differs
        config = TrainConfig(**{**TINY_TRAIN, "epochs": 4}, device="cuda", amp=amp)
        runs[amp] = train(sim_cohort.toml_path, tmp_path / f"amp{amp}", config, TINY_MODEL, progress=False)
    full, mixed = (runs[a].predictions["prob_positive"].to_numpy() for a in (False, True))
    assert np.isfinite(mixed).all() and ((mixed >= 0) & (mixed <= 1)).all()
    assert np.corrcoef(full, mixed)[0, 1] > 0.95
    assert np.abs(full - mixed).max() < 0.1
