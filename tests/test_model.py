"""Tests of the MIGTrans network: attention maps and their gradients, the block-diagonal locus
projection, modality subsets, config round-trips and batch independence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from migtrans import ParameterError
from migtrans.model import Attention, MIGTrans, ModelConfig
from migtrans.model._encoders import SliceCNN

from conftest import BATCH, GRID, N_NODES, N_SNPS, SUBSETS
from conftest import model_inputs as inputs


def small_config(**overrides):
    values = dict(
        d_model=8,
        n_heads=2,
        smri_cnn_channels=(4,),
        dropout=0.0,
        n_fusion_layers=2,
        smri_downsample=1,
        n_slice_attention_layers=2,
        linear_prior=False,  # the network itself (its zero-initialised head would hide it); the prior has its tests
    )
    values.update(overrides)
    return ModelConfig(**values)


def build(loci, config, seed=0):
    table, index = loci
    torch.manual_seed(seed)
    return MIGTrans(
        config,
        n_snps=N_SNPS,
        loci_index=index,
        locus_chrom=table["chrom_code"].to_numpy(),
        n_nodes=N_NODES,
        volume_shape=GRID,
    )


def test_attention_matches_closed_form():
    torch.manual_seed(0)
    attn = Attention(6, 3)
    attn.keep_maps = True
    x, ctx = torch.randn(2, 4, 6), torch.randn(2, 5, 6)
    out = attn(x, ctx)

    def heads(t):
        return t.reshape(2, -1, 3, 2).transpose(1, 2)

    q, k, v = heads(attn.query(x)), heads(attn.key(ctx)), heads(attn.value(ctx))
    probs = torch.softmax(q @ k.transpose(-2, -1) / np.sqrt(2), dim=-1)
    expected = attn.out((probs @ v).transpose(1, 2).reshape(2, 4, 6))
    torch.testing.assert_close(attn.probs, probs)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(
        expected, attn.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 4, 6))
    )


@pytest.mark.parametrize("training", [False, True])
def test_every_attention_map_is_batched_and_normalised(loci, training):
    # attention_dropout > 0 in training mode: the kept maps must still be the pre-dropout probabilities.
    model = build(loci, small_config(attention_dropout=0.5))
    model.train(training)
    with model.keep_maps():
        model(**inputs())
    maps = model.attention_maps()
    assert list(maps) == [
        "smri.slice.0",
        "smri.slice.1",
        "cross.fnc<-smri",
        "cross.snp<-fnc+smri",
        "fusion.0",
        "fusion.1",
    ]
    streams = model.token_streams()
    n_loci = len(loci[0])
    assert dict(streams) == {"cls": 1, "snp": n_loci, "fnc": N_NODES, "smri": GRID[2]}
    specs = model.attention_specs()
    total = sum(streams.values())
    expected = {
        "smri.slice.0": (GRID[2], GRID[2]),
        "smri.slice.1": (GRID[2], GRID[2]),
        "cross.fnc<-smri": (N_NODES, GRID[2]),
        "cross.snp<-fnc+smri": (n_loci, N_NODES + GRID[2]),
        "fusion.0": (total, total),
        "fusion.1": (total, total),
    }
    for name, probs in maps.items():
        assert probs.shape == (BATCH, 2, *expected[name]), name
        assert (probs >= 0).all()
        torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]))
        q_streams, k_streams = specs[name]["queries"], specs[name]["keys"]
        assert sum(streams[s] for s in q_streams) == probs.shape[2]
        assert sum(streams[s] for s in k_streams) == probs.shape[3]


def test_maps_not_kept_unless_asked(loci):
    model = build(loci, small_config()).eval()
    with model.keep_maps():
        model(**inputs())
    assert len(model.attention_maps()) == 6
    model(**inputs())  # outside the context: the stale maps are cleared, none kept
    assert len(model.attention_maps()) == 0


def test_attention_gradients_captured(loci):
    model = build(loci, small_config()).eval()
    with model.keep_maps(grads=True):
        logits = model(**inputs())
    logits[:, 1].sum().backward()
    maps, grads = model.attention_maps(), model.attention_grads()
    assert list(grads) == list(maps) and len(grads) == 6
    for name, grad in grads.items():
        assert grad is not None, name
        assert grad.shape == maps[name].shape
        assert torch.isfinite(grad).all()
        assert grad.abs().sum() > 0, name
    # The gradient of the CLS row of the last layer is what reaches the logit directly.
    last = grads["fusion.1"]
    assert last[:, :, 0].abs().sum() > 0 and last[:, :, 1:].abs().sum() == 0


def test_gradient_of_map_matches_closed_form():
    """The retained gradient of the probabilities equals d loss / d probs written out by hand."""
    torch.manual_seed(0)
    attn = Attention(4, 2)
    attn.keep_grads = True
    x = torch.randn(2, 3, 4)
    out = attn(x)
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    probs = attn.probs
    v = attn.value(x).reshape(2, 3, 2, 2).transpose(1, 2)
    # out = W_o(probs @ v): d/dprobs = (dL/dmixed) @ v^T with dL/dmixed = weights @ W_o, split by head.
    d_mixed = (weights @ attn.out.weight).reshape(2, 3, 2, 2).transpose(1, 2)
    torch.testing.assert_close(attn.probs_grad, d_mixed @ v.transpose(-2, -1))
    assert probs.grad is attn.probs_grad


def test_block_diagonal_locus_projection_equals_loop(loci):
    model = build(loci, small_config(modalities=("snp",)))
    encoder = model.snp_encoder
    x = torch.randn(BATCH, N_SNPS)
    batched = encoder.locus_projection(x)
    assert batched.shape == (BATCH, len(loci[0]), encoder.hidden)
    for row, cols in enumerate(loci[0]["columns"]):
        cols = torch.as_tensor(cols)
        explicit = F.gelu(x[:, cols] @ encoder.weight[cols] + encoder.bias[row])
        torch.testing.assert_close(batched[:, row], explicit)


@pytest.mark.parametrize("modalities", SUBSETS, ids=["+".join(s) for s in SUBSETS])
def test_every_modality_subset_trains(loci, modalities):
    model = build(loci, small_config(modalities=modalities, dropout=0.1)).train()
    data = inputs()
    with model.keep_maps():
        logits = model(**{m: data[m] for m in modalities})
    assert logits.shape == (BATCH, 2) and torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.tensor([0, 1, 1])).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert tuple(model.token_streams())[1:] == tuple(m for m in ("snp", "fnc", "smri") if m in modalities)
    names = list(model.attention_maps())
    assert ("cross.fnc<-smri" in names) == ({"fnc", "smri"} <= set(modalities))
    assert any(n.startswith("cross.snp<-") for n in names) == ("snp" in modalities and len(modalities) > 1)


def test_mlp_genomic_encoder_and_lstm(loci):
    config = small_config(snp_encoder="mlp", snp_mlp_tokens=3, smri_rnn="lstm", smri_slice_axis=0)
    model = MIGTrans(config, n_snps=N_SNPS, n_nodes=N_NODES, volume_shape=GRID)
    assert dict(model.token_streams()) == {"cls": 1, "snp": 3, "fnc": N_NODES, "smri": GRID[0]}
    assert model(**inputs()).shape == (BATCH, 2)


def test_downsample_and_slice_axis(loci):
    model = build(loci, small_config(smri_slice_axis=1, smri_downsample=2, modalities=("smri",)))
    assert model.token_streams()["smri"] == 4  # ceil(8 / 2)
    assert model(smri=inputs()["smri"]).shape == (BATCH, 2)


def test_transposed_volume_rejected(loci):
    model = build(loci, small_config())
    data = inputs()
    data["smri"] = data["smri"].permute(0, 3, 2, 1)
    with pytest.raises(ParameterError, match="smri"):
        model(**data)
    with pytest.raises(ParameterError, match="fnc"):
        model(snp=data["snp"], smri=inputs()["smri"])


def test_batch_independence_in_eval(loci):
    model = build(loci, small_config()).eval()
    data = inputs(batch=5)
    with torch.no_grad():
        full = model(**data)
        alone = model(**{k: v[2:3] for k, v in data.items()})
        shuffled = model(**{k: v[[4, 2, 0, 1, 3]] for k, v in data.items()})
    torch.testing.assert_close(full[2:3], alone, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(full[[4, 2, 0, 1, 3]], shuffled, rtol=1e-5, atol=1e-6)


def test_deterministic_given_seed(loci):
    data = inputs()
    outs = []
    for _ in range(2):
        model = build(loci, small_config(dropout=0.2), seed=7).train()
        torch.manual_seed(3)
        outs.append(model(**data))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    assert outs[0].dtype == torch.float32


def test_config_json_round_trip():
    config = ModelConfig(
        modalities=("smri", "snp"),
        smri_cnn_channels=(4, 8, 12),
        cross_attention=("snp<-smri",),
        smri_backbone_weights="w.pt",
    )
    text = json.dumps(config.to_dict())
    back = ModelConfig.from_dict(json.loads(text))
    assert back == config
    assert isinstance(back.modalities, tuple) and isinstance(back.smri_cnn_channels, tuple)
    assert "smri_backbone_weights" not in ModelConfig().to_dict()  # None is left out (no TOML null)
    assert ModelConfig.from_dict(ModelConfig().to_dict()) == ModelConfig()


@pytest.mark.parametrize(
    "field, value",
    [
        ("d_model", 0),
        ("d_model", 63),
        ("n_heads", 3),
        ("dropout", 1.0),
        ("attention_dropout", -0.1),
        ("label_smoothing", 1.5),
        ("modalities", ()),
        ("modalities", ("snp", "eeg")),
        ("modalities", ("snp", "snp")),
        ("snp_encoder", "cnn"),
        ("smri_slice_axis", 3),
        ("smri_cnn_channels", ()),
        ("smri_cnn_channels", (8, 0)),
        ("smri_rnn", "rnn"),
        ("n_fusion_layers", 0),
        ("locus_hidden", 2.5),
        ("smri_downsample", 0),
    ],
)
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ParameterError, match=field):
        ModelConfig(**{field: value})


@pytest.mark.parametrize("step", ["fnc->smri", "fnc<-eeg", "fnc<-fnc", "snp<-fnc+fnc", ""])
def test_invalid_cross_attention_step(step):
    with pytest.raises(ParameterError, match="cross_attention"):
        ModelConfig(cross_attention=(step,))


def test_unknown_config_key_and_missing_sizes(loci):
    with pytest.raises(ParameterError, match="d_modle"):
        ModelConfig.from_dict({"d_modle": 8})
    with pytest.raises(ParameterError, match="n_nodes"):
        MIGTrans(small_config(modalities=("fnc",)))
    with pytest.raises(ParameterError, match="loci_index"):
        MIGTrans(small_config(modalities=("snp",)), n_snps=N_SNPS)
    with pytest.raises(ParameterError, match="volume_shape"):
        MIGTrans(small_config(modalities=("smri",)), volume_shape=(7, 8))


def test_backbone_weights_loaded_from_local_file(loci, tmp_path):
    torch.manual_seed(42)
    backbone = SliceCNN((4,), "none", 6)
    path = tmp_path / "cnn.pt"
    torch.save(backbone.state_dict(), path)
    model = build(loci, small_config(smri_backbone_weights=str(path), smri_freeze_backbone=True))
    for key, value in backbone.state_dict().items():
        torch.testing.assert_close(model.smri_encoder.cnn.state_dict()[key], value)
    assert not any(p.requires_grad for p in model.smri_encoder.cnn.parameters())
    with pytest.raises(ParameterError, match="smri_backbone_weights"):
        build(loci, small_config(smri_backbone_weights=str(path), smri_cnn_channels=(8,)))
    with pytest.raises(ParameterError, match="smri_backbone_weights"):
        build(loci, small_config(smri_backbone_weights=str(tmp_path / "missing.pt")))


def test_per_node_fnc_projection_equals_a_loop_over_nodes():
    from migtrans.model._encoders import ConnectomeEncoder

    torch.manual_seed(0)
    enc = ConnectomeEncoder(N_NODES, d_model=8, projection="per_node", hidden=3).eval()
    x = torch.randn(4, N_NODES, N_NODES)
    out = enc(x)
    for k in range(N_NODES):
        hidden = torch.nn.functional.gelu(x[:, k] @ enc.weight[k] + enc.bias[k])
        expected = enc.norm(enc.proj(hidden) + enc.node_embedding[k])
        torch.testing.assert_close(out[:, k], expected, rtol=1e-5, atol=1e-6)
    # each node's token depends on its own row only
    x2 = x.clone()
    x2[:, 2] += 1.0
    changed = (enc(x2) - out).abs().sum(dim=(0, 2)) > 0
    assert changed.tolist() == [k == 2 for k in range(N_NODES)]


def test_genomic_tokens_stay_bounded_by_pooling_consecutive_loci():
    """Thousands of loci (SNPs spread like an array) give at most max_tokens genomic tokens: each the mean of
    its loci's hidden units; with fewer loci the encoder is one token per locus, as before."""
    from migtrans.model._encoders import LocusEncoder

    n_loci, per = 1000, 3
    index = np.arange(n_loci * per).reshape(n_loci, per)
    valid = np.ones_like(index, dtype=bool)
    chrom = np.repeat(np.arange(10), 100)
    torch.manual_seed(0)
    enc = LocusEncoder(n_loci * per, index, valid, chrom, d_model=8, hidden=4, max_tokens=64)
    x = torch.randn(5, n_loci * per)
    out = enc(x)
    assert enc.n_tokens == 64 and out.shape == (5, 64, 8)
    assert enc.group_size.min() == 15 and enc.group_size.max() == 16  # 1000 loci in near-equal groups
    # token g is the projection of the mean hidden units of its loci
    hidden = enc.locus_projection(x)
    g = 10
    members = (enc.group == g).nonzero().squeeze(1)
    expected = enc.proj(hidden[:, members].mean(1)) + enc.locus_embedding[g] + enc.chrom_embedding[chrom[members[0]]]
    torch.testing.assert_close(out[:, g], expected)
    out.sum().backward()
    assert (enc.weight.grad.abs().sum(1) > 0).all()  # every SNP still has its own weights and learns
    # few loci: nothing pooled, one token per locus, and the saved state has no new entries
    small = LocusEncoder(30, index[:10], valid[:10], chrom[:10], d_model=8, hidden=4, max_tokens=64)
    assert small.n_tokens == 10 and not small.grouped
    saved = {"index", "valid", "locus_chrom", "weight", "bias", "proj.weight", "proj.bias"}
    assert set(small.state_dict()) == saved | {"locus_embedding", "chrom_embedding"}


def test_reads_only_ablation_sees_the_inputs_through_the_reads_alone(loci):
    model = build(loci, small_config(modality_tokens=False)).eval()
    names = [n for n, _ in model.named_parameters()]
    assert not any("encoder" in n or n.startswith("fusion.cross") for n in names)
    assert any(n.startswith("reads.") for n in names)
    data = inputs()
    logits = model(**data)
    assert logits.shape == (BATCH, 2) and torch.isfinite(logits).all()
    # every modality moves the output, through its read only
    for m in ("snp", "fnc", "smri"):
        changed = dict(data, **{m: data[m] + 1.0})
        assert not torch.allclose(model(**changed), logits), m
    F.cross_entropy(model.train()(**data), torch.tensor([0, 1, 1])).backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ParameterError, match="^fnc: the model was built with this modality"):
        model(snp=data["snp"], smri=data["smri"])
    with pytest.raises(ParameterError, match="^modality_tokens: expected True when modality_reads is False"):
        small_config(modality_tokens=False, modality_reads=False)
