"""PatchNCE and the projection head: the loss against hand computations, the patches drawn, the head's shapes."""
import math

import pytest
import torch

from i2i.losses import PatchNCELoss
from i2i.losses.patchnce import patch_nce
from i2i.nn import build_head


def ce(logits, right):
    """-log softmax(logits)[right], by hand."""
    return -(logits[right] - math.log(sum(math.exp(v) for v in logits)))


def test_patch_nce_is_the_cross_entropy_of_the_diagonal_at_temperature_t_with_negatives_from_the_same_image():
    t = 0.5
    q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]],          # image 0: two patches
                      [[0.6, 0.8], [0.8, -0.6]]])        # image 1
    k = torch.tensor([[[0.6, 0.8], [1.0, 0.0]],
                      [[0.0, 1.0], [0.6, 0.8]]])
    # image 0: q0.k0 = 0.6, q0.k1 = 1; q1.k0 = 0.8, q1.k1 = 0.  image 1: q0.k0 = 0.8, q0.k1 = 1; q1.k0 = -0.6,
    # q1.k1 = 0 (the dot products across images, never used, would be others)
    expected = (ce([0.6 / t, 1.0 / t], 0) + ce([0.8 / t, 0.0], 1) + ce([0.8 / t, 1.0 / t], 0)
                + ce([-0.6 / t, 0.0], 1)) / 4
    assert patch_nce(q, k, t).item() == pytest.approx(expected, rel=1e-6)
    # the default temperature is the paper's 0.07
    assert patch_nce(q, k).item() == pytest.approx(
        (ce([0.6 / .07, 1 / .07], 0) + ce([0.8 / .07, 0], 1) + ce([0.8 / .07, 1 / .07], 0) + ce([-0.6 / .07, 0], 1)) / 4,
        rel=1e-5)


def test_the_loss_is_the_mean_over_layers_of_the_mean_over_patches():
    torch.manual_seed(0)
    layers_out = [torch.randn(2, 3, 2, 2), torch.randn(2, 5, 3, 3)]
    layers_in = [torch.randn(2, 3, 2, 2), torch.randn(2, 5, 3, 3)]
    nce = PatchNCELoss(temperature=0.2, num_patches=256)  # more than any layer has: every position, shuffled
    per_layer = []
    for q, k in zip(layers_out, layers_in):  # by hand: unit vectors, the positions in their own order
        qn = torch.nn.functional.normalize(q.flatten(2).transpose(1, 2), dim=-1)
        kn = torch.nn.functional.normalize(k.flatten(2).transpose(1, 2), dim=-1)
        terms = [ce((qn[b, i] @ kn[b].T / 0.2).tolist(), i) for b in range(2) for i in range(qn.shape[1])]
        per_layer.append(sum(terms) / len(terms))
    got = nce(layers_out, layers_in, generator=torch.Generator().manual_seed(1))
    assert got.item() == pytest.approx(sum(per_layer) / 2, rel=1e-5)


def test_the_same_positions_are_drawn_for_output_and_input_from_the_generator_passed_in():
    h, w = 4, 5
    where = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")).float()  # 2 x H x W
    feat_in = where.expand(3, 2, h, w)
    feat_out = feat_in + 100
    nce = PatchNCELoss(num_patches=6)
    q, k = nce.patches([feat_out, feat_in], [feat_in, feat_in], torch.Generator().manual_seed(7))
    assert q[0].shape == k[0].shape == (3, 6, 2)
    assert torch.equal(q[0] - 100, k[0]) and torch.equal(q[1], k[1])  # each query's key is its own place
    assert len({tuple(p.tolist()) for p in k[0][0]}) == 6  # distinct positions...
    assert torch.equal(k[0][0], k[0][2])  # ...the same in every image
    again, _ = nce.patches([feat_out], [feat_in], torch.Generator().manual_seed(7))
    other, _ = nce.patches([feat_out], [feat_in], torch.Generator().manual_seed(8))
    assert torch.equal(again[0], q[0]) and not torch.equal(other[0], q[0])
    assert not torch.equal(q[0], q[1] + 100)  # each layer draws its own positions


def test_gradients_reach_the_output_and_the_head_through_the_queries_only():
    torch.manual_seed(0)
    head = build_head({"name": "mlp", "units": 8}, [3])
    out = torch.randn(2, 3, 4, 4, requires_grad=True)
    inp = torch.randn(2, 3, 4, 4, requires_grad=True)
    PatchNCELoss(num_patches=5)([out], [inp], head, torch.Generator().manual_seed(0)).backward()
    assert out.grad.abs().sum() > 0 and inp.grad is None
    assert all(p.grad is not None for p in head.parameters())


def test_the_mlp_head_has_a_two_layer_mlp_per_layer_and_unit_length_outputs():
    torch.manual_seed(0)
    head = build_head({"name": "mlp", "init": "xavier", "init_gain": 0.02}, [3, 64, 128])
    assert [(m[0].in_features, m[0].out_features, m[2].out_features) for m in head.mlps] == \
        [(3, 256, 256), (64, 256, 256), (128, 256, 256)]
    assert head.mlps[1][0].weight.std().item() < 0.01  # initialized as configured (Xavier, gain 0.02)
    feats = head([torch.randn(2, 7, 3), torch.randn(2, 7, 64), torch.randn(2, 7, 128)])
    assert [f.shape for f in feats] == [(2, 7, 256)] * 3
    assert all(torch.allclose(f.norm(dim=-1), torch.ones(2, 7)) for f in feats)
    with pytest.raises(ValueError, match="2 feature maps for 3 layers"):
        head(feats[:2])


def test_bad_settings_are_value_errors():
    with pytest.raises(ValueError, match="temperature"):
        PatchNCELoss(temperature=0)
    with pytest.raises(ValueError, match="num_patches"):
        PatchNCELoss(num_patches=0)
    with pytest.raises(ValueError, match="output features"):
        PatchNCELoss()([torch.zeros(1, 2, 4, 4)], [torch.zeros(1, 2, 2, 2)])
