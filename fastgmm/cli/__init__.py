"""The ``fastgmm`` command line.

Each subcommand is one ``_cmd_<name>(sub)`` function that adds its parser to the
``sub`` action returned by ``add_subparsers`` and binds the handler with
``set_defaults(run=...)``; handlers take the parsed namespace and return an exit
status. To add a subcommand, write such a function and list it in ``COMMANDS``.

Only the standard library is imported at module level, so ``fastgmm --help`` is
fast; NumPy, Numba, scikit-learn and the kernels are imported by the handlers.

Exit status: 0 on success, 1 when a command fails, 2 on a usage error, 130 when
interrupted. Errors are reported as one line on stderr; set ``FASTGMM_DEBUG=1``
to get the full traceback instead.
"""

import argparse
import os
import sys

PROG = "fastgmm"


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that reports usage errors on a single line."""

    def error(self, message):
        """Print ``prog: error: message`` and a help hint on one line; exit 2."""
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _cmd_demo(sub):
    """Register ``fastgmm demo``: fit the built-in worked examples."""
    p = sub.add_parser(
        "demo",
        help="fit the built-in worked examples (heights, iris, rfm) and report",
        description="Fit the worked examples (heights, iris, RFM customers) with "
        "fastgmm, show the fits against the truth, the BIC-chosen K and, unless "
        "--no-compare, the fit time and lower bound beside scikit-learn's.",
    )
    p.add_argument(
        "--no-compare",
        dest="compare",
        action="store_false",
        help="do not fit scikit-learn's GaussianMixture for comparison",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="data seed and random_state (default 0)"
    )
    p.set_defaults(run=_run_demo)


def _run_demo(args):
    from fastgmm.cli.demo import run_demo

    run_demo(compare=args.compare, seed=args.seed)
    return 0


def _cmd_warmup(sub):
    """Register ``fastgmm warmup``: compile (or load from cache) the JIT kernels."""
    p = sub.add_parser(
        "warmup",
        help="compile the JIT kernels, or load them from the on-disk cache",
        description="Compile fastgmm's Numba kernels, or load them from the "
        "on-disk cache, so that later fits start at full speed.",
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="report each kernel set"
    )
    p.set_defaults(run=_run_warmup)


def _run_warmup(args):
    import time
    import warnings

    import fastgmm

    t0 = time.perf_counter()
    with warnings.catch_warnings():  # the tiny warm-up fits need not converge
        warnings.simplefilter("ignore")
        if args.verbose:
            fastgmm.warmup(verbose=True)
        else:
            fastgmm.warmup()
    print(f"fastgmm: kernels ready in {time.perf_counter() - t0:.2f} s")
    return 0


def _k_values(text):
    """``-k`` of ``segment``: ``5``, a range ``2-8`` or a list ``2,4,8``."""
    try:
        if "-" in text:
            lo, hi = (int(v) for v in text.split("-"))
            values = list(range(lo, hi + 1))
        else:
            values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"invalid K {text!r}: use 5, 2-8 or 2,4,8")
    return values[0] if len(values) == 1 else values


def _cmd_segment(sub):
    """Register ``fastgmm segment``: segment an image by the colours of its pixels."""
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
    p.add_argument("-o", "--output", metavar="OUT", help="recoloured image to write")
    p.add_argument("--labels", metavar="FILE", help="label map to write (.npy)")
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
    p.add_argument(
        "--covariance-type",
        default="full",
        choices=("full", "tied", "diag", "spherical"),
    )
    p.add_argument(
        "--sample-size",
        type=int,
        default=1_000_000,
        metavar="N",
        help="pixels fitted when the fit is not exact (default 1000000)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_segment)


def _run_segment(args):
    from fastgmm.cli.segment import run

    return run(args)


from fastgmm.cli.commands import COMMANDS as _MORE_COMMANDS  # noqa: E402

#: subcommand registrars, in the order ``--help`` lists them
COMMANDS = (_cmd_demo, _cmd_warmup, *_MORE_COMMANDS, _cmd_segment)


def build_parser():
    """Build the ``fastgmm`` argument parser.

    Returns
    -------
    argparse.ArgumentParser
        The parser; each subcommand's namespace has a ``run`` handler.
    """
    parser = _Parser(
        prog=PROG,
        description="fastgmm: fast Gaussian mixture models, a drop-in for "
        "sklearn.mixture.GaussianMixture.",
        epilog="Run 'fastgmm COMMAND --help' for the options of a command. "
        "Set FASTGMM_DEBUG=1 to see tracebacks.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv=None):
    """Run the ``fastgmm`` command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 success, 1 failure, 2 usage error, 130 interrupted.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already reported
        return exc.code if isinstance(exc.code, int) else 2
    try:
        status = int(args.run(args) or 0)
        sys.stdout.flush()  # surface a broken pipe here, not at interpreter exit
        return status
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `fastgmm demo | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:
        if os.environ.get("FASTGMM_DEBUG", "0") not in ("", "0"):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1
