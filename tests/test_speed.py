"""One-device speed options: channels-last layout and torch.compile give eager's losses; a failed
compilation warns in one line and trains eagerly; every translator trains at batch 2."""
import json
import math
import subprocess
import sys

import pytest
import torch

from i2i.checkpoint import load_checkpoint
from i2i.cli.train import main as train_main
from i2i.configure import build_config
from i2i.engine import speed
from i2i.models import build_model

DATA = {"root": "builtin:shapes", "load_size": 36, "crop_size": 32, "batch_size": 2, "num_workers": 0, "max_items": 8}
# a small pix2pix without dropout (compiled dropout draws other random numbers than eager)
SMALL = {"model": "pix2pix", "nets": {"G": {"name": "resnet", "n_blocks": 1, "ngf": 8}, "D": {"ndf": 8, "n_layers": 1}}}
TINY = {
    "pix2pix": {"model": "pix2pix", "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 8},
                                             "D": {"ndf": 8, "n_layers": 2}}},
    "cyclegan": {"model": "cyclegan", "nets": {"G": {"name": "resnet", "n_blocks": 2, "ngf": 8},
                                               "D": {"ndf": 8, "n_layers": 2}}},
    "unit": {"model": "unit", "nets": {"G": {"dim": 4, "n_res": 2}, "D": {"ndf": 4, "n_layers": 2, "num_scales": 2}}},
    "cogan": {"model": "cogan", "nets": {"G": {"size": 32, "ngf": 4}, "D": {"size": 32, "ndf": 4}},
              "data": {"kind": "unpaired", "load_size": 32}},
    "dehazegan": {"model": {"name": "dehazegan", "vgg_weights": "random"},
                  "nets": {"G": {"name": "tiramisu", "n_blocks": 2, "layers": 2, "bottleneck_layers": 2, "growth": 4,
                                 "first_channels": 8, "up_channels": 8}, "D": {"ndf": 8, "n_layers": 2}},
                  "data": {"kind": "paired", "root": "builtin:haze", "load_size": 32}},
}


def losses(run_dir):
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        out.append({k: v for k, v in rec.items() if k.startswith("train/") and "sec_per_it" not in k})
    return out


def write_config(tiny_run, name, tree, steps=2, **train):
    """A tiny run of ``steps`` steps with seed 1."""
    return tiny_run(name, tree, max_steps=steps, seed=1, **train)


def train(tiny_run, name, tree, steps=2, **options):
    path = write_config(tiny_run, name, tree, steps, **options)
    assert train_main(["--config", str(path)]) == 0
    return losses(path.parent / "runs" / name)


def assert_close_losses(a, b, rtol):
    assert len(a) == len(b) > 0
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for k in ra:
            assert ra[k] == pytest.approx(rb[k], rel=rtol, abs=1e-6), k


@pytest.mark.parametrize("model", sorted(TINY))
def test_every_translator_trains_at_batch_2(tmp_path, tiny_run, monkeypatch, model):
    monkeypatch.delenv("I2I_VGG_WEIGHTS", raising=False)
    recs = train(tiny_run, model, TINY[model])
    # finite logs: metrics.jsonl writes NaN and the infinities as the strings "nan", "inf", "-inf"
    assert len(recs) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for r in recs for v in r.values())
    state = load_checkpoint(tmp_path / "runs" / model / "checkpoints" / "step_0000002.pt")
    assert state["step"] == 2


def test_channels_last_gives_the_losses_of_the_default_layout(tiny_run):
    eager = train(tiny_run, "eager", TINY["cyclegan"], steps=3)
    nhwc = train(tiny_run, "nhwc", TINY["cyclegan"], steps=3, channels_last=True)
    assert_close_losses(nhwc[:1], eager[:1], rtol=1e-5)  # the same weights: rounding apart, the same numbers
    # the norms and convolutions reduce in another order; GAN updates (Adam) amplify the last bits
    assert_close_losses(nhwc, eager, rtol=1e-3)


def test_channels_last_puts_the_weights_and_batches_in_that_layout(tmp_path):
    cfg = build_config({**SMALL, "data": DATA})
    model = build_model(cfg)
    speed.prepare(model, model.optim_groups(), torch.device("cpu"), channels_last=True, compile=False)
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in convs)
    batch = speed.to_device({"A": torch.randn(2, 3, 8, 8), "path": ["a"]}, torch.device("cpu"), channels_last=True)
    assert batch["A"].is_contiguous(memory_format=torch.channels_last) and batch["path"] == ["a"]


def test_compiled_networks_give_eager_losses_and_plain_checkpoints(tmp_path, tiny_run):
    eager = train(tiny_run, "eager", SMALL)
    compiled = train(tiny_run, "compiled", SMALL, compile=True)
    assert_close_losses(compiled, eager, rtol=1e-3)
    a = load_checkpoint(tmp_path / "runs" / "eager" / "checkpoints" / "step_0000002.pt")["model"]
    b = load_checkpoint(tmp_path / "runs" / "compiled" / "checkpoints" / "step_0000002.pt")["model"]
    assert a.keys() == b.keys()
    for k in a:  # Adam moves a weight by about lr = 2e-4 a step whatever the gradient's size: 2 steps, 2 lr each
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=2 * 2 * 2e-4 + 1e-5)


def failing_backend(gm, example_inputs):
    raise RuntimeError("no C compiler here\nsecond line")


def test_a_failed_compilation_warns_once_and_trains_eagerly(tiny_run, monkeypatch, capsys):
    eager = train(tiny_run, "eager", TINY["cyclegan"])
    capsys.readouterr()
    monkeypatch.setattr(speed, "BACKEND", failing_backend)
    fallback = train(tiny_run, "fallback", TINY["cyclegan"], compile=True)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "train.compile" in line]
    assert len(warnings) == 1 and "no C compiler here" in warnings[0] and "without compilation" in warnings[0]
    assert fallback == eager  # eager from the first call on: the very same numbers


def failing_backward_backend():
    """A backend whose forward compiles (unchanged graphs) and whose backward compilation fails."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    def backward(gm, example_inputs):
        raise RuntimeError("the backward kernel does not build\nsecond line")

    return aot_autograd(fw_compiler=lambda gm, example_inputs: make_boxed_func(gm.forward), bw_compiler=backward)


def test_a_failed_backward_compilation_warns_once_and_trains_eagerly(tmp_path, tiny_run, monkeypatch, capsys):
    # the backward is compiled with the forward, at the first call, so its failure is a failed compilation too
    eager = train(tiny_run, "eager", SMALL)
    capsys.readouterr()
    monkeypatch.setattr(speed, "BACKEND", failing_backward_backend())
    fallback = train(tiny_run, "fallback", SMALL, compile=True)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "train.compile" in line]
    assert len(warnings) == 1 and "the backward kernel does not build" in warnings[0]
    assert fallback == eager  # eager from the first call on: the very same numbers
    a = load_checkpoint(tmp_path / "runs" / "eager" / "checkpoints" / "step_0000002.pt")["model"]
    b = load_checkpoint(tmp_path / "runs" / "fallback" / "checkpoints" / "step_0000002.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

def test_compiled_d_with_a_gradient_penalty_trains(tiny_run, monkeypatch, capsys):
    # the penalty differentiates D's input gradient: D runs eagerly inside it, compiled elsewhere
    tree = {**SMALL, "losses": {"gan": "wgangp"}}
    eager = train(tiny_run, "eager", tree, steps=1)
    compiled = train(tiny_run, "compiled", tree, steps=1, compile=True)
    assert "train.compile" not in capsys.readouterr().err
    assert_close_losses(compiled, eager, rtol=1e-3)


def test_compile_networks_can_be_undone():
    net = torch.nn.Conv2d(3, 4, 3)
    nets = [("net", net)]
    speed.compile_networks(nets)
    assert isinstance(net.forward, speed._Compiled) and set(net.state_dict()) == {"weight", "bias"}
    speed.eager_networks(nets)
    assert not isinstance(net.forward, speed._Compiled)


FAULTS = """
import resource, sys, torch
from i2i.engine import speed
torch.set_num_threads(2)  # glibc reuses less of this pattern's memory when two threads write it
took = speed.cache_cpu_malloc() if sys.argv[1] == "cache" else None
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):  # a step's activations: blocks of a few MiB alive together, written, then freed
    kept = [torch.empty(n << 18).fill_(1.0) for n in (1, 2, 4, 8, 16, 8, 4, 2, 1) * 4]
    del kept
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
def test_cpu_malloc_cache_stops_faulting_freed_memory_in_again():
    def faults(mode):
        out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
        took, n = out.stdout.split()
        return took, int(n)

    took, cached = faults("cache")
    _, plain = faults("plain")
    pages = 184 * 256  # 184 MiB of 4 KiB pages written per iteration
    assert took == "True"
    assert cached < 2 * pages  # the first iteration only
    assert plain > 1.5 * cached  # glibc's defaults: fresh zeroed pages again in later iterations


def test_trainer_sets_the_cpu_malloc_cache_as_configured(tiny_run, monkeypatch):
    calls = []
    monkeypatch.setattr(speed, "cache_cpu_malloc", lambda: calls.append(1) or True)
    train(tiny_run, "off", TINY["pix2pix"], steps=1, cpu_malloc_cache=False)
    assert calls == []
    train(tiny_run, "on", TINY["pix2pix"], steps=1)
    assert calls == [1]


def test_only_compiler_errors_make_the_networks_eager():
    net = torch.nn.Conv2d(3, 4, 3)
    shared = speed.compile_networks([("net", net)])
    compiled = net.forward

    def fails(error):
        def call(*args, **kwargs):
            raise error
        return call

    compiled.compiled = fails(ValueError("a bug of the network, or a kernel that failed at run time"))
    with pytest.raises(ValueError, match="a bug of the network"):
        net(torch.randn(1, 3, 8, 8))
    assert shared == {"failed": False}  # not a compilation failure: compilation stays on
    # an out-of-memory error raised while compiling (autotuning) is the out-of-memory error, not a compiler failure
    def oom_backend(gm, example_inputs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    torch._dynamo.reset()
    compiled.compiled = torch.compile(compiled.eager, backend=oom_backend)
    with pytest.raises(torch.OutOfMemoryError, match="CUDA out of memory"):
        net(torch.randn(1, 3, 8, 8))
    assert shared == {"failed": False}
    torch._dynamo.reset()
    compiled.compiled = torch.compile(compiled.eager, backend=failing_backend)  # a compiler failure
    assert net(torch.randn(1, 3, 8, 8)).shape == (1, 4, 6, 6) and shared == {"failed": True}  # eager from now on
    speed.eager_networks([("net", net)])


@pytest.mark.parametrize("compile", [False, True])
def test_out_of_memory_in_a_step_is_one_line_naming_batch_and_image_size(tiny_run, monkeypatch, capsys, compile):
    tree = TINY["pix2pix"]
    if compile:  # out of memory while compiling (max-autotune benchmarks kernels on the GPU)
        monkeypatch.setattr(speed, "BACKEND", lambda gm, inputs: (_ for _ in ()).throw(
            torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")))
    else:
        from i2i.nn.discriminators import PatchDiscriminator

        monkeypatch.setattr(PatchDiscriminator, "forward", lambda self, x: (_ for _ in ()).throw(
            torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")))
    path = write_config(tiny_run, "oom", tree, compile=compile)
    assert train_main(["--config", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("error: out of memory in training step 1 (data.batch_size 2, 32 x 32 px images, train.amp off): "
                       "CUDA out of memory. Tried to allocate 2.00 GiB; lower data.batch_size or data.crop_size, "
                       "or use train.amp bf16")
    assert not any("torch.compile failed" in line for line in err)


@pytest.mark.parametrize("mode", ["reduce-overhead", "max-autotune"])
def test_compile_modes_that_replay_cuda_graphs_are_refused(tmp_path, tiny_run, capsys, mode):
    path = write_config(tiny_run, "graphs", TINY["pix2pix"], compile=True, compile_mode=mode)
    assert train_main(["--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: train.compile_mode: {mode} replays CUDA graphs") and len(err) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no run folder left
    assert train_main(["--config", str(write_config(tiny_run, "eager", TINY["pix2pix"], compile_mode=mode))]) == 0
