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

**The scatter over the rows that count.** The weighted scatter
S_k = sum_b r_bk (x_b - ref_k)(x_b - ref_k)' adds, per block and component, only the
rows whose term r |x - ref|^2 is at least ``SCATTER_EPS`` times the largest one of
the block (queued as sqrt(r)(x - ref) columns, one Gram product per ``PENDING`` of
them: :func:`add_gram`, SIMD over the queued points).
A skipped term is below 2^-80 of a kept one, hence of trace(S_k): far below the
rounding of the sum, so S_k is the same to ~1e-16 relative while the off-cluster
responsibilities (e^-50 to e^-500 between separated clusters, zero beyond) stop
costing d^2 each. nk and s1 take every row (SIMD over points, or point by point over
the non-zero responsibilities when at most ``SPARSE_MAX`` of them are). With many
non-zero ones, a term is computed only where its bound r (|y| + |a|)^2 (y = x - c,
a = ref - c, |y| from the load) reaches SCATTER_EPS times the term of the row that
maximises the bound, and s1 is sum r y - nk a (exact to eps nk |a|: the new mean's
error eps |a|, as scikit-learn's eps |x|): no per-point pass of d multiply-adds for
the terms. A block whose largest term (or bound) overflows computes every term and
keeps every row with r > 0, as em_pass does.

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
from .logdensity import data_shape
from .passes import _argmax, _store_pair, block_resp

#: rows gathered per component before one Gram product adds their scatter
PENDING = 64


@kernel
def add_gram(rows, n_rows, out):
    """out[i, j] += sum_{b < n_rows} rows[i, b] rows[j, b] for j <= i: the lower
    triangle of a Gram product of points along the last axis (rows (d, >= n_rows)),
    SIMD over points in 2 x 2 tiles of (i, j) (a fixed order: the same result for
    any thread count). Measured 4x faster than np.dot (which allocates its result
    and adds both triangles) at d = 16 and 2.5x faster than dsyrk at d = 64."""
    d = rows.shape[0]
    for i0 in range(0, d - 1, 2):
        xi0, xi1 = rows[i0], rows[i0 + 1]
        for j0 in range(0, i0 + 1, 2):
            xj0, xj1 = rows[j0], rows[j0 + 1]
            a00, a01, a10, a11 = 0.0, 0.0, 0.0, 0.0
            for b in range(n_rows):
                u0, u1, v0, v1 = xi0[b], xi1[b], xj0[b], xj1[b]
                a00 += u0 * v0
                a01 += u0 * v1
                a10 += u1 * v0
                a11 += u1 * v1
            out[i0, j0] += a00
            out[i0 + 1, j0] += a10
            out[i0 + 1, j0 + 1] += a11
            if j0 < i0:
                out[i0, j0 + 1] += a01
    if d % 2 == 1:
        xi = rows[d - 1]
        for j in range(d):
            acc = 0.0
            for b in range(n_rows):
                acc += xi[b] * rows[j, b]
            out[d - 1, j] += acc


@kernel
def flush_pending(pend, fill, s2):
    """Add the pending points' scatter (lower triangle) to s2 and empty the buffers."""
    for k in range(fill.shape[0]):
        add_gram(pend[k], fill[k], s2[k])
        fill[k] = 0


#: the bound of a row's scatter term (_sums_bounded) widened past its rounding
BOUND_SLACK = 1.0 + 2.0**-20
#: FULL models with at least this many features take this path (engine/em.py)
GEMM_MIN_D = 16
#: columns of one U_k per product (see module docstring)
GROUP = 8
#: columns of one product: components x GROUP (its (COLS, BLOCK) result stays in L2)
COLS = 256
#: relative size below which a row's scatter term is skipped (module docstring)
SCATTER_EPS = 2.0**-80
#: a component whose fraction of non-zero responsibilities in a block is at most
#: this takes its sums point by point over those, else SIMD over all points
SPARSE_MAX = 0.25


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
def _queue(n_rows, rows, k, r, xct, a, pend, fill, s2):
    """Queue sqrt(r_b)(y_b - a_k) for b in rows[:n_rows] as columns of pend[k]
    (d, PENDING); add their Gram whenever PENDING are queued."""
    d = xct.shape[0]
    queued = pend[k]
    for i in range(n_rows):
        b = rows[i]
        sr = np.sqrt(r[b])
        at = fill[k]
        for j in range(d):
            queued[j, at] = sr * (xct[j, b] - a[k, j])
        fill[k] = at + 1
        if at + 1 == PENDING:
            add_gram(queued, PENDING, s2[k])
            fill[k] = 0


@kernel
def _term(xct, b, rb, a, k):
    """r_b |y_b - a_k|^2."""
    q = 0.0
    for j in range(xct.shape[0]):
        t = xct[j, b] - a[k, j]
        q += t * t
    return rb * q


@kernel
def _sums_dense(nb, k, r, xct, a, s1, term):
    """s1[k] += sum_b r_b (y_b - a_k) and term[b] := r_b |y_b - a_k|^2 (0 where
    r_b = 0), every point, SIMD over points; returns max_b term[b]."""
    d = xct.shape[0]
    for b in range(nb):
        term[b] = 0.0
    for j in range(d):
        m = a[k, j]
        acc = 0.0
        for b in range(nb):
            t = xct[j, b] - m
            acc += r[b] * t
            term[b] += t * t
        s1[k, j] += acc
    top = 0.0
    for b in range(nb):
        t = r[b] * term[b] if r[b] != 0.0 else 0.0
        term[b] = t
        top = max(top, t)
    return top


@kernel
def _sums_sparse(nb, k, r, xct, a, s1, term):
    """_sums_dense over the points with r_b != 0 only, point by point."""
    d = xct.shape[0]
    top = 0.0
    for b in range(nb):
        rb = r[b]
        q = 0.0
        if rb != 0.0:
            for j in range(d):
                t = xct[j, b] - a[k, j]
                s1[k, j] += rb * t
                q += t * t
            q *= rb
        term[b] = q
        top = max(top, q)
    return top


@kernel
def _sums_bounded(nb, k, r, total, ys, a, s1, scratch):
    """_sums_dense without a term per point: s1[k] += sum_b r_b y_b - total a_k, and
    rows[:n] := the points whose term may reach SCATTER_EPS times the largest, by
    the bound r_b (|y_b| + |a_k|)^2 against the term of the point that maximises it,
    term[:n] := their terms. Returns (n, their largest term); n = -1 (nothing
    written) if the bound is not finite."""
    xct, ynorm = ys
    term, rows = scratch
    d = xct.shape[0]
    norm = 0.0
    for j in range(d):
        norm += a[k, j] * a[k, j]
    norm = np.sqrt(norm)
    most = 0.0
    for b in range(nb):
        u = ynorm[b] + norm
        u = r[b] * (u * u) * BOUND_SLACK
        term[b] = u
        most = max(most, u)
    if not most < np.inf:
        return -1, 0.0
    best = 0
    for b in range(nb):
        if term[b] == most:
            best = b
            break
    low = _term(xct, best, r[best], a, k)  # <= the largest term (0: every row)
    for j in range(d):
        acc = 0.0
        y = xct[j]
        for b in range(nb):
            acc += r[b] * y[b]
        s1[k, j] += acc - total * a[k, j]
    cut = SCATTER_EPS * low
    n = 0
    for b in range(nb):  # branch-free: most rows are skipped
        rows[n] = b
        n += (r[b] != 0.0) & (term[b] >= cut)
    top = 0.0
    for i in range(n):
        t = _term(xct, rows[i], r[rows[i]], a, k)
        term[i] = t
        top = max(top, t)
    return n, top


@kernel
def block_stats(nb, a, resp, ys, nk, s1, s2, pend, fill, scratch):
    """Add one block's statistics about ref = centre + a (a (K, d)) into nk, s1 and
    (through the pending points, module docstring) s2. ys = (xct (d, BLOCK), ynorm
    (BLOCK,)): the points y = x - centre, transposed, and their norms; pend (K, d,
    PENDING), fill (K,): the queued points; scratch = (term (BLOCK,) float64, rows
    (BLOCK,) int64). A component with at most SPARSE_MAX of the block's
    responsibilities non-zero takes them point by point, else SIMD over points, its
    scatter's terms bounded first (_sums_bounded)."""
    xct = ys[0]
    term, rows = scratch
    for k in range(a.shape[0]):
        r = resp[k]
        total, count = 0.0, 0
        for b in range(nb):
            total += r[b]
            count += r[b] != 0.0
        nk[k] += total
        if count == 0:
            continue
        n = -1
        if count > SPARSE_MAX * nb:
            n, top = _sums_bounded(nb, k, r, total, ys, a, s1, scratch)
            if n < 0:
                top = _sums_dense(nb, k, r, xct, a, s1, term)
        else:
            top = _sums_sparse(nb, k, r, xct, a, s1, term)
        cut = SCATTER_EPS * top if top < np.inf else 0.0
        n_rows = 0
        if n >= 0:  # the candidates rows[:n], their terms term[:n]
            for i in range(n):
                rows[n_rows] = rows[i]
                n_rows += term[i] >= cut
        else:
            for b in range(nb):  # branch-free: most rows are skipped
                rows[n_rows] = b
                n_rows += (r[b] != 0.0) & (term[b] >= cut)
        _queue(n_rows, rows, k, r, xct, a, pend, fill, s2)


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
        block_stats(nb, a, lp, ys, nk, s1, s2, pend, fill, scratch)
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
