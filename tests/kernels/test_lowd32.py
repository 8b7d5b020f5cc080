"""The float32 small-d pass (kernels.lowd32) and its float32 exp: against NumPy, the
float64 oracle, em_pass and scikit-learn's float32 fit; far points, weights,
thread-count determinism, and that the estimator takes it (float32 only).

Tolerances (float32 computation, float32 resolution 2^-24 ~ 6e-8): the log-likelihood
sum to 1e-6 relative; nk to 2e-6 relative to the total weight; s1 and s2 to 2e-6
of their natural scale (total weight x spread, total weight x spread^2), data 1000
from the origin.
"""

import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGMM

import fastgmm.engine.em as em
from fastgmm import GaussianMixture
from fastgmm.kernels import DIAG, FULL, TIED
from fastgmm.kernels.lowd32 import (
    BLOCK32,
    MAX_D,
    _log_sum,
    lowd32_em_pass,
    move_stats,
    use_lowd32,
)
from fastgmm.kernels.passes import em_pass
from fastgmm.kernels.vecmath import FLOOR2_32, exp2_32_shifted_sum
from fastgmm.model import covariance as cov
from fastgmm.model.params import Params, kernel_inputs

from .. import reference as ref
from .helpers import assert_same_for_any_thread_count, pass_of
from .helpers import pass_oracle as oracle

COV_TYPES = ["full", "diag", "spherical"]
#: fixed-iteration fits (tol=0) do not converge by design
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ----------------------------------------------------------------- the float32 exp
def test_exp2_32_within_one_ulp_of_numpy_over_its_range():
    """2^x for x in [-FLOOR2_32, 0] (dense grid, tiny magnitudes, -0, halves where
    the rounding of n ties) within 1 ulp of the exactly rounded float32 (NumPy's
    float64 exp2); at or below -FLOOR2_32, -inf and NaN exactly 0; results normal
    floats; the sum accumulated."""
    grid = np.linspace(-float(FLOOR2_32), 0.0, 1_000_001)
    tiny = -np.logspace(-38, 0, 2001)
    halves = -np.arange(0.5, float(FLOOR2_32), 1.0)
    x = np.concatenate([grid, tiny, halves, [-0.0, -1e-45]]).astype(np.float32)
    mx = np.zeros(len(x), np.float32)
    row = x.copy()
    s = np.ones(len(x), np.float32)
    exp2_32_shifted_sum(row, mx, len(x), s)
    exact = np.exp2(x.astype(np.float64))
    ulps = np.abs(row - exact) / np.spacing(exact.astype(np.float32))
    inside = x > -FLOOR2_32
    assert inside.sum() > 1_000_000 and ulps[inside].max() <= 1.0
    assert np.all(row[inside] >= np.finfo(np.float32).tiny)
    assert np.all(row[~inside] == 0.0)
    np.testing.assert_array_equal(s, np.float32(1.0) + row)
    below = [-FLOOR2_32, -125.5, -126.0, -150.0, -1e30, -3e38, -np.inf, np.nan]
    out = np.array(below, np.float32)
    s = np.zeros(len(out), np.float32)
    exp2_32_shifted_sum(out, np.zeros(len(out), np.float32), len(out), s)
    np.testing.assert_array_equal(out, 0.0)
    np.testing.assert_array_equal(s, 0.0)


def test_exp2_32_shifted_touches_only_the_first_nb():
    """2^(row - mx) with mx != 0, and nothing written past nb."""
    row = np.full(40, 2.0, np.float32)
    s = np.zeros(40, np.float32)
    exp2_32_shifted_sum(row, np.full(40, 3.5, np.float32), 17, s)
    assert np.all(row[17:] == 2.0) and np.all(s[17:] == 0.0)
    np.testing.assert_allclose(row[:17], 2.0**-1.5, rtol=1.2e-7)


@pytest.mark.parametrize("n_components", [1, 8, 1 << 20])
def test_log_sum_is_the_sum_of_logs_without_overflow(n_components):
    """_log_sum: sum_b log s[b] (the unweighted pass's log-likelihood part) to float64
    precision, s in [1, K], K up to 2^20 (a product of the 1152 rows would
    overflow: the groups keep each under 2^1000), rows past nb not read."""
    rng = np.random.default_rng(3)
    s = rng.uniform(1.0, n_components, 1200).astype(np.float32)
    s[:50] = n_components
    s[1100:] = np.inf  # past nb
    got = _log_sum(s, 1100, n_components)
    expected = np.log(s[:1100].astype(np.float64)).sum()
    assert np.isfinite(got)
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-12)


# ------------------------------------------------------------------------ the pass
def problem(rng, n, d, K, covariance_type, offset=1000.0, spread=3.0):
    """(float32 X, Params): blobs ``offset`` from the origin, the truth perturbed."""
    centres = offset + rng.normal(scale=spread, size=(K, d))
    labels = rng.integers(0, K, n)
    scale = rng.uniform(0.6, 1.4, size=(K, d))
    if covariance_type == "spherical":
        scale = scale[:, :1] * np.ones(d)
    X = (centres[labels] + rng.normal(size=(n, d)) * scale[labels]).astype(np.float32)
    model = cov.get(covariance_type)
    if covariance_type == "full":
        covs = np.empty((K, d, d))
        for k in range(K):
            a = rng.normal(size=(d, d)) * 0.3
            covs[k] = np.diag(scale[k] ** 2) + a @ a.T
    elif covariance_type == "diag":
        covs = 1.1 * scale**2
    else:
        covs = 1.1 * scale[:, 0] ** 2
    weights = rng.dirichlet(np.full(K, 5.0))
    means = centres + 0.1 * rng.normal(size=(K, d))
    return X, Params(model, weights, means, covs, model.prec_chol(covs))


def run(fn, X, sw, params, chunk=2 * BLOCK32):
    return pass_of(fn, X, sw, params, chunk)


def assert_close_stats(got, expected, total, spread, tol=2e-6):
    ll, nk, s1, s2 = got
    e_ll, e_nk, e_s1, e_s2 = expected
    assert np.all(np.isfinite(nk)) and np.all(np.isfinite(s2))
    np.testing.assert_allclose(ll, e_ll, rtol=1e-6)
    np.testing.assert_allclose(nk, e_nk, rtol=0, atol=tol * total)
    np.testing.assert_allclose(s1, e_s1, rtol=0, atol=tol * total * spread)
    s2 = s2 if s2.shape == e_s2.shape else s2[:, 0]
    np.testing.assert_allclose(s2, e_s2, rtol=0, atol=tol * total * spread**2)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("d", [1, 2, 3, 5, MAX_D])
def test_matches_oracle(rng, covariance_type, d):
    """Log-likelihood and statistics as the float64 oracle's, data 1000 from the
    origin, weights with zeros, a partial last block and chunk."""
    n, K = 5 * BLOCK32 + 77, 5
    X, params = problem(rng, n, d, K, covariance_type)
    sw = rng.uniform(0.0, 3.0, n)
    sw[rng.random(n) < 0.1] = 0.0
    got = run(lowd32_em_pass, X, sw, params)
    expected = oracle(X, sw, params, covariance_type)
    if covariance_type == "full":  # the kernel fills the lower triangle
        expected = (*expected[:3], np.tril(expected[3]))
    assert_close_stats(got, expected, sw.sum(), 4.0)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_move_stats_is_a_change_of_reference(rng, covariance_type):
    """move_stats turns the oracle's statistics about one point into those about
    another (1e3 away) to float64 rounding: how the float32 pass's statistics about
    c + float32(ref - c) reach ``ref``."""
    X, params = problem(rng, 500, 3, 4, covariance_type, offset=0.0)
    _, resp = ref.e_step(
        X, params.weights, params.means, params.prec_chol, covariance_type
    )
    used = params.means + rng.normal(size=params.means.shape)
    target = np.ascontiguousarray(params.means + 1e3)
    nk, s1, s2 = ref.sufficient_stats(X, resp, None, used, covariance_type)
    e_nk, e_s1, e_s2 = ref.sufficient_stats(X, resp, None, target, covariance_type)
    kind = FULL if covariance_type == "full" else DIAG
    s2 = np.tril(s2) if kind == FULL else s2
    move_stats(kind, used, target, nk, s1, s2)
    np.testing.assert_allclose(s1, e_s1, rtol=1e-12)
    e_s2 = np.tril(e_s2) if kind == FULL else e_s2
    np.testing.assert_allclose(s2, e_s2, rtol=1e-11)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_noise_component_as_float64_path(rng, covariance_type):
    """mclust's uniform noise (one more component of zero precision, last): data
    1000 from the origin, the noise left out of the centre; as em_pass to float32
    tolerances."""
    from dataclasses import replace

    from fastgmm.model.noise import Noise

    X, params = problem(rng, 3 * BLOCK32 + 11, 3, 3, covariance_type)
    params = replace(params, noise=Noise(0.05, -12.0))
    kind, const, loc, prec = kernel_inputs(params).astuple()
    assert const.shape[0] == 4 and np.all(prec[-1] == 0.0)
    ref_point = np.vstack([params.means, np.zeros((1, 3))])
    args = (X, np.empty(0), kind, const, loc, prec, ref_point, BLOCK32)
    a, b = em_pass(*args), lowd32_em_pass(*args)
    total, spread = len(X), 4.0
    np.testing.assert_allclose(b[0], a[0], rtol=1e-6)
    np.testing.assert_allclose(b[1], a[1], rtol=0, atol=2e-6 * total)
    # the noise row's statistics are about the origin, 1000 away: relative to that
    np.testing.assert_allclose(b[2][:-1], a[2][:-1], rtol=0, atol=2e-6 * total * spread)
    np.testing.assert_allclose(b[2][-1], a[2][-1], rtol=1e-6)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_far_points_as_float64_path(rng, covariance_type):
    """A point 1e6 away (finite in float32), points 1e20 and 3e38 away (their
    Mahalanobis terms overflow float32: the block goes through em_pass's float64
    routines), and a zero weight: finite, and as em_pass gives them."""
    X, params = problem(rng, 3 * BLOCK32 + 9, 3, 4, covariance_type, offset=0.0)
    X[5] = 1e6
    X[BLOCK32 + 3] = (1e20, -1e20, 3.0)
    X[2 * BLOCK32 + 1] = (3e38, -3e38, 1.0)
    sw = rng.uniform(0.5, 2.0, len(X))
    sw[7] = 0.0
    a = run(em_pass, X, sw, params)
    b = run(lowd32_em_pass, X, sw, params)
    assert np.isfinite(b[0]) and all(np.all(np.isfinite(v)) for v in b[1:])
    np.testing.assert_allclose(b[0], a[0], rtol=1e-7)
    np.testing.assert_allclose(b[1], a[1], rtol=1e-5, atol=1e-5)
    # the far points' statistics dominate s1, s2; both kernels take them in float64
    np.testing.assert_allclose(b[2], a[2], rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(b[3], a[3], rtol=1e-6, atol=1e-3)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_statistics_beyond_float32_as_float64_path(rng, covariance_type):
    """Data and model of scale 1e20: the log-densities are ordinary, but the
    squares in s2 (~1e40) overflow float32: those blocks' statistics are taken by
    em_pass's float64 routines (nothing of the float32 attempt is kept), so the
    result is em_pass's (a float32 fit then fails clearly at the final cast, as on
    the float64 path: tests/test_reliability.py)."""
    X, params = problem(rng, 2 * BLOCK32 + 3, 3, 3, covariance_type, offset=0.0)
    scale = 1e20
    X = (X * np.float32(scale)).astype(np.float32)
    covs = params.covariances * scale**2
    params = Params(params.model, params.weights, params.means * scale, covs,
                    params.model.prec_chol(covs))  # fmt: skip
    a = run(em_pass, X, None, params)
    b = run(lowd32_em_pass, X, None, params)
    assert all(np.all(np.isfinite(v)) for v in b)
    np.testing.assert_allclose(b[0], a[0], rtol=1e-12)
    for got, expected in zip(b[1:], a[1:]):
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_point_beyond_every_density(rng):
    """A point whose log-density is -inf under every component even in float64
    (precisions so large that its Mahalanobis term overflows float64): log p = -inf
    and equal responsibilities, as em_pass gives them."""
    X, params = problem(rng, 300, 3, 4, "diag", offset=0.0)
    X[7] = 3e38
    covs = params.covariances * 1e-300
    params = Params(params.model, params.weights, params.means, covs,
                    params.model.prec_chol(covs))  # fmt: skip
    a = run(em_pass, X, None, params)
    b = run(lowd32_em_pass, X, None, params)
    assert a[0] == b[0] == -np.inf
    np.testing.assert_allclose(b[1], a[1], rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_bitwise_identical_for_any_thread_count(rng, covariance_type, no_serial_cutoff):
    X, params = problem(rng, 9 * BLOCK32 + 5, 3, 6, covariance_type)
    sw = rng.uniform(0.5, 2.0, len(X))
    assert_same_for_any_thread_count(
        lambda: run(lowd32_em_pass, X, sw, params, chunk=BLOCK32)
    )


# ---------------------------------------------------------------- the estimator
def test_cut_off():
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)
    assert use_lowd32(f32, FULL, MAX_D) and use_lowd32(f32, DIAG, 1)
    assert not use_lowd32(f32, FULL, MAX_D + 1)
    assert not use_lowd32(f64, FULL, 3) and not use_lowd32(f32, TIED, 3)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_estimator_takes_the_path_and_matches_sklearn_float32(
    rng, monkeypatch, covariance_type
):
    """float32 data: the fit goes through lowd32_em_pass (fails without the hook)
    and follows scikit-learn's float32 fit from the same start (lower bound to
    1e-6, parameters to float32 tolerances after 8 iterations); float64 data and
    tied models do not take it."""
    calls = []

    def spy(*args):
        calls.append(args[0].dtype)
        return lowd32_em_pass(*args)

    monkeypatch.setattr(em, "lowd32_em_pass", spy)
    X, params = problem(rng, 4000, 3, 4, covariance_type, offset=10.0)
    inv = np.linalg.inv(params.covariances) if covariance_type == "full" else None
    precisions = inv if inv is not None else 1.0 / params.covariances
    start = dict(
        weights_init=params.weights.astype(np.float32),
        means_init=params.means.astype(np.float32),
        precisions_init=precisions.astype(np.float32),
    )
    kw = dict(covariance_type=covariance_type, tol=0.0, max_iter=8, **start)
    ours = GaussianMixture(4, **kw).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = SkGMM(4, **kw).fit(X)
    assert calls and set(calls) == {np.dtype(np.float32)}
    assert ours.means_.dtype == theirs.means_.dtype == np.float32
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-6)
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=1e-4)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-5, atol=1e-4)
    # scikit-learn's float32 covariances carry its float32 sums over all rows
    np.testing.assert_allclose(
        ours.covariances_, theirs.covariances_, rtol=1e-3, atol=1e-5
    )
    calls.clear()
    GaussianMixture(4, **kw).fit(X.astype(np.float64))
    GaussianMixture(4, covariance_type="tied", max_iter=2).fit(X)
    assert not calls


def test_float32_fit_close_to_the_float64_oracle(rng):
    """Eight EM iterations on float32 data against the float64 oracle's EM on the
    same values (the float32 pass's error does not grow over iterations)."""
    X, params = problem(rng, 3000, 3, 3, "full", offset=100.0)
    gm = GaussianMixture(
        3, tol=0.0, max_iter=8, weights_init=params.weights,
        means_init=params.means, precisions_init=np.linalg.inv(params.covariances),
    ).fit(X)  # fmt: skip
    w, m, c, pc = params.weights, params.means, params.covariances, params.prec_chol
    X64 = X.astype(np.float64)
    for _ in range(8):
        _, w, m, c, pc = ref.em_iteration(X64, w, m, pc, "full", reg_covar=1e-6)
    np.testing.assert_allclose(gm.weights_, w, rtol=1e-5)
    np.testing.assert_allclose(gm.means_, m, rtol=0, atol=1e-4)
    np.testing.assert_allclose(gm.covariances_, c, rtol=1e-4, atol=1e-5)
