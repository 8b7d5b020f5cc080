"""Pixels as features for :func:`fastgmm.segment`: input checks, colour spaces,
coordinates.

The colour spaces take rows (n, 3) and return rows in the input's float dtype, with
scikit-image's formulas and constants (``skimage.color``: sRGB, D65 white, 2 degree
observer), so the features match ``rgb2lab`` / ``rgb2hsv`` without depending on
scikit-image.
"""

from dataclasses import dataclass

import numpy as np

from .._jit import kernel_input

# sRGB (D65) -> CIE XYZ, and the D65 white point: scikit-image's constants
XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
WHITE = np.array([0.95047, 1.0, 1.08883])


def rgb_to_lab(rgb):
    """CIE Lab (D65, 2 degrees) of sRGB rows (n, 3) in [0, 1], in their float dtype.

    sRGB -> linear -> XYZ -> Lab, with scikit-image's constants (``rgb2lab``).
    """
    with np.errstate(invalid="ignore"):
        lin = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
        xyz = lin @ (XYZ_FROM_RGB / WHITE[:, None]).T.astype(rgb.dtype)
        f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    lab = np.empty_like(f)
    lab[:, 0] = 116.0 * f[:, 1] - 16.0
    lab[:, 1] = 500.0 * (f[:, 0] - f[:, 1])
    lab[:, 2] = 200.0 * (f[:, 1] - f[:, 2])
    return lab


def lab_to_rgb(lab):
    """sRGB rows in [0, 1] of CIE Lab rows (n, 3): the inverse of :func:`rgb_to_lab`
    (clipped to the gamut, as scikit-image's ``lab2rgb``)."""
    fy = (lab[:, 0] + 16.0) / 116.0
    f = np.stack([lab[:, 1] / 500.0 + fy, fy, np.maximum(fy - lab[:, 2] / 200.0, 0)], 1)
    xyz = np.where(f > 0.2068966, f**3, (f - 16.0 / 116.0) / 7.787) * WHITE
    lin = xyz @ np.linalg.inv(XYZ_FROM_RGB).T
    with np.errstate(invalid="ignore"):
        rgb = np.where(lin > 0.0031308, 1.055 * lin ** (1 / 2.4) - 0.055, 12.92 * lin)
    return np.clip(rgb, 0.0, 1.0)


def rgb_to_hsv(rgb):
    """HSV rows (n, 3) in [0, 1] of RGB rows in [0, 1] (scikit-image's ``rgb2hsv``).

    Hue is an angle (0 and 1 are the same red): a mixture sees them as far apart.
    """
    v = rgb.max(axis=1)
    delta = v - rgb.min(axis=1)
    flat = delta == 0
    safe = np.where(flat, 1, delta)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    h = np.select(
        [b == v, g == v], [4 + (r - g) / safe, 2 + (b - r) / safe], (g - b) / safe
    )
    hsv = np.empty_like(rgb)
    hsv[:, 0] = np.where(flat, 0, (h / 6.0) % 1.0)
    hsv[:, 1] = np.where(flat, 0, delta / np.where(v == 0, 1, v))
    hsv[:, 2] = v
    return hsv


def hsv_to_rgb(hsv):
    """RGB rows in [0, 1] of HSV rows (n, 3) (scikit-image's ``hsv2rgb``)."""
    h, s, v = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    sector = np.floor(h * 6.0)
    f = h * 6.0 - sector
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    order = ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))
    choice = [sector % 6 == i for i in range(6)]
    return np.stack([np.select(choice, [o[c] for o in order]) for c in range(3)], 1)


TO_SPACE = {"rgb": lambda v: v, "lab": rgb_to_lab, "hsv": rgb_to_hsv}
FROM_SPACE = {"rgb": lambda v: v, "lab": lab_to_rgb, "hsv": hsv_to_rgb}
#: nominal extent of each space's features (the scale of the ``xy`` features)
EXTENT = {"rgb": 1.0, "hsv": 1.0, "lab": 100.0}


# ----------------------------------------------------------------------------- input
_DEPTH = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}


@dataclass(frozen=True)
class Pixels:
    """A validated image as (n, C) pixels, with what the pipeline needs to know."""

    px: np.ndarray  # (n, C) view (or contiguous copy) of the image
    ignore: np.ndarray  # (n,) bool, or (0,) when no pixel is ignored
    shape: tuple  # the input's shape: (H, W) or (H, W, C)
    scale: float  # the value of full intensity: 255, 65535 or 1.0 (float)
    bits: int  # bits per channel of a look-up-table image, else 0
    space: str
    xy: float

    @property
    def n_valid(self):
        """Number of pixels not ignored."""
        return self.px.shape[0] - int(np.count_nonzero(self.ignore))


def prepare(image, ignore, colour_space, xy):
    """Validate the inputs; see :func:`segment` for the rules."""
    img = np.asarray(image)
    if img.ndim not in (2, 3) or img.shape[0] * img.shape[1] == 0 or img.size == 0:
        raise ValueError(
            f"image must be a non-empty H x W or H x W x C array, got {img.shape}"
        )
    if img.dtype in _DEPTH:
        depth, scale = _DEPTH[img.dtype], float(np.iinfo(img.dtype).max)
    elif img.dtype.kind == "f":
        depth, scale = 0, 1.0
    else:
        raise TypeError(f"image dtype must be uint8, uint16 or float, got {img.dtype}")
    n_channels = 1 if img.ndim == 2 else img.shape[2]
    space = str(colour_space).lower()
    if space not in TO_SPACE:
        raise ValueError(
            f"colour_space must be 'rgb', 'lab' or 'hsv', got {colour_space!r}"
        )
    if space != "rgb" and n_channels != 3:
        raise ValueError(f"colour_space={space!r} needs 3 channels, got {n_channels}")
    if not (np.isfinite(xy) and xy >= 0):
        raise ValueError(f"xy must be a finite number >= 0, got {xy!r}")
    px = kernel_input(np.ascontiguousarray(img).reshape(-1, n_channels))
    flags = np.empty(0, dtype=np.bool_)
    if ignore is not None:
        flags = kernel_input(np.ascontiguousarray(ignore, dtype=np.bool_))
        if flags.shape != img.shape[:2]:
            raise ValueError(
                f"ignore must have the shape {img.shape[:2]}, got {flags.shape}"
            )
        flags = flags.reshape(-1)
        if flags.all():
            raise ValueError("every pixel is ignored")
    bits = depth if depth and depth * n_channels <= 24 and xy == 0 else 0
    return Pixels(px, flags, img.shape, scale, bits, space, float(xy))


def features(values, index, im, dtype):
    """Features (m, F) of pixel values (m, C): the colour in ``im.space`` and, when
    ``im.xy > 0``, the scaled column and row of each flat pixel ``index``."""
    colour = values.astype(dtype)
    if im.scale != 1.0:
        colour /= im.scale
    colour = TO_SPACE[im.space](colour)
    if im.xy == 0:
        return colour
    step = im.xy * EXTENT[im.space] / max(im.shape[:2])
    rows, cols = np.divmod(index, im.shape[1])
    out = np.empty((values.shape[0], colour.shape[1] + 2), dtype=dtype)
    out[:, :-2] = colour
    out[:, -2] = cols * step
    out[:, -1] = rows * step
    return out


def unpack(keys, im):
    """Pixel values (D, C) of the look-up keys of :mod:`_segment_kernels`."""
    n_channels = im.px.shape[1]
    shifts = im.bits * np.arange(n_channels - 1, -1, -1)
    return (keys[:, None] >> shifts) & ((1 << im.bits) - 1)
