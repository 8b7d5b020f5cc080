"""The demo's large case: a million pixels of a synthetic photograph, segmented.

:func:`make_photo` paints a 1000 x 1000 landscape in eight colour regions with
camera-like noise. :func:`run_pixels` fits a mixture of its RGB values, shows a
default fit, then fits fastgmm and scikit-learn side by side from the *same*
starting parameters, where both run the same EM iterations: the lower bounds agree
to rounding and the time ratio is the speed-up on equal work. It writes a picture
of the image and its segments when matplotlib is installed.

Heavy imports (the kernels, scikit-learn, matplotlib) happen inside the functions.
"""

import os
import time
import warnings

import numpy as np

#: the painted regions: name and RGB colour in [0, 1]
REGIONS = (
    ("sky", (0.45, 0.65, 0.92)),
    ("sun", (1.00, 0.93, 0.30)),
    ("hills", (0.28, 0.50, 0.30)),
    ("meadow", (0.58, 0.74, 0.28)),
    ("lake", (0.14, 0.34, 0.62)),
    ("path", (0.62, 0.48, 0.38)),
    ("roof", (0.70, 0.16, 0.12)),
    ("wall", (0.93, 0.90, 0.84)),
)
#: EM iterations of the side-by-side fits (tol=0: exactly this many on both sides)
ITERATIONS = 3
#: pixels of the sample the shared starting parameters are fitted on
START_SAMPLE = 20_000
#: k-means starts of the fit that segments the photograph (one can merge two small
#: regions: a local optimum)
N_INIT = 3


def make_photo(size=1000, seed=0, noise=0.035):
    """A synthetic landscape photograph and the region of every pixel.

    Parameters
    ----------
    size : int, default=1000
        Height and width in pixels.
    seed : int, default=0
        Seed of the pixel noise.
    noise : float, default=0.035
        Standard deviation of the per-pixel colour noise (0-1 scale).

    Returns
    -------
    image : ndarray of shape (size, size, 3), uint8
    regions : ndarray of shape (size, size), int
        Index into :data:`REGIONS` of each pixel.
    """
    y, x = np.mgrid[0:size, 0:size] / size
    regions = np.zeros((size, size), dtype=np.int64)  # sky
    paint = (
        (1, (x - 0.78) ** 2 + (y - 0.18) ** 2 < 0.07**2),
        (2, y > 0.45 + 0.06 * np.sin(7 * x)),
        (3, y > 0.62 + 0.03 * np.sin(11 * x + 1)),
        (4, ((x - 0.30) / 0.18) ** 2 + ((y - 0.80) / 0.08) ** 2 < 1),
        (
            5,
            (y > 0.62)
            & (np.abs(x - 0.66 - 0.3 * (y - 0.62)) < 0.02 + 0.1 * (y - 0.62)),
        ),
        (7, (x > 0.60) & (x < 0.78) & (y > 0.50) & (y < 0.63)),
        (6, (y > 0.40) & (y <= 0.50) & (np.abs(x - 0.69) < 0.11 * (y - 0.40) / 0.10)),
    )
    for index, where in paint:
        regions[where] = index
    colours = np.array([c for _, c in REGIONS])
    rgb = colours[regions]
    rgb[regions == 0] += 0.03 * (y[regions == 0, None] - 0.2)  # a brighter horizon
    rgb += np.random.default_rng(seed).normal(scale=noise, size=rgb.shape)
    image = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    return image, regions


def prepare(seed=0, size=1000, compare=True):
    """Import the scikit-learn and SciPy modules the demo uses and paint the
    photograph (:func:`make_photo`); return ``(image, regions)``.

    None of it needs fastgmm's kernels: on a first run the demo does it while the
    second process still compiles (see ``fastgmm._warmup.compile_kernels``).
    """
    import scipy.optimize  # noqa: F401  (the examples' label matching)
    import sklearn.datasets  # noqa: F401
    import sklearn.metrics  # noqa: F401

    if compare:
        import sklearn.mixture  # noqa: F401
    return make_photo(size, seed=seed)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():  # fixed-iteration fits do not converge
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def _start(X, n_components, seed):
    """Shared starting parameters: a short fit on a seeded sample of the pixels."""
    from fastgmm.mixture import GaussianMixture

    rows = np.random.default_rng(seed).choice(len(X), START_SAMPLE, replace=False)
    gm = GaussianMixture(n_components, max_iter=10, random_state=seed)
    gm = _quiet(gm.fit, X[np.sort(rows)])
    return {
        "weights_init": gm.weights_,
        "means_init": gm.means_,
        "precisions_init": gm.precisions_,
    }


def _machine_note():
    """A note when other processes keep the cores busy (times are then inflated)."""
    try:
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
    except (AttributeError, OSError):
        return None
    if load < 0.75 * cores:
        return None
    return (
        f"the machine is busy (load {load:.1f} on {cores} cores): both times are "
        "inflated, scikit-learn's threaded BLAS most: not a quiet-machine ratio"
    )


def side_by_side(X, start, n_components, seed, status):
    """fastgmm, scikit-learn, fastgmm from the same start (ITERATIONS each, tol=0).

    Returns a dict: ``fast_times`` (the runs just before and after scikit-learn's),
    ``sk_time``, ``lower_bound``, ``sk_lower_bound``, ``agree`` (share of equal
    labels) and ``speedup`` (scikit-learn's time over the mean of fastgmm's two).
    scikit-learn's labels are those of its timed ``fit_predict`` (its ``fit`` is
    ``fit_predict`` without returning them: the same work), equal to
    ``fit(X).predict(X)``; fastgmm's come from ``predict`` after its timed ``fit``.
    """
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    from fastgmm.mixture import GaussianMixture

    params = dict(
        n_components=n_components, tol=0.0, max_iter=ITERATIONS, random_state=seed
    )
    fast = GaussianMixture(**params, **start)
    # scikit-learn runs its init before applying the given start: the cheapest one
    sk = SkGaussianMixture(**params, **start, init_params="random_from_data")
    _quiet(fast.fit, X)  # first run: load the kernels, touch the memory

    def run(fit, who):
        status(f"{who}: {ITERATIONS} EM iterations on {len(X):,} pixels")
        return _timed(lambda: _quiet(fit, X))

    # scikit-learn's fit is its fit_predict (the labels come with it); fastgmm's
    # fit does not label the points: predict after, untimed
    before = run(fast.fit, "fastgmm")[1]
    sk_labels, sk_time = run(sk.fit_predict, "scikit-learn")
    times = [before, sk_time, run(fast.fit, "fastgmm")[1]]
    status("comparing the labels of every pixel")
    agree = float(np.mean(fast.predict(X) == sk_labels))
    return {
        "fast_times": [times[0], times[2]],
        "sk_time": times[1],
        "lower_bound": float(fast.lower_bound_),
        "sk_lower_bound": float(sk.lower_bound_),
        "agree": agree,
        "speedup": times[1] / (0.5 * (times[0] + times[2])),
    }


def _report_side_by_side(say, res):
    say(
        f"  from the same start (a short fit on {START_SAMPLE:,} pixels), "
        f"{ITERATIONS} EM iterations each (tol=0), default threads:"
    )
    fast = 0.5 * sum(res["fast_times"])
    say(f"    {'':14}{'fit time':>10}  {'lower_bound_':>20}")
    say(f"    {'fastgmm':14}{fast:9.3f}s  {res['lower_bound']:20.14f}")
    say(
        f"    {'scikit-learn':14}{res['sk_time']:9.3f}s  {res['sk_lower_bound']:20.14f}"
    )
    runs = ", ".join(f"{t:.3f} s" for t in res["fast_times"])
    say(
        f"  speed-up {res['speedup']:.1f}x (fastgmm timed just before and after "
        f"scikit-learn: {runs})"
    )
    diff = abs(res["lower_bound"] - res["sk_lower_bound"])
    say(
        f"  |lower-bound difference| {diff:.1e}; labels agree on "
        f"{100 * res['agree']:.3f}% of pixels: from the same start both libraries "
        "run the same EM iterations (equal to ~1e-12)"
    )


def _picture(path, image, segmented, n_components, say):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say(
            f"  picture: skipped ({path} needs matplotlib: pip install 'fastgmm[plot]')"
        )
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.2), constrained_layout=True)
    for ax, img, title in (
        (axes[0], image, f"{image.shape[0] * image.shape[1]:,} pixels"),
        (axes[1], segmented, f"{n_components} segments (each pixel: its mean colour)"),
    ):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(title, fontsize="medium")
        ax.set_axis_off()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    say(f"  picture: {os.path.abspath(path)} (the image and its segments)")
    return path


def run_pixels(
    say, status, compare=True, seed=0, picture="fastgmm-demo.png", size=1000,
    photo=None,
):  # fmt: skip
    """Print the large case (see the module docstring); return its numbers.

    ``status(text or None)`` describes long steps (the command line draws it);
    ``size`` is the photograph's height and width; ``photo``, ``(image, regions)``
    of ``make_photo(size, seed)`` when already painted (see :func:`prepare`).
    """
    from sklearn.metrics import adjusted_rand_score

    from fastgmm.mixture import GaussianMixture

    k = len(REGIONS)
    if photo is None:
        status(f"painting a {size} x {size} photograph")
        photo = make_photo(size, seed=seed)
    image, regions = photo
    X = image.reshape(-1, 3) / 255.0
    say(
        f"== pixels: a synthetic {size} x {size} photograph, {len(X):,} RGB pixels, "
        f"K={k}, full covariance =="
    )
    status(f"fastgmm: fitting {len(X):,} pixels, best of {N_INIT} k-means starts")
    gm = GaussianMixture(k, n_init=N_INIT, random_state=seed)
    gm, seconds = _timed(lambda: _quiet(gm.fit, X))
    labels = gm.predict(X)
    res = {"time": seconds, "n_iter": int(gm.n_iter_)}
    res["ari"] = float(adjusted_rand_score(regions.ravel(), labels))
    say(
        f"  fastgmm fit (default settings, but the best of n_init={N_INIT} k-means "
        f"starts): {seconds:.2f} s, {gm.n_iter_} EM iterations"
    )
    say(
        f"  adjusted Rand index of the segments vs the {k} painted regions: "
        f"{res['ari']:.3f}"
    )
    if compare:
        status("fastgmm: the shared starting parameters")
        res.update(side_by_side(X, _start(X, k, seed), k, seed, status))
        _report_side_by_side(say, res)
        note = _machine_note()  # it qualifies the ratio: only with a comparison
        if note:
            say(f"  ({note})")
    if picture:
        status(f"drawing {picture}")
        colours = np.clip(np.round(gm.means_ * 255), 0, 255).astype(np.uint8)
        segmented = colours[labels].reshape(image.shape)
        res["picture"] = _picture(picture, image, segmented, k, say)
    status(None)
    return res
