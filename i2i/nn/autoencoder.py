"""Autoencoder discriminators for the energy-based losses (EBGAN, BEGAN).

D(x) is the reconstruction error of x, one energy per sample (shape (B,)):
``energy='mse'`` = mean squared error (EBGAN), ``'l1'`` = mean absolute error
(BEGAN).  The returned tensor carries the encoder output of the batch,
flattened to B x h, as the attribute ``.embedding`` (used by EBGAN's pull-away
term); the module also keeps it as ``last_embedding``.

:class:`ConvAutoencoder` (registered as ``autoencoder``) is fully
convolutional: ``n_down`` 4x4 stride-2 convolutions, then as many nearest
upsamplings with 3x3 convolutions; inputs of any size are accepted (the
reconstruction is resized back if the size is not a multiple of 2**n_down).
:class:`MLPAutoencoder` does the same for flat vectors (B x dim).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import DISCRIMINATORS
from .norms import conv_bias, norm_layer

ENERGIES = {
    "mse": lambda recon, x: (recon - x).pow(2).flatten(1).mean(1),
    "l1": lambda recon, x: (recon - x).abs().flatten(1).mean(1),
}


class _EnergyModule(nn.Module):
    def __init__(self, energy: str) -> None:
        super().__init__()
        if energy not in ENERGIES:
            raise ValueError(f"unknown energy {energy!r}; expected one of {', '.join(ENERGIES)}")
        self.energy = energy
        self.last_embedding: torch.Tensor | None = None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x), x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encode(x)
        recon = self.decode(z, x)
        out = ENERGIES[self.energy](recon.float(), x.float())
        out.embedding = z.flatten(1)
        self.last_embedding = out.embedding
        return out


class ConvAutoencoder(_EnergyModule):
    def __init__(self, in_channels: int = 3, ndf: int = 64, n_down: int = 3, norm: str = "none",
                 energy: str = "mse") -> None:
        super().__init__(energy)
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        enc: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 3, padding=1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for i in range(n_down):
            out = ndf * min(2 ** (i + 1), 8)
            enc += [nn.Conv2d(ch, out, 4, 2, 1, bias=bias), make_norm(out), nn.LeakyReLU(0.2, True)]
            ch = out
        dec: list[nn.Module] = []
        for i in reversed(range(n_down)):
            out = ndf * min(2 ** i, 8)
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, out, 3, padding=1, bias=bias),
                    make_norm(out), nn.LeakyReLU(0.2, True)]
            ch = out
        dec.append(nn.Conv2d(ch, in_channels, 3, padding=1))
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z, like):
        recon = self.decoder(z)
        if recon.shape[-2:] != like.shape[-2:]:
            recon = F.interpolate(recon, size=like.shape[-2:], mode="bilinear", align_corners=False)
        return recon


class MLPAutoencoder(_EnergyModule):
    def __init__(self, dim: int = 2, hidden: int = 64, embed: int = 16, energy: str = "mse") -> None:
        super().__init__(energy)
        self.encoder = nn.Sequential(nn.Linear(dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, embed))
        self.decoder = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(embed, hidden), nn.LeakyReLU(0.2),
                                     nn.Linear(hidden, dim))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z, like):
        return self.decoder(z)


@DISCRIMINATORS.register("autoencoder")
def autoencoder(in_channels=3, ndf=64, n_down=3, norm="none", energy="mse"):
    """Convolutional autoencoder D returning per-sample reconstruction energies."""
    return ConvAutoencoder(in_channels, ndf=ndf, n_down=n_down, norm=norm, energy=energy)
