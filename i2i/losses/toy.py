"""A 2-D toy benchmark for the adversarial objectives: ring of Gaussians, tiny MLPs.

Used by the convergence tests and ``tools/loss_zoo.py``.  The target is a
mixture of ``n_modes`` isotropic Gaussians (std ``std``) on a circle of radius
``radius``; G maps 2-D standard normal noise through an MLP; D is an MLP with
one logit, or an MLP autoencoder for the energy-based objectives.

Measures: the sliced Wasserstein-1 distance between sample sets (random
directions, fixed seed); *modes covered* = centres with at least one sample
within ``k`` std; *high-quality share* = fraction of samples within ``k`` std
of some centre (k = 3).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..nn.autoencoder import MLPAutoencoder
from . import build_gan_loss, build_penalty


def ring_centres(n_modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    angles = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], 1)).float()


def sample_mixture(centres: torch.Tensor, std: float, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    idx = torch.randint(len(centres), (n,), generator=generator)
    return centres[idx] + std * torch.randn(n, centres.shape[1], generator=generator)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, n_proj: int = 128, seed: int = 0) -> float:
    """Mean over random unit directions of the 1-D Wasserstein-1 distance (equal sizes)."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(a.shape[1], n_proj, generator=g)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    pa, pb = (a.float() @ dirs).sort(0).values, (b.float() @ dirs).sort(0).values
    return float((pa - pb).abs().mean())


def mode_stats(samples: torch.Tensor, centres: torch.Tensor, std: float, k: float = 3.0) -> dict[str, float]:
    """Modes covered and the share of samples within ``k`` std of a centre."""
    dist = torch.cdist(samples.float(), centres)
    near = dist < k * std
    return {"modes": int(near.any(0).sum()), "n_modes": len(centres),
            "high_quality": float(near.any(1).float().mean())}


def mlp(n_in: int, n_out: int, hidden: int = 64, depth: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(n_in if i == 0 else hidden, hidden), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers, nn.Linear(hidden, n_out))


class Critic(nn.Module):
    """MLP discriminator returning one logit per sample, shape (B,)."""

    def __init__(self, dim: int = 2, hidden: int = 64) -> None:
        super().__init__()
        self.net = mlp(dim, 1, hidden)

    def forward(self, x):
        return self.net(x).squeeze(1)


@dataclass
class Recipe:
    """How to train one variant on the toy problem."""

    gan: str
    gan_params: dict = field(default_factory=dict)
    penalty: tuple | None = None  #: (type, weight, params) or None (the loss's default penalty)
    lr: float = 1e-3
    betas: tuple = (0.5, 0.9)
    optimizer: str = "adam"  #: adam or rmsprop
    n_critic: int = 1
    energy: str | None = None  #: autoencoder D with this energy (ebgan/began)
    embed: int = 16  #: autoencoder bottleneck width


def build_nets(recipe: Recipe, hidden: int = 64) -> tuple[nn.Module, nn.Module]:
    G = mlp(2, 2, hidden)
    D = MLPAutoencoder(2, hidden, recipe.embed, recipe.energy) if recipe.energy else Critic(2, hidden)
    return G, D


def _optimizer(recipe: Recipe, params):
    if recipe.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=recipe.lr)
    return torch.optim.Adam(params, lr=recipe.lr, betas=recipe.betas)


def train(recipe: Recipe, steps: int, seed: int = 0, batch: int = 128, std: float = 0.05,
          centres: torch.Tensor | None = None, hidden: int = 64):
    """Train G and D for ``steps`` G updates; returns (G, gan loss, D)."""
    torch.manual_seed(seed)
    centres = ring_centres() if centres is None else centres
    data = torch.Generator().manual_seed(seed + 1)
    G, D = build_nets(recipe, hidden)
    gan = build_gan_loss(recipe.gan, **recipe.gan_params)
    if recipe.penalty is not None:
        kind, weight, params = recipe.penalty
        pen = build_penalty(kind, weight, **params)
    else:
        pen = build_penalty(*gan.default_penalty) if gan.default_penalty else None
    opt_g, opt_d = _optimizer(recipe, G.parameters()), _optimizer(recipe, D.parameters())
    for _ in range(steps):
        for _ in range(recipe.n_critic):
            real = sample_mixture(centres, std, batch, data)
            fake = G(torch.randn(batch, 2)).detach()
            rl, fl = D(real), D(fake)
            loss = gan.d_loss(rl, fl)
            if pen is not None:
                loss = loss + pen(D, real, fake, real_logits=rl, fake_logits=fl)
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
            gan.update()
            gan.after_d_step(D)
        fake = G(torch.randn(batch, 2))
        real_logits = D(sample_mixture(centres, std, batch, data)) if gan.needs_real_for_g else None
        g_loss = gan.g_loss(D(fake), real_logits)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    return G, gan, D


@torch.no_grad()
def generate(G: nn.Module, n: int, seed: int = 0) -> torch.Tensor:
    return G(torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)))


def _r(gan: str, **kw) -> Recipe:
    return Recipe(gan, **kw)


#: one recipe per variant shown in the loss zoo (Adam(1e-3, 0.5, 0.9) unless stated)
RECIPES: dict[str, Recipe] = {
    "minimax": _r("minimax"),
    "nsgan": _r("nsgan"),
    "lsgan": _r("lsgan"),
    "lsgan(a=-1,b=1,c=0)": _r("lsgan", gan_params={"a": -1.0, "b": 1.0, "c": 0.0}),
    "wgan": _r("wgan", optimizer="rmsprop", lr=5e-4, n_critic=5),
    "wgangp": _r("wgangp", lr=2e-3, n_critic=5),
    "wganlp": _r("wganlp", n_critic=5),
    "hinge": _r("hinge"),
    "dragan": _r("dragan", n_critic=5),
    "rsgan": _r("rsgan"),
    "rasgan": _r("rasgan"),
    "ralsgan": _r("ralsgan"),
    "rahinge": _r("rahinge"),
    "fgan_kl(sat)": _r("fgan_kl", gan_params={"g_form": "sat"}),
    "fgan_reverse_kl": _r("fgan_reverse_kl"),
    "fgan_js": _r("fgan_js"),
    "fgan_pearson(sat)": _r("fgan_pearson", gan_params={"g_form": "sat"}),
    "fgan_neyman": _r("fgan_neyman"),
    "fgan_hellinger": _r("fgan_hellinger"),
    "fgan_tv": _r("fgan_tv"),
    "fgan_tv+r1": _r("fgan_tv", penalty=("r1", 1.0, {})),
    "ebgan": _r("ebgan", gan_params={"margin": 1.0}, energy="mse"),
    "began": _r("began", gan_params={"lambda_k": 0.01}, energy="l1"),
    "nsgan+r1": _r("nsgan", penalty=("r1", 1.0, {})),
    "nsgan+r2": _r("nsgan", penalty=("r2", 1.0, {})),
    "hinge+bcr": _r("hinge", penalty=("bcr", 1.0, {"augment": "jitter", "sigma": 0.05})),
}
