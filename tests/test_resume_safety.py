"""Resuming never writes outside a run folder, never overwrites a checkpoint, says which config it uses,
falls back from a checkpoint cut short, and leaves a log of the run that happened."""
import shutil

import torch
import yaml

from i2i.checkpoint import list_checkpoints, load_checkpoint
from i2i.cli.train import main as train_main
from reliability_helpers import losses, records, snapshot, tiny_config


def test_resume_from_a_file_outside_a_run_folder_starts_a_new_run_folder(tmp_path, capsys):
    cfg = tiny_config(tmp_path)
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=3"]) == 0
    elsewhere = tmp_path / "keep" / "models"
    elsewhere.mkdir(parents=True)
    shutil.copy(tmp_path / "runs" / "tiny" / "checkpoints" / "step_0000003.pt", elsewhere / "model.pt")
    (tmp_path / "keep" / "config.yaml").write_text("mine: true\n")  # two levels above the file
    before = snapshot(tmp_path / "keep")
    capsys.readouterr()
    assert train_main(["--resume", str(elsewhere / "model.pt"), "--set", "train.max_steps=5"]) == 0
    err = capsys.readouterr().err
    assert "is not in the checkpoints/ of a run folder" in err and "resuming from step 3" in err
    assert snapshot(tmp_path / "keep") == before  # nothing written there
    assert load_checkpoint(tmp_path / "runs" / "tiny-2")["step"] == 5
    assert [r["step"] for r in records(tmp_path / "runs" / "tiny-2")] == [4, 5]


def test_resume_from_an_older_checkpoint_branches_and_overwrites_nothing(tmp_path, capsys):
    cfg = tiny_config(tmp_path, checkpoint_every=2, keep_last=2)
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=7"]) == 0
    run = tmp_path / "runs" / "tiny"
    assert [p.name for p in list_checkpoints(run)] == ["step_0000006.pt", "step_0000007.pt"]
    before = snapshot(run)
    capsys.readouterr()
    older = run / "checkpoints" / "step_0000006.pt"
    assert train_main(["--resume", str(older), "--set", "train.max_steps=0"]) == 0
    err = capsys.readouterr().err
    branch = tmp_path / "runs" / "tiny-from-step6"
    assert f"branches into {branch}" in err
    assert snapshot(run) == before  # the run and all its checkpoints untouched
    assert [p.name for p in list_checkpoints(branch)] == ["step_0000008.pt"]
    # the branch's log: the run's records up to step 6, then its own
    assert [r["step"] for r in records(branch)] == list(range(1, 9))
    assert losses(branch)[6] == losses(run)[6]
    # the run's newest checkpoint resumes in place; branches from one step get folders of their own
    assert train_main(["--resume", str(run), "--set", "train.max_steps=0"]) == 0
    assert [p.name for p in list_checkpoints(run)] == ["step_0000007.pt", "step_0000008.pt"]
    for name in ("tiny-from-step7", "tiny-from-step7-2"):
        assert train_main(["--resume", str(run / "checkpoints" / "step_0000007.pt"), "--set", "train.max_steps=0"]) == 0
        assert [p.name for p in list_checkpoints(tmp_path / "runs" / name)] == ["step_0000008.pt"]
        # config.yaml as the last resume wrote it (with its --set) is no edit
        assert "was edited" not in capsys.readouterr().err


def test_resume_says_which_config_it_uses_and_keeps_an_edited_config(tmp_path, capsys):
    cfg = tiny_config(tmp_path)
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=3"]) == 0
    run = tmp_path / "runs" / "tiny"
    edited = (run / "config.yaml").read_text().replace("max_steps: 3", "max_steps: 6").replace("seed: 0", "seed: 4")
    (run / "config.yaml").write_text(edited)
    capsys.readouterr()
    assert train_main(["--resume", str(run), "--set", "train.max_steps=4"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    assert len(notes) == 2
    assert "with the config saved in the checkpoint with --set train.max_steps=4" in notes[0]
    assert "change a setting with --set KEY=VALUE" in notes[0]
    assert "was edited (train.max_steps, train.seed) and is not used: kept as config.yaml.edited" in notes[1]
    assert (run / "config.yaml.edited").read_text() == edited
    used = yaml.safe_load((run / "config.yaml").read_text())
    assert used["train"]["max_steps"] == 4 and used["train"]["seed"] == 0
    assert load_checkpoint(run)["step"] == 4
    # an unedited config.yaml: one line only
    assert train_main(["--resume", str(run), "--set", "train.max_steps=5"]) == 0
    assert sum(line.startswith("note: ") for line in capsys.readouterr().err.splitlines()) == 1


def test_a_checkpoint_cut_short_falls_back_and_the_log_is_the_run_that_happened(tmp_path, capsys):
    cfg = tiny_config(tmp_path)
    assert train_main(["--config", str(cfg), "--set", "train.name=full"]) == 0
    assert train_main(["--config", str(cfg), "--set", "train.max_steps=5"]) == 0
    run = tmp_path / "runs" / "tiny"
    newest = run / "checkpoints" / "step_0000005.pt"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # power loss while it was written
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 6, "train/G_gan": 1.')  # a record cut short as well
    capsys.readouterr()
    # translation of the run folder uses the newest readable checkpoint, and says so
    from i2i import load_translator

    load_translator(run)
    assert "step_0000005.pt: not a readable i2i checkpoint: cut short or damaged" in capsys.readouterr().err
    assert train_main(["--resume", str(run), "--set", "train.max_steps=0"]) == 0
    err = capsys.readouterr().err
    assert "resuming from the newest readable one, step_0000004.pt" in err
    assert "kept as step_0000005.pt.unreadable" in err
    assert (run / "checkpoints" / "step_0000005.pt.unreadable").read_bytes() == data[: len(data) // 2]
    # steps 5.. were trained twice; the log holds each step once, as an uninterrupted run's does
    assert [r["step"] for r in records(run)] == list(range(1, 9))
    assert losses(run) == losses(tmp_path / "runs" / "full")
    full, resumed = load_checkpoint(tmp_path / "runs" / "full"), load_checkpoint(run)
    for key, value in full["model"].items():
        if torch.is_tensor(value):
            torch.testing.assert_close(resumed["model"][key], value, msg=key)
