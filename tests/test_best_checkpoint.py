"""A run with eval.best is translated with its best checkpoint, and says so; eval.root defaults to data.root;
train.amp: auto picks bf16 only where the device computes it natively."""
import numpy as np
import pytest
import torch

import i2i
from i2i.checkpoint import load_checkpoint
from i2i.cli.train import main as train_main
from i2i.cli.translate import main as translate_main
from i2i.data.io import write_image
from i2i.runtime import resolve_amp
from reliability_helpers import records, tiny_config


def test_a_run_folder_is_translated_with_its_best_checkpoint(tmp_path, capsys):
    cfg = tiny_config(tmp_path)  # 8 steps, evaluated on builtin:shapes' val split (eval.root not given)
    assert train_main(["--config", str(cfg), "--set", "eval.every=2", "eval.best=psnr", "eval.max_items=4"]) == 0
    run = tmp_path / "runs" / "tiny"
    scores = {r["step"]: r["eval/psnr"] for r in records(run) if "eval/psnr" in r}
    assert sorted(scores) == [2, 4, 6, 8]
    best_step = max(scores, key=scores.get)
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["step"] == best_step and best["best"] == pytest.approx(scores[best_step])
    assert best["config"]["eval"]["root"] == "builtin:shapes"

    translator = i2i.load_translator(run)
    assert translator.checkpoint == (f"{run / 'checkpoints' / 'best.pt'} (step {best_step}, "
                                     f"best psnr {scores[best_step]:.4g} on the validation set)")
    src = tmp_path / "in"
    write_image(src / "a.png", np.full((32, 32, 3), 128, np.uint8))
    capsys.readouterr()
    assert translate_main(["--checkpoint", str(run), "--input", str(src), "--output", str(tmp_path / "out")]) == 0
    assert f"translated 1 image(s) into {tmp_path / 'out'} with {translator.checkpoint}" in capsys.readouterr().err
    step = run / "checkpoints" / "step_0000008.pt"
    assert i2i.load_translator(step).checkpoint == f"{step} (step 8)"


def test_without_best_the_newest_step_checkpoint_is_used(tmp_path):
    assert train_main(["--config", str(tiny_config(tmp_path))]) == 0
    run = tmp_path / "runs" / "tiny"
    assert i2i.load_translator(run).checkpoint == f"{run / 'checkpoints' / 'step_0000008.pt'} (step 8)"


def test_amp_auto_is_bf16_only_where_the_device_has_it():
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert resolve_amp(torch.device("cpu"), "auto") == ("bf16" if native else "off")
    assert resolve_amp(torch.device("meta"), "auto") == "off"
    for amp in ("off", "bf16", "fp16"):
        assert resolve_amp(torch.device("cpu"), amp) == amp


@pytest.mark.parametrize("preprocess, size", [("", 32), ("none", 48)])
def test_eval_preprocess_none_scores_whole_images(tmp_path, preprocess, size):
    from i2i.configure import load_config
    from i2i.engine.evaluate import Evaluator

    cfg = load_config(tiny_config(tmp_path), ["data.load_size=48", "eval.every=1", f"eval.preprocess={preprocess!r}"
                                              if preprocess else "eval.every=1"])
    batch = next(iter(Evaluator(cfg, torch.device("cpu")).loader))
    assert batch["A"].shape[-2:] == batch["B"].shape[-2:] == (size, size)  # centre crops, or the whole 48 px images
