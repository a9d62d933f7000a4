"""Tiled inference: weights, exactness for equivariant nets, seams, normalization modes."""
import pytest
import torch
from torch import nn

import i2i.nn  # noqa: F401  (registers the generators)
from i2i.registry import GENERATORS
from i2i.tiling import axis_weights, tile_starts, tiled


def conv_net(norm=None, seed=0):
    """Three 3x3 convs, zero padding: receptive-field radius 3, translation-equivariant."""
    torch.manual_seed(seed)
    layers = []
    for c_in, c_out in ((3, 8), (8, 8), (8, 2)):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1)]
        if norm == "instance" and c_out == 8:
            layers.append(nn.InstanceNorm2d(8))
        layers.append(nn.Tanh())
    return nn.Sequential(*layers).eval()


def covered_twice(n, tile, overlap, multiple=1):
    """Positions along an axis that lie in more than one window."""
    count = torch.zeros(n)
    for s, w in axis_weights(n, tile, overlap, multiple):
        count[s: s + w.numel()] += 1
    return count > 1


def test_starts_cover_evenly_with_at_least_the_overlap():
    assert tile_starts(100, 40, 16) == [0, 20, 40, 60]
    assert tile_starts(30, 40, 16) == [0]
    starts = tile_starts(3008, 512, 32, multiple=32)
    assert starts[0] == 0 and starts[-1] == 3008 - 512 and all(s % 32 == 0 for s in starts)
    assert all(b - a <= 512 - 32 for a, b in zip(starts, starts[1:]))
    assert len(starts) == 7  # the fewest: 6 steps of at most 480 px cover 2496


def test_weights_sum_to_one_and_vanish_next_to_inner_edges():
    weights = axis_weights(100, 40, 16)
    total = torch.zeros(100, dtype=torch.float64)
    for s, w in weights:
        total[s: s + 40] += w
    assert torch.allclose(total, torch.ones(100, dtype=torch.float64))
    first, second = weights[0][1], weights[1][1]
    assert torch.all(first[:24] == 1) and torch.all(first[-4:] == 0)  # 16 // 4 = 4 px margin
    assert torch.all(second[:4] == 0) and torch.all(second[-4:] == 0)
    x = torch.randn(2, 3, 70, 90)
    assert torch.allclose(tiled(lambda t: t, x, tile=32, overlap=8), x, atol=1e-6)


def test_equals_untiled_everywhere_when_overlap_is_four_receptive_radii():
    net, x = conv_net(), torch.randn(2, 3, 70, 90)
    shapes = []

    def fn(t):
        shapes.append(tuple(t.shape[-2:]))
        return net(t)

    with torch.no_grad():
        out = tiled(fn, x, tile=32, overlap=12)  # radius 3, margin 12 // 4 = 3
        assert torch.allclose(out, net(x), atol=1e-6)
    assert len(shapes) == 3 * 4 and set(shapes) == {(32, 32)}  # one bounded window at a time


def test_small_overlap_differs_only_in_the_overlap_bands():
    net, x = conv_net(), torch.randn(1, 3, 70, 90)
    with torch.no_grad():
        diff = (tiled(net, x, tile=32, overlap=4) - net(x)).abs().amax(dim=(0, 1))
    seams = covered_twice(70, 32, 4)[:, None] | covered_twice(90, 32, 4)[None, :]
    assert diff[~seams].max() < 1e-6
    assert diff[seams].max() > 1e-3


def test_downsampling_generator_matches_away_from_seams():
    torch.manual_seed(0)
    net = GENERATORS.build("tiramisu", n_blocks=2, layers=2, bottleneck_layers=2, growth=4,
                           first_channels=8, up_channels=8).eval()  # batch norm on running statistics
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        diff = (tiled(net, x, tile=48, overlap=16, multiple=net.size_multiple) - net(x)).abs().amax(dim=(0, 1))
    seams = covered_twice(96, 48, 16, 4)[:, None] | covered_twice(128, 48, 16, 4)[None, :]
    assert diff[~seams].max() < 1e-5
    assert diff.max() < 1e-2


def test_instance_norm_makes_tiles_inconsistent():
    net, x = conv_net("instance"), torch.randn(1, 3, 70, 90) + torch.linspace(-2, 2, 90)  # a left-right trend
    with torch.no_grad():
        diff = (tiled(net, x, tile=32, overlap=12) - net(x)).abs()
    assert diff.mean() > 1e-2  # per-tile statistics change every pixel, not just the seams


def test_small_images_go_through_whole():
    calls = []
    x = torch.randn(1, 3, 20, 30)
    out = tiled(lambda t: calls.append(t.shape) or t * 2, x, tile=32, overlap=8)
    assert calls == [x.shape] and torch.equal(out, x * 2)


def test_bad_arguments():
    x = torch.randn(1, 3, 70, 90)
    with pytest.raises(ValueError, match="less than half the tile"):
        tiled(lambda t: t, x, tile=32, overlap=16)
    with pytest.raises(ValueError, match="image height 70 is not a multiple of 4"):
        tiled(lambda t: t, x, tile=32, overlap=8, multiple=4)
    with pytest.raises(ValueError, match="changed the tile size"):
        tiled(lambda t: t[..., 1:, :], x, tile=32, overlap=8)
    with pytest.raises(ValueError, match="B x C x H x W"):
        tiled(lambda t: t, x[0], tile=32)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_tiles_are_blended_in_fp32(dtype):
    # the identity, tiled: each pixel is a weighted sum of itself; weights (1/3...) and sums rounded to a
    # 16-bit float would move it off its value in the overlap bands (a seam); blended in fp32 it stays itself
    x = (torch.rand(1, 3, 100, 100, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(dtype)
    out = tiled(lambda t: t, x, tile=40, overlap=16)
    assert out.dtype == dtype and torch.equal(out, x)
    assert covered_twice(100, 40, 16).any()
