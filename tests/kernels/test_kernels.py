"""The Numba kernels against the plain NumPy oracle (tests/reference.py), and their
invariants: responsibilities sum to one, scatter is symmetric PSD, diag-as-full,
component permutation, far points, thread-count and run-to-run reproducibility."""

import re
from dataclasses import replace

import numba
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from fastgmm._jit import BLOCK, chunk_rows
from fastgmm._runtime import threads
from fastgmm.engine.data import make_data
from fastgmm.engine.em import MaximumLikelihood, em_step
from fastgmm.engine.score import score
from fastgmm.kernels import FULL
from fastgmm.kernels.blocks import n_slots_for, next_task, task_queue
from fastgmm.kernels.fullgemm import PENDING, full_em_pass
from fastgmm.kernels.kmeans import label_stats, lloyd_run
from fastgmm.kernels.logdensity import GEMM_MIN_D
from fastgmm.kernels.lowd32 import use_lowd32
from fastgmm.kernels.passes import em_pass, score_pass
from fastgmm.kernels.seeding import plusplus_run
from fastgmm.kernels.vecmath import FLOOR, exp_shifted_sum, log_pos
from fastgmm.model import covariance as cov
from fastgmm.model.params import Params, kernel_inputs

from .. import reference as ref

COV_TYPES = ref.MODELS  # every covariance model of the table
ROUNDS_N = 5000  # at d=64, K=16, FULL, 128-row chunks: more chunks than slots
DTYPES = [np.float32, np.float64]

#: (n, d, K, chunk): n < one block, exactly one block, K=1, d=1, several chunks,
#: many chunks, more FULL chunks than partial-sum slots (reduced in rounds: see
#: test_rounds_case_has_more_chunks_than_slots), and the chunk size the driver picks.
SHAPES = [
    pytest.param(37, 1, 1, None, id="n37-d1-K1"),
    pytest.param(BLOCK, 2, 3, None, id="n128-d2-K3"),
    pytest.param(300, 3, 1, None, id="n300-d3-K1"),
    pytest.param(517, 1, 4, 2 * BLOCK, id="n517-d1-K4-3chunks"),
    pytest.param(1000, 4, 3, 3 * BLOCK, id="n1000-d4-K3-3chunks"),
    pytest.param(66 * BLOCK + 300, 2, 2, BLOCK, id="n8748-d2-K2-69chunks"),
    pytest.param(5000, 5, 4, None, id="n5000-d5-K4-driverchunks"),
    # from GEMM_MIN_D features on, FULL and TIED use a BLAS GEMM per block
    pytest.param(300, GEMM_MIN_D, 3, 2 * BLOCK, id="n300-d16-K3-gemm"),
    pytest.param(333, GEMM_MIN_D + 5, 2, None, id="n333-d21-K2-gemm"),
    # larger d: the GEMM whitening (and, in fullgemm, the column groups beyond d = 24)
    pytest.param(600, 32, 3, 2 * BLOCK, id="n600-d32-K3"),
    pytest.param(700, 48, 2, 4 * BLOCK, id="n700-d48-K2-groups"),
    pytest.param(ROUNDS_N, 64, 16, BLOCK, id="n5000-d64-K16-rounds"),
]


# ----------------------------------------------------------------------------- helpers
def make_problem(rng, n, d, n_components, covariance_type, dtype, weighted):
    """(X, sample_weight or None, Params) with X drawn from the random mixture."""
    w, means, covariances, prec_chol = ref.random_params(
        rng, n_components, d, covariance_type
    )
    X = ref.sample_mixture(rng, n, w, means, covariances, covariance_type).astype(dtype)
    sw = None
    if weighted:
        sw = rng.uniform(0.0, 3.0, n)
        sw[rng.random(n) < 0.1] = 0.0  # some zero weights
    return X, sw, Params(cov.get(covariance_type), w, means, covariances, prec_chol)


def kernel_args(params, covariance_type):
    """(kind, const, loc, prec) of ``params`` read as ``covariance_type``."""
    return kernel_inputs(replace(params, model=cov.get(covariance_type))).astuple()


def run_em_pass(X, sw, params, covariance_type, ref_point, chunk):
    kind, const, loc, prec = kernel_args(params, covariance_type)
    sw_arr = np.empty(0) if sw is None else np.asarray(sw, np.float64)
    return em_pass(X, sw_arr, kind, const, loc, prec, ref_point, chunk)


def run_score_pass(X, params, covariance_type, chunk, lse=True, resp=True, labels=True):
    n, n_components = X.shape[0], params.means.shape[0]
    kind, const, loc, prec = kernel_args(params, covariance_type)
    out_lse = np.empty(n if lse else 0, X.dtype)
    out_resp = np.empty((n if resp else 0, n_components), X.dtype)
    out_label = np.empty(n if labels else 0, np.int64)
    score_pass(X, kind, const, loc, prec, chunk, out_lse, out_resp, out_label)
    return out_lse, out_resp, out_label


def assert_close(actual, expected, rtol, scale=None):
    """allclose with an absolute tolerance relative to ``scale`` (default: max |expected|)."""
    expected = np.asarray(expected, np.float64)
    if scale is None:
        scale = max(float(np.max(np.abs(expected), initial=0.0)), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def oracle_stats(X, sw, params, covariance_type, ref_point):
    log_norm, resp = ref.e_step(
        X, params.weights, params.means, params.prec_chol, covariance_type
    )
    w = np.ones(len(X)) if sw is None else sw
    nk, s1, s2 = ref.sufficient_stats(X, resp, sw, ref_point, covariance_type)
    return float(np.sum(w * log_norm)), nk, s1, s2


def chunk_for(chunk, d, n_components):
    return chunk_rows(d, n_components) if chunk is None else chunk


# ------------------------------------------------------------------ oracle cross-check
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_oracle_log_density_matches_scipy(rng, covariance_type):
    """The oracle itself: log N from precision-Cholesky factors equals scipy's logpdf."""
    n_components, d = 3, 4
    _, means, covariances, prec_chol = ref.random_params(
        rng, n_components, d, covariance_type
    )
    X = rng.normal(scale=3.0, size=(50, d))
    got = ref.log_gaussian_prob(X, means, prec_chol, covariance_type)
    full = {
        "full": lambda k: covariances[k],
        "tied": lambda k: covariances,
        "diag": lambda k: np.diag(covariances[k]),
        "spherical": lambda k: covariances[k] * np.eye(d),
        "EEI": lambda k: np.diag(covariances),
        "EII": lambda k: float(covariances) * np.eye(d),
    }[covariance_type]
    for k in range(n_components):
        expected = multivariate_normal(means[k], full(k)).logpdf(X)
        np.testing.assert_allclose(got[:, k], expected, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", ref.COVARIANCE_TYPES)
def test_oracle_m_step_matches_sklearn(rng, covariance_type):
    """The oracle's M-step equals scikit-learn's _estimate_gaussian_parameters."""
    from sklearn.mixture._gaussian_mixture import _estimate_gaussian_parameters

    X = rng.normal(size=(200, 3)) + 2.0
    resp = rng.dirichlet(np.ones(4), size=200)
    nk, means, cov_sk = _estimate_gaussian_parameters(X, resp, 1e-6, covariance_type)
    w, means_o, cov_o = ref.m_step(X, resp, 1e-6, covariance_type)
    np.testing.assert_allclose(w, nk / nk.sum(), rtol=1e-14)
    np.testing.assert_allclose(means_o, means, rtol=1e-13)
    np.testing.assert_allclose(cov_o, cov_sk, rtol=1e-10)


# -------------------------------------------------------------------------- em_pass
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("n, d, n_components, chunk", SHAPES)
def test_em_pass_matches_oracle(
    rng, n, d, n_components, chunk, covariance_type, dtype, weighted
):
    X, sw, params = make_problem(
        rng, n, d, n_components, covariance_type, dtype, weighted
    )
    # statistics about a reference point that is not the mean
    ref_point = np.ascontiguousarray(
        params.means + rng.normal(scale=0.3, size=params.means.shape)
    )
    ll, nk, s1, s2 = run_em_pass(
        X, sw, params, covariance_type, ref_point, chunk_for(chunk, d, n_components)
    )
    ll_o, nk_o, s1_o, s2_o = oracle_stats(X, sw, params, covariance_type, ref_point)

    total = float(np.sum(sw)) if weighted else float(n)
    np.testing.assert_allclose(ll, ll_o, rtol=1e-11)
    assert_close(nk, nk_o, 1e-11, scale=total)
    scale1 = float(np.sum(np.abs(X.astype(float) - ref_point.mean(0)))) * (total / n)
    assert_close(s1, s1_o, 1e-10, scale=scale1)
    if covariance_type == "full":
        assert s2.shape == (n_components, d, d)
        lower = np.tril(np.ones((d, d), bool))
        assert_close(s2[:, lower], s2_o[:, lower], 1e-10)
    elif covariance_type == "tied":
        assert s2.shape == (n_components, 1, d)  # tied scatter comes from X'X, not here
    else:
        assert s2.shape == (n_components, 1, d)
        assert_close(s2, s2_o, 1e-10)


@pytest.mark.parametrize("kernel", ["em_pass", "full_em_pass"])
def test_em_pass_sparse_responsibilities_match_oracle(rng, kernel):
    """Far-apart components: most responsibilities are exactly 0 (fullgemm skips
    their rows in its scatter, and one component queues more than PENDING rows
    in a chunk: a mid-chunk flush); the statistics still equal the oracle's, through
    the general pass and the FULL GEMM pass."""
    n, d, chunk = 700, 48, 4 * BLOCK
    w, means, covariances, prec_chol = ref.random_params(rng, 2, d, "full")
    means *= 4.0
    X = ref.sample_mixture(rng, n, w, means, covariances, "full")
    params = Params(cov.get("full"), w, means, covariances, prec_chol)
    _, resp, _ = run_score_pass(X, params, "full", chunk)
    assert np.mean(resp == 0.0) > 0.2
    assert np.max(np.sum(resp[:chunk] > 0.0, axis=0)) > PENDING
    ref_point = np.ascontiguousarray(means + rng.normal(scale=0.3, size=means.shape))
    if kernel == "em_pass":
        ll, nk, s1, s2 = run_em_pass(X, None, params, "full", ref_point, chunk)
    else:
        kind, const, loc, prec = kernel_args(params, "full")
        ll, nk, s1, s2 = full_em_pass(
            X, np.empty(0), kind, const, loc, prec, ref_point, chunk
        )
    ll_o, nk_o, s1_o, s2_o = oracle_stats(X, None, params, "full", ref_point)
    np.testing.assert_allclose(ll, ll_o, rtol=1e-11)
    assert_close(nk, nk_o, 1e-11, scale=n)
    assert_close(s1, s1_o, 1e-10, scale=float(np.sum(np.abs(X - ref_point.mean(0)))))
    lower = np.tril(np.ones((d, d), bool))
    assert_close(s2[:, lower], s2_o[:, lower], 1e-10)


def test_em_pass_zero_weights_equal_removed_rows(rng):
    X, _, params = make_problem(rng, 700, 3, 3, "full", np.float64, False)
    sw = rng.integers(0, 2, len(X)).astype(np.float64)
    chunk = 2 * BLOCK
    ref_point = np.ascontiguousarray(params.means)
    got = run_em_pass(X, sw, params, "full", ref_point, chunk)
    kept = np.ascontiguousarray(X[sw > 0])
    expected = run_em_pass(kept, None, params, "full", ref_point, chunk)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------- score_pass
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("n, d, n_components, chunk", SHAPES)
def test_score_pass_matches_oracle(
    rng, n, d, n_components, chunk, covariance_type, dtype
):
    X, _, params = make_problem(rng, n, d, n_components, covariance_type, dtype, False)
    lse, resp, labels = run_score_pass(
        X, params, covariance_type, chunk_for(chunk, d, n_components)
    )
    log_norm, resp_o = ref.e_step(
        X, params.weights, params.means, params.prec_chol, covariance_type
    )
    wlp = ref.weighted_log_prob(
        X, params.weights, params.means, params.prec_chol, covariance_type
    )
    assert lse.dtype == dtype and resp.dtype == dtype and labels.dtype == np.int64
    rtol = 1e-12 if dtype == np.float64 else 2e-7
    np.testing.assert_allclose(lse, log_norm, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(resp, resp_o, rtol=0, atol=10 * rtol)
    # labels: argmax of the weighted log-probabilities, ignoring exact near-ties
    top2 = np.sort(wlp, axis=1)[:, -2:] if n_components > 1 else None
    clear = np.ones(n, bool) if top2 is None else (top2[:, 1] - top2[:, 0]) > 1e-9
    np.testing.assert_array_equal(labels[clear], np.argmax(wlp, axis=1)[clear])


@pytest.mark.parametrize("wanted", [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1)])
def test_score_pass_outputs_are_independent(rng, wanted):
    """Outputs given with length 0 are skipped and the others are unaffected."""
    X, _, params = make_problem(rng, 400, 2, 3, "tied", np.float64, False)
    full = run_score_pass(X, params, "tied", BLOCK)
    part = run_score_pass(X, params, "tied", BLOCK, *map(bool, wanted))
    for flag, a, b in zip(wanted, part, full):
        if flag:
            np.testing.assert_array_equal(a, b)
        else:
            assert a.shape[0] == 0


def test_score_pass_shares_read_only_empty_inputs():
    """score_pass hands the kernel one read-only empty float64 array per shape for
    "no sample weights" and "no statistics": nothing allocated or converted per call,
    and nothing a caller could write into."""
    from fastgmm.kernels.passes import _empty_input

    a, b = _empty_input(0), _empty_input(0, 3)
    assert a is _empty_input(0) and b is _empty_input(0, 3)
    assert a.shape == (0,) and b.shape == (0, 3)
    assert a.dtype == b.dtype == np.float64
    assert not a.flags.writeable and not b.flags.writeable


# ------------------------------------------------------------------ k-means kernels
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("n, d, n_components, chunk", SHAPES)
def test_label_stats_matches_oracle(
    rng, n, d, n_components, chunk, covariance_type, dtype, weighted
):
    X, sw, _ = make_problem(rng, n, d, n_components, "diag", dtype, weighted)
    labels = rng.integers(-1, n_components, n)  # -1: in no component
    centers = rng.normal(size=(n_components, d))
    kind = cov.TABLE[covariance_type].kind
    sw_arr = np.empty(0) if sw is None else sw
    nk, s1, s2 = label_stats(
        X,
        sw_arr,
        labels,
        n_components,
        kind,
        centers,
        chunk_for(chunk, d, n_components),
    )
    onehot = np.zeros((n, n_components))
    onehot[labels >= 0, labels[labels >= 0]] = 1.0
    nk_o, s1_o, s2_o = ref.sufficient_stats(X, onehot, sw, centers, covariance_type)
    assert_close(nk, nk_o, 1e-12)
    assert_close(s1, s1_o, 1e-10, scale=float(np.abs(s1_o).sum()) + 1.0)
    if kind == FULL:
        lower = np.tril(np.ones((d, d), bool))
        assert_close(s2[:, lower], s2_o[:, lower], 1e-10)
    else:
        assert s2.shape == (n_components, 1, d)
        if covariance_type != "tied":
            assert_close(s2, s2_o, 1e-10)


def test_label_stats_without_labels_is_one_component(rng):
    X = rng.normal(size=(1000, 3))
    ref_point = X[:1].copy()
    one = label_stats(X, np.empty(0), np.empty(0, np.int64), 1, FULL, ref_point, BLOCK)
    zeros = label_stats(
        X, np.empty(0), np.zeros(1000, np.int64), 1, FULL, ref_point, BLOCK
    )
    for a, b in zip(one, zeros):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(one[1][0], (X - ref_point).sum(0), rtol=1e-12)


def test_fast_exp_within_one_ulp_of_libm(rng):
    t = np.concatenate(
        [
            -rng.uniform(0, 1, 3000),
            -rng.uniform(0, FLOOR, 5000),
            -np.logspace(-300, np.log10(FLOOR), 1000),
            -np.linspace(0, FLOOR + 2, 200_003),  # dense: every reduction interval
            # the reduction's edges: r = +-ln2/2 about each n
            -(np.arange(0, 722) + 0.5) * np.log(2) * (1 + rng.uniform(-1e-12, 1e-12)),
            [
                0.0,
                -0.0,
                -1e-300,
                -5e-324,
                -np.log(2),
                -FLOOR + 1e-9,
                -708.0,
                -FLOOR - 1,
                -745.0,
                -746.0,
                -1e300,
                -np.inf,
            ],
        ]
    )
    # exp(row - mx) for the difference as computed (the edge cases exactly: mx = 0)
    mx = np.where(np.isfinite(t) & (np.abs(t) > 1e-3), rng.uniform(-50, 50, len(t)), 0)
    row = t + mx
    t = row - mx
    acc = rng.uniform(0, 2, len(t))
    out, s = row.copy(), acc.copy()
    exp_shifted_sum(out, mx, len(out), s)
    expected = np.exp(t)
    expected[t <= -FLOOR] = 0.0  # below the floor: exactly zero, -inf included
    ulp = np.spacing(expected)
    assert np.all(np.abs(out - expected) <= ulp)
    assert out[t == 0.0].tolist() == [1.0] * int(np.sum(t == 0.0))
    assert np.all(out[t <= -FLOOR] == 0.0)
    np.testing.assert_array_equal(s, acc + out)  # the sum the logsumexp needs
    # only the first nb entries are touched
    part, s_part = row[:100].copy(), acc[:100].copy()
    exp_shifted_sum(part, mx[:100], 40, s_part)
    np.testing.assert_array_equal(part[40:], row[40:100])
    np.testing.assert_array_equal(s_part[40:], acc[40:100])


def test_fast_exp_loop_is_simd_code_without_calls():
    """The fused exp loop compiles to vector instructions with 2^n by a bit cast,
    and calls nothing (a libm call or a non-inlined helper would block SIMD)."""
    import numba

    from fastgmm._jit import STRICT_FASTMATH

    fresh = numba.njit(fastmath=STRICT_FASTMATH)(exp_shifted_sum.py_func)
    row, mx, s = np.zeros(BLOCK), np.zeros(BLOCK), np.zeros(BLOCK)
    fresh(row, mx, BLOCK, s)
    (ir,) = fresh.inspect_llvm().values()
    body = re.search(r"^define [^\n]*@_ZN7fastgmm[^\n]*\n(.*?)\n}\n", ir, re.S | re.M)
    body = body.group(1)
    assert re.search(r"fmul[^<\n]*<(4|8) x double>", body)
    assert re.search(r"shl[^<\n]*<(4|8) x i64>", body)  # 2^n: bits, not memory
    called = re.findall(r"call [^@\n]*@([\w.$]+)", body)
    # only LLVM intrinsics that become instructions (min/max, fma), no libm
    assert all(n.startswith("llvm.") and "exp" not in n for n in called), called


def test_fast_log_within_one_ulp_of_libm(rng):
    tiny, huge = np.finfo(np.float64).tiny, np.finfo(np.float64).max
    x = np.concatenate(
        [
            rng.uniform(1.0, 64.0, 5000),  # the kernels' range: a sum with one term 1
            rng.uniform(0.5, 2.0, 5000),
            1.0 + rng.uniform(-1e-9, 1e-9, 1000),
            np.exp(rng.uniform(np.log(tiny), np.log(huge), 5000)),
            [1.0, 2.0, np.e, np.sqrt(0.5), np.sqrt(2.0), tiny, huge],
        ]
    )
    out = np.empty_like(x)
    log_pos(x, len(x), out, np.empty(len(x)))
    expected = np.log(x)
    assert np.all(np.abs(out - expected) <= np.spacing(np.abs(expected)))
    assert out[x == 1.0].tolist() == [0.0] * int(np.sum(x == 1.0))
    # outside positive normal floats: +inf stays inf, the rest is NaN (never a number)
    special = np.array([np.inf, np.nan, 0.0, -1.0, 5e-324, -np.inf])
    out = np.zeros(8)
    log_pos(special, 6, out, np.empty(6))
    assert out[0] == np.inf and np.all(np.isnan(out[1:6]))
    assert np.all(out[6:] == 0.0)  # only the first nb entries are written


# ------------------------------------------------------------------- em_step / score
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize(
    "n, d, n_components",
    [(37, 1, 1), (300, 3, 1), (517, 1, 4), (5000, 5, 4), (400, GEMM_MIN_D + 2, 3)],
    ids=[
        "n37-d1-K1",
        "n300-d3-K1",
        "n517-d1-K4",
        "n5000-d5-K4-3chunks",
        "n400-d18-K3-gemm",
    ],
)
def test_em_step_matches_oracle(
    rng, n, d, n_components, covariance_type, dtype, weighted
):
    X, sw, params = make_problem(
        rng, n, d, n_components, covariance_type, dtype, weighted
    )
    reg_covar = 1e-4
    data = make_data(X, sw, n_components, covariance_type)
    lower_bound, new = em_step(
        data, params, MaximumLikelihood(cov.get(covariance_type), reg_covar)
    )
    lb_o, w_o, means_o, cov_o, pc_o = ref.em_iteration(
        X,
        params.weights,
        params.means,
        params.prec_chol,
        covariance_type,
        reg_covar,
        sw,
    )
    # float32 data of few features (full, diag, spherical) are computed in float32
    # (kernels.lowd32): float32 tolerances there (tests/kernels/test_lowd32.py)
    kind = cov.get(covariance_type).kind
    f32 = use_lowd32(np.dtype(dtype), kind, d)
    np.testing.assert_allclose(lower_bound, lb_o, rtol=1e-6 if f32 else 1e-11)
    np.testing.assert_allclose(new.weights, w_o, rtol=1e-5 if f32 else 1e-10)
    assert_close(new.means, means_o, 1e-5 if f32 else 1e-10)
    assert_close(new.covariances, cov_o, 1e-4 if f32 else 1e-9)
    assert_close(new.prec_chol, pc_o, 1e-4 if f32 else 1e-8)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_score_matches_oracle(rng, covariance_type, dtype):
    X, _, params = make_problem(rng, 3000, 3, 4, covariance_type, dtype, False)
    lse, resp, labels = score(X, params, lse=True, resp=True, labels=True)
    log_norm, resp_o = ref.e_step(
        X, params.weights, params.means, params.prec_chol, covariance_type
    )
    rtol = 1e-12 if dtype == np.float64 else 2e-7
    np.testing.assert_allclose(lse, log_norm, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(resp, resp_o, atol=10 * rtol)
    assert np.mean(labels == resp_o.argmax(1)) > 0.999
    (only_labels,) = score(X, params, labels=True)
    np.testing.assert_array_equal(only_labels, labels)


# ----------------------------------------------------------------------- invariants
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_responsibilities_sum_to_one(rng, covariance_type, dtype):
    X, _, params = make_problem(rng, 1500, 3, 4, covariance_type, dtype, False)
    X[:5] *= 50.0  # points where one component dominates by far
    _, resp, _ = run_score_pass(X, params, covariance_type, BLOCK)
    assert np.all(resp >= 0)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(resp.astype(float).sum(1), 1.0, rtol=0, atol=tol)
    # the weighted responsibilities of em_pass sum to the weights
    sw = rng.uniform(0, 2, len(X))
    _, nk, _, _ = run_em_pass(X, sw, params, covariance_type, params.means, BLOCK)
    np.testing.assert_allclose(nk.sum(), sw.sum(), rtol=1e-12)


def test_full_scatter_is_symmetric_psd(rng):
    # nearly collinear data: the scatter is close to singular
    t = rng.normal(size=(2000, 1))
    X = np.hstack(
        [t, 2 * t + 1e-6 * rng.normal(size=(2000, 1)), rng.normal(size=(2000, 1))]
    )
    _, _, params = make_problem(rng, 10, 3, 3, "full", np.float64, False)
    _, nk, s1, s2 = run_em_pass(X, None, params, "full", params.means, BLOCK)
    for k in range(3):
        sym = np.tril(s2[k]) + np.tril(s2[k], -1).T
        centred = sym - np.outer(s1[k], s1[k]) / nk[k]
        eig = np.linalg.eigvalsh(centred)
        assert eig.min() >= -1e-10 * eig.max()
    data = make_data(X, None, 3, "full")
    _, new = em_step(data, params, MaximumLikelihood(cov.get("full"), 0.0))
    for c in new.covariances:
        np.testing.assert_allclose(c, c.T, rtol=1e-14, atol=1e-14 * np.abs(c).max())
        assert np.linalg.eigvalsh((c + c.T) / 2).min() >= -1e-10 * np.abs(c).max()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_diag_as_full_gives_same_outputs(rng, covariance_type, dtype):
    X, sw, params = make_problem(rng, 700, 3, 3, covariance_type, dtype, True)
    pc = params.prec_chol
    if covariance_type == "spherical":
        pc = np.repeat(pc[:, None], 3, axis=1)
    full = Params(
        cov.get("full"), params.weights, params.means, None,
        np.stack([np.diag(p) for p in pc]),
    )  # fmt: skip
    lse_d, resp_d, lab_d = run_score_pass(X, params, covariance_type, BLOCK)
    lse_f, resp_f, lab_f = run_score_pass(X, full, "full", BLOCK)
    rtol = 1e-12 if dtype == np.float64 else 2e-7
    np.testing.assert_allclose(lse_d, lse_f, rtol=rtol)
    assert np.mean(lab_d == lab_f) > 0.999  # equal but for exact near-ties
    np.testing.assert_allclose(resp_d, resp_f, atol=10 * rtol)
    ll_d, nk_d, s1_d, s2_d = run_em_pass(
        X, sw, params, covariance_type, params.means, BLOCK
    )
    ll_f, nk_f, s1_f, s2_f = run_em_pass(X, sw, full, "full", params.means, BLOCK)
    np.testing.assert_allclose(ll_d, ll_f, rtol=1e-12)
    np.testing.assert_allclose(nk_d, nk_f, rtol=1e-12)
    np.testing.assert_allclose(s1_d, s1_f, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        s2_d[:, 0], np.diagonal(s2_f, axis1=1, axis2=2), rtol=1e-10
    )


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_permuting_components_permutes_outputs(rng, covariance_type):
    X, sw, params = make_problem(rng, 900, 3, 4, covariance_type, np.float64, True)
    perm = np.array([2, 0, 3, 1])
    shared = covariance_type in ref.SHARED
    pc = params.prec_chol if shared else params.prec_chol[perm]
    permuted = Params(params.model, params.weights[perm], params.means[perm], None, pc)
    lse, resp, labels = run_score_pass(X, params, covariance_type, BLOCK)
    lse_p, resp_p, labels_p = run_score_pass(X, permuted, covariance_type, BLOCK)
    np.testing.assert_allclose(lse_p, lse, rtol=1e-13)
    np.testing.assert_allclose(resp_p, resp[:, perm], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(perm[labels_p], labels)
    ref_point = np.ascontiguousarray(params.means)
    out = run_em_pass(X, sw, params, covariance_type, ref_point, BLOCK)
    out_p = run_em_pass(X, sw, permuted, covariance_type, ref_point[perm], BLOCK)
    np.testing.assert_allclose(out_p[0], out[0], rtol=1e-13)
    for a, b in zip(out_p[1:], out[1:]):
        np.testing.assert_allclose(a, b[perm], rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_far_points_and_zero_weights_stay_finite(rng, covariance_type, dtype):
    """-inf log-weights and points ~1e12 standard deviations away: finite, no NaN."""
    X, _, params = make_problem(rng, 300, 2, 3, covariance_type, dtype, False)
    X[:3] = np.array([[1e12, -1e12], [-3e12, 0.0], [0.0, 5e11]], dtype=dtype)
    weights = params.weights.copy()
    weights[1] = 0.0  # log w = -inf for one component
    weights /= weights.sum()
    zero_w = Params(params.model, weights, params.means, None, params.prec_chol)
    for p in (params, zero_w):
        lse, resp, labels = run_score_pass(X, p, covariance_type, BLOCK)
        assert np.all(np.isfinite(lse)) and np.all(np.isfinite(resp))
        np.testing.assert_array_equal(labels, resp.argmax(1))
        assert lse[:3].max() < -1e20  # really far away, yet finite
        np.testing.assert_allclose(resp.astype(float).sum(1), 1.0, atol=1e-6)
        ll, nk, s1, s2 = run_em_pass(X, None, p, covariance_type, p.means, BLOCK)
        assert np.isfinite(ll) and all(np.all(np.isfinite(a)) for a in (nk, s1, s2))
    _, resp0, labels0 = run_score_pass(X, zero_w, covariance_type, BLOCK)
    assert np.all(resp0[:, 1] == 0.0) and not np.any(labels0 == 1)


def test_empty_component_gives_finite_parameters(rng):
    """A component no point reaches: zero responsibilities, finite M-step (reg_covar)."""
    X = rng.normal(size=(400, 2))
    means = np.array([[0.0, 0.0], [1e3, 1e3]])
    prec_chol = np.stack([np.eye(2), np.eye(2)])
    params = Params(cov.get("full"), np.array([0.5, 0.5]), means, None, prec_chol)
    ll, nk, s1, s2 = run_em_pass(X, None, params, "full", means, BLOCK)
    assert nk[1] == 0.0 and np.all(s1[1] == 0.0) and np.all(s2[1] == 0.0)
    _, new = em_step(
        make_data(X, None, 2, "full"), params, MaximumLikelihood(cov.get("full"), 1e-6)
    )
    for a in (new.weights, new.means, new.covariances, new.prec_chol):
        assert np.all(np.isfinite(a))
    np.testing.assert_allclose(new.covariances[1], 1e-6 * np.eye(2))
    lb_o, w_o, means_o, cov_o, _ = ref.em_iteration(
        X, params.weights, means, prec_chol, "full", 1e-6
    )
    np.testing.assert_allclose(ll / len(X), lb_o, rtol=1e-12)
    np.testing.assert_allclose(new.weights, w_o, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(new.means[0], means_o[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(new.covariances[0], cov_o[0], rtol=1e-10)


# -------------------------------------------------------------- reproducibility
def _all_kernels(X, sw, params, covariance_type, chunk):
    """Every kernel's outputs, as a flat list of arrays."""
    n, n_components = X.shape[0], params.means.shape[0]
    ref_point = np.ascontiguousarray(params.means)
    out = list(run_em_pass(X, sw, params, covariance_type, ref_point, chunk))
    sw = np.empty(0) if sw is None else sw
    out += list(run_score_pass(X, params, covariance_type, chunk))
    labels = np.arange(n) % n_components
    kind = cov.TABLE[covariance_type].kind
    out += list(label_stats(X, sw, labels, n_components, kind, ref_point, chunk))
    mean = X.mean(axis=0)
    centers = np.ascontiguousarray(ref_point - mean, X.dtype)
    lab = np.full(n, -1, np.int8)
    nk, s1, state = np.empty(n_components), np.empty(centers.shape), np.zeros(2, int)
    status = lloyd_run(X, sw, mean, centers, 1e-4, 300, 300, chunk, lab, nk, s1, state)
    out += [np.asarray(status), lab, centers, state] + ([nk, s1] if status == 2 else [])
    d2 = np.full(n, np.inf, X.dtype)
    draws = np.random.default_rng(1).random((n_components - 1, 3))
    seeds = np.empty(centers.shape, X.dtype), np.empty(n_components, np.int64)
    plusplus_run(X, sw, mean, 0, draws, chunk, *seeds, d2)
    out += [*seeds, d2]
    return [np.asarray(a) for a in out]


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
@pytest.mark.parametrize("d", [3, GEMM_MIN_D, 32, 48])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_one_thread_equals_two_threads_bitwise(rng, covariance_type, dtype, d):
    X, sw, params = make_problem(
        rng, 20 * BLOCK + 55, d, 3, covariance_type, dtype, True
    )
    with threads(1):
        assert numba.get_num_threads() == 1
        one = _all_kernels(X, sw, params, covariance_type, BLOCK)
    with threads(2):
        assert numba.get_num_threads() == 2
        two = _all_kernels(X, sw, params, covariance_type, BLOCK)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_run_to_run_bitwise_equal(rng, covariance_type):
    X, sw, params = make_problem(
        rng, 70 * BLOCK + 9, 2, 2, covariance_type, np.float64, True
    )
    first = _all_kernels(X, sw, params, covariance_type, BLOCK)
    for _ in range(2):
        again = _all_kernels(X, sw, params, covariance_type, BLOCK)
        for a, b in zip(first, again):
            assert a.tobytes() == b.tobytes()


# ------------------------------------------------------------- scheduling and slots
def test_rounds_case_has_more_chunks_than_slots():
    """SHAPES' rounds case reduces FULL chunks in more than one round of slots."""
    n_chunks = -(-ROUNDS_N // BLOCK)
    assert n_slots_for(n_chunks, 16, 64, 64) < n_chunks  # FULL: rounds
    assert n_slots_for(n_chunks, 16, 1, 64) == n_chunks  # DIAG: one round


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
def test_task_queue_hands_out_every_task_once():
    """Workers on every thread draw task numbers from one atomic counter: each task
    is taken exactly once however the threads interleave."""

    @numba.njit(parallel=True)
    def draw(n_tasks, taken, owner):
        queue, n_workers = task_queue(n_tasks)
        for w in numba.prange(n_workers):
            c = next_task(queue)
            while c < n_tasks:
                taken[c] += 1
                owner[c] = w
                c = next_task(queue)
        return n_workers

    n_tasks = 200_000
    with threads(2):
        taken, owner = np.zeros(n_tasks, np.int64), np.full(n_tasks, -1)
        assert draw(n_tasks, taken, owner) == 2
    assert np.all(taken == 1)
    with threads(2):
        assert draw(1, np.zeros(1, np.int64), np.zeros(1, np.int64)) == 1
