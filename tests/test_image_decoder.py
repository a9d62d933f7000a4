"""One reader decides what an image file is: Pillow opens only the formats i2i reads, checks a PNG's chunks
before OpenCV decodes its pixels, orients every file the same way, and decodes under the pixel limit."""
import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

import i2i.data.io as image_io
from i2i.data.io import image_header, read_image, read_image_sized, write_image
from i2i.errors import DataError


def _marked(h=16, w=24):
    """Red top-left block, green bottom-right: any turn or flip shows."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:8, :8] = (255, 0, 0)
    arr[h - 8:, w - 8:] = (0, 255, 0)
    return arr


def _chunks(png: bytes) -> list[bytes]:
    pos, out = 8, []
    while pos < len(png):
        n = int.from_bytes(png[pos:pos + 4], "big")
        out.append(png[pos:pos + 12 + n])
        pos += 12 + n
    return out


def _chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


@pytest.mark.parametrize("fmt", ["TGA", "PPM"])
def test_a_file_is_read_only_as_one_of_the_formats_i2i_reads(tmp_path, fmt):
    path = tmp_path / "x.png"  # another format under an image name: Pillow would open it
    Image.fromarray(_marked()).save(path, fmt)
    assert Image.open(path).format == fmt
    for call in (read_image, image_header):
        with pytest.raises(DataError, match=f"cannot read image {path}: not a valid or supported image file"):
            call(path)


@pytest.mark.skipif(not hasattr(cv2, "imdecodeWithMetadata"), reason="OpenCV < 4.12 does not report an eXIf chunk")
def test_a_png_is_turned_by_its_exif_before_or_after_the_pixels(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(_marked()).save(buf, "PNG", exif=exif.tobytes())
    chunks = _chunks(buf.getvalue())
    assert [c[4:8] for c in chunks] == [b"IHDR", b"eXIf", b"IDAT", b"IEND"]
    (tmp_path / "before.png").write_bytes(buf.getvalue())
    (tmp_path / "after.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join([chunks[0], chunks[2], chunks[1], chunks[3]]))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "before.png")).convert("RGB"))
    for name in ("before.png", "after.png"):
        img, full = read_image_sized(tmp_path / name)
        assert full == (24, 16) and img.shape == (24, 16, 3)
        np.testing.assert_array_equal(img, expected)
    # the header alone knows of the chunk before the pixels only
    assert image_header(tmp_path / "before.png") == (24, 16, "PNG", 6)
    assert image_header(tmp_path / "after.png") == (16, 24, "PNG", 1)


def test_a_png_with_a_damaged_chunk_after_the_pixels_is_refused(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(_marked()).save(buf, "PNG")
    chunks = _chunks(buf.getvalue())
    text = _chunk(b"tEXt", b"Comment\x00hello", crc=0)  # a wrong checksum
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(chunks[:-1] + [text, chunks[-1]]))
    with pytest.raises(DataError, match=r"bad.png: damaged or cut short \(a PNG chunk is damaged"):
        read_image(tmp_path / "bad.png")
    (tmp_path / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(chunks[:-1] + [_chunk(b"tEXt", b"Comment\x00hello"),
                                                                                    chunks[-1]]))
    np.testing.assert_array_equal(read_image(tmp_path / "ok.png"), _marked())


def test_a_jpeg_cut_short_is_refused_in_one_line(tmp_path):
    write_image(tmp_path / "a.jpg", np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8))
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "a.jpg").write_bytes(data[: len(data) * 2 // 3])  # within the pixels: the header is whole
    assert image_header(tmp_path / "a.jpg")[:2] == (256, 256)
    with pytest.raises(DataError) as info:
        read_image(tmp_path / "a.jpg")
    assert str(info.value).startswith(f"cannot read image {tmp_path / 'a.jpg'}: damaged or cut short (")
    assert "\n" not in str(info.value)


def test_an_xmp_orientation_turns_a_jpeg_as_pillow_reads_it(tmp_path):
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
    path = tmp_path / "x.jpg"
    Image.fromarray(_marked()).save(path, xmp=xmp, quality=100)
    if Image.open(path).getexif().get(0x0112) != 6:
        pytest.skip("this Pillow does not read the orientation from XMP")
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    out = read_image(path)
    assert out.shape == expected.shape == (24, 16, 3)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 2


def test_16_bit_colour_png_is_exact_and_tiff_within_one(tmp_path):
    v = np.arange(0, 65536, 97, dtype=np.uint16)[None]
    bgr = np.dstack([v, v[:, ::-1], v])
    expected = np.round(v[0].astype(np.float64) * 255 / 65535)
    for ext, tolerance in ((".png", 0), (".tif", 1)):  # Pillow reads a 16-bit colour TIFF at its high byte
        cv2.imwrite(str(tmp_path / f"d{ext}"), bgr)
        out = read_image(tmp_path / f"d{ext}")
        assert out.dtype == np.uint8 and out.shape == (1, v.size, 3)
        assert np.abs(out[0, :, 0].astype(int) - expected).max() <= tolerance
        assert np.abs(out[0, :, 1].astype(int) - expected[::-1]).max() <= tolerance


def test_animated_and_palette_files_give_their_first_frame_on_white(tmp_path):
    frames = [Image.new("RGB", (8, 6), c) for c in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "a.webp", save_all=True, append_images=frames[1:], lossless=True)
    for name in ("a.gif", "a.webp"):
        assert read_image(tmp_path / name)[0, 0].tolist() == [255, 0, 0]
    pal = Image.new("P", (4, 2))
    pal.putpalette([0, 0, 255, 10, 20, 30])
    pal.putpixel((1, 0), 1)
    pal.save(tmp_path / "p.gif", transparency=1)
    out = read_image(tmp_path / "p.gif")
    assert out[0, 0].tolist() == [0, 0, 255] and out[0, 1].tolist() == [255, 255, 255]


def test_pillow_decodes_under_the_pixel_limit_and_gets_its_own_back(tmp_path, monkeypatch):
    write_image(tmp_path / "a.jpg", _marked(40, 50))
    seen = []
    original = image_io._decode

    def spy(im, min_size=None):
        seen.append(Image.MAX_IMAGE_PIXELS)
        return original(im, min_size)

    monkeypatch.setattr(image_io, "_decode", spy)
    before = Image.MAX_IMAGE_PIXELS
    assert read_image(tmp_path / "a.jpg", max_pixels=5000).shape == (40, 50, 3)
    assert seen == [5000] and Image.MAX_IMAGE_PIXELS == before


def test_a_jpeg_is_decoded_reduced_only_as_far_as_min_size_allows(tmp_path):
    yy, xx = np.mgrid[0:600, 0:1199]
    write_image(tmp_path / "p.jpg", np.dstack([xx % 256, yy % 256, (xx + yy) % 256]).astype(np.uint8))
    for min_size, shape in (((75, 149), (75, 150)), ((75, 150), (150, 300)), ((600, 1199), (600, 1199))):
        img, full = read_image_sized(tmp_path / "p.jpg", min_size=min_size)
        assert full == (600, 1199) and img.shape[:2] == shape  # 1199 // 150 < 8: a quarter, not an eighth
