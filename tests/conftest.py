"""Shared test setup: no test downloads pretrained weights (tests of the download serve them from 127.0.0.1),
and ``tiny_run``, the config file of a tiny training run."""
import pytest
import yaml

#: 8 built-in shapes, 32 px crops of 36 px images in batches of 2 (4 steps an epoch), read in this process
TINY_DATA = {"root": "builtin:shapes", "load_size": 36, "crop_size": 32, "batch_size": 2, "num_workers": 0,
             "max_items": 8}


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("I2I_OFFLINE", "1")
    monkeypatch.delenv("I2I_WEIGHTS_URL", raising=False)


@pytest.fixture
def tiny_run(tmp_path):
    """``tiny_run(name, tree, **train) -> path``: writes ``tmp_path/NAME.yaml``, the config ``tree`` (a translator
    and its tiny networks) on :data:`TINY_DATA` with ``tree``'s ``data:`` on top, that trains into
    ``tmp_path/runs/NAME``, checkpoints only at its end, logs every step to ``metrics.jsonl`` and samples
    every 1000 (no progress bar, no TensorBoard); ``tree``'s ``train:`` and ``log:``, then ``train``, on top."""
    def write(name, tree, **train):
        config = {**tree, "data": {**TINY_DATA, **tree.get("data", {})},
                  "train": {"out_dir": str(tmp_path / "runs"), "name": name, "checkpoint_every": 1000,
                            **tree.get("train", {}), **train},
                  "log": {"every": 1, "sample_every": 1000, "progress": False, "tensorboard": False,
                          **tree.get("log", {})}}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return write
