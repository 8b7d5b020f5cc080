"""Hypothesis property tests over shapes (n 5..300, d 1..5, K 1..4), dtypes, sample
weights and covariance types. The data come from a seeded NumPy generator drawn by
Hypothesis (max_examples is kept small by the profile in conftest.py)."""

import warnings

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from fastgmm import GaussianMixture
from fastgmm.exceptions import DegenerateComponentWarning
from fastgmm.kernels.lowd32 import use_lowd32
from fastgmm.model import covariance

from . import reference as ref


@st.composite
def problems(draw, dtypes=(np.float32, np.float64)):
    """(X, sample_weight or None, n_components, covariance_type, rng)."""
    n = draw(st.integers(5, 300))
    d = draw(st.integers(1, 5))
    n_components = draw(st.integers(1, min(4, n)))
    covariance_type = draw(st.sampled_from(ref.COVARIANCE_TYPES))
    dtype = draw(st.sampled_from(dtypes))
    weighting = draw(st.sampled_from(["none", "float", "integer"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w, means, covariances, _ = ref.random_params(rng, n_components, d, covariance_type)
    X = ref.sample_mixture(rng, n, w, means, covariances, covariance_type).astype(dtype)
    sw = {
        "none": lambda: None,
        "float": lambda: rng.uniform(0.1, 3.0, n),
        "integer": lambda: rng.integers(1, 4, n).astype(float),
    }[weighting]()
    return X, sw, n_components, covariance_type, rng


def user_start(X, n_components, covariance_type, rng):
    """A start the fit cannot change with row order: rows of X as means, the data's
    (regularised) precision for every component, equal weights."""
    Xf = X.astype(np.float64)
    d = X.shape[1]
    means = Xf[rng.choice(len(X), n_components, replace=False)]
    cov = np.atleast_2d(np.cov(Xf.T, bias=True)) + 0.1 * np.eye(d)
    prec = np.linalg.inv(cov)
    precisions = {
        "full": np.repeat(prec[None], n_components, axis=0),
        "tied": prec,
        "diag": np.repeat(1.0 / np.diag(cov)[None], n_components, axis=0),
        "spherical": np.full(n_components, 1.0 / np.diag(cov).mean()),
    }[covariance_type]
    return {
        "weights_init": np.full(n_components, 1.0 / n_components),
        "means_init": means,
        "precisions_init": precisions,
    }


def fit(X, sw, n_components, covariance_type, **params):
    """Fit; returns (model, whether a degenerate component had to be repaired)."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        gm = GaussianMixture(n_components, covariance_type=covariance_type, **params)
        gm.fit(X, sample_weight=sw)
    kinds = {w.category for w in record}
    assert kinds <= {ConvergenceWarning, DegenerateComponentWarning}, kinds
    return gm, DegenerateComponentWarning in kinds


@given(problems())
def test_responsibilities_sum_to_one(problem):
    X, sw, n_components, covariance_type, _ = problem
    gm, _ = fit(X, sw, n_components, covariance_type, max_iter=5, random_state=0)
    resp = gm.predict_proba(X)
    assert resp.dtype == X.dtype and resp.shape == (len(X), n_components)
    assert np.all(resp >= 0)
    tol = 1e-6 if X.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(
        resp.astype(np.float64).sum(axis=1), 1.0, rtol=0, atol=tol
    )
    lse = gm.score_samples(X)
    assert np.all(np.isfinite(lse))
    np.testing.assert_array_equal(gm.predict(X), resp.argmax(axis=1))


@given(
    problems(), st.sampled_from(["kmeans", "random", "random_from_data", "k-means++"])
)
def test_lower_bound_never_decreases(problem, init_params):
    X, sw, n_components, covariance_type, _ = problem
    gm, repaired = fit(
        X,
        sw,
        n_components,
        covariance_type,
        init_params=init_params,
        tol=0.0,
        max_iter=25,
        random_state=0,
    )
    lb = np.asarray(gm.lower_bounds_)
    assert len(lb) == gm.n_iter_ == 25 and np.all(np.isfinite(lb))
    if not repaired:  # a repaired covariance is not an M-step: no guarantee
        # at a fixed point near a singular covariance (precision ~ 1/reg_covar) the
        # lower bound jitters by rounding at ~1e-11 relative; a wrong M-step drops more.
        # float32 data of few features are computed in float32 (kernels.lowd32): there
        # the bound jitters at float32's resolution (2^-24 ~ 6e-8) at a fixed point
        kind = covariance.get(covariance_type).kind
        f32 = use_lowd32(X.dtype, kind, X.shape[1])
        jitter = 1e-6 if f32 else 1e-9
        assert np.all(np.diff(lb) >= -jitter * np.maximum(np.abs(lb[1:]), 1.0))


@given(problems())
def test_row_permutation_changes_the_fit_only_by_rounding(problem):
    X, sw, n_components, covariance_type, rng = problem
    start = user_start(X, n_components, covariance_type, rng)
    perm = rng.permutation(len(X))
    params = dict(tol=0.0, max_iter=15, **start)
    a, rep_a = fit(X, sw, n_components, covariance_type, **params)
    b, rep_b = fit(
        X[perm],
        None if sw is None else sw[perm],
        n_components,
        covariance_type,
        **params,
    )
    assert rep_a == rep_b
    rtol = 1e-4 if X.dtype == np.float32 else 1e-7
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=rtol)
    for name in ("weights_", "means_", "covariances_"):
        x, y = getattr(a, name), getattr(b, name)
        scale = float(np.abs(x).max())
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * scale, err_msg=name)
    np.testing.assert_allclose(
        a.predict_proba(X)[perm], b.predict_proba(X[perm]), atol=100 * rtol
    )


@given(problems(dtypes=(np.float64,)), st.floats(-1e4, 1e4), st.integers(0, 4))
def test_translating_data_translates_means(problem, offset, axis_seed):
    X, sw, n_components, covariance_type, rng = problem
    shift = offset * np.random.default_rng(axis_seed).uniform(0.5, 1.5, X.shape[1])
    start = user_start(X, n_components, covariance_type, rng)
    moved_start = dict(start, means_init=start["means_init"] + shift)
    params = {"tol": 0.0, "max_iter": 10}
    a, rep_a = fit(X, sw, n_components, covariance_type, **params, **start)
    b, rep_b = fit(
        X + shift, sw, n_components, covariance_type, **params, **moved_start
    )
    assert rep_a == rep_b
    # X + shift is rounded at |shift| * 2^-52: errors relative to the data spread
    spread = float(np.ptp(X, axis=0).max()) + 1e-300
    rel = 1e-7 * (1.0 + np.abs(shift).max() / spread)
    np.testing.assert_allclose(b.means_ - shift, a.means_, atol=rel * spread)
    np.testing.assert_allclose(
        b.covariances_, a.covariances_, rtol=rel, atol=rel * spread**2
    )
    np.testing.assert_allclose(b.weights_, a.weights_, rtol=rel, atol=rel)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=rel, atol=rel)
