"""Multi-process training on CPU (gloo): gradient averaging, sampler split, torchrun."""
import os
import socket
import subprocess
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml

from i2i.engine.distributed import average_gradients, broadcast_module
from i2i.data import ResumableSampler


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(rank)  # different initial weights per rank
    net = torch.nn.Linear(3, 2)
    net.register_buffer("stat", torch.full((1,), float(rank)))
    broadcast_module(net)
    assert float(net.stat) == 0.0  # rank 0's buffer everywhere
    net.stat.fill_(rank + 5.0)
    broadcast_module(net, buffers_only=True)
    assert float(net.stat) == 5.0
    x = torch.full((1, 3), float(rank + 1))
    net(x).sum().backward()  # grad of weight = x: rank-dependent
    average_gradients(list(net.parameters()))
    out[rank] = torch.cat([net.weight.detach().flatten(), net.weight.grad.flatten(), net.bias.grad])
    dist.destroy_process_group()


def test_broadcast_and_gradient_average_over_two_processes():
    out = mp.Manager().dict()
    mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2)
    a, b = out[0], out[1]
    torch.testing.assert_close(a, b)  # same weights, same averaged grads
    # weight grad row = mean of x over ranks = (1 + 2) / 2; bias grad = 1
    torch.testing.assert_close(a[6:12], torch.full((6,), 1.5))
    torch.testing.assert_close(a[12:], torch.ones(2))


def test_sampler_splits_one_permutation_between_ranks_and_resumes():
    ranks = [ResumableSampler(10, shuffle=True, seed=3, rank=r, world_size=2) for r in range(2)]
    for s in ranks:
        s.set_epoch(1)
    parts = [list(s) for s in ranks]
    assert len(parts[0]) == len(parts[1]) == 5
    assert sorted(parts[0] + parts[1]) == list(range(10))
    ranks[0].set_epoch(1, start=2)
    assert list(ranks[0]) == parts[0][2:] and len(ranks[0]) == 3
    ranks[0].set_epoch(2)
    assert list(ranks[0]) != parts[0]  # a new permutation each epoch


def test_torchrun_two_processes_write_one_run(tmp_path):
    cfg = {
        "model": "pix2pix",
        "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 8}, "D": {"ndf": 8, "n_layers": 2}},
        "data": {"root": "builtin:shapes", "load_size": 32, "crop_size": 32, "batch_size": 2, "num_workers": 0,
                 "max_items": 8},
        "train": {"out_dir": str(tmp_path / "runs"), "max_steps": 3, "name": "ddp"},
        "log": {"every": 1, "sample_every": 3, "progress": False},
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "i2i.cli.train", "--config", str(path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["ddp"]
    state = torch.load(tmp_path / "runs" / "ddp" / "checkpoints" / "step_0000003.pt", weights_only=True)
    assert state["step"] == 3
