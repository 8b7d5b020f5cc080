"""Kernels: every component's FULL log-density as ONE GEMM per block, through the
expanded quadratic form (how scikit-learn scores diagonal models), for small d.

With P_k = U_k U_k' (the precision), a_k = mu_k - c (c the centre of fullgemm) and
y = x - c,

    lp_k(x) = const_k - 0.5 (y - a_k)' P_k (y - a_k)
            = sum_f F_f(y) C[k, f],   F(y) = [y_i y_j (i <= j), y_i, 1]

with C[k] = [-P_ij (i < j) and -P_ii / 2, (P_k a_k)_i, const_k - a_k' P_k a_k / 2].
The d(d+1)/2 + d + 1 features (153 at d = 16) against the (K, 153) coefficients are
one product of inner size 153: the triangle's work (136 + d multiply-adds per point
and component) at BLAS's full speed, where fullgemm's column groups have an inner
size of 8 to d and 1.4x the triangle's work at d = 16 (benchmarks/full_gemm.py).

**Cancellation.** The form adds terms as large as |y|^2 ||P_k|| to get a result
near d for a point inside component k: its rounding error is about
eps sqrt(n_features) |y|^2 ||P_k||, where fullgemm's form, ||y U_k - m_k||^2, errs by
about eps times the result. A block takes this form only when
max_b |y_b|^2 max_k ||P_k||_inf <= ``QUAD_MAX`` (||P||_inf >= its largest
eigenvalue): an error below ~1e-12 in every log-density (2^14 eps sqrt(153)), a
hundredth of the 1e-10 agreement with scikit-learn asked for; else (a tight component
far from the centre with points near it, a far outlier) it takes fullgemm's form.
The choice depends on the block's rows only: the same for any thread count.
"""

import numpy as np

from .._jit import kernel
from .blas import gemm_points

#: largest max_b |y_b|^2 max_k ||P_k||_inf a block may have to take this form
QUAD_MAX = 2.0**14
#: FULL models with at most this many features may take this form (beyond, the
#: features of a block outgrow L2: 561 x 128 float64 at d = 32)
QUAD_MAX_D = 24


def use_quad(n_features):
    """Whether FULL blocks of ``n_features`` features may take this form."""
    return n_features <= QUAD_MAX_D


@kernel
def n_quad_features(d):
    """d(d+1)/2 + d + 1 (the features F(y) of the module docstring)."""
    return d * (d + 1) // 2 + d + 1


@kernel
def quad_inputs(const, loc, prec, centre):
    """(C (K, n_quad_features(d)), [max_k ||P_k||_inf]) of the module docstring for
    means ``loc`` (K, d), upper-triangular factors ``prec`` (K, d, d) and the
    constants ``const`` (K,). Feature order: y_0 .. y_{d-1}, 1, then y_i y_j for
    i = 0 .. d-1, j = i .. d-1."""
    n_components, d = loc.shape
    C = np.zeros((n_components, n_quad_features(d)))
    P = np.empty((d, d))
    a = np.empty(d)
    p_norm = 0.0
    for k in range(n_components):
        U = prec[k]
        for i in range(d):
            a[i] = loc[k, i] - centre[i]
            for j in range(i, d):
                acc = 0.0
                for t in range(j, d):  # U upper triangular: U[i, t] = 0 for t < i
                    acc += U[i, t] * U[j, t]
                P[i, j] = acc
                P[j, i] = acc
        aPa = 0.0
        for i in range(d):
            Pa, row = 0.0, 0.0
            for j in range(d):
                Pa += P[i, j] * a[j]
                row += abs(P[i, j])
            C[k, i] = Pa
            aPa += a[i] * Pa
            p_norm = max(p_norm, row)
        C[k, d] = const[k] - 0.5 * aPa
        f = d + 1
        for i in range(d):
            C[k, f] = -0.5 * P[i, i]
            for j in range(i + 1, d):
                C[k, f + j - i] = -P[i, j]
            f += d - i
    return C, np.full(1, p_norm)


@kernel
def quad_features(ft, d, nb):
    """ft[d:, :nb] := the rest of F(y_b) (module docstring) for the centred points
    that ft[:d, :nb] holds (so ft[:d] serves as the points' buffer)."""
    for b in range(nb):
        ft[d, b] = 1.0
    f = d + 1
    for i in range(d):
        for j in range(i, d):
            xi, xj, out = ft[i], ft[j], ft[f]
            for b in range(nb):
                out[b] = xi[b] * xj[b]
            f += 1


@kernel
def quad_log_prob(nb, C, ft, lp, args):
    """lp[:, :nb] := the log-densities (with const) of the points whose features
    ft[:, :nb] holds: one GEMM (``args``: the BLAS argument buffer)."""
    gemm_points(ft, nb, C.shape[1], C, C.shape[0], lp, args)
