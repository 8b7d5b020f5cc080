"""Image files in and out, for ``fastgmm segment``.

PNG, JPEG and most other formats are read and written with Pillow; TIFF with imageio
(through tifffile, which keeps 16-bit and float samples), or Pillow when imageio is
missing: the ``image`` extra installs them. Palette and CMYK images are converted
to RGB(A), bilevel ones to grey. The command is meant for large scans, so Pillow's
decompression-bomb limit is lifted while reading.
"""

import os

import numpy as np

#: Pillow modes converted on reading
_CONVERT = {"1": "L", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"}
_TIFF = (".tif", ".tiff")


def _imageio():
    try:
        import imageio.v3 as iio
    except ImportError:
        return None
    return iio


def read_image(path):
    """The pixels of the first image in ``path`` as an array (H, W[, C])."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    from PIL import Image

    if path.lower().endswith(_TIFF) and _imageio() is not None:
        return np.asarray(_imageio().imread(path, index=0))
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as img:
            if img.mode == "P":
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            elif img.mode in _CONVERT:
                img = img.convert(_CONVERT[img.mode])
            return np.array(img)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def to_eight_bit(image):
    """uint8 version of a uint16 or float ([0, 1]) image; uint8 unchanged."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_image(path, image):
    """Write ``image``: TIFF as is, other formats as 8-bit (JPEG without alpha)."""
    if path.lower().endswith(_TIFF) and _imageio() is not None:
        _imageio().imwrite(path, image)
        return
    from PIL import Image

    image = to_eight_bit(image)
    if path.lower().endswith((".jpg", ".jpeg")) and image.ndim == 3:
        image = image[..., 0] if image.shape[2] == 2 else image[..., :3]
    Image.fromarray(image).save(path)
