"""The large-K diagonal path (kernels.diaggemm) against the NumPy oracle, the
term-by-term kernel and scikit-learn; thread-count determinism; far points; and that
the estimator takes it for many components."""

import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGMM

from fastgmm import GaussianMixture
from fastgmm._jit import BLOCK
from fastgmm.kernels import DIAG
from fastgmm.kernels.diaggemm import (
    GEMM_MIN_D,
    GEMM_MIN_K,
    SPARSE_MAX,
    TRUNCATE_LOG,
    diag_em_pass,
    use_gemm,
)
from fastgmm.kernels.passes import em_pass
from fastgmm.model import covariance as cov
from fastgmm.model.params import Params, kernel_inputs

from .. import reference as ref
from .helpers import assert_same_for_any_thread_count

DTYPES = [np.float32, np.float64]


def problem(rng, n, d, K, spread, dtype, covariance_type="diag"):
    """(X, Params): blobs around centres of scale ``spread`` far from the origin; the
    parameters are the truth, perturbed (spread 1: responsibilities mostly non-zero;
    spread 20: mostly exactly zero)."""
    centres = 50.0 + rng.normal(scale=spread, size=(K, d))
    labels = rng.integers(0, K, n)
    scale = rng.uniform(0.5, 1.5, size=(K, d))
    if covariance_type == "spherical":
        scale = scale[:, :1] * np.ones(d)
    X = (centres[labels] + rng.normal(size=(n, d)) * scale[labels]).astype(dtype)
    weights = rng.dirichlet(np.full(K, 5.0))
    means = centres + 0.1 * rng.normal(size=(K, d))
    prec_chol = 1.0 / (scale * 1.1)
    if covariance_type == "spherical":
        prec_chol = prec_chol[:, 0]
    model = cov.get(covariance_type)
    return X, Params(
        model, weights, means, model.covariances_from_prec_chol(prec_chol), prec_chol
    )


def run(X, sw, params, chunk=4 * BLOCK):
    kind, const, loc, prec = kernel_inputs(params).astuple()
    sw = np.empty(0) if sw is None else np.asarray(sw, np.float64)
    ref_point = np.ascontiguousarray(params.means)
    return diag_em_pass(X, sw, kind, const, loc, prec, ref_point, chunk)


def oracle(X, sw, params, covariance_type):
    log_norm, resp = ref.e_step(
        X, params.weights, params.means, params.prec_chol, covariance_type
    )
    w = np.ones(len(X)) if sw is None else sw
    stats = ref.sufficient_stats(X, resp, sw, params.means, covariance_type)
    return (float(w @ log_norm), *stats), resp


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
@pytest.mark.parametrize("spread", [1.0, 20.0], ids=["dense-resp", "sparse-resp"])
def test_matches_oracle(rng, dtype, covariance_type, spread):
    """Log-likelihood and statistics as the oracle's (float64 throughout), for blocks
    whose statistics go through the GEMM and blocks that go point by point."""
    n, d, K = 3 * 4 * BLOCK + 77, 12, 70  # partial last block and chunk
    X, params = problem(rng, n, d, K, spread, dtype, covariance_type)
    sw = rng.uniform(0.0, 3.0, n)
    sw[rng.random(n) < 0.1] = 0.0
    expected, resp = oracle(X, sw, params, covariance_type)
    nonzero = np.mean(resp > np.exp(-490.0))  # the kernels zero those below e^-500
    assert (nonzero > SPARSE_MAX) == (spread == 1.0)  # both branches are exercised
    got = run(X, sw, params)
    # float32 data: the E-step product is an sgemm of y = x - c (|y| ~ spread)
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(got[0], expected[0], rtol=rtol)
    for a, b in zip(got[1:], expected[1:]):
        scale = np.max(np.abs(b))
        np.testing.assert_allclose(a, b, rtol=rtol * 100, atol=rtol * 100 * scale)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_same_as_term_by_term_kernel(rng, dtype):
    """The GEMM form gives em_pass's results (float64: to ~1e-13)."""
    X, params = problem(rng, 2000, 16, 64, 1.0, dtype)
    kind, const, loc, prec = kernel_inputs(params).astuple()
    ref_point = np.ascontiguousarray(params.means)
    a = em_pass(X, np.empty(0), kind, const, loc, prec, ref_point, 4 * BLOCK)
    b = diag_em_pass(X, np.empty(0), kind, const, loc, prec, ref_point, 4 * BLOCK)
    rtol = 1e-13 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(b[0], a[0], rtol=rtol)
    for x, y in zip(b[1:], a[1:]):
        np.testing.assert_allclose(
            x, y, rtol=100 * rtol, atol=100 * rtol * np.abs(y).max()
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("spread", [1.0, 20.0], ids=["dense-resp", "sparse-resp"])
def test_bitwise_identical_for_any_thread_count(rng, dtype, spread, no_serial_cutoff):
    X, params = problem(rng, 9 * BLOCK + 5, 10, 64, spread, dtype)
    sw = rng.uniform(0.5, 2.0, len(X))
    assert_same_for_any_thread_count(lambda: run(X, sw, params, chunk=BLOCK))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_far_points_and_zero_weights_as_term_by_term(rng, dtype):
    """Points ~1e12 and ~1e30 away (y^2 overflows in float32, the product is not
    finite: those rows are recomputed term by term) and a zero weight: finite, and
    the same as em_pass."""
    X, params = problem(rng, 600, 8, 64, 1.0, dtype)
    X[:3] = np.array([1e12, -3e12, 1e30])[:, None].astype(dtype)
    weights = params.weights.copy()
    weights[1] = 0.0
    params = Params(
        params.model, weights / weights.sum(), params.means, None, params.prec_chol
    )
    kind, const, loc, prec = kernel_inputs(params).astuple()
    ref_point = np.ascontiguousarray(params.means)
    a = em_pass(X, np.empty(0), kind, const, loc, prec, ref_point, BLOCK)
    b = diag_em_pass(X, np.empty(0), kind, const, loc, prec, ref_point, BLOCK)
    assert np.isfinite(b[0]) and all(np.all(np.isfinite(v)) for v in b[1:])
    assert b[1][1] == 0.0 and np.all(b[2][1] == 0.0)
    np.testing.assert_allclose(b[0], a[0], rtol=1e-7)
    np.testing.assert_allclose(b[1], a[1], rtol=1e-5, atol=1e-6)


def test_cut_off():
    assert use_gemm(GEMM_MIN_D, GEMM_MIN_K)
    assert not use_gemm(GEMM_MIN_D - 1, GEMM_MIN_K)
    assert not use_gemm(GEMM_MIN_D, GEMM_MIN_K - 1)


def sk_start(params):
    return dict(
        weights_init=params.weights,
        means_init=params.means,
        precisions_init=params.prec_chol**2,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_estimator_takes_the_path_and_matches_sklearn(
    rng, monkeypatch, dtype, covariance_type
):
    """From the same start, scikit-learn's EM path: lower bound to 1e-10 (float64),
    parameters close; and the fit went through diag_em_pass (fails without the hook)."""
    import fastgmm.engine.em as em

    calls = []

    def spy(*args):
        calls.append(args[0].dtype)
        return diag_em_pass(*args)

    monkeypatch.setattr(em, "diag_em_pass", spy)
    X, params = problem(
        rng, 3000, GEMM_MIN_D + 2, GEMM_MIN_K, 1.0, dtype, covariance_type
    )
    kw = dict(covariance_type=covariance_type, tol=0.0, max_iter=4, **sk_start(params))
    ours = GaussianMixture(GEMM_MIN_K, **kw).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = SkGMM(GEMM_MIN_K, **kw).fit(X)
    assert calls and set(calls) == {np.dtype(dtype)}
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=rtol)
    np.testing.assert_allclose(
        ours.weights_, theirs.weights_, rtol=1e3 * rtol, atol=1e-7
    )
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e3 * rtol, atol=1e-6)
    np.testing.assert_allclose(
        ours.covariances_, theirs.covariances_, rtol=1e4 * rtol, atol=1e-6
    )


def test_small_k_keeps_term_by_term_path(rng, monkeypatch):
    import fastgmm.engine.em as em

    monkeypatch.setattr(em, "diag_em_pass", None)  # would raise if called
    X, params = problem(rng, 500, GEMM_MIN_D, GEMM_MIN_K - 1, 1.0, np.float64)
    GaussianMixture(
        GEMM_MIN_K - 1, covariance_type="diag", max_iter=2, **sk_start(params)
    ).fit(X)
    assert kernel_inputs(params).kind == DIAG


def test_point_beyond_every_density_as_term_by_term(rng):
    """A point whose log-density is -inf under every component (float64 at 1e200):
    log p = -inf and equal responsibilities, as em_pass (block_resp) gives them."""
    X, params = problem(rng, 300, GEMM_MIN_D, GEMM_MIN_K, 1.0, np.float64)
    X[7] = 1e200
    kind, const, loc, prec = kernel_inputs(params).astuple()
    ref_point = np.ascontiguousarray(params.means)
    a = em_pass(X, np.empty(0), kind, const, loc, prec, ref_point, BLOCK)
    b = diag_em_pass(X, np.empty(0), kind, const, loc, prec, ref_point, BLOCK)
    assert a[0] == b[0] == -np.inf
    np.testing.assert_allclose(b[1], a[1], rtol=1e-12)
    assert np.all(b[1] >= 1.0 / GEMM_MIN_K)  # the far point's equal shares


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_float32_drops_terms_below_its_resolution(rng, dtype):
    """Truncated posteriors (float32 only): a component whose weight relative to the
    largest term is e^-1 below 2^-24 / K at every point gets exactly nothing, one
    e^-1 above it keeps its share; float64 keeps both (fails without truncation)."""
    K, d = GEMM_MIN_K, 8
    X = rng.normal(size=(5 * BLOCK + 3, d)).astype(dtype)
    cut = TRUNCATE_LOG + np.log(K)
    weights = np.ones(K)
    weights[1], weights[2] = np.exp(-cut - 1.0), np.exp(-cut + 1.0)
    model = cov.get("diag")
    means, prec_chol = np.zeros((K, d)), np.ones((K, d))  # identical components
    params = Params(
        model,
        weights / weights.sum(),
        means,
        model.covariances_from_prec_chol(prec_chol),
        prec_chol,
    )
    ll, nk, s1, _ = run(X, None, params, chunk=2 * BLOCK)
    share = weights / weights.sum() * len(X)
    if dtype == np.float32:
        assert nk[1] == 0.0 and np.all(s1[1] == 0.0)
    else:
        np.testing.assert_allclose(nk[1], share[1], rtol=1e-12)
    np.testing.assert_allclose(nk[2], share[2], rtol=1e-6)
    np.testing.assert_allclose(nk[[0, 3]], share[[0, 3]], rtol=1e-6)
    # the dropped mass (~2^-24 / K e^-1 of each point's density) moves the
    # log-likelihood by less than float32's resolution
    expected, _ = oracle(X, None, params, "diag")
    np.testing.assert_allclose(ll, expected[0], rtol=1e-7)
