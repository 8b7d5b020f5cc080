"""``fastgmm bench``: fastgmm beside scikit-learn.

From a source checkout the full harness ``benchmarks/compare.py`` is used
(:func:`compare_script`, :func:`load_compare`). Installed without it,
:func:`run_builtin` prints a small side-by-side table: for each covariance type both
libraries fit the same data from the same starting parameters (so they follow the
same EM path and the times compare like for like), best of ``repeats`` fits.
"""

import importlib.util
import sys
import time
import warnings
from pathlib import Path

import numpy as np


def sklearn_models():
    """Covariance models scikit-learn has too: the only ones both can be timed on."""
    from ..model.covariance import MODELS

    return tuple(m.name for m in MODELS if m.sklearn)


def compare_script():
    """Path of ``benchmarks/compare.py`` next to the package, or None."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "compare.py"
    return path if path.is_file() else None


def load_compare(path):
    """Import ``compare.py`` from ``path`` as a module (it has ``main(argv)``)."""
    spec = importlib.util.spec_from_file_location("fastgmm_bench_compare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data(n, d, k, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(k, d))
    X = centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))
    return np.ascontiguousarray(X)


def _best_fit(cls, X, params, repeats):
    best, model = np.inf, None
    for _ in range(repeats):
        model = cls(**params)
        t0 = time.perf_counter()
        model.fit(X)
        best = min(best, time.perf_counter() - t0)
        time.sleep(0.1)  # let BLAS worker threads of the other library go idle
    return model, best


def run_builtin(n=100_000, d=3, k=8, repeats=3, seed=0, out=None):
    """Time fastgmm and scikit-learn fits per covariance type; print a table.

    Parameters
    ----------
    n, d, k : int
        Points, features and components of the synthetic blobs.
    repeats : int
        Each fit is repeated; the best time is reported.
    seed : int
        Data seed and random_state.
    out : file-like, optional
        Default ``sys.stdout``.

    Returns
    -------
    list of dict
        Per covariance type: ``fastgmm_s``, ``sklearn_s``, ``speedup``, ``n_iter``
        (fastgmm, scikit-learn) and ``lower_bound_diff``.
    """
    out = sys.stdout if out is None else out
    X = _data(n, d, k, seed)
    say = lambda line: print(line, file=out)
    say(
        f"fastgmm vs scikit-learn: n={n} d={d} K={k}, same starting parameters, "
        f"best of {repeats} fits"
    )
    say(
        "| covariance | fastgmm s | sklearn s | speed-up | iterations | |lower bound diff| |"
    )
    say("|---|---:|---:|---:|---:|---:|")
    rows = []
    for cov in sklearn_models():
        r = _compare(X, k, cov, seed, repeats)
        rows.append(r)
        say(
            f"| {cov} | {r['fastgmm_s']:.3f} | {r['sklearn_s']:.3f} | "
            f"{r['speedup']:.1f}x | {r['n_iter'][0]} / {r['n_iter'][1]} | "
            f"{r['lower_bound_diff']:.1e} |"
        )
    return rows


def _compare(X, k, cov, seed, repeats):
    """One covariance type: both libraries from the same start, best of repeats."""
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    from fastgmm import GaussianMixture

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = GaussianMixture(k, covariance_type=cov, max_iter=3, random_state=seed)
        start.fit(X[:20_000])  # also warms the JIT for this type
    params = {
        "n_components": k,
        "covariance_type": cov,
        "random_state": seed,
        "weights_init": start.weights_,
        "means_init": start.means_,
        "precisions_init": start.precisions_,
    }
    fast, t_fast = _best_fit(GaussianMixture, X, params, repeats)
    sk, t_sk = _best_fit(SkGaussianMixture, X, params, repeats)
    return {
        "covariance_type": cov,
        "fastgmm_s": t_fast,
        "sklearn_s": t_sk,
        "speedup": t_sk / t_fast,
        "n_iter": (fast.n_iter_, sk.n_iter_),
        "lower_bound_diff": abs(fast.lower_bound_ - sk.lower_bound_),
    }
