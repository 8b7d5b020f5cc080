"""``fastgmm segment``: segment an image by the colours of its pixels.

Reads the image (:mod:`fastgmm.cli.images`), sets its alpha channel aside (fully
transparent pixels are ignored and the alpha is copied to the output), runs
:func:`fastgmm.segment` with a progress bar, and writes the recoloured image and/or
the label map.
"""

import sys
import time

from fastgmm.cli.args import MAX_PIXELS, covariance_type_arg, k_list, number


def _k_values(text):
    """``-k``: one number of segments (an int) or BIC candidates (a list).

    Parsed by :func:`fastgmm.cli.args.k_list` (``5``, ``2-8``, ``2,4,8``,
    ``1-3,8``); its errors name ``-k`` and become usage errors.
    """
    values = k_list("-k")(text)
    return values[0] if len(values) == 1 else values


def _max_pixels(text):
    """``--max-pixels``: a positive integer, or 0 for no limit."""
    value = number(int, 0)(text)
    return value or None


def register(sub):
    """Add the ``segment`` parser to ``sub``."""
    p = sub.add_parser(
        "segment",
        help="segment an image (PNG, JPEG, TIFF) with a Gaussian mixture",
        description="Fit a Gaussian mixture to the colours (and with --xy the "
        "positions) of the pixels of IN; write the image with every pixel painted in "
        "its segment's mean colour (-o) and/or the label map (--labels). 8-bit images "
        "are fitted exactly, on their distinct colours weighted by their counts.",
    )
    p.add_argument("input", metavar="IN", help="image file (PNG, JPEG, TIFF, ...)")
    p.add_argument(
        "-k",
        type=_k_values,
        required=True,
        metavar="K",
        help="number of segments, or candidates 2-8 / 2,4,8 chosen by BIC",
    )
    p.add_argument(
        "-o", "--output", metavar="OUT", help="recoloured image to write (.png, ...)"
    )
    p.add_argument(
        "--labels",
        metavar="FILE",
        help="label map to write: .npy, .csv (one row per image row), .png or .tif",
    )
    p.add_argument(
        "--colour-space",
        "--color-space",
        dest="colour_space",
        default="rgb",
        choices=("rgb", "lab", "hsv"),
    )
    p.add_argument(
        "--xy",
        type=float,
        default=0.0,
        metavar="W",
        help="weight of pixel coordinates: >0 for compact segments",
    )
    covariance_type_arg(p)
    p.add_argument(
        "--sample-size",
        type=number(int, 1),
        default=1_000_000,
        metavar="N",
        help="pixels fitted when the fit is not exact (default 1000000)",
    )
    p.add_argument(
        "--max-pixels",
        type=_max_pixels,
        default=MAX_PIXELS,
        metavar="N",
        help="refuse images declaring more pixels, a guard against decompression "
        f"bombs (default {MAX_PIXELS}, Pillow's limit; 0: no limit)",
    )
    p.add_argument(
        "--seed", type=number(int, 0, 2**32 - 1), default=0, help="random seed (0)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _plan(args):
    """Check the outputs before any work: (labels format)."""
    from fastgmm.cli.args import require
    from fastgmm.cli.outputs import LABEL_MAP, Outputs

    image = require("PIL.Image", "image", "fastgmm segment")
    if args.output is None and args.labels is None:
        raise ValueError("nothing to write: give -o OUT.png and/or --labels FILE.npy")
    outputs = Outputs(IN=args.input)
    if args.output is not None:
        known = {ext: ext for ext in image.registered_extensions()}
        outputs.add("-o", args.output, {**known, ".tif": "tiff", ".tiff": "tiff"})
    if args.labels is None:
        return None
    fmt = outputs.add("--labels", args.labels, LABEL_MAP)
    ks = args.k if isinstance(args.k, list) else [args.k]
    if fmt in ("png", "tiff") and max(ks) >= 1 << 16:
        raise ValueError(
            f"--labels {args.labels}: too many labels for an image; use .npy"
        )
    return fmt


def _write_labels(path, fmt, labels):
    """The label map as .npy, CSV (one row per image row), PNG or TIFF."""
    import numpy as np

    from fastgmm.cli.images import write_image
    from fastgmm.cli.outputs import atomic_write

    if fmt == "npy":
        with atomic_write(path, "wb") as fh:
            np.save(fh, labels)
    elif fmt == "csv":
        with atomic_write(path, "w", newline="") as fh:
            np.savetxt(fh, labels, fmt="%d", delimiter=",")
    else:
        write_image(path, labels)


def run(args):
    """Segment ``args.input``; write the recoloured image and/or the labels."""
    import numpy as np

    from fastgmm.cli.images import read_image, write_image
    from fastgmm.cli.progress import Bar
    from fastgmm.segmentation import segment

    labels_fmt = _plan(args)
    bar = Bar(enabled=not args.quiet and sys.stderr.isatty())
    bar(0.0, f"reading {args.input}")
    image = read_image(args.input, args.max_pixels)
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
        _write_labels(args.labels, labels_fmt, labels)
    bar.close()
    height, width = labels.shape
    print(f"{args.input}: {width}x{height} px, {fit[-1]}: segmented in {seconds:.2f} s")
    return 0
