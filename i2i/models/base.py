"""The translator contract: what a model declares and what one training iteration computes.

A translator is one registered class.  It declares

* ``Settings``: a dataclass (subclass of :class:`~i2i.config.ModelSettings`) of its
  own settings, the ``model:`` section of a config; its defaults are the paper's;
* ``roles``: network role -> registry (``nets:`` holds one section per role);
* ``groups``: its optimizer groups (``optim:`` holds one section per group), and
  ``optim_groups()`` returns the modules of each (a module shared by two networks
  is listed once, so each parameter is stepped by exactly one optimizer);
* ``phases()``: the optimizer phases of an iteration, in order, each naming its
  group, the groups frozen while it runs and its interval;
* ``defaults``: config values (nets, optim, data...) merged under the user's file;

and computes ``generate(batch)`` once per iteration, then ``loss(phase, batch,
out)`` per phase (after ``start_step(generator)``, for random numbers shared by
data-parallel processes).  Inference goes through ``translate(x, direction)`` (or
``sample(n)`` for the ``sample_domains`` of models that generate from noise), which
never changes training state; ``translation_report()`` says how well the last
translation went, where a model can tell (CoGAN's inversion error).  A model whose
settings changed since an older checkpoint format upgrades them in
``upgrade_settings``.  The engine (:mod:`i2i.engine`) does everything else.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import Config, ModelSettings
from ..snapshot import restored


@dataclass(frozen=True)
class Phase:
    """One optimizer step of an iteration."""

    name: str  #: passed to ``model.loss``; prefixes nothing, names the phase in errors
    group: str  #: the optimizer group it steps
    frozen: tuple[str, ...] = ()  #: groups whose parameters get no gradient while it runs
    every: int = 1  #: runs at iterations where ``step % every == 0``
    grad_through_outputs: bool = False  #: backpropagates through ``generate``'s outputs


def preserved_buffers(module: nn.Module) -> contextlib.AbstractContextManager:
    """Restore every buffer of ``module`` (batch-norm running statistics...) on exit."""
    return restored(module.buffers())


class Model(nn.Module):
    """Base of every translator (see the module docstring for the contract)."""

    Settings: type = ModelSettings
    roles: dict = {}
    groups: tuple[str, ...] = ()
    defaults: dict = {}
    #: optimizer group whose modules make the inference networks (averaged by ``train.ema``)
    ema_group: str | None = None
    #: directions ``translate`` accepts (empty: the model samples instead)
    directions: tuple[str, ...] = ("AtoB",)
    #: training batches hold images of both domains, A and B (``data.kind: single`` is refused)
    two_domains: bool = True
    #: ``generator(direction)`` maps images to images (``i2i-export`` writes it as a file)
    exports_images: bool = True
    #: the domains ``sample(n)`` draws one image of each from the same noise (empty: the model does not sample)
    sample_domains: tuple[str, ...] = ()

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.settings = cfg.model

    @classmethod
    def check_config(cls, cfg: Config, check_paths: bool = True) -> None:
        """Checks across sections that only this model knows (one-line ConfigError);
        ``check_paths=False``: a checkpoint's config read for inference (no training files needed)."""

    @classmethod
    def upgrade_settings(cls, fmt: int, model: dict, losses: dict) -> dict:
        """The ``model:`` section of a config saved in the older checkpoint format ``fmt``, in today's form.
        ``losses`` is that config's ``losses:`` section as saved (format 1 kept model weights there).
        Unchanged by default."""
        return model

    # ------------------------------------------------------------------ training
    def optim_groups(self) -> dict[str, list[nn.Module]]:
        raise NotImplementedError

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    def start_step(self, generator: torch.Generator) -> None:
        """Called before each training iteration with a generator seeded from the run seed and the
        step, in the same state on every process (the global RNG is seeded with seed + rank): for
        random numbers that data-parallel processes must agree on, drawn for the global batch."""

    def generate(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """What every phase of the iteration shares (generator outputs), computed once."""
        return {}

    def loss(self, phase: str, batch: dict[str, Any], out: dict[str, torch.Tensor]):
        """``(loss, logs)`` of ``phase``; logs maps names to detached scalar tensors."""
        raise NotImplementedError

    def after_step(self, phase: str, ok: torch.Tensor | None = None) -> None:
        """Called after the optimizer step of ``phase`` (weight clipping...).  ``ok``: a 0-dim bool on the
        device, false when the step was skipped (a non-finite loss or gradient): change nothing then, and decide
        on the device (``torch.where``), never by reading ``ok`` on the host."""

    def visuals(self, batch: dict[str, Any], out: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Images (B x C x H x W in [-1, 1]) shown side by side in sample grids."""
        raise NotImplementedError

    def loss_state(self) -> dict:
        return {}

    def load_loss_state(self, state: dict) -> None:
        pass

    def loss_logs(self) -> dict[str, float]:
        return {}

    # ------------------------------------------------------------------ inference
    def generator(self, direction: str = "AtoB") -> nn.Module:
        raise NotImplementedError

    def check_direction(self, direction: str) -> None:
        if direction not in self.directions:
            if not self.directions:
                raise ValueError(f"{self.settings.name} generates from noise and does not translate")
            raise ValueError(f"{self.settings.name} translates {' and '.join(self.directions)} only, not {direction}")

    def channels(self, direction: str = "AtoB") -> tuple[int, int]:
        """(input, output) channels of a translation in ``direction``."""
        c_a, c_b = self.cfg.data.in_channels, self.cfg.data.out_channels
        return (c_a, c_b) if direction == "AtoB" else (c_b, c_a)

    def size_multiple(self, direction: str = "AtoB") -> int:
        return int(getattr(self.generator(direction), "size_multiple", 1))

    def min_size(self, direction: str = "AtoB") -> int:
        """Smallest H and W the generator takes (its ``min_size`` attribute, else 1); smaller inputs are padded."""
        return int(getattr(self.generator(direction), "min_size", 1))

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """Generator output for ``x``.  With ``model.test_batch_stats`` the generator runs as in
        training (batch statistics of ``x``, dropout on, as the pix2pix paper does), and its running
        statistics are restored afterwards."""
        self.check_direction(direction)
        gen = self.generator(direction)
        was_training = gen.training
        gen.train(self.settings.test_batch_stats)
        try:
            with preserved_buffers(gen):
                return gen(x)
        finally:
            gen.train(was_training)

    def translation_report(self) -> dict[str, float]:
        """Measures of the last ``translate`` call, each a mean over its images, by the name ``i2i-translate``
        prints their mean under (``"reconstruction error ..."``); empty where the model has none to give."""
        return {}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """``n`` images of each of ``sample_domains`` (a list in that order, ``n x C x H x W`` in [-1, 1] each),
        image ``i`` of every domain drawn from the same noise."""
        raise NotImplementedError(f"{self.settings.name} translates images and does not sample from noise")


def scalar_logs(**values: torch.Tensor) -> dict[str, torch.Tensor]:
    """Detached copies of scalar losses, converted to floats only when logged."""
    return {k: v.detach() for k, v in values.items()}
