"""Config loading, inheritance, overrides and validation."""
import pytest
import yaml

from i2i.cli.train import main as train_main
from i2i.config import build_config, load_config, save_config, to_dict
from i2i.errors import ConfigError


def write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def base_cfg(tmp_path):
    return write(tmp_path / "base.yaml", {"model": "pix2pix", "data": {"root": "builtin:shapes"}})


def test_model_defaults_are_canonical(tmp_path):
    cfg = build_config({"model": "cyclegan", "data": {"root": "builtin:shapes"}})
    assert cfg.nets.generator.name == "resnet_9blocks"
    assert cfg.nets.generator.params["norm"] == "instance"
    assert cfg.losses.gan.name == "lsgan" and cfg.losses.gan.params == {"half": False}
    assert (cfg.losses.cycle, cfg.losses.identity, cfg.model.pool_size) == (10.0, 0.5, 50)
    assert cfg.data.kind == "unpaired"
    p2p = build_config({"model": "pix2pix", "data": {"root": "builtin:shapes"}})
    assert p2p.nets.generator.name == "unet_256" and p2p.nets.generator.params["dropout"] is True
    assert (p2p.losses.gan.name, p2p.losses.l1, p2p.model.pool_size) == ("vanilla", 100.0, 0)
    assert (p2p.train.lr, p2p.train.beta1, p2p.train.beta2) == (2e-4, 0.5, 0.999)


def test_base_inheritance_and_overrides(tmp_path, base_cfg):
    child = write(tmp_path / "child.yaml", {"base": "base.yaml", "train": {"lr": 0.001}})
    cfg = load_config(child, ["train.lr=1e-4", "data.batch_size=3", "nets.generator.ngf=8"])
    assert cfg.model.name == "pix2pix" and cfg.data.root == "builtin:shapes"
    assert cfg.train.lr == pytest.approx(1e-4) and isinstance(cfg.train.lr, float)
    assert cfg.data.batch_size == 3
    assert cfg.nets.generator.params["ngf"] == 8
    assert cfg.train.name == "child"


def test_changing_a_net_name_drops_the_old_params():
    cfg = build_config({"model": "pix2pix", "data": {"root": "builtin:shapes"},
                        "nets": {"generator": {"name": "resnet_6blocks", "ngf": 8}}})
    assert cfg.nets.generator.name == "resnet_6blocks"
    assert cfg.nets.generator.params == {"ngf": 8}
    cfg = build_config({"model": "pix2pix", "data": {"root": "builtin:shapes"}, "losses": {"gan": "hinge"}})
    assert cfg.losses.gan.name == "hinge" and cfg.losses.gan.params == {}


@pytest.mark.parametrize(
    "tree, message",
    [
        ({"train": {"lrr": 1}}, "unknown config key 'train.lrr' (did you mean 'lr'?)"),
        ({"nets": {"generator": {"ngff": 8}}}, "nets.generator.ngff"),
        ({"nets": {"generator": {"name": "unet_265"}}}, "did you mean 'unet_256'"),
        ({"train": {"lr": -0.1}}, "train.lr: must be > 0, got -0.1"),
        ({"data": {"batch_size": "four"}}, "data.batch_size: expected int"),
        ({"data": {"load_size": 128, "crop_size": 256}}, "data.crop_size: 256 is larger than data.load_size 128"),
        ({"data": {"root": "/no/such/folder"}}, "data.root: folder not found: /no/such/folder"),
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
    from i2i.config import merge

    with pytest.raises(ConfigError) as err:
        build_config(merge(base, tree))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_saved_config_round_trips(tmp_path, base_cfg):
    cfg = load_config(base_cfg, ["nets.discriminator.n_layers=2", "losses.penalty.type=r1"])
    save_config(cfg, tmp_path / "saved.yaml")
    again = load_config(tmp_path / "saved.yaml")
    assert to_dict(again) == to_dict(cfg)
    assert again.nets.discriminator.params["n_layers"] == 2
    assert again.losses.penalty.type == "r1"


def test_cli_reports_bad_config_in_one_line_with_exit_code_2(tmp_path, base_cfg, capsys):
    code = train_main(["--config", str(base_cfg), "--set", "train.lr=-1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == "error: train.lr: must be > 0, got -1.0"
    assert not (tmp_path / "runs").exists()


def test_missing_config_file_and_yaml_errors(tmp_path, capsys):
    assert train_main(["--config", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    assert train_main(["--config", str(bad)]) == 2
    assert "invalid YAML" in capsys.readouterr().err
