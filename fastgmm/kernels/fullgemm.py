"""Kernels: the fused E-step and statistics of the FULL kind at d >= 16 (full, and
tied or mclust's dense models when handed over as one factor per component).

Two changes to :func:`fastgmm.kernels.passes.em_pass`, measured in
``benchmarks/full_gemm.py`` and ``benchmarks/peers.py`` (README, Performance):

**The log-densities of all components in a few GEMMs per block.** With upper-
triangular precision factors U_k, a centre c (the mean of the component means,
against cancellation far from the origin) and y = x - c,

    maha_k(x) = || y U_k - m_k ||^2,   m_k = (mu_k - c) U_k            (scikit-learn's
                                                                         formula, centred)

Column j of U_k has non-zeros in rows i <= j only, so the columns are taken in
groups of ``GROUP``: group q needs only the first (q + 1) GROUP features of y. One
product per group and batch of components (``COLS`` columns): a block's 128 rows
times [U_1 ... U_K] restricted to the group, a GEMM with an inner size of 8 to d
instead of K tiny (d x d) @ (d x 128) products (1.1x the triangle's work at d = 64,
1.4x at d = 16; measured faster than groups of 4, 16 or 32 here). Whitened values
that overflow give a log-density of -inf or NaN, which block_resp treats as em_pass's
do (a point beyond every density). Up to d = ``fullquad.QUAD_MAX_D`` a block takes
instead :mod:`fastgmm.kernels.fullquad`'s single GEMM of the expanded quadratic form
(the triangle's work at an inner size of d(d+1)/2 + d + 1) when its bound on the
cancellation allows, which it does but for tight components far from the centre.

**The statistics** (nk, s1 and the scatter over the rows that count):
:mod:`fastgmm.kernels.fullstats`.

Statistics are about ``ref`` in float64, in a fixed order per chunk, and chunks add
their slots in chunk order: bitwise identical results for any thread count.
"""

import numpy as np
from numba import prange

from .._jit import BLOCK, kernel
from .blas import blas_args, gemm_points
from .blocks import add_slots, n_slots_for, next_task, slot_buffers, task_queue
from .fullquad import (
    QUAD_MAX,
    QUAD_MAX_D,
    n_quad_features,
    quad_features,
    quad_inputs,
    quad_log_prob,
)
from .fullstats import PENDING, block_stats, flush_pending
from .logdensity import data_shape
from .passes import _argmax, _store_pair, block_resp

#: FULL models with at least this many features take this path (engine/em.py)
GEMM_MIN_D = 16
#: columns of one U_k per product (see module docstring)
GROUP = 8
#: columns of one product: components x GROUP (its (COLS, BLOCK) result stays in L2)
COLS = 256


def use_gemm(n_features):
    """Whether the FULL kind takes this module's path for ``n_features`` features
    (a function of the shape only: results do not depend on the thread count)."""
    return n_features >= GEMM_MIN_D


@kernel
def gemm_inputs(loc, prec):
    """(W, m, centre) of the module docstring for means ``loc`` (K, d) and factors
    ``prec`` (K, d, d): W (groups, batches, per batch, g, d) holds in W[q, t, kk, jj]
    column q g + jj of U_k, k the kk-th component of batch t (zero below the
    triangle), g = min(d, GROUP); m (K, d)."""
    n_components, d = loc.shape
    g = min(d, GROUP)
    n_groups = (d + g - 1) // g
    per_batch = max(1, min(n_components, COLS // g))
    n_batches = (n_components + per_batch - 1) // per_batch
    centre = np.zeros(d)
    for k in range(n_components):
        centre += loc[k]
    centre /= n_components
    W = np.zeros((n_groups, n_batches, per_batch, g, d))
    m = np.zeros((n_components, d))
    for k in range(n_components):
        t, kk = k // per_batch, k % per_batch
        for j in range(d):
            q, jj = j // g, j % g
            acc = 0.0
            for i in range(j + 1):
                u = prec[k, i, j]
                W[q, t, kk, jj, i] = u
                acc += (loc[k, i] - centre[i]) * u
            m[k, j] = acc
    return W, m, centre


@kernel
def _copy_rows(X, b0, nb, centre, xct, ynorm):
    d = X.shape[1]
    for b in range(nb):
        sq = 0.0
        for j in range(d):
            v = np.float64(X[b0 + b, j]) - centre[j]
            xct[j, b] = v
            sq += v * v
        ynorm[b] = np.sqrt(sq)


@kernel
def load_rows(X, b0, nb, centre, xct, ynorm):
    """xct[:, :nb] := rows b0:b0+nb of the data pair X (float64) less ``centre``,
    transposed (the points y = x - c), and ynorm[:nb] := their norms |y|."""
    if X[0].shape[0] > 0:
        _copy_rows(X[0], b0, nb, centre, xct, ynorm)
    else:
        _copy_rows(X[1], b0, nb, centre, xct, ynorm)


@kernel
def _add_group(nb, k0, n_comp, j0, width, g, yt, m, lp):
    """lp[k0 + kk, b] += sum_{jj < width} (yt[kk g + jj, b] - m[k0 + kk, j0 + jj])^2."""
    for kk in range(n_comp):
        acc = lp[k0 + kk]
        for jj in range(width):
            row = yt[kk * g + jj]
            mj = m[k0 + kk, j0 + jj]
            for b in range(nb):
                t = row[b] - mj
                acc[b] += t * t


@kernel
def block_log_prob(nb, const, ins, xct, yt, lp, args):
    """lp[k, b] = const[k] - 0.5 maha_k(x_b) for b < nb (module docstring); xct
    (d, BLOCK) holds the centred points, yt (COLS', BLOCK) is scratch."""
    W, m, _ = ins
    n_components, d = m.shape
    n_groups, n_batches, per_batch, g = W.shape[:4]
    for k in range(n_components):
        for b in range(nb):
            lp[k, b] = 0.0
    for q in range(n_groups):
        rows = min(d, (q + 1) * g)
        width = min(g, d - q * g)
        for t in range(n_batches):
            k0 = t * per_batch
            n_comp = min(per_batch, n_components - k0)
            gemm_points(xct, nb, rows, W[q, t], n_comp * g, yt, args)
            _add_group(nb, k0, n_comp, q * g, width, g, yt, m, lp)
    for k in range(n_components):
        c = const[k]
        for b in range(nb):
            lp[k, b] = c - 0.5 * lp[k, b]


@kernel
def _log_prob(nb, const, ins, quad, ys, bufs, lp, args):
    """lp := the block's log-densities: fullquad's one GEMM where its bound allows
    (``quad`` = (C, [max ||P_k||_inf]), C empty: never), else block_log_prob.
    ys = (xct, ynorm) as load_rows writes them, xct = ft[:d] (bufs = (yt, ft))."""
    C, p_norm = quad
    yt, ft = bufs
    xct, ynorm = ys
    if C.shape[0] > 0:
        top = 0.0
        for b in range(nb):
            top = max(top, ynorm[b])
        if top * top * p_norm[0] <= QUAD_MAX:
            quad_features(ft, xct.shape[0], nb)
            quad_log_prob(nb, C, ft, lp, args)
            return
    block_log_prob(nb, const, ins, xct, yt, lp, args)


@kernel
def pass_inputs(const, loc, prec):
    """(W, m, centre, C, [max ||P_k||_inf]): gemm_inputs and, up to d = QUAD_MAX_D,
    fullquad.quad_inputs (else C is empty and no block takes the expanded form)."""
    d = loc.shape[1]
    W, m, centre = gemm_inputs(loc, prec)
    if d <= QUAD_MAX_D:
        C, p_norm = quad_inputs(const, loc, prec, centre)
    else:
        C, p_norm = np.empty((0, n_quad_features(d))), np.full(1, np.inf)
    return W, m, centre, C, p_norm


@kernel
def _buffers(ins):
    """(yt, ft, xct = ft[:d], ynorm (BLOCK,)): scratch of the log-densities."""
    W, m, _, C, _ = ins
    d = m.shape[1]
    ft = np.zeros((max(d, C.shape[1] if C.shape[0] > 0 else 0), BLOCK))
    yt = np.empty((W.shape[2] * W.shape[3], BLOCK))
    return yt, ft, ft[:d], np.zeros(BLOCK)


@kernel
def _chunk(X, sw, start, stop, ins, const, ref, nk, s1, s2):
    """E-step and statistics of rows start:stop; returns sum_i w_i log p(x_i)."""
    W, m, centre, C, p_norm = ins
    n_components, d = m.shape
    yt, ft, xct, ynorm = _buffers(ins)
    a = ref - centre
    lp = np.empty((n_components, BLOCK))
    vec = np.zeros((7, BLOCK))
    vec[0] = 1.0
    wb, s, mx, ex = vec[0], vec[1], vec[2], vec[3:6]
    scratch = (vec[6], np.empty(BLOCK, np.int64))
    pend = np.empty((n_components, d, PENDING))
    fill = np.zeros(n_components, np.int64)
    args = blas_args()
    ll = 0.0
    for b0 in range(start, stop, BLOCK):
        nb = min(BLOCK, stop - b0)
        load_rows(X, b0, nb, centre, xct, ynorm)
        if sw.shape[0] > 0:
            for b in range(nb):
                wb[b] = sw[b0 + b]
        ys = (xct, ynorm)
        _log_prob(nb, const, (W, m, centre), (C, p_norm), ys, (yt, ft), lp, args)
        ll += block_resp(lp, nb, wb, s, mx, ex)
        block_stats(nb, a, lp, xct, nk, s1, s2, pend, fill, scratch)
    flush_pending(pend, fill, s2)
    return ll


@kernel(parallel=True, inputs="X sw const loc prec ref", floats="X")
def full_em_pass(X, sw, kind, const, loc, prec, ref, chunk):
    """:func:`fastgmm.kernels.passes.em_pass` for the FULL kind at d >= GEMM_MIN_D
    (module docstring); same arguments and results.

    X (n, d) float32 or float64, sw (n,) or (0,), kind FULL, prec (K, d, d) upper
    triangular. Returns (loglik_sum, nk (K,), s1 (K, d), s2 (K, d, d)) about ``ref``
    (K, d), s2's lower triangle filled.
    """
    n, d = data_shape(X)
    n_components = const.shape[0]
    ins = pass_inputs(const, loc, prec)
    n_chunks = (n + chunk - 1) // chunk
    n_slots = n_slots_for(n_chunks, n_components, d, d)
    pll, pnk, ps1, ps2 = slot_buffers(n_slots, n_components, d, d)
    _, nk, s1, s2 = slot_buffers(1, n_components, d, d)
    ll = 0.0
    for g0 in range(0, n_chunks, n_slots):
        n_tasks = min(n_slots, n_chunks - g0)
        queue, n_workers = task_queue(n_tasks)
        for _ in prange(n_workers):
            c = next_task(queue)
            while c < n_tasks:
                start = (g0 + c) * chunk
                stop = min(n, start + chunk)
                pll[c] = _chunk(
                    X, sw, start, stop, ins, const, ref, pnk[c], ps1[c], ps2[c]
                )
                c = next_task(queue)
        ll += add_slots(n_tasks, pll, pnk, ps1, ps2, nk[0], s1[0], s2[0])
    return ll, nk[0], s1[0], s2[0]


@kernel
def _score_chunk(X, start, stop, ins, const, outs):
    """Per-point outputs of rows start:stop into the non-empty ones of outs =
    (out_lse, out_resp, out_label), as passes._chunk_pass's."""
    W, m, centre, C, p_norm = ins
    n_components, d = m.shape
    out_lse, out_resp, out_label = outs
    resp = out_lse[0].shape[0] + out_lse[1].shape[0] > 0
    resp = resp or out_resp[0].shape[0] + out_resp[1].shape[0] > 0
    yt, ft, xct, ynorm = _buffers(ins)
    lp = np.empty((n_components, BLOCK))
    vec = np.zeros((6, BLOCK))
    vec[0] = 1.0
    wb, s, mx, ex = vec[0], vec[1], vec[2], vec[3:6]
    args = blas_args()
    for b0 in range(start, stop, BLOCK):
        nb = min(BLOCK, stop - b0)
        load_rows(X, b0, nb, centre, xct, ynorm)
        ys = (xct, ynorm)
        _log_prob(nb, const, (W, m, centre), (C, p_norm), ys, (yt, ft), lp, args)
        if out_label.shape[0] > 0:
            _argmax(lp, nb, b0, out_label)
        if resp:
            block_resp(lp, nb, wb, s, mx, ex)
            _store_pair(out_lse, b0, nb, s)
            _store_pair(out_resp, b0, nb, lp)


@kernel(parallel=True, inputs="X const loc prec", floats="X out_lse out_resp")
def full_score_pass(X, kind, const, loc, prec, chunk, out_lse, out_resp, out_label):
    """:func:`fastgmm.kernels.passes.score_pass` for the FULL kind at d >=
    GEMM_MIN_D: the same outputs, the log-densities as full_em_pass's."""
    n = data_shape(X)[0]
    ins = pass_inputs(const, loc, prec)
    n_chunks = (n + chunk - 1) // chunk
    # the parallel loop takes arrays, not tuples of writable arrays (as mixture_pass)
    lse64, lse32 = out_lse
    resp64, resp32 = out_resp
    queue, n_workers = task_queue(n_chunks)
    for _ in prange(n_workers):
        c = next_task(queue)
        while c < n_chunks:
            start = c * chunk
            stop = min(n, start + chunk)
            outs = ((lse64, lse32), (resp64, resp32), out_label)
            _score_chunk(X, start, stop, ins, const, outs)
            c = next_task(queue)
