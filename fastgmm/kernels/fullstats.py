"""Kernels: the statistics of fullgemm's pass (the FULL kind at d >= 16): nk, s1 and
the scatter of each component about ``ref``, from a block's responsibilities.

**The scatter over the rows that count.** The weighted scatter
S_k = sum_b r_bk (x_b - ref_k)(x_b - ref_k)' adds, per block and component, only the
rows whose term r |x - ref|^2 is at least ``SCATTER_EPS`` times the largest one of
the block (queued as sqrt(r)(x - ref) columns, one Gram product per ``PENDING`` of
them: :func:`add_gram`, SIMD over the queued points).
A skipped term is below 2^-80 of a kept one, hence of trace(S_k): far below the
rounding of the sum, so S_k is the same to ~1e-16 relative while the off-cluster
responsibilities (e^-50 to e^-500 between separated clusters, zero beyond) stop
costing d^2 each. nk and s1 take every row (SIMD over points, or point by point over
the non-zero responsibilities when at most ``SPARSE_MAX`` of them are), about
ref_k = c + a_k from the centred points y = x - c. A block whose largest term
overflows keeps every row with r > 0, as em_pass does.

Statistics are about ``ref`` in float64, in a fixed order per chunk (the callers add
chunks in chunk order): bitwise identical results for any thread count.
"""

import numpy as np

from .._jit import kernel

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


#: relative size below which a row's scatter term is skipped (module docstring)
SCATTER_EPS = 2.0**-80
#: a component whose fraction of non-zero responsibilities in a block is at most
#: this takes its sums point by point over those, else SIMD over all points
SPARSE_MAX = 0.25


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
def block_stats(nb, a, resp, xct, nk, s1, s2, pend, fill, scratch):
    """Add one block's statistics about ref = centre + a (a (K, d)) into nk, s1 and
    (through the pending points, module docstring) s2. xct (d, BLOCK): the points
    y = x - centre, transposed; pend (K, d, PENDING), fill (K,): the queued points;
    scratch = (term (BLOCK,) float64, rows (BLOCK,) int64). A component with at most
    SPARSE_MAX of the block's responsibilities non-zero takes them point by point,
    else SIMD over points."""
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
        if count > SPARSE_MAX * nb:
            top = _sums_dense(nb, k, r, xct, a, s1, term)
        else:
            top = _sums_sparse(nb, k, r, xct, a, s1, term)
        cut = SCATTER_EPS * top if top < np.inf else 0.0
        n_rows = 0
        for b in range(nb):  # branch-free: most rows are skipped
            rows[n_rows] = b
            n_rows += (r[b] != 0.0) & (term[b] >= cut)
        _queue(n_rows, rows, k, r, xct, a, pend, fill, s2)
