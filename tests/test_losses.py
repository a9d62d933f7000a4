"""Adversarial objectives against the spec's hand-computed points and test vectors."""
import math

import pytest
import torch

from i2i.errors import ConfigError
from i2i.losses import build_gan_loss, build_penalty
from i2i.registry import GAN_LOSSES

R = torch.tensor([-5.0, 1.4, 12.5, 2.7])
F_ = torch.tensor([10.0, 4.4, -5.5, 3.6])
LN2 = math.log(2.0)

# name, params, (L_D, L_G) at all-zero logits, (L_D, L_G) at r=+1, f=-1, (L_D, L_G) on the vectors R, F_
CASES = [
    ("minimax", {}, (2 * LN2, -LN2), (0.626523, -0.313262), (5.833866, -4.510821)),
    ("nsgan", {}, (2 * LN2, LN2), (0.626523, 1.313262), (5.833866, 1.385821)),
    ("vanilla", {}, (2 * LN2, LN2), (0.626523, 1.313262), (5.833866, 1.385821)),
    ("dragan", {}, (2 * LN2, LN2), (0.626523, 1.313262), (5.833866, 1.385821)),
    ("lsgan", {}, (0.5, 0.5), (0.5, 2.0), (41.73375, 17.69625)),
    ("lsgan", {"a": -1, "b": 1, "c": 0}, (1.0, 0.0), (0.0, 0.5), (45.35875, 20.32125)),
    ("lsgan", {"half": False}, (1.0, 1.0), (1.0, 4.0), (83.4675, 35.3925)),
    ("wgan", {}, (0.0, 0.0), (-2.0, 1.0), (0.225, -3.125)),
    ("wgangp", {}, (0.0, 0.0), (-2.0, 1.0), (0.225, -3.125)),
    ("wganlp", {}, (0.0, 0.0), (-2.0, 1.0), (0.225, -3.125)),
    ("hinge", {}, (2.0, 0.0), (0.0, 1.0), (6.75, -3.125)),
    ("rsgan", {}, (LN2, LN2), (0.126928, 2.126928), (4.822435, 4.597435)),
    ("rasgan", {}, (2 * LN2, 2 * LN2), (0.253856, 4.253856), (5.212013, 4.762013)),
    ("ralsgan", {}, (2.0, 2.0), (2.0, 18.0), (73.093125, 71.293125)),
    ("rahinge", {}, (2.0, 2.0), (0.0, 6.0), (6.39375, 5.1625)),
    ("rasgan", {"half": True}, (LN2, LN2), (0.126928, 2.126928), (2.6060065, 2.3810065)),
]


def _pair(loss, r, f):
    return float(loss.d_loss(r, f)), float(loss.g_loss(f, r))


@pytest.mark.parametrize("name,params,at0,at1,vec", CASES, ids=[f"{c[0]}{c[1] or ''}" for c in CASES])
def test_spec_points_and_vectors(name, params, at0, at1, vec):
    loss = build_gan_loss(name, **params)
    z = torch.zeros(4)
    assert _pair(loss, z, z) == pytest.approx(at0, abs=1e-5)
    assert _pair(loss, torch.ones(4), -torch.ones(4)) == pytest.approx(at1, abs=1e-5)
    assert _pair(loss, R, F_) == pytest.approx(vec, rel=1e-5)


def test_relativistic_tfgan_vector_sum_and_half():
    r = torch.tensor([-2.0, 0.4, 12.5, 2.7])
    assert _pair(build_gan_loss("rasgan"), r, F_) == pytest.approx((4.390114, 4.9401135), rel=1e-5)
    assert _pair(build_gan_loss("rasgan", half=True), r, F_) == pytest.approx((2.195057, 2.470057), rel=1e-5)


def test_label_smoothing_reproduces_library_default():
    assert float(build_gan_loss("nsgan", real_label=0.875).d_loss(R, F_)) == pytest.approx(6.19637, rel=1e-5)


# divergence: (L_D at 0, L_G sat at 0, L_G alt at 0, F at r=1, f=-1)
FGAN = {
    "kl": (math.exp(-1), -math.exp(-1), 0.0, 0.864665),
    "reverse_kl": (0.0, 1.0, 1.0, 1.632121),
    "pearson": (0.0, 0.0, 0.0, 1.75),
    "neyman": (0.0, 0.0, 0.0, 1.929563),
    "hellinger": (0.0, 0.0, 0.0, 1.264241),
    "js": (0.0, 0.0, 0.0, 0.759771),
    "gan": (2 * LN2, -LN2, LN2, -0.626523),
    "tv": (0.0, 0.0, 0.0, math.tanh(1.0)),
}


@pytest.mark.parametrize("div", sorted(FGAN))
def test_fgan_table(div):
    d0, g_sat, g_alt, f1 = FGAN[div]
    z = torch.zeros(3)
    sat, alt = build_gan_loss(f"fgan_{div}", g_form="sat"), build_gan_loss("fgan", divergence=div)
    assert float(sat.d_loss(z, z)) == pytest.approx(d0, abs=1e-6)
    assert float(sat.g_loss(z)) == pytest.approx(g_sat, abs=1e-6)
    assert float(alt.g_loss(z)) == pytest.approx(g_alt, abs=1e-6)
    assert float(alt.d_loss(torch.ones(3), -torch.ones(3))) == pytest.approx(-f1, abs=1e-5)


def test_fgan_gan_row_is_standard_gan():
    std, fg = build_gan_loss("nsgan"), build_gan_loss("fgan_gan")
    assert _pair(fg, R, F_) == pytest.approx(_pair(std, R, F_), rel=1e-6)


@pytest.mark.parametrize("name", [n for n in GAN_LOSSES.names() if n not in ("ebgan", "began")])
def test_patch_maps_lists_dtypes_and_stability(name):
    loss = build_gan_loss(name)
    g = torch.Generator().manual_seed(0)
    r, f = torch.randn(2, 1, 3, 3, generator=g), torch.randn(2, 1, 3, 3, generator=g)
    flat = _pair(loss, r.flatten(), f.flatten())
    assert _pair(loss, r, f) == pytest.approx(flat, rel=1e-5, abs=1e-6)
    r2, f2 = 2 * r[..., :2, :2], f[..., :2, :2] - 1
    two = _pair(loss, [r, r2], [f, f2])
    expected = [(a + b) / 2 for a, b in zip(flat, _pair(loss, r2, f2))]
    assert two == pytest.approx(expected, rel=1e-5, abs=1e-6)
    half = loss.d_loss(r.bfloat16(), f.bfloat16())
    assert half.dtype == torch.float32
    big_r = torch.tensor([100.0, -100.0, 30.0], requires_grad=True)
    big_f = torch.tensor([-100.0, 100.0, 30.0], requires_grad=True)
    total = loss.d_loss(big_r, big_f) + loss.g_loss(big_f, big_r)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(big_r.grad).all() and torch.isfinite(big_f.grad).all()


def test_relativistic_g_needs_real_and_gradients_flow_through_means():
    loss = build_gan_loss("rasgan")
    assert loss.needs_real_for_g
    with pytest.raises(ValueError, match="real logits"):
        loss.g_loss(F_)
    r = R.clone().requires_grad_(True)
    loss.d_loss(r, F_).backward()
    # d/dr_i of E sp(-(r - E f)) + E sp(f - E r): -sig(-ra_i)/n - mean_j sig(fa_j)/n
    ra, fa = R - F_.mean(), F_ - R.mean()
    expect = -torch.sigmoid(-ra) / 4 - torch.sigmoid(fa).mean() / 4
    assert torch.allclose(r.grad, expect, atol=1e-6)


def test_wgan_clipping_bounds_and_metadata():
    loss = build_gan_loss("wgan")
    assert loss.n_critic == 5 and loss.default_penalty is None and not loss.needs_real_for_g
    D = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Linear(8, 1))
    torch.nn.init.normal_(D[0].weight, std=1.0)
    loss.after_d_step(D)
    values = torch.cat([p.flatten() for p in D.parameters()])
    assert values.abs().max() <= 0.01 + 1e-9 and (values.abs() == 0.01).any()
    assert build_gan_loss("wgan", clip=0.05).clip == 0.05
    before = [p.clone() for p in D.parameters()]
    build_gan_loss("wgangp").after_d_step(D)
    assert all(torch.equal(a, b) for a, b in zip(before, D.parameters()))


def test_default_penalties_and_state():
    assert build_gan_loss("wgangp").default_penalty == ("gp", 10.0)
    assert build_gan_loss("wganlp").default_penalty == ("lp", 10.0)
    assert build_gan_loss("dragan").default_penalty == ("dragan", 10.0)
    assert build_gan_loss("hinge").default_penalty is None
    assert build_gan_loss("hinge").state_dict() == {} and build_gan_loss("hinge").logs() == {}


def test_config_errors_are_one_line():
    with pytest.raises(ConfigError, match="did you mean 'hinge'"):
        build_gan_loss("hinje")
    with pytest.raises(ConfigError, match="no parameter 'margin'"):
        build_gan_loss("hinge", margin=2)
    with pytest.raises(ConfigError, match="divergence"):
        build_gan_loss("fgan", divergence="chi")
    with pytest.raises(ConfigError, match="penalty"):
        build_penalty("r3", 10.0)
    assert build_penalty("none", 10.0) is None


def test_a_negative_or_non_finite_weight_or_parameter_is_a_config_error():
    for weight in (-1.0, float("nan"), float("inf"), "10", True):
        with pytest.raises(ConfigError, match=r"losses.penalty: penalty 'gp': weight must be a finite number"):
            build_penalty("gp", weight)
    assert build_penalty("r1", 0.0).weight == 0.0 and build_penalty("r1", 5).weight == 5.0
    with pytest.raises(ConfigError, match=r"losses.gan: .*'lsgan': b must be a finite number, got nan"):
        build_gan_loss("lsgan", b=float("nan"))


def test_rsgan_pairs_real_and_fake_so_their_shapes_must_match():
    gan = build_gan_loss("rsgan")
    r, f = torch.tensor([[1.0], [2.0]]), torch.tensor([[0.0], [0.5]])
    expected = torch.nn.functional.softplus(-(r - f)).mean()
    assert torch.allclose(gan.d_loss(r, f), expected)
    with pytest.raises(ValueError, match=r"shapes \(2, 1\) and \(3, 1\) differ"):
        gan.d_loss(r, torch.zeros(3, 1))
    with pytest.raises(ValueError, match="pairwise"):
        gan.g_loss(torch.zeros(3, 1), r)
    assert torch.isfinite(build_gan_loss("rasgan").d_loss(r, torch.zeros(3, 1)))  # averaged: any batch sizes
