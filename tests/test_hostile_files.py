"""Files someone else made (a checkpoint, a run's saved config) never run code without consent, never
exhaust memory, and a plugin that ends the program is a failed import."""
import pytest
import torch

import i2i
from i2i.cli.export import main as export_main
from i2i.cli.train import main as train_main
from i2i.cli.translate import main as translate_main
from i2i.data.io import write_image
from i2i.errors import UntrustedCodeError
from reliability_helpers import tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-step pix2pix run (no imports) and the state of its checkpoint."""
    tmp = tmp_path_factory.mktemp("hostile")
    assert train_main(["--config", str(tiny_config(tmp)), "--set", "train.max_steps=1"]) == 0
    run = tmp / "runs" / "tiny"
    (path,) = (run / "checkpoints").glob("step_*.pt")
    return run, torch.load(path, weights_only=True)


def hostile_checkpoint(trained, tmp_path, imports):
    """A copy of the run whose checkpoint's config asks to import ``imports``."""
    import shutil

    run, state = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (path,) = (copy / "checkpoints").glob("step_*.pt")
    torch.save({**state, "config": {**state["config"], "imports": imports}}, path)
    return copy


def marker_module(tmp_path, name):
    """A module ``name`` (in ``tmp_path``) whose import writes ``tmp_path/name.ran``; its marker path."""
    marker = tmp_path / f"{name}.ran"
    (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    return marker


def test_translate_runs_a_checkpoints_imports_only_when_the_user_allows_them(trained, tmp_path, capsys):
    marker = marker_module(tmp_path, "evil_translate")
    plugin = str(tmp_path / "evil_translate.py")
    run = hostile_checkpoint(trained, tmp_path, [plugin])
    write_image(tmp_path / "in" / "a.png", torch.randint(0, 255, (32, 32, 3), dtype=torch.uint8).numpy())
    args = ["--checkpoint", str(run), "--input", str(tmp_path / "in"), "--workers", "0"]
    capsys.readouterr()
    assert translate_main(args + ["--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and f"asks to import {plugin}" in err[0]
    assert f"--import {plugin}" in err[0] and "--trust-imports" in err[0]
    assert not marker.exists() and not (tmp_path / "out" / "a.png").exists()
    # named on the command line (here through another spelling of the same file): allowed
    other_spelling = str(tmp_path / "in" / ".." / "evil_translate.py")
    assert translate_main(args + ["--output", str(tmp_path / "out"), "--import", other_spelling]) == 0
    assert marker.read_text() == "ran" and (tmp_path / "out" / "a.png").is_file()


def test_resume_runs_a_runs_imports_only_with_trust_imports(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    marker = marker_module(tmp_path, "evil_resume_mod")
    run = hostile_checkpoint(trained, tmp_path, ["evil_resume_mod"])
    capsys.readouterr()
    assert train_main(["--resume", str(run), "--set", "train.max_steps=2"]) == 2
    err = capsys.readouterr().err
    assert "asks to import evil_resume_mod (its config's imports:)" in err and "Traceback" not in err
    assert not marker.exists() and len(list((run / "checkpoints").glob("step_*.pt"))) == 1
    assert train_main(["--resume", str(run), "--set", "train.max_steps=2", "--trust-imports"]) == 0
    assert marker.exists()
    # --set imports=[] is the user's own list: nothing of the checkpoint's is imported
    other = marker_module(tmp_path, "evil_resume_other")
    run = hostile_checkpoint(trained, tmp_path / "b", ["evil_resume_other"])
    assert train_main(["--resume", str(run), "--set", "train.max_steps=2", "imports=[]"]) == 0
    assert not other.exists()


def test_load_translator_and_export_ask_for_consent_too(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    markers = [marker_module(tmp_path, f"evil_api_{i}") for i in range(3)]
    run = hostile_checkpoint(trained, tmp_path, ["evil_api_0"])
    with pytest.raises(UntrustedCodeError, match=r"asks to import evil_api_0 .*imports=\[\.\.\.\]"):
        i2i.load_translator(run)
    with pytest.raises(UntrustedCodeError):  # allowing another module is no consent for this one
        i2i.load_translator(run, imports=["evil_api_1"])
    assert not any(m.exists() for m in markers)
    assert export_main(["--checkpoint", str(run), "--format", "torchscript", "--output", str(tmp_path / "g.pt")]) == 2
    assert "asks to import evil_api_0" in capsys.readouterr().err
    assert not markers[0].exists() and not (tmp_path / "g.pt").exists()
    assert i2i.load_translator(run, imports=["evil_api_0"]).cfg.imports == ["evil_api_0"]
    assert markers[0].exists()
    run2 = hostile_checkpoint(trained, tmp_path / "b", ["evil_api_2"])
    i2i.load_translator(run2, trust_imports=True)
    assert markers[2].exists() and not markers[1].exists()


def test_a_config_the_user_names_runs_its_imports(tmp_path, monkeypatch):
    """A config given by path is code the user chose: its imports run without a flag."""
    monkeypatch.syspath_prepend(str(tmp_path))
    marker = marker_module(tmp_path, "own_config_mod")
    cfg = tiny_config(tmp_path)
    cfg.write_text(cfg.read_text() + "imports: [own_config_mod]\n")
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=1"]) == 0
    assert marker.exists()


def laughs(levels=9, width=9):
    """A flow YAML list whose last item, aliases expanded, holds ``width ** levels`` strings."""
    items = ["&l0 [" + ", ".join(["lol"] * width) + "]"]
    items += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


@pytest.mark.parametrize("key", ["model", "train", "imports", "nets.G"])
def test_an_alias_bomb_in_a_config_file_is_one_line(tmp_path, capsys, key):
    cfg = tiny_config(tmp_path)
    head, _, leaf = key.rpartition(".")
    value = f"{{bomb: {laughs()}}}" if key != "imports" else laughs()
    text = f"{leaf}: {value}\n" if not head else f"{head}:\n  {leaf}: {value}\n"
    cfg.write_text(text + cfg.read_text())
    assert len(text) < 600
    assert train_main(["--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {cfg}: more than 100000 values once its aliases are expanded (an alias bomb?)"]


def test_merge_keys_and_set_values_are_bounded_too(tmp_path, capsys):
    from i2i.config import read_yaml

    merges = ["a0: &a0 {k: 1}"] + [f"a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 8)}]}}" for i in range(1, 12)]
    path = tmp_path / "merge.yaml"
    path.write_text("\n".join(merges) + "\n")
    with pytest.raises(i2i.errors.ConfigError, match="once its aliases are expanded"):
        read_yaml(path)
    cfg = tiny_config(tmp_path)
    assert train_main(["--config", str(cfg), "--set", f"model.bomb={laughs()}"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --set model.bomb: more than 100000 values once its aliases are expanded (an alias bomb?)"]
    # a recursive alias, and nesting deeper than a config needs (and than Python's recursion limit)
    for value, message in (("&r [*r]", "contains itself"), ("[" * 60 + "]" * 60, "nested more than 50 levels"),
                           ("[" * 5000 + "]" * 5000, "nested")):
        assert train_main(["--config", str(cfg), "--set", f"model.x={value}"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: --set model.x: ") and message in err[0]


def test_aliases_within_the_bound_still_work(tmp_path):
    from i2i.config import read_yaml

    path = tmp_path / "ok.yaml"
    path.write_text("defaults: &g {type: adam, lr: 0.0002}\noptim: {G: *g, D: {<<: *g, lr: 0.0001}}\n")
    assert read_yaml(path)["optim"] == {"G": {"type": "adam", "lr": 0.0002}, "D": {"type": "adam", "lr": 0.0001}}


def test_a_checkpoint_whose_config_shares_objects_beyond_the_bound_is_refused(trained, tmp_path, capsys):
    run, state = trained
    shared = ["lol"] * 10
    for _ in range(8):  # pickle keeps shared objects shared: 10 ** 9 strings in a few hundred bytes
        shared = [shared] * 10
    loop: list = []
    loop.append(loop)
    deep: list = []
    for _ in range(60):
        deep = [deep]
    (tmp_path / "in").mkdir()
    write_image(tmp_path / "in" / "a.png", torch.zeros(32, 32, 3, dtype=torch.uint8).numpy())
    for i, (bad, message) in enumerate(((shared, "once its aliases are expanded"), (loop, "contains itself"),
                                        (deep, "nested more than 50 levels"))):
        path = tmp_path / f"bad{i}.pt"
        torch.save({**state, "config": {**state["config"], "model": {**state["config"]["model"], "x": bad}}}, path)
        (good,) = (run / "checkpoints").glob("step_*.pt")
        assert path.stat().st_size < good.stat().st_size + 10_000
        assert translate_main(["--checkpoint", str(path), "--input", str(tmp_path / "in"),
                               "--output", str(tmp_path / f"out{i}"), "--workers", "0"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {path}: the config saved in it is not valid: config: ")
        assert message in err[0]
        with pytest.raises(i2i.errors.CheckpointError, match=message):
            i2i.load_translator(path)


@pytest.mark.parametrize("body, why", [("import sys\nsys.exit(0)\n", "it called sys.exit(0)"),
                                       ("raise SystemExit('bye')\n", "it called sys.exit('bye')"),
                                       ("class Stop(BaseException): pass\nraise Stop('odd')\n", "Stop: odd")])
def test_a_plugin_that_ends_the_program_is_a_failed_import(tmp_path, capsys, monkeypatch, body, why):
    plugin = tmp_path / "quits.py"
    plugin.write_text(body)
    cfg = tiny_config(tmp_path)
    assert train_main(["--import", str(plugin), "--config", str(cfg)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: --import {plugin}: cannot import ({why})"]
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg.write_text(cfg.read_text() + "imports: [quits]\n")
    assert train_main(["--config", str(cfg)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: imports: quits: cannot import ({why})"]
    assert not (tmp_path / "runs").exists()


def test_a_plugin_interrupted_by_ctrl_c_is_an_interruption(tmp_path, capsys):
    plugin = tmp_path / "interrupted.py"
    plugin.write_text("raise KeyboardInterrupt\n")
    assert train_main(["--import", str(plugin), "--config", str(tiny_config(tmp_path))]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"
