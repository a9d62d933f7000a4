"""Image files <-> arrays <-> tensors.

Arrays are ``uint8`` ``H x W x C`` in RGB order with ``C`` = 1 or 3.  Reading
(OpenCV based) normalises every input to that form:

* grayscale -> replicated to 3 channels when 3 are asked for, colour -> luma when 1 is;
* an alpha channel is composited onto a white background (transparent pixels become white);
* 16-bit images are scaled to 8 bit (``v * 255 / 65535``), float images are taken as [0, 1];
* the EXIF orientation tag (JPEG, PNG, WebP ...) is applied, so the array looks as a viewer shows it.

Tensors are ``float32`` ``C x H x W`` in [-1, 1].

Memory is bounded before anything is decoded: the header gives the size, and an image
with more pixels than the pixel limit (``max_pixels``; by default ``$I2I_MAX_PIXELS``,
else :data:`DEFAULT_MAX_PIXELS`) raises :class:`DataError` unread.  A JPEG that the
caller will shrink anyway (``min_size``) is decoded at 1/2, 1/4 or 1/8 scale, as long
as the result keeps at least ``min_size``.
"""
from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

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
def _exif_orientation(exif: bytes) -> int:
    """Orientation tag (0x0112) of a TIFF-structured EXIF block; 1 if absent or unreadable."""
    if exif.startswith(b"Exif\x00\x00"):
        exif = exif[6:]
    if len(exif) < 8 or exif[:2] not in (b"II", b"MM"):
        return 1
    end = "<" if exif[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(end + "I", exif, 4)
        (count,) = struct.unpack_from(end + "H", exif, ifd)
        for k in range(count):
            tag, typ, _n = struct.unpack_from(end + "HHI", exif, ifd + 2 + 12 * k)
            if tag == 0x0112 and typ == 3:
                (value,) = struct.unpack_from(end + "H", exif, ifd + 2 + 12 * k + 8)
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


def apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a stored image into its displayed form for EXIF orientation 1..8."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops.get(orientation, ops[1])(arr))


def _decode(buf: np.ndarray, scale: int = 1) -> tuple[np.ndarray | None, int]:
    """Decoded image as stored (alpha and bit depth kept; JPEG at 1/``scale``) and its EXIF orientation."""
    flags = cv2.IMREAD_UNCHANGED
    if scale > 1:
        flags = getattr(cv2, _REDUCED[scale]) | cv2.IMREAD_IGNORE_ORIENTATION
    if hasattr(cv2, "imdecodeWithMetadata"):
        img, types, meta = cv2.imdecodeWithMetadata(buf, flags)
        orientation = 1
        for typ, block in zip(np.asarray(types).ravel(), meta):
            if int(typ) == getattr(cv2, "IMAGE_METADATA_EXIF", -2):
                orientation = _exif_orientation(np.asarray(block, np.uint8).tobytes())
        return img, orientation
    # older OpenCV: it applies the orientation itself, but then drops alpha (not composited)
    if scale > 1:
        return cv2.imdecode(buf, getattr(cv2, _REDUCED[scale])), 1
    return cv2.imdecode(buf, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR), 1


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


def image_header(path: str | Path) -> tuple[int, int, str, int]:
    """``(height, width, format, exif orientation)`` as the header says, displayed orientation
    (nothing is decoded); ``DataError`` if it is not an image file."""
    from PIL import Image

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the limit here is ours
            try:
                with Image.open(path) as im:
                    w, h, fmt = int(im.size[0]), int(im.size[1]), str(im.format or "")
                    orientation = 1
                    if fmt == "JPEG":  # in the header; elsewhere EXIF may follow the pixels
                        value = im.getexif().get(0x0112, 1)
                        orientation = value if isinstance(value, int) and 1 <= value <= 8 else 1
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except FileNotFoundError:
        raise DataError(f"cannot read image {path}: file not found") from None
    except OSError as exc:
        if exc.errno is not None:
            raise DataError(f"cannot read image {path}: {exc.strerror or exc}") from None
        raise DataError(f"cannot read image {path}: not a valid or supported image file") from None
    except Exception:  # anything the header parser trips on: not an image we read
        raise DataError(f"cannot read image {path}: not a valid or supported image file") from None
    if w <= 0 or h <= 0:
        raise DataError(f"cannot read image {path}: not a valid or supported image file")
    if orientation >= 5:
        w, h = h, w
    return h, w, fmt, orientation


def image_size(path: str | Path, max_pixels: int | None = None) -> tuple[int, int]:
    """``(height, width)`` from the header; ``DataError`` if unreadable or over the pixel limit."""
    h, w, _, _ = image_header(path)
    check_pixels(path, h, w, max_pixels)
    return h, w


def check_pixels(path: str | Path, h: int, w: int, max_pixels: int | None = None) -> None:
    limit = pixel_limit(max_pixels)
    if h * w > limit:
        raise DataError(f"{path}: {w}x{h} px ({_megapixels(h * w)}) is over the pixel limit of {_megapixels(limit)} "
                        f"(raise it with I2I_MAX_PIXELS, data.max_pixels or --max-pixels)")


def _reduction(h: int, w: int, min_size: tuple[int, int] | None) -> int:
    """The largest JPEG scale-down (1, 2, 4, 8) that keeps at least ``min_size`` (height, width)."""
    if not min_size:
        return 1
    for s in (8, 4, 2):
        if -(-h // s) >= min_size[0] and -(-w // s) >= min_size[1]:
            return s
    return 1


def _png_chunks_fit(buf: np.ndarray) -> bool:
    """Every chunk of a PNG lies within the file and it ends with IEND (a decoder given a chunk length
    beyond the file's end may allocate that much before it notices)."""
    data, pos, n = memoryview(buf), 8, buf.size
    while pos + 12 <= n:
        length = int.from_bytes(data[pos: pos + 4], "big")
        if pos + 12 + length > n:
            return False
        if bytes(data[pos + 4: pos + 8]) == b"IEND":
            return True
        pos += 12 + length
    return False


_REDUCED = {2: "IMREAD_REDUCED_COLOR_2", 4: "IMREAD_REDUCED_COLOR_4", 8: "IMREAD_REDUCED_COLOR_8"}


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
    h, w, fmt, _ = image_header(path)
    check_pixels(path, h, w, max_pixels)
    limit = pixel_limit(max_pixels)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc.strerror or exc}") from None
    if size > MAX_BYTES_PER_PIXEL * limit + (64 << 20):
        raise DataError(f"cannot read image {path}: {size} bytes is more than an image within the pixel limit holds")
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc.strerror or exc}") from None
    if fmt == "PNG" and not _png_chunks_fit(buf):
        raise DataError(f"cannot read image {path}: damaged or cut short (a PNG chunk runs past the end)")
    scale = _reduction(h, w, min_size) if fmt == "JPEG" else 1
    try:
        img, orientation = _decode(buf, scale) if buf.size else (None, 1)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise DataError(f"cannot read image {path}: not a valid or supported image file")
    if img.shape[0] * img.shape[1] > limit:  # the decoder saw another size than the header said
        raise DataError(f"cannot read image {path}: decoded size {img.shape[1]}x{img.shape[0]} is over the pixel limit")
    img = to_uint8(img)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 4:  # BGRA: composite on white
        alpha = img[:, :, 3:4].astype(np.float32) / 255.0
        img = np.round(img[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if img.shape[2] == 3:
        img = img[:, :, ::-1]  # BGR -> RGB
    elif img.shape[2] == 2:  # gray + alpha
        alpha = img[:, :, 1:2].astype(np.float32) / 255.0
        img = np.round(img[:, :, :1] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    img = to_channels(apply_orientation(img, orientation), channels)
    full = img.shape[:2]
    if scale > 1:  # the header's size, turned as the decoded image is
        fits = abs(-(-h // scale) - full[0]) <= 1 and abs(-(-w // scale) - full[1]) <= 1
        full = (h, w) if fits else (w, h)
    return img, (int(full[0]), int(full[1]))


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
