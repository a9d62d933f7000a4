"""Image reading/writing conversions and tensor round trips (pillow is used to write EXIF test files)."""

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from i2i.data.io import (IMAGE_EXTENSIONS, image_to_tensor, list_images, read_image, tensor_to_image,
                         write_image)
from i2i.errors import DataError


def _rgb(h=6, w=10, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_list_images_filters_sorts_and_recurses(tmp_path):
    for rel in ["b.PNG", "a.jpg", "sub/c.webp", "notes.txt", ".hidden/d.png", "e.TIFF"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    got = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert got == ["a.jpg", "b.PNG", "e.TIFF", "sub/c.webp"]
    assert [p.name for p in list_images(tmp_path, recursive=False)] == ["a.jpg", "b.PNG", "e.TIFF"]
    assert {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"} == set(IMAGE_EXTENSIONS)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif"])
def test_write_read_roundtrip_rgb_order(tmp_path, ext):
    arr = _rgb()
    arr[0, 0] = (255, 0, 0)  # pure red stays in channel 0
    write_image(tmp_path / f"x{ext}", arr)
    back = read_image(tmp_path / f"x{ext}")
    np.testing.assert_array_equal(back, arr)
    assert back[0, 0].tolist() == [255, 0, 0]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_grayscale_conversions(tmp_path):
    gray = np.arange(60, dtype=np.uint8).reshape(6, 10)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    three = read_image(tmp_path / "g.png", channels=3)
    assert three.shape == (6, 10, 3)
    for c in range(3):
        np.testing.assert_array_equal(three[:, :, c], gray)
    one = read_image(tmp_path / "g.png", channels=1)
    assert one.shape == (6, 10, 1) and one.dtype == np.uint8
    np.testing.assert_array_equal(one[:, :, 0], gray)
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 200  # luma = 0.299 * 200
    write_image(tmp_path / "c.png", rgb)
    assert abs(int(read_image(tmp_path / "c.png", channels=1)[0, 0, 0]) - round(0.299 * 200)) <= 1


def test_rgba_is_composited_on_white(tmp_path):
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 2] = 200  # red (BGR order on disk)
    bgra[..., 3] = [[255, 0], [128, 64]]
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    out = read_image(tmp_path / "a.png")
    alpha = bgra[..., 3].astype(float) / 255
    expected_r = np.round(200 * alpha + 255 * (1 - alpha))
    expected_gb = np.round(255 * (1 - alpha))
    np.testing.assert_allclose(out[..., 0], expected_r, atol=1)
    np.testing.assert_allclose(out[..., 1], expected_gb, atol=1)
    np.testing.assert_allclose(out[..., 2], expected_gb, atol=1)
    assert out[0, 1].tolist() == [255, 255, 255]  # fully transparent -> white


def test_16bit_png_scaled_to_8bit(tmp_path):
    v = np.array([[0, 257, 65535, 32896]], np.uint16)
    img16 = np.dstack([v, v // 2, v])  # BGR on disk
    cv2.imwrite(str(tmp_path / "d.png"), img16)
    out = read_image(tmp_path / "d.png")
    assert out.dtype == np.uint8
    assert out[0, :, 0].tolist() == [0, 1, 255, 128]
    assert out[0, :, 1].tolist() == [round(x // 2 * 255 / 65535) for x in v[0].tolist()]


@pytest.mark.smoke
@pytest.mark.parametrize("fmt,ext", [("JPEG", ".jpg"), ("PNG", ".png")])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied(tmp_path, fmt, ext, orientation):
    arr = np.zeros((16, 24, 3), np.uint8)
    arr[:8, :8] = (255, 0, 0)  # red top-left block, green bottom-right: orientation-revealing
    arr[8:, 16:] = (0, 255, 0)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{ext}"
    Image.fromarray(arr).save(path, fmt, exif=exif.tobytes(), quality=100)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    out = read_image(path)
    assert out.shape == expected.shape == ((16, 24, 3) if orientation <= 4 else (24, 16, 3))
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 2


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 30])
def test_corrupt_file_raises_one_line_error_naming_it(tmp_path, content):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_image(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg


def test_missing_file_raises(tmp_path):
    with pytest.raises(DataError, match="nope.png"):
        read_image(tmp_path / "nope.png")


def test_write_unknown_extension(tmp_path):
    with pytest.raises(DataError, match="x.xyz"):
        write_image(tmp_path / "x.xyz", _rgb())


def test_tensor_conversions():
    arr = np.array([[[0, 255, 128]]], np.uint8)
    t = image_to_tensor(arr)
    assert t.shape == (3, 1, 1) and t.dtype == torch.float32
    torch.testing.assert_close(t[:, 0, 0], torch.tensor([-1.0, 1.0, 128 / 127.5 - 1]))
    arr = _rgb(5, 7)
    np.testing.assert_array_equal(tensor_to_image(image_to_tensor(arr)), arr)
    gray = image_to_tensor(arr[:, :, 0])
    assert gray.shape == (1, 5, 7)
    clamped = tensor_to_image(torch.tensor([[[-3.0, 0.0, 2.0]]]))
    assert clamped.shape == (1, 3, 1) and clamped[0, :, 0].tolist() == [0, 128, 255]
