"""Shared helpers of the streaming, online and Dask tests: test data, a common
starting point, and "the same fit" to a relative tolerance."""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


def mixture_data(
    rng, n=6000, centres=((0.0, 0.0, 0.0), (6.0, 1.0, 0.0), (1.0, 7.0, 3.0))
):
    """n rows from well-separated anisotropic Gaussians, shuffled (float64)."""
    centres = np.asarray(centres)
    k, d = centres.shape
    labels = rng.integers(k, size=n)
    scales = 0.5 + rng.uniform(size=(k, d))
    return centres[labels] + rng.normal(size=(n, d)) * scales[labels]


def start_from(X, n_components, covariance_type, sample_weight=None):
    """weights_init / means_init / precisions_init from a short in-memory fit, so
    that every system compared starts from exactly the same parameters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = GaussianMixture(
            n_components, covariance_type=covariance_type, max_iter=2, random_state=0
        ).fit(X, sample_weight=sample_weight)
    return {
        "weights_init": gm.weights_,
        "means_init": gm.means_,
        "precisions_init": gm.precisions_,
    }


def fixed_iterations(n_components, covariance_type, start, max_iter=15):
    """An estimator with tol=0: every system runs exactly max_iter iterations."""
    return GaussianMixture(
        n_components,
        covariance_type=covariance_type,
        tol=0,
        max_iter=max_iter,
        **start,
    )


def fit_quietly(gm, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gm.fit(X, **kwargs)


def relative_error(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-300))


def assert_same_fit(expected, actual, rtol=1e-10):
    """Parameters, lower bound and its trajectory agree to ``rtol`` (relative to the
    largest entry of each array), with the same iteration count."""
    for name in FITTED:
        a, b = getattr(expected, name), getattr(actual, name)
        assert a.shape == b.shape and a.dtype == b.dtype, name
        assert relative_error(a, b) <= rtol, (name, relative_error(a, b))
    assert actual.n_iter_ == expected.n_iter_
    assert actual.converged_ == expected.converged_
    assert abs(actual.lower_bound_ - expected.lower_bound_) <= rtol * abs(
        expected.lower_bound_
    )
    assert relative_error(expected.lower_bounds_, actual.lower_bounds_) <= rtol


def fitted_state(gm):
    """A deep copy of an estimator's attributes (to check that a failed call left
    them unchanged)."""
    return {
        k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in vars(gm).items()
    }


def assert_state_unchanged(before, gm):
    after = vars(gm)
    assert set(after) == set(before)
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[key], value, err_msg=key)
        elif key != "_online_state":
            assert after[key] == value, key
