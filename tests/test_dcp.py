"""Dark channel prior: its pieces against hand-computed values, recovery of synthetic haze, --method dcp."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from i2i.cli.translate import main as translate_main
from i2i.data.haze import add_haze, transmission
from i2i.data.io import read_image, write_image
from i2i.dehaze import DarkChannelPrior, dark_channel, estimate_airlight, guided_filter
from i2i.dehaze.dcp import box_mean

A_TRUE = np.array([0.8, 0.85, 0.9])
SKY = 8


def _psnr(a, b):
    return 10 * math.log10(1 / float(((a - b) ** 2).mean()))


def _scene(size=64, seed=0):
    """A sky of the airlight's colour over the top ``SKY`` rows, below it colour blocks that obey the
    prior (every pixel has a zero channel), depth growing towards the top, and the hazy image."""
    rng = np.random.default_rng(seed)
    blocks = rng.uniform(0.2, 1.0, (size // 4, size // 4, 3))
    blocks[np.arange(size // 4)[:, None], np.arange(size // 4)[None, :], rng.integers(0, 3, (size // 4,) * 2)] = 0
    clear = np.kron(blocks, np.ones((4, 4, 1)))
    clear[:SKY] = A_TRUE
    depth = np.repeat(np.r_[np.full(SKY, 20.0), np.linspace(1.5, 0.1, size - SKY)][:, None], size, axis=1)
    t = transmission(depth, 1.0)  # sky 0, scene 0.22 .. 0.90
    hazy = add_haze(clear, t, A_TRUE)
    to_t = lambda a: torch.from_numpy(a.transpose(2, 0, 1)).float()[None] * 2 - 1  # noqa: E731
    return to_t(clear), to_t(hazy), torch.from_numpy(t).float()


def test_dark_channel_is_a_clipped_min_filter_of_the_channel_minimum():
    img = torch.ones(1, 3, 5, 5)
    img[0, 1, 0, 0] = 0.2  # one dark value, green channel, top-left corner
    img[0, 2, 4, 4] = 0.5
    dark = dark_channel(img, patch=3)
    assert dark.shape == (1, 1, 5, 5)
    expected = torch.ones(5, 5)
    expected[:2, :2] = 0.2  # corner window clipped to the image
    expected[3:, 3:] = 0.5
    assert torch.equal(dark[0, 0], expected)
    assert torch.equal(dark_channel(img, patch=1)[0, 0], img.amin(dim=1)[0])
    with pytest.raises(ValueError, match="odd"):
        dark_channel(img, patch=4)


def test_airlight_is_the_brightest_of_the_haziest_pixels_not_the_brightest_pixel():
    img = torch.zeros(1, 3, 10, 10)
    img[0, :2] = 1.0  # bright yellow everywhere: sum 2, dark channel 0
    img[0, :, 0, 0] = torch.tensor([0.6, 0.65, 0.7])  # haze: sum 1.95, dark 0.6
    img[0, :, 0, 1] = torch.tensor([0.62, 0.62, 0.62])  # haze too, dark 0.62, dimmer
    dark = dark_channel(img, patch=1)
    a = estimate_airlight(img, dark, top=0.02)  # the 2 pixels of largest dark channel
    assert torch.allclose(a, torch.tensor([[0.6, 0.65, 0.7]]))
    a = estimate_airlight(img, dark, top=0.01)  # only the single darkest-channel maximum
    assert torch.allclose(a, torch.tensor([[0.62, 0.62, 0.62]]))


def test_box_mean_matches_average_pooling_without_padding():
    x = torch.rand(2, 1, 9, 7, dtype=torch.float64)
    ref = F.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)
    assert torch.allclose(box_mean(x, 2), ref)


def test_guided_filter_keeps_edges_of_its_guide_and_smooths_noise():
    guide = torch.zeros(1, 1, 32, 32)
    guide[..., 16:] = 1.0  # a vertical edge
    assert torch.allclose(guided_filter(guide, guide, radius=4, eps=1e-6), guide, atol=1e-4)
    noisy = guide + 0.1 * torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    out = guided_filter(guide, noisy, radius=4, eps=1e-3)
    assert float((out - guide).abs().mean()) < 0.5 * float((noisy - guide).abs().mean())
    assert torch.allclose(guided_filter(guide, torch.full_like(guide, 0.3), 4, 1e-3), torch.full_like(guide, 0.3))


def test_recovers_synthetic_haze_with_known_transmission_and_airlight():
    clear, hazy, t_true = _scene()
    dcp = DarkChannelPrior(patch=7, radius=8)
    res = dcp.estimate(hazy)
    assert np.allclose(res.airlight[0].numpy(), A_TRUE, atol=0.01)  # the sky is the airlight
    dehazed = dcp(hazy)
    assert dehazed.shape == hazy.shape and dehazed.min() >= -1 and dehazed.max() <= 1
    c01 = (clear + 1) / 2
    gain = _psnr((dehazed + 1) / 2, c01) - _psnr((hazy + 1) / 2, c01)
    assert gain > 8.0  # about 12 dB here
    # the estimated transmission follows the true one (omega keeps a little haze: t is slightly higher)
    rows = res.transmission[0, 0, SKY:].mean(dim=1)
    assert float((rows - t_true[SKY:].mean(dim=1)).abs().mean()) < 0.08


def test_haze_free_image_is_left_nearly_unchanged():
    clear, _, _ = _scene(seed=1)
    out = DarkChannelPrior(patch=7, radius=8)(clear)
    assert _psnr((out + 1) / 2, (clear + 1) / 2) > 30


def test_numpy_single_image_and_batches():
    _, hazy, _ = _scene(size=32)
    dcp = DarkChannelPrior(patch=5, radius=4)
    array = ((hazy[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    out = dcp(array)
    assert out.dtype == np.uint8 and out.shape == array.shape
    assert dcp(hazy[0]).shape == hazy[0].shape
    batch = torch.cat([hazy, torch.flip(hazy, dims=[2])])
    assert torch.allclose(dcp(batch)[:1], dcp(hazy), atol=1e-6)  # per-image statistics
    with pytest.raises(ValueError, match="omega"):
        DarkChannelPrior(omega=0)


def test_translate_cli_method_dcp(tmp_path, capsys):
    _, hazy, _ = _scene()
    src = tmp_path / "hazy"
    image = ((hazy[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    write_image(src / "1400_1.png", image)
    write_image(src / "sub" / "1400_2.jpg", image)
    assert translate_main(["--method", "dcp", "--input", str(src), "--output", str(tmp_path / "out")]) == 0
    out = read_image(tmp_path / "out" / "1400_1.png")
    expected = DarkChannelPrior()(image)
    assert np.abs(out.astype(int) - expected.astype(int)).max() == 0
    assert (tmp_path / "out" / "sub" / "1400_2.jpg").is_file()
    capsys.readouterr()
    assert translate_main(["--input", str(src), "--output", str(tmp_path / "o2")]) == 2
    assert "--checkpoint is required (or --method dcp)" in capsys.readouterr().err
    assert translate_main(["--method", "dcp", "--checkpoint", "x.pt", "--input", str(src),
                           "--output", str(tmp_path / "o2")]) == 2
    assert "--method dcp takes no --checkpoint" in capsys.readouterr().err
