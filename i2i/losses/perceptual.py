"""VGG19 perceptual loss (Johnson et al. 2016, "Perceptual Losses for Real-Time Style Transfer").

``PerceptualLoss()(output, target)`` is the distance (L1 by default, or MSE) between the
VGG19 (Simonyan & Zisserman 2015) features of two image batches, summed over the chosen
layers (each term a mean over its elements, optionally weighted).  The default compares the
``pool4`` features, as DehazeGAN does.

Inputs are images in [-1, 1] (``B x C x H x W``, C = 1 is repeated to RGB), fed at their
own resolution.  They are turned into what torchvision's ImageNet weights were trained on:
RGB in [0, 1], then normalized with the ImageNet mean and standard deviation.  (The
DehazeGAN reference fed its VGG images in [-1, 1] where [0, 1] was expected, in OpenCV's
BGR order, resized to 224 x 224; features of out-of-range, channel-swapped inputs are not
the ones the network learned, so we do not reproduce that.)

The VGG is a fixed measuring device, not part of the model that uses the loss:

* it is frozen (``requires_grad`` False) and always in eval mode (``train()`` is a no-op);
* it is held outside the registered submodules, so it is in no ``state_dict`` (never in a
  checkpoint), in no ``parameters()`` (never in an optimizer) and in no ``buffers()``
  (never broadcast between processes); ``.to(device)`` / ``.cuda()`` still move it, and it
  stays float32 whatever dtype the owning model is cast to;
* it runs in float32 with autocast disabled, so the loss is the same under mixed precision.

Weights: torchvision's ImageNet file ``vgg19-dcbb9e9d.pth``, found or fetched on first use by
:func:`i2i.pretrained.locate` (the file given as ``weights=PATH``, ``$I2I_VGG_WEIGHTS``, the torch hub
cache, then a checked download; :class:`~i2i.errors.WeightsError` says which file to put where when
there is none).  ``weights="random"`` builds a randomly initialized VGG (tests).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..pretrained import VGG19, load_prefixed, load_state_dict, locate

WEIGHTS_ENV = VGG19.env
WEIGHTS_FILE = VGG19.filename
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_BLOCKS = (2, 2, 4, 4, 4)  # conv layers per VGG19 stage (configuration "E")


def _layer_names() -> list[str]:
    """Names of ``torchvision.models.vgg19().features`` entries, by index (conv1_1, relu1_1, ..., pool5)."""
    names = []
    for stage, n in enumerate(_BLOCKS, 1):
        for k in range(1, n + 1):
            names += [f"conv{stage}_{k}", f"relu{stage}_{k}"]
        names.append(f"pool{stage}")
    return names


LAYER_NAMES: tuple[str, ...] = tuple(_layer_names())


def layer_index(layer: str | int) -> int:
    """Index in ``vgg19().features`` of a layer given by name (``relu3_1``, ``pool4``) or index."""
    if isinstance(layer, int) and not isinstance(layer, bool):
        if not 0 <= layer < len(LAYER_NAMES):
            raise ValueError(f"VGG19 layer index {layer} is out of range 0..{len(LAYER_NAMES) - 1}")
        return layer
    if isinstance(layer, str) and layer in LAYER_NAMES:
        return LAYER_NAMES.index(layer)
    raise ValueError(f"unknown VGG19 layer {layer!r}; use an index 0..{len(LAYER_NAMES) - 1} "
                     f"or a name conv1_1, relu1_1, ..., pool1, ..., relu5_4, pool5")


def find_vgg_weights(path: str | Path | None = None) -> Path:
    """Path of the VGG19 ImageNet weights file, downloaded if need be; ``WeightsError`` (one line) if there is none."""
    return locate(VGG19, path, source="weights")


def vgg19_features(depth: int = len(LAYER_NAMES)) -> nn.Sequential:
    """The first ``depth`` entries of VGG19's convolutional part, laid out (and so keyed) as
    ``torchvision.models.vgg19().features``; ReLUs are not in-place (conv outputs can be tapped)."""
    # built and initialized (torchvision's initialization, for weights="random") from an RNG of its own: building
    # the loss (lazily, at a translator's first step) leaves the global RNG as it was, so a resumed run draws what
    # an uninterrupted one draws, and the random network is the same in every run
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layers: list[nn.Module] = []
        ch = 3
        for n, width in zip(_BLOCKS, (64, 128, 256, 512, 512)):
            for _ in range(n):
                layers += [nn.Conv2d(ch, width, 3, padding=1), nn.ReLU()]
                ch = width
            layers.append(nn.MaxPool2d(2, 2))
        net = nn.Sequential(*layers[:depth])
        for m in net:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
    return net


class VGGFeatures(nn.Module):
    """ImageNet-normalized VGG19 features up to the deepest requested layer, returning each layer's output."""

    def __init__(self, indices: Sequence[int], weights: str | Path | None = None) -> None:
        super().__init__()
        self.indices = sorted(set(indices))
        self.features = vgg19_features(self.indices[-1] + 1)
        if weights != "random":
            path = find_vgg_weights(weights)
            load_prefixed(self.features, load_state_dict(path, VGG19.title), "features.", path,
                          "a torchvision VGG19 state dict")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    def forward(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        x = ((images + 1) / 2 - self.mean) / self.std
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.indices:
                out[i] = x
        return out


class PerceptualLoss(nn.Module):
    """Sum over ``layers`` of ``layer_weight * criterion(VGG(output), VGG(target))``, in float32.

    Args:
        layers: VGG19 layers compared, by name (``relu1_1`` .. ``relu5_4``, ``conv*``,
            ``pool1`` .. ``pool5``) or index in ``torchvision.models.vgg19().features``.
        criterion: ``"l1"`` (mean absolute difference) or ``"mse"``.
        weights: ``None`` (look up torchvision's file, see the module doc), a file path,
            or ``"random"``.
        layer_weights: one multiplier per layer (default 1 each).
    """

    def __init__(
        self,
        layers: Sequence[str | int] = ("pool4",),
        criterion: str = "l1",
        weights: str | Path | None = None,
        layer_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(layers, (str, int)):
            layers = [layers]
        if not layers:
            raise ValueError("layers: give at least one VGG19 layer")
        if criterion not in ("l1", "mse"):
            raise ValueError(f"criterion must be 'l1' or 'mse', got {criterion!r}")
        layer_weights = [1.0] * len(layers) if layer_weights is None else [float(w) for w in layer_weights]
        if len(layer_weights) != len(layers):
            raise ValueError(f"layer_weights has {len(layer_weights)} entries for {len(layers)} layers")
        self.layers = [LAYER_NAMES[layer_index(layer)] for layer in layers]
        self.indices = [layer_index(layer) for layer in layers]
        self.layer_weights = layer_weights
        self.criterion = criterion
        # a plain attribute, not a submodule: out of state_dict, parameters(), buffers(), train()
        object.__setattr__(self, "_vgg", VGGFeatures(self.indices, weights))
        self.training = False

    @property
    def vgg(self) -> VGGFeatures:
        return self._vgg

    @property
    def device(self) -> torch.device:
        return self._vgg.mean.device

    def train(self, mode: bool = True) -> "PerceptualLoss":
        """Stays in eval mode: the VGG's behaviour never depends on the owner's mode."""
        self.training = False
        self._vgg.eval()
        return self

    def _apply(self, fn, recurse: bool = True):
        # follow .to() / .cuda() / .cpu() with the VGG, but keep it float32
        super()._apply(fn, recurse)
        probe = fn(torch.zeros(1, device=self.device))
        if probe.device != self.device:
            self._vgg.to(probe.device)
        return self

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Float32 features of images in [-1, 1], by layer name."""
        with torch.autocast(device_type=images.device.type, enabled=False):
            feats = self._vgg(images.float())
        return {LAYER_NAMES[i]: f for i, f in feats.items()}

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if output.shape[0] != target.shape[0] or output.shape[2:] != target.shape[2:]:
            raise ValueError(f"perceptual loss: output {tuple(output.shape)} and target "
                             f"{tuple(target.shape)} differ in batch or image size")
        out_feats = self.features(output)
        with torch.set_grad_enabled(torch.is_grad_enabled() and target.requires_grad):
            target_feats = self.features(target)
        distance = F.l1_loss if self.criterion == "l1" else F.mse_loss
        total = output.new_zeros((), dtype=torch.float32)
        for name, w in zip(self.layers, self.layer_weights):
            total = total + w * distance(out_feats[name], target_feats[name])
        return total

    def extra_repr(self) -> str:
        return f"layers={self.layers}, criterion={self.criterion!r}, layer_weights={self.layer_weights}"
