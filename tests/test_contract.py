"""The translator contract: a new translator is one file plus a config.

Covers settings owned by the model, networks by role, optimizer groups as
modules (a shared layer stepped once), phases with intervals, the EMA,
inference that leaves training state alone, plugins, the layering of the
config package, and the losses of pix2pix and CycleGAN recorded before the
contract changed (``tests/data/losses_before_contract_v2.json``, written by the
previous engine from the configs below in their old form: ``nets.generator``
and ``nets.discriminator``).
"""
import copy
import functools
import json
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from i2i import load_translator
from i2i.checkpoint import load_checkpoint
from i2i.cli.train import main as train_main
from i2i.engine.ema import EMA
from i2i.engine.optim import group_parameters
from i2i.nn import norms

TINY = {
    "pix2pix": {"model": "pix2pix", "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 8},
                                             "D": {"ndf": 8, "n_layers": 2}}},
    "cyclegan": {"model": "cyclegan", "nets": {"G": {"name": "resnet", "n_blocks": 2, "ngf": 8},
                                               "D": {"ndf": 8, "n_layers": 2}}},
}


GOLDEN_CLOSE_STEPS = {"pix2pix": 20, "cyclegan": 6}


def records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("model", ["pix2pix", "cyclegan"])
def test_losses_match_those_recorded_before_the_contract_changed(tmp_path, tiny_run, model, monkeypatch):
    # recorded with torch's InstanceNorm2d; the "instance" norm is now a group norm with one group per channel,
    # the same formula rounded differently in the last bits (tests/test_nn.py compares the two)
    monkeypatch.setitem(norms._FACTORIES, "instance",
                        functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False))
    golden = json.loads((__import__("pathlib").Path(__file__).parent / "data" /
                         "losses_before_contract_v2.json").read_text())[model]
    # recorded with 2 torch threads; reductions split by thread count round differently in the last digit
    cfg = tiny_run(model, TINY[model], epochs=3, epochs_decay=3, max_steps=20, seed=3, threads=2)
    threads = torch.get_num_threads()
    try:
        assert train_main(["--config", str(cfg)]) == 0
    finally:
        torch.set_num_threads(threads)
    new = records(tmp_path / "runs" / model)
    assert len(new) == len(golden) == 20
    # Recorded on one CPU; oneDNN picks other kernels on others (AVX2, AVX-512, AMX), which round differently
    # in the 7th digit. Measured against the recording on AVX2 and AVX-512 BF16 paths: pix2pix stays within
    # 2.2e-5 (relative) for all 20 steps; CycleGAN within 5e-6 for 6 steps, after which its LSGAN losses
    # amplify the rounding (2e-4 at step 7, up to 8e-2 by step 17). A change of the math shows at step 1,
    # so the steps before the amplification are compared at 1e-4 and the rest only loosely.
    close_steps = GOLDEN_CLOSE_STEPS[model]
    for old, rec in zip(golden, new):
        tol = 1e-4 if old["step"] <= close_steps else 0.3
        for key, value in old.items():
            # the one renamed log: the lr is logged per optimizer group
            assert rec[{"train/lr": "train/lr_G"}.get(key, key)] == pytest.approx(value, rel=tol, abs=1e-7), \
                (old["step"], key)


TOY = textwrap.dedent('''
    """A toy translator defined outside the package: three optimizer groups, a shared layer,
    a phase every second iteration, its own settings."""
    from dataclasses import dataclass

    import torch
    import torch.nn.functional as F
    from torch import nn

    from i2i.config import ModelSettings, rule
    from i2i.models import Model, Phase, scalar_logs
    from i2i.nn import build_generator
    from i2i.registry import GENERATORS, MODELS


    @dataclass
    class ToySettings(ModelSettings):
        name: str = "toy3"
        weight_b: float = rule(0.5, ge=0)
        critic_every: int = rule(2, ge=1)


    def conv(c_in, c_out):
        return nn.Conv2d(c_in, c_out, 3, padding=1)


    @MODELS.register("toy3", override=True)
    class Toy(Model):
        Settings = ToySettings
        roles = {"head": GENERATORS}
        groups = ("main", "head", "critic")
        ema_group = "main"
        defaults = {"nets": {"head": {"name": "unet", "num_downs": 5, "ngf": 4}},
                    "optim": {"main": {"lr": 1e-3}, "head": {"type": "sgd", "lr": 1e-2, "momentum": 0.9},
                              "critic": {"type": "rmsprop", "lr": 1e-3, "schedule": "step", "unit": "iter",
                                         "step_size": 3, "gamma": 0.5}},
                    "data": {"kind": "aligned"}}

        def __init__(self, cfg):
            super().__init__(cfg)
            self.shared = conv(4, 4)
            self.net_a = nn.Sequential(conv(3, 4), nn.ReLU(), self.shared, nn.ReLU(), conv(4, 3))
            self.net_b = nn.Sequential(conv(3, 4), nn.ReLU(), self.shared, nn.ReLU(), conv(4, 3))
            self.head = build_generator(cfg.nets["head"], 3, 3)
            self.critic = nn.Sequential(conv(3, 2), nn.AdaptiveAvgPool2d(1))

        def optim_groups(self):
            return {"main": [self.net_a, self.net_b], "head": [self.head], "critic": [self.critic]}

        def phases(self):
            return [Phase("main", "main"), Phase("head", "head", frozen=("main",)),
                    Phase("critic", "critic", every=self.settings.critic_every)]

        def loss(self, phase, batch, out):
            a, b = batch["A"], batch["B"]
            if phase == "main":
                la, lb = F.l1_loss(self.net_a(a), b), F.l1_loss(self.net_b(a), b)
                return la + self.settings.weight_b * lb, scalar_logs(l_a=la, l_b=lb)
            if phase == "head":
                loss = F.l1_loss(self.head(self.net_a(a)), b)
                return loss, scalar_logs(l_head=loss)
            loss = (self.critic(b).mean() - 1) ** 2
            return loss, scalar_logs(l_critic=loss)

        def generator(self, direction="AtoB"):
            self.check_direction(direction)
            return self.net_a

        def visuals(self, batch, out):
            return [batch["A"], self.net_a(batch["A"]).detach(), batch["B"]]
''')


def test_a_translator_from_outside_the_package_trains_and_resumes_exactly(tmp_path, tiny_run):
    (tmp_path / "toy_translator.py").write_text(TOY)
    plugin = str(tmp_path / "toy_translator.py")
    tree = {"imports": [plugin], "model": {"name": "toy3", "weight_b": 0.25}, "train": {}}
    full = tiny_run("full", tree, epochs=1, epochs_decay=1)  # 8 items / 2 = 4 steps an epoch
    cut = tiny_run("cut", tree, epochs=1, epochs_decay=1, max_steps=5)
    assert train_main(["--config", str(full)]) == 0
    assert train_main(["--config", str(cut)]) == 0
    assert train_main(["--resume", str(tmp_path / "runs" / "cut"), "--set", "train.max_steps=0", "--import", plugin]) == 0
    a, b = load_checkpoint(tmp_path / "runs" / "full"), load_checkpoint(tmp_path / "runs" / "cut")
    assert a["step"] == b["step"] == 8
    assert a["config"]["model"] == {"name": "toy3", "test_batch_stats": False, "weight_b": 0.25, "critic_every": 2}
    for key, value in a["model"].items():
        assert torch.equal(b["model"][key], value), key
    main_opt = a["optimizers"]["main"]
    # net_a and net_b share one conv: 2 + 2 (own first convs) + 2 (shared) + 2 + 2 (own last convs) = 10 tensors
    assert len(main_opt["param_groups"][0]["params"]) == 10
    # the critic phase ran at iterations 0, 2, 4, 6; its lr halves every 3 of its scheduler's iterations
    assert [int(s["step"]) for s in a["optimizers"]["critic"]["state"].values()] == [4, 4]
    assert a["optimizers"]["critic"]["param_groups"][0]["lr"] == pytest.approx(1e-3 * 0.5 ** (8 // 3))
    rows = records(tmp_path / "runs" / "full")
    assert [r["step"] for r in rows if "train/l_critic" in r] == [1, 3, 5, 7]
    assert all("train/l_head" in r and "train/lr_head" in r for r in rows)


def test_the_plugin_option_of_the_cli_registers_before_the_config_is_read(tmp_path, tiny_run, capsys):
    (tmp_path / "toy_translator.py").write_text(TOY.replace('"toy3"', '"toy3_cli"'))
    cfg = tiny_run("cli", {"model": "toy3_cli"}, max_steps=2)
    assert train_main(["--config", str(cfg)]) == 2
    assert "unknown model 'toy3_cli'" in capsys.readouterr().err
    assert train_main(["--import", str(tmp_path / "toy_translator.py"), "--config", str(cfg)]) == 0
    assert train_main(["--import", "no_such_plugin_module", "--config", str(cfg)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: --import no_such_plugin_module: cannot import (ModuleNotFoundError: No module named "
        "'no_such_plugin_module')")


def test_a_layer_shared_by_two_networks_is_one_parameter_of_its_group():
    shared = nn.Linear(3, 3)
    net_a, net_b = nn.Sequential(nn.Linear(2, 3), shared), nn.Sequential(nn.Linear(4, 3), shared)
    params = group_parameters({"G": [net_a, net_b], "D": [nn.Linear(1, 1)]})
    assert len(params["G"]) == 6 and sum(p is shared.weight for p in params["G"]) == 1
    with pytest.raises(ValueError, match="groups 'G' and 'D'"):
        group_parameters({"G": [net_a], "D": [net_b]})


def test_ema_averages_parameters_copies_buffers_and_restores_exactly():
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.BatchNorm1d(2))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    ema = EMA(net, [net], decay=0.9, start=1)
    with torch.no_grad():
        net[0].weight.fill_(2.0)
        net[1].running_mean.fill_(5.0)
    ema.update(1)  # step <= start: follows the weights
    assert torch.equal(ema.shadow["0.weight"], torch.full((2, 2), 2.0))
    with torch.no_grad():
        net[0].weight.fill_(3.0)
    ema.update(2)  # 0.9 * 2 + 0.1 * 3
    assert torch.allclose(ema.shadow["0.weight"], torch.full((2, 2), 2.1))
    assert torch.equal(ema.shadow["1.running_mean"], torch.full((2,), 5.0))
    with ema.applied():
        assert torch.allclose(net[0].weight, torch.full((2, 2), 2.1))
    assert torch.equal(net[0].weight, torch.full((2, 2), 3.0))


def test_ema_is_checkpointed_and_used_for_translation_by_default(tmp_path, tiny_run):
    cfg = tiny_run("ema", TINY["cyclegan"], max_steps=3, ema={"decay": 0.5})
    assert train_main(["--config", str(cfg)]) == 0
    state = load_checkpoint(tmp_path / "runs" / "ema")
    assert state["ema"] and all(k.startswith(("G_A.", "G_B.")) for k in state["ema"])
    key = next(k for k in state["ema"] if k.endswith("weight"))
    assert not torch.equal(state["ema"][key], state["model"][key])
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    ema_out = load_translator(tmp_path / "runs" / "ema")(x)
    raw = load_translator(tmp_path / "runs" / "ema", weights="raw")
    assert torch.equal(raw.model.G_A.state_dict()[key[len("G_A."):]] if key.startswith("G_A.") else
                       raw.model.G_B.state_dict()[key[len("G_B."):]], state["model"][key])
    assert not torch.allclose(ema_out, raw(x))


def test_evaluation_during_training_does_not_change_training(tmp_path, tiny_run):
    plain = tiny_run("plain", TINY["pix2pix"], max_steps=4)
    evald = tiny_run("evald", {**TINY["pix2pix"], "eval": {
        "every": 2, "root": "builtin:shapes", "max_items": 4, "metrics": ["psnr"]}}, max_steps=4)
    assert train_main(["--config", str(plain)]) == 0
    assert train_main(["--config", str(evald)]) == 0
    a, b = load_checkpoint(tmp_path / "runs" / "plain"), load_checkpoint(tmp_path / "runs" / "evald")
    assert any("eval/psnr" in r for r in records(tmp_path / "runs" / "evald"))
    for key, value in a["model"].items():
        assert torch.equal(b["model"][key], value), key


def test_translate_keeps_batch_norm_statistics(tmp_path, tiny_run):
    cfg = tiny_run("bn", TINY["pix2pix"], max_steps=1)
    assert train_main(["--config", str(cfg)]) == 0
    tr = load_translator(tmp_path / "runs" / "bn")
    before = {k: v.clone() for k, v in tr.model.G.state_dict().items()}
    tr(torch.rand(2, 3, 32, 32) * 2 - 1)
    for key, value in tr.model.G.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("batch_stats", [False, True])
def test_test_batch_stats_is_a_setting_every_translator_has(batch_stats):
    from i2i.configure import build_config
    from i2i.models import build_model

    nets = {"G": {"name": "unet", "num_downs": 5, "ngf": 4, "norm": "batch", "dropout": False}, "D": {"ndf": 4}}
    cfg = build_config({"model": {"name": "pix2pix", "test_batch_stats": batch_stats}, "nets": nets,
                        "data": {"root": "builtin:shapes"}})
    model = build_model(cfg).eval()
    running = {k: v.clone() for k, v in model.G.state_dict().items()}
    x = torch.randn(3, 3, 32, 32)
    out = model.translate(x)
    for key, value in model.G.state_dict().items():
        assert torch.equal(value, running[key]), key  # running statistics as they were
    with torch.no_grad():
        as_set, other = (copy.deepcopy(model.G).train(mode) for mode in (batch_stats, not batch_stats))
        torch.testing.assert_close(out, as_set(x))  # the batch statistics of x, or the running ones
        assert not torch.allclose(out, other(x))
    assert model.translation_report() == {}
    unit = {"model": {"name": "unit", "test_batch_stats": True}, "data": {"root": "builtin:shapes", "kind": "unpaired"}}
    assert build_config(unit).model.test_batch_stats  # a translator that does not declare it has it too


def test_a_setting_only_inference_by_inversion_cannot_honour_is_refused():
    from i2i.configure import build_config
    from i2i.errors import ConfigError

    tree = {"model": {"name": "cogan", "test_batch_stats": True}, "data": {"root": "builtin:shapes"}}
    with pytest.raises(ConfigError, match="^model.test_batch_stats: cogan translates by latent inversion"):
        build_config(tree)


def test_each_translator_upgrades_its_own_settings_of_an_older_format():
    from i2i.models import Model
    from i2i.models.cyclegan import CycleGAN
    from i2i.models.pix2pix import Pix2Pix

    losses = {"l1": 7.0, "cycle": 3.0, "identity": 0.25, "gan": "lsgan"}
    assert Pix2Pix.upgrade_settings(1, {"name": "pix2pix", "pool_size": 50}, losses) == {"name": "pix2pix",
                                                                                         "lambda_l1": 7.0}
    assert CycleGAN.upgrade_settings(1, {"name": "cyclegan", "pool_size": 50}, losses) == {
        "name": "cyclegan", "pool_size": 50, "lambda_cycle": 3.0, "lambda_identity": 0.25}
    assert Model.upgrade_settings(1, {"name": "x", "a": 1}, losses) == {"name": "x", "a": 1}
    assert Pix2Pix.upgrade_settings(2, {"name": "pix2pix", "pool_size": 50}, losses) == {"name": "pix2pix",
                                                                                         "pool_size": 50}


def test_n_critic_and_lazy_regularization_are_phase_intervals(tmp_path, tiny_run):
    tree = {**TINY["pix2pix"], "losses": {"gan": "hinge", "n_critic": 2, "penalty": {"type": "r1", "weight": 1.0,
                                                                                    "every": 3}}}
    cfg = tiny_run("phases", tree, max_steps=6)
    assert train_main(["--config", str(cfg)]) == 0
    rows = records(tmp_path / "runs" / "phases")
    assert [r["step"] for r in rows if "train/G_gan" in r] == [1, 3, 5]
    assert [r["step"] for r in rows if "train/D_reg" in r] == [1, 4]
    assert all("train/D" in r for r in rows)


def test_the_wgan_objective_brings_its_own_n_critic(tmp_path, tiny_run):
    cfg = tiny_run("wgan", {**TINY["pix2pix"], "losses": {"gan": "wgangp"}}, max_steps=6)
    assert train_main(["--config", str(cfg)]) == 0
    assert [r["step"] for r in records(tmp_path / "runs" / "wgan") if "train/G_gan" in r] == [1, 6]


def test_gradient_clipping_bounds_the_step(tmp_path, tiny_run):
    tree = {**TINY["pix2pix"], "optim": {"default": {"type": "sgd", "lr": 1.0, "grad_clip": 1e-3, "schedule": "constant"}}}
    cfg = tiny_run("clip", tree, max_steps=1)
    assert train_main(["--config", str(cfg), "--set", "train.seed=1"]) == 0
    tiny_run("init", tree, max_steps=1)
    from i2i.configure import load_config
    from i2i.models import build_model
    from i2i.engine.rng import seed_everything

    seed_everything(1)
    init = build_model(load_config(tmp_path / "init.yaml", ["train.seed=1"])).state_dict()
    after = load_checkpoint(tmp_path / "runs" / "clip")["model"]
    g_keys = [k for k in after if k.startswith("G.") and after[k].is_floating_point() and "running" not in k]
    step = torch.cat([(after[k] - init[k]).flatten() for k in g_keys])
    assert 0 < step.norm() <= 1e-3 * 1.0001  # SGD, lr 1: the step is the clipped gradient


def run_python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_registries_find_built_ins_whatever_was_imported_first():
    proc = run_python("from i2i.registry import DISCRIMINATORS, MODELS, GAN_LOSSES\n"
                      "print('autoencoder' in DISCRIMINATORS, 'cyclegan' in MODELS, 'hinge' in GAN_LOSSES)")
    assert proc.stdout.split() == ["True", "True", "True"], proc.stderr


def test_each_registry_loads_every_built_in_on_its_first_lookup():
    """Where the built-ins are listed (the registry names packages, a package its modules) misses none."""
    names = ("from i2i import registry as r\n"
             "print({k: sorted(v) for k, v in sorted(vars(r).items()) if isinstance(v, r.Registry)})")
    first = run_python(names)
    everything = run_python("import importlib, pkgutil, i2i\n"
                            "for m in pkgutil.walk_packages(i2i.__path__, 'i2i.'):\n"
                            "    importlib.import_module(m.name)\n" + names)
    assert first.returncode == everything.returncode == 0, first.stderr + everything.stderr
    assert eval(first.stdout) == eval(everything.stdout)
    assert {"resnet_9blocks", "physics_dehazer"} <= set(eval(first.stdout)["GENERATORS"])


def test_the_config_package_imports_nothing_else_of_i2i():
    proc = run_python("import sys, i2i.config\n"
                      "print(sorted(m for m in sys.modules if m.startswith('i2i.')))")
    loaded = eval(proc.stdout)
    allowed = ("i2i._version", "i2i.errors", "i2i.utils")
    assert loaded and all(m.startswith("i2i.config") or m in allowed for m in loaded), loaded


@pytest.mark.parametrize("model", ["pix2pix", "cyclegan"])
def test_checkpoints_of_the_first_format_are_upgraded(tmp_path, tiny_run, model):
    """The configs in tests/data/config_v1.json are those of checkpoints written by i2i 0.1."""
    from pathlib import Path

    from i2i.configure import config_of_checkpoint
    from i2i.checkpoint import save_checkpoint

    v1 = json.loads((Path(__file__).parent / "data" / "config_v1.json").read_text())[model]
    cfg = config_of_checkpoint({"format": 1, "config": v1})
    assert cfg.nets["G"].params == {k: v for k, v in v1["nets"]["generator"].items()
                                    if k not in ("name", "init", "init_gain", "spectral_norm")}
    assert cfg.optim["G"].lr == cfg.optim["D"].lr == 2e-4 and cfg.optim["D"].betas == [0.5, 0.999]
    assert cfg.losses.n_critic == 1
    if model == "pix2pix":
        assert cfg.model.lambda_l1 == 100.0 and cfg.model.test_batch_stats
    else:
        assert (cfg.model.lambda_cycle, cfg.model.lambda_identity, cfg.model.pool_size) == (10.0, 0.5, 50)
    # a run of today with the same networks, relabelled as format 1, translates and resumes
    path = tiny_run("now", TINY[model], max_steps=1)
    assert train_main(["--config", str(path)]) == 0
    state = load_checkpoint(tmp_path / "runs" / "now")
    v1 = {**v1, "train": {**v1["train"], "out_dir": str(tmp_path / "runs"), "name": "now", "max_steps": 2}}
    save_checkpoint({**state, "config": v1, "format": 1}, tmp_path / "runs" / "now" / "checkpoints" / "step_0000001.pt")
    assert load_translator(tmp_path / "runs" / "now")(torch.zeros(3, 32, 32)).shape == (3, 32, 32)
    assert train_main(["--resume", str(tmp_path / "runs" / "now")]) == 0
    assert load_checkpoint(tmp_path / "runs" / "now")["step"] == 2
