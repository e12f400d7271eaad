"""Tests of attention rollout and of relevance propagation through MIGTrans: hand-computed stacks,
batch independence, modality shares, every modality subset and a model built to look at one stream."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from explain import relevance_rollout, rollout
from explain._rollout import _normalise_self, _propagate
from migtrans import ParameterError
from migtrans.model import MIGTrans, ModelConfig

from conftest import BATCH, GRID, N_NODES, N_SNPS, SUBSETS
from conftest import model_inputs as inputs


def build(loci, modalities=("snp", "fnc", "smri"), seed=0, **overrides):
    values = dict(
        modalities=modalities,
        d_model=8,
        n_heads=2,
        smri_cnn_channels=(4,),
        dropout=0.0,
        smri_downsample=1,
        n_fusion_layers=2,
        linear_prior=False,  # the network: its zero-initialised head with a prior would make every relevance 0
    )
    values.update(overrides)
    table, index = loci
    torch.manual_seed(seed)
    return MIGTrans(
        ModelConfig(**values),
        n_snps=N_SNPS,
        loci_index=index,
        locus_chrom=table["chrom_code"].to_numpy(),
        n_nodes=N_NODES,
        volume_shape=GRID,
    )


# --- plain rollout ------------------------------------------------------------------------------------


def test_rollout_of_identity_maps_is_identity():
    maps = [torch.eye(6).expand(4, 3, 6, 6) for _ in range(3)]
    torch.testing.assert_close(rollout(maps), torch.eye(6).expand(4, 6, 6))


def test_rollout_matches_hand_computation():
    # Subject 0, layer 1: heads [[1, 0], [0, 1]] and [[1, 0], [1, 0]] average to A1 = [[1, 0], [.5, .5]];
    # layer 2: A2 = [[0, 1], [1, 0]] in both heads. Â = (A + I) / 2:
    # Â1 = [[1, 0], [.25, .75]], Â2 = [[.5, .5], [.5, .5]], Â2 Â1 = [[.625, .375], [.625, .375]].
    # Subject 1 has identity maps, hence identity rollout.
    layer1 = torch.tensor(
        [[[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]], [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]]]
    )
    layer2 = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]] * 2, [[[1.0, 0.0], [0.0, 1.0]]] * 2])
    expected = torch.tensor([[[0.625, 0.375], [0.625, 0.375]], [[1.0, 0.0], [0.0, 1.0]]])
    torch.testing.assert_close(rollout([layer1, layer2]), expected)
    # A mapping is read in order; numpy maps are accepted.
    torch.testing.assert_close(rollout(OrderedDict(a=layer1.numpy(), b=layer2.numpy())), expected)
    # The order matters: Â1 Â2 = [[.5, .5], [.5, .5]].
    torch.testing.assert_close(rollout([layer2, layer1])[0], torch.full((2, 2), 0.5))


@pytest.mark.parametrize("head_fusion", ["mean", "max", "min"])
def test_rollout_rows_sum_to_one(head_fusion):
    g = torch.Generator().manual_seed(0)
    maps = [torch.randn(3, 4, 7, 7, generator=g).softmax(-1) for _ in range(5)]
    joint = rollout(maps, head_fusion=head_fusion)
    assert joint.shape == (3, 7, 7)
    assert (joint >= 0).all()
    torch.testing.assert_close(joint.sum(-1), torch.ones(3, 7))


def test_rollout_rejects_bad_input():
    with pytest.raises(ParameterError, match="head_fusion"):
        rollout([torch.eye(3)[None]], head_fusion="median")
    with pytest.raises(ParameterError, match="maps"):
        rollout([])
    with pytest.raises(ParameterError, match=r"maps\[1\]"):
        rollout([torch.ones(1, 2, 3, 3), torch.ones(1, 2, 4, 4)])


# --- relevance rules on hand-set maps -----------------------------------------------------------------


def _cams(*matrices):
    return OrderedDict((name, torch.tensor(m, dtype=torch.float64)[None]) for name, m in matrices)


def test_relevance_rules_match_hand_computation_cross_then_self():
    # Tokens [cls, a, b1, b2]. Self-attention on b, then a <- b, then fusion over all.
    streams = OrderedDict(cls=1, a=1, b=2)
    specs = {
        "b.self": dict(kind="self", queries=("b",), keys=("b",)),
        "a<-b": dict(kind="cross", queries=("a",), keys=("b",)),
        "fusion": dict(kind="self", queries=("cls", "a", "b"), keys=("cls", "a", "b")),
    }
    cams = _cams(
        ("b.self", [[0.2, 0.6], [0.0, 0.5]]),
        ("a<-b", [[0.25, 0.75]]),
        ("fusion", [[0.1, 0.2, 0.3, 0.4], [0.0] * 4, [0.0] * 4, [0.0] * 4]),
    )
    # b.self: R_bb = I + Ā = [[1.2, .6], [0, 1.5]].
    # a<-b, eq. 10: R̄_bb = rownorm(R_bb - I) + I = [[1.25, .75], [0, 2]]; R̄_aa = I (no context yet);
    #   R_ab = [.25, .75] R̄_bb = [.3125, 1.6875]. Eq. 11: R_a,(cls,a) += Ā R_b,(cls,a) = 0.
    # fusion, CLS row: e0 + .1 e0 + .2 R_a + .3 R_b1 + .4 R_b2 = [1.1, .2, .4225, 1.1175].
    expected = torch.tensor(
        [[1.1, 0.2, 0.4225, 1.1175], [0.0, 1.0, 0.3125, 1.6875], [0.0, 0.0, 1.2, 0.6], [0.0, 0.0, 0.0, 1.5]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(_propagate(cams, specs, streams)[0], expected)


def test_relevance_rules_match_hand_computation_cross_both_ways():
    # As above, then b <- a: the transposed self-relevance of the queries in eq. 10 and what the keys
    # gathered from other tokens (eq. 11) both come into play.
    streams = OrderedDict(cls=1, a=1, b=2)
    specs = {
        "b.self": dict(kind="self", queries=("b",), keys=("b",)),
        "a<-b": dict(kind="cross", queries=("a",), keys=("b",)),
        "b<-a": dict(kind="cross", queries=("b",), keys=("a",)),
    }
    cams = _cams(("b.self", [[0.2, 0.6], [0.0, 0.5]]), ("a<-b", [[0.25, 0.75]]), ("b<-a", [[0.5], [1.0]]))
    # b<-a, eq. 10: R_ba += R̄_bbᵀ Ā R̄_aa = [[1.25, 0], [.75, 2]] [[.5], [1]] = [[.625], [2.375]].
    # Eq. 11: R_b,(cls,b1,b2) += Ā R_a,(cls,b1,b2) = [[.5], [1]] [0, .3125, 1.6875].
    expected = torch.tensor(
        [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.3125, 1.6875],
            [0.0, 0.625, 1.2 + 0.15625, 0.6 + 0.84375],
            [0.0, 2.375, 0.3125, 1.5 + 1.6875],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(_propagate(cams, specs, streams)[0], expected)


def test_relevance_rules_with_two_key_streams_match_hand_computation():
    # Tokens [cls, a, b, c]: b <- c, then a <- b+c (keys given in either order), then fusion.
    streams = OrderedDict(cls=1, a=1, b=1, c=1)
    fusion = dict(kind="self", queries=("cls", "a", "b", "c"), keys=("cls", "a", "b", "c"))
    # b<-c: R_bc = .5. a<-b+c: R_KK = [[1, .5], [0, 1]] -> R̄_KK = [[1, 1], [0, 1]] (row b normalised,
    # row c all zero after - I), R_a,(b,c) = [.25, .5] R̄_KK = [.25, .75] (without eqs. 8-9: [.25, .625]).
    # fusion CLS row: 1.2 e0 + .4 R_a + .2 R_b + .2 R_c = [1.2, .4, .3, .6].
    expected_cls = torch.tensor([1.2, 0.4, 0.3, 0.6], dtype=torch.float64)
    fusion_cam = [[0.2, 0.4, 0.2, 0.2]] + [[0.0] * 4] * 3
    for keys, cam in ((("b", "c"), [[0.25, 0.5]]), (("c", "b"), [[0.5, 0.25]])):
        specs = {
            "b<-c": dict(kind="cross", queries=("b",), keys=("c",)),
            "a<-K": dict(kind="cross", queries=("a",), keys=keys),
            "fusion": fusion,
        }
        cams = _cams(("b<-c", [[0.5]]), ("a<-K", cam), ("fusion", fusion_cam))
        relevance = _propagate(cams, specs, streams)[0]
        torch.testing.assert_close(relevance[0], expected_cls)
        torch.testing.assert_close(relevance[1], torch.tensor([0.0, 1.0, 0.25, 0.75], dtype=torch.float64))


def test_normalise_self_keeps_context_free_rows_as_identity():
    block = torch.tensor([[[1.0, 0.0], [0.3, 1.1]]], dtype=torch.float64)
    torch.testing.assert_close(_normalise_self(block), torch.tensor([[[1.0, 0.0], [0.75, 1.25]]], dtype=torch.float64))


def test_self_attention_relevance_is_unnormalised_rollout():
    # With self-attention only and Ā = E_h[A], R = Π (I + Ā) while rollout = Π (I + Ā) / 2.
    g = torch.Generator().manual_seed(2)
    maps = OrderedDict((f"l{i}", torch.randn(2, 3, 6, 6, generator=g).softmax(-1).double()) for i in range(3))
    specs = {name: dict(kind="self", queries=("x",), keys=("x",)) for name in maps}
    cams = OrderedDict((name, m.mean(1)) for name, m in maps.items())
    torch.testing.assert_close(_propagate(cams, specs, OrderedDict(x=6)), 2**3 * rollout(maps))


# --- relevance_rollout on MIGTrans --------------------------------------------------------------------


@pytest.mark.parametrize("modalities", SUBSETS, ids="+".join)
def test_batched_relevance_equals_per_subject_for_every_subset(loci, modalities):
    model = build(loci, modalities)
    x = {m: v for m, v in inputs().items() if m in modalities}
    streams = model.token_streams()
    for method in ("gradient", "attention"):
        batched = relevance_rollout(model, x, method=method)
        assert batched.modalities == tuple(modalities)
        assert batched.cls.shape == (BATCH, sum(streams.values()))
        for m in ("snp", "fnc", "smri"):
            got = getattr(batched, m)
            assert got is None if m not in modalities else got.shape == (BATCH, streams[m])
        assert (batched.cls >= 0).all()
        assert (batched.shares >= 0).all()
        np.testing.assert_allclose(batched.shares.sum(1), 1.0, rtol=0, atol=1e-12)
        singles = [
            relevance_rollout(model, {m: v[i : i + 1] for m, v in x.items()}, method=method) for i in range(BATCH)
        ]
        np.testing.assert_allclose(batched.cls, np.concatenate([s.cls for s in singles]), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(batched.shares, np.concatenate([s.shares for s in singles]), rtol=1e-5, atol=1e-7)


def test_chunked_relevance_equals_one_pass_and_leaves_model_as_found(loci):
    model = build(loci).train()
    full = relevance_rollout(model, inputs(5), return_matrix=True)
    chunked = relevance_rollout(model, inputs(5), batch_size=2)
    np.testing.assert_allclose(chunked.cls, full.cls, rtol=1e-5, atol=1e-7)
    assert chunked.matrix is None and full.matrix.shape == (5,) + (full.cls.shape[1],) * 2
    np.testing.assert_array_equal(full.matrix[:, 0], full.cls)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert model.attention_maps() == OrderedDict()


def test_gradient_relevance_is_class_specific_and_differs_from_attention(loci):
    model = build(loci)
    x = inputs()
    gradient = relevance_rollout(model, x, method="gradient")
    attention = relevance_rollout(model, x, method="attention")
    assert not np.allclose(gradient.cls, attention.cls)
    assert not np.allclose(gradient.cls, relevance_rollout(model, x, target=0).cls)
    # Raw attention does not depend on the explained class.
    np.testing.assert_array_equal(attention.cls, relevance_rollout(model, x, method="attention", target=0).cls)
    with torch.no_grad():
        np.testing.assert_allclose(gradient.logits, model.eval()(**x).numpy(), rtol=1e-6)


def _look_only_at_smri(model, strength=20.0):
    """Make the CLS query of the single fusion block score +strength on sMRI tokens, -strength on the rest.

    Dimension 0 of every token marks its stream (+1 sMRI, -1 otherwise) through the encoders' final
    LayerNorm bias; the cross blocks leave dimension 0 alone; the fusion block's pre-norm is removed
    so the marker reaches the keys; the queries are constant and the keys read the marker only."""
    d = model.config.d_model
    with torch.no_grad():
        for encoder, sign in ((model.snp_encoder, -1.0), (model.fnc_encoder, -1.0), (model.smri_encoder, 1.0)):
            encoder.norm.weight[0] = 0.0
            encoder.norm.bias[0] = sign
        model.fusion.cls_token[..., 0] = -1.0
        for block in model.fusion.cross:
            for layer in (block.attn.out, block.ffn[-1]):
                layer.weight[0] = 0.0
                layer.bias[0] = 0.0
        block = model.fusion.blocks[0]
        block.norm = nn.Identity()
        attn = block.attn
        heads = range(0, d, attn.head_dim)
        attn.query.weight.zero_()
        attn.query.bias.zero_()
        attn.key.weight.zero_()
        attn.key.bias.zero_()
        for h in heads:
            attn.query.bias[h] = strength / attn.scale
            attn.key.weight[h, 0] = 1.0


@pytest.mark.parametrize("method", ["gradient", "attention"])
def test_stream_the_cls_token_looks_at_gets_the_whole_share(loci, method):
    # the construction marks streams through the encoders' output LayerNorm and a fixed CLS embedding
    model = build(loci, n_fusion_layers=1, token_norm=True, modality_reads=False)
    _look_only_at_smri(model)
    x = inputs()
    with model.keep_maps():
        model.eval()(**x)
    cls_to_smri = model.attention_maps()["fusion.0"][:, :, 0, -GRID[2] :].sum(-1)
    torch.testing.assert_close(cls_to_smri, torch.ones_like(cls_to_smri))  # the construction works
    result = relevance_rollout(model, x, method=method)
    assert result.modalities == ("snp", "fnc", "smri")
    np.testing.assert_array_less(1 - 1e-6, result.share("smri"))
    assert result.smri.sum(1).min() > 0


def test_relevance_rollout_rejects_bad_arguments(loci):
    model = build(loci, ("fnc", "smri"))
    x = {m: v for m, v in inputs().items() if m != "snp"}
    with pytest.raises(ParameterError, match="method"):
        relevance_rollout(model, x, method="lrp")
    with pytest.raises(ParameterError, match="target"):
        relevance_rollout(model, x, target=2)
    with pytest.raises(ParameterError, match="batch_size"):
        relevance_rollout(model, x, batch_size=0)
    with pytest.raises(ParameterError, match="'smri'"):
        relevance_rollout(model, {"fnc": x["fnc"]})
    with pytest.raises(ParameterError, match="one size"):
        relevance_rollout(model, {"fnc": x["fnc"], "smri": x["smri"][:2]})
    with pytest.raises(ParameterError, match="modality"):
        relevance_rollout(model, x).share("snp")
