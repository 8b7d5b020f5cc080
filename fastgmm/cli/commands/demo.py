"""``fastgmm demo``: fit the built-in worked examples (see :mod:`fastgmm.cli.demo`)."""


def register(sub):
    """Add the ``demo`` parser to ``sub``."""
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
    p.set_defaults(run=run)


def run(args):
    """Print the demo's reports; return 0."""
    from fastgmm.cli.demo import run_demo

    run_demo(compare=args.compare, seed=args.seed)
    return 0
