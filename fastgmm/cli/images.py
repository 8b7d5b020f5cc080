"""``fastgmm segment``: image files in and out, a progress bar, the run itself.

PNG, JPEG and most other formats are read and written with Pillow; TIFF with imageio
(through tifffile, which keeps 16-bit and float samples), or Pillow when imageio is
missing: the ``image`` extra installs them. Palette and CMYK images are converted
to RGB(A), bilevel ones to grey. The command is meant for large scans, so Pillow's
decompression-bomb limit is lifted while reading. An alpha channel is not a
feature: fully transparent pixels are ignored, and the alpha is copied to the output.
"""

import os
import sys
import time

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


class Bar:
    """A one-line progress bar on stderr: ``[#####.....]  50%  message  1.2s``.

    Draws nothing unless ``enabled`` (the command enables it when stderr is a
    terminal and ``--quiet`` is not given); redraws at most every 0.1 s.
    """

    def __init__(self, enabled, stream=None, width=24):
        self.stream = sys.stderr if stream is None else stream
        self.enabled, self.width = enabled, width
        self.t0, self.last, self.shown = time.perf_counter(), -1.0, 0

    def __call__(self, fraction, message):
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.1 and fraction < 1.0):
            return
        self.last = now
        filled = round(self.width * min(max(fraction, 0.0), 1.0))
        line = "[" + "#" * filled + "." * (self.width - filled) + "]"
        line = f"{line} {100 * fraction:3.0f}%  {message}  {now - self.t0:.1f}s"
        self.stream.write("\r" + line.ljust(self.shown))
        self.stream.flush()
        self.shown = len(line)

    def close(self):
        """Erase the bar."""
        if self.enabled and self.shown:
            self.stream.write("\r" + " " * self.shown + "\r")
            self.stream.flush()


def run(args):
    """Segment ``args.input``; write the recoloured image and/or the labels."""
    from ..segmentation import segment

    if args.output is None and args.labels is None:
        raise ValueError("nothing to write: give -o OUT.png and/or --labels FILE.npy")
    bar = Bar(enabled=not args.quiet and sys.stderr.isatty())
    bar(0.0, f"reading {args.input}")
    image = read_image(args.input)
    alpha, ignore = None, None
    if image.ndim == 3 and image.shape[2] in (2, 4):  # grey+alpha, RGBA
        alpha, image = image[..., -1:], image[..., :-1]
        ignore = (alpha[..., 0] == 0) if (alpha == 0).any() else None
        image = image[..., 0] if image.shape[2] == 1 else image
    fit = []

    def progress(fraction, message):
        if message.startswith("fitting"):
            fit.append(message[len("fitting ") :])
        bar(fraction, message)

    options = {
        "colour_space": args.colour_space,
        "xy": args.xy,
        "ignore": ignore,
        "covariance_type": args.covariance_type,
        "random_state": args.seed,
        "sample_size": args.sample_size,
        "progress": progress,
    }
    t0 = time.perf_counter()
    result = segment(image, args.k, return_image=args.output is not None, **options)
    seconds = time.perf_counter() - t0
    labels = result[0] if args.output is not None else result
    bar(1.0, "writing")
    if args.output is not None:
        recoloured = result[1]
        if alpha is not None:
            recoloured = np.dstack([recoloured, alpha])
        write_image(args.output, recoloured)
    if args.labels is not None:
        np.save(args.labels, labels)
    bar.close()
    height, width = labels.shape
    print(f"{args.input}: {width}x{height} px, {fit[-1]}: segmented in {seconds:.2f} s")
    return 0
