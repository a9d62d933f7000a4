"""tools/loss_zoo.py runs end to end in a tiny setting and writes its outputs."""
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from i2i.losses.toy import mode_stats, ring_centres, sliced_wasserstein

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("loss_zoo", ROOT / "tools" / "loss_zoo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_loss_zoo_quick_run(tmp_path):
    zoo = _tool()
    out = tmp_path / "zoo"
    variants = ["nsgan", "wgan", "ebgan", "hinge+bcr"]
    assert zoo.main(["--steps", "3", "--out", str(out), "--variants", *variants]) == 0
    data = json.loads((out / "results.json").read_text())
    assert [r["variant"] for r in data["rows"]] == variants and data["steps"] == 3
    for row in data["rows"]:
        assert 0 <= row["modes"] <= 8 and 0.0 <= row["high_quality"] <= 1.0 and row["swd"] > 0
    grid = cv2.imread(str(out / "grid.png"))
    assert grid.shape == (160, 160 * 6, 3)
    assert (grid[:, 160 * 4:] == 255).all()  # two empty cells
    assert (out / "hinge_bcr.png").is_file() and (out / "nsgan.png").is_file()
    report = (tmp_path / "zoo.md").read_text()
    assert "| wgan |" in report and "zoo/grid.png" in report and "Hardware:" in report


def test_mode_measures_on_known_samples():
    zoo = _tool()
    centres = ring_centres()
    samples = np.concatenate([np.repeat(centres[:3].numpy(), 10, 0), np.zeros((10, 2), np.float32)])
    stats = mode_stats(torch.from_numpy(samples), centres, zoo.STD, zoo.K)
    assert stats["modes"] == 3 and abs(stats["high_quality"] - 0.75) < 1e-6
    tile = zoo.draw(samples, "x")
    assert tile.shape == (160, 160, 3) and (tile == (200, 80, 20)).all(2).sum() >= 3


def test_unknown_variant_is_refused(tmp_path, capsys):
    assert _tool().main(["--quick", "--out", str(tmp_path / "z"), "--variants", "nope"]) == 2
    assert "unknown variant" in capsys.readouterr().err


def test_sliced_wasserstein_of_a_shift():
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    assert sliced_wasserstein(x, x) == 0.0
    # shifting by v moves every projection on u by v.u: E|v.u| = 2|v|/pi for uniform directions in 2-D
    assert abs(sliced_wasserstein(x, x + torch.tensor([1.0, 0.0]), n_proj=4000) - 2 / np.pi) < 0.02


def test_the_default_output_is_an_ignored_folder():
    """Run in a clone, the tool leaves the repository's files (docs/loss_zoo) alone."""
    args = _tool().parse_args([])
    assert Path(args.out) == Path("results/loss_zoo") and args.report is None  # report: results/loss_zoo.md
    assert "/results/" in (ROOT / ".gitignore").read_text().splitlines()
