"""``i2i-train``: train a translator from a YAML config, or resume a run."""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ..config import save_config
from ..config.shipped import SHIPPED, shipped_configs, summary
from ..configure import config_of_checkpoint, load_config
from ..errors import CheckpointError, ConfigError
from .common import add_debug, add_import, add_offline, add_trust_imports, run
from .paths import check_apart, check_output_dir


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2i-train", description=__doc__.split("\n")[0].replace("``", ""))
    p.add_argument("--config", help="YAML config file, or the name of a shipped config (see --list-configs)")
    p.add_argument("--list-configs", action="store_true", help="list the shipped configs and exit")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override config fields, e.g. optim.G.lr=1e-4 (optim.default.lr: every group)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its newest readable checkpoint (or a .pt file), with the config saved in "
                        "it (--set changes settings); from an older checkpoint it branches into a new run folder")
    add_import(p)
    add_trust_imports(p)
    add_offline(p)
    add_debug(p)
    return p


def _new_run_dir(out_dir: str, name: str) -> Path:
    """``out_dir/name``, or ``name-2``, ``name-3``... so that no run is overwritten."""
    base = Path(out_dir) / (name or "run")
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _shared_run_dir(out_dir: str | Path, name: str, device: str) -> Path:
    """Pick the run folder on rank 0 and share it with the other processes (of ``train.device``)."""
    from ..engine import distributed as dist
    from ..runtime import select_device
    import torch.distributed as tdist

    check_output_dir(out_dir, "train.out_dir")
    info = dist.init_distributed(select_device(device))
    chosen = [str(_new_run_dir(out_dir, name))] if info.is_main else [""]
    if info.enabled:
        tdist.broadcast_object_list(chosen, src=0)
    path = Path(chosen[0])
    if info.is_main:
        path.mkdir(parents=True)
    return path


def _resume_dir(point, cfg) -> tuple[Path, bool]:
    """``(run folder, whether it is new)``: in place, or a new folder where writing in place could lose something."""
    from ..engine.resume import note

    if point.run_dir is None:
        note(f"{point.checkpoint} is not in the checkpoints/ of a run folder (with config.yaml): "
             "the resumed run goes to a new run folder")
        return _shared_run_dir(cfg.train.out_dir, cfg.train.name, cfg.train.device), True
    if point.newer:
        run_dir = _shared_run_dir(point.run_dir.parent, f"{point.run_dir.name}-from-step{point.step}", cfg.train.device)
        note(f"{point.run_dir} has checkpoints newer than step {point.step} (up to {point.newer[-1].name}): "
             f"the resumed run branches into {run_dir}, so that none is overwritten")
        return run_dir, True
    return point.run_dir, False


def list_configs() -> int:
    """Print each shipped config's name and first comment line."""
    configs = shipped_configs()
    width = max(map(len, configs), default=0)
    for name, path in configs.items():
        print(f"{name:<{width}}  {summary(path)}")
    print(f"(in {SHIPPED}; train one with i2i-train --config NAME)", file=sys.stderr)
    return 0


def _source(args: argparse.Namespace, point, files: list[Path]) -> str:
    """Where the config came from, for the comment line of the saved config.yaml."""
    if point is not None:
        where = f"the one saved in {point.checkpoint}"
    else:
        where = str(files[0].absolute()) + "".join(f" (base: {f.absolute()})" for f in files[1:])
    return where + (f" with --set {' '.join(args.set)}" if args.set else "")


def train(args: argparse.Namespace) -> int:
    if args.list_configs:
        return list_configs()
    from ..engine.distributed import init_distributed
    from ..engine.resume import open_resume_point
    from ..engine.runlock import lock_run_dir
    from ..runtime import select_device

    point, files = None, []
    if args.resume:
        point = open_resume_point(args.resume)
        try:
            cfg = config_of_checkpoint(point.state, args.set, imports=args.imports, trust_imports=args.trust_imports,
                                       source=str(point.checkpoint))
        except ConfigError as exc:
            try:  # the saved config itself is broken (not a moved data folder or a --set): the file's fault
                config_of_checkpoint(point.state, check_paths=False, imports=args.imports,
                                     trust_imports=args.trust_imports)
            except ConfigError:
                raise CheckpointError(f"{point.checkpoint}: the config saved in it is not valid: {exc}") from None
            raise
        run_dir, new = _resume_dir(point, cfg)
    elif args.config:
        cfg = load_config(args.config, args.set, files)
        check_apart(cfg.train.out_dir, "train.out_dir",
                    [("data.root", cfg.data.root), ("eval.root", cfg.eval.root if cfg.eval.every else None)])
        run_dir, new = _shared_run_dir(cfg.train.out_dir, cfg.train.name, cfg.train.device), True
    else:
        raise ConfigError("give --config FILE (or --resume RUN_DIR)")
    main_process = init_distributed(select_device(cfg.train.device)).is_main
    lock = lock_run_dir(run_dir) if main_process else None  # held while this process trains
    try:
        return _fit(cfg, run_dir, new, point, args, files)
    finally:
        if lock is not None:
            lock.close()


def _fit(cfg, run_dir: Path, new: bool, point, args: argparse.Namespace, files: list) -> int:
    from ..engine.resume import cut_metrics, say_config
    from ..engine.trainer import Trainer

    try:
        trainer = Trainer(cfg, run_dir, resume=point.state if point else None)
    except BaseException as exc:
        if new and run_dir.is_dir():  # a new run that never started leaves no folder
            shutil.rmtree(run_dir, ignore_errors=True)
        if point is not None and isinstance(exc, CheckpointError):
            raise CheckpointError(f"{point.checkpoint}: {exc}") from None
        raise
    if trainer.dist.is_main:
        if point is not None:
            say_config(point, run_dir, args.set)
            source = point.run_dir / "metrics.jsonl" if point.run_dir else None
            cut_metrics(run_dir / "metrics.jsonl", point.step, source)
        save_config(cfg, run_dir / "config.yaml", _source(args, point, files))
        print(f"run folder: {run_dir}", file=sys.stderr)
    last = trainer.fit()
    if trainer.dist.is_main and last is not None:
        print(f"checkpoint: {last}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(train, args)


if __name__ == "__main__":
    sys.exit(main())
