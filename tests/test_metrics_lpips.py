"""LPIPS: equal to the lpips package's own implementation (random backbones, its published linear layers), the
published files fetched and checked through the weights registry, and the metric in i2i-eval and training."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from i2i.cli.eval import main as eval_main
from i2i.data.io import write_image
from i2i.errors import DataError, WeightsError
from i2i.metrics import LPIPS, MetricSuite, higher_is_better, quantize
from i2i.pretrained import ALEXNET, LPIPS_ALEX, LPIPS_VGG, MIRROR_ENV, OFFLINE_ENV

RANDOM = {"backbone": "random", "linear": "random"}


def images(n, size, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, *size, generator=g) * 2 - 1


@pytest.fixture(scope="module")
def package():
    lpips = pytest.importorskip("lpips")
    return Path(lpips.__file__).parent / "weights" / "v0.1"


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_equal_to_the_lpips_package(package, net):
    import warnings

    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = lpips.LPIPS(net=net, pnet_rand=True, verbose=False).eval()  # random backbone, its linear layers
    mine = LPIPS(net, backbone="random", linear=package / f"{net}.pth")
    backbone = {k: v for i in range(1, 6) for k, v in getattr(reference.net, f"slice{i}").state_dict().items()}
    mine.features.load_state_dict(backbone)
    x, y = images(3, (64, 48), 0), images(3, (64, 48), 1)
    with torch.no_grad():
        expected = reference(x, y).flatten()
    assert expected.shape == (3,) and bool((expected > 0).all())
    assert torch.allclose(mine(x, y), expected, rtol=1e-5, atol=1e-7)


def test_the_published_linear_layers_are_fetched_and_checked(package, tmp_path, monkeypatch):
    """Served from 127.0.0.1 under their registry names, the package's files pass the recorded SHA-256."""
    from test_pretrained import Server

    server = Server()
    try:
        for entry, name in ((LPIPS_ALEX, "alex.pth"), (LPIPS_VGG, "vgg.pth")):
            server.files[entry.filename] = (package / name).read_bytes()
        monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch" / "hub"))
        monkeypatch.delenv(OFFLINE_ENV)
        monkeypatch.setenv(MIRROR_ENV, server.base)
        alex = LPIPS("alex", backbone="random")
        assert sorted(server.requests) == [f"/{LPIPS_ALEX.filename}"]
        state = torch.load(package / "alex.pth", map_location="cpu", weights_only=True)
        assert torch.equal(alex.lins[2].weight, state["lin2.model.1.weight"])
        LPIPS("vgg", backbone="random")
        LPIPS("alex", backbone="random")  # from the cache now
        assert len(server.requests) == 2
    finally:
        server.close()


def test_distance_properties_and_sizes():
    model = LPIPS("alex", **RANDOM)
    x, y = images(2, (32, 40), 2), images(2, (32, 40), 3)
    assert torch.equal(model(x, x), torch.zeros(2))
    assert torch.allclose(model(x, y), model(y, x)) and bool((model(x, y) > 0).all())
    gray = images(1, (31, 31), 4)[:, :1]
    assert torch.allclose(model(gray, -gray), model(gray.repeat(1, 3, 1, 1), -gray.repeat(1, 3, 1, 1)))
    with pytest.raises(DataError, match="at least 31 x 31 pixels, got 30 x 40"):
        model(images(1, (30, 40), 5), images(1, (30, 40), 6))
    with pytest.raises(ValueError, match="alex, vgg"):
        LPIPS("squeeze", **RANDOM)


def test_the_metric_scores_8_bit_images_per_pair():
    suite = MetricSuite(["lpips", "psnr"], lpips=RANDOM)
    pred, target = images(3, (32, 32), 7), images(3, (32, 32), 8)
    per_image = suite.update(pred, target)
    model = LPIPS("alex", **RANDOM)
    expected = model(quantize(pred).float() / 127.5 - 1, quantize(target).float() / 127.5 - 1).double()
    assert torch.allclose(per_image["lpips"], expected)
    suite.update(pred[:1], pred[:1])
    assert suite.compute()["lpips"] == pytest.approx(float(expected.sum()) / 4)
    assert higher_is_better("lpips") is False and higher_is_better("lpips_vgg") is False


@pytest.fixture
def random_files(tmp_path, monkeypatch):
    """Random AlexNet and linear-layer files, named by the environment variables (no cache, no network)."""
    backbone = tmp_path / "alexnet.pth"  # keyed as torchvision's file (its classifier is not read)
    torch.save({f"features.{k}": v for k, v in LPIPS("alex", **RANDOM).features.state_dict().items()}, backbone)
    linear = tmp_path / "lin.pth"
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) * 0.1
                for i, c in enumerate((64, 192, 384, 256, 256))}, linear)
    monkeypatch.setenv(ALEXNET.env, str(backbone))
    monkeypatch.setenv(LPIPS_ALEX.env, str(linear))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch" / "hub"))
    return backbone, linear


def test_eval_reports_lpips_and_shows_it_per_image(tmp_path, random_files, capsys):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        for folder in ("pred", "target"):
            write_image(tmp_path / folder / f"{name}.png", rng.integers(0, 256, (40, 36, 3)).astype(np.uint8))
    out = tmp_path / "scores.json"
    assert eval_main(["--pred", str(tmp_path / "pred"), "--target", str(tmp_path / "target"), "--metrics",
                      "lpips,psnr", "--json", str(out), "--html", str(tmp_path / "page")]) == 0
    doc = json.loads(out.read_text())
    assert 0 < doc["metrics"]["lpips"] < 10 and "psnr" in doc["metrics"]
    assert "lpips" in (tmp_path / "page" / "index.html").read_text()


def test_eval_offline_without_the_files_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch" / "hub"))
    monkeypatch.delenv(ALEXNET.env, raising=False)
    for folder in ("pred", "target"):
        write_image(tmp_path / folder / "a.png", np.zeros((40, 40, 3), np.uint8))
    assert eval_main(["--pred", str(tmp_path / "pred"), "--target", str(tmp_path / "target"), "--metrics", "lpips",
                      "--offline"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"put {ALEXNET.filename}" in err[0] and "I2I_ALEXNET_WEIGHTS" in err[0]
    with pytest.raises(WeightsError):
        MetricSuite(["lpips_vgg"])


def test_training_evaluates_and_keeps_the_best_by_lpips(tmp_path, random_files):
    from reliability_helpers import records, tiny_config

    from i2i.cli.train import main as train_main

    assert train_main(["--config", str(tiny_config(tmp_path)), "--set", "eval.every=4", "eval.metrics=[lpips]",
                       "eval.best=lpips", "eval.max_items=2"]) == 0
    run = tmp_path / "runs" / "tiny"
    scores = [r["eval/lpips"] for r in records(run) if "eval/lpips" in r]
    assert len(scores) == 2 and all(s > 0 for s in scores)
    assert (run / "checkpoints" / "best.pt").is_file()
