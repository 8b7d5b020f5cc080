"""Kernels: log N(x | mu_k, Sigma_k) for a block of points and every component.

Points are processed in blocks of at most ``BLOCK`` rows held *transposed*
(features x points, float64), so every inner loop runs over points, element-wise,
and LLVM turns it into SIMD code without any unsafe fastmath.

Three kernel kinds serve the four covariance types (variants are data):

``FULL``  (full)       prec has shape (K, d, d), upper-triangular precision Cholesky U_k:
                       maha = || (x - mu_k) U_k ||^2
``TIED``  (tied)       prec has shape (1, d, d): the block is whitened once, z = x U,
                       and ``loc`` holds mu_k U, so maha = || z - loc_k ||^2 (cost d, not d^2)
``DIAG``  (diag and spherical) prec has shape (K, 1, d): maha = sum_j ((x_j - mu_kj) p_kj)^2

FULL at d <= 3 and DIAG at d <= 3 compute every feature in one pass over the block,
DIAG at d >= 4 eight (then four) features per pass: each pass loads and stores the
running sum once, and at small d those loads, stores and per-component calls cost
more than the arithmetic (benchmarks/log_density_ab.py).
"""

import numpy as np

from .._jit import BLOCK, kernel
from . import DIAG, FULL, TIED


@kernel
def data_shape(X):
    """(n, d) of the data pair X = (float64 rows, float32 rows), one of them empty
    (see ``fastgmm._jit.float_pair``)."""
    return X[0].shape[0] + X[1].shape[0], X[0].shape[1]


@kernel
def _copy_block(X, start, nb, xt):
    """xt[j, b] = X[start + b, j] for b < nb; one loop over the rows at d <= 3 (a
    loop over j inside is scalar code: 2.0 against 0.9 ns per point at d = 3)."""
    d = X.shape[1]
    if d > 3:
        for b in range(nb):
            for j in range(d):
                xt[j, b] = X[start + b, j]
        return
    x0, x1, x2 = xt[0], xt[min(1, d - 1)], xt[d - 1]
    i1, i2 = min(1, d - 1), d - 1
    for b in range(nb):
        x0[b] = X[start + b, 0]
        x1[b] = X[start + b, i1]
        x2[b] = X[start + b, i2]


@kernel
def load_block(X, start, nb, xt):
    """Copy rows ``start:start+nb`` of the data pair X (see data_shape), whichever
    dtype holds them, into xt (d, BLOCK) float64."""
    if X[0].shape[0] > 0:
        _copy_block(X[0], start, nb, xt)
    else:
        _copy_block(X[1], start, nb, xt)


@kernel
def _whiten(xt, nb, upper, zt):
    """zt[j, b] = sum_{i <= j} xt[i, b] * upper[i, j]  (z = x U for an upper-triangular U)."""
    d = xt.shape[0]
    for j in range(d):
        for b in range(nb):
            zt[j, b] = 0.0
        for i in range(j + 1):
            p = upper[i, j]
            for b in range(nb):
                zt[j, b] += xt[i, b] * p


@kernel
def _maha_upper(xt, nb, mean, upper, acc, maha):
    """maha[b] = ||(x_b - mean) U||^2 for b < nb, U upper-triangular (d, d).

    One pass over the block per non-zero of U, each fused with the subtraction and
    the last one with the square, so nothing but ``acc`` (BLOCK,) is stored between
    passes (the small-d FULL path: no whitened block is kept).
    """
    d = xt.shape[0]
    for j in range(d):
        ujj, mj = upper[j, j], mean[j]
        if j == 0:
            for b in range(nb):
                t = (xt[0, b] - mj) * ujj
                maha[b] = t * t
            continue
        u, m = upper[0, j], mean[0]
        for b in range(nb):
            acc[b] = (xt[0, b] - m) * u
        for i in range(1, j):
            u, m = upper[i, j], mean[i]
            for b in range(nb):
                acc[b] += (xt[i, b] - m) * u
        for b in range(nb):
            t = acc[b] + (xt[j, b] - mj) * ujj
            maha[b] += t * t


@kernel
def _diag_log_prob(xt, nb, const, loc, prec, lp, maha):
    """lp[k, b] = const[k] - 0.5 sum_j ((x_bj - loc_kj) p_kj)^2 for b < nb (DIAG,
    d >= 4; below, block_log_prob's pass per feature is as fast).

    Eight (then four) features per pass over the block, so ``maha`` (BLOCK,) is
    loaded and stored once per eight features, not once per feature: at d=16, K=16
    1.4-1.6x the pass per feature (one thread, CPU time, in one process). Every
    component in one call: a call per component costs as much as its passes at d=3.
    """
    d = xt.shape[0]
    for k in range(const.shape[0]):
        mean, p = loc[k], prec[k, 0]
        for b in range(nb):
            maha[b] = 0.0
        j = 0
        while j + 8 <= d:
            x0, x1, x2, x3 = xt[j], xt[j + 1], xt[j + 2], xt[j + 3]
            x4, x5, x6, x7 = xt[j + 4], xt[j + 5], xt[j + 6], xt[j + 7]
            m0, m1, m2, m3 = mean[j], mean[j + 1], mean[j + 2], mean[j + 3]
            m4, m5, m6, m7 = mean[j + 4], mean[j + 5], mean[j + 6], mean[j + 7]
            p0, p1, p2, p3 = p[j], p[j + 1], p[j + 2], p[j + 3]
            p4, p5, p6, p7 = p[j + 4], p[j + 5], p[j + 6], p[j + 7]
            for b in range(nb):
                t0 = (x0[b] - m0) * p0
                t1 = (x1[b] - m1) * p1
                t2 = (x2[b] - m2) * p2
                t3 = (x3[b] - m3) * p3
                t4 = (x4[b] - m4) * p4
                t5 = (x5[b] - m5) * p5
                t6 = (x6[b] - m6) * p6
                t7 = (x7[b] - m7) * p7
                low = (t0 * t0 + t1 * t1) + (t2 * t2 + t3 * t3)
                maha[b] += low + ((t4 * t4 + t5 * t5) + (t6 * t6 + t7 * t7))
            j += 8
        if j + 4 <= d:
            x0, x1, x2, x3 = xt[j], xt[j + 1], xt[j + 2], xt[j + 3]
            m0, m1, m2, m3 = mean[j], mean[j + 1], mean[j + 2], mean[j + 3]
            p0, p1, p2, p3 = p[j], p[j + 1], p[j + 2], p[j + 3]
            for b in range(nb):
                t0 = (x0[b] - m0) * p0
                t1 = (x1[b] - m1) * p1
                t2 = (x2[b] - m2) * p2
                t3 = (x3[b] - m3) * p3
                maha[b] += (t0 * t0 + t1 * t1) + (t2 * t2 + t3 * t3)
            j += 4
        for i in range(j, d):
            m, q = mean[i], p[i]
            for b in range(nb):
                t = (xt[i, b] - m) * q
                maha[b] += t * t
        c = const[k]
        for b in range(nb):
            lp[k, b] = c - 0.5 * maha[b]


@kernel
def _diag_log_prob_small(xt, nb, const, loc, prec, lp):
    """_diag_log_prob for d < 4: every feature in one pass, written into lp."""
    d = xt.shape[0]
    x0, x1, x2 = xt[0], xt[min(1, d - 1)], xt[min(2, d - 1)]
    for k in range(const.shape[0]):
        c = const[k]
        m0, p0 = loc[k, 0], prec[k, 0, 0]
        if d == 1:
            for b in range(nb):
                t0 = (x0[b] - m0) * p0
                lp[k, b] = c - 0.5 * (t0 * t0)
            continue
        m1, p1 = loc[k, 1], prec[k, 0, 1]
        if d == 2:
            for b in range(nb):
                t0 = (x0[b] - m0) * p0
                t1 = (x1[b] - m1) * p1
                lp[k, b] = c - 0.5 * (t0 * t0 + t1 * t1)
            continue
        m2, p2 = loc[k, 2], prec[k, 0, 2]
        for b in range(nb):
            t0 = (x0[b] - m0) * p0
            t1 = (x1[b] - m1) * p1
            t2 = (x2[b] - m2) * p2
            lp[k, b] = c - 0.5 * (t0 * t0 + t1 * t1 + t2 * t2)


@kernel
def _full_log_prob_small(xt, nb, const, loc, prec, lp):
    """lp[k, b] = const[k] - 0.5 ||(x_b - loc_k) U_k||^2 for d <= 3 (FULL), every
    feature in one pass (U_k = prec[k] upper-triangular)."""
    d = xt.shape[0]
    x0, x1, x2 = xt[0], xt[min(1, d - 1)], xt[min(2, d - 1)]
    for k in range(const.shape[0]):
        c, u = const[k], prec[k]
        m0 = loc[k, 0]
        if d == 1:
            u00 = u[0, 0]
            for b in range(nb):
                t0 = (x0[b] - m0) * u00
                lp[k, b] = c - 0.5 * (t0 * t0)
            continue
        m1, u00, u01, u11 = loc[k, 1], u[0, 0], u[0, 1], u[1, 1]
        if d == 2:
            for b in range(nb):
                y0 = x0[b] - m0
                t0 = y0 * u00
                t1 = y0 * u01 + (x1[b] - m1) * u11
                lp[k, b] = c - 0.5 * (t0 * t0 + t1 * t1)
            continue
        m2, u02, u12, u22 = loc[k, 2], u[0, 2], u[1, 2], u[2, 2]
        for b in range(nb):
            y0 = x0[b] - m0
            y1 = x1[b] - m1
            t0 = y0 * u00
            t1 = y0 * u01 + y1 * u11
            t2 = y0 * u02 + y1 * u12 + (x2[b] - m2) * u22
            lp[k, b] = c - 0.5 * (t0 * t0 + t1 * t1 + t2 * t2)


#: from this dimension on, FULL and TIED whiten each block with a GEMM (np.dot)
#: instead of the SIMD loops (measured: ~1.2-2x the loops at d >= 16; below, the call
#: overhead loses). The EM pass of FULL from d = 16 is kernels.fullgemm's; here FULL
#: at d >= 16 serves scoring. No triangular dtrmm here (it beat the GEMM on the full
#: square only from d = 32, by 16 against 20 us per 128 rows at d = 64): its code cost
#: ~1 s of the compile of every pass kernel, which the d = 3 demo waits for.
GEMM_MIN_D = 16


#: at d <= 3 blocks get up to SMALL_D_ROWS rows while their log-densities (K x rows,
#: float64) stay within LP_BYTES (see block_buffers)
SMALL_D_ROWS = 8 * BLOCK
LP_BYTES = 64 * 1024


@kernel
def block_buffers(d, n_components):
    """Zeroed scratch for one task of B rows: mats (4, d, B) = xt, dk, zt, rd;
    lp (K, B); vec (6, B) = weights (ones), s, mx, and three scratch rows.

    B = BLOCK, or at d <= 3 up to SMALL_D_ROWS (a multiple of BLOCK with lp within
    LP_BYTES): there the loops' fixed cost per block and component (broadcasts,
    alias checks, horizontal sums) is a large part of the work (at 1M x 3, K=8:
    1024 rows, which chunks of 2304 rows use as three blocks of 768: 0.8x the time
    of 128-row blocks, one thread). Callers that loop in blocks of BLOCK rows may
    use these buffers."""
    rows = BLOCK
    if d <= 3:
        fit = LP_BYTES // (8 * n_components) // BLOCK * BLOCK
        rows = max(BLOCK, min(SMALL_D_ROWS, fit))
    vec = np.zeros((6, rows))
    vec[0] = 1.0
    return np.zeros((4, d, rows)), np.zeros((n_components, rows)), vec


@kernel
def block_log_prob(nb, kind, const, loc, prec, mats, lp, maha):
    """Weighted log-probabilities of the block held in mats[0] (d, BLOCK).

    lp[k, b] = const[k] - 0.5 * maha_k(x_b), for b < nb, where
    const[k] = log w_k + log det U_k - d/2 log(2 pi). mats[1], mats[2] and
    ``maha`` (BLOCK,) are scratch.
    """
    xt, dk, zt = mats[0], mats[1], mats[2]
    d = xt.shape[0]
    n_components = const.shape[0]
    gemm = d >= GEMM_MIN_D
    if kind == TIED:
        if gemm:
            np.dot(prec[0].T, xt, zt)
        else:
            _whiten(xt, nb, prec[0], zt)
    if kind == DIAG:
        if d >= 4:
            _diag_log_prob(xt, nb, const, loc, prec, lp, maha)
        else:
            _diag_log_prob_small(xt, nb, const, loc, prec, lp)
        return
    if kind == FULL and d <= 3:
        _full_log_prob_small(xt, nb, const, loc, prec, lp)
        return
    for k in range(n_components):
        if kind == FULL and not gemm:
            _maha_upper(xt, nb, loc[k], prec[k], dk[0], maha)
        elif kind == FULL:
            for i in range(d):
                m = loc[k, i]
                for b in range(nb):
                    dk[i, b] = xt[i, b] - m
            np.dot(prec[k].T, dk, zt)
            for b in range(nb):
                maha[b] = 0.0
            for j in range(d):
                for b in range(nb):
                    maha[b] += zt[j, b] * zt[j, b]
        elif kind == TIED:
            for b in range(nb):
                maha[b] = 0.0
            for j in range(d):
                m = loc[k, j]
                for b in range(nb):
                    t = zt[j, b] - m
                    maha[b] += t * t
        c = const[k]
        for b in range(nb):
            lp[k, b] = c - 0.5 * maha[b]
