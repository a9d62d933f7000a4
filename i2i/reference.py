"""Network files of the reference repositories: pytorch-CycleGAN-and-pix2pix and contrastive-unpaired-translation.

Both save each network as a bare state dict: ``latest_net_G.pth`` (pix2pix, CUT), ``latest_net_G_A.pth`` and
``latest_net_G_B.pth`` (CycleGAN), ``latest_net_D*.pth`` (their discriminators).  :func:`open_reference`
reads one with ``torch.load(weights_only=True)`` (no code from the file runs) and finds its architecture
from its keys and shapes:

* ResNet generators (CycleGAN's ``resnet_9blocks``, ``resnet_6blocks``; CUT's anti-aliased ones): the width
  and channels from the 7x7 convs, the number of blocks, anti-aliasing (a stride-1 conv and a blur before
  each downsampling), dropout and zero padding from where the block's convs sit;
* U-Net generators (pix2pix's ``unet_256``, ``unet_128``): the number of levels from the nesting;
* PatchGAN discriminators (``basic``, ``n_layers``) without anti-aliasing;

the norm from the tensors after the first conv: an affine weight is batch norm, a conv bias without one
instance norm, neither no norm.  i2i's networks (:mod:`i2i.nn`) keep the reference's module order, so
:func:`i2i_name` maps a tensor by its own name, and drops what i2i does not keep: the running statistics
that instance norm carried in older versions of pytorch-CycleGAN-and-pix2pix (its loader drops them too)
and the fixed blur filters (``filt``) of CUT's anti-aliased resampling (a constant in i2i).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError

SUFFIX = ".pth"  #: the reference repositories' file suffix (i2i's checkpoints are .pt)
NEITHER = "not a network file of pytorch-CycleGAN-and-pix2pix or contrastive-unpaired-translation"
ARCH_HELP = "resnet_9blocks, resnet_6blocks, unet_256, unet_128 (resnet_Nblocks, unet_SIZE for others)"
_INSTANCE_STATS = ("running_mean", "running_var", "num_batches_tracked")


def is_reference_file(path: str | Path) -> bool:
    """``path`` names a reference repository's network file (by its ``.pth`` suffix)."""
    return Path(path).suffix.lower() == SUFFIX


@dataclass(frozen=True)
class Arch:
    """A reference network's architecture, as i2i builds it."""

    family: str  #: resnet, unet or patchgan
    depth: int  #: resnet: residual blocks; unet: levels; patchgan: stride-2 layers
    width: int  #: ngf (generators) or ndf
    in_channels: int
    out_channels: int
    norm: str  #: batch, instance or none
    antialias: bool = False
    dropout: bool = False
    padding: str = "reflect"

    @property
    def name(self) -> str:
        return {"resnet": f"resnet_{self.depth}blocks", "unet": f"unet_{2 ** self.depth}",
                "patchgan": f"patchgan_{self.depth}layers"}[self.family]

    def net_config(self) -> dict:
        """The ``nets:`` section of an i2i config that builds this network."""
        if self.family == "resnet":
            return {"name": "resnet", "ngf": self.width, "n_blocks": self.depth, "norm": self.norm,
                    "dropout": self.dropout, "padding": self.padding, "antialias": self.antialias}
        if self.family == "unet":
            return {"name": "unet", "ngf": self.width, "num_downs": self.depth, "norm": self.norm,
                    "dropout": self.dropout}
        return {"name": "patchgan", "ndf": self.width, "n_layers": self.depth, "norm": self.norm,
                "antialias": self.antialias}

    def describe(self) -> str:
        what = {"resnet": f"ResNet generator, {self.depth} blocks, ngf {self.width}",
                "unet": f"U-Net generator, {self.depth} levels, ngf {self.width}",
                "patchgan": f"PatchGAN discriminator, {self.depth} layers, ndf {self.width}"}[self.family]
        extras = [f"{self.norm} norm"] + (["anti-aliased"] if self.antialias else []) + \
                 ([f"{self.padding} padding"] if self.padding != "reflect" else [])
        channels = f"{self.in_channels} -> {self.out_channels} channels" if self.family != "patchgan" \
            else f"{self.in_channels} channels in"
        return f"{what}, {', '.join(extras)}, {channels} ({self.name})"


def parse_arch(text: str) -> tuple[str, int]:
    """``(family, depth)`` of an ``--arch`` value: ``resnet_9blocks``, ``unet_256``..."""
    if m := re.fullmatch(r"resnet_(\d+)blocks", text):
        return "resnet", int(m.group(1))
    if (m := re.fullmatch(r"unet_(\d+)", text)) and int(m.group(1)) >= 32 and int(m.group(1)).bit_count() == 1:
        return "unet", int(m.group(1)).bit_length() - 1
    from .errors import ConfigError

    raise ConfigError(f"--arch: {text!r} is not a reference generator; expected one of {ARCH_HELP}")


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a reference network file, loaded with ``weights_only=True``; one line if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - damaged, cut short, or holding objects other than tensors
        raise CheckpointError(f"{path}: {NEITHER} (it does not load as a file of tensors: {type(exc).__name__})") \
            from None
    if not isinstance(state, dict) or not state or not all(isinstance(k, str) and torch.is_tensor(v)
                                                            for k, v in state.items()):
        keys = ", ".join(map(str, list(state)[:3])) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: {NEITHER} (not a state dict of tensors: {keys or 'empty'})")
    if all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    for name, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{path}: its weights hold NaN or Inf ({name})")
    return state


def _norm(state: dict, norm_prefix: str, conv_prefix: str) -> str:
    if f"{norm_prefix}.weight" in state:
        return "batch"
    return "instance" if f"{conv_prefix}.bias" in state or f"{norm_prefix}.running_mean" in state else "none"


def _resnet(state: dict, depth: int | None) -> Arch:
    first = state["model.1.weight"]
    convs = [int(k.split(".")[1]) for k, v in state.items()
             if re.fullmatch(r"model\.\d+\.weight", k) and v.dim() == 4 and v.shape[-1] == 7]
    last = state[f"model.{max(convs)}.weight"]
    blocks = sorted({int(k.split(".")[1]) for k in state if re.match(r"model\.\d+\.conv_block\.", k)})
    block = f"model.{blocks[0]}.conv_block" if blocks else ""
    zero = f"{block}.0.weight" in state
    return Arch("resnet", len(blocks) if depth is None else depth, first.shape[0], first.shape[1], last.shape[0],
                _norm(state, "model.2", "model.1"),
                antialias="model.8.weight" in state and "model.7.weight" not in state,
                dropout=f"{block}.{4 if zero else 6}.weight" in state, padding="zero" if zero else "reflect")


def _unet(state: dict, depth: int | None) -> Arch:
    levels, seq = 1, "model.model.1.model"
    while f"{seq}.1.weight" in state:
        levels += 1
        if f"{seq}.3.model.1.weight" not in state:
            break
        seq = f"{seq}.3.model"
    first = state["model.model.0.weight"]
    out = state["model.model.3.weight"].shape[1] if "model.model.3.weight" in state else first.shape[1]
    # pix2pix trains its U-Net with dropout (it is off when translating)
    return Arch("unet", levels if depth is None else depth, first.shape[0], first.shape[1], out,
                _norm(state, "model.model.1.model.2", "model.model.1.model.1"), dropout=True)


def _patchgan(state: dict) -> Arch:
    convs = sorted(int(k.split(".")[1]) for k, v in state.items()
                   if re.fullmatch(r"model\.\d+\.weight", k) and v.dim() == 4)
    first = state[f"model.{convs[0]}.weight"]
    second = convs[1] if len(convs) > 1 else convs[0]
    return Arch("patchgan", len(convs) - 2, first.shape[0], first.shape[1], 1,
                _norm(state, f"model.{second + 1}", f"model.{second}"),
                antialias="model.2.filt" in state or second == 3)


def find_arch(state: dict[str, torch.Tensor], path: str | Path, arch: str | None = None) -> Arch:
    """The architecture of a reference network from its keys and shapes (``arch``, an ``--arch`` value,
    names the generator's family and depth where the keys do not tell them)."""
    family, depth = parse_arch(arch) if arch else (None, None)
    w = state.get("model.1.weight")
    if "model.model.0.weight" in state:
        found = "unet"
    elif w is not None and w.dim() == 4 and w.shape[-1] == 7:
        found = "resnet"
    elif (w := state.get("model.0.weight")) is not None and w.dim() == 4 and w.shape[-1] == 4:
        found = "patchgan"
    else:
        raise CheckpointError(f"{path}: {NEITHER} (no generator or discriminator of theirs has the keys "
                              f"{', '.join(list(state)[:3])}{', ...' if len(state) > 3 else ''})")
    if family is not None and family != found:
        raise CheckpointError(f"{path}: --arch {arch} names a {family} generator, but the file holds a {found} network")
    return {"resnet": _resnet, "unet": _unet}[found](state, depth) if found != "patchgan" else _patchgan(state)


def i2i_name(key: str, arch: Arch) -> str | None:
    """The name of reference tensor ``key`` in i2i's network of ``arch``, or None for one i2i does not keep."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "filt":  # the fixed blur of anti-aliased resampling: a constant of i2i's BlurDownsample/Upsample
        return None
    if arch.norm == "instance" and leaf in _INSTANCE_STATS:  # instance norm of older versions kept statistics
        return None
    return key  # i2i's generators and PatchGAN follow the reference's module order: the same layer paths


def mapped_state(state: dict[str, torch.Tensor], arch: Arch, own: dict[str, torch.Tensor]) -> dict:
    """``state`` under i2i's names, with what i2i's network of ``arch`` holds and the file may lack: the
    ``num_batches_tracked`` of batch norms older than PyTorch 0.4 (0), and without norm the conv biases the
    reference leaves out (zero: the same function)."""
    out = {name: value for key, value in state.items() if (name := i2i_name(key, arch)) is not None}
    for name, value in own.items():
        layer = name.rsplit(".", 1)[0]
        if name not in out and (name.endswith(".num_batches_tracked") and f"{layer}.running_mean" in out
                                or arch.norm == "none" and name.endswith(".bias") and f"{layer}.weight" in out):
            out[name] = torch.zeros_like(value)
    return out


@dataclass
class Reference:
    """A reference network file, read and understood."""

    path: Path
    arch: Arch
    state: dict[str, torch.Tensor]
    arch_given: bool = False

    def describe(self) -> str:
        return f"{self.path}: {self.arch.describe()}"

    def build(self) -> nn.Module:
        """i2i's network of :attr:`arch` holding the file's weights."""
        from .nn import build_discriminator, build_generator

        cfg = self.arch.net_config()
        net = build_discriminator(cfg, self.arch.in_channels) if self.arch.family == "patchgan" \
            else build_generator(cfg, self.arch.in_channels, self.arch.out_channels)
        self.load_into(net)
        return net

    def load_into(self, net: nn.Module) -> None:
        """Load the file's weights into ``net`` (i2i's network of :attr:`arch`); one line where they do not fit."""
        from .checkpoint import load_weights

        try:
            load_weights(net, mapped_state(self.state, self.arch, net.state_dict()), f"i2i's {self.arch.name}")
        except CheckpointError as exc:
            if self.arch_given:
                raise CheckpointError(f"{self.path}: {exc}") from None
            raise CheckpointError(f"{self.path}: i2i cannot tell this network's architecture from its keys "
                                  f"(read as {self.arch.name}: {str(exc).split(': ', 1)[-1]}); if it is a reference "
                                  f"generator, give --arch, one of {ARCH_HELP}") from None


def open_reference(path: str | Path, arch: str | None = None) -> Reference:
    """Read a reference network file and find its architecture (``arch``: an ``--arch`` value)."""
    if arch:
        parse_arch(arch)  # a bad value is the command line's fault, whatever the file
    state = read_state(path)
    return Reference(Path(path), find_arch(state, path, arch), state, arch_given=bool(arch))


def translator_parts(path: str | Path, arch: str | None = None):
    """``(config, model, description)`` translating with a reference generator file: i2i's pix2pix translator
    (one generator, A to B) running it in eval mode (running batch-norm statistics, no dropout), as the
    reference's ``test.py --eval``."""
    from .configure import build_config
    from .errors import ConfigError
    from .models import build_model

    ref = open_reference(path, arch)
    if ref.arch.family == "patchgan":
        raise CheckpointError(f"{ref.path}: a discriminator ({ref.arch.describe()}); translate with a generator "
                              "file (latest_net_G.pth, latest_net_G_A.pth, latest_net_G_B.pth)")
    tree = {"model": {"name": "pix2pix", "test_batch_stats": False},
            "nets": {"G": ref.arch.net_config(), "D": {"name": "patchgan", "ndf": 1, "n_layers": 1}},
            "data": {"in_channels": ref.arch.in_channels, "out_channels": ref.arch.out_channels,
                     "root": str(ref.path.parent)}}  # no training data: the file's folder stands in
    try:
        cfg = build_config(tree, check_paths=False)
    except ConfigError as exc:  # images of other than 1 or 3 channels
        raise CheckpointError(f"{ref.describe()}: i2i cannot translate with it ({exc})") from None
    model = build_model(cfg)
    ref.load_into(model.G)
    return cfg, model, ref.describe()
