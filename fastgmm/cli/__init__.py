"""The ``fastgmm`` command line.

Each subcommand is one module of :mod:`fastgmm.cli.commands`, whose ``register(sub)``
adds its parser to the ``sub`` action returned by ``add_subparsers`` and binds its
handler with ``set_defaults(run=run)``; ``run(args)`` takes the parsed namespace and
returns an exit status. To add a subcommand, write such a module and list it in
:data:`fastgmm.cli.commands.COMMANDS`. Shared pieces: :mod:`~fastgmm.cli.args`
(argument groups and checked option types, fitting, saving), :mod:`~fastgmm.cli.data`
(reading DATA), :mod:`~fastgmm.cli.outputs` (outputs checked before the work,
written atomically), :mod:`~fastgmm.cli.tables` (tables and the model sidecar),
:mod:`~fastgmm.cli.progress`, :mod:`~fastgmm.cli.images`.

Only the standard library is imported at module level, so ``fastgmm --help`` is
fast; NumPy, Numba, scikit-learn and the kernels are imported by the handlers.

Exit status: 0 on success, 1 when a command fails, 2 on a usage error, 130 when
interrupted. Errors are reported as one line on stderr; set ``FASTGMM_DEBUG=1``
to get the full traceback instead.
"""

import argparse
import os
import sys

from fastgmm.cli import commands

PROG = "fastgmm"


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that reports usage errors on a single line."""

    def error(self, message):
        """Print ``prog: error: message`` and a help hint on one line; exit 2."""
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


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
    for command in commands.COMMANDS:
        command.register(sub)
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
