"""Engine units: lr policies, image pool, AMP settings, checkpoint files."""
import pytest
import torch

from i2i.checkpoint import list_checkpoints, load_checkpoint, prune_checkpoints, save_checkpoint
from i2i.config import OptimConfig, TrainConfig
from i2i.engine.optim import make_optimizer
from i2i.engine.rng import step_generator
from i2i.engine.schedule import lr_lambda
from i2i.errors import CheckpointError, ConfigError
from i2i.models.image_pool import ImagePool
from i2i.runtime import check_amp, select_device


def test_linear_policy_matches_the_reference_rule():
    f = lr_lambda(OptimConfig(schedule="linear"), TrainConfig(epochs=100, epochs_decay=100))
    assert [f(e) for e in (0, 99)] == [1.0, 1.0]
    assert f(100) == pytest.approx(1 - 1 / 101) and f(199) == pytest.approx(1 - 100 / 101)


def test_step_cosine_and_constant_policies():
    step = lr_lambda(OptimConfig(schedule="step", step_size=10, gamma=0.5), TrainConfig())
    assert [step(e) for e in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    cos = lr_lambda(OptimConfig(schedule="cosine"), TrainConfig(epochs=2, epochs_decay=4))
    assert [cos(e) for e in (0, 2, 4, 6)] == pytest.approx([1.0, 1.0, 0.5, 0.0])
    assert lr_lambda(OptimConfig(schedule="constant"), TrainConfig())(1000) == 1.0


def test_per_iteration_schedules_count_iterations():
    # UNIT: halve every 100k iterations
    halve = lr_lambda(OptimConfig(schedule="step", unit="iter", step_size=100_000, gamma=0.5), TrainConfig())
    assert [halve(t) for t in (0, 99_999, 100_000, 250_000)] == [1.0, 1.0, 0.5, 0.25]
    # linear with an iteration clock: epochs converted at 10 iterations each
    lin = lr_lambda(OptimConfig(schedule="linear", unit="iter"), TrainConfig(epochs=1, epochs_decay=1), 10)
    assert lin(9) == 1.0 and lin(10) == pytest.approx(1 - 1 / 11) and lin(19) == pytest.approx(1 - 10 / 11)


def test_image_pool_returns_new_or_stored_fakes_and_round_trips():
    torch.manual_seed(0)
    pool = ImagePool(3)
    first = torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned as given
    seen_old = False
    for step in range(20):
        new = torch.full((2, 1, 1, 1), 100.0 + step)
        out = pool.query(new)
        assert out.shape == new.shape
        seen_old |= bool((out < 100).any())
        stored = {float(t) for t in pool.images}
        assert len(pool.images) == 3
    assert seen_old
    clone = ImagePool(3)
    clone.load_state_dict(pool.state_dict())
    assert [float(t) for t in clone.images] == [float(t) for t in pool.images]
    assert stored == {float(t) for t in clone.images}
    assert torch.equal(ImagePool(0).query(first), first)


def test_amp_and_device_errors():
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        check_amp(torch.device("cpu"), "fp16")
    check_amp(torch.device("cpu"), "bf16")
    assert select_device("cpu").type == "cpu"
    with pytest.raises(ConfigError, match="train.device: 'banana' is not a torch device"):
        select_device("banana")


def test_fused_adam_on_cpu_matches_the_plain_one():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    opt_a = make_optimizer(list(a.parameters()), OptimConfig(lr=1e-2, betas=[0.5, 0.999]), torch.device("cpu"))
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-2, betas=(0.5, 0.999))
    for _ in range(5):
        x = torch.randn(8, 4)
        for net, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad(set_to_none=True)
            net(x).pow(2).mean().backward()
            opt.step()
    torch.testing.assert_close(a.weight, b.weight)


def test_checkpoint_files_are_atomic_rotated_and_checked(tmp_path):
    run = tmp_path / "run"
    for step in (1, 2, 3, 4):
        save_checkpoint({"model": {"w": torch.ones(2) * step}, "config": {}, "step": step},
                        run / "checkpoints" / f"step_{step:07d}.pt")
    prune_checkpoints(run, keep_last=2)
    assert [p.name for p in list_checkpoints(run)] == ["step_0000003.pt", "step_0000004.pt"]
    assert not list((run / "checkpoints").glob(".*tmp*"))
    assert load_checkpoint(run)["step"] == 4
    (run / "checkpoints" / "step_0000009.pt").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="not a readable i2i checkpoint"):
        load_checkpoint(run / "checkpoints" / "step_0000009.pt")
    assert load_checkpoint(run)["step"] == 4  # a run folder: the newest readable checkpoint
    with pytest.raises(CheckpointError, match="no checkpoints"):
        load_checkpoint(tmp_path)


def test_the_step_generator_depends_on_the_seed_and_the_step_only():
    cpu = torch.device("cpu")
    state = torch.get_rng_state()
    draw = lambda seed, step: torch.rand(4, generator=step_generator(seed, step, cpu))  # noqa: E731
    assert torch.equal(draw(0, 5), draw(0, 5))
    assert not torch.equal(draw(0, 5), draw(0, 6)) and not torch.equal(draw(0, 5), draw(1, 5))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left alone


def test_the_distributed_backend_follows_the_training_device_not_the_host(monkeypatch):
    import torch.distributed as tdist

    from i2i.engine import distributed

    assert distributed.backend_for(torch.device("cpu")) == "gloo"
    assert distributed.backend_for(torch.device("cuda", 1)) == "nccl"
    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a host with GPUs
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: calls.append(("set_device", i)))
    monkeypatch.setattr(tdist, "is_initialized", lambda: False)
    monkeypatch.setattr(tdist, "init_process_group", lambda backend: calls.append(("init", backend)))
    info = distributed.init_distributed(torch.device("cpu"))  # train.device: cpu on that host
    assert calls == [("init", "gloo")] and (info.rank, info.world_size, info.local_rank) == (1, 2, 1)
    calls.clear()
    monkeypatch.setattr(tdist, "new_group", lambda backend: calls.append(("new_group", backend)) or "host group")
    info = distributed.init_distributed(torch.device("cuda"))
    # with NCCL, a gloo group for the agreement on each batch through host memory (distributed.host_gather)
    assert calls == [("set_device", 1), ("init", "nccl"), ("new_group", "gloo")] and info.host_group == "host group"


def test_checkpoints_hold_the_rng_state_of_their_own_gpu_only(monkeypatch):
    # a multi-GPU checkpoint resumes on fewer GPUs; checked with CUDA's functions replaced (no GPU needed)
    from i2i.engine.rng import rng_state, set_rng_state

    gpu_states = {i: torch.full((4,), i, dtype=torch.uint8) for i in range(4)}  # one generator per GPU
    restored = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: gpu_states[device.index].clone())
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device: restored.append((device.index, s)))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)

    def every_gpu():
        raise AssertionError("the states of every visible GPU are not saved")

    monkeypatch.setattr(torch.cuda, "get_rng_state_all", every_gpu)
    state = rng_state(torch.device("cuda", 3))
    assert torch.equal(state["cuda"], gpu_states[3]) and "cuda" not in rng_state(torch.device("cpu"))
    assert "cuda" not in rng_state()
    set_rng_state(state, torch.device("cuda", 0))  # resumed by a process of another (or the only) GPU
    assert len(restored) == 1 and restored[0][0] == 0 and torch.equal(restored[0][1], gpu_states[3])
    restored.clear()
    set_rng_state(state, torch.device("cpu"))  # resumed on the CPU: the GPU state is not used
    assert restored == []
    # an older checkpoint holds the list of every visible GPU's state: the device's own entry is taken
    old = {**rng_state(), "cuda": [gpu_states[i] for i in range(4)]}
    set_rng_state(old, torch.device("cuda", 2))
    set_rng_state(old, torch.device("cuda"))  # the current device (0)
    set_rng_state(old, torch.device("cuda", 5))  # written on a machine with fewer GPUs than this index
    assert [(i, int(s[0])) for i, s in restored] == [(2, 2), (None, 0)]
    torch.manual_seed(7)
    saved = rng_state()
    first = torch.rand(3)
    set_rng_state(saved)
    assert torch.equal(torch.rand(3), first)  # the CPU generator round-trips


@pytest.fixture
def numerics_restored(monkeypatch):
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.deterministic = flags[:3]
    torch.use_deterministic_algorithms(flags[3], warn_only=flags[4])


def test_tf32_and_determinism_policy(numerics_restored):
    import os

    from i2i.runtime import set_numerics

    set_numerics(torch.device("cuda"), tf32=True, deterministic=True)  # the flags are set without a GPU
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert torch.backends.cudnn.deterministic and torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()  # an op without a deterministic kernel warns
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    set_numerics(torch.device("cuda"), tf32=False, deterministic=False)
    assert not (torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32)
    assert not (torch.backends.cudnn.deterministic or torch.are_deterministic_algorithms_enabled())
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":16:8"  # the user's own setting is kept
    set_numerics(torch.device("cuda"), tf32=False, deterministic=True)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    del os.environ["CUBLAS_WORKSPACE_CONFIG"]
    set_numerics(torch.device("cpu"), tf32=True, deterministic=True)  # TF32 and cuBLAS are CUDA's
    assert not torch.backends.cuda.matmul.allow_tf32 and "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    assert torch.are_deterministic_algorithms_enabled()


def test_a_deterministic_run_turns_off_cudnn_autotuning(tmp_path, numerics_restored, monkeypatch):
    from i2i.configure import build_config
    from i2i.engine import speed
    from i2i.engine.trainer import Trainer

    seen = {}
    prepare = speed.prepare
    monkeypatch.setattr(speed, "prepare", lambda *a: seen.update(benchmark=a[6]) or prepare(*a))
    tree = {"model": "pix2pix", "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 4}, "D": {"ndf": 4, "n_layers": 1}},
            "data": {"root": "builtin:shapes", "load_size": 32, "crop_size": 32, "batch_size": 2, "num_workers": 0,
                     "max_items": 4},
            "train": {"out_dir": str(tmp_path), "deterministic": True, "max_steps": 1},
            "log": {"progress": False, "tensorboard": False}}
    Trainer(build_config(tree), tmp_path / "run")
    assert seen == {"benchmark": False} and torch.are_deterministic_algorithms_enabled()


def test_evaluation_makes_page_rows_only_for_a_page(tmp_path, monkeypatch):
    import i2i.data.io as io
    from i2i.configure import build_config
    from i2i.engine.evaluate import Evaluator
    from i2i.models import build_model

    data = {"root": "builtin:shapes", "load_size": 32, "crop_size": 32, "batch_size": 2, "num_workers": 0}
    cfg = build_config({"model": "pix2pix", "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 4},
                                                     "D": {"ndf": 4, "n_layers": 1}},
                        "data": data, "train": {"out_dir": str(tmp_path)},
                        "eval": {"every": 1, "root": "builtin:shapes", "max_items": 3, "metrics": ["psnr"]}})
    model, evaluator = build_model(cfg), Evaluator(cfg, torch.device("cpu"))
    converted = []
    to_image = io.tensor_to_image
    monkeypatch.setattr(io, "tensor_to_image", lambda t: converted.append(t) or to_image(t))
    scores = evaluator.run(model)
    assert converted == [] and 0 < scores["psnr"] < 100  # no host copies of the images without eval.html
    assert evaluator.run(model, tmp_path / "page") == pytest.approx(scores)
    assert len(converted) == 3 * 3 and (tmp_path / "page" / "index.html").is_file()  # input, output, target
