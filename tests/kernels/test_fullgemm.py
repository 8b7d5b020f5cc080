"""The FULL path at d >= 16 (kernels.fullgemm) against the NumPy oracle, em_pass and
scikit-learn; thread-count determinism; far points; weights; the scatter's skipped
rows; and that the estimator takes it for its shapes (and every dense model)."""

import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGMM

from fastgmm import GaussianMixture
from fastgmm._jit import BLOCK
from fastgmm.kernels import FULL
from fastgmm.kernels.blas import blas_args
from fastgmm.kernels.fullgemm import (
    GEMM_MIN_D,
    _log_prob,
    block_log_prob,
    full_em_pass,
    full_score_pass,
    gemm_inputs,
    load_rows,
    use_gemm,
)
from fastgmm.kernels.fullquad import (
    QUAD_MAX,
    QUAD_MAX_D,
    quad_features,
    quad_inputs,
    quad_log_prob,
)
from fastgmm.kernels.fullstats import (
    PENDING,
    SCATTER_EPS,
    SPARSE_MAX,
    add_gram,
    block_stats,
    flush_pending,
)
from fastgmm.kernels.passes import em_pass
from fastgmm.model import covariance as cov
from fastgmm.model.params import Params, kernel_inputs

from .. import reference as ref
from .helpers import assert_same_for_any_thread_count

DTYPES = [np.float32, np.float64]
LOWER = np.tril


def problem(rng, n, d, K, spread, dtype, offset=50.0):
    """(X, Params): blobs with random full covariances around centres of scale
    ``spread``, ``offset`` from the origin; the parameters are the truth, perturbed
    (spread 0.3: responsibilities above 2^-80; 3: mostly in (0, 2^-80))."""
    centres = offset + rng.normal(scale=spread, size=(K, d))
    labels = rng.integers(0, K, n)
    A = rng.normal(scale=0.3 / np.sqrt(d), size=(K, d, d)) + np.eye(d)
    X = centres[labels] + np.einsum("nij,nj->ni", A[labels], rng.normal(size=(n, d)))
    X = X.astype(dtype)
    weights = rng.dirichlet(np.full(K, 5.0))
    means = centres + 0.1 * rng.normal(size=(K, d))
    covs = 1.2 * np.einsum("kij,klj->kil", A, A)
    model = cov.get("full")
    return X, Params(model, weights, means, covs, model.prec_chol(covs))


def inputs(params):
    kind, const, loc, prec = kernel_inputs(params).astuple()
    return kind, const, loc, prec, np.ascontiguousarray(params.means)


def run(X, sw, params, chunk=4 * BLOCK):
    kind, const, loc, prec, ref_point = inputs(params)
    sw = np.empty(0) if sw is None else np.asarray(sw, np.float64)
    return full_em_pass(X, sw, kind, const, loc, prec, ref_point, chunk)


def oracle(X, sw, params):
    log_norm, resp = ref.e_step(
        X, params.weights, params.means, params.prec_chol, "full"
    )
    w = np.ones(len(X)) if sw is None else sw
    stats = ref.sufficient_stats(X, resp, sw, params.means, "full")
    return (float(w @ log_norm), *stats), resp


def assert_stats_close(got, expected, rtol):
    np.testing.assert_allclose(got[0], expected[0], rtol=rtol)
    for a, b in zip(got[1:], expected[1:]):
        if a.ndim == 3:
            a, b = LOWER(a), LOWER(b)
        scale = np.max(np.abs(b))
        np.testing.assert_allclose(a, b, rtol=rtol * 100, atol=rtol * 100 * scale)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("d", [16, 21, 40])
@pytest.mark.parametrize("spread", [0.3, 3.0], ids=["dense-resp", "sparse-resp"])
def test_matches_oracle(rng, dtype, d, spread):
    """Log-likelihood and statistics as the oracle's (float64 throughout) with sample
    weights (some zero), data 50 from the origin, a partial last block and chunk;
    d = 21 and 40 leave a partial column group."""
    n, K = 3 * 4 * BLOCK + 77, 5
    X, params = problem(rng, n, d, K, spread, dtype)
    sw = rng.uniform(0.0, 3.0, n)
    sw[rng.random(n) < 0.1] = 0.0
    expected, resp = oracle(X, sw, params)
    tiny = np.mean((resp > 0) & (resp < 2.0**-80))
    assert (tiny > 0.5) == (spread == 3.0)  # rows the scatter skips, or none
    got = run(X, sw, params)
    assert_stats_close(got, expected, 1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_same_as_em_pass(rng, dtype):
    """The GEMM form gives em_pass's results (to ~1e-13), components in two batches."""
    X, params = problem(rng, 2000, 16, 40, 3.0, dtype)
    kind, const, loc, prec, ref_point = inputs(params)
    a = em_pass(X, np.empty(0), kind, const, loc, prec, ref_point, 4 * BLOCK)
    b = full_em_pass(X, np.empty(0), kind, const, loc, prec, ref_point, 4 * BLOCK)
    assert_stats_close(b, a, 1e-13)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("spread", [0.3, 3.0], ids=["dense-resp", "sparse-resp"])
def test_bitwise_identical_for_any_thread_count(rng, dtype, spread, no_serial_cutoff):
    X, params = problem(rng, 9 * BLOCK + 5, 17, 6, spread, dtype)
    sw = rng.uniform(0.5, 2.0, len(X))
    assert_same_for_any_thread_count(lambda: run(X, sw, params, chunk=BLOCK))


def test_one_specialisation_for_both_dtypes(rng):
    """float32 and float64 data reach the kernel as one float pair type."""
    for dtype in DTYPES:
        X, params = problem(rng, 300, 16, 3, 1.0, dtype)
        run(X, None, params)
    assert len(full_em_pass.signatures) == 1


def test_integer_weights_equal_repeated_rows(rng):
    X, params = problem(rng, 700, 16, 4, 1.0, np.float64)
    counts = rng.integers(0, 4, len(X))
    a = run(X, counts.astype(np.float64), params)
    b = run(np.repeat(X, counts, axis=0), None, params)
    assert_stats_close(a, b, 1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_far_points_as_em_pass(rng, dtype):
    """Points ~1e12 away and, in float64, beyond every density (1e200: squares
    overflow; +-1.7e308: the product itself overflows, inf - inf): the same
    log-likelihood and statistics as em_pass, -inf log-density and equal
    responsibilities for the last two."""
    X, params = problem(rng, 600, 16, 8, 1.0, dtype)
    X[:2] = np.array([1e12, -3e12])[:, None].astype(dtype)
    if dtype == np.float64:
        X[2] = 1e200
        X[3] = 1.7e308 * np.where(np.arange(16) % 2, 1.0, -1.0)  # products overflow
    kind, const, loc, prec, ref_point = inputs(params)
    a = em_pass(X, np.empty(0), kind, const, loc, prec, ref_point, BLOCK)
    b = full_em_pass(X, np.empty(0), kind, const, loc, prec, ref_point, BLOCK)
    if dtype == np.float64:
        assert a[0] == b[0] == -np.inf
        assert np.all(b[1] >= 2.0 / 8)  # the far points' equal shares
    else:
        np.testing.assert_allclose(b[0], a[0], rtol=1e-12)
    for x, y in zip(b[1:], a[1:]):
        x, y = (LOWER(x), LOWER(y)) if x.ndim == 3 else (x, y)
        # the overflowing points' scatter is not finite either way (inf through
        # dsyrk, inf or nan through em_pass's loops, where inf * 0 meets)
        finite = np.isfinite(y)
        np.testing.assert_array_equal(np.isfinite(x), finite)
        np.testing.assert_allclose(
            x[finite], y[finite], rtol=1e-12, atol=1e-12 * np.abs(y[finite]).max()
        )


@pytest.mark.parametrize("sparse", [True, False], ids=["point-by-point", "simd"])
def test_scatter_skips_negligible_rows(rng, sparse):
    """block_stats queues, per component, only the rows whose r |x - ref|^2 is at
    least SCATTER_EPS times the block's largest (a component whose responsibilities
    are all tiny keeps its own largest); nk and s1 take every row. Both ways of
    taking the sums (few non-zero responsibilities or many)."""
    d, K = 16, 2
    head = [1.0, 0.5, SCATTER_EPS * 1e-3, SCATTER_EPS * 1e-6, 0.0, 0.25]
    nb = 4 * len(head) if sparse else len(head)
    assert (np.count_nonzero(head) <= SPARSE_MAX * nb) == sparse
    xt = np.zeros((d, BLOCK))
    xt[:, :nb] = rng.normal(size=(d, nb))
    refs = rng.normal(size=(K, d))
    resp = np.zeros((K, BLOCK))
    resp[0, : len(head)] = head
    resp[1, :nb] = SCATTER_EPS * 1e-9 * rng.uniform(1.0, 2.0, nb)
    nk, s1, s2 = np.zeros(K), np.zeros((K, d)), np.zeros((K, d, d))
    pend, fill = np.empty((K, d, PENDING)), np.zeros(K, np.int64)
    scratch = (np.empty(BLOCK), np.empty(BLOCK, np.int64))
    block_stats(nb, refs, resp, xt, nk, s1, s2, pend, fill, scratch)
    assert list(fill) == [3, nb]
    np.testing.assert_allclose(nk, resp.sum(axis=1), rtol=1e-15)
    expected = [resp[k, :nb] @ (xt[:, :nb].T - refs[k]) for k in range(K)]
    np.testing.assert_allclose(s1, expected, rtol=1e-13)


@pytest.mark.parametrize("at_ref", [False, True], ids=["spread", "one-at-ref"])
def test_dense_sums_and_scatter(rng, at_ref):
    """A component with many non-zero responsibilities: nk and s1 over every row
    (also the tiny ones, far from ref), the scatter over the rows whose term reaches
    SCATTER_EPS of the largest (a row at ref, term 0, left out), queued past PENDING
    rows (a flush mid-block)."""
    d, nb = 16, BLOCK
    a = np.full((1, d), 10.0)
    xt = a.T + rng.normal(size=(d, nb))
    r = rng.uniform(0.1, 1.0, nb)
    r[1:9] = 1e-30  # rows the scatter skips
    xt[:, 1:9] *= 50.0
    if at_ref:
        xt[:, 0] = a[0]
        r[0] = 1e6
    resp = r[None, :].copy()
    nk, s1, s2 = np.zeros(1), np.zeros((1, d)), np.zeros((1, d, d))
    pend, fill = np.empty((1, d, PENDING)), np.zeros(1, np.int64)
    scratch = (np.empty(BLOCK), np.empty(BLOCK, np.int64))
    block_stats(nb, a, resp, xt, nk, s1, s2, pend, fill, scratch)
    y = xt.T - a[0]
    terms = r * np.sum(y**2, axis=1)
    kept = terms >= SCATTER_EPS * terms.max()
    assert np.count_nonzero(kept) == nb - 8 - at_ref > PENDING
    assert fill[0] == np.count_nonzero(kept) % PENDING  # the rest added already
    np.testing.assert_allclose(nk, [r.sum()], rtol=1e-15)
    np.testing.assert_allclose(s1[0], r @ y, rtol=1e-13, atol=1e-13)
    s2 = s2.copy()
    flush_pending(pend, fill, s2)
    expected = (r[kept, None] * y[kept]).T @ y[kept]
    np.testing.assert_allclose(LOWER(s2[0]), LOWER(expected), rtol=1e-12)


@pytest.mark.parametrize("d", [16, 17, 64])
def test_add_gram_matches_numpy(rng, d):
    """The lower triangle of a Gram product over points along the last axis (odd d:
    the last row alone); the upper triangle untouched; no rows: nothing added."""
    rows = rng.normal(size=(d, 100))
    out = rng.normal(size=(d, d))
    before = out.copy()
    add_gram(rows, 77, out)
    lower = np.tril(np.ones((d, d), bool))
    expected = before + rows[:, :77] @ rows[:, :77].T
    np.testing.assert_allclose(out[lower], expected[lower], rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(out[~lower], before[~lower])
    add_gram(rows, 0, out)
    np.testing.assert_allclose(out[lower], expected[lower], rtol=1e-13, atol=1e-13)


def block_of(X, params):
    """(const, gemm inputs, quad inputs, ft with X's first BLOCK rows centred in
    ft[:d], their norms) (float64)."""
    kind, const, loc, prec, _ = inputs(params)
    ins = gemm_inputs(loc, prec)
    quad = quad_inputs(const, loc, prec, ins[2])
    ft = np.zeros((quad[0].shape[1], BLOCK))
    ynorm = np.empty(BLOCK)
    pair = (X, np.empty((0, X.shape[1]), np.float32))
    load_rows(pair, 0, BLOCK, ins[2], ft[: X.shape[1]], ynorm)
    return const, ins, quad, ft, ynorm


def log_probs(X, params):
    """(the expanded form's, the column groups', _log_prob's) log-densities of the
    first BLOCK rows, (K, BLOCK), and max_b |y_b|^2 max_k ||P_k||_inf."""
    const, ins, quad, ft, ynorm = block_of(X, params)
    K, d = params.means.shape
    xct = ft[:d]
    np.testing.assert_allclose(ynorm, np.sqrt(np.sum(xct**2, axis=0)), rtol=1e-15)
    args = blas_args()
    yt = np.empty((ins[0].shape[2] * ins[0].shape[3], BLOCK))
    out = [np.empty((K, BLOCK)) for _ in range(3)]
    bound = np.max(ynorm) ** 2 * quad[1][0]
    quad_features(ft, d, BLOCK)
    quad_log_prob(BLOCK, quad[0], ft, out[0], args)
    block_log_prob(BLOCK, const, ins, xct, yt, out[1], args)
    _log_prob(BLOCK, const, ins, quad, (xct, ynorm), (yt, ft), out[2], args)
    return out, bound


@pytest.mark.parametrize("d", [16, QUAD_MAX_D])
def test_expanded_form_gives_the_log_density(rng, d):
    """One GEMM of the features [y_i y_j, y, 1] against each component's precision
    entries gives log w_k + log N(x | mu_k, Sigma_k) (the NumPy oracle's, to 1e-12),
    and a block within the bound takes it (_log_prob's result is the form's)."""
    X, params = problem(rng, BLOCK, d, 7, 1.0, np.float64)
    (quad, groups, taken), bound = log_probs(X, params)
    assert bound <= QUAD_MAX
    expected = ref.weighted_log_prob(
        X, params.weights, params.means, params.prec_chol, "full"
    ).T
    np.testing.assert_allclose(quad, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(groups, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(taken, quad)


def tight_far_problem(rng, dtype=np.float64):
    """Blobs with one tight component (sd 1e-4) 1e3 from the others: |y|^2 ||P|| of
    the points near it is ~1e14, far beyond QUAD_MAX."""
    X, params = problem(rng, 4 * BLOCK + 9, 16, 4, 1.0, np.float64)
    covs = params.covariances.copy()
    means = params.means.copy()
    means[0] += 1e3
    covs[0] = 1e-8 * np.eye(16)
    X[::4] = means[0] + 1e-4 * rng.normal(size=(len(X[::4]), 16))
    model = cov.get("full")
    params = Params(model, params.weights, means, covs, model.prec_chol(covs))
    return X.astype(dtype), params


def test_tight_far_component_takes_the_column_groups(rng):
    """Near a tight component far from the centre the expanded form cancels (its
    error here is far above the 1e-10 asked for): such a block takes the column
    groups (_log_prob's result is theirs, bitwise), and the pass still matches the
    oracle to 1e-10."""
    X, params = tight_far_problem(rng)
    (quad, groups, taken), bound = log_probs(X, params)
    assert bound > QUAD_MAX
    expected = ref.weighted_log_prob(
        X[:BLOCK], params.weights, params.means, params.prec_chol, "full"
    ).T
    near = slice(0, BLOCK, 4)
    assert np.max(np.abs(quad[0, near] - expected[0, near])) > 1e-6
    # the groups' own cancellation (y U_k - m_k, both ~1e7) costs ~1e-11 here
    np.testing.assert_allclose(groups, expected, rtol=1e-10)
    np.testing.assert_array_equal(taken, groups)
    got = run(X, None, params)
    want, _ = oracle(X, None, params)
    assert_stats_close(got, want, 1e-10)


def test_cut_off():
    assert use_gemm(GEMM_MIN_D)
    assert not use_gemm(GEMM_MIN_D - 1)


def sk_start(params):
    return dict(
        weights_init=params.weights,
        means_init=params.means,
        precisions_init=np.linalg.inv(params.covariances),
    )


@pytest.fixture
def spy(monkeypatch):
    import fastgmm.engine.em as em

    calls = []

    def spied(*args):
        calls.append(args[0].dtype)
        return full_em_pass(*args)

    monkeypatch.setattr(em, "full_em_pass", spied)
    return calls


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("offset", [0.0, 1e4], ids=["origin", "far"])
def test_estimator_takes_the_path_and_matches_sklearn(rng, spy, dtype, offset):
    """From the same start, scikit-learn's EM path: lower bound to 1e-10 (float64),
    parameters close, also for data 1e4 from the origin; and the fit went through
    full_em_pass (fails without the hook)."""
    X, params = problem(rng, 3000, GEMM_MIN_D, 5, 3.0, dtype, offset=offset)
    kw = dict(covariance_type="full", tol=0.0, max_iter=4, **sk_start(params))
    ours = GaussianMixture(5, **kw).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = SkGMM(5, **kw).fit(X)
    assert spy and set(spy) == {np.dtype(dtype)}
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=rtol)
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=1e3 * rtol)
    np.testing.assert_allclose(
        ours.means_, theirs.means_, rtol=1e3 * rtol, atol=1e3 * rtol
    )
    np.testing.assert_allclose(
        ours.covariances_, theirs.covariances_, rtol=1e4 * rtol, atol=1e4 * rtol
    )


@pytest.mark.parametrize("covariance_type", ["VEV", "EVV", "tied"])
def test_dense_models_take_the_path_as_em_pass(rng, spy, monkeypatch, covariance_type):
    """mclust's dense per-component models (FULL kernels) and tied with a noise
    component (one FULL factor per component) fit through full_em_pass to the same
    result as through em_pass."""
    import fastgmm.engine.em as em

    X, params = problem(rng, 1500, GEMM_MIN_D, 3, 4.0, np.float64)
    kw = dict(covariance_type=covariance_type, max_iter=5, tol=0.0, random_state=0)
    if covariance_type == "tied":
        kw["noise"] = 0.05
    ours = GaussianMixture(3, **kw).fit(X)
    assert len(spy) >= ours.n_iter_
    monkeypatch.setattr(em, "use_full_gemm", lambda d: False)
    theirs = GaussianMixture(3, **kw).fit(X)
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-11)
    np.testing.assert_allclose(
        ours.covariances_, theirs.covariances_, rtol=1e-8, atol=1e-10
    )


def test_low_d_keeps_em_pass(rng, monkeypatch):
    import fastgmm.engine.em as em

    monkeypatch.setattr(em, "full_em_pass", None)  # would raise if called
    X, params = problem(rng, 500, GEMM_MIN_D - 1, 3, 3.0, np.float64)
    GaussianMixture(3, covariance_type="full", max_iter=2, **sk_start(params)).fit(X)
    assert kernel_inputs(params).kind == FULL


def score_outputs(fn, X, params, chunk=2 * BLOCK):
    kind, const, loc, prec, _ = inputs(params)
    n, K = len(X), len(params.weights)
    lse, resp = np.empty(n, X.dtype), np.empty((n, K), X.dtype)
    labels = np.empty(n, np.int64)
    fn(X, kind, const, loc, prec, chunk, lse, resp, labels)
    return lse, resp, labels


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", ["quad", "tight-far", "groups"])
def test_score_pass_as_the_general_one(rng, dtype, case):
    """full_score_pass: log p(x), responsibilities and labels as score_pass's (the
    NumPy oracle's to 1e-12 in float64, 1e-10 near the tight far component), a
    partial last block and chunk, through the expanded form, the column groups of a
    tight far component and those of d = 40; and only the labels asked for."""
    from fastgmm.kernels.passes import score_pass

    d = 40 if case == "groups" else 16
    X, params = problem(rng, 5 * BLOCK + 31, d, 6, 3.0, dtype)
    if case == "tight-far":
        X, params = tight_far_problem(rng, dtype)
    lse, resp, labels = score_outputs(full_score_pass, X, params)
    lse_o, resp_o, labels_o = score_outputs(score_pass, X, params)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    if case == "tight-far" and dtype == np.float64:
        rtol = 1e-10  # the column groups' own cancellation (see test above)
    np.testing.assert_allclose(lse, lse_o, rtol=rtol)
    np.testing.assert_allclose(resp, resp_o, rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(labels, labels_o)
    log_norm, resp_ref = ref.e_step(
        X, params.weights, params.means, params.prec_chol, "full"
    )
    np.testing.assert_allclose(lse, log_norm, rtol=rtol * 100)
    kind, const, loc, prec, _ = inputs(params)
    only = np.empty(len(X), np.int64)
    none = np.empty(0, dtype)
    full_score_pass(
        X,
        kind,
        const,
        loc,
        prec,
        BLOCK,
        none,
        np.empty((0, resp.shape[1]), dtype),
        only,
    )
    np.testing.assert_array_equal(only, labels)


def test_estimator_scores_through_the_path(rng, monkeypatch):
    """predict, predict_proba and score_samples of a full model at d >= 16 go
    through full_score_pass and give scikit-learn's values for its parameters."""
    import fastgmm.engine.score as score

    calls = []

    def spied(*args):
        calls.append(args[0].shape)
        return full_score_pass(*args)

    monkeypatch.setattr(score, "full_score_pass", spied)
    X, params = problem(rng, 3000, GEMM_MIN_D, 5, 3.0, np.float64)
    kw = dict(covariance_type="full", max_iter=3, **sk_start(params))
    ours = GaussianMixture(5, **kw).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = SkGMM(5, **kw).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        setattr(theirs, name, getattr(ours, name))
    calls.clear()
    np.testing.assert_allclose(
        ours.score_samples(X), theirs.score_samples(X), rtol=1e-12
    )
    np.testing.assert_allclose(
        ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-10, atol=1e-12
    )
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert len(calls) == 3
