"""The physics dehazer: starts as the dark channel prior, learns through both gains, any size."""
import numpy as np
import pytest
import torch

from i2i.data.haze import hazy_uint8
from i2i.data.io import image_to_tensor
from i2i.dehaze import DarkChannelPrior
from i2i.registry import GENERATORS


def scene(seed=0, size=64):
    rng = np.random.default_rng(seed)
    clear = np.zeros((size, size, 3), np.uint8)
    for _ in range(6):  # coloured blocks with dark shadows, so the dark channel prior holds
        y, x = rng.integers(0, size - 16, 2)
        clear[y:y + 16, x:x + 16] = rng.integers(0, 255, 3)
    hazy = hazy_uint8(clear, None, beta=1.2, airlight=0.9)
    return image_to_tensor(hazy)[None], image_to_tensor(clear)[None]


def mse(a, b):
    return float(((a - b) ** 2).mean())


def autocast(dtype):
    """CPU autocast to ``dtype`` as ``train.amp: bf16`` runs a step; ``None``: fp32."""
    return torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def fit(net, params, hazy, clear, steps, dtype=None):
    """L1 losses of ``steps`` Adam(1e-2) steps of ``params`` on one pair (the forward under :func:`autocast`)."""
    opt = torch.optim.Adam(params, lr=1e-2)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        with autocast(dtype):
            loss = (net(hazy).float() - clear).abs().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_untrained_it_dehazes_like_the_dark_channel_prior():
    hazy, clear = scene()
    net = GENERATORS.build("physics_dehazer", width=8, radius=8).eval()
    with torch.no_grad():
        out = net(hazy)
    dcp = DarkChannelPrior(radius=8, t0=0.05).translate_tensor(hazy)
    assert out.shape == hazy.shape and out.min() >= -1 and out.max() <= 1
    assert mse(out, clear) < 0.5 * mse(hazy, clear)
    assert abs(mse(out, clear) - mse(dcp, clear)) < 0.5 * mse(dcp, clear)


def test_training_moves_the_gains_then_the_network_and_lowers_the_error():
    torch.manual_seed(0)
    hazy, clear = scene(1)
    net = GENERATORS.build("physics_dehazer", width=8, radius=8)
    first_conv = net.down[0].weight.detach().clone()
    losses = fit(net, net.parameters(), hazy, clear, 40)
    assert net.t_gain.item() != 0 and not torch.equal(first_conv, net.down[0].weight)
    assert losses[-1] < 0.9 * losses[0]


def test_any_size():
    net = GENERATORS.build("physics_dehazer", width=4, radius=4).eval()
    for size in ((37, 53), (16, 16)):
        x = torch.rand(2, 3, *size) * 2 - 1
        with torch.no_grad():
            assert net(x).shape == (2, 3, *size)


def test_refinement_starts_at_zero_after_the_builders_init_and_then_learns():
    from i2i.config.schema import NetConfig
    from i2i.nn import build_generator

    torch.manual_seed(0)
    hazy, clear = scene(2)
    plain = build_generator(NetConfig(name="physics_dehazer", params={"width": 8, "radius": 8}), 3, 3).eval()
    refined = build_generator(NetConfig(name="physics_dehazer", params={"width": 8, "radius": 8, "refine": 8}), 3, 3)
    assert torch.count_nonzero(refined.refine[-1].weight) == 0  # normal init undone by after_init
    refined.load_state_dict(plain.state_dict(), strict=False)  # same trunk weights
    with torch.no_grad():
        assert torch.allclose(refined.eval()(hazy), plain(hazy), atol=1e-6)
    refined.train()
    losses = fit(refined, refined.refine.parameters(), hazy, clear, 30)
    assert torch.count_nonzero(refined.refine[-1].weight) > 0 and losses[-1] < losses[0]


def test_the_bounds_keep_a_gradient_where_they_saturate():
    from i2i.dehaze.physics import GRAD_FLOOR, leaky_clamp_min, leaky_sigmoid, leaky_tanh

    x = torch.tensor([-60.0, -1.0, 0.0, 2.0, 60.0], requires_grad=True)
    for fn, plain, slope in ((leaky_sigmoid, torch.sigmoid, lambda v: torch.sigmoid(v) * (1 - torch.sigmoid(v))),
                             (leaky_tanh, torch.tanh, lambda v: 1 - torch.tanh(v) ** 2),
                             (lambda v: leaky_clamp_min(v, 0.5), lambda v: v.clamp(min=0.5), lambda v: (v >= 0.5).float())):
        y = fn(x)
        assert torch.equal(y, plain(x))  # the values are the plain function's
        (grad,) = torch.autograd.grad(y.sum(), x)
        torch.testing.assert_close(grad, slope(x.detach()).clamp(min=GRAD_FLOOR))  # the slope, at least the floor


@pytest.mark.parametrize("dtype", [None, torch.bfloat16], ids=["fp32", "bf16"])
def test_driven_into_saturation_it_recovers_instead_of_staying_the_identity(dtype):
    # Adam at 1e-2 drove the earlier dehazer (no normalization in its CNN, a plain sigmoid) into t = 1, where it
    # passed no gradient and stayed the identity (L1 = that of the hazy input) for good, on two seeds of three.
    # The shipped recipe collapsed in bf16: that case runs on this CPU's own bf16 kernels (AMX, AVX-512 BF16, or
    # oneDNN's emulation on CPUs without either)
    pairs = [scene(s) for s in range(4)]
    hazy, clear = torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])
    hazy_l1 = float((hazy - clear).abs().mean())
    for seed in range(3):
        torch.manual_seed(seed)
        net = GENERATORS.build("physics_dehazer", width=8, radius=8)
        losses = fit(net, net.parameters(), hazy, clear, 100, dtype)
        with torch.no_grad(), autocast(dtype):
            out = net(hazy).float()
        assert max(losses[50:]) < 0.3 * hazy_l1, (seed, losses[50:])
        assert float((out - hazy).abs().mean()) > 0.5 * hazy_l1, seed  # far from the identity
