"""SIGINT/SIGTERM finish the step, checkpoint and stop; the resumed run equals an uninterrupted one.
Unreadable training images are skipped and listed; a data set that stops loading stops training
with a checkpoint."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from i2i.checkpoint import load_checkpoint
from i2i.cli.train import main as train_main
from i2i.data.io import write_image
from reliability_helpers import losses, records, tiny_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("full")
    assert train_main(["--config", str(tiny_config(tmp, epochs=2, epochs_decay=2, checkpoint_every=100))]) == 0
    return tmp / "runs" / "tiny"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_checkpoints_and_the_resumed_run_equals_an_uninterrupted_one(tmp_path, uninterrupted, sig):
    cfg = tiny_config(tmp_path, epochs=2, epochs_decay=2, checkpoint_every=100)  # 16 steps
    run = tmp_path / "runs" / "tiny"
    proc = subprocess.Popen([sys.executable, "-m", "i2i.cli.train", "--config", str(cfg)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            metrics = run / "metrics.jsonl"
            if metrics.is_file() and len(metrics.read_text().splitlines()) >= 2:
                break
            time.sleep(0.02)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    last = err.strip().splitlines()[-1]
    step = load_checkpoint(run)["step"]
    assert 2 <= step < 16
    assert last == (f"error: interrupted by {sig.name} at step {step}; checkpoint {run}/checkpoints/"
                    f"step_{step:07d}.pt; continue with: i2i-train --resume {run}")
    assert [r["step"] for r in records(run)] == list(range(1, step + 1))  # the step it was in was finished
    assert train_main(["--resume", str(run)]) == 0
    assert losses(run) == losses(uninterrupted)  # step for step
    full, resumed = load_checkpoint(uninterrupted), load_checkpoint(run)
    assert resumed["step"] == full["step"] == 16
    for key, value in full["model"].items():
        if torch.is_tensor(value):
            torch.testing.assert_close(resumed["model"][key], value, msg=key)


def aligned_folder(root: Path, n: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        write_image(root / "train" / f"{i}.png", rng.integers(0, 255, (36, 72, 3), dtype=np.uint8))
    return root


def test_unreadable_training_images_are_skipped_and_listed(tmp_path, capfd):
    root = aligned_folder(tmp_path / "data")
    good = (root / "train" / "2.png").read_bytes()
    (root / "train" / "2.png").write_bytes(good[: len(good) // 3])  # cut short
    (root / "train" / "5.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    cfg = tiny_config(tmp_path)
    assert train_main(["--config", str(cfg), "--set", f"data.root={root}", "data.max_items=0", "data.num_workers=1"]) == 0
    err = capfd.readouterr().err  # the loader worker's lines as well
    run = tmp_path / "runs" / "tiny"
    listed = (run / "skipped_images.txt").read_text().splitlines()
    assert sorted(listed) == [f"cannot read image {root / 'train' / '2.png'}: damaged or cut short (a PNG chunk "
                              "runs past the end)",
                              f"cannot read image {root / 'train' / '5.png'}: not a valid or supported image file"]
    assert err.count("warning: skipped a training item: cannot read image") == 2 and "WARN" not in err
    assert f"note: 2 training item(s) could not be loaded and were skipped; listed in {run / 'skipped_images.txt'}" in err
    assert load_checkpoint(run)["step"] == 8


def test_a_data_set_that_stops_loading_stops_training_with_a_checkpoint(tmp_path, monkeypatch, capsys):
    import i2i.data.datasets as datasets
    from i2i.errors import DataError

    root = aligned_folder(tmp_path / "data")
    calls, original = [0], datasets.read_image

    def failing(path, *args, **kwargs):  # the disk goes away after 10 reads
        calls[0] += 1
        if calls[0] > 10:
            raise DataError(f"cannot read image {path}: Input/output error")
        return original(path, *args, **kwargs)

    monkeypatch.setattr(datasets, "read_image", failing)
    assert train_main(["--config", str(tiny_config(tmp_path)), "--set", f"data.root={root}"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    run = tmp_path / "runs" / "tiny"
    step = load_checkpoint(run)["step"]
    assert step == 5  # ten reads: five batches of two
    assert re.fullmatch(re.escape(f"error: training stopped at step 5: 8 training items in a row could not be "
                                  f"loaded (the last: cannot read image {root / 'train'}/") + r"\d\.png"
                        + re.escape(f": Input/output error); checkpoint {run}/checkpoints/step_0000005.pt "
                                    "(fix the data, then --resume)"), lines[-1]), lines[-1]


def test_an_unreadable_validation_image_stops_training_with_this_step_checkpointed(tmp_path, capsys):
    root = tmp_path / "data"
    (root / "val").mkdir(parents=True)
    write_image(root / "val" / "a.png", np.zeros((36, 72, 3), np.uint8))
    (root / "val" / "b.png").write_bytes(b"not an image")
    args = ["--config", str(tiny_config(tmp_path)), "--set", "eval.every=3", f"eval.root={root}",
            "eval.metrics=[psnr]"]
    assert train_main(args) == 1
    run = tmp_path / "runs" / "tiny"
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: training stopped at step 3: evaluation: cannot read image {root / 'val' / 'b.png'}: not a valid or "
        f"supported image file; checkpoint {run}/checkpoints/step_0000003.pt (fix the data, then --resume)")
    state = load_checkpoint(run)
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (3, 0, 3)
