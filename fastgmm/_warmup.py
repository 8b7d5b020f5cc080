"""Compile (or load from the on-disk cache) every kernel a default install uses."""

import warnings
from time import perf_counter


def _rows(rng, n, d, dtype):
    """``n`` points of ``d`` features around two centres (not degenerate)."""
    import numpy as np

    X = rng.normal(size=(n, d))
    X[: n // 2] += 4.0
    return np.ascontiguousarray(X, dtype=dtype)


def _fit_and_score(X, cov_type, weights=None, init="kmeans", n_components=2):
    from .mixture import GaussianMixture

    gm = GaussianMixture(
        n_components,
        covariance_type=cov_type,
        init_params=init,
        random_state=0,
        max_iter=2,
    )
    gm.fit(X, sample_weight=weights)
    gm.predict(X), gm.predict_proba(X), gm.score_samples(X)


def _first_fit(rng):
    compile_kernels()
    _fit_and_score(_rows(rng, 300, 3, "float64"), "full")


def _every_model(rng, dtype):
    from .mixture import GaussianMixture
    from .model.covariance import MODELS

    X = _rows(rng, 300, 3, dtype)
    for model in MODELS:
        for weights in (None, rng.uniform(0.5, 2.0, len(X))):
            _fit_and_score(X, model.name, weights)
    online = GaussianMixture(2, random_state=0)
    online.partial_fit(X), online.partial_fit(X[:100])


def _blas_branches(rng):
    from .kernels.fullquad import QUAD_MAX_D
    from .kernels.logdensity import GEMM_MIN_D

    # the expanded form (d <= QUAD_MAX_D) and the column groups of fullgemm; the
    # diagonal kinds' pass from d = 4 (kernels.diagpass)
    for d in (GEMM_MIN_D, 2 * QUAD_MAX_D):
        X = _rows(rng, 2 * d + 300, d, "float64")
        for cov_type in ("full", "tied", "diag"):
            _fit_and_score(X, cov_type)
    _fit_and_score(X.astype("float32"), "diag")  # float32 beyond lowd32's d


def _inits(rng):
    X = _rows(rng, 300, 2, "float64")
    for init in ("k-means++", "random", "random_from_data"):
        _fit_and_score(X, "full", init=init)


def _segment(rng):
    import numpy as np

    from .segmentation import segment

    image = rng.integers(0, 256, size=(16, 16, 3)).astype(np.uint8)
    segment(image, 2, return_image=True, return_confidence=True, max_iter=2)
    segment(image, 2, xy=0.5, ignore=image[..., 0] < 8, max_iter=2)


#: (label, step(rng)): the paths a default install uses. Every float kernel compiles
#: once for float32 and float64 data and every covariance model (the first step
#: compiles them all); the later steps check that nothing else needs compiling.
STEPS = (
    ("fit and score float64 data from a k-means start", _first_fit),
    (
        "float64: every covariance model, weighted or not, partial_fit",
        lambda rng: _every_model(rng, "float64"),
    ),
    (
        "float32: every covariance model, weighted or not, partial_fit",
        lambda rng: _every_model(rng, "float32"),
    ),
    (
        "16+ features: the BLAS paths of full and tied covariances, the diagonal pass",
        _blas_branches,
    ),
    ("the other starts: k-means++, random, random_from_data", _inits),
    ("image segmentation: colour tables, pixel labels", _segment),
)


def warmup(verbose=False, *, progress=None):
    """Compile fastgmm's kernels, or load them from the on-disk cache, for every path a
    default install uses.

    Covers ``fit`` (every covariance model, k-means and the other starts, with and
    without sample weights, ``partial_fit``), ``predict``, ``predict_proba`` and
    ``score_samples`` for float32 and float64 data, the BLAS paths from 16 features
    on, and image segmentation. Run it once after installing (``fastgmm warmup``) or
    in a container build; later processes load the compiled code from the cache in
    about a second instead of compiling for tens of seconds. On a Dask cluster:
    ``client.run(fastgmm.warmup)``.

    Parameters
    ----------
    verbose : bool, default=False
        Print one line per step (what it covered, how long it took).
    progress : callable, optional
        Called as ``progress(step, n_steps, label, None)`` before each step
        (1-based) and ``progress(step, n_steps, label, seconds)`` after it.

    Returns
    -------
    seconds : float
        Wall time taken.

    Notes
    -----
    Compiles are also reported to the ``fastgmm`` logger (INFO), for example after
    ``logging.basicConfig(level="INFO")``.
    """
    import numpy as np

    start = perf_counter()
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():  # tiny two-iteration fits need not converge
        warnings.simplefilter("ignore")
        for i, (label, step) in enumerate(STEPS, 1):
            if progress is not None:
                progress(i, len(STEPS), label, None)
            t0 = perf_counter()
            step(rng)
            seconds = perf_counter() - t0
            if progress is not None:
                progress(i, len(STEPS), label, seconds)
            if verbose:
                print(f"  [{i}/{len(STEPS)}] {label}: {seconds:.1f} s")
    return perf_counter() - start


# -------------------------------------------- the two big kernels, two processes at once
def _compile_mixture():
    """Compile (or load) the mixture pass: one call with tiny inputs."""
    import numpy as np

    from .kernels.passes import em_pass

    X, k = np.zeros((4, 2)), 2
    prec = np.tile(np.eye(2), (k, 1, 1))
    em_pass(X, np.empty(0), 0, np.zeros(k), X[:k], prec, X[:k], 128)


def _compile_kmeans(dtypes=("float64", "float32")):
    """Compile (or load) the k-means start's kernels (seeding, Lloyd, labels and
    the hard statistics) for each of ``dtypes``: one tiny default start each."""
    from dataclasses import replace

    import numpy as np

    from .engine.data import make_data
    from .engine.init import initial_stats
    from .model import covariance
    from .model.fused import closed_params
    from .model.params import kernel_inputs

    model = covariance.get("full")
    for dtype in map(np.dtype, dtypes):
        X = (np.arange(16).reshape(8, 2) % 5) * np.arange(1, 9)[:, None]
        X = X.astype(dtype)
        data = make_data(X, None, 2, model)
        initial_stats(data, 2, model, "kmeans", np.random.RandomState(0))
    # the M-step of the closed forms (scikit-learn's models) with the next E-step's
    # inputs, and those inputs alone, for a fitted model's parameters (kernels.mstep;
    # cholesky.prec_chol_stack is compiled into the M-step, and from Python only by
    # the NumPy M-step: repairs, mclust's models, a prior)
    stats = (np.ones(2), np.zeros((2, 2)), np.tile(np.eye(2), (2, 1, 1)))
    params = closed_params(model, stats, np.zeros((2, 2)), 1e-6)
    kernel_inputs(replace(params))  # (a copy: without the M-step's inputs)


def kmeans_kernels():
    """The parallel k-means kernels a default start uses (for cache checks)."""
    from .kernels import kmeans, seeding

    return (kmeans.lloyd_run, seeding.plusplus_run, kmeans.label_stats)


#: what each of the two compiles is called in status lines
COMPILES = {"mixture": "the mixture pass", "kmeans": "the k-means kernels"}


def compile_kernels(
    parallel=True, status=None, dtypes=("float64", "float32"), meanwhile=None
):
    """Compile (or load from the cache) the two kernels every fit uses: the mixture
    pass (once for every dtype and covariance model) and the k-means kernels (once
    per data dtype, for each of ``dtypes``), in two processes at once when both need
    compiling, the machine has two cores or more and the on-disk cache (which the
    processes share) is on.

    The longer compile goes to the second process, so that this process's shorter
    one and then ``meanwhile()`` overlap it: the k-means kernels take about two
    thirds of the mixture pass's compile time per dtype (10 s and 14-15 s of CPU
    here), so the second process compiles the mixture pass for one dtype and the
    k-means kernels for two. ``meanwhile()``, if given, is called once after this
    process's compiles and before waiting for the second process: the caller's
    other work, run there rather than in a thread, where it would hold up the
    compile (Numba returns to Python between thousands of LLVM calls, each time
    waiting for the GIL while another thread holds it; measured: a thread importing
    scikit-learn beside the mixture pass's compile made it 1.6-5.8 s slower).

    ``status(text or None)`` hears about the second process. Returns the number of
    kernels that were not in the cache (0, 1 or 2).
    """
    import os
    import subprocess
    import sys

    from ._jit import CACHE, cache_dir, is_cached
    from .kernels.passes import mixture_pass

    todo = [not is_cached(mixture_pass), not all(map(is_cached, kmeans_kernels()))]
    compiles = {
        "mixture": _compile_mixture,
        "kmeans": lambda: _compile_kmeans(dtypes),
    }
    away = "mixture" if len(dtypes) < 2 else "kmeans"
    code = {
        "mixture": "w._compile_mixture()",
        "kmeans": f"w._compile_kmeans({tuple(dtypes)!r})",
    }[away]
    child = None
    if parallel and all(todo) and (os.cpu_count() or 1) > 1:
        if CACHE and cache_dir() is not None:
            child = subprocess.Popen(
                [sys.executable, "-c", "import fastgmm._warmup as w; " + code],
                env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if status is not None:
                status(f"compiling {COMPILES[away]} in a second process")
    try:
        for name in ("mixture", "kmeans"):
            if child is None or name != away:
                compiles[name]()
        if meanwhile is not None:
            meanwhile()
    except BaseException:  # an error or Ctrl-C here: leave no compiling process behind
        if child is not None:
            child.kill()
            child.wait()
        raise
    if child is not None:
        if status is not None:
            status(f"waiting for {COMPILES[away]} (second process)")
        child.wait()
        compiles[away]()  # load it from the cache (compiled here if the child failed)
    if status is not None:
        status(None)
    return sum(todo)
