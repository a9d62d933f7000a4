"""EBGAN / BEGAN objectives and the autoencoder discriminator."""
import pytest
import torch

from i2i.config import NetConfig
from i2i.losses import build_gan_loss
from i2i.losses.energy import pull_away
from i2i.nn.autoencoder import MLPAutoencoder
from i2i.nn.build import build_discriminator
from i2i.registry import DISCRIMINATORS


def test_ebgan_margin_points():
    loss = build_gan_loss("ebgan", margin=1.0, pt_weight=0.0)
    real, fake = torch.full((4,), 0.1), torch.full((4,), 0.5)
    assert float(loss.d_loss(real, fake)) == pytest.approx(0.6)
    assert float(loss.g_loss(fake)) == pytest.approx(0.5)
    assert float(loss.d_loss(real, torch.full((4,), 1.5))) == pytest.approx(0.1)
    # the hinge is per sample, not on the batch mean
    mixed = torch.tensor([0.0, 2.0])
    assert float(loss.d_loss(torch.zeros(2), mixed)) == pytest.approx(0.5)


def test_pull_away_term():
    assert float(pull_away(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))) == pytest.approx(0.0)
    assert float(pull_away(torch.tensor([[1.0, 0.0], [2.0, 0.0], [-3.0, 0.0]]))) == pytest.approx(1.0)
    s = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # cos^2: 1/2, 0, 1/2 -> 2*(1/2+0+1/2)/6
    assert float(pull_away(s)) == pytest.approx(1 / 3)


def test_ebgan_pt_uses_the_energies_embedding():
    fake = torch.full((2,), 0.5)
    fake.embedding = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    assert float(build_gan_loss("ebgan", pt_weight=0.1).g_loss(fake)) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="embedding"):
        build_gan_loss("ebgan").g_loss(torch.full((2,), 0.5))


def test_began_controller_points_state_and_logs():
    loss = build_gan_loss("began", gamma=0.5, lambda_k=0.001)
    real, fake = torch.full((3,), 0.1), torch.full((3,), 0.08)
    assert loss.logs() == {"k_t": 0.0}
    assert float(loss.d_loss(real, fake)) == pytest.approx(0.1)
    assert loss.k == 0.0 and "m_global" not in loss.logs()  # updated once per iteration, by update()
    loss.update()
    assert loss.k == 0.0 and loss.logs()["m_global"] == pytest.approx(0.13)
    loss.load_state_dict({"k": 0.5})
    assert float(loss.d_loss(real, fake)) == pytest.approx(0.06)
    loss.update()
    assert loss.state_dict()["k"] == pytest.approx(0.49997)
    assert float(loss.g_loss(fake)) == pytest.approx(0.08)
    high = build_gan_loss("began", lambda_k=10.0, k0=0.9)
    high.d_loss(torch.ones(2), torch.zeros(2))
    high.update()
    assert high.k == 1.0  # clipped to [0, 1]
    fresh = build_gan_loss("began")
    fresh.load_state_dict(high.state_dict())
    assert fresh.k == 1.0


def test_conv_autoencoder_energies_and_embedding():
    assert "autoencoder" in DISCRIMINATORS
    D = build_discriminator(NetConfig("autoencoder", params={"ndf": 8, "n_down": 2}), in_channels=6)
    x = torch.randn(3, 6, 30, 30)
    e = D(x)
    assert e.shape == (3,) and (e >= 0).all()
    assert torch.allclose(e, (D.reconstruct(x) - x).pow(2).flatten(1).mean(1), atol=1e-6)
    assert e.embedding.shape[0] == 3 and D.last_embedding is e.embedding
    l1 = build_discriminator(NetConfig("autoencoder", params={"ndf": 8, "energy": "l1"}), in_channels=3)
    y = torch.randn(2, 3, 32, 32)
    assert torch.allclose(l1(y), (l1.reconstruct(y) - y).abs().flatten(1).mean(1), atol=1e-6)
    sn = build_discriminator(NetConfig("autoencoder", spectral_norm=True, params={"ndf": 8}), in_channels=3)
    assert torch.isfinite(sn(y)).all()


def test_ebgan_gradients_reach_the_autoencoder():
    D = MLPAutoencoder(dim=2, hidden=8, embed=4)
    loss = build_gan_loss("ebgan", margin=5.0)
    x, fake = torch.randn(6, 2), torch.randn(6, 2, requires_grad=True)
    loss.d_loss(D(x), D(fake.detach())).backward()
    assert all(p.grad is not None for p in D.parameters())
    loss.g_loss(D(fake)).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
