"""``i2i-import``: network files of the reference repositories as an i2i run folder that ``i2i-train --resume``
fine-tunes.

``i2i-import latest_net_G_A.pth latest_net_G_B.pth --model cyclegan --output RUN`` reads the generators
(:mod:`i2i.reference`), and the discriminators saved beside them (``latest_net_D_A.pth`` for
``latest_net_G_A.pth``) where there are any and i2i has their architecture; a network without a file starts
from i2i's initialization, and says so.  The folder holds ``config.yaml`` and ``checkpoints/step_0000000.pt``:
the weights, fresh optimizer and scheduler states, step 0.  It is written whole or not at all, and never over
an existing folder.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from ..errors import CheckpointError, ConfigError
from .common import add_debug, run
from .paths import check_apart, check_output_dir

MODELS = ("cyclegan", "pix2pix", "cut")
#: the data root of an imported run until one is given (a resume names the missing folder in one line)
NO_ROOT = "<give --set data.root=DIR>"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2i-import", description=(
        "Turn generator files (.pth) of pytorch-CycleGAN-and-pix2pix or contrastive-unpaired-translation into an "
        "i2i run folder that i2i-train --resume fine-tunes."))
    p.add_argument("generators", nargs="+", metavar="PATH.pth",
                   help="the generator file; cyclegan: G_A (A to B), then optionally G_B (B to A)")
    p.add_argument("--model", required=True, choices=MODELS, help="the translator the run trains")
    p.add_argument("--output", required=True, metavar="RUN", help="the run folder to write (must not exist)")
    p.add_argument("--arch", default=None, metavar="NAME",
                   help="the generators' architecture where their keys do not tell it (resnet_9blocks, unet_256...)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config setting of the run, e.g. data.root=DIR; repeatable")
    add_debug(p)
    return p


def discriminator_file(generator: Path) -> Path | None:
    """The reference's discriminator file beside a generator file (``net_G_A`` -> ``net_D_A``), if there is one."""
    if "net_G" not in generator.name:
        return None
    found = generator.with_name(generator.name.replace("net_G", "net_D"))
    return found if found.is_file() else None


def read_discriminator(path: Path | None, role: str):
    """The :class:`~i2i.reference.Reference` of a discriminator file, or None (saying why) where i2i cannot use it."""
    from ..reference import open_reference

    if path is None:
        print(f"note: no discriminator file for {role}: it starts from i2i's initialization", file=sys.stderr)
        return None
    try:
        ref = open_reference(path)
        if ref.arch.family != "patchgan":
            raise CheckpointError(f"{path}: a {ref.arch.describe()}, which i2i's patchgan does not build")
    except CheckpointError as exc:
        print(f"note: {exc}; {role} starts from i2i's initialization", file=sys.stderr)
        return None
    print(f"note: {ref.describe()}", file=sys.stderr)
    return ref


def check_output(out: Path, inputs: list[Path]) -> None:
    check_output_dir(out, "--output")
    if os.path.lexists(out):
        raise ConfigError(f"--output {out}: exists; give a new folder (i2i-import never writes over one)")
    check_apart(out, "--output", [("PATH.pth", p) for p in inputs])


def run_config(model: str, gens, discs, overrides: list[str]):
    """The run's config: the translator's defaults, the networks of the files, ``--set`` on top."""
    from ..configure import build_config

    g = gens[0].arch
    tree = {"model": {"name": model},
            "nets": {"G": g.net_config(), **({"D": discs[0].arch.net_config()} if discs[0] else {})},
            "data": {"in_channels": g.in_channels, "out_channels": g.out_channels, "root": NO_ROOT}}
    if model == "cyclegan" and len(gens) == 2:
        back = gens[1].arch
        if back.net_config() != g.net_config() or (back.in_channels, back.out_channels) != (g.out_channels,
                                                                                              g.in_channels):
            raise CheckpointError(f"{gens[1].path}: {back.describe()}; i2i's CycleGAN needs the mirror of "
                                  f"{gens[0].path} ({g.describe()})")
    if model == "cyclegan" and discs[0] and discs[1] and discs[0].arch.net_config() != discs[1].arch.net_config():
        raise CheckpointError(f"{discs[1].path}: not the architecture of {discs[0].path}; i2i's CycleGAN "
                              "builds both discriminators alike")
    cfg = build_config(tree, overrides, check_paths=False)
    for role, ref in (("G", gens[0]), ("D", discs[0])):
        for key, value in (ref.arch.net_config().items() if ref else ()):
            now = cfg.nets[role].name if key == "name" else cfg.nets[role].params.get(key)
            if now != value:
                raise ConfigError(f"--set nets.{role}.{key}={now}: {ref.path} holds a network with {key} {value}")
    return cfg


def fresh_state(cfg, model) -> dict:
    """A checkpoint at step 0 holding ``model``'s weights: what i2i-train writes, before its first step."""
    from ..config import to_dict
    from ..engine.divergence import DivergenceGuard
    from ..engine.ema import EMA
    from ..engine.optim import group_parameters, make_optimizer, make_scheduler
    from ..engine.rng import rng_state
    from ..engine.scalers import LossScalers

    cpu = torch.device("cpu")
    modules = model.optim_groups()
    optimizers = {g: make_optimizer(p, cfg.optim[g], cpu) for g, p in group_parameters(modules).items()}
    state = {"config": to_dict(cfg), "step": 0, "epoch": 0, "batch_in_epoch": 0, "best": None,
             "model": model.state_dict(),
             "optimizers": {g: o.state_dict() for g, o in optimizers.items()},
             "schedulers": {g: make_scheduler(o, cfg.optim[g], cfg.train, 1).state_dict()
                            for g, o in optimizers.items()},
             "scaler": LossScalers(cpu, "off", [p.name for p in model.phases()]).state_dict(),
             "loss_state": model.loss_state(), "rng": rng_state(), "divergence": DivergenceGuard(cfg.train.divergence).state_dict()}
    group = model.ema_group
    if cfg.train.ema.decay and group:
        state["ema"] = EMA(model, modules[group], cfg.train.ema.decay, cfg.train.ema.start).state_dict()
    return state


def import_run(args: argparse.Namespace) -> int:
    from ..checkpoint import checkpoint_dir, save_checkpoint
    from ..config import save_config
    from ..engine.rng import seed_everything
    from ..models import build_model
    from ..reference import open_reference
    from ..utils import current_umask

    paths, out = [Path(p) for p in args.generators], Path(args.output)
    most = 2 if args.model == "cyclegan" else 1
    if len(paths) > most:
        raise ConfigError(f"PATH.pth: {args.model} has {most} generator(s), got {len(paths)} files")
    check_output(out, paths)
    gens = [open_reference(p, args.arch) for p in paths]
    for ref in gens:
        if ref.arch.family == "patchgan":
            raise CheckpointError(f"{ref.path}: a discriminator; give the generator file (latest_net_G*.pth), "
                                  "its discriminator beside it is read too")
        print(f"note: {ref.describe()}", file=sys.stderr)
    roles = ["D_A", "D_B"][:len(paths)] if args.model == "cyclegan" else ["D"]
    discs = [read_discriminator(discriminator_file(p), role) for p, role in zip(paths, roles)]
    discs += [None] * (2 - len(discs))
    cfg = run_config(args.model, gens, discs, args.set)
    seed_everything(cfg.train.seed)
    model = build_model(cfg)
    targets = {"cyclegan": (["G_A", "G_B"], ["D_A", "D_B"]), "pix2pix": (["G"], ["D"]), "cut": (["G"], ["D"])}
    g_roles, d_roles = targets[args.model]
    for ref, role in zip(gens + discs, g_roles[:len(gens)] + d_roles):
        if ref is not None:
            ref.load_into(getattr(model, role))
    if args.model == "cyclegan" and len(gens) == 1:
        print("note: no file for G_B (B to A): it starts from i2i's initialization", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name[:100]}.", suffix=".tmp", dir=out.parent))
    try:
        save_config(cfg, work / "config.yaml", f"i2i-import {' '.join(map(str, paths))}")
        save_checkpoint(fresh_state(cfg, model), checkpoint_dir(work) / "step_0000000.pt")
        os.chmod(work, 0o777 & ~current_umask())
        os.replace(work, out)  # the whole folder, or none of it
    finally:
        shutil.rmtree(work, ignore_errors=True)
    root = "" if cfg.data.root != NO_ROOT else " --set data.root=DIR"
    print(f"imported into {out}; fine-tune with: i2i-train --resume {out}{root}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return run(import_run, args)


if __name__ == "__main__":
    sys.exit(main())
