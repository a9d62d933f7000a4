"""Segmentation accuracy: palette files, nearest-colour mapping, hand-made 4x4 scores."""

import numpy as np
import pytest
import torch

from i2i.errors import DataError
from i2i.metrics import colors_to_labels, confusion_matrix, read_palette, segmentation_scores



def test_hand_made_4x4():
    gt = np.array([[0, 0, 1, 1],
                   [0, 0, 1, 1],
                   [2, 2, 2, 2],
                   [2, 2, 2, 2]])
    pred = np.array([[0, 1, 1, 1],
                     [0, 0, 1, 2],
                     [2, 2, 2, 2],
                     [2, 2, 0, 0]])
    # class 0: gt 4, tp 3, pred 5 -> acc 3/4, IoU 3/6; class 1: gt 4, tp 3, pred 4 -> 3/4, 3/5;
    # class 2: gt 8, tp 6, pred 7 -> 6/8, 6/9
    s = segmentation_scores(pred, gt, num_classes=3)
    assert s["pixel_acc"] == pytest.approx(12 / 16)
    assert s["class_acc"] == pytest.approx((3 / 4 + 3 / 4 + 6 / 8) / 3)
    assert s["miou"] == pytest.approx((3 / 6 + 3 / 5 + 6 / 9) / 3)


def test_absent_classes_and_ignored_pixels():
    gt = np.array([[1, 1], [2, 255]])
    pred = np.array([[1, 3], [2, 2]])
    s = segmentation_scores(pred, gt, num_classes=4, ignore_index=255)
    # class 0 never appears: dropped; class 3 predicted but absent: IoU 0, no accuracy term
    assert s["pixel_acc"] == pytest.approx(2 / 3)
    assert s["class_acc"] == pytest.approx((1 / 2 + 1) / 2)
    assert s["miou"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    hist = confusion_matrix(pred, gt, num_classes=4, ignore_index=255)
    assert hist.sum() == 3 and hist[1, 3] == 1
    with pytest.raises(ValueError):
        segmentation_scores(np.array([[5]]), np.array([[1]]), num_classes=4)


def test_read_palette(tmp_path):
    p = tmp_path / "pal.txt"
    p.write_text("# comment\n2 0 0 255  # blue\n1 255 0 0\n\n")
    assert read_palette(p) == {1: (255, 0, 0), 2: (0, 0, 255)}
    assert list(read_palette(p)) == [1, 2]
    p.write_text("1 255 0\n")
    with pytest.raises(DataError, match=r"pal.txt:1"):
        read_palette(p)
    with pytest.raises(DataError):
        read_palette(tmp_path / "missing.txt")


def test_palette_in_the_facades_format(tmp_path):
    # the CMP facades palette file: a header comment, "index R G B" lines, trailing notes
    p = tmp_path / "palette.txt"
    p.write_text("# class index -> RGB colour\n1 0 0 170\n2 0 0 255\n12 170 0 0\n# 1 background 1\n")
    pal = read_palette(p)
    assert list(pal) == [1, 2, 12]
    assert pal[1] == (0, 0, 170) and pal[12] == (170, 0, 0)


def test_colors_to_labels_nearest_colour_numpy_and_torch():
    palette = {1: (255, 0, 0), 2: (0, 255, 0), 5: (0, 0, 255)}
    img = np.array([[[250, 10, 5], [20, 200, 30]],
                    [[0, 0, 255], [100, 90, 200]]], np.uint8)
    expected = np.array([[1, 2], [5, 5]])
    np.testing.assert_array_equal(colors_to_labels(img, palette), expected)
    t = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    assert torch.equal(colors_to_labels(t, palette), torch.from_numpy(expected)[None])
    # a K x 3 array palette uses row numbers as indices; ties go to the lower index
    arr = np.array([[0, 0, 0], [2, 2, 2]])
    np.testing.assert_array_equal(colors_to_labels(np.ones((1, 1, 3)), arr), [[0]])
