"""Image files <-> arrays <-> tensors.

Arrays are ``uint8`` ``H x W x C`` in RGB order with ``C`` = 1 or 3.  Reading normalises every
input to that form:

* grayscale -> replicated to 3 channels when 3 are asked for, colour -> luma when 1 is;
* alpha (a channel, or a palette's or PNG's transparent colour) is composited onto white;
* 16-bit images are scaled to 8 bit (``v * 255 / 65535``; a 16-bit colour TIFF, which Pillow reads
  at 8 bits, within 1 of that), float images are taken as [0, 1]; CMYK, YCbCr... become RGB;
* the EXIF orientation (JPEG, PNG, WebP, TIFF...) is applied, so the array looks as a viewer shows it;
* an animated file gives its first frame.

Tensors are ``float32`` ``C x H x W`` in [-1, 1].

One reader decides what a file is: Pillow opens it (only the :data:`FORMATS`, whatever the file's
name), and its header gives the format and the size.  An image with more pixels than the pixel limit
(``max_pixels``; by default ``$I2I_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`) raises
:class:`DataError` before a pixel is decoded, and Pillow's own decompression-bomb check runs at the
same limit while decoding.  Pillow decodes the pixels; a JPEG that the caller will shrink anyway
(``min_size``) at 1/2, 1/4 or 1/8 scale (``draft``) as long as the result keeps at least
``min_size``; ``ImageOps.exif_transpose`` turns it.  Only a PNG's pixels are decoded by OpenCV
(libpng), which took 12 to 20 % less CPU time than Pillow's PNG decoder on the SOTS images (and
keeps 16-bit colour), from the bytes Pillow read, after Pillow has checked every chunk (within the
file, CRC, up to IEND); the decoded size must be the header's, and the orientation is read by Pillow
from the eXIf chunk and applied as for any other file, so the two cannot disagree.
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import DataError
from ..utils import atomic_path

try:  # a damaged file is reported as one DataError line, without OpenCV's own warnings
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
except AttributeError:
    pass

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
DEFAULT_MAX_PIXELS = 1 << 26  #: 67,108,864 pixels (8192 x 8192) unless $I2I_MAX_PIXELS says otherwise
MAX_BYTES_PER_PIXEL = 16  #: float32 RGBA, the largest uncompressed pixel a file may hold


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(root: str | Path, recursive: bool = True) -> list[Path]:
    """Image files under ``root`` (by extension, case-insensitive), sorted; hidden files skipped."""
    root = Path(root)
    found = root.rglob("*") if recursive else root.iterdir()
    return sorted(
        p for p in found
        if p.is_file() and is_image(p) and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


# --------------------------------------------------------------------------- reading
#: Pillow's plugins that open a file, whatever its name says (no other plugin is tried: EPS runs Ghostscript)
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
_AS_STORED = frozenset({"L", "LA", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_PILLOW_LIMIT = threading.Lock()
_ORIENTATION = 0x0112  #: the EXIF tag


@contextlib.contextmanager
def _pillow_limit(pixels: int | None) -> Iterator[None]:
    """Pillow's own decompression-bomb limit at ``pixels`` (``None``: off) while i2i opens or decodes a
    file, Pillow's warnings silenced.  Pillow keeps the limit process-wide: threads take turns."""
    with _PILLOW_LIMIT, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, pixels
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


@functools.cache
def _formats() -> tuple[str, ...]:
    """:data:`FORMATS` this Pillow has (one built without WebP would refuse every file given it)."""
    Image.init()
    return tuple(f for f in FORMATS if f in Image.OPEN)


def _open(path: Path, limit: int | None = None) -> Image.Image:
    """The file opened by Pillow: its header read, no pixel decoded.  ``DataError`` if it is not an image
    file, or, given a pixel ``limit``, larger than any image within it (Pillow reads some files whole)."""
    try:
        size = path.stat().st_size
        if limit and size > MAX_BYTES_PER_PIXEL * limit + (64 << 20):
            raise DataError(f"cannot read image {path}: {size} bytes is more than an image within the pixel limit holds")
        # Pillow's check is off for the header: above twice its limit it refuses a file without saying
        # the image's size, which check_pixels says right after, at the same limit
        with _pillow_limit(None):
            im = Image.open(path, formats=_formats())
    except FileNotFoundError:
        raise DataError(f"cannot read image {path}: file not found") from None
    except OSError as exc:
        if exc.errno is not None:
            raise DataError(f"cannot read image {path}: {exc.strerror or exc}") from None
        raise DataError(f"cannot read image {path}: not a valid or supported image file") from None
    except DataError:
        raise
    except Exception:  # anything the header parser trips on: not an image we read
        raise DataError(f"cannot read image {path}: not a valid or supported image file") from None
    if im.width <= 0 or im.height <= 0:
        im.close()
        raise DataError(f"cannot read image {path}: not a valid or supported image file")
    return im


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1..8) of an opened file, as ``ImageOps.exif_transpose`` reads it; 1 if there is
    none, or no valid one, or its EXIF block cannot be parsed (the image is then taken as stored)."""
    try:
        with warnings.catch_warnings():  # Pillow warns of each damaged EXIF entry it skips
            warnings.simplefilter("ignore")
            value = im.getexif().get(_ORIENTATION, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _decode(im: Image.Image, min_size: tuple[int, int] | None = None) -> tuple[np.ndarray, int]:
    """The pixels of a file Pillow opened, turned by ``ImageOps.exif_transpose``, and the orientation it applied.

    A JPEG is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's reduced decoding, through ``draft``) when that
    keeps at least ``min_size`` = ``(height, width)``.  The array is ``uint8`` gray or RGB, with alpha
    last if the file has any, or gray as stored (16-bit, 32-bit integer, float).
    """
    if min_size and im.format in ("JPEG", "MPO"):
        h, w = min_size if _orientation(im) <= 4 else min_size[::-1]
        im.draft(None, (max(1, w), max(1, h)))
    im.load()  # then the orientation: EXIF may follow the pixels
    orientation = _orientation(im)
    if orientation != 1:
        im = ImageOps.exif_transpose(im)
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA" if im.mode == "PA" or "transparency" in im.info else "RGB")
    elif im.mode == "1":
        im = im.convert("L")
    elif im.mode in ("La", "RGBa"):  # premultiplied alpha
        im = im.convert(im.mode.upper())
    elif im.mode not in _AS_STORED:  # CMYK, YCbCr, LAB, HSV, RGBX...
        im = im.convert("RGB")
    arr = np.array(im)
    return (arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))), orientation


def _decode_png(im: Image.Image) -> tuple[np.ndarray, int]:
    """:func:`_decode` for a PNG: Pillow checks its chunks and turns it as its eXIf chunk says, OpenCV
    decodes the pixels (faster than Pillow here, and 16-bit colour too) from the bytes Pillow read."""
    im.fp.seek(0)
    data = im.fp.read()
    try:  # every chunk lies within the file, with a right CRC, up to IEND: OpenCV may allocate the
        im.verify()  # length a chunk claims before it finds the file too short
    except SyntaxError:
        raise OSError("a PNG chunk is damaged (its name or checksum)") from None
    except Exception:
        raise OSError("a PNG chunk runs past the end") from None
    buf, exif = np.frombuffer(data, np.uint8), im.info.get("exif")  # an eXIf chunk before the pixels
    if hasattr(cv2, "imdecodeWithMetadata"):  # OpenCV >= 4.12 also finds one after them
        img, kinds, blocks = cv2.imdecodeWithMetadata(buf, cv2.IMREAD_UNCHANGED)
        exif = exif or next((np.asarray(b, np.uint8).tobytes() for k, b in zip(np.ravel(kinds), blocks)
                             if int(k) == cv2.IMAGE_METADATA_EXIF), None)
    else:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError("its pixel data does not decode")
    if img.shape[:2] != (im.height, im.width):  # the size checked is the header's
        raise OSError(f"it decodes as {img.shape[1]}x{img.shape[0]} px, its header says {im.width}x{im.height}")
    if img.ndim == 3:  # BGR(A) -> RGB(A)
        img = img[:, :, [2, 1, 0, 3][: img.shape[2]]]
    if not exif:
        return img, 1
    pixels = Image.fromarray(to_uint8(img))
    pixels.info["exif"] = exif
    return _decode(pixels)


def _on_white(img: np.ndarray) -> np.ndarray:
    """Gray or RGB + alpha (``uint8``, alpha last) composited onto a white background."""
    alpha = img[:, :, -1:].astype(np.float32) / 255.0
    return np.round(img[:, :, :-1] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """An image array as uint8: 16-bit scaled by 255 / 65535, floats taken as [0, 1], other integers by their range."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return np.round(img.astype(np.float32) * (255.0 / 65535.0)).astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating):
        return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    info = np.iinfo(img.dtype)
    return np.round((img.astype(np.float64) - info.min) * 255.0 / (info.max - info.min)).astype(np.uint8)


def to_channels(arr: np.ndarray, channels: int) -> np.ndarray:
    """RGB/gray uint8 array -> ``H x W x channels`` (luma for 1, replication for 3)."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] == channels:
        return arr
    if channels == 1:
        return cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)[:, :, None]
    if channels == 3:
        return np.repeat(arr, 3, axis=2)
    raise ValueError(f"channels must be 1 or 3, got {channels}")


def pixel_limit(max_pixels: int | None = None) -> int:
    """``max_pixels`` if given (> 0), else ``$I2I_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`."""
    if max_pixels:
        return int(max_pixels)
    env = os.environ.get("I2I_MAX_PIXELS", "").strip()
    if not env:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(env)) if env.lower() != "inf" else 0
    except (ValueError, OverflowError):  # not a number, or 1e400
        value = 0
    if value <= 0:
        from ..errors import ConfigError

        raise ConfigError(f"I2I_MAX_PIXELS: expected a positive number of pixels, got {env!r}")
    return value


def _megapixels(n: int) -> str:
    return f"{n / 1e6:.1f} Mpx"


def check_pixels(path: str | Path, h: int, w: int, max_pixels: int | None = None) -> None:
    limit = pixel_limit(max_pixels)
    if h * w > limit:
        raise DataError(f"{path}: {w}x{h} px ({_megapixels(h * w)}) is over the pixel limit of {_megapixels(limit)} "
                        f"(raise it with I2I_MAX_PIXELS, data.max_pixels or --max-pixels)")


def image_header(path: str | Path) -> tuple[int, int, str, int]:
    """``(height, width, format, exif orientation)`` as the header says, displayed orientation
    (nothing is decoded: a PNG whose EXIF follows its pixels counts as orientation 1 here);
    ``DataError`` if it is not an image file."""
    path = Path(path)
    with _open(path) as im:
        h, w, fmt = im.height, im.width, str(im.format or "")
        orientation = _orientation(im) if fmt != "PNG" or "exif" in im.info else 1  # getexif would decode
    return (h, w, fmt, orientation) if orientation <= 4 else (w, h, fmt, orientation)


def image_size(path: str | Path, max_pixels: int | None = None) -> tuple[int, int]:
    """``(height, width)`` from the header; ``DataError`` if unreadable or over the pixel limit."""
    h, w, _, _ = image_header(path)
    check_pixels(path, h, w, max_pixels)
    return h, w


def read_image(path: str | Path, channels: int = 3, *, max_pixels: int | None = None,
               min_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image file as ``uint8`` ``H x W x channels`` RGB; ``DataError`` if unreadable.

    ``max_pixels`` caps the size (see :func:`pixel_limit`); ``min_size`` = ``(height, width)``
    the caller will shrink the image to (or more), so a JPEG may be decoded at a reduced scale.
    """
    return read_image_sized(path, channels, max_pixels=max_pixels, min_size=min_size)[0]


def read_image_sized(path: str | Path, channels: int = 3, *, max_pixels: int | None = None,
                     min_size: tuple[int, int] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """:func:`read_image` and the image's full ``(height, width)`` (larger than the array's if it was
    decoded at a reduced scale)."""
    path = Path(path)
    limit = pixel_limit(max_pixels)
    with _open(path, limit) as im:
        stored = (im.height, im.width)
        check_pixels(path, *stored, max_pixels)
        try:
            if im.format == "PNG":
                img, orientation = _decode_png(im)
            else:
                with _pillow_limit(limit):
                    img, orientation = _decode(im, min_size)
        except Exception as exc:  # anything the decoder trips on
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"cannot read image {path}: damaged or cut short ({reason})") from None
    img = to_uint8(img)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] in (2, 4):  # gray or RGB + alpha
        img = _on_white(img)
    full = stored if orientation <= 4 else stored[::-1]
    return to_channels(img, channels), (int(full[0]), int(full[1]))


# --------------------------------------------------------------------------- writing
def write_image(path: str | Path, array: np.ndarray) -> None:
    """Write an RGB (or gray) ``uint8``/``uint16`` array atomically; format from the extension."""
    path = Path(path)
    if not is_image(path):
        raise DataError(f"cannot write image {path}: unknown extension (use one of {', '.join(sorted(IMAGE_EXTENSIONS))})")
    arr = np.asarray(array)
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"write_image expects uint8 or uint16, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[:, :, ::-1]
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    elif arr.ndim != 2:
        raise ValueError(f"write_image expects H x W x 1|3, got shape {arr.shape}")
    ok, encoded = cv2.imencode(path.suffix.lower(), np.ascontiguousarray(arr))
    if not ok:
        raise DataError(f"cannot write image {path}: encoding failed")
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())


# --------------------------------------------------------------------------- tensors
def image_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """``uint8`` ``H x W x C`` (or ``H x W``) -> ``float32`` ``C x H x W`` in [-1, 1]."""
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float()
    return t / 127.5 - 1.0


def tensor_to_image(t: torch.Tensor) -> np.ndarray:
    """``C x H x W`` tensor in [-1, 1] (values outside are clamped) -> ``uint8`` ``H x W x C``."""
    t = t.detach()
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3:
        raise ValueError(f"tensor_to_image expects C x H x W, got shape {tuple(t.shape)}")
    t = ((t.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round()
    return t.to(torch.uint8).permute(1, 2, 0).cpu().numpy()
