"""The registered metrics: accumulators fed one :class:`Batch` per update.

A metric class lists its output keys in ``OUTPUTS`` (key -> higher is better), says in
``TARGET`` what it needs of the targets (``"paired"``: the partner of each pred,
``"set"``: a reference set, ``"none"``), and has ``update(batch)``, ``compute() -> dict``
and ``reset(keep_reference)``; ``"set"`` metrics also have ``update_reference(batch)``.
For evaluation split over processes a metric also has ``shard_state()`` (what it holds,
picklable) and ``load_shards(states)`` (the states of all processes, in rank order,
where process r scored items r, r + n, r + 2n... of the set; see :func:`interleave`).
Metrics that have a value per image (psnr, ssim, seg) return those of the batch from
``update`` as ``{output key: tensor of N values}``; the others return ``None``.
A :class:`Batch` hands the metrics shared, lazily computed views of one update
(uint8-scale pixels, features), so the feature extractor runs once per image even
when fid, kid and is are all asked.

PSNR/SSIM/seg are computed on the uint8 quantisation (``round((x + 1) * 127.5)``, as if
saved to PNG) with data range 255.
"""
from __future__ import annotations

from functools import cached_property
from collections.abc import Callable
from typing import Any

import torch

from ..errors import ConfigError
from ..registry import METRICS
from . import fid as fidmath
from .image import psnr_per_image, quantize, ssim_per_image
from .segmentation import colors_to_labels, confusion_matrix, scores_from_confusion

FeatureExtractor = Callable[[torch.Tensor], Any]


class Batch:
    """One update's images and their cached derived views."""

    def __init__(self, pred: torch.Tensor, target: torch.Tensor | None, extractor: FeatureExtractor | None) -> None:
        self.pred, self.target, self.extractor = pred, target, extractor

    @staticmethod
    def _float64(t: torch.Tensor) -> torch.Tensor:
        return (t.cpu() if t.device.type == "mps" else t).to(torch.float64)  # MPS has no float64

    @cached_property
    def pred255(self) -> torch.Tensor:
        return self._float64(quantize(self.pred))

    @cached_property
    def target255(self) -> torch.Tensor:
        return self._float64(quantize(self.require_target("this metric")))

    def require_target(self, name: str) -> torch.Tensor:
        if self.target is None:
            raise ConfigError(f"metric {name!r} needs target images (got none)")
        return self.target

    def _features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.extractor is None:
            raise ConfigError("no feature extractor for the Inception metrics")
        with torch.no_grad():
            out = self.extractor(images)
        feats, logits = (out[0], out[1]) if isinstance(out, (tuple, list)) else (out, None)
        return feats.detach().float().flatten(1).cpu(), None if logits is None else logits.detach().float().cpu()

    @cached_property
    def pred_features(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self._features(self.pred)

    @cached_property
    def target_features(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self._features(self.require_target("fid/kid"))


def _cat(parts: list[torch.Tensor]) -> torch.Tensor | None:
    return torch.cat(parts) if parts else None


def interleave(shards: list[torch.Tensor | None]) -> list[torch.Tensor]:
    """Rows of the whole set in its order, from ``shards[r]`` holding rows r, r + n, r + 2n... (n = len(shards))."""
    parts = [s for s in shards if s is not None and len(s)]
    if not parts:
        return []
    total, n = sum(len(p) for p in parts), len(shards)
    if [0 if s is None else len(s) for s in shards] != [len(range(r, total, n)) for r in range(n)]:
        raise ValueError(f"shards of {[0 if s is None else len(s) for s in shards]} rows are not a split of "
                         f"{total} rows into every {n}-th")
    out = parts[0].new_empty((total, *parts[0].shape[1:]))
    for r, shard in enumerate(shards):
        if shard is not None and len(shard):
            out[r::n] = shard
    return [out]


# --------------------------------------------------------------------------- feature metrics
class _FeatureDistance:
    """Collects pred features and reference (target) features."""

    needs_features = True
    TARGET = "set"

    def __init__(self) -> None:
        self.reset()

    def reset(self, keep_reference: bool = False) -> None:
        self.pred: list[torch.Tensor] = []
        if not (keep_reference and getattr(self, "ref", None)):
            self.ref: list[torch.Tensor] = []
            self.frozen = False
        else:
            self.frozen = True

    def update(self, batch: Batch) -> None:
        self.pred.append(batch.pred_features[0])
        if batch.target is not None:
            self.update_reference(batch)

    def update_reference(self, batch: Batch) -> None:
        if not self.frozen:
            self.ref.append(batch.target_features[0])

    def shard_state(self) -> dict:
        return {"pred": _cat(self.pred), "ref": _cat(self.ref)}

    def load_shards(self, states: list[dict]) -> None:
        self.pred = interleave([s["pred"] for s in states])
        self.ref = interleave([s["ref"] for s in states])

    def _sets(self, name: str):
        if not self.pred or not self.ref:
            raise ConfigError(f"metric {name!r} needs generated and reference images (got {len(self.pred)} and {len(self.ref)} batches)")
        return torch.cat(self.pred).double().numpy(), torch.cat(self.ref).double().numpy()


@METRICS.register("fid")
class FID(_FeatureDistance):
    OUTPUTS = {"fid": False}

    def __init__(self, eps: float = 1e-6) -> None:
        self.eps = eps
        super().__init__()

    def compute(self) -> dict[str, float]:
        return {"fid": fidmath.fid_from_features(*self._sets("fid"), eps=self.eps)}


@METRICS.register("kid")
class KID(_FeatureDistance):
    OUTPUTS = {"kid": False, "kid_std": False}

    def __init__(self, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
                 gamma: float | None = None, coef0: float = 1.0, seed: int = 2020) -> None:
        self.kw = {"subsets": subsets, "subset_size": subset_size, "degree": degree, "gamma": gamma,
                   "coef0": coef0, "seed": seed}
        super().__init__()

    def compute(self) -> dict[str, float]:
        mean, std = fidmath.kid(*self._sets("kid"), **self.kw)
        return {"kid": mean, "kid_std": std}


@METRICS.register("is")
class InceptionScore:
    """IS of the predictions; fewer images than ``splits`` -> one split per image."""

    OUTPUTS = {"is": True, "is_std": False}
    needs_features = True
    TARGET = "none"

    def __init__(self, splits: int = 10) -> None:
        self.splits = splits
        self.reset()

    def reset(self, keep_reference: bool = False) -> None:
        self.logits: list[torch.Tensor] = []

    def update(self, batch: Batch) -> None:
        logits = batch.pred_features[1]
        if logits is None:
            raise ConfigError("metric 'is' needs a feature extractor that returns (features, logits)")
        self.logits.append(logits)

    def shard_state(self) -> dict:
        return {"logits": _cat(self.logits)}

    def load_shards(self, states: list[dict]) -> None:
        self.logits = interleave([s["logits"] for s in states])

    def compute(self) -> dict[str, float]:
        if not self.logits:
            raise ConfigError("metric 'is' has no images")
        probs = fidmath.softmax64(torch.cat(self.logits))
        mean, std = fidmath.inception_score(probs, splits=min(self.splits, len(probs)))
        return {"is": mean, "is_std": std}


# --------------------------------------------------------------------------- paired metrics
class _PerImage:
    """Mean over images of a per-image full-reference score on the 0..255 scale."""

    needs_features = False
    TARGET = "paired"
    key = ""
    y_channel = False

    def __init__(self) -> None:
        self.reset()

    def reset(self, keep_reference: bool = False) -> None:
        self.values: list[torch.Tensor] = []

    def score(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        batch.require_target(self.key)
        values = self.score(batch.pred255, batch.target255).cpu()
        self.values.append(values)
        return {self.key: values}

    def shard_state(self) -> dict:
        return {"values": _cat(self.values)}

    def load_shards(self, states: list[dict]) -> None:
        self.values = interleave([s["values"] for s in states])

    def compute(self) -> dict[str, float]:
        if not self.values:
            raise ConfigError(f"metric {self.key!r} has no images")
        return {self.key: float(torch.cat(self.values).mean())}


@METRICS.register("psnr")
class PSNR(_PerImage):
    OUTPUTS = {"psnr": True}
    key = "psnr"

    def score(self, pred, target):
        return psnr_per_image(pred, target, data_range=255.0, y_channel=self.y_channel)


@METRICS.register("ssim")
class SSIM(_PerImage):
    OUTPUTS = {"ssim": True}
    key = "ssim"

    def score(self, pred, target):
        return ssim_per_image(pred, target, data_range=255.0, y_channel=self.y_channel)


@METRICS.register("psnr_y")
class PSNRY(PSNR):
    OUTPUTS = {"psnr_y": True}
    key, y_channel = "psnr_y", True


@METRICS.register("ssim_y")
class SSIMY(SSIM):
    OUTPUTS = {"ssim_y": True}
    key, y_channel = "ssim_y", True


@METRICS.register("seg")
class SegAccuracy:
    """Segmentation scores of colour label renderings against label maps or colour targets.

    ``target`` may be an integer tensor of class indices (``B x H x W`` or ``B x 1 x H x W``)
    or float colour images in [-1, 1], mapped through the palette like ``pred``.
    """

    OUTPUTS = {"seg_pixel_acc": True, "seg_class_acc": True, "seg_miou": True}
    needs_features = False
    TARGET = "paired"

    def __init__(self, palette=None, num_classes: int | None = None, ignore_index: int | None = None) -> None:
        if palette is None:
            raise ConfigError("metric 'seg' needs a palette (index -> RGB colour), e.g. --palette palette.txt")
        self.palette = palette
        indices = list(palette) if hasattr(palette, "keys") else range(len(palette))
        self.num_classes = num_classes or max(indices) + 1
        self.ignore_index = ignore_index
        self.reset()

    def reset(self, keep_reference: bool = False) -> None:
        self.hist = 0

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Adds the batch to the set's confusion matrix; returns each image's own scores."""
        target = batch.require_target("seg")
        if target.dtype.is_floating_point:
            gt = colors_to_labels(batch.target255, self.palette)
        else:
            gt = target[:, 0] if target.dim() == 4 else target
        pred = colors_to_labels(batch.pred255, self.palette)
        hists = [confusion_matrix(p, g, self.num_classes, self.ignore_index) for p, g in zip(pred, gt)]
        self.hist = self.hist + sum(hists)
        per_image = [scores_from_confusion(h) for h in hists]
        return {f"seg_{k}": torch.tensor([s[k] for s in per_image], dtype=torch.float64) for k in per_image[0]}

    def shard_state(self) -> dict:
        return {"hist": self.hist}

    def load_shards(self, states: list[dict]) -> None:
        self.hist = sum((s["hist"] for s in states), 0)

    def compute(self) -> dict[str, float]:
        return {f"seg_{k}": v for k, v in scores_from_confusion(self.hist).items()}
