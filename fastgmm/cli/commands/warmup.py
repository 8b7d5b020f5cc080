"""``fastgmm warmup``: compile the JIT kernels, or load them from the on-disk cache."""


def register(sub):
    """Add the ``warmup`` parser to ``sub``."""
    p = sub.add_parser(
        "warmup",
        help="compile the JIT kernels, or load them from the on-disk cache",
        description="Compile fastgmm's Numba kernels, or load them from the "
        "on-disk cache, so that later fits start at full speed.",
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="report each kernel set"
    )
    p.set_defaults(run=run)


def run(args):
    """Warm the kernels up and say how long it took; return 0."""
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
