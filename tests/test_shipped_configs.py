"""Configs shipped inside the package: found by name, as a base, listed; missing datasets name their download."""
import runpy
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from i2i.cli.train import main as train_main
from i2i.config import read_yaml
from i2i.config.shipped import SHIPPED, find_config
from i2i.config.tree import edited_since_saved
from i2i.configure import build_config
from i2i.data import check_data_config
from i2i.errors import ConfigError
from reliability_helpers import records

REPO = Path(__file__).resolve().parents[1]


def test_the_repository_configs_folder_is_the_package_one():
    assert SHIPPED == REPO / "i2i" / "configs"
    assert (REPO / "configs").is_symlink() and (REPO / "configs").resolve() == SHIPPED
    assert len(list(SHIPPED.glob("*.yaml"))) >= 10 and (SHIPPED / "quickstart.yaml").is_file()


def test_a_bare_name_means_the_shipped_config_with_or_without_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart").mkdir()  # a folder of that name is no config: the shipped one is meant
    assert find_config("quickstart") == SHIPPED / "quickstart.yaml"
    assert find_config("quickstart.yaml") == SHIPPED / "quickstart.yaml"
    assert read_yaml("quickstart")["model"] == "pix2pix"


def test_an_existing_file_wins_over_the_shipped_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart.yaml").write_text("model: cyclegan\n")
    assert find_config("quickstart.yaml") == Path("quickstart.yaml")
    assert read_yaml("quickstart.yaml") == {"model": "cyclegan"}
    assert read_yaml("quickstart")["model"] == "pix2pix"  # no file "quickstart": the shipped one


def test_unknown_names_and_missing_paths_are_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        find_config("quikstart")
    assert str(err.value) == ("config file not found: quikstart (not a shipped config either: "
                              "did you mean 'quickstart'? i2i-train --list-configs lists them)")
    with pytest.raises(ConfigError) as err:
        find_config("configs/quickstart.yaml")  # a path is not looked up among the shipped configs...
    assert str(err.value) == ("config file not found: configs/quickstart.yaml "
                              "(the shipped config of that name is --config quickstart)")  # ...but named
    with pytest.raises(ConfigError) as err:
        find_config("elsewhere/mine.yaml")
    assert str(err.value) == "config file not found: elsewhere/mine.yaml"


def test_base_names_a_shipped_config_unless_a_file_next_to_it_has_that_name(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("base: quickstart.yaml\ndata: {batch_size: 2}\n")
    files = []
    tree = read_yaml(mine, files)
    shipped = yaml.safe_load((SHIPPED / "quickstart.yaml").read_text())
    assert files == [mine, SHIPPED / "quickstart.yaml"]
    assert tree["data"] == {**shipped["data"], "batch_size": 2} and tree["nets"] == shipped["nets"]
    (tmp_path / "quickstart.yaml").write_text("model: cyclegan\n")
    files = []
    assert read_yaml(mine, files) == {"model": "cyclegan", "data": {"batch_size": 2}}
    assert files == [mine, tmp_path / "quickstart.yaml"]


def test_a_base_that_is_nowhere_names_the_file_that_asks_for_it(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("base: quikstart.yaml\n")
    with pytest.raises(ConfigError) as err:
        read_yaml(mine)
    assert str(err.value).startswith(f"{mine}: base: config file not found: {tmp_path / 'quikstart.yaml'} ")
    assert "did you mean 'quickstart'?" in str(err.value)
    mine.write_text("base: [a, b]\n")
    with pytest.raises(ConfigError, match=r"mine.yaml: base: expected a file or shipped config name"):
        read_yaml(mine)


def test_every_shipped_config_reads_by_name():
    for path in sorted(SHIPPED.glob("*.yaml")):
        assert build_config(read_yaml(path.stem), check_paths=False).model.name, path


def test_list_configs_prints_each_name_with_its_first_comment_line(capsys):
    assert train_main(["--list-configs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = {}
    for path in SHIPPED.glob("*.yaml"):
        first = next(line for line in path.read_text().splitlines() if line.startswith("#"))
        expected[path.stem] = first[1:].strip()
    assert [line.split()[0] for line in lines] == sorted(expected)
    for line in lines:
        name, text = line.split(maxsplit=1)
        assert text == expected[name]
    assert any(line.split(maxsplit=1)[1].startswith("Quickstart: pix2pix on the built-in") for line in lines)


def test_the_saved_config_records_the_file_used(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sets = ["train.max_steps=1", "data.batch_size=1", "log.sample_every=1000",
            "nets.G.num_downs=5", "nets.G.ngf=4", "nets.D.ndf=4", "data.load_size=32", "data.crop_size=32"]
    assert train_main(["--config", "quickstart", "--set", *sets]) == 0
    text = (tmp_path / "runs" / "quickstart" / "config.yaml").read_text()
    assert text.splitlines()[1] == f"# config: {SHIPPED / 'quickstart.yaml'} with --set {' '.join(sets)}"
    assert edited_since_saved(text) is False  # the record is inside what the stamp covers
    assert yaml.safe_load(text)["train"]["max_steps"] == 1


@pytest.mark.parametrize("root, hint", [
    ("datasets/horse2zebra", " (download it with: i2i-download horse2zebra)"),
    ("datasets/facades_cyclegan", " (download it with: i2i-download cyclegan/facades)"),
    ("/data/my sets/maps", " (download it with: i2i-download maps --root '/data/my sets')"),
    ("datasets/my_photos", ""),
    ("datasets/cityscapes", ""),  # not downloadable
])
def test_a_missing_dataset_folder_names_the_command_that_fetches_it(tmp_path, monkeypatch, root, hint):
    monkeypatch.chdir(tmp_path)
    cfg = build_config({"model": "cyclegan", "data": {"kind": "unpaired", "root": root}}, check_paths=False)
    with pytest.raises(ConfigError) as err:
        check_data_config(cfg.data)
    assert str(err.value) == f"data.root: folder not found: {root}{hint}"


def test_the_download_module_runs_as_a_command(tmp_path, monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "i2i.cli.download", raising=False)  # as in a fresh process
    monkeypatch.setattr(sys, "argv", ["download.py", "horse2zebr", "--root", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_:  # python -m i2i.cli.download horse2zebr --root ...
        runpy.run_module("i2i.cli.download", run_name="__main__")
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith("error: unknown dataset 'horse2zebr' (did you mean 'horse2zebra'?)")
    assert list(tmp_path.iterdir()) == []


WATCHING = sorted(p.stem for p in SHIPPED.glob("*.yaml")
                  if build_config(read_yaml(p.stem), check_paths=False).train.divergence.watch)


@pytest.mark.parametrize("name", WATCHING)
def test_the_losses_a_shipped_config_watches_for_divergence_are_ones_its_model_logs(name, tmp_path):
    # a watched name the model does not log stops the run at its first log step: one step on built-in data shows it
    cfg = build_config(read_yaml(name), check_paths=False)
    root = "builtin:haze" if cfg.model.name == "dehazegan" else "builtin:shapes"
    sets = [f"data.root={root}", "data.max_items=1", "data.batch_size=1", "data.load_size=128", "data.crop_size=128",
            "data.num_workers=0", "data.cache_mb=0", "train.epochs=1", "train.epochs_decay=0", "train.time_budget_min=0",
            f"train.out_dir={tmp_path}", "log.every=1", "log.sample_every=1000", "log.tensorboard=false",
            "log.progress=false", "eval.every=0"]
    assert train_main(["--config", name, "--set", *sets]) == 0
    (record,) = records(tmp_path / name)
    assert set(cfg.train.divergence.watch) <= {k.removeprefix("train/") for k in record}
    shutil.rmtree(tmp_path / name / "checkpoints")  # full-size weights (up to 180 MB) need not outlive the test
