"""pytest-benchmark benchmarks of fastgmm's kernels and of a whole fit.

Skipped in normal test runs (``--benchmark-skip`` in pyproject); run them with::

    python -m pytest benchmarks/ --benchmark-only

Problems: n=200k points, (d=3, K=8) and (d=16, K=16), float64, blob data. Kernel
arguments are built exactly as fastgmm's EM driver builds them (``make_data``,
``kernel_inputs``), from a model fitted on a subsample. The JIT is warmed (every
kernel compiled or loaded from the on-disk cache, and each benchmarked call made once)
before anything is timed; all calls run inside ``fastgmm.threads()`` as ``fit`` does
(Numba's default thread count, BLAS pinned to one thread).
"""

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

try:
    import fastgmm
except ImportError:  # a checkout without PYTHONPATH / editable install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import fastgmm

from fastgmm.engine import init as _init
from fastgmm.engine.data import make_data
from fastgmm.kernels import passes as _estep
from fastgmm.model.params import kernel_inputs

#: name -> (n, d, K)
SHAPES = {"d3-K8": (200_000, 3, 8), "d16-K16": (200_000, 16, 16)}
#: one covariance type per kernel kind (spherical runs the diag kernel)
KINDS = ("full", "tied", "diag")


def make_blobs(n, d, n_components, seed=0):
    """K Gaussian blobs with random full covariances, rows shuffled (float64)."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, rng.dirichlet(np.full(n_components, 2.0)))
    parts = []
    for count in counts:
        centre = rng.normal(scale=4.0, size=d)
        A = rng.normal(scale=1.0 / np.sqrt(d), size=(d, d))
        parts.append(centre + rng.standard_normal((count, d)) @ A.T)
    X = np.vstack(parts)
    return np.ascontiguousarray(X[rng.permutation(n)])


@pytest.fixture(scope="session", autouse=True)
def warm_jit():
    """Compile (or load from the cache) every kernel, float32 and float64, once."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warm-up fits stop after two iterations
        fastgmm.warmup()
    sys.stderr.write(f"\nfastgmm JIT warm-up: {time.perf_counter() - start:.1f} s\n")


@pytest.fixture(scope="module", autouse=True)
def pinned_threads():
    """Numba's default threads, BLAS on one thread: the setting ``fit`` uses."""
    with fastgmm.threads():
        yield


@pytest.fixture(scope="module", params=list(SHAPES))
def problem(request):
    """(shape name, X, K)."""
    n, d, n_components = SHAPES[request.param]
    return request.param, make_blobs(n, d, n_components), n_components


_MODELS = {}


def model_params(X, n_components, cov_type):
    """Float64 mixture parameters (the driver's Params) fitted on a 20k subsample."""
    key = (X.shape, n_components, cov_type)
    if key not in _MODELS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm = fastgmm.GaussianMixture(
                n_components, covariance_type=cov_type, max_iter=10, random_state=0
            ).fit(X[:20_000])
        _MODELS[key] = gm._params()
    return _MODELS[key]


def kernel_args(X, n_components, cov_type):
    """(data, kind, const, loc, prec, ref) as ``_em.em_step`` builds them."""
    params = model_params(X, n_components, cov_type)
    data = make_data(X, None, n_components, cov_type)
    kind, const, loc, prec = kernel_inputs(params).astuple()
    ref = np.ascontiguousarray(params.means, dtype=np.float64)
    return data, kind, const, loc, prec, ref


def describe(benchmark, group, name, X, n_components, **extra):
    n, d = X.shape
    benchmark.group = f"{group} {name}"
    benchmark.extra_info.update(n=n, d=d, K=n_components, **extra)


@pytest.mark.parametrize("cov_type", KINDS)
def test_em_pass(benchmark, problem, cov_type):
    """One fused E-step + statistics pass (the whole per-iteration kernel work)."""
    name, X, n_components = problem
    data, kind, const, loc, prec, ref = kernel_args(X, n_components, cov_type)
    args = (data.X, data.sample_weight, kind, const, loc, prec, ref, data.chunk)
    _estep.em_pass(*args)
    describe(benchmark, "em_pass", name, X, n_components, kind=cov_type)
    ll, nk, _, _ = benchmark(_estep.em_pass, *args)
    assert np.isfinite(ll) and abs(nk.sum() - X.shape[0]) < 1e-6 * X.shape[0]


@pytest.mark.parametrize("cov_type", KINDS)
def test_score_pass(benchmark, problem, cov_type):
    """Per-point log-likelihood (the score_samples kernel), no responsibilities."""
    name, X, n_components = problem
    data, kind, const, loc, prec, _ = kernel_args(X, n_components, cov_type)
    out_lse = np.empty(X.shape[0])
    out_resp = np.empty((0, n_components))
    out_label = np.empty(0, np.int64)
    args = (X, kind, const, loc, prec, data.chunk, out_lse, out_resp, out_label)
    _estep.score_pass(*args)
    describe(benchmark, "score_pass", name, X, n_components, kind=cov_type)
    benchmark(_estep.score_pass, *args)
    assert np.all(np.isfinite(out_lse))


def test_kmeans_init(benchmark, problem):
    """The default initialisation: k-means++ seeding + Lloyd iterations (seed 0)."""
    name, X, n_components = problem
    data = make_data(X, None, n_components, "full")

    def run():
        return _init.kmeans(data, n_components, np.random.RandomState(0))

    run()
    describe(benchmark, "kmeans init", name, X, n_components)
    centers, labels = benchmark(run)
    assert centers.shape == (n_components, X.shape[1]) and labels.min() >= 0


def test_fit(benchmark, problem):
    """GaussianMixture(K, random_state=0).fit(X): default settings, full covariance."""
    name, X, n_components = problem

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fastgmm.GaussianMixture(n_components, random_state=0).fit(X)

    run()
    describe(benchmark, "fit", name, X, n_components)
    gm = benchmark.pedantic(run, rounds=5, iterations=1)
    benchmark.extra_info["n_iter"] = int(gm.n_iter_)
    assert np.isfinite(gm.lower_bound_)
