"""Gradient penalties and bCR: closed forms, finite differences, mixed precision."""
import pytest
import torch
from torch import nn

from i2i.losses import build_penalty
from i2i.losses.consistency import flip_translate

pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")


class Linear(nn.Module):
    """D(x) = w . x (per sample, x flattened)."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float32))

    def forward(self, x):
        return x.flatten(1) @ self.w


class Half(nn.Module):
    """D(x) = 1/2 ||x||^2 per sample."""

    def forward(self, x):
        return 0.5 * x.flatten(1).pow(2).sum(1)


def _mlp(seed=0, dim=3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(dim, 8), nn.Tanh(), nn.Linear(8, 1))


def test_gp_tfgan_vector_and_target():
    D = Linear([2.0] * 4)
    real, fake = torch.randn(1, 4), torch.randn(1, 4)
    assert float(build_penalty("gp", 1.0)(D, real, fake)) == pytest.approx(9.0, rel=1e-6)
    assert float(build_penalty("gp", 1.0, target=2.0)(D, real, fake)) == pytest.approx(1.0, rel=1e-6)
    assert float(build_penalty("gp", 10.0)(D, real, fake)) == pytest.approx(90.0, rel=1e-6)


def test_lp_is_one_sided():
    real, fake = torch.randn(5, 4), torch.randn(5, 4)
    small = Linear([0.25] * 4)  # ||w|| = 0.5
    assert float(build_penalty("gp", 1.0)(small, real, fake)) == pytest.approx(0.25, rel=1e-5)
    assert float(build_penalty("lp", 1.0)(small, real, fake)) == 0.0
    assert float(build_penalty("lp", 1.0)(Linear([2.0] * 4), real, fake)) == pytest.approx(9.0, rel=1e-6)


def test_dragan_linear_critic():
    D = Linear([3.0, 4.0])
    assert float(build_penalty("dragan", 10.0)(D, torch.randn(6, 2), torch.randn(6, 2))) == pytest.approx(160.0)


def test_dragan_points_lie_between_x_and_its_perturbation():
    pen = build_penalty("dragan", 10.0)
    x = torch.randn(64, 3)
    pts = pen.points(x, x)
    step = pts - x
    assert (step >= 0).all() and (step <= 0.5 * x.std() + 1e-6).all() and step.abs().sum() > 0


def test_gp_points_lie_on_segments():
    pen = build_penalty("gp", 1.0)
    real, fake = torch.zeros(32, 2, 2, 2), torch.ones(32, 2, 2, 2)
    pts = pen.points(real, fake)
    per_sample = pts.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample))  # one epsilon per sample
    assert (pts >= 0).all() and (pts <= 1).all() and per_sample[:, 0].std() > 0.1


def test_r1_r2_closed_forms():
    D = Linear([1.0, 2.0, 2.0])
    x = torch.randn(4, 3)
    assert float(build_penalty("r1", 10.0)(D, x, x)) == pytest.approx(45.0, rel=1e-6)
    assert float(build_penalty("r1", 10.0, half=False)(D, x, x)) == pytest.approx(90.0, rel=1e-6)
    real, fake = torch.randn(8, 2, 3), 3 * torch.randn(8, 2, 3)
    expect_r1 = 5.0 * real.flatten(1).pow(2).sum(1).mean()
    expect_r2 = 5.0 * fake.flatten(1).pow(2).sum(1).mean()
    assert float(build_penalty("r1", 10.0)(Half(), real, fake)) == pytest.approx(float(expect_r1), rel=1e-5)
    assert float(build_penalty("r2", 10.0)(Half(), real, fake)) == pytest.approx(float(expect_r2), rel=1e-5)


def test_gp_gradient_wrt_weights_closed_form():
    D = Linear([2.0, 1.0, 2.0])  # ||w|| = 3
    build_penalty("gp", 1.0)(D, torch.randn(4, 3), torch.randn(4, 3)).backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    assert torch.allclose(D.w.grad, 2 * 2 / 3 * torch.tensor([2.0, 1.0, 2.0]), atol=1e-5)


@pytest.mark.smoke
@pytest.mark.parametrize("kind", ["gp", "lp", "dragan", "r1", "r2", "bcr"])
def test_penalty_gradient_matches_finite_differences(kind):
    kwargs = {"augment": "jitter", "sigma": 0.3} if kind == "bcr" else {}
    pen = build_penalty(kind, 1.0, **kwargs)
    D = _mlp()
    with torch.no_grad():
        D[2].weight *= 4  # gradient norms around 1, so that 'lp' is active on some samples
    real, fake = torch.randn(16, 3), 2 * torch.randn(16, 3)

    def value():
        torch.manual_seed(123)  # same interpolates / perturbations at every evaluation
        return pen(D, real, fake)

    value().backward()
    weight = D[0].weight
    assert weight.grad.abs().max() > 1e-3
    h = 1e-2
    for idx in [(0, 0), (3, 1), (7, 2)]:
        with torch.no_grad():
            weight[idx] += h
            up = float(value())
            weight[idx] -= 2 * h
            down = float(value())
            weight[idx] += h
        numeric = (up - down) / (2 * h)
        assert weight.grad[idx].item() == pytest.approx(numeric, rel=5e-2, abs=1e-4)


def test_penalties_run_in_fp32_under_autocast_and_accept_lists():
    class TwoScale(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = Linear([2.0] * 4), Linear([2.0] * 4)

        def forward(self, x):
            return [self.a(x).view(-1, 1, 1, 1).expand(-1, 1, 2, 2), self.b(x)]

    real, fake = torch.randn(3, 4), torch.randn(3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = build_penalty("gp", 1.0)(TwoScale(), real.bfloat16(), fake.bfloat16())
    assert out.dtype == torch.float32 and float(out) == pytest.approx(9.0, rel=1e-6)


def test_bcr_points():
    D = Linear([1.0, 0.0])
    x = torch.tensor([[1.0, 5.0]])
    invariant = build_penalty("bcr", 10.0, augment="jitter", sigma=0.0)
    assert float(invariant(D, x, x)) == 0.0

    class Shift(nn.Module):  # D(x) = 1.0 on the batch, 0.5 on its augmented copy
        calls = 0

        def forward(self, x):
            Shift.calls += 1
            return torch.full((x.shape[0],), 1.0 if Shift.calls % 2 else 0.5)

    real_only = build_penalty("bcr", 10.0, fake_weight=0.0, augment="jitter")
    assert float(real_only(Shift(), x, x)) == pytest.approx(2.5)
    Shift.calls = 0
    both = build_penalty("bcr", 10.0, augment="jitter")
    assert float(both(Shift(), x, x)) == pytest.approx(5.0)


def test_flip_translate_preserves_content():
    torch.manual_seed(0)
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8) + 1
    y = flip_translate(x, translate=0.25)
    assert y.shape == x.shape
    for i in range(2):  # every non-padded value comes from the same image
        vals = set(y[i][y[i] != 0].tolist())
        assert vals <= set(x[i].flatten().tolist()) and len(vals) >= 36
    assert torch.equal(flip_translate(x, translate=0.0).abs().sum((1, 2, 3)), x.sum((1, 2, 3)))
    with pytest.raises(ValueError):
        flip_translate(torch.randn(3, 2))


def test_bcr_on_patch_maps_uses_the_mean_score():
    D = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    nn.init.constant_(D.weight, 1.0)
    x = torch.randn(4, 1, 8, 8)
    pen = build_penalty("bcr", 10.0, translate=0.0)  # flips only: a symmetric kernel keeps the mean
    assert float(pen(D, x, x)) == pytest.approx(0.0, abs=1e-8)


def test_penalties_and_began_under_ddp(tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from i2i.losses import build_gan_loss

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        D = DistributedDataParallel(Linear([2.0] * 4))
        real, fake = torch.randn(3, 4), torch.randn(3, 4)
        for kind in ("gp", "r1"):
            rl, fl = D(real), D(fake)
            loss = build_gan_loss("hinge").d_loss(rl, fl) + build_penalty(kind, 1.0)(D, real, fake, rl, fl)
            loss.backward()
            assert torch.isfinite(D.module.w.grad).all()
            D.zero_grad()
        assert float(build_penalty("gp", 1.0)(D, real, fake)) == pytest.approx(9.0, rel=1e-6)
        began = build_gan_loss("began", gamma=0.5, lambda_k=0.1)
        began.d_loss(torch.ones(2), torch.zeros(2))
        began.update()  # k update averaged over the (single) process
        assert began.logs() == {"k_t": pytest.approx(0.05), "m_global": pytest.approx(1.5)}
    finally:
        dist.destroy_process_group()


def test_without_a_generator_penalties_draw_from_the_global_rng_as_before():
    real, fake = torch.randn(5, 2, 3, 3), torch.randn(5, 2, 3, 3)
    torch.manual_seed(0)
    gp_points = build_penalty("gp", 1.0).points(real, fake)
    dragan_points = build_penalty("dragan", 1.0).points(real, fake)
    torch.manual_seed(0)
    e = torch.rand(5, 1, 1, 1)
    noise, a = torch.rand_like(real), torch.rand(5, 1, 1, 1)
    assert torch.equal(gp_points, e * real + (1 - e) * fake)
    assert torch.equal(dragan_points, real + a * (real + 0.5 * real.std() * noise - real))


def test_with_a_generator_each_share_of_the_global_batch_gets_its_own_numbers(monkeypatch):
    """Two simulated processes holding samples [0, 3) and [3, 4) of a global batch of 4 compute the points
    of one process with the whole batch, from generators in the same state, and leave them in the same state."""
    from i2i.losses import global_batch, penalties

    real, fake = torch.randn(4, 2, 3, 3), torch.randn(4, 2, 3, 3)
    monkeypatch.setattr(penalties, "global_std", lambda x: real.std())  # DRAGAN: std of the global batch
    for kind in ("gp", "lp", "dragan"):
        pen = build_penalty(kind, 1.0)
        whole_gen = torch.Generator().manual_seed(37)
        whole = pen.points(real, fake, whole_gen)
        parts = []
        for lo, hi in ((0, 3), (3, 4)):
            gen = torch.Generator().manual_seed(37)
            with monkeypatch.context() as m:
                m.setattr(global_batch, "batch_slice", lambda n, device, lo=lo: (lo, 4))
                parts.append(pen.points(real[lo:hi], fake[lo:hi], gen))
            assert torch.equal(gen.get_state(), whole_gen.get_state()), kind  # the next draws agree too
        assert torch.equal(torch.cat(parts), whole), kind



def test_penalties_keep_synchronized_batch_norms_twice_differentiable():
    # torch's CUDA SyncBatchNorm has no double backward: inside a penalty's pass the layers take the all-reduce path
    from types import SimpleNamespace

    from i2i.nn.sync_bn import SyncBatchNorm, convert_sync_batchnorm, differentiable_twice

    D = convert_sync_batchnorm(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                                   torch.nn.Conv2d(4, 1, 3)))
    layer = D[1]
    assert isinstance(layer, SyncBatchNorm)
    on_cuda = SimpleNamespace(device=torch.device("cuda"))
    assert layer._torch_kernel(on_cuda) and not layer._torch_kernel(SimpleNamespace(device=torch.device("cpu")))
    during = []
    layer.register_forward_pre_hook(lambda m, args: during.append(m._torch_kernel(on_cuda)))
    x = torch.randn(2, 3, 8, 8)
    for name in ("r1", "gp", "dragan"):
        during.clear()
        value = build_penalty(name, 1.0)(D, x, torch.randn(2, 3, 8, 8), generator=torch.Generator().manual_seed(0))
        value.backward()  # the double backward through the batch norm
        assert during == [False], name
    assert layer._torch_kernel(on_cuda)  # restored after the pass
    with differentiable_twice(D):
        with differentiable_twice(D):
            assert not layer._torch_kernel(on_cuda)
        assert not layer._torch_kernel(on_cuda)  # the outer context still holds
    assert layer._torch_kernel(on_cuda)
