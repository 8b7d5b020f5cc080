"""``fastgmm warmup``: compile the JIT kernels, or load them from the on-disk cache."""


def register(sub):
    """Add the ``warmup`` parser to ``sub``."""
    p = sub.add_parser(
        "warmup",
        help="compile the JIT kernels once, or load them from the on-disk cache",
        description="Compile fastgmm's Numba kernels, or load them from the "
        "on-disk cache, for every path a default install uses (fit, predict, "
        "predict_proba, score_samples; float32 and float64; every covariance "
        "model; sample weights; 16+ features; every start; image segmentation), "
        "so that later runs start at full speed. On a terminal a status line "
        "shows the step and the kernel compiling.",
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="print one line per step"
    )
    p.set_defaults(run=run)


def run(args):
    """Warm the kernels up and say how long it took; return 0."""
    import time

    from fastgmm._jit import cache_dir, watch_compiles
    from fastgmm._warmup import warmup

    notice = getattr(args, "compile_notice", None)  # set by fastgmm.cli.main
    compiled = []

    def on_compile(event, name, seconds):
        if event == "end":
            compiled.append(name)

    say = print if notice is None else notice.println

    def progress(step, n_steps, label, seconds):
        if seconds is not None:
            if args.verbose:
                say(f"  [{step}/{n_steps}] {label}: {seconds:.1f} s")
        elif notice is not None:
            notice.label = f"warmup {step}/{n_steps}"
            notice.status = f"fastgmm: warmup {step}/{n_steps}: {label}"

    say(
        "fastgmm: warming up the kernels (compiling them takes a minute or two the "
        "first time; loading them from the cache, about a second)"
    )
    if notice is not None:
        notice.show_summary = False  # the last line below says it

    unwatch = watch_compiles(on_compile)
    t0 = time.perf_counter()
    try:
        warmup(progress=progress)
    finally:
        unwatch()
        if notice is not None:
            notice.status = None
    seconds = time.perf_counter() - t0
    where = cache_dir()
    if where is None:
        where = "nowhere: no writable cache folder, set FASTGMM_CACHE_DIR"
    if compiled:
        done = f"compiled {len(compiled)} kernels, cached in {where}"
    else:
        done = f"every kernel loaded from the cache in {where}"
    print(f"fastgmm: kernels ready in {seconds:.1f} s: {done}")
    return 0
