"""LPIPS, the learned perceptual image patch similarity (Zhang et al. 2018, "The Unreasonable Effectiveness of
Deep Features as a Perceptual Metric"), version 0.1: metrics ``lpips`` (AlexNet) and ``lpips_vgg`` (VGG16).

For images x, y in [-1, 1]: each is shifted and scaled per channel (the v0.1 constants), run through the
backbone's convolutional part, and at five ReLU outputs the features are normalized to unit length along the
channels; the squared difference of the two goes through that layer's learned 1 x 1 convolution (non-negative
weights, no bias) and is averaged over the positions; the distance is the sum over the five layers (0: the
same image; lower is more similar).  Images are quantized to 8 bits first, as the other paired metrics do.

Weights (see :mod:`i2i.pretrained`, fetched and checked on first use): torchvision's ImageNet backbone
(``alexnet-owt-7be5be79.pth`` or ``vgg16-397923af.pth``) and the published linear layers of the ``lpips``
package (its ``weights/v0.1/alex.pth`` or ``vgg.pth``).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import DataError
from ..pretrained import ALEXNET, LPIPS_ALEX, LPIPS_VGG, VGG16, load_prefixed, load_state_dict, locate
from ..registry import METRICS
from .accumulators import _PerImage

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
#: backbone -> (torchvision builder name, ends of the five slices in ``features``, their channels, files)
NETS = {
    "alex": ("alexnet", (2, 5, 8, 10, 12), (64, 192, 384, 256, 256), ALEXNET, LPIPS_ALEX),
    "vgg": ("vgg16", (4, 9, 16, 23, 30), (64, 128, 256, 512, 512), VGG16, LPIPS_VGG),
}
MIN_SIZE = {"alex": 31, "vgg": 16}  #: the smallest height and width the backbone's pooling takes


def _backbone(builder: str, depth: int) -> nn.Sequential:
    """torchvision's ``features`` of ``builder`` up to ``depth`` (built alone: no classifier initialized), ReLUs
    not in place, convolutions initialized as torchvision's VGG does, from an RNG of their own."""
    import torchvision

    with torch.device("meta"):
        features = getattr(torchvision.models, builder)(weights=None).features[:depth]
    features = features.to_empty(device="cpu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for m in features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.ReLU):
                m.inplace = False
    return features


class LPIPS(nn.Module):
    """``LPIPS(net)(x, y)``: the distance of each pair of ``B x C x H x W`` images in [-1, 1] (``B`` values).

    ``backbone`` / ``linear``: weight files (default: looked up or downloaded, see the module doc), or
    ``"random"`` (tests; the linear layers then get random non-negative weights).
    """

    def __init__(self, net: str = "alex", backbone: str | Path | None = None, linear: str | Path | None = None):
        super().__init__()
        if net not in NETS:
            raise ValueError(f"LPIPS net must be one of {', '.join(NETS)}, got {net!r}")
        builder, ends, channels, backbone_file, linear_file = NETS[net]
        # both files found (or fetched) before anything is built: a missing one is said at once
        backbone_path = None if backbone == "random" else locate(backbone_file, backbone)
        linear_path = None if linear == "random" else locate(linear_file, linear)
        self.net, self.ends = net, ends
        self.features = _backbone(builder, ends[-1])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels)
            for lin in self.lins:
                nn.init.uniform_(lin.weight, 0.0, 0.1)  # non-negative, as trained ones are
        if backbone_path is not None:
            load_prefixed(self.features, load_state_dict(backbone_path, backbone_file.title), "features.",
                          backbone_path, f"a torchvision {builder} state dict")
        if linear_path is not None:
            state = load_state_dict(linear_path, linear_file.title)
            for i, lin in enumerate(self.lins):
                load_prefixed(lin, state, f"lin{i}.model.1.", linear_path, f"the LPIPS v0.1 {net} linear layers")
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    def layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five ReLU outputs for images in [-1, 1], each normalized to unit length along the channels."""
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = (x - self.shift) / self.scale
        out, start = [], 0
        for end in self.ends:
            for layer in self.features[start:end]:
                x = layer(x)
            out.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
            start = end
        return out

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < MIN_SIZE[self.net]:
            raise DataError(f"LPIPS ({self.net}) needs images of at least {MIN_SIZE[self.net]} x "
                            f"{MIN_SIZE[self.net]} pixels, got {x.shape[-2]} x {x.shape[-1]}")
        with torch.autocast(device_type=x.device.type, enabled=False):
            fx, fy = self.layers(x.float()), self.layers(y.float())
            return sum(lin((a - b) ** 2).mean(dim=(2, 3)) for lin, a, b in zip(self.lins, fx, fy)).flatten()


class _LPIPSMetric(_PerImage):
    """Mean LPIPS over image pairs (and each pair's, for results pages); the network follows the images' device."""

    net, key = "alex", "lpips"

    def __init__(self, backbone: str | None = None, linear: str | None = None) -> None:
        self.model = LPIPS(self.net, backbone, linear)  # the weights at construction: a missing file before any image
        super().__init__()

    def score(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Images on the 0..255 scale (8-bit values, as the other paired metrics take them)."""
        if self.model.shift.device != pred.device:
            self.model.to(pred.device)
        return self.model(pred.float() / 127.5 - 1, target.float() / 127.5 - 1).double()


@METRICS.register("lpips")
class LPIPSAlex(_LPIPSMetric):
    OUTPUTS = {"lpips": False}


@METRICS.register("lpips_vgg")
class LPIPSVGG(_LPIPSMetric):
    OUTPUTS = {"lpips_vgg": False}
    net, key = "vgg", "lpips_vgg"
