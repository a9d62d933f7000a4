"""Multi-process training on CPU (gloo): gradient averaging, sync batch norm, sharded evaluation, torchrun.

Two processes with half a batch each must train as one process with the whole
batch (a model without batch coupling, or with ``train.sync_bn``; penalties that
draw random numbers or take the batch's std included), with identical weights on
every rank.
"""
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml

from i2i.configure import build_config
from i2i.data import ResumableSampler
from i2i.engine.distributed import broadcast_module, broadcast_statistics
from i2i.engine.reducer import GradReducer
from i2i.engine.rng import step_generator
from i2i.errors import DataError
from i2i.losses import build_penalty
from i2i.nn.sync_bn import convert_sync_batchnorm

TINY_DATA = {"root": "builtin:shapes", "load_size": 32, "crop_size": 32, "batch_size": 2, "num_workers": 0,
             "max_items": 8}
PLAIN = {  # no batch coupling, no randomness: half batches on two processes == the whole batch on one
    "model": {"name": "pix2pix", "test_batch_stats": False},
    "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 8, "norm": "instance", "dropout": False},
             "D": {"ndf": 8, "n_layers": 2, "norm": "none"}},
    "losses": {"penalty": {"type": "r1", "weight": 1.0}},  # double backward through D
    "optim": {"G": {"type": "sgd", "lr": 0.05}, "D": {"type": "sgd", "lr": 0.05}},
}
BATCH_NORM = {  # pix2pix's batch norms, synchronized
    "model": {"name": "pix2pix"},
    "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 8, "dropout": False}, "D": {"ndf": 8, "n_layers": 2}},
    "optim": {"G": {"type": "sgd", "lr": 0.05}, "D": {"type": "sgd", "lr": 0.05}},
    "train": {"sync_bn": True},
}
# pix2pix's batch norms synchronized, with R1's double backward through them
BATCH_NORM_R1 = {**BATCH_NORM, "losses": {"penalty": {"type": "r1", "weight": 1.0}}}
# penalties that draw random numbers: an interpolation weight per sample (gp, lp, dragan) and noise per element
# scaled by the std of the real batch (dragan), drawn for the global batch from the step's shared generator;
# at their default weight 10 other draws move the weights by 3e-5, 100 times the rounding differences
GP = {**PLAIN, "losses": {"penalty": {"type": "gp", "weight": 10.0}}}
DRAGAN = {**PLAIN, "losses": {"penalty": {"type": "dragan", "weight": 10.0}}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join(rank, world, port, timeout_s=None):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    timeout = {"timeout": __import__("datetime").timedelta(seconds=timeout_s)} if timeout_s else {}
    dist.init_process_group("gloo", rank=rank, world_size=world, **timeout)


# --------------------------------------------------------------------------- the reducer
def _reducer_worker(rank, world, port, out):
    _join(rank, world, port)
    torch.manual_seed(rank)  # different initial weights per rank
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2), torch.nn.Linear(2, 2))
    net.register_buffer("stat", torch.full((1,), float(rank)))
    broadcast_module(net)
    assert float(net.stat) == 0.0  # rank 0's buffer everywhere
    first, second, unused = net[0], net[1], net[2]
    reducer = GradReducer({"a": [*first.parameters(), *second.parameters()], "b": list(unused.parameters())},
                          bucket_mb=16 / 2**20)  # 16-byte buckets: several per group
    assert len(reducer.groups["a"].buckets) >= 3
    x = torch.full((1, 3), float(rank + 1))
    grads = []
    for _ in range(2):  # the second phase runs on buckets rebuilt in arrival order
        reducer.prepare("a")
        second(first(x)).sum().backward()
        group = reducer.groups["a"]
        assert group.sent == len(group.buckets)  # every bucket went out during backward, as it filled
        reducer.finish()
        flats = [b.flat for b in reducer.groups["a"].buckets]
        assert all(any(f.data_ptr() <= p.grad.data_ptr() < f.data_ptr() + 4 * f.numel() for f in flats)
                   for p in [*first.parameters(), *second.parameters()])  # gradients live in the buckets
        grads.append(torch.cat([p.grad.flatten() for p in [*first.parameters(), *second.parameters()]]))
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)
    # a phase in which one layer of the group gets no gradient: it keeps grad None, as in one process
    for _ in range(2):  # its first step learns which parameters it uses (the host waits once), later ones compare
        reducer.prepare("a", "detached")
        second(first(x).detach()).sum().backward()
        flag, mismatch = reducer.finish(torch.tensor(rank == 1))
        assert first.weight.grad is None and first.bias.grad is None and second.weight.grad is not None
        assert bool(flag) and not bool(mismatch)  # rank 1's flag, or-ed over the processes
    # the same phase with other parameters on one process: a mismatch, on every process
    reducer.prepare("a", "detached")
    (second(first(x).detach()) if rank == 0 else second(first(x))).sum().backward()
    flag, mismatch = reducer.finish(torch.tensor(False))
    assert not bool(flag) and bool(mismatch)
    # a phase of the other group: its gradients are averaged, group a's left alone
    reducer.prepare("b")
    unused(torch.full((1, 2), float(rank))).sum().backward()
    reducer.finish()
    out[rank] = (grads[0], unused.weight.grad.clone())
    dist.destroy_process_group()


def test_reducer_averages_bucketed_gradients_over_two_processes():
    out = mp.Manager().dict()
    mp.spawn(_reducer_worker, args=(2, _free_port(), out), nprocs=2)
    (a, ua), (b, ub) = out[0], out[1]
    assert torch.equal(a, b) and torch.equal(ua, ub)
    torch.testing.assert_close(ua, torch.full((2, 2), 0.5))  # mean of inputs 0 and 1
    # the same network on the two inputs summed in one process: the mean gradient
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    x = torch.tensor([[1.0] * 3, [2.0] * 3])
    (net(x).sum() / 2).backward()
    torch.testing.assert_close(a, torch.cat([p.grad.flatten() for p in net.parameters()]))


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


# --------------------------------------------------------------------------- training
def _config(tree, run_dir):
    tree = {**tree, "data": TINY_DATA,
            "train": {"out_dir": str(run_dir), "max_steps": 3, **tree.get("train", {})},
            "log": {"progress": False, "tensorboard": False}}
    return build_config(tree)


def _batches(n=3, size=4):
    g = torch.Generator().manual_seed(7)
    return [{"A": torch.rand(size, 3, 32, 32, generator=g) * 2 - 1, "B": torch.rand(size, 3, 32, 32, generator=g) * 2 - 1}
            for _ in range(n)]


def _train(tree, run_dir, rank=0, world=1):
    """The model's state after three iterations on this rank's share of the batches."""
    from i2i.engine.trainer import Trainer

    trainer = Trainer(_config(tree, run_dir), run_dir)
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for batch in _batches():
        half = len(batch["A"]) // world
        trainer.train_step({k: v[rank * half:(rank + 1) * half] for k, v in batch.items()})
        trainer.step += 1  # as fit does: each step its own shared generator
    kinds = sorted({type(m).__name__ for m in trainer.model.modules() if "BatchNorm" in type(m).__name__})
    moved = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, start[k])]
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}, kinds, moved


def _train_worker(rank, world, port, run_dir, out):
    _join(rank, world, port)
    out[rank] = [_train(tree, Path(run_dir) / str(rank), rank, world) for tree in (PLAIN, BATCH_NORM, BATCH_NORM_R1)]
    dist.destroy_process_group()


def _assert_ranks_train_as_one(tree, rank0, rank1, one_dir):
    """Both ranks' weights moved, are bit-identical, and equal one process's with the whole batch; returns
    the batch-norm kinds of rank 0 and of that one process."""
    (a, kinds, moved), (b, _, _) = rank0, rank1
    assert len(moved) > len(a) // 2  # training changed the weights
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit-identical on every rank
    one, one_kinds, _ = _train(tree, one_dir)
    for k in a:
        if a[k].is_floating_point():
            torch.testing.assert_close(a[k], one[k], rtol=1e-5, atol=1e-6, msg=f"{tree}: {k}")
        else:
            assert torch.equal(a[k], one[k]), k
    return kinds, one_kinds


def _spawn_two(worker, tmp_path, monkeypatch) -> dict:
    """Run ``worker(rank, 2, port, run_dir, out)`` on two processes; ``out`` as the workers left it."""
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = mp.Manager().dict()
    mp.spawn(worker, args=(2, _free_port(), str(tmp_path), out), nprocs=2)
    return out


def test_two_processes_train_as_one_with_the_whole_batch(tmp_path, monkeypatch):
    out = _spawn_two(_train_worker, tmp_path, monkeypatch)
    for i, tree in enumerate((PLAIN, BATCH_NORM, BATCH_NORM_R1)):
        kinds, one_kinds = _assert_ranks_train_as_one(tree, out[0][i], out[1][i], tmp_path / "one")
        if tree is not PLAIN:
            assert kinds == ["SyncBatchNorm"] and one_kinds == ["BatchNorm2d"]  # sync_bn: no-op in one process


def _counting_broadcasts(sent: list) -> None:
    """Make ``dist.broadcast`` (in this process) note the number of elements of each tensor it sends."""
    real = dist.broadcast

    def broadcast(tensor, *args, **kwargs):
        sent.append(tensor.numel())
        return real(tensor, *args, **kwargs)

    dist.broadcast = broadcast


def _statistics_worker(rank, world, port, run_dir, out):
    _join(rank, world, port)
    sent = []
    _counting_broadcasts(sent)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4), torch.nn.GroupNorm(1, 4))
    net.register_buffer("fixed", torch.full((2,), float(rank)))  # a buffer that training does not change
    net(torch.full((2, 3, 4, 4), float(rank)) + torch.arange(16.0).view(4, 4))  # each process's own statistics
    mean0 = net[1].running_mean.clone()
    broadcast_statistics(net)  # rank 0's running mean and variance, in one message; nothing else
    dist.broadcast(mean0, src=0)
    assert sent == [8, 4] and torch.equal(net[1].running_mean, mean0) and float(net.fixed[0]) == rank
    synced = convert_sync_batchnorm(net)
    synced(torch.full((2, 3, 4, 4), float(rank)))  # the statistics of the global batch, the same everywhere
    sent.clear()
    broadcast_statistics(synced)
    assert sent == []
    # the training loop: what each step broadcasts after the first (whose reducer learns the gradients' order)
    from i2i.engine.trainer import Trainer

    for name, tree in (("plain", {**BATCH_NORM, "train": {"sync_bn": False}}), ("sync", BATCH_NORM)):
        trainer = Trainer(_config(tree, Path(run_dir) / name / str(rank)), Path(run_dir) / name / str(rank))
        for i, batch in enumerate(_batches(n=3, size=2)):
            if i == 1:
                sent.clear()
            trainer.train_step({k: v[rank:rank + 1] for k, v in batch.items()})
            trainer.step += 1
        norms = [m for m in trainer.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        out[rank, name] = list(sent), sum(2 * m.num_features for m in norms), len(norms)
    dist.destroy_process_group()


def test_only_unsynchronized_batch_norm_statistics_are_broadcast_each_step(tmp_path, monkeypatch):
    out = _spawn_two(_statistics_worker, tmp_path, monkeypatch)
    for rank in (0, 1):
        sent, numel, layers = out[rank, "plain"]
        assert layers > 2 and sent == [numel, numel]  # two steps: one message each, the running means and variances
        sent, _, layers = out[rank, "sync"]
        assert layers > 2 and sent == []  # train.sync_bn: the statistics are the same everywhere, none is sent


UNEVEN = (0, 3), (3, 4)  # rank 0 holds samples 0-2 of the global batch, rank 1 sample 3


def _penalty_points(rank=0, world=1):
    """GP and DRAGAN points on this rank's share of an uneven global batch of 4, then the generator's next draw."""
    g = torch.Generator().manual_seed(11)
    real, fake = torch.rand(4, 3, 8, 8, generator=g) * 2 - 1, torch.rand(4, 3, 8, 8, generator=g)
    lo, hi = UNEVEN[rank] if world > 1 else (0, 4)
    points = []
    for kind in ("gp", "dragan"):
        generator = step_generator(5, 2, torch.device("cpu"))
        points.append(build_penalty(kind, 1.0).points(real[lo:hi], fake[lo:hi], generator))
        points.append(torch.rand(2, generator=generator))  # each rank drew as many numbers as one process
    return points


def _penalty_worker(rank, world, port, run_dir, out):
    _join(rank, world, port)
    trained = [_train(tree, Path(run_dir) / str(rank), rank, world) for tree in (GP, DRAGAN)]
    out[rank] = trained, _penalty_points(rank, world)
    dist.destroy_process_group()


def test_random_penalties_on_two_processes_train_as_one_with_the_whole_batch(tmp_path, monkeypatch):
    out = _spawn_two(_penalty_worker, tmp_path, monkeypatch)
    for i, tree in enumerate((GP, DRAGAN)):
        _assert_ranks_train_as_one(tree, out[0][0][i], out[1][0][i], tmp_path / "one")
    # uneven shares: the ranks' points are those of one process (DRAGAN's std all-reduced), streams stay in step
    one = _penalty_points()
    (gp0, next0, dragan0, after0), (gp1, next1, dragan1, after1) = out[0][1], out[1][1]
    assert torch.equal(torch.cat([gp0, gp1]), one[0]) and torch.equal(next0, one[1]) and torch.equal(next1, one[1])
    torch.testing.assert_close(torch.cat([dragan0, dragan1]), one[2], rtol=1e-6, atol=1e-7)
    assert torch.equal(after0, one[3]) and torch.equal(after1, one[3])


class _Unreadable(torch.utils.data.Dataset):
    """A training set whose files become unreadable once ``trainer.step`` reaches ``at``."""

    def __init__(self, dataset, trainer, at, failed_at):
        self.dataset, self.trainer, self.at, self.failed_at = dataset, trainer, at, failed_at

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        if self.trainer.step >= self.at:
            self.failed_at.setdefault("t", __import__("time").time())
            raise DataError(f"cannot read image {i}.png")
        return self.dataset[i]


def _data_failure_worker(rank, world, port, run_dir, out):
    import time

    from i2i.engine.guard import StopTraining
    from i2i.engine.trainer import Trainer

    _join(rank, world, port, timeout_s=60)  # without the agreement, rank 0 would wait here for this long
    tree = {**PLAIN, "train": {"max_steps": 8, "checkpoint_every": 100}}
    trainer = Trainer(_config(tree, Path(run_dir) / "run"), Path(run_dir) / "run")
    failed_at = {}
    if rank == 1:  # this rank's data becomes unreadable at step 3
        trainer.dataset.dataset = _Unreadable(trainer.dataset.dataset, trainer, 3, failed_at)
    try:
        trainer.fit()
        out[rank] = ("finished", trainer.step, None)
    except StopTraining as exc:
        out[rank] = (str(exc), trainer.step, time.time())
    out[f"failed_at{rank}"] = failed_at.get("t")
    dist.destroy_process_group()


def test_a_data_failure_on_one_rank_stops_every_rank_with_a_checkpoint(tmp_path, monkeypatch):
    out = _spawn_two(_data_failure_worker, tmp_path, monkeypatch)
    (line0, step0, end0), (line1, step1, end1) = out[0], out[1]
    failed = out["failed_at1"]
    assert step0 == step1 == 3 and failed is not None
    ckpt = tmp_path / "run" / "checkpoints" / "step_0000003.pt"
    import re

    said = "training stopped at step 3: process 1: 8 training items in a row could not be loaded"  # all 8 tried
    assert re.fullmatch(re.escape(said) + r" \(the last: cannot read image \d\.png\); checkpoint " + re.escape(str(ckpt))
                        + re.escape(" (fix the data, then --resume)"), line0), line0
    assert line1.startswith(said)
    assert "\n" not in line0 and "\n" not in line1 and "checkpoint" not in line1  # rank 0 writes the checkpoint
    assert torch.load(ckpt, weights_only=True)["step"] == 3
    assert end0 - failed < 10 and end1 - failed < 10  # within seconds, not a collective's timeout


def _signal_worker(rank, world, port, run_dir, out):
    from i2i.engine.guard import StopTraining
    from i2i.engine.trainer import Trainer

    _join(rank, world, port, timeout_s=60)
    tree = {**PLAIN, "train": {"max_steps": 8, "checkpoint_every": 100}}
    cfg = build_config({**tree, "data": TINY_DATA, "train": {"out_dir": str(Path(run_dir) / "run"), **tree["train"]},
                        "log": {"every": 3, "progress": False, "tensorboard": False}})
    trainer = Trainer(cfg, Path(run_dir) / "run")
    if rank == 1:  # SIGTERM arrives at this process alone, during step 2
        step = trainer.train_step
        trainer.train_step = lambda batch: (setattr(trainer.signals, "requested", signal.SIGTERM)
                                            if trainer.step == 1 else None) or step(batch)
    try:
        trainer.fit()
        out[rank] = ("finished", trainer.step, None)
    except StopTraining as exc:
        out[rank] = (str(exc), trainer.step, exc.exit_code)
    dist.destroy_process_group()


def test_a_signal_on_one_process_stops_every_process_at_the_next_log_step(tmp_path, monkeypatch):
    out = _spawn_two(_signal_worker, tmp_path, monkeypatch)
    (line0, step0, code0), (line1, step1, code1) = out[0], out[1]
    assert step0 == step1 == 3 and code0 == code1 == 128 + signal.SIGTERM  # agreed at log step 3, not at step 2
    ckpt = tmp_path / "run" / "checkpoints" / "step_0000003.pt"
    assert line0 == f"interrupted by SIGTERM at step 3; checkpoint {ckpt}; continue with: i2i-train --resume " \
                    f"{tmp_path / 'run'}"
    assert line1 == "interrupted by SIGTERM at step 3" and ckpt.is_file()


# --------------------------------------------------------------------------- evaluation
EVAL = {"every": 1, "root": "builtin:shapes", "max_items": 5, "metrics": ["psnr", "ssim"]}


def _suite():
    from i2i.metrics import MetricSuite

    torch.manual_seed(0)
    proj = torch.nn.Conv2d(3, 6, 8, stride=8)
    features = lambda x: (proj(x).flatten(1), proj(x).mean((2, 3)))  # noqa: E731  (features, logits)
    palette = {0: (0, 0, 0), 1: (255, 255, 255), 2: (255, 0, 0), 3: (0, 0, 255)}
    return MetricSuite(["psnr", "ssim", "fid", "kid", "is", "seg"], feature_extractor=features, palette=palette,
                       kid={"subsets": 4, "subset_size": 3})


def _evaluate(run_dir, rank=0, world=1):
    from i2i.engine.evaluate import Evaluator
    from i2i.models import build_model

    cfg = _config({**PLAIN, "eval": EVAL}, run_dir)
    torch.manual_seed(0)
    model = build_model(cfg)
    evaluator = Evaluator(cfg, torch.device("cpu"), rank, world)
    evaluator.suite = _suite()
    first = evaluator.run(model)
    second = evaluator.run(model, Path(run_dir) / "page")  # reference features kept, a page written
    n, error = len(evaluator.loader.dataset), None
    if world > 1:  # an unreadable image on rank 1 only: both ranks stop with its error, none waits alone
        class Unreadable:
            def __iter__(self):
                raise DataError("cannot read image bad.png")
        if rank == 1:
            evaluator.loader = Unreadable()
        for html in (None, Path(run_dir) / "page"):
            with pytest.raises(DataError) as info:
                evaluator.run(model, html)
            error = str(info.value)
    return first, second, n, error


def _eval_worker(rank, world, port, run_dir, out):
    _join(rank, world, port)
    out[rank] = _evaluate(run_dir, rank, world)
    dist.destroy_process_group()


def test_sharded_evaluation_gives_the_scores_of_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    out = mp.Manager().dict()
    mp.spawn(_eval_worker, args=(2, _free_port(), str(tmp_path / "two"), out), nprocs=2)
    first, second, n, _ = _evaluate(tmp_path / "one")
    assert n == 5 and (out[0][2], out[1][2]) == (3, 2)  # items 0, 2, 4 on rank 0; 1, 3 on rank 1
    assert set(first) >= {"psnr", "ssim", "fid", "kid", "is", "seg_miou"}
    for rank in (0, 1):
        assert out[rank][3] == "rank 1: cannot read image bad.png"
        assert out[rank][0] == out[0][0] and out[rank][1] == out[0][1]  # the same scores on every rank
        assert out[rank][0].keys() == first.keys()
        for key, value in first.items():
            assert out[rank][0][key] == pytest.approx(value, rel=1e-5, abs=1e-9, nan_ok=True), key
            assert out[rank][1][key] == pytest.approx(second[key], rel=1e-5, abs=1e-9, nan_ok=True), key
    page = (tmp_path / "two" / "page" / "index.html").read_text()  # rank 0 writes all five rows
    assert all(len(list((tmp_path / "two" / "page" / "img" / str(c)).iterdir())) == 5 for c in range(3))
    assert page.count('"name":') == 5


# --------------------------------------------------------------------------- torchrun
def _write(tmp_path, name, tree):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def _run(cmd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def _check(proc, timeout=240):
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:  # a hang (processes waiting in a collective): end the launcher and its workers
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 0, err[-3000:]
    return err


def test_torchrun_two_processes_sync_bn_and_sharded_evaluation(tmp_path):
    tree = {**BATCH_NORM, "model": "pix2pix", "data": TINY_DATA,  # test_batch_stats: eval in training mode
            "train": {"out_dir": str(tmp_path / "runs"), "max_steps": 2, "name": "ddp", "sync_bn": True},
            "eval": {**EVAL, "every": 2, "html": True}, "log": {"every": 1, "progress": False, "tensorboard": False}}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "i2i.cli.train", "--config", str(_write(tmp_path, "ddp", tree))]
    _check(_run(cmd))
    run = tmp_path / "runs" / "ddp"
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["ddp"]
    evals = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "eval/psnr" in r]
    assert [r["step"] for r in evals] == [2] and 0 < evals[0]["eval/psnr"] < 100
    assert len(list((run / "eval" / "step_0000002" / "img" / "0").iterdir())) == 5  # 3 + 2 items, one page
    state = torch.load(run / "checkpoints" / "step_0000002.pt", weights_only=True)
    assert state["step"] == 2 and "G.model.model.1.model.2.running_mean" in state["model"]


def test_two_nodes_on_one_machine_then_resume_with_one_process(tmp_path):
    tree = {**PLAIN, "data": TINY_DATA, "model": "pix2pix",
            "train": {"out_dir": str(tmp_path / "runs"), "max_steps": 2, "name": "nodes"},
            "log": {"every": 1, "progress": False, "tensorboard": False}}
    config, port = _write(tmp_path, "nodes", tree), _free_port()
    nodes = [_run([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(r),
                   "--nproc_per_node", "1", "--master_addr", "127.0.0.1", "--master_port", str(port),
                   "-m", "i2i.cli.train", "--config", str(config)]) for r in (0, 1)]
    for proc in nodes:
        _check(proc)
    run = tmp_path / "runs" / "nodes"
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["nodes"]
    two = torch.load(run / "checkpoints" / "step_0000002.pt", weights_only=True)
    assert two["step"] == 2
    err = _check(_run([sys.executable, "-m", "i2i.cli.train", "--resume", str(run), "--set", "train.max_steps=4"]))
    four = torch.load(run / "checkpoints" / "step_0000004.pt", weights_only=True)
    assert four["step"] == 4, err[-2000:]
    assert not torch.equal(four["model"]["G.model.model.0.weight"], two["model"]["G.model.model.0.weight"])
    steps = [r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]
    assert steps == [1, 2, 3, 4]
