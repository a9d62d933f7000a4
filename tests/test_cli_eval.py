"""i2i-eval on small folders of generated images."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from i2i.cli.eval import main
from i2i.data.io import image_to_tensor, list_images, read_image, write_image
from i2i.metrics import fid_from_features, inception_score, kid, psnr, segmentation_scores, ssim
from i2i.metrics import inception as inc
from i2i.metrics.fid import softmax64

PALETTE = {1: (255, 0, 0), 2: (0, 0, 255), 3: (0, 255, 0)}


def _write_set(root, names, seed, size=24, noise=None, base=None):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, name in enumerate(names):
        if base is None:
            arr = rng.integers(0, 256, (size, size, 3)).astype(np.uint8)
        else:
            arr = np.clip(base[name].astype(int) + rng.integers(-noise, noise + 1, base[name].shape), 0, 255).astype(np.uint8)
        write_image(root / f"{name}.png", arr)
        arrays[name] = arr
    return arrays


@pytest.fixture()
def folders(tmp_path):
    names = ["a", "b", "c", "d"]
    target = _write_set(tmp_path / "target", names, 0)
    pred = _write_set(tmp_path / "pred", names, 1, noise=20, base=target)
    return tmp_path, pred, target


class TinyExtractor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 3, stride=2)
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        f = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return f, self.fc(f)


@pytest.mark.smoke
def test_paired_metrics_table_and_json(folders, capsys):
    tmp, pred, target = folders
    out = tmp / "res" / "scores.json"
    rc = main(["--pred", str(tmp / "pred"), "--target", str(tmp / "target"), "--metrics", "psnr,ssim,ssim_y",
               "--json", str(out), "--batch-size", "3"])
    assert rc == 0
    doc = json.loads(out.read_text())
    names = sorted(pred)
    expected_psnr = np.mean([psnr(pred[n], target[n], data_range=255) for n in names])
    expected_ssim = np.mean([ssim(pred[n], target[n], data_range=255) for n in names])
    assert doc["metrics"]["psnr"] == pytest.approx(expected_psnr, rel=1e-9)
    assert doc["metrics"]["ssim"] == pytest.approx(expected_ssim, rel=1e-9)
    assert doc["counts"]["pred"] == 4
    assert [p.name for p in out.parent.iterdir()] == ["scores.json"]  # no temporary file left
    table = capsys.readouterr().out
    assert "psnr" in table and "ssim_y" in table and f"{expected_psnr:.6g}" in table


def test_identical_images_give_inf_psnr_as_string(folders):
    tmp, _, _ = folders
    out = tmp / "same.json"
    assert main(["--pred", str(tmp / "target"), "--target", str(tmp / "target"), "--metrics", "psnr,ssim", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["metrics"]["psnr"] == "inf" and doc["metrics"]["ssim"] == pytest.approx(1.0)


def test_feature_metrics_with_injected_extractor(folders, monkeypatch):
    tmp = folders[0]
    _write_set(tmp / "target", ["e", "f"], 5)  # set metrics accept different counts
    ext = TinyExtractor()
    monkeypatch.setattr(inc, "load_inception", lambda weights=None, device="cpu": ext)
    out = tmp / "fid.json"
    assert main(["--pred", str(tmp / "pred"), "--target", str(tmp / "target"), "--metrics", "fid,kid,is",
                 "--json", str(out), "--batch-size", "2"]) == 0
    doc = json.loads(out.read_text())["metrics"]
    load = lambda folder: torch.stack([image_to_tensor(a) for a in folder])  # noqa: E731
    with torch.no_grad():
        fp, lp = ext(load(read_image(p) for p in list_images(tmp / "pred")))
        ft, _ = ext(load(read_image(p) for p in list_images(tmp / "target")))
    assert doc["fid"] == pytest.approx(fid_from_features(fp, ft), rel=1e-5)
    assert doc["kid"] == pytest.approx(kid(fp, ft)[0], rel=1e-5)
    assert doc["is"] == pytest.approx(inception_score(softmax64(lp), splits=4)[0], rel=1e-5)


def test_unpaired_files_exit_2_listing_stems(folders, capsys):
    tmp, _, _ = folders
    (tmp / "pred" / "b.png").unlink()
    _write_set(tmp / "pred", ["zz"], 3)
    rc = main(["--pred", str(tmp / "pred"), "--target", str(tmp / "target"), "--metrics", "psnr"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "zz" in err and "b" in err and "unpaired" in err


def test_user_errors_are_one_line(folders, capsys, monkeypatch):
    tmp, _, _ = folders
    assert main(["--pred", str(tmp / "pred"), "--target", str(tmp / "target"), "--metrics", "psnr,fdi"]) == 2
    assert "did you mean 'fid'" in capsys.readouterr().err
    assert main(["--pred", str(tmp / "nope"), "--target", str(tmp / "target"), "--metrics", "psnr"]) == 1
    assert "nope" in capsys.readouterr().err
    assert main(["--pred", str(tmp / "pred"), "--target", str(tmp / "target"), "--metrics", "psnr", "--device", "gpu7"]) == 2
    assert "--device" in capsys.readouterr().err
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp / "hub"))
    monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)
    assert main(["--pred", str(tmp / "pred"), "--target", str(tmp / "target"), "--metrics", "fid"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Inception weights" in err and "Traceback" not in err
    with pytest.raises(Exception, match="Inception weights"):
        main(["--pred", str(tmp / "pred"), "--target", str(tmp / "target"), "--metrics", "fid", "--debug"])


def _label_sets(tmp):
    rng = np.random.default_rng(7)
    colours = np.zeros((4, 3), np.uint8)
    for k, c in PALETTE.items():
        colours[k] = c
    (tmp / "labels").mkdir()
    pal = tmp / "palette.txt"
    pal.write_text("# test palette\n" + "".join(f"{k} {r} {g} {b}\n" for k, (r, g, b) in PALETTE.items()))
    expected_correct, total, maps = 0, 0, []
    for name in ["x", "y"]:
        gt = rng.integers(1, 4, (12, 12)).astype(np.uint8)
        pred = gt.copy()
        pred[:3] = 1 + (gt[:3] % 3)  # first three rows wrong
        write_image(tmp / "labels" / f"{name}.png", gt)
        noisy = np.clip(colours[pred].astype(int) + rng.integers(-40, 41, (12, 12, 3)), 0, 255).astype(np.uint8)
        write_image(tmp / "segpred" / f"{name}.png", noisy)
        write_image(tmp / "segtarget" / f"{name}.png", colours[gt])
        expected_correct += (pred == gt).sum()
        total += gt.size
        maps.append((pred, gt))
    return pal, expected_correct / total, maps


def test_seg_from_label_maps_and_from_colour_targets(tmp_path):
    (tmp_path / "segpred").mkdir()
    (tmp_path / "segtarget").mkdir()
    pal, acc, maps = _label_sets(tmp_path)
    out1, out2 = tmp_path / "s1.json", tmp_path / "s2.json"
    assert main(["--pred", str(tmp_path / "segpred"), "--labels", str(tmp_path / "labels"), "--palette", str(pal),
                 "--metrics", "seg", "--json", str(out1)]) == 0
    assert main(["--pred", str(tmp_path / "segpred"), "--target", str(tmp_path / "segtarget"), "--palette", str(pal),
                 "--metrics", "seg", "--json", str(out2)]) == 0
    m1, m2 = json.loads(out1.read_text())["metrics"], json.loads(out2.read_text())["metrics"]
    assert m1["seg_pixel_acc"] == pytest.approx(acc)
    assert m1 == pytest.approx(m2)
    assert 0 < m1["seg_miou"] < m1["seg_class_acc"] <= 1
    out3 = tmp_path / "s3.json"
    assert main(["--pred", str(tmp_path / "segpred"), "--labels", str(tmp_path / "labels"), "--palette", str(pal),
                 "--metrics", "seg", "--ignore-index", "2", "--json", str(out3)]) == 0
    pred = np.concatenate([p.ravel() for p, _ in maps])
    gt = np.concatenate([g.ravel() for _, g in maps])
    expected = segmentation_scores(pred, gt, num_classes=4, ignore_index=2)
    m3 = json.loads(out3.read_text())["metrics"]
    assert m3["seg_pixel_acc"] == pytest.approx(expected["pixel_acc"]) and m3["seg_pixel_acc"] != m1["seg_pixel_acc"]
    assert m3["seg_miou"] == pytest.approx(expected["miou"])


def test_max_pixels_stops_at_a_larger_image_in_one_line(folders, capsys):
    tmp, _, _ = folders  # 24 x 24 = 576 pixels each
    args = ["--pred", str(tmp / "pred"), "--target", str(tmp / "target"), "--metrics", "psnr"]
    assert main(args + ["--max-pixels", "575"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "24x24 px" in err and "over the pixel limit" in err and "a.png" in err
    assert main(args + ["--max-pixels", "576"]) == 0
    capsys.readouterr()
    assert main(args + ["--max-pixels", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "error: --max-pixels must be >= 0, got -1"
