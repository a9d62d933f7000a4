"""Config loading, inheritance, overrides and validation."""
import pytest
import yaml

from i2i.cli.train import main as train_main
from i2i.config import merge, save_config, to_dict
from i2i.configure import build_config, load_config
from i2i.errors import ConfigError


def write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def base_cfg(tmp_path):
    return write(tmp_path / "base.yaml", {"model": "pix2pix", "data": {"root": "builtin:shapes"}})


def test_model_defaults_are_canonical(tmp_path):
    cfg = build_config({"model": "cyclegan", "data": {"root": "builtin:shapes"}})
    assert cfg.nets["G"].name == "resnet_9blocks"
    assert cfg.nets["G"].params["norm"] == "instance"
    assert cfg.losses.gan.name == "lsgan" and cfg.losses.gan.params == {"half": False}
    assert (cfg.model.lambda_cycle, cfg.model.lambda_identity, cfg.model.pool_size) == (10.0, 0.5, 50)
    assert cfg.data.kind == "unpaired"
    p2p = build_config({"model": "pix2pix", "data": {"root": "builtin:shapes"}})
    assert p2p.nets["G"].name == "unet_256" and p2p.nets["G"].params["dropout"] is True
    assert (p2p.losses.gan.name, p2p.model.lambda_l1, p2p.model.test_batch_stats) == ("vanilla", 100.0, True)
    assert set(p2p.optim) == {"G", "D"}
    for group in p2p.optim.values():
        assert (group.type, group.lr, group.betas, group.schedule) == ("adam", 2e-4, [0.5, 0.999], "linear")


def test_base_inheritance_and_overrides(tmp_path, base_cfg):
    child = write(tmp_path / "child.yaml", {"base": "base.yaml", "optim": {"G": {"lr": 0.001}}})
    cfg = load_config(child, ["optim.G.lr=1e-4", "data.batch_size=3", "nets.G.ngf=8"])
    assert cfg.model.name == "pix2pix" and cfg.data.root == "builtin:shapes"
    assert cfg.optim["G"].lr == pytest.approx(1e-4) and isinstance(cfg.optim["G"].lr, float)
    assert cfg.optim["D"].lr == pytest.approx(2e-4)
    assert cfg.data.batch_size == 3
    assert cfg.nets["G"].params["ngf"] == 8
    assert cfg.train.name == "child"


def test_changing_a_net_name_drops_the_old_params():
    cfg = build_config({"model": "pix2pix", "data": {"root": "builtin:shapes"},
                        "nets": {"G": {"name": "resnet_6blocks", "ngf": 8}}})
    assert cfg.nets["G"].name == "resnet_6blocks"
    assert cfg.nets["G"].params == {"ngf": 8}
    cfg = build_config({"model": "pix2pix", "data": {"root": "builtin:shapes"}, "losses": {"gan": "hinge"}})
    assert cfg.losses.gan.name == "hinge" and cfg.losses.gan.params == {}


@pytest.mark.parametrize(
    "tree, message",
    [
        ({"train": {"epochz": 1}}, "unknown config key 'train.epochz' (did you mean 'epochs'?)"),
        ({"nets": {"G": {"ngff": 8}}}, "nets.G.ngff"),
        ({"nets": {"G": {"name": "unet_265"}}}, "did you mean 'unet_256'"),
        ({"nets": {"G": {"norm": "group"}}}, "nets.G.norm: 'group' is not one of batch, instance, layer, none"),
        ({"nets": {"G": {"ngf": "x"}}}, "nets.G.ngf: expected int, got str 'x'"),
        ({"nets": {"G": {"ngf": 2.5}}}, "nets.G.ngf: expected int, got float 2.5"),
        ({"nets": {"G": {"ngf": True}}}, "nets.G.ngf: expected int, got bool True"),
        ({"nets": {"G": {"dropout": "yes"}}}, "nets.G.dropout: expected bool, got str 'yes'"),
        ({"nets": {"D": {"ndf": [8]}}}, None),  # a list is the builder's to judge (tiramisu takes one for layers)
        ({"nets": {"generator": {"ngf": 8}}}, "nets.generator: unknown network role; this model's are: G, D"),
        ({"optim": {"Gen": {"lr": 1}}}, "optim.Gen: unknown optimizer group; this model's are: G, D"),
        ({"optim": {"G": {"lr": -0.1}}}, "optim.G.lr: must be > 0, got -0.1"),
        ({"optim": {"D": {"type": "adamax"}}}, "optim.D.type: 'adamax' is not one of adam, adamw, rmsprop, sgd"),
        ({"optim": {"D": {"betas": [0.5]}}}, "optim.D.betas: expected 2 values, got [0.5]"),
        ({"optim": {"D": {"betas": [0.5, 1.5]}}}, "optim.D.betas: must be < 1, got [0.5, 1.5]"),
        ({"optim": {"D": {"unit": "step"}}}, "optim.D.unit: 'step' is not one of epoch, iter"),
        ({"model": {"lambda_l2": 1}}, "unknown config key 'model.lambda_l2' (did you mean 'lambda_l1'?)"),
        ({"model": {"lambda_l1": "lots"}}, "model.lambda_l1: expected float, got str 'lots'"),
        ({"model": {"lambda_l1": -1}}, "model.lambda_l1: must be >= 0, got -1.0"),
        ({"train": {"ema": {"decay": 1.0}}}, "train.ema.decay: must be < 1, got 1.0"),
        ({"losses": {"penalty": {"type": "r1", "every": 0}}}, "losses.penalty.every: must be >= 1, got 0"),
        ({"imports": ["no_such_module_xyz"]}, "imports: no_such_module_xyz: cannot import (ModuleNotFoundError"),
        ({"data": {"batch_size": "four"}}, "data.batch_size: expected int"),
        ({"data": {"load_size": 128, "crop_size": 256}}, "data.crop_size: 256 is larger than data.load_size 128"),
        ({"data": {"root": "/no/such/folder"}}, "data.root: folder not found: /no/such/folder"),
        ({"data": {"root": "/no/such\nfolder"}}, "data.root: folder not found: '/no/such\\nfolder'"),
        ({"losses": {"gan": "hingee"}}, "did you mean 'hinge'"),
        ({"losses": {"gan": {"name": "lsgan", "halff": 1}}}, "GAN loss 'lsgan' has no parameter 'halff'"),
        ({"losses": {"penalty": {"type": "r1", "gama": 1}}}, "penalty 'r1' has no parameter 'gama'"),
        ({"data": {"direction": "AtoC"}}, "data.direction: 'AtoC' is not one of AtoB, BtoA"),
        ({"train": {"amp": "fp8"}}, "train.amp"),
        ({"model": "pix3pix"}, "model.name: unknown model 'pix3pix' (did you mean 'pix2pix'?)"),
    ],
)
def test_invalid_values_fail_with_the_key_path(tree, message):
    base = {"model": "pix2pix", "data": {"root": "builtin:shapes"}}
    if message is None:
        build_config(merge(base, tree))
        return
    with pytest.raises(ConfigError) as err:
        build_config(merge(base, tree))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_saved_config_round_trips(tmp_path, base_cfg):
    cfg = load_config(base_cfg, ["nets.D.n_layers=2", "losses.penalty.type=r1", "train.ema.decay=0.99"])
    save_config(cfg, tmp_path / "saved.yaml")
    again = load_config(tmp_path / "saved.yaml")
    assert to_dict(again) == to_dict(cfg)
    assert again.nets["D"].params["n_layers"] == 2 and again.train.ema.decay == 0.99
    assert again.losses.penalty.type == "r1"


def test_a_config_resolves_its_plugins_and_translator_once(tmp_path, monkeypatch):
    import i2i.configure as configure

    calls = []
    for name in ("load_plugins", "model_class"):
        real = getattr(configure, name)
        monkeypatch.setattr(configure, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    path = tmp_path / "c.yaml"
    path.write_text("model: cyclegan\ndata: {root: 'builtin:shapes'}\noptim: {default: {lr: 0.1}}\n")
    cfg = configure.load_config(path, ["optim.default.lr=0.5", "optim.G.lr=0.25"])
    assert calls == ["load_plugins", "model_class"]
    assert (cfg.optim["G"].lr, cfg.optim["D"].lr) == (0.25, 0.5)  # optim.default of --set reaches every group


def test_the_losses_are_built_once_with_the_schedule_the_objective_asks_for(monkeypatch):
    from i2i.models import build_model
    from i2i.registry import GAN_LOSSES, PENALTIES

    built = []
    for registry in (GAN_LOSSES, PENALTIES):
        monkeypatch.setattr(registry, "build",
                            lambda name, _real=registry.build, **kw: built.append(name) or _real(name, **kw))
    tree = {"model": "pix2pix", "data": {"root": "builtin:shapes"}, "losses": {"gan": "wgangp"},
            "nets": {"G": {"name": "unet", "num_downs": 5, "ngf": 4}, "D": {"ndf": 4, "n_layers": 1}}}
    model = build_model(build_config(tree))
    assert built == ["wgangp", "gp"]  # the objective, then its own penalty: once each
    assert model.n_critic == 5 and type(model.penalty).__name__ == "GradientPenalty" and model.penalty.weight == 10.0
    assert [(p.name, p.every) for p in model.phases()] == [("D", 1), ("G", 5)]
    model = build_model(build_config(tree, ["losses.n_critic=2", "losses.penalty.type=r1", "losses.penalty.every=4"]))
    assert [(p.name, p.every) for p in model.phases()] == [("D", 1), ("G", 2), ("D_reg", 4)]


def test_a_loss_value_its_builder_refuses_is_one_line_and_no_run_folder(tmp_path, base_cfg, capsys):
    code = train_main(["--config", str(base_cfg), "--set", f"train.out_dir={tmp_path / 'runs'}",
                       "losses.gan.name=wgan", "losses.gan.clip=-1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error")] == [
        "error: losses.gan: GAN loss 'wgan': clip must be > 0 or None, got -1"]  # (as the network builders' values)
    assert not (tmp_path / "runs" / "base").exists()  # the run that never started leaves no folder


def test_cli_reports_bad_config_in_one_line_with_exit_code_2(tmp_path, base_cfg, capsys):
    code = train_main(["--config", str(base_cfg), "--set", "optim.D.lr=-1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == "error: optim.D.lr: must be > 0, got -1.0"
    assert not (tmp_path / "runs").exists()


def test_missing_config_file_and_yaml_errors(tmp_path, capsys):
    assert train_main(["--config", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    assert train_main(["--config", str(bad)]) == 2
    assert "invalid YAML" in capsys.readouterr().err


def test_optim_default_applies_to_every_group_under_its_own_keys(tmp_path):
    path = write(tmp_path / "c.yaml", {"model": "cyclegan", "data": {"root": "builtin:shapes"},
                                       "optim": {"default": {"type": "adamw", "lr": 1e-3, "weight_decay": 0.01},
                                                 "D": {"lr": 4e-3}}})
    cfg = load_config(path, ["optim.default.grad_clip=5"])
    assert (cfg.optim["G"].type, cfg.optim["G"].lr, cfg.optim["G"].weight_decay) == ("adamw", 1e-3, 0.01)
    assert (cfg.optim["D"].type, cfg.optim["D"].lr) == ("adamw", 4e-3)
    assert cfg.optim["G"].grad_clip == cfg.optim["D"].grad_clip == 5.0
    # an override of the default wins over a group's value in the file (it is the newer layer)
    cfg = load_config(path, ["optim.default.lr=1e-5"])
    assert cfg.optim["D"].lr == cfg.optim["G"].lr == 1e-5
    assert "default" not in to_dict(cfg)["optim"]


def test_every_shipped_config_loads(tmp_path):
    from pathlib import Path

    configs = sorted(Path(__file__).resolve().parent.parent.glob("configs/*.yaml"))
    assert len(configs) >= 5
    for path in configs:
        from i2i.config import read_yaml

        cfg = build_config(read_yaml(path), check_paths=False)
        assert cfg.model.name == read_yaml(path)["model"]["name"] if isinstance(read_yaml(path)["model"], dict) \
            else cfg.model.name == read_yaml(path)["model"], path
        assert set(cfg.nets) and set(cfg.optim), path


def test_settings_over_a_shorthand_keep_the_name_the_shorthand_gave(tmp_path):
    from i2i.config import read_yaml
    from i2i.configure import build_config

    (tmp_path / "base.yaml").write_text("model: cyclegan\nnets: {G: resnet_6blocks}\noptim: {G: sgd}\n"
                                        "losses: {gan: lsgan, penalty: r1}\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\nmodel: {lambda_cycle: 5.0}\nnets: {G: {ngf: 8}}\n"
                                         "optim: {G: {lr: 0.1}}\nlosses: {gan: {}, penalty: {weight: 2.0}}\n")
    tree = read_yaml(tmp_path / "child.yaml")
    assert tree["model"] == {"name": "cyclegan", "lambda_cycle": 5.0}
    assert tree["nets"] == {"G": {"name": "resnet_6blocks", "ngf": 8}}
    assert tree["optim"] == {"G": {"type": "sgd", "lr": 0.1}}
    assert tree["losses"] == {"gan": {"name": "lsgan"}, "penalty": {"type": "r1", "weight": 2.0}}
    data = {"root": "builtin:shapes", "kind": "unpaired"}
    cfg = build_config({"model": "unit", "data": data}, ["model.gan_w=2"], check_paths=False)
    assert cfg.model.name == "unit" and cfg.model.gan_w == 2.0
    # naming another translator still changes it
    other = build_config({"model": "unit", "data": data}, ["model.name=cyclegan"], check_paths=False)
    assert other.model.name == "cyclegan"
