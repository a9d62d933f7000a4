"""Bounded memory: sizes come from the header, images over the pixel limit are never decoded,
JPEGs that will be shrunk are decoded reduced, large images are translated in tiles."""
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from i2i.cli.translate import main as translate_main
from i2i.data.io import image_size, pixel_limit, read_image, read_image_sized, write_image
from i2i.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A grayscale PNG of zeros: tiny on disk, ``width * height`` bytes once decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    z, row, parts = zlib.compressobj(9), b"\0" * (width + 1), []
    for _ in range(height):
        parts.append(z.compress(row))
    parts.append(z.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return png_bomb(tmp_path_factory.mktemp("bomb") / "big.png", 12000, 12000)


def peak_growth_mb(code: str, env: dict | None = None) -> float:
    """Peak resident memory a snippet adds, in MB, measured in a fresh process after its imports."""
    script = (
        "import resource, sys\n"
        "from i2i.data.io import read_image, read_image_sized\n"
        "import i2i.cli.translate, i2i.dehaze\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"{code}\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    assert run.returncode == 0, run.stderr[-2000:]
    return float(run.stdout.strip().splitlines()[-1])


def test_an_image_over_the_limit_is_refused_from_its_header(bomb):
    assert bomb.stat().st_size < 1_000_000
    assert image_size(bomb, max_pixels=200_000_000) == (12000, 12000)
    with pytest.raises(DataError, match=r"12000x12000 px \(144.0 Mpx\) is over the pixel limit of 67.1 Mpx"):
        read_image(bomb)
    code = ("from i2i.errors import DataError\n"
            f"try:\n    read_image({str(bomb)!r})\nexcept DataError:\n    pass\nelse:\n    sys.exit(3)")
    assert peak_growth_mb(code) < 40  # decoding would take 144 MB (432 MB in RGB)


def test_the_limit_comes_from_the_argument_the_environment_or_the_default(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    write_image(path, np.zeros((40, 50, 3), np.uint8))
    monkeypatch.delenv("I2I_MAX_PIXELS", raising=False)
    assert pixel_limit() == 1 << 26 and read_image(path).shape == (40, 50, 3)
    with pytest.raises(DataError, match="50x40 px"):
        read_image(path, max_pixels=1999)
    monkeypatch.setenv("I2I_MAX_PIXELS", "1999")
    with pytest.raises(DataError, match="over the pixel limit"):
        read_image(path)
    assert read_image(path, max_pixels=2000).shape == (40, 50, 3)  # the argument wins
    monkeypatch.setenv("I2I_MAX_PIXELS", "lots")
    with pytest.raises(ConfigError, match="I2I_MAX_PIXELS: expected a positive number of pixels, got 'lots'"):
        read_image(path)


@pytest.mark.parametrize("orientation", [1, 6])
def test_a_jpeg_that_will_be_shrunk_is_decoded_reduced(tmp_path, orientation):
    yy, xx = np.mgrid[0:1200, 0:1600]
    arr = np.dstack([(xx // 7) % 256, (yy // 5) % 256, (xx + yy) // 12 % 256]).astype(np.uint8)
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(tmp_path / "p.jpg", exif=exif, quality=95)
    full = read_image(tmp_path / "p.jpg")
    small, size = read_image_sized(tmp_path / "p.jpg", min_size=(256, 256))
    assert size == full.shape[:2] == ((1200, 1600) if orientation == 1 else (1600, 1200))
    assert small.shape[:2] == (full.shape[0] // 4, full.shape[1] // 4)  # 1/8 would leave less than 256
    expected = cv2.resize(full, small.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - expected.astype(int)).mean() < 3
    # PNG has no reduced decoding: full size
    write_image(tmp_path / "p.png", arr)
    assert read_image_sized(tmp_path / "p.png", min_size=(256, 256))[0].shape == (1200, 1600, 3)


def test_datasets_apply_the_limit_and_decode_reduced(tmp_path, monkeypatch):
    import i2i.data.io as io
    from i2i.config import DataConfig
    from i2i.data import build_dataset

    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(tmp_path / "train" / f"{i}.jpg", rng.integers(0, 255, (300, 1200, 3), dtype=np.uint8))
    decoded = []
    original = io._decode

    def spy(buf, scale=1):
        img, orientation = original(buf, scale)
        decoded.append(img.shape[:2])
        return img, orientation

    monkeypatch.setattr(io, "_decode", spy)
    cfg = DataConfig(root=str(tmp_path), load_size=64, crop_size=64, num_workers=0)
    item = build_dataset(cfg)[0]
    assert item["A"].shape == (3, 64, 64) and decoded == [(75, 300)]  # 1/4: each half still 150 x 75
    with pytest.raises(DataError, match="over the pixel limit"):
        build_dataset(DataConfig(root=str(tmp_path), load_size=64, crop_size=64, max_pixels=100_000))[0]


def test_translate_skips_what_is_over_the_limit(tmp_path, bomb, capsys):
    src = tmp_path / "in"
    src.mkdir()
    os.symlink(bomb, src / "big.png")
    write_image(src / "ok.png", np.zeros((20, 30, 3), np.uint8))
    assert translate_main(["--method", "dcp", "--input", str(src), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "skipped 1 unreadable file(s)" in err and "is over the pixel limit" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".i2i-translations", "ok.png"]
    assert translate_main(["--method", "dcp", "--input", str(src / "ok.png"), "--output", str(tmp_path / "o2"),
                           "--max-pixels", "500"]) == 1
    assert "30x20 px" in capsys.readouterr().err


def test_translate_resize_decodes_a_large_jpeg_reduced(tmp_path):
    big = tmp_path / "big.jpg"
    yy, xx = np.mgrid[0:6000, 0:8000].astype(np.uint16)
    ok, data = cv2.imencode(".jpg", np.dstack([xx % 256, yy % 256, (xx ^ yy) % 256]).astype(np.uint8))
    big.write_bytes(data.tobytes())
    del yy, xx, data
    code = ("from i2i.data.io import read_image_sized\n"
            f"a, full = read_image_sized({str(big)!r}, min_size=(256, 256))\n"
            "assert a.shape == (750, 1000, 3) and full == (6000, 8000), (a.shape, full)")
    assert peak_growth_mb(code) < 40  # 144 MB at full size


def test_large_images_are_translated_in_tiles(tmp_path, monkeypatch, capsys):
    from i2i.cli.train import main as train_main
    from i2i.translator import Translator
    from reliability_helpers import tiny_config

    assert train_main(["--config", str(tiny_config(tmp_path)), "--set", "train.max_steps=1"]) == 0
    write_image(tmp_path / "in" / "wide.png", np.random.default_rng(0).integers(0, 255, (70, 150, 3), np.uint8))
    write_image(tmp_path / "in" / "small.png", np.zeros((32, 32, 3), np.uint8))
    seen = []
    original = Translator.translate_tensor

    def spy(self, x, direction="AtoB"):
        seen.append(tuple(x.shape[-2:]))
        return original(self, x, direction)

    monkeypatch.setattr(Translator, "translate_tensor", spy)
    base = ["--checkpoint", str(tmp_path / "runs" / "tiny"), "--input", str(tmp_path / "in")]
    assert translate_main(base + ["--output", str(tmp_path / "out"), "--tile", "70", "--tile-overlap", "10",
                                  "--tile-above", "0"]) == 0
    # tile 70 -> 96 and overlap 10 -> 32 (the unet's size multiple is 32); 70 x 150 padded to 96 x 160: 2 windows
    assert sorted(seen) == [(32, 32), (96, 96), (96, 96)]
    assert read_image(tmp_path / "out" / "wide.png").shape == (70, 150, 3)
    seen.clear()
    assert translate_main(base + ["--output", str(tmp_path / "o2"), "--tile", "0"]) == 0
    assert sorted(seen) == [(32, 32), (70, 150)]  # whole
    seen.clear()
    assert translate_main(base + ["--output", str(tmp_path / "o4"), "--tile", "70", "--tile-overlap", "10", "--tile-above", "10500"]) == 0
    assert sorted(seen) == [(32, 32), (70, 150)]  # 70 x 150 = 10500 pixels: not above, whole
    seen.clear()
    assert translate_main(base + ["--output", str(tmp_path / "o5"), "--tile", "70", "--tile-overlap", "10", "--tile-above", "10499"]) == 0
    assert sorted(seen) == [(32, 32), (96, 96), (96, 96)]
    capsys.readouterr()
    assert translate_main(base + ["--output", str(tmp_path / "o3"), "--tile", "64", "--tile-overlap", "40"]) == 2
    assert "--tile-overlap 40: must be less than half of --tile 64" in capsys.readouterr().err


def test_eval_label_maps_apply_the_limit(tmp_path, monkeypatch, bomb):
    from i2i.cli.eval import load_labels

    write_image(tmp_path / "l.png", np.zeros((30, 40, 1), np.uint8))
    assert tuple(load_labels(tmp_path / "l.png").shape) == (30, 40)
    with pytest.raises(DataError, match="is over the pixel limit"):
        load_labels(bomb)
    monkeypatch.setenv("I2I_MAX_PIXELS", "1000")
    with pytest.raises(DataError, match="40x30 px"):
        load_labels(tmp_path / "l.png")
