"""In-memory metric accumulation: ``MetricSuite(['fid', 'psnr']).update(pred, target)``.

The metrics themselves are classes registered in :data:`i2i.registry.METRICS`
(see :mod:`i2i.metrics.accumulators`).  Images are float tensors ``B x C x H x W`` in
[-1, 1].  FID/KID compare pred features with target (reference) features.
"""
from __future__ import annotations

import copy
import difflib

import torch

from ..errors import ConfigError
from ..registry import METRICS, RegistryError
from .accumulators import Batch, FeatureExtractor


def _outputs() -> dict[str, bool]:
    table: dict[str, bool] = {}
    for name in METRICS.names():
        table.update(getattr(METRICS.get(name), "OUTPUTS", {}))
    return table


def higher_is_better(name: str) -> bool:
    """Whether a larger value of output ``name`` (e.g. 'fid', 'seg_miou') is better."""
    table = _outputs()
    if name not in table:
        close = difflib.get_close_matches(name, list(table), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown metric output {name!r}{hint}; known: {', '.join(sorted(table))}")
    return table[name]


def check_metric_names(names: list[str], path: str = "eval.metrics", best: str = "") -> None:
    """One-line ConfigError for an unknown metric (or an unknown ``best`` output)."""
    for i, name in enumerate(names):
        if name not in METRICS:
            raise ConfigError(f"{path}[{i}]: {METRICS._unknown(name)}")
    if best:
        try:
            higher_is_better(best)
        except ConfigError as exc:
            raise ConfigError(f"{path.rsplit('.', 1)[0]}.best: {exc}") from None


class MetricSuite:
    """Accumulates the metrics ``names`` over ``update`` calls; ``compute`` returns name -> value.

    ``opts`` holds per-metric keyword options, e.g. ``kid={'subset_size': 100}``.
    ``feature_extractor``: any callable ``images in [-1, 1] (B x 3 x H x W) -> features``
    or ``(features, logits)``; default: the FID Inception-v3 (``inception_weights`` file,
    else ``$I2I_INCEPTION_WEIGHTS``, else the torch hub cache).
    """

    def __init__(self, names: list[str], device: str | torch.device = "cpu", feature_extractor: FeatureExtractor | None = None,
                 palette=None, inception_weights: str | None = None, **opts: dict) -> None:
        self.names = list(dict.fromkeys(names))
        if not self.names:
            raise ConfigError("no metrics selected")
        for key in opts:
            if key not in self.names:
                raise ConfigError(f"options given for metric {key!r}, which is not selected ({', '.join(self.names)})")
        self.device = torch.device(device)
        self.metrics = {name: self._build(name, palette, dict(opts.get(name) or {})) for name in self.names}
        if feature_extractor is None and any(m.needs_features for m in self.metrics.values()):
            from .inception import load_inception

            feature_extractor = load_inception(inception_weights, self.device)
        self.extractor = feature_extractor

    @staticmethod
    def _build(name: str, palette, kwargs: dict):
        try:
            builder = METRICS.get(name)
        except RegistryError as exc:
            raise ConfigError(str(exc)) from None
        params = METRICS.parameters(name)
        if "palette" in params and palette is not None:
            kwargs.setdefault("palette", palette)
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise ConfigError(f"metric {name!r} has no option {unknown[0]!r}; options: {', '.join(params) or 'none'}")
        return builder(**kwargs)

    @property
    def needs_features(self) -> bool:
        return any(m.needs_features for m in self.metrics.values())

    def update(self, pred: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Adds a batch; returns the per-image scores of the metrics that have them ({key: N values})."""
        pred = pred.detach().to(self.device)
        target = None if target is None else target.detach().to(self.device)
        batch = Batch(pred, target, self.extractor)
        per_image: dict[str, torch.Tensor] = {}
        for metric in self.metrics.values():
            per_image.update(metric.update(batch) or {})
        return per_image

    def update_reference(self, target: torch.Tensor) -> None:
        """Add reference images only (for ``"set"`` metrics such as fid/kid)."""
        batch = Batch(None, target.detach().to(self.device), self.extractor)
        for metric in self.metrics.values():
            if getattr(metric, "TARGET", None) == "set":
                metric.update_reference(batch)

    def compute(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for metric in self.metrics.values():
            out.update(metric.compute())
        return out

    def shard_state(self) -> dict:
        """What this process's metrics hold, for :meth:`compute_shards` on any process."""
        return {name: metric.shard_state() for name, metric in self.metrics.items()}

    def compute_shards(self, states: list[dict]) -> dict[str, float]:
        """``compute`` over the images of all processes, from their ``shard_state()`` in rank order
        (process r having scored items r, r + n, r + 2n... of the set); this suite is left as it was."""
        out: dict[str, float] = {}
        for name, metric in self.metrics.items():
            merged = copy.copy(metric)
            merged.load_shards([state[name] for state in states])
            out.update(merged.compute())
        return out

    def check_shardable(self) -> None:
        """One-line ConfigError if a selected metric cannot be computed from several processes' shares."""
        for name, metric in self.metrics.items():
            if not (hasattr(metric, "shard_state") and hasattr(metric, "load_shards")):
                raise ConfigError(f"metric {name!r} has no shard_state/load_shards, so it cannot be computed over "
                                  "several processes; evaluate in one process")

    def reset(self, keep_reference: bool = False) -> None:
        """Forget all images; ``keep_reference=True`` keeps FID/KID reference features (later targets are ignored)."""
        for metric in self.metrics.values():
            metric.reset(keep_reference)
