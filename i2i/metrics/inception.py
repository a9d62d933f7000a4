"""The FID Inception-v3 feature extractor (TF ``inception-2015-12-05`` weights).

The network comes from ``torch-fidelity`` (its ``FeatureExtractorInceptionV3``
replicates the TF graph: 1008-way ``fc``, ``count_include_pad=False`` average pools,
max-pool in the last block).  Pre-processing, fixed for every number we report:

* input: float tensors ``B x C x H x W`` in [-1, 1] (C = 1 is repeated to RGB);
* quantised to uint8: ``round((x + 1) * 127.5)`` clamped to 0..255, as if saved to PNG;
* resized to 299 x 299 with TF1 legacy bilinear (``align_corners=False``, no
  half-pixel offset) and normalised as ``(x - 128) / 128``, inside the network.

Outputs: ``pool_3`` features (``B x 2048``, for FID/KID) and the bias-free logits
``pool_3 . W^T`` (``B x 1008``, for IS), both float32.

Weights: the file ``weights-inception-2015-12-05-6726825d.pth``, found or fetched on first use by
:func:`i2i.pretrained.locate` (the file given as argument, ``--inception-weights``, then
``$I2I_INCEPTION_WEIGHTS``, the torch hub cache where torch-fidelity, torchmetrics and pytorch-fid
keep the same file, then a checked download); otherwise :class:`WeightsError`.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import WeightsError
from ..pretrained import INCEPTION, load_state_dict, locate
from .image import quantize

WEIGHTS_ENV = INCEPTION.env
WEIGHTS_FILES = (INCEPTION.filename, *INCEPTION.aliases)


def find_inception_weights(path: str | Path | None = None) -> Path:
    """Path of the FID Inception weights file, downloaded if need be; ``WeightsError`` (one line) if there is none."""
    return locate(INCEPTION, path, source="--inception-weights")


def _network_class():
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise WeightsError("the FID Inception network needs the package torch-fidelity: pip install torch-fidelity") from None
    return FeatureExtractorInceptionV3


class InceptionFeatures(nn.Module):
    """Callable ``images in [-1, 1] -> (pool_3 features, bias-free logits)``."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        feats, logits = self.network(quantize(images))
        return feats, logits


def load_inception(weights: str | Path | None = None, device: str | torch.device = "cpu") -> InceptionFeatures:
    """Build the FID Inception-v3 and load its weights (see :func:`find_inception_weights`)."""
    path = find_inception_weights(weights)
    net_cls = _network_class()
    state = load_state_dict(path, INCEPTION.title)  # a safe load first: a clear error for a wrong or corrupt file
    if "Mixed_7c.branch_pool.conv.weight" not in state or "fc.weight" not in state:
        raise WeightsError(f"{path} is not an FID Inception-v3 state dict (expected keys like 'Mixed_7c.*', 'fc.weight')")
    try:
        network = net_cls("inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path))
    except (RuntimeError, ValueError) as exc:
        raise WeightsError(f"{path} does not fit the FID Inception-v3: {str(exc).splitlines()[0]}") from None
    return InceptionFeatures(network).to(device)
