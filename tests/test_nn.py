"""Networks: architectures (parameter counts, shapes, receptive field), norms, init, builders."""
import math
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import i2i.nn
from i2i.config import NetConfig
from i2i.nn import apply_spectral_norm, build_discriminator, build_generator, init_weights, norm_layer
from i2i.nn.norms import conv_bias
from i2i.registry import DISCRIMINATORS, GENERATORS, RegistryError


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def count(net: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in net.modules())


def top_singular_value(weight: torch.Tensor, transposed: bool = False) -> float:
    if transposed:  # ConvTranspose weights are (in, out, k, k): outputs on dim 1
        weight = weight.transpose(0, 1)
    return torch.linalg.matrix_norm(weight.reshape(weight.shape[0], -1), 2).item()


# --------------------------------------------------------------------------- published parameter counts
@pytest.mark.parametrize(
    "registry, name, kwargs, millions",
    [
        (GENERATORS, "resnet_9blocks", dict(in_channels=3, out_channels=3, ngf=64, norm="instance"), 11.378),
        (GENERATORS, "resnet_6blocks", dict(in_channels=3, out_channels=3, ngf=64, norm="instance"), 7.838),
        (GENERATORS, "unet_256", dict(in_channels=3, out_channels=3, ngf=64, norm="batch"), 54.414),
        (DISCRIMINATORS, "patchgan", dict(in_channels=3, ndf=64, n_layers=3, norm="instance"), 2.765),
        (DISCRIMINATORS, "patchgan", dict(in_channels=6, ndf=64, n_layers=3, norm="batch"), 2.769),
    ],
)
def test_parameter_counts_match_published_networks(registry, name, kwargs, millions):
    with torch.device("meta"):  # no memory, no init cost
        net = registry.build(name, **kwargs)
    assert round(n_params(net) / 1e6, 3) == millions


def test_generic_builders_equal_named_variants():
    with torch.device("meta"):
        assert n_params(GENERATORS.build("resnet", ngf=16, n_blocks=6)) == n_params(
            GENERATORS.build("resnet_6blocks", ngf=16)
        )
        assert n_params(GENERATORS.build("unet", ngf=16, num_downs=7)) == n_params(GENERATORS.build("unet_128", ngf=16))
        assert GENERATORS.build("unet_128").size_multiple == 128
        assert GENERATORS.build("unet_256").size_multiple == 256
        assert GENERATORS.build("resnet_9blocks").size_multiple == 4


# --------------------------------------------------------------------------- generators
@pytest.mark.parametrize(
    "name, kwargs, size",
    [
        ("resnet", dict(n_blocks=2), (32, 32)),
        ("resnet", dict(n_blocks=1, padding="zero"), (48, 64)),
        ("resnet", dict(n_blocks=1, padding="replicate", norm="batch"), (36, 44)),
        ("resnet_6blocks", dict(), (32, 32)),
        ("resnet_9blocks", dict(dropout=True), (32, 48)),
        ("resnet", dict(n_blocks=1, antialias=True), (32, 48)),
        ("resnet", dict(n_blocks=1, antialias=True, norm="batch"), (8, 8)),
        ("unet", dict(num_downs=5), (32, 32)),
        ("unet", dict(num_downs=5, norm="instance", dropout=True), (64, 96)),
        ("unet", dict(num_downs=6, norm="none"), (64, 64)),
    ],
)
@pytest.mark.parametrize("channels", [(3, 3), (1, 3), (3, 1)])
def test_generator_shapes_and_range(name, kwargs, size, channels):
    torch.manual_seed(0)
    c_in, c_out = channels
    net = GENERATORS.build(name, in_channels=c_in, out_channels=c_out, ngf=8, **kwargs)
    assert all(s % net.size_multiple == 0 for s in size)
    out = net(torch.randn(2, c_in, *size) * 3)
    assert out.shape == (2, c_out, *size)
    assert out.abs().max() <= 1.0


@pytest.mark.parametrize("name, kwargs, bad", [("resnet", dict(n_blocks=1), 30), ("unet", dict(num_downs=5), 48)])
def test_generator_rejects_indivisible_size(name, kwargs, bad):
    net = GENERATORS.build(name, ngf=8, **kwargs)
    with pytest.raises(ValueError, match=f"{bad}x{bad}"):
        net(torch.zeros(1, 3, bad, bad))


def test_unet_bottleneck_is_one_pixel():
    net = GENERATORS.build("unet", ngf=8, num_downs=5)
    sizes = []
    inner = [m for m in net.modules() if isinstance(m, nn.Conv2d)][-1]  # innermost down conv
    inner.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[-2:])))
    net(torch.randn(1, 3, 32, 32))
    assert sizes == [(1, 1)]


def test_unet_skip_channels_and_dropout_placement():
    net = GENERATORS.build("unet", ngf=8, num_downs=7, dropout=True)
    # levels 8ngf between the innermost and the 4ngf level: num_downs - 5 of them
    assert count(net, nn.Dropout) == 2
    assert count(GENERATORS.build("unet", ngf=8, num_downs=7), nn.Dropout) == 0
    up_convs = [m for m in net.modules() if isinstance(m, nn.ConvTranspose2d)]  # innermost first
    assert (up_convs[0].in_channels, up_convs[0].out_channels) == (64, 64)  # no concatenation below
    # outermost up conv takes the concatenation of ngf skip + ngf up features
    assert (up_convs[-1].in_channels, up_convs[-1].out_channels) == (16, 3)


def test_resnet_dropout_and_bias_follow_norm():
    net = GENERATORS.build("resnet", ngf=8, n_blocks=3, dropout=True, norm="batch")
    assert count(net, nn.Dropout) == 3
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert all(c.bias is None for c in convs[:-1]) and convs[-1].bias is not None
    convs = [m for m in GENERATORS.build("resnet", ngf=8, n_blocks=1).modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is not None for c in convs)


def test_resnet_padding_modes():
    nets = {}
    for padding in ("reflect", "zero"):
        torch.manual_seed(0)
        nets[padding] = GENERATORS.build("resnet", ngf=8, n_blocks=1, padding=padding)
    assert count(nets["zero"], nn.ReflectionPad2d) == 2  # only the 7x7 convs
    assert count(nets["reflect"], nn.ReflectionPad2d) == 4
    pairs = zip(nets["zero"].parameters(), nets["reflect"].parameters())
    assert all(torch.equal(a, b) for a, b in pairs)  # same seed, same parameters
    x = torch.randn(1, 3, 32, 32)
    assert not torch.allclose(nets["zero"](x), nets["reflect"](x))
    with pytest.raises(ValueError, match="'circle'"):
        GENERATORS.build("resnet", padding="circle")


def test_blur_downsampling_is_the_binomial_filter_then_every_second_pixel():
    from i2i.nn.blocks import BlurDownsample

    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 8)
    out = BlurDownsample(3)(x)
    padded = nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    k = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    expected = torch.stack([torch.stack([(padded[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3] * k).sum((2, 3))
                                         for j in range(4)], -1) for i in range(3)], -2)
    torch.testing.assert_close(out, expected)
    # a checkerboard (the highest frequency) is blurred away, where plain subsampling aliases it to a constant
    board = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2 * 2.0 - 1
    assert BlurDownsample(1)(board[None, None]).abs().max() < 1e-6
    assert board[::2, ::2].abs().min() == 1
    assert not any(k.endswith("kernel") for k in BlurDownsample(3).state_dict())  # a constant, not a weight


def test_blur_upsampling_is_bilinear_interpolation():
    from i2i.nn.blocks import BlurUpsample

    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 7)
    expected = nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(BlurUpsample(3)(x), expected)


def test_the_antialiased_resnet_resamples_by_blurring_with_the_same_weights_and_layer_numbers():
    with torch.device("meta"):
        plain = GENERATORS.build("resnet_9blocks")
        smooth = GENERATORS.build("resnet_9blocks", antialias=True)
    assert n_params(plain) == n_params(smooth)
    assert count(smooth, nn.ConvTranspose2d) == 0
    assert all(m.stride == (1, 1) for m in smooth.modules() if isinstance(m, nn.Conv2d))
    # the numbering of CUT's generator: convs at 1, 4, 8, blocks at 12-20, blurred upsampling at 21 and 25
    weights = {k.split(".")[1] for k in smooth.state_dict() if k.endswith("weight") and "conv_block" not in k}
    assert weights == {"1", "4", "8", "22", "26", "30"}
    assert [i for i, m in enumerate(smooth.model) if type(m).__name__.startswith("Blur")] == [7, 11, 21, 25]
    assert [i for i, m in enumerate(smooth.model) if type(m).__name__ == "ResnetBlock"] == list(range(12, 21))


@pytest.mark.parametrize("antialias, channels", [(True, [3, 8, 16, 16, 16]), (False, [3, 8, 16, 16, 8])])
def test_feature_taps_are_the_outputs_of_the_numbered_layers(antialias, channels):
    torch.manual_seed(0)
    net = GENERATORS.build("resnet", in_channels=3, ngf=4, n_blocks=6, antialias=antialias)
    x = torch.randn(2, 3, 16, 16)
    seen = {}

    def keep(i, out):
        seen[i] = out.clone()  # (returns None: a hook's value would replace the output)

    for i, layer in enumerate(net.model):
        layer.register_forward_hook(lambda m, inp, out, i=i: keep(i, out))
    feats = net.taps(x, [16, 0, 4, 8, 12])  # in the order asked
    assert max(seen) == 16  # runs no further than the last layer asked for
    assert [f.shape[1] for f in feats] == net.tap_channels([16, 0, 4, 8, 12]) == channels[-1:] + channels[:-1]
    for f, i in zip(feats, [16, 0, 4, 8, 12]):
        torch.testing.assert_close(f, seen[i])
    assert feats[1].shape[-2:] == (22, 22)  # layer 0: the input reflect-padded for the 7x7 conv
    with pytest.raises(ValueError, match="layer 40 is not one of the generator's layers 0-"):
        net.taps(x, [0, 40])
    with pytest.raises(ValueError, match="layer -1"):
        net.tap_channels([-1])


def test_a_tap_read_before_an_in_place_relu_keeps_its_values():
    torch.manual_seed(0)
    net = GENERATORS.build("resnet", ngf=4, n_blocks=1)
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    (normed, after) = net.taps(x, [2, 3])  # 2: the first norm's output, which the in-place ReLU 3 rectifies
    assert normed.min() < 0 and torch.equal(after, normed.clamp(min=0))
    (normed.sum() + after.sum()).backward()
    assert x.grad is not None


# --------------------------------------------------------------------------- discriminators
def test_patchgan_256_gives_30x30_map():
    with torch.device("meta"):
        net = DISCRIMINATORS.build("patchgan", in_channels=6)
        assert net(torch.empty(1, 6, 256, 256)).shape == (1, 1, 30, 30)


@pytest.mark.parametrize("n_layers, size", [(3, 64), (3, 96), (2, 64), (1, 32)])
def test_patchgan_map_size(n_layers, size):
    net = DISCRIMINATORS.build("patchgan", ndf=8, n_layers=n_layers)
    expected = size // 2**n_layers - 2  # stride-2 convs halve, two 4x4 stride-1 convs take 1 px each
    assert net(torch.randn(2, 3, size, size)).shape == (2, 1, expected, expected)


def _receptive_extent(net: nn.Module, size: int, row: int, col: int) -> tuple[int, int]:
    x = torch.randn(1, 3, size, size, requires_grad=True)
    net(x)[0, 0, row, col].backward()
    hit = x.grad.abs().sum(dim=(0, 1)) > 0
    rows, cols = hit.any(dim=1).nonzero(), hit.any(dim=0).nonzero()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def test_patchgan_receptive_field_is_70():
    torch.manual_seed(0)
    net = DISCRIMINATORS.build("patchgan", ndf=4, norm="none")  # batch statistics would mix pixels
    assert _receptive_extent(net, 128, 7, 7) == (70, 70)


def test_pixelgan_judges_single_pixels():
    torch.manual_seed(0)
    net = DISCRIMINATORS.build("pixelgan", ndf=8, norm="none")
    assert net(torch.randn(2, 3, 40, 32)).shape == (2, 1, 40, 32)
    assert _receptive_extent(net, 16, 5, 9) == (1, 1)
    assert isinstance(DISCRIMINATORS.build("pixelgan", ndf=8)(torch.randn(2, 3, 8, 8)), torch.Tensor)


def test_multiscale_returns_one_map_per_scale():
    torch.manual_seed(0)
    net = DISCRIMINATORS.build("multiscale", ndf=8, n_layers=2, num_scales=3)
    outs = net(torch.randn(2, 3, 64, 64))
    assert isinstance(outs, list)
    assert [tuple(o.shape) for o in outs] == [(2, 1, 14, 14), (2, 1, 6, 6), (2, 1, 2, 2)]
    single = DISCRIMINATORS.build("multiscale", ndf=8, n_layers=2, num_scales=1)(torch.randn(1, 3, 32, 32))
    assert isinstance(single, list) and len(single) == 1
    # scales are independent networks
    assert n_params(net) == 3 * n_params(DISCRIMINATORS.build("patchgan", ndf=8, n_layers=2))


def test_multiscale_downsampling_excludes_padding():
    net = DISCRIMINATORS.build("multiscale", ndf=8, n_layers=2, num_scales=2)
    ones = net.downsample(torch.ones(1, 3, 9, 9))
    assert ones.shape == (1, 3, 5, 5) and torch.allclose(ones, torch.ones_like(ones))
    ramp = torch.arange(4.0).repeat(4, 1).reshape(1, 1, 4, 4)  # columns 0 1 2 3
    # 3x3 windows centred on columns 0 and 2: means of (0, 1) and (1, 2, 3)
    assert torch.allclose(net.downsample(ramp)[0, 0, 0], torch.tensor([0.5, 2.0]))


# --------------------------------------------------------------------------- norms
def test_batch_norm_layer():
    layer = norm_layer("batch")(5)
    assert isinstance(layer, nn.BatchNorm2d) and layer.affine and layer.track_running_stats
    assert not conv_bias("batch")


def test_instance_norm_layer_normalizes_each_image_and_channel():
    layer = norm_layer("instance")(4)
    assert n_params(layer) == 0 and not list(layer.buffers()) and conv_bias("instance")
    x = torch.randn(3, 4, 8, 8) * 5 + torch.arange(4.0).view(1, 4, 1, 1) * 10
    y = layer(x)
    assert torch.allclose(y.mean(dim=(2, 3)), torch.zeros(3, 4), atol=1e-5)
    assert torch.allclose(y.var(dim=(2, 3), unbiased=False), torch.ones(3, 4), atol=1e-3)
    mean, var = x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), unbiased=False, keepdim=True)
    torch.testing.assert_close(y, (x - mean) / torch.sqrt(var + 1e-5))  # the formula, eps 1e-5
    torch.testing.assert_close(y, nn.functional.instance_norm(x))
    assert torch.equal(layer.eval()(x), y)  # no running statistics


@pytest.mark.parametrize("batch", [1, 2])  # one channels-last image takes batch norm's kernel
def test_instance_norm_keeps_channels_last_and_matches_torch_gradients(batch):
    layer = norm_layer("instance")(6)
    x = torch.randn(batch, 6, 9, 7, dtype=torch.float64) * 3 + 1
    g = torch.randn_like(x)
    x_cl = x.to(memory_format=torch.channels_last).requires_grad_()
    x_ref = x.clone().requires_grad_()
    y = layer(x_cl)
    assert y.is_contiguous(memory_format=torch.channels_last)
    y.backward(g)
    nn.functional.instance_norm(x_ref).backward(g)
    torch.testing.assert_close(y, nn.functional.instance_norm(x_ref))
    torch.testing.assert_close(x_cl.grad, x_ref.grad)


def test_none_norm_and_unknown_norm():
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(norm_layer("none")(3)(x), x) and conv_bias("none")
    with pytest.raises(ValueError, match="'group'"):
        norm_layer("group")
    with pytest.raises(ValueError, match="'batchnorm'"):
        DISCRIMINATORS.build("patchgan", norm="batchnorm")


def test_layer_norm_normalizes_each_sample_over_channels_and_pixels():
    x = torch.randn(2, 3, 4, 5) * 3 + 2
    y = norm_layer("layer")(3)(x)
    flat = y.reshape(2, -1)
    assert torch.allclose(flat.mean(1), torch.zeros(2), atol=1e-5)
    assert torch.allclose(flat.var(1, unbiased=False), torch.ones(2), atol=1e-3)


# --------------------------------------------------------------------------- init
def _big_conv() -> nn.Module:
    return nn.Sequential(nn.Conv2d(128, 256, 3), nn.BatchNorm2d(20000), nn.Linear(300, 200))


@pytest.mark.parametrize(
    "init_type, gain, expected_std",
    [
        ("normal", 0.02, 0.02),
        ("normal", 0.1, 0.1),
        ("xavier", 0.5, 0.5 * math.sqrt(2.0 / (128 * 9 + 256 * 9))),
        ("kaiming", 0.02, math.sqrt(2.0 / (128 * 9))),  # gain unused
    ],
)
def test_init_statistics(init_type, gain, expected_std):
    torch.manual_seed(0)
    net = init_weights(_big_conv(), init_type, gain)
    conv, bn, linear = net
    assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.02)
    assert abs(conv.weight.mean().item()) < expected_std * 0.01
    assert torch.count_nonzero(conv.bias) == 0 and torch.count_nonzero(linear.bias) == 0
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=0.01 * gain + 1e-3)
    assert bn.weight.std().item() == pytest.approx(gain, rel=0.03)
    assert torch.count_nonzero(bn.bias) == 0


def test_orthogonal_init_rows_are_orthogonal():
    torch.manual_seed(0)
    conv = init_weights(nn.Conv2d(16, 32, 3), "orthogonal", 0.5)
    w = conv.weight.reshape(32, -1)
    assert torch.allclose(w @ w.T, 0.25 * torch.eye(32), atol=1e-5)


def test_unknown_init_raises_naming_it():
    with pytest.raises(ValueError, match="'uniformish'"):
        init_weights(nn.Linear(2, 2), "uniformish")


# --------------------------------------------------------------------------- spectral norm
def test_spectral_norm_bounds_top_singular_value():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(16, 32, 3), nn.ConvTranspose2d(32, 16, 4), nn.Linear(50, 20))
    init_weights(net, "normal", 0.5)
    assert top_singular_value(net[0].weight) > 2.0
    apply_spectral_norm(net)
    apply_spectral_norm(net)  # idempotent
    assert all(parametrize.is_parametrized(m, "weight") for m in net)
    assert len(net[0].parametrizations.weight) == 1
    net.train()
    for _ in range(5):
        net[1](net[0](torch.randn(2, 16, 8, 8)))
        net[2](torch.randn(2, 50))
    assert top_singular_value(net[0].weight) == pytest.approx(1.0, abs=0.02)
    assert top_singular_value(net[1].weight, transposed=True) == pytest.approx(1.0, abs=0.02)
    assert top_singular_value(net[2].weight) == pytest.approx(1.0, abs=0.02)


def test_init_under_spectral_norm_sets_underlying_weight():
    torch.manual_seed(0)
    conv = apply_spectral_norm(nn.Conv2d(64, 64, 3))
    init_weights(conv, "normal", 0.3)
    assert conv.parametrizations.weight.original.std().item() == pytest.approx(0.3, rel=0.05)


# --------------------------------------------------------------------------- builders
def test_build_generator_from_config_with_init_and_channels():
    torch.manual_seed(0)
    cfg = NetConfig("resnet", init="normal", init_gain=0.05, params={"ngf": 32, "n_blocks": 1, "norm": "batch"})
    net = build_generator(cfg, in_channels=1, out_channels=3)
    block_conv = net.model[10].conv_block[1]
    assert block_conv.weight.std().item() == pytest.approx(0.05, rel=0.05)
    assert net(torch.randn(2, 1, 16, 16)).shape == (2, 3, 16, 16)
    bn = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)][0]
    assert bn.weight.std().item() == pytest.approx(0.05, rel=0.4)  # N(1, gain), 32 samples


def test_build_discriminator_with_spectral_norm():
    torch.manual_seed(0)
    cfg = NetConfig("patchgan", init="normal", init_gain=0.5, spectral_norm=True, params={"ndf": 16, "norm": "none"})
    net = build_discriminator(cfg, in_channels=6)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5 and all(parametrize.is_parametrized(c, "weight") for c in convs)
    assert convs[2].parametrizations.weight.original.std().item() == pytest.approx(0.5, rel=0.05)
    net.train()
    for _ in range(5):
        out = net(torch.randn(1, 6, 32, 32))
    assert out.shape == (1, 1, 2, 2)
    assert top_singular_value(convs[2].weight) == pytest.approx(1.0, abs=0.02)


def test_build_multiscale_discriminator_returns_list():
    cfg = NetConfig("multiscale", params={"ndf": 8, "n_layers": 2, "num_scales": 2})
    outs = build_discriminator(cfg, in_channels=3)(torch.randn(1, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(1, 1, 6, 6), (1, 1, 2, 2)]


def test_user_registered_generators_build_through_config():
    @GENERATORS.register("test_nn_user_generator", override=True)
    def user_generator(out_channels=3, width=4):  # takes no in_channels: fixed 2-channel input
        return nn.Sequential(nn.Conv2d(2, width, 3, padding=1), nn.Conv2d(width, out_channels, 1))

    seen = {}

    @GENERATORS.register("test_nn_user_generator_kwargs", override=True)
    def kwargs_generator(**kwargs):
        seen.update(kwargs)
        net = nn.Conv2d(kwargs["in_channels"], kwargs["out_channels"], 1)
        net.size_multiple = 8
        return net

    torch.manual_seed(0)
    cfg = NetConfig("test_nn_user_generator", init="normal", init_gain=0.1, params={"width": 64})
    net = build_generator(cfg, in_channels=3, out_channels=5)
    assert net(torch.randn(1, 2, 8, 8)).shape == (1, 5, 8, 8)
    assert net[0].weight.std().item() == pytest.approx(0.1, rel=0.1)
    assert net.size_multiple == 1

    net = build_generator(NetConfig("test_nn_user_generator_kwargs", params={"tag": 1}), 4, 2)
    assert seen == {"in_channels": 4, "out_channels": 2, "tag": 1}
    assert net.size_multiple == 8


def test_unknown_network_name_raises():
    with pytest.raises(RegistryError, match="did you mean 'patchgan'"):
        build_discriminator(NetConfig("patchgam"), in_channels=3)
    with pytest.raises(ValueError, match="'gaussian'"):
        build_generator(NetConfig("unet", init="gaussian", params={"ngf": 8, "num_downs": 5}), 3, 3)


def test_package_reexports():
    assert i2i.nn.build_generator is build_generator and i2i.nn.norm_layer is norm_layer
    assert {"resnet", "resnet_6blocks", "resnet_9blocks", "unet", "unet_128", "unet_256"} <= set(GENERATORS)
    assert {"patchgan", "pixelgan", "multiscale"} <= set(DISCRIMINATORS)


def test_unet_skip_carries_activated_input():
    from i2i.nn.blocks import UnetSkipBlock

    block = UnetSkipBlock(4, 8, innermost=True, norm="none")
    block.eval()
    x = torch.randn(1, 4, 8, 8)
    out = block(x)
    assert out.shape == (1, 8, 8, 8)
    assert torch.allclose(out[:, :4], nn.functional.leaky_relu(x, 0.2))
    assert torch.equal(block(x), out)  # the input itself is left untouched (no in-place change)


def test_state_dict_layout_of_published_networks():
    with torch.device("meta"):
        resnet = GENERATORS.build("resnet_9blocks").state_dict()
        unet = GENERATORS.build("unet_256").state_dict()
        patch = DISCRIMINATORS.build("patchgan").state_dict()
    assert {"model.1.weight", "model.10.conv_block.5.weight", "model.19.weight", "model.26.bias"} <= set(resnet)
    assert len(resnet) == 2 * (3 + 9 * 2 + 2 + 1)
    assert {"model.model.0.weight", "model.model.1.model.2.running_mean", "model.model.3.bias"} <= set(unet)
    assert {"model.0.weight", "model.2.weight", "model.3.running_var", "model.11.bias"} <= set(patch)


@pytest.mark.parametrize("role, name, params, message", [
    ("G", "unet", {"num_downs": 5, "ngf": 0}, "layer model.model.0.weight would have no weights (shape 0x3x4x4)"),
    ("G", "resnet_6blocks", {"ngf": -2}, "negative dimension"),
    ("D", "patchgan", {"ndf": 0}, "would have no weights"),
    ("G", "unit", {"dim": -1}, "negative dimension"),
    ("G", "physics_dehazer", {"patch": 4}, "an odd patch >= 1"),
    ("G", "physics_dehazer", {"scale": 0}, "scale >= 1"),
    ("G", "physics_dehazer", {"eps": 0.0}, "eps > 0"),
])
def test_widths_and_sizes_a_builder_cannot_use_are_config_errors(role, name, params, message):
    from i2i.errors import ConfigError

    build = build_generator if role == "G" else build_discriminator
    channels = (3, 3) if role == "G" else (3,)
    with pytest.raises(ConfigError) as err, warnings.catch_warnings():
        warnings.simplefilter("error")  # the one line is all the user sees: no torch warning besides it
        build(NetConfig(name=name, params=params), *channels)
    assert str(err.value).startswith(f"network {name!r} (") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_physics_dehazer_radius_0_is_no_guided_filter():
    net = build_generator(NetConfig(name="physics_dehazer", params={"radius": 0, "width": 4}), 3, 3)
    assert net(torch.rand(1, 3, 16, 16) * 2 - 1).shape == (1, 3, 16, 16)


def test_build_generator_and_discriminator_take_a_name_or_a_yaml_like_mapping():
    import pytest
    import torch

    from i2i.errors import ConfigError
    from i2i.nn import build_discriminator, build_generator

    torch.manual_seed(0)
    g = build_generator({"name": "unet", "num_downs": 5, "ngf": 8, "init": "xavier"}, 3, 1)
    assert g(torch.zeros(1, 3, 32, 32)).shape == (1, 1, 32, 32) and g.size_multiple == 32
    d = build_discriminator("pixelgan", 4)
    assert d(torch.zeros(2, 4, 8, 8)).shape == (2, 1, 8, 8)
    with pytest.raises(ConfigError, match="generator: expected a NetConfig, a network name or a mapping, got int"):
        build_generator(3, 3, 3)
    with pytest.raises(ConfigError, match=r"generator\.init"):
        build_generator({"name": "unet", "init": "nope"}, 3, 3)
    with pytest.raises(RegistryError, match="did you mean 'patchgan'"):
        build_discriminator("patchgann", 3)
