"""Paired transforms: identical crop/flip on A and B, preset output sizes, eval determinism."""
import numpy as np
import pytest
import torch

from i2i.config import DataConfig
from i2i.data.transforms import build_transform
from i2i.errors import DataError


def _cfg(**kw):
    base = dict(preprocess="resize_and_crop", load_size=40, crop_size=32)
    base.update(kw)
    return DataConfig(**base)


def _coords(h, w):
    """An image whose pixels encode their own position (r = row, g = column)."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.arange(h)[:, None]
    img[..., 1] = np.arange(w)[None, :]
    img[..., 2] = 77
    return img


@pytest.mark.parametrize("preprocess", ["crop", "resize_and_crop", "scale_width"])
def test_pair_stays_aligned_and_flips_happen(preprocess):
    torch.manual_seed(0)
    t = build_transform(_cfg(preprocess=preprocess, load_size=48, crop_size=32), train=True)
    a = _coords(48, 48) if preprocess != "scale_width" else _coords(60, 48)
    b = 255 - a
    flipped = kept = 0
    origins = set()
    for _ in range(60):
        ta, tb = t(a, b)
        assert ta.shape == tb.shape == (32, 32, 3)
        np.testing.assert_array_equal(tb.astype(int), 255 - ta.astype(int))
        cols = ta[0, :, 1].astype(int)
        step = np.diff(cols)
        flipped += bool((step < 0).all())
        kept += bool((step > 0).all())
        origins.add((int(ta[0, 0, 0]), int(ta[0, :, 1].min())))
    assert flipped > 5 and kept > 5 and flipped + kept == 60
    assert len(origins) > 5  # the crop position varies


def test_grayscale_a_with_rgb_b_share_the_crop():
    torch.manual_seed(1)
    t = build_transform(_cfg(preprocess="crop", crop_size=16), train=True)
    a = _coords(24, 30)
    for _ in range(20):
        ta, tb = t(a[:, :, 1:2], a)
        assert ta.shape == (16, 16, 1) and tb.shape == (16, 16, 3)
        np.testing.assert_array_equal(ta[:, :, 0], tb[:, :, 1])


@pytest.mark.parametrize("preprocess,in_hw,out_hw", [
    ("resize_and_crop", (50, 70), (32, 32)),
    ("crop", (50, 70), (32, 32)),
    ("scale_width", (30, 80), (32, 32)),  # width 40 -> height max(15, 32) = 32, crop 32x32
    ("scale_width", (100, 50), (32, 32)),
    ("none", (51, 69), (52, 68)),  # nearest multiples of 4
    ("none", (49, 67), (48, 68)),
])
def test_preset_output_sizes(preprocess, in_hw, out_hw):
    img = np.random.default_rng(0).integers(0, 256, (*in_hw, 3), dtype=np.uint8)
    for train in (True, False):
        a, b = build_transform(_cfg(preprocess=preprocess), train)(img)
        assert a.shape == (*out_hw, 3) and b is None


def test_scale_width_keeps_aspect_before_crop():
    t = build_transform(_cfg(preprocess="scale_width", load_size=40, crop_size=40), train=False)
    a = _coords(160, 80)  # -> 80 x 40 after scaling, centre crop rows 20..59
    out, _ = t(a)
    assert out.shape == (40, 40, 3)
    assert abs(int(out[0, 0, 0]) - 40) <= 2  # row 20 of the scaled image = original row 40


def test_eval_is_deterministic_centre_crop_without_flip():
    t = build_transform(_cfg(preprocess="crop", crop_size=10), train=False)
    a = _coords(20, 30)
    outs = [t(a, 255 - a) for _ in range(5)]
    for ta, tb in outs:
        np.testing.assert_array_equal(ta, outs[0][0])
        np.testing.assert_array_equal(tb, 255 - ta)
    assert outs[0][0][0, 0, :2].tolist() == [5, 10]  # (20-10)//2, (30-10)//2


def test_no_flip_never_flips():
    t = build_transform(_cfg(preprocess="crop", crop_size=16, no_flip=True), train=True)
    a = _coords(20, 40)
    for _ in range(30):
        ta, _ = t(a)
        assert (np.diff(ta[0, :, 1].astype(int)) == 1).all()


def test_seeded_draws_repeat():
    t = build_transform(_cfg(preprocess="crop", crop_size=8), train=True)
    a = _coords(30, 30)
    torch.manual_seed(5)
    first = [t(a)[0] for _ in range(5)]
    torch.manual_seed(5)
    second = [t(a)[0] for _ in range(5)]
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)


def test_b_of_other_size_is_resized_to_a():
    t = build_transform(_cfg(preprocess="none"), train=False)
    a, b = t(np.zeros((16, 20, 3), np.uint8), np.zeros((32, 40, 3), np.uint8))
    assert a.shape == b.shape == (16, 20, 3)


def test_preprocess_none_rounds_sizes_to_the_size_multiple():
    t = build_transform(_cfg(preprocess="none", size_multiple=16), train=False)
    a, b = t(np.zeros((23, 41, 3), np.uint8), np.zeros((23, 41, 3), np.uint8))
    assert a.shape == b.shape == (16, 48, 3)  # 23 / 16 = 1.4 -> 16; 41 / 16 = 2.6 -> 48
    assert t(np.zeros((5, 90, 3), np.uint8))[0].shape == (16, 96, 3)  # never below one multiple
    assert build_transform(_cfg(preprocess="none"), train=False)(np.zeros((23, 41, 3), np.uint8))[0].shape == (24, 40, 3)


def test_image_smaller_than_crop_is_an_error():
    t = build_transform(_cfg(preprocess="crop", crop_size=32), train=True)
    with pytest.raises(DataError, match="smaller than crop_size 32"):
        t(np.zeros((20, 40, 3), np.uint8))
