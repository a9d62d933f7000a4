"""PSNR and SSIM against hand values and scikit-image with the same settings."""
import math

import numpy as np
import pytest
import torch

pytest.importorskip("skimage")
from skimage.color import rgb2ycbcr  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402

from i2i.metrics import psnr, psnr_per_image, quantize, rgb_to_y, ssim, ssim_per_image  # noqa: E402
from i2i.metrics.image import gaussian_window  # noqa: E402


def _pair(seed=0, shape=(24, 20, 3)):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 31, shape), 0, 255).astype(np.uint8)
    return a, b


def _sk_ssim(a, b, **kw):
    return structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, **kw)


def test_psnr_hand_values():
    a = np.full((8, 8, 3), 100, np.uint8)
    assert psnr(a, a + 1, data_range=255) == pytest.approx(20 * math.log10(255), abs=1e-9)
    assert psnr(a, a + 1, data_range=255) == pytest.approx(48.1308036, abs=1e-6)
    x = np.zeros((4, 4))
    assert psnr(x, x + 0.1, data_range=1.0) == pytest.approx(20.0)
    assert psnr(a, a) == math.inf


def test_psnr_matches_skimage_rgb_and_y():
    a, b = _pair()
    assert psnr(a, b, data_range=255) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), rel=1e-12)
    ya, yb = rgb2ycbcr(a)[..., 0], rgb2ycbcr(b)[..., 0]
    assert psnr(a, b, data_range=255, y_channel=True) == pytest.approx(peak_signal_noise_ratio(ya, yb, data_range=255), rel=1e-12)


def test_ssim_matches_skimage_rgb_y_and_gray():
    a, b = _pair(1)
    assert ssim(a, b, data_range=255) == pytest.approx(_sk_ssim(a, b, channel_axis=2), rel=1e-10)
    ya, yb = rgb2ycbcr(a)[..., 0], rgb2ycbcr(b)[..., 0]
    assert ssim(a, b, data_range=255, y_channel=True) == pytest.approx(_sk_ssim(ya, yb), rel=1e-10)
    assert ssim(a[..., 0], b[..., 0], data_range=255) == pytest.approx(_sk_ssim(a[..., 0], b[..., 0]), rel=1e-10)


def test_ssim_hand_values():
    a = np.full((16, 16), 100.0)
    assert ssim(a, a + 10, data_range=255) == pytest.approx(0.9954764, abs=1e-7)
    assert ssim(np.zeros((16, 16)), np.full((16, 16), 255.0), data_range=255) == pytest.approx(
        (0 + 6.5025) / (255 ** 2 + 6.5025), rel=1e-12)
    r = np.random.default_rng(2).random((16, 16))
    assert ssim(r, r, data_range=1.0) == pytest.approx(1.0)


def test_gaussian_window_weights():
    g = gaussian_window(11, 1.5)
    assert g.sum().item() == pytest.approx(1.0)
    assert g[5].item() == pytest.approx(0.266012, abs=1e-6)
    assert g[0].item() == pytest.approx(0.001028, abs=1e-6)


def test_torch_batches_match_numpy_per_image():
    a0, b0 = _pair(3, (16, 16, 3))
    a1, b1 = _pair(4, (16, 16, 3))
    ta = torch.from_numpy(np.stack([a0, a1])).permute(0, 3, 1, 2).double()
    tb = torch.from_numpy(np.stack([b0, b1])).permute(0, 3, 1, 2).double()
    p = psnr_per_image(ta, tb, data_range=255)
    s = ssim_per_image(ta, tb, data_range=255)
    assert p.shape == s.shape == (2,)
    assert p[1].item() == pytest.approx(psnr(a1, b1, data_range=255), rel=1e-12)
    assert s[0].item() == pytest.approx(ssim(a0, b0, data_range=255), rel=1e-12)
    assert ssim(ta, tb, data_range=255) == pytest.approx(s.mean().item())


def test_y_conversion_range_and_quantize():
    white = torch.full((1, 3, 2, 2), 255.0)
    assert rgb_to_y(white, 255.0).flatten()[0].item() == pytest.approx(235.0, abs=1e-3)
    assert rgb_to_y(torch.zeros(1, 3, 2, 2), 255.0).flatten()[0].item() == pytest.approx(16.0)
    v = torch.arange(256, dtype=torch.float32).view(1, 1, 16, 16)
    assert torch.equal(quantize(v / 127.5 - 1).long(), v.long())
    assert quantize(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]


def test_errors_on_bad_input():
    with pytest.raises(ValueError):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ValueError):
        psnr(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ValueError):
        psnr(np.zeros((8, 8)), np.ones((8, 8)), y_channel=True)


def test_empty_images_are_a_value_error():
    empty = np.zeros((0, 4, 3), np.uint8)
    with pytest.raises(ValueError, match=r"empty images: shape"):
        psnr(empty, empty)
    with pytest.raises(ValueError, match=r"empty images: shape"):
        ssim(empty, empty)
