"""UNIT's coupled VAE generators (Liu, Breuel and Kautz, NIPS 2017).

Two encoders map images of domains A and B to one latent space (256 channels at
H/4 by default) and two decoders map it back.  As in the paper, the high-level
layers are *shared*: the last ``n_shared_enc`` residual blocks of the encoders and
the first ``n_shared_dec`` residual blocks of the decoders are the same module
objects for both domains (``0`` and ``0`` give the variant without sharing, which
is what the authors' later code ships).

* encoder: 7x7 conv (``dim``), ``n_down`` 4x4 stride-2 convs (doubling the width),
  ``n_res`` residual blocks; instance norm, ReLU, reflection padding;
* decoder: ``n_res`` residual blocks (instance norm), ``n_down`` x (nearest 2x
  upsampling, 5x5 conv halving the width, layer norm, ReLU), 7x7 conv, tanh.

The module's ``forward`` translates A -> B (``decode_b(encode_a(x))``) so it is also
an ordinary generator for any translator.
"""
from __future__ import annotations

import torch
from torch import nn

from ..registry import GENERATORS
from .blocks import ResnetBlock, padded_conv
from .norms import norm_layer


def _conv_block(c_in: int, c_out: int, kernel: int, norm: str, act: nn.Module) -> list[nn.Module]:
    return [*padded_conv(c_in, c_out, kernel, "reflect", True), norm_layer(norm)(c_out), act]


class UNITGenerator(nn.Module):
    def __init__(self, in_channels: int = 3, out_channels: int = 3, dim: int = 64, n_down: int = 2, n_res: int = 4,
                 n_shared_enc: int = 1, n_shared_dec: int = 1) -> None:
        super().__init__()
        if not 0 <= n_shared_enc <= n_res or not 0 <= n_shared_dec <= n_res:
            raise ValueError(f"n_shared_enc and n_shared_dec must be in [0, n_res={n_res}]")
        self.latent_channels = dim * 2**n_down
        self.size_multiple = 2**n_down
        self.min_size = 2 * self.size_multiple  # a 2 x 2 latent: instance norm and reflect padding need 2 px
        self.enc_a, self.enc_b = self._encoder(in_channels, dim, n_down, n_res - n_shared_enc), \
            self._encoder(out_channels, dim, n_down, n_res - n_shared_enc)
        self.enc_shared = self._res(n_shared_enc)
        self.dec_shared = self._res(n_shared_dec)
        self.dec_a, self.dec_b = self._decoder(in_channels, n_down, n_res - n_shared_dec), \
            self._decoder(out_channels, n_down, n_res - n_shared_dec)

    def _res(self, n: int) -> nn.Sequential:
        return nn.Sequential(*(ResnetBlock(self.latent_channels, "instance", False, "reflect") for _ in range(n)))

    def _encoder(self, c_in: int, dim: int, n_down: int, n_res: int) -> nn.Sequential:
        layers = _conv_block(c_in, dim, 7, "instance", nn.ReLU(True))
        for _ in range(n_down):
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim * 2, 4, stride=2), norm_layer("instance")(dim * 2),
                       nn.ReLU(True)]
            dim *= 2
        return nn.Sequential(*layers, *self._res(n_res))

    def _decoder(self, c_out: int, n_down: int, n_res: int) -> nn.Sequential:
        layers: list[nn.Module] = list(self._res(n_res))
        dim = self.latent_channels
        for _ in range(n_down):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), *_conv_block(dim, dim // 2, 5, "layer", nn.ReLU(True))]
            dim //= 2
        layers += [*padded_conv(dim, c_out, 7, "reflect", True), nn.Tanh()]
        return nn.Sequential(*layers)

    # the coupled networks, as views onto the same modules
    def encoder(self, domain: str) -> nn.Sequential:
        return nn.Sequential({"A": self.enc_a, "B": self.enc_b}[domain], self.enc_shared)

    def decoder(self, domain: str) -> nn.Sequential:
        return nn.Sequential(self.dec_shared, {"A": self.dec_a, "B": self.dec_b}[domain])

    def encode(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """The latent mean h (the VAE's posterior is N(h, I))."""
        return self.enc_shared({"A": self.enc_a, "B": self.enc_b}[domain](x))

    def decode(self, h: torch.Tensor, domain: str) -> torch.Tensor:
        return {"A": self.dec_a, "B": self.dec_b}[domain](self.dec_shared(h))

    def translator(self, source: str, target: str) -> nn.Module:
        """``x -> decode(encode(x, source), target)``, the latent's mean without noise (inference)."""
        net = nn.Sequential(self.encoder(source), self.decoder(target))
        net.size_multiple, net.min_size = self.size_multiple, self.min_size
        return net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x, "A"), "B")


@GENERATORS.register("unit")
def unit(in_channels=3, out_channels=3, dim=64, n_down=2, n_res=4, n_shared_enc=1, n_shared_dec=1):
    """UNIT's coupled encoders and decoders (A: ``in_channels``, B: ``out_channels``); forward is A -> B."""
    return UNITGenerator(in_channels, out_channels, dim, n_down, n_res, n_shared_enc, n_shared_dec)
