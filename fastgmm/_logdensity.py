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
"""

import numpy as np

from ._blas import whiten_rows
from ._jit import BLOCK, kernel

FULL, TIED, DIAG = 0, 1, 2


@kernel
def load_block(X, start, nb, xt):
    """Copy rows ``start:start+nb`` of X (n, d), any float dtype, into xt (d, BLOCK) float64."""
    d = X.shape[1]
    for b in range(nb):
        for j in range(d):
            xt[j, b] = X[start + b, j]


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


#: from this dimension on, FULL and TIED whiten each block with BLAS (dtrmm; FULL also
#: accumulates its scatter with dsyrk, see _estep) instead of the SIMD loops
#: (measured: ~1.2-2x the loops at d >= 16; below, the call overhead loses)
GEMM_MIN_D = 16
#: ... and from this one the triangular dtrmm beats a GEMM on the full square
#: (measured 128 rows: d=16 2.6 vs 1.7 us, d=32 equal, d=64 16 vs 20 us)
TRMM_MIN_D = 32


@kernel
def block_buffers(d, n_components):
    """Zeroed scratch for one task: mats (4, d, BLOCK) = xt, dk, zt, rd;
    dkt (BLOCK, d); lp (K, BLOCK); vec (4, BLOCK) = weights, s, mx, ex."""
    vec = np.zeros((4, BLOCK))
    vec[0] = 1.0
    return (
        np.zeros((4, d, BLOCK)),
        np.zeros((BLOCK, d)),
        np.zeros((n_components, BLOCK)),
        vec,
    )


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
        if d >= TRMM_MIN_D:
            for j in range(d):
                for b in range(nb):
                    zt[j, b] = xt[j, b]
            whiten_rows(prec[0], zt, nb)
        elif gemm:
            np.dot(prec[0].T, xt, zt)
        else:
            _whiten(xt, nb, prec[0], zt)
    for k in range(n_components):
        for b in range(nb):
            maha[b] = 0.0
        if kind == FULL:
            trmm = d >= TRMM_MIN_D
            dst = zt if trmm else dk
            for i in range(d):
                m = loc[k, i]
                for b in range(nb):
                    dst[i, b] = xt[i, b] - m
            if trmm:
                whiten_rows(prec[k], zt, nb)
            elif gemm:
                np.dot(prec[k].T, dk, zt)
            else:
                _whiten(dk, nb, prec[k], zt)
            for j in range(d):
                for b in range(nb):
                    maha[b] += zt[j, b] * zt[j, b]
        elif kind == TIED:
            for j in range(d):
                m = loc[k, j]
                for b in range(nb):
                    t = zt[j, b] - m
                    maha[b] += t * t
        else:
            for j in range(d):
                m = loc[k, j]
                p = prec[k, 0, j]
                for b in range(nb):
                    t = (xt[j, b] - m) * p
                    maha[b] += t * t
        c = const[k]
        for b in range(nb):
            lp[k, b] = c - 0.5 * maha[b]


def kernel_arrays(kind, log_weights, means, prec_chol_k, log_det):
    """Arrays the log-density kernel takes, from parameters in kernel layout.

    Parameters
    ----------
    kind : int
        FULL, TIED or DIAG.
    log_weights, log_det : ndarray of shape (K,)
    means : ndarray of shape (K, d)
    prec_chol_k : ndarray of shape (K, d, d), (1, d, d) or (K, 1, d)

    Returns
    -------
    const : ndarray (K,), loc : ndarray (K, d), prec : ndarray, all float64 C-contiguous.
    """
    d = means.shape[1]
    const = np.ascontiguousarray(log_weights + log_det - 0.5 * d * np.log(2 * np.pi))
    loc = means @ prec_chol_k[0] if kind == TIED else means
    prec = np.ascontiguousarray(prec_chol_k, dtype=np.float64)
    return const, np.ascontiguousarray(loc, dtype=np.float64), prec
