"""Inference: a trained generator as a callable on images of any size."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import describe, load_weights, open_checkpoint
from .config import Config
from .configure import config_of_checkpoint
from .deploy import is_folder, load_folder
from .errors import CheckpointError
from .models import build_model
from .reference import is_reference_file, translator_parts
from .runtime import select_device


def pad_to_multiple(x: torch.Tensor, multiple: int, minimum: int = 1) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad H and W (bottom/right) up to a multiple, and to at least ``minimum``; reflect where possible,
    else replicate."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    ph, pw = max(ph, minimum - h + (-minimum) % multiple), max(pw, minimum - w + (-minimum) % multiple)
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def check_tensor(x: torch.Tensor, channels: int) -> None:
    """ValueError unless ``x`` is a float ``C x H x W`` or ``B x C x H x W`` tensor with ``channels`` channels."""
    if not x.is_floating_point():
        raise ValueError(f"image: expected a float tensor in [-1, 1], got dtype {x.dtype}")
    if x.dim() not in (3, 4):
        raise ValueError(f"image: expected a C x H x W or B x C x H x W tensor, got shape {tuple(x.shape)}")
    if x.shape[-3] != channels:
        raise ValueError(f"image: the generator takes {channels} channels, got {x.shape[-3]} (shape {tuple(x.shape)})")
    if x.numel() == 0:
        raise ValueError(f"image: empty tensor (shape {tuple(x.shape)})")


def pil_array(image) -> np.ndarray:
    """A PIL image as a uint8 (or, 16-bit gray, uint16) array: palettes, CMYK, YCbCr... converted to RGB,
    gray with or without alpha to L."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):  # 16-bit gray (PNG opens as I or I;16)
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
    if image.mode == "F":
        raise ValueError("image: a PIL image of mode F (float) has no fixed scale; convert it to L, RGB or I;16")
    return np.asarray(image.convert("L" if image.getbands() in (("1",), ("L",), ("L", "A")) else "RGB"))


def uint8_array(image) -> np.ndarray:
    """A uint8 or uint16 ``H x W``, ``H x W x 1|3`` or ``H x W x 2|4`` (alpha dropped) array -> uint8 ``H x W x C``;
    ValueError naming the dtype or shape otherwise."""
    array = np.asarray(image)
    if array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"image: expected a uint8 or uint16 array, got dtype {array.dtype} "
                         f"(floats in [0, 1]: (x * 255).round().astype(np.uint8))")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"image: expected H x W or H x W x C with C = 1, 2 (gray, alpha), 3 or 4 (RGBA), "
                         f"got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"image: empty array (shape {array.shape})")
    from .data.io import to_uint8

    return to_uint8(array[:, :, :3] if array.shape[2] == 4 else array[:, :, :1] if array.shape[2] == 2 else array)


class Translator:
    """Maps an image to its translation with one of a checkpoint's generators.

    Accepts a numpy uint8 or uint16 array (H x W or H x W x C; an alpha channel is
    dropped), a PIL image of any mode but F, or a float tensor in [-1, 1] (C x H x W
    or B x C x H x W) and returns the same kind (a tensor on the input's device and
    of its dtype); anything else is a ValueError naming the dtype or shape.
    Inputs of any size are padded to the generator's size multiple and the
    output is cropped back.  A checkpoint trained with ``train.ema`` is used
    with its averaged weights unless ``weights="raw"``.  A model trained with
    ``train.channels_last`` runs in that layout here too (the layout it was measured faster in).
    """

    checkpoint = ""  #: the checkpoint file the weights come from, with its step
    weights = "raw"  #: which weights it runs: "ema" (averaged during training) or "raw"

    def __init__(self, model, cfg: Config, device: torch.device) -> None:
        self.model, self.cfg, self.device = model.eval(), cfg, device
        self.memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device | None = None,
                        weights: str = "ema", imports=(), trust_imports: bool = False,
                        arch: str | None = None) -> "Translator":
        """A checkpoint file, a run folder (its best.pt, else its newest checkpoint), a folder written by
        ``i2i-export --format safetensors`` (:mod:`i2i.deploy`) or a generator file ``*.pth`` of the reference
        repositories (:mod:`i2i.reference`; ``arch`` where its keys do not tell its architecture).
        ``imports``: the modules the checkpoint's saved ``imports:`` may import (all with
        ``trust_imports``); a checkpoint asking for others is an :class:`UntrustedCodeError`."""
        from .errors import ConfigError

        if weights not in ("ema", "raw"):
            raise ConfigError(f"weights: {weights!r} is not one of ema, raw")
        device = select_device(str(device) if device else "auto", key="device")
        if is_folder(path):  # written by i2i-export --format safetensors
            cfg, model, source, kind = load_folder(path, weights, imports=imports, trust_imports=trust_imports)
            translator = cls(model.to(device), cfg, device)
            translator.checkpoint, translator.weights = source, kind
            return translator
        if arch and not is_reference_file(path):
            raise ConfigError(f"--arch {arch}: only for a reference repository's .pth file, not {path}")
        if is_reference_file(path):
            cfg, model, source = translator_parts(path, arch)
            print(f"note: {source}", file=sys.stderr)
            translator = cls(model.to(device), cfg, device)
            translator.checkpoint = source
            return translator
        path, state = open_checkpoint(path, prefer_best=True)
        try:
            cfg = config_of_checkpoint(state, check_paths=False, imports=imports, trust_imports=trust_imports,
                                       source=str(path))
        except ConfigError as exc:  # the file's fault, not the command line's
            raise CheckpointError(f"{path}: the config saved in it is not valid: {exc}") from None
        model = build_model(cfg)
        values = dict(state["model"])
        if weights == "ema" and state.get("ema"):
            values.update(state["ema"])
        try:
            load_weights(model, values, f"the {cfg.model.name} model its config builds")
        except CheckpointError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        translator = cls(model.to(device), cfg, device)
        translator.checkpoint = describe(path, state)  # which file: a run folder gives its best.pt, else its newest
        translator.weights = "ema" if weights == "ema" and state.get("ema") else "raw"
        return translator

    def channels(self, direction: str = "AtoB") -> tuple[int, int]:
        return self.model.channels(direction)

    def translation_report(self) -> dict[str, float]:
        """The model's measures of the last translation (:meth:`i2i.models.Model.translation_report`)."""
        return self.model.translation_report()

    @torch.no_grad()
    def translate_tensor(self, x: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """B x C x H x W in [-1, 1] -> B x C' x H x W in [-1, 1]."""
        x, (h, w) = pad_to_multiple(x.to(self.device, torch.float32), self.model.size_multiple(direction),
                                    self.model.min_size(direction))
        out = self.model.translate(x.contiguous(memory_format=self.memory_format), direction)
        return out[..., :h, :w].clamp(-1, 1).contiguous()

    def __call__(self, image, direction: str = "AtoB"):
        from .data.io import image_to_tensor, tensor_to_image, to_channels

        if torch.is_tensor(image):
            check_tensor(image, self.channels(direction)[0])
            batched = image.dim() == 4
            out = self.translate_tensor(image if batched else image.unsqueeze(0), direction)
            return (out if batched else out[0]).to(image.device, image.dtype)
        is_pil = type(image).__module__.startswith("PIL")
        array = uint8_array(pil_array(image) if is_pil else image)
        array = to_channels(array, self.channels(direction)[0])
        out = tensor_to_image(self.translate_tensor(image_to_tensor(array)[None], direction)[0])
        if is_pil:
            from PIL import Image

            return Image.fromarray(out[:, :, 0] if out.shape[2] == 1 else out)
        return out
