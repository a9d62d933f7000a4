"""A training step between two log steps never waits on the device.

Every way Python reads a tensor's value (``item``, ``tolist``, ``cpu``, ``numpy``, ``bool``, ``float``, ``int``)
makes the host wait for the device that holds it.  On a CPU the device is the host, so the test counts these reads
instead of the waits: over the steps of a run that are neither its first (which learns the gradient buckets and
the parameters each phase uses, once) nor a log step (which reads the losses), there must be none, for every
translator, in one process and in two (gloo).  Two kinds of reads are not counted, because they read host memory
on any device: the data loader's (its batches are built on the CPU) and the processes' agreement on each batch
(:func:`i2i.engine.distributed.host_gather`, CPU tensors over a CPU process group).  Copies from host memory to
a GPU, which also make the host wait unless made from pinned memory, cannot show on a CPU: a step makes none but
the pinned, non-blocking ones of the batch and of the gradient reducer's flags.
"""
import os
import socket
import sys
import traceback
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from i2i.configure import build_config
from i2i.engine.trainer import Trainer

READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")
HOST_SIDE = (os.sep + os.path.join("torch", "utils", "data") + os.sep, os.sep + os.path.join("i2i", "data") + os.sep)
LOG_EVERY, STEPS = 3, 8  # steps 2, 4, 5, 7 are neither the first nor log steps

SHAPES = {"root": "builtin:shapes", "load_size": 32, "crop_size": 32, "batch_size": 2, "num_workers": 0,
          "max_items": 40}
TRANSLATORS = {  # tiny nets; batches of 2 per process, epochs longer than the run (an epoch end checkpoints)
    "pix2pix": {"model": "pix2pix", "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 4},
                                             "D": {"ndf": 4, "n_layers": 1}}},
    "cyclegan": {"model": {"name": "cyclegan", "pool_size": 3},  # a full pool swaps images at random
                 "nets": {"G": {"name": "resnet", "n_blocks": 1, "ngf": 4}, "D": {"ndf": 4, "n_layers": 1}}},
    "unit": {"model": "unit", "nets": {"G": {"dim": 4, "n_res": 1}, "D": {"ndf": 4, "n_layers": 2, "num_scales": 2}}},
    # patch positions and FastCUT's flips drawn from the step's generator, on the device
    "cut": {"model": {"name": "cut", "num_patches": 16},
            "nets": {"G": {"name": "resnet", "n_blocks": 5, "ngf": 4, "antialias": True}, "D": {"ndf": 4, "n_layers": 1},
                     "F": {"units": 8}}},
    "fastcut": {"model": {"name": "fastcut", "num_patches": 16},
                "nets": {"G": {"name": "resnet", "n_blocks": 5, "ngf": 4, "antialias": True},
                         "D": {"ndf": 4, "n_layers": 1}, "F": {"units": 8}}},
    "cogan": {"model": "cogan", "nets": {"G": {"size": 16, "ngf": 4}, "D": {"size": 16, "ndf": 4}},
              "data": {"load_size": 16, "crop_size": 16}},
    "dehazegan": {"model": {"name": "dehazegan", "vgg_weights": "random"},
                  "nets": {"G": {"name": "tiramisu", "n_blocks": 2, "layers": 2, "bottleneck_layers": 2, "growth": 4,
                                 "first_channels": 8, "up_channels": 8}, "D": {"ndf": 4, "n_layers": 1}},
                  "data": {"kind": "paired", "root": "builtin:haze"}},
    # the physics dehazer, alone (D is neither run nor stepped)
    "dehazegan-physics": {"model": {"name": "dehazegan", "gan_w": 0, "l1_w": 1, "vgg_w": 0},
                          "nets": {"G": {"name": "physics_dehazer", "width": 4, "scale": 4, "radius": 4},
                                   "D": {"name": "pixelgan", "ndf": 4, "norm": "none"}},
                          "data": {"kind": "paired", "root": "builtin:haze"}},
    # what else reads values: a penalty's draws for the global batch (and lazily, in its own phase), BEGAN's k_t,
    # WGAN's weight clipping, the optimizers without a fused kernel
    "pix2pix-gp-lazy-rmsprop": {"model": "pix2pix", "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 4},
                                                             "D": {"ndf": 4, "n_layers": 1}},
                                "losses": {"penalty": {"type": "dragan", "weight": 1.0, "every": 2}},
                                "optim": {"G": {"type": "rmsprop", "lr": 1e-4, "momentum": 0.5},
                                          "D": {"type": "sgd", "lr": 1e-3, "momentum": 0.9}}},
    "cyclegan-began": {"model": "cyclegan", "nets": {"G": {"name": "resnet", "n_blocks": 1, "ngf": 4},
                                                     "D": {"name": "autoencoder", "ndf": 4, "n_down": 2,
                                                           "energy": "l1"}},
                       "losses": {"gan": "began"}},
    "pix2pix-wgan-adamw": {"model": "pix2pix", "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 4},
                                                        "D": {"ndf": 4, "n_layers": 1, "norm": "none"}},
                           "losses": {"gan": {"name": "wgan", "clip": 0.01, "n_critic": 2}},
                           "optim": {"G": {"type": "adamw"}, "D": {"type": "adamw"}}},
    # synchronized batch norms (two processes), through a penalty's double backward too
    "pix2pix-sync_bn-r1": {"model": "pix2pix", "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 4},
                                                        "D": {"ndf": 4, "n_layers": 1}},
                           "losses": {"penalty": {"type": "r1", "weight": 1.0}}, "train": {"sync_bn": True}},
}
# what two processes add: gradient averaging, the agreement on each batch, the global batch of the penalties,
# BEGAN's all-reduced balance, synchronized batch norms, FastCUT's draws from the step's generator
TWO_PROCESSES = ("pix2pix-gp-lazy-rmsprop", "pix2pix-sync_bn-r1", "cyclegan-began", "unit", "cogan", "dehazegan",
                 "fastcut")


def config(name, out_dir):
    tree = TRANSLATORS[name]
    tree = {**tree, "data": {**SHAPES, **tree.get("data", {})},
            "train": {"out_dir": str(out_dir), "name": name, "max_steps": STEPS, "ema": {"decay": 0.9},
                      "time_budget_min": 600, **tree.get("train", {})},  # (a budget is watched, never reached)
            "log": {"every": LOG_EVERY, "progress": False, "tensorboard": False}}
    return build_config(tree)


def host_side() -> bool:
    """Whether the read comes from the data loader or the processes' agreement on a batch (host memory)."""
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if any(part in code.co_filename for part in HOST_SIDE) or code.co_name == "host_gather":
            return True
        frame = frame.f_back
    return False


class Reads:
    """Counts the value reads made while ``trainer`` trains: ``seen`` all of them (the data loader's and the
    agreement's left out), ``between`` those of steps that are neither the first nor log steps, with where they
    come from.  A read belongs to step s + 1 when made in ``train_step`` (the trainer's step is s then), to step s
    when made in what follows it in ``fit``."""

    def __init__(self, trainer, monkeypatch):
        self.trainer, self.in_step, self.seen, self.between = trainer, False, 0, []
        for name in READS:
            monkeypatch.setattr(torch.Tensor, name, self.counting(name, getattr(torch.Tensor, name)))
        step = trainer.train_step

        def train_step(batch):
            self.in_step = True
            try:
                return step(batch)
            finally:
                self.in_step = False

        monkeypatch.setattr(trainer, "train_step", train_step)

    def counting(self, name, read):
        def counted(tensor, *args, **kwargs):
            if not host_side():
                self.seen += 1
                done = self.trainer.step + 1 if self.in_step else self.trainer.step
                if done > 1 and done % LOG_EVERY and done != STEPS:
                    where = "".join(traceback.format_stack(limit=4)[:-1])
                    self.between.append(f"step {done} ({'train_step' if self.in_step else 'fit'}): "
                                        f"Tensor.{name}\n{where}")
            return read(tensor, *args, **kwargs)

        return counted


def train_counting(name, out_dir, monkeypatch):
    run = Path(out_dir) / name
    run.mkdir(parents=True)
    trainer = Trainer(config(name, out_dir), run)
    reads = Reads(trainer, monkeypatch)
    trainer.fit()
    assert trainer.step == STEPS
    return reads


@pytest.mark.parametrize("name", sorted(TRANSLATORS))
def test_no_step_between_log_steps_reads_a_value_from_the_device(tmp_path, monkeypatch, name):
    reads = train_counting(name, tmp_path, monkeypatch)
    assert reads.seen  # the counter sees the log steps' reads
    assert reads.between == []


def test_the_counter_sees_a_read_in_a_step(tmp_path, monkeypatch):
    """A loss that asks on the host whether it is finite (as a step could) is seen at every counted step."""
    from i2i.models.pix2pix import Pix2Pix

    g_loss = Pix2Pix.g_loss

    def asking(self, batch, out):
        loss, logs = g_loss(self, batch, out)
        assert bool(torch.isfinite(loss))
        return loss, logs

    monkeypatch.setattr(Pix2Pix, "g_loss", asking)
    reads = train_counting("pix2pix", tmp_path, monkeypatch)
    assert [line.split(":")[0] for line in reads.between] == [f"step {s} (train_step)" for s in (2, 4, 5, 7)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, out_dir, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    found = {}
    for name in TWO_PROCESSES:
        with pytest.MonkeyPatch.context() as monkeypatch:
            reads = train_counting(name, Path(out_dir) / str(rank), monkeypatch)
            found[name] = (reads.seen, reads.between)
    out[rank] = found
    dist.destroy_process_group()


def test_two_processes_read_no_value_between_log_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    out = mp.Manager().dict()
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), out), nprocs=2)
    for rank in range(2):
        for name, (seen, between) in out[rank].items():
            assert seen and between == [], (rank, name)
