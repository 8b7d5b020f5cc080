"""``fastgmm bench``: time fastgmm against scikit-learn (see :mod:`fastgmm.cli.bench`)."""

import sys

from fastgmm.cli.args import make_progress, one_line_warnings


def register(sub):
    """Add the ``bench`` parser to ``sub``."""
    p = sub.add_parser(
        "bench",
        help="time fastgmm against scikit-learn, side by side",
        description="Run benchmarks/compare.py (--quick unless --full) when fastgmm "
        "runs from a source checkout; otherwise, or with --builtin, a small built-in "
        "comparison: both libraries start from the same parameters, per covariance "
        "type.",
    )
    p.add_argument("--full", action="store_true", help="compare.py without --quick")
    p.add_argument("--builtin", action="store_true", help="use the built-in version")
    p.add_argument("--n", type=int, default=100_000, help="built-in: points (100000)")
    p.add_argument("--d", type=int, default=3, help="built-in: features (3)")
    p.add_argument("-k", type=int, default=8, help="built-in: components (8)")
    p.add_argument("--repeats", type=int, default=3, help="built-in: best of (3)")
    p.set_defaults(run=run)


def run(args):
    """Run compare.py from a checkout, else (or with --builtin) the built-in table."""
    from fastgmm.cli import bench as _bench

    script = None if args.builtin else _bench.compare_script()
    if script is not None:
        print(f"running {script}{'' if args.full else ' --quick'}", file=sys.stderr)
        _bench.load_compare(script).main([] if args.full else ["--quick"])
        return 0
    with one_line_warnings(make_progress(args)):
        _bench.run_builtin(n=args.n, d=args.d, k=args.k, repeats=args.repeats)
    return 0
