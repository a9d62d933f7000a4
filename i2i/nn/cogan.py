"""Coupled networks of CoGAN (Liu & Tuzel, "Coupled Generative Adversarial Networks", NIPS 2016).

Two GANs, one per image domain, share weights where the paper says the
domains agree:

* the generators share their *first* layers, which decode the noise vector z
  into high-level features (layout, pose), and keep their *last* layers, which
  render those features as pixels of their own domain;
* the discriminators share their *last* layers, which judge high-level
  features, and keep their *first* layers, which extract features from pixels.

Sharing is by identity: a coupled network holds the shared part once, as one
module, and each domain's path (:meth:`CoupledGenerator.branch`,
:meth:`CoupledDiscriminator.branch`) runs that very module, so one optimizer
step moves both domains.  The layers are DCGAN-style (Radford et al. 2016):
4x4 (transposed) convolutions of stride 2, batch norm and ReLU in the
generator, leaky ReLU 0.2 in the discriminator, tanh images and one logit.

Both networks work at ``size`` x ``size`` pixels, a power of 2 >= 16 (64 by
default); the generator's first layer makes 4x4 features from z, and every
further layer doubles the resolution.
"""
from __future__ import annotations

import torch
from torch import nn

from ..registry import DISCRIMINATORS, GENERATORS
from .norms import conv_bias, norm_layer

DOMAINS = ("A", "B")


def check_size(size: int) -> int:
    """Number of stride-2 layers between 4x4 features and ``size`` x ``size`` images."""
    if size < 16 or size & (size - 1):
        raise ValueError(f"size must be a power of 2 >= 16, got {size}")
    return size.bit_length() - 3  # log2(size / 4)


def _width(base: int, size: int, res: int) -> int:
    """Channels of the features at resolution ``res``: ``base`` at size/2, doubling per halving, at most 8x."""
    return base * min(8, size // (2 * res))


def _check_private(private_layers: int, n_layers: int, what: str) -> None:
    if not 1 <= private_layers <= n_layers:
        raise ValueError(f"{what}: private_layers must be between 1 and {n_layers} at this size, got {private_layers}")


class Branch(nn.Module):
    """One domain's path through a coupled network: ``second(first(x))``.

    A view, not an owner: the coupled network registers the parts, the branch
    only calls them (so its parameters are the coupled network's own objects).
    """

    def __init__(self, first: nn.Module, second: nn.Module) -> None:
        super().__init__()
        self.first, self.second = first, second

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


class CoupledGenerator(nn.Module):
    """z -> (image of domain A, image of domain B) through one shared trunk and two heads.

    ``trunk``: z (``N x latent``) -> 4x4 features by a 4x4 transposed convolution,
    then stride-2 transposed convolutions, each with norm and ReLU.  ``head_A`` /
    ``head_B``: the last ``private_layers`` stride-2 transposed convolutions of each
    domain, the final one to ``channels_a`` / ``channels_b`` channels and tanh.
    Widths: ``ngf`` at size/2, doubling towards 4x4, at most ``8 * ngf``.
    """

    def __init__(self, latent: int = 100, size: int = 64, ngf: int = 64, channels_a: int = 3, channels_b: int = 3,
                 private_layers: int = 1, norm: str = "batch") -> None:
        super().__init__()
        n_up = check_size(size)
        _check_private(private_layers, n_up, "cogan generator")
        if latent < 1:
            raise ValueError(f"latent must be >= 1, got {latent}")
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.latent, self.size, self.size_multiple = latent, size, 1
        width = _width(ngf, size, 4)
        trunk: list[nn.Module] = [nn.Unflatten(1, (latent, 1, 1)),
                                  nn.ConvTranspose2d(latent, width, 4, 1, 0, bias=bias), make_norm(width), nn.ReLU(True)]
        res = 4
        for _ in range(n_up - private_layers):
            out = _width(ngf, size, res * 2)
            trunk += [nn.ConvTranspose2d(width, out, 4, 2, 1, bias=bias), make_norm(out), nn.ReLU(True)]
            width, res = out, res * 2
        self.trunk = nn.Sequential(*trunk)
        self.head_A = self._head(width, res, channels_a, private_layers, ngf, make_norm, bias)
        self.head_B = self._head(width, res, channels_b, private_layers, ngf, make_norm, bias)

    def _head(self, width, res, channels, n, ngf, make_norm, bias) -> nn.Sequential:
        layers: list[nn.Module] = []
        for _ in range(n - 1):
            out = _width(ngf, self.size, res * 2)
            layers += [nn.ConvTranspose2d(width, out, 4, 2, 1, bias=bias), make_norm(out), nn.ReLU(True)]
            width, res = out, res * 2
        return nn.Sequential(*layers, nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh())

    def head(self, domain: str) -> nn.Module:
        if domain not in DOMAINS:
            raise ValueError(f"domain must be A or B, got {domain!r}")
        return self.head_A if domain == "A" else self.head_B

    def branch(self, domain: str) -> Branch:
        """The generator of one domain: z -> image, through the shared trunk."""
        return Branch(self.trunk, self.head(domain))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both domains' images of the same z (the trunk runs once)."""
        h = self.trunk(z)
        return self.head_A(h), self.head_B(h)


class CoupledDiscriminator(nn.Module):
    """Two per-domain first layers and one shared tail ending in a logit.

    ``head_A`` / ``head_B``: the first ``private_layers`` stride-2 4x4 convolutions
    of each domain (from ``channels_a`` / ``channels_b``), leaky ReLU 0.2, no norm on
    the first.  ``tail``: the remaining stride-2 convolutions down to 4x4, each with
    norm and leaky ReLU 0.2, then a 4x4 convolution to one logit, ``(N, 1, 1, 1)``.
    Widths: ``ndf`` at size/2, doubling per halving, at most ``8 * ndf``.
    """

    def __init__(self, size: int = 64, ndf: int = 64, channels_a: int = 3, channels_b: int = 3,
                 private_layers: int = 1, norm: str = "batch") -> None:
        super().__init__()
        n_down = check_size(size)
        _check_private(private_layers, n_down, "cogan discriminator")
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.size = size
        self.head_A = self._head(channels_a, private_layers, ndf, make_norm, bias)
        self.head_B = self._head(channels_b, private_layers, ndf, make_norm, bias)
        res = size >> private_layers
        width = _width(ndf, size, res)
        tail: list[nn.Module] = []
        while res > 4:
            out = _width(ndf, size, res // 2)
            tail += [nn.Conv2d(width, out, 4, 2, 1, bias=bias), make_norm(out), nn.LeakyReLU(0.2, True)]
            width, res = out, res // 2
        tail.append(nn.Conv2d(width, 1, 4, 1, 0))
        self.tail = nn.Sequential(*tail)

    def _head(self, channels, n, ndf, make_norm, bias) -> nn.Sequential:
        res, width = self.size // 2, _width(ndf, self.size, self.size // 2)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for _ in range(n - 1):
            out = _width(ndf, self.size, res // 2)
            layers += [nn.Conv2d(width, out, 4, 2, 1, bias=bias), make_norm(out), nn.LeakyReLU(0.2, True)]
            width, res = out, res // 2
        return nn.Sequential(*layers)

    def head(self, domain: str) -> nn.Module:
        if domain not in DOMAINS:
            raise ValueError(f"domain must be A or B, got {domain!r}")
        return self.head_A if domain == "A" else self.head_B

    def branch(self, domain: str) -> Branch:
        """The discriminator of one domain: image -> logit, through the shared tail."""
        return Branch(self.head(domain), self.tail)

    def forward(self, x: torch.Tensor, domain: str = "A") -> torch.Tensor:
        return self.tail(self.head(domain)(x))


# --------------------------------------------------------------------------- registered builders
@GENERATORS.register("cogan_generator")
def cogan_generator(in_channels=3, out_channels=3, latent=100, size=64, ngf=64, private_layers=1, norm="batch"):
    """CoGAN coupled generator: noise -> an (A, B) pair; ``in_channels`` / ``out_channels`` are
    the channels of the A and B images, ``private_layers`` the last layers each domain keeps."""
    return CoupledGenerator(latent, size, ngf, in_channels, out_channels, private_layers, norm)


@DISCRIMINATORS.register("cogan_discriminator")
def cogan_discriminator(in_channels=3, out_channels=None, size=64, ndf=64, private_layers=1, norm="batch"):
    """CoGAN coupled discriminator; ``in_channels`` / ``out_channels`` are the channels of the A and
    B images (B as A when not given), ``private_layers`` the first layers each domain keeps."""
    return CoupledDiscriminator(size, ndf, in_channels, in_channels if out_channels is None else out_channels,
                                private_layers, norm)
