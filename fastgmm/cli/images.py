"""Image files in and out, for ``fastgmm segment`` (the ``image`` extra).

Reading: 16-bit PNGs with imagecodecs (Pillow would reduce 16-bit colour to 8
bits), TIFF with imageio through tifffile (16-bit and float samples kept), every
other format with Pillow; palette and CMYK images become RGB(A), bilevel ones grey.
The declared size is checked before anything is decoded: an image of more than
``max_pixels`` pixels (default :data:`MAX_PIXELS`, Pillow's decompression-bomb
limit) is refused unless the caller raises the limit (``--max-pixels``), so a small
file declaring 50000 x 50000 pixels cannot take all memory.

Writing: TIFF as is; PNG at 8 or 16 bits as the image; other formats at 8 bits
(JPEG without alpha). Files are written atomically.
"""

import struct

import numpy as np

from ..io.atomic import atomic_write
from .args import MAX_PIXELS, require
from .data import check_file

#: Pillow modes converted on reading
_CONVERT = {"1": "L", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"}
_TIFF = (".tif", ".tiff")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_NEEDS = "fastgmm segment"


def _png_header(path):
    """(width, height, bit depth) of a PNG file, or None if it is not one."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    if len(head) < 26 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    width, height, depth = struct.unpack(">IIB", head[16:25])
    return width, height, depth


def _check_pixels(path, width, height, max_pixels):
    n = int(width) * int(height)
    if max_pixels is not None and n > max_pixels:
        raise ValueError(
            f"{path}: declares {width} x {height} = {n:,} pixels, more than the limit "
            f"of {max_pixels:,} (a guard against decompression bombs); if the image "
            f"is genuine, pass --max-pixels {n}"
        )


def _read_pillow(path, max_pixels):
    Image = require("PIL.Image", "image", _NEEDS)
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # checked below
    try:
        with Image.open(path) as img:  # reads the header only
            _check_pixels(path, *img.size, max_pixels)
            if img.mode == "P":
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            elif img.mode in _CONVERT:
                img = img.convert(_CONVERT[img.mode])
            return np.array(img)
    except (OSError, SyntaxError) as exc:  # Pillow's UnidentifiedImageError is one
        raise ValueError(f"{path}: not a readable image ({exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def read_image(path, max_pixels=MAX_PIXELS):
    """The pixels of the first image in ``path`` as an array (H, W[, C]).

    Parameters
    ----------
    path : str
    max_pixels : int or None, default=MAX_PIXELS
        Refuse images declaring more pixels (checked before decoding); None: no
        limit.
    """
    check_file(path, "image")
    if path.lower().endswith(_TIFF):
        iio = require("imageio.v3", "image", _NEEDS)
        shape = iio.improps(path, index=0).shape
        _check_pixels(path, shape[1], shape[0], max_pixels)
        return np.asarray(iio.imread(path, index=0))
    png = _png_header(path)
    if png is not None and png[2] == 16:
        _check_pixels(path, png[0], png[1], max_pixels)
        codecs = require("imagecodecs", "image", "reading 16-bit PNG images")
        with open(path, "rb") as fh:
            return np.asarray(codecs.png_decode(fh.read()))
    return _read_pillow(path, max_pixels)


def to_eight_bit(image):
    """uint8 version of a uint16 or float ([0, 1]) image; uint8 unchanged."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def image_format(path):
    """The Pillow format name of ``path``'s extension (PNG, JPEG, ...), or None."""
    from os.path import splitext

    Image = require("PIL.Image", "image", _NEEDS)
    return Image.registered_extensions().get(splitext(path)[1].lower())


def write_image(path, image):
    """Write ``image`` atomically: TIFF as is, PNG at 8 or 16 bits, other formats
    at 8 bits (JPEG without alpha)."""
    lower = path.lower()
    if lower.endswith(_TIFF):
        iio = require("imageio.v3", "image", _NEEDS)
        with atomic_write(path, "wb") as fh:
            iio.imwrite(fh, image, extension=".tif")
        return
    if lower.endswith(".png") and image.dtype == np.uint16:
        codecs = require("imagecodecs", "image", "writing 16-bit PNG images")
        with atomic_write(path, "wb") as fh:
            fh.write(codecs.png_encode(np.ascontiguousarray(image)))
        return
    Image = require("PIL.Image", "image", _NEEDS)
    image = to_eight_bit(image)
    if lower.endswith((".jpg", ".jpeg")) and image.ndim == 3:
        image = image[..., 0] if image.shape[2] == 2 else image[..., :3]
    with atomic_write(path, "wb") as fh:
        Image.fromarray(image).save(fh, format=image_format(path))
