"""MetricSuite with a tiny random feature extractor: values equal the plain formulas."""
import pytest
import torch
from torch import nn

from i2i.errors import ConfigError
from i2i.metrics import (MetricSuite, fid_from_features, higher_is_better, inception_score, kid, psnr,
                         quantize, segmentation_scores, ssim)
from i2i.metrics.fid import softmax64
from i2i.registry import METRICS


class TinyExtractor(nn.Module):
    """Random conv features (8-d, non-negative) and 5 logits."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        self.fc = nn.Linear(8, 5)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        f = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return f, self.fc(f)


def _images(n, seed, size=16):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def test_registered_names():
    for name in ["fid", "kid", "is", "psnr", "ssim", "psnr_y", "ssim_y", "seg"]:
        assert name in METRICS


def test_feature_metrics_match_formulas_and_share_extraction():
    ext = TinyExtractor()
    pred, target = _images(12, 1), _images(12, 2) * 0.5
    suite = MetricSuite(["fid", "kid", "is"], feature_extractor=ext, kid={"subsets": 4, "subset_size": 5}, **{"is": {"splits": 3}})
    suite.update(pred[:7], target[:7])
    suite.update(pred[7:], target[7:])
    out = suite.compute()
    assert ext.calls == 4  # pred and target once per update, shared by fid, kid and is
    with torch.no_grad():
        fp, lp = ext(pred)
        ft, _ = ext(target)
    assert out["fid"] == pytest.approx(fid_from_features(fp, ft), rel=1e-5)
    assert (out["kid"], out["kid_std"]) == pytest.approx(kid(fp, ft, subsets=4, subset_size=5), rel=1e-5)
    assert (out["is"], out["is_std"]) == pytest.approx(inception_score(softmax64(lp), splits=3), rel=1e-5)
    assert set(out) == {"fid", "kid", "kid_std", "is", "is_std"}


def test_reference_kept_across_reset_and_update_reference():
    ext = TinyExtractor()
    pred, target = _images(6, 3), _images(6, 4)
    a = MetricSuite(["fid"], feature_extractor=ext)
    a.update(pred, target)
    first = a.compute()["fid"]
    a.reset(keep_reference=True)
    a.update(pred, torch.zeros_like(target))  # target ignored: reference kept
    assert a.compute()["fid"] == pytest.approx(first)
    b = MetricSuite(["fid"], feature_extractor=ext)
    b.update_reference(target[:3])
    b.update_reference(target[3:])
    b.update(pred)
    assert b.compute()["fid"] == pytest.approx(first, rel=1e-6)
    b.reset()
    b.update(pred)
    with pytest.raises(ConfigError, match="reference"):
        b.compute()


def test_paired_metrics_use_uint8_scale():
    pred, target = _images(3, 5), _images(3, 6)
    suite = MetricSuite(["psnr", "ssim", "psnr_y", "ssim_y"])
    suite.update(pred, target)
    out = suite.compute()
    p, t = quantize(pred).double(), quantize(target).double()
    assert out["psnr"] == pytest.approx(psnr(p, t, data_range=255), rel=1e-12)
    assert out["ssim"] == pytest.approx(ssim(p, t, data_range=255), rel=1e-12)
    assert out["ssim_y"] == pytest.approx(ssim(p, t, data_range=255, y_channel=True), rel=1e-12)
    assert out["psnr_y"] != out["psnr"]
    with pytest.raises(ConfigError, match="target"):
        suite.update(pred)


def test_seg_with_colour_and_label_targets():
    palette = {1: (255, 0, 0), 2: (0, 0, 255)}
    gt = torch.tensor([[[1, 1], [2, 2]]])
    pred_labels = torch.tensor([[[1, 2], [2, 2]]])
    colours = torch.tensor([[0, 0, 0], [255, 0, 0], [0, 0, 255]], dtype=torch.float32)
    to_img = lambda lab: (colours[lab].permute(0, 3, 1, 2) / 127.5 - 1)  # noqa: E731
    expected = {f"seg_{k}": v for k, v in segmentation_scores(pred_labels, gt, num_classes=3).items()}
    s1 = MetricSuite(["seg"], palette=palette)
    s1.update(to_img(pred_labels), gt)
    assert s1.compute() == pytest.approx(expected)
    s2 = MetricSuite(["seg"], palette=palette)
    s2.update(to_img(pred_labels), to_img(gt))
    assert s2.compute() == pytest.approx(expected)
    assert expected["seg_pixel_acc"] == pytest.approx(0.75)
    with pytest.raises(ConfigError, match="palette"):
        MetricSuite(["seg"])


def test_higher_is_better():
    assert not higher_is_better("fid") and not higher_is_better("kid")
    assert all(higher_is_better(n) for n in ["is", "psnr", "ssim", "psnr_y", "ssim_y", "seg_miou", "seg_pixel_acc"])
    with pytest.raises(ConfigError, match="did you mean 'psnr'"):
        higher_is_better("psrn")


def test_config_errors():
    with pytest.raises(ConfigError, match="did you mean 'ssim'"):
        MetricSuite(["ssmi"])
    with pytest.raises(ConfigError, match="no option"):
        MetricSuite(["kid"], feature_extractor=TinyExtractor(), kid={"subset": 3})
    with pytest.raises(ConfigError, match="not selected"):
        MetricSuite(["psnr"], kid={"subsets": 3})
    suite = MetricSuite(["is"], feature_extractor=lambda x: x.mean(dim=(2, 3)))
    with pytest.raises(ConfigError, match="logits"):
        suite.update(_images(2, 7))


def test_update_returns_per_image_scores():
    pred, target = _images(3, 1, size=16), _images(3, 2, size=16)
    suite = MetricSuite(["psnr", "ssim_y", "is"], feature_extractor=TinyExtractor())
    per_image = suite.update(pred, target)
    assert set(per_image) == {"psnr", "ssim_y"}  # 'is' has no value per image
    p, t = quantize(pred).double(), quantize(target).double()
    for i in range(3):
        assert float(per_image["psnr"][i]) == pytest.approx(psnr(p[i], t[i]))
        assert float(per_image["ssim_y"][i]) == pytest.approx(ssim(p[i], t[i], y_channel=True))
    assert suite.compute()["psnr"] == pytest.approx(float(per_image["psnr"].mean()))


def test_seg_per_image_scores_and_set_scores():
    palette = {1: (255, 0, 0), 2: (0, 0, 255)}
    colours = torch.tensor([[0, 0, 0], [255, 0, 0], [0, 0, 255]], dtype=torch.float32)
    gt = torch.tensor([[[1, 1], [2, 2]], [[1, 1], [1, 1]]])
    pred_labels = torch.tensor([[[1, 2], [2, 2]], [[1, 1], [1, 1]]])
    suite = MetricSuite(["seg"], palette=palette)
    per_image = suite.update(colours[pred_labels].permute(0, 3, 1, 2) / 127.5 - 1, gt)
    assert per_image["seg_pixel_acc"].tolist() == pytest.approx([0.75, 1.0])
    for i in range(2):
        own = segmentation_scores(pred_labels[i], gt[i], num_classes=3)
        assert float(per_image["seg_miou"][i]) == pytest.approx(own["miou"])
    whole = segmentation_scores(pred_labels, gt, num_classes=3)
    assert suite.compute() == pytest.approx({f"seg_{k}": v for k, v in whole.items()})
