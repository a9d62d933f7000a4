"""A disk that fills up while a checkpoint is written: one line saying so, exit 1, no part of the failed file left
and the earlier checkpoints as they were."""
import errno
from collections import namedtuple

import pytest
import torch

from i2i import checkpoint as ckpt_module
from i2i.checkpoint import load_checkpoint
from i2i.cli.train import main as train_main
from reliability_helpers import tiny_config

Usage = namedtuple("Usage", "total used free")


def failing_save(fail_from, exc):
    """torch.save that writes part of the file, then fails, from its ``fail_from``-th call on."""
    real, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) < fail_from:
            return real(obj, f, *args, **kwargs)
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 part of a checkpoint")
        raise exc

    return save


@pytest.mark.parametrize("exc, free", [
    (OSError(errno.ENOSPC, "No space left on device"), None),
    (RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 4608 vs 4496"), 4096),
    (RuntimeError("PytorchStreamWriter failed writing file data/2: file write failed"), 0),
])
def test_a_full_disk_while_a_checkpoint_is_written(tmp_path, monkeypatch, capsys, exc, free):
    cfg = tiny_config(tmp_path)  # checkpoints at steps 3 (checkpoint_every) and 4 (end of epoch 1)
    monkeypatch.setattr(ckpt_module.torch, "save", failing_save(2, exc))
    if free is not None:
        monkeypatch.setattr(ckpt_module.shutil, "disk_usage", lambda _: Usage(2**30, 2**30 - free, free))
    capsys.readouterr()
    assert train_main(["--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    folder = tmp_path / "runs" / "tiny" / "checkpoints"
    assert f"error: cannot write checkpoint {folder / 'step_0000004.pt'}: the disk is full" in err
    assert "the earlier checkpoints are kept" in err and "Traceback" not in err
    assert sorted(p.name for p in folder.iterdir()) == ["step_0000003.pt"]  # no temporary file, no step 4
    assert load_checkpoint(folder / "step_0000003.pt")["step"] == 3


def test_another_write_failure_is_named_and_not_called_a_full_disk(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ckpt_module.torch, "save", failing_save(1, OSError(errno.EIO, "Input/output error")))
    monkeypatch.setattr(ckpt_module.shutil, "disk_usage", lambda _: Usage(2**40, 0, 2**40))
    assert train_main(["--config", str(tiny_config(tmp_path))]) == 1
    err = capsys.readouterr().err
    assert "cannot write checkpoint" in err and "Input/output error (1048576 MiB free)" in err
    assert "disk is full" not in err and "Traceback" not in err
