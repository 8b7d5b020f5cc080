"""``fastgmm demo``: the worked examples and a million pixels (see :mod:`fastgmm.cli.demo`)."""


def register(sub):
    """Add the ``demo`` parser to ``sub``."""
    p = sub.add_parser(
        "demo",
        help="worked examples (heights, iris, customers) and a million pixels",
        description="Fit the worked examples (heights, iris, RFM customers) and show "
        "how to read the models: the fits against the truth, the BIC-chosen K, the "
        "uncertain points. Then segment a synthetic million-pixel photograph and, "
        "unless --no-compare, fit it with scikit-learn too, from the same starting "
        "parameters: both run the same EM iterations, so the lower bounds agree and "
        "the time ratio is the speed-up on equal work.",
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
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--picture",
        metavar="PATH",
        default="fastgmm-demo.png",
        help="where to write the picture of the segmented photograph (needs "
        "matplotlib; default: fastgmm-demo.png)",
    )
    g.add_argument(
        "--no-picture",
        dest="picture",
        action="store_const",
        const=None,
        help="do not write the picture",
    )
    p.set_defaults(run=run)


def run(args):
    """Print the demo's reports; return 0."""
    from fastgmm.cli.demo import run_demo

    notice = getattr(args, "compile_notice", None)  # set by fastgmm.cli.main
    if notice is None:
        run_demo(compare=args.compare, seed=args.seed, picture=args.picture)
        return 0

    def status(text):
        notice.status = None if text is None else f"fastgmm demo: {text}"

    run_demo(
        out=notice.println,
        compare=args.compare,
        seed=args.seed,
        picture=args.picture,
        status=status,
    )
    return 0
