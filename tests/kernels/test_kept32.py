"""The float32 scan for diaggemm's kept terms (kernels.kept32) against the dense
float64 reference (every term converted, the maximum, the terms above max - cut),
and diaggemm's float32 pass through it against its dense route."""

import numpy as np
import pytest

from fastgmm._jit import BLOCK
from fastgmm.kernels.diaggemm import GEMM_ROWS, TRUNCATE_LOG, diag_em_pass
from fastgmm.kernels.gselect import select_pass
from fastgmm.kernels.kept32 import kept_terms32
from fastgmm.model.params import kernel_inputs

from .helpers import assert_same_for_any_thread_count
from .test_diaggemm import problem

K = 64
CUT = TRUNCATE_LOG + np.log(K)


def dense_reference(lpx, c):
    """(k, b, v - max) of the terms kept, component by component: the dense path."""
    v = c[:, None] + lpx.astype(np.float64)
    mx = v.max(axis=0)
    k, b = np.nonzero(v >= mx - CUT)  # row-major: component by component
    return k, b, v[k, b] - mx[b], mx


def scan(lpx, c, cap=None):
    nb = lpx.shape[1]
    cap = K * nb if cap is None else cap
    mx = np.empty(nb)
    ents, t = np.empty((2, cap), np.int64), np.empty(cap)
    m = kept_terms32(
        lpx, nb, c, c.astype(np.float32), CUT, mx, np.empty((4, nb), np.float32),
        ents, t, cap, np.empty((3, cap)),
    )  # fmt: skip
    return m, ents[:, : max(m, 0)], t[: max(m, 0)], mx


def products(rng, nb, offset=-300.0):
    """lpx (K, nb) float32 of UBM-like magnitude (hundreds), c (K,) float64, and
    terms placed at the threshold: just above and just below max - cut, ties of the
    maximum, a component of weight 0 (c = -inf)."""
    lpx = (offset + 40.0 * rng.normal(size=(K, nb))).astype(np.float32)
    c = rng.normal(scale=50.0, size=K)
    v = c[:, None] + lpx.astype(np.float64)
    top = v.argmax(axis=0)
    for b in range(0, nb, 3):  # a second term within float32 rounding of the cut
        k = (top[b] + 1 + b % (K - 1)) % K
        target = v[top[b], b] - CUT + (b % 7 - 3) * 3e-8 * abs(v[top[b], b])
        lpx[k, b] = np.float32(target - c[k])
    for b in range(1, nb, 11):  # a tie of the maximum
        k = (top[b] + 5) % K
        lpx[k, b] = np.float32(v[top[b], b] - c[k])
    c[K // 2] = -np.inf
    return lpx, c


@pytest.mark.parametrize("nb", [1, 37, BLOCK, GEMM_ROWS])
@pytest.mark.parametrize("offset", [-300.0, 5e4], ids=["ubm", "large"])
def test_kept_set_is_the_dense_one(rng, nb, offset):
    """Same terms, same order (component by component, columns ascending), same
    float64 values and maxima as the dense float64 scan, with terms placed within
    float32 rounding of the threshold and ties of the maximum."""
    lpx, c = products(rng, nb, offset)
    k, b, t, mx = dense_reference(lpx, c)
    m, ents, got_t, got_mx = scan(lpx, c)
    assert m == len(k)
    np.testing.assert_array_equal(ents[0], k)
    np.testing.assert_array_equal(ents[1], b)
    np.testing.assert_array_equal(got_t, t)
    np.testing.assert_array_equal(got_mx, mx)
    # the threshold cases put more than one term in some columns
    assert m > nb or nb == 1


def test_declines_non_finite_products_and_too_many_terms(rng):
    """-2 for a column with a product that is not finite (far rows: the dense route
    recomputes them term by term); -1 past ``cap``."""
    lpx, c = products(rng, 50)
    for bad in (np.inf, -np.inf, np.nan):
        worse = lpx.copy()
        worse[3, 17] = bad
        assert scan(worse, c)[0] == -2
    assert scan(lpx, c, cap=49)[0] == -1
    m = scan(lpx, c)[0]
    assert scan(lpx, c, cap=m - 1)[0] == -1


def pass_args(X, params):
    kind, const, loc, prec = kernel_inputs(params).astuple()
    return X, np.empty(0), kind, const, loc, prec, np.ascontiguousarray(params.means)


@pytest.mark.parametrize("spread", [1.0, 3.0, 20.0])
def test_pass_equals_its_dense_route(rng, spread):
    """diaggemm's float32 pass (kept terms from the float32 scan) gives the
    statistics of its dense route (every term in float64: the route of a pass that
    records a selection) bitwise, and the log-likelihood to rounding (summed in
    GEMM blocks instead of BLOCKs); with far rows in some blocks."""
    n = 3 * GEMM_ROWS + 3 * BLOCK + 29
    X, params = problem(rng, n, 40, K, spread, np.float32)
    X[[5, GEMM_ROWS + 200]] = np.float32(1e30)
    args = pass_args(X, params)
    chunk = 2 * GEMM_ROWS
    a = diag_em_pass(*args, chunk)
    sel = np.full((n, 1), -1, np.int32)
    b = select_pass(*args, chunk, sel)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-14)
    for x, y in zip(a[1:], b[1:]):
        np.testing.assert_array_equal(x, y)


def test_pass_bitwise_for_any_thread_count(rng, no_serial_cutoff):
    n = 5 * GEMM_ROWS + 77
    X, params = problem(rng, n, 40, K, 3.0, np.float32)
    X[GEMM_ROWS + 3] = np.float32(-1e25)
    args = pass_args(X, params)
    assert_same_for_any_thread_count(lambda: diag_em_pass(*args, GEMM_ROWS))
