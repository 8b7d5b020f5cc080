"""Kernels: the statistics of the float32 pass at few features (kernels/lowd32.py).

A block's sums (at most lowd32.BLOCK32 rows) are float32: n, s1 and s2 about the
reference float32(ref - c) per component, laid out as part (K, 1 + d + d * d); they
are added to the chunk's float64 sums in one flat loop (:func:`_add_part`), which
go to the chunk's slot once per chunk (:func:`_flush_part`); at the end of the pass
:func:`move_stats` moves the statistics onto ``ref`` in float64.
"""

import numpy as np

from .._jit import kernel
from . import DIAG, FULL

_ZERO = np.float32(0.0)


@kernel
def _stats_small32(nb, kind, xt, ref, ex, scale, part):
    """A block's statistics at d <= 3 about ref (K, d) float32, r = ex * scale, as
    float32 sums into part (K, 1 + d + d * d): n, s1 (d), s2 (d x d: lower triangle
    for FULL, diagonal for DIAG). Features beyond d are computed on a repeated row
    and not stored."""
    d = xt.shape[0]
    x0, x1, x2 = xt[0], xt[min(1, d - 1)], xt[min(2, d - 1)]
    for k in range(ex.shape[0]):
        e = ex[k]
        m0, m1, m2 = ref[k, 0], ref[k, min(1, d - 1)], ref[k, min(2, d - 1)]
        n, a0, a1, a2 = _ZERO, _ZERO, _ZERO, _ZERO
        q00, q10, q11, q20, q21, q22 = _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO
        if kind == DIAG:
            for b in range(nb):
                r = e[b] * scale[b]
                y0, y1, y2 = x0[b] - m0, x1[b] - m1, x2[b] - m2
                u0, u1, u2 = r * y0, r * y1, r * y2
                n += r
                a0 += u0
                a1 += u1
                a2 += u2
                q00 += u0 * y0
                q11 += u1 * y1
                q22 += u2 * y2
        else:
            for b in range(nb):
                r = e[b] * scale[b]
                y0, y1, y2 = x0[b] - m0, x1[b] - m1, x2[b] - m2
                u0, u1, u2 = r * y0, r * y1, r * y2
                n += r
                a0 += u0
                a1 += u1
                a2 += u2
                q00 += u0 * y0
                q10 += u1 * y0
                q11 += u1 * y1
                q20 += u2 * y0
                q21 += u2 * y1
                q22 += u2 * y2
        a, q = (a0, a1, a2), ((q00, _ZERO, _ZERO), (q10, q11, _ZERO), (q20, q21, q22))
        row = part[k]
        row[0] = n
        for i in range(d):
            row[1 + i] = a[i]
            for j in range(i + 1):
                row[1 + d + i * d + j] = q[i][j]


@kernel
def _stats32(nb, kind, xt, ref, ex, scale, part, yt, ut):
    """_stats_small32 for any d: the centred rows into yt and r * yt into ut (d, B)
    float32, then one pass per statistic."""
    d = xt.shape[0]
    for k in range(ex.shape[0]):
        e, row = ex[k], part[k]
        n = _ZERO
        for b in range(nb):
            r = e[b] * scale[b]
            n += r
            e[b] = r
        row[0] = n
        for j in range(d):
            m = ref[k, j]
            a = _ZERO
            for b in range(nb):
                y = xt[j, b] - m
                u = e[b] * y
                yt[j, b] = y
                ut[j, b] = u
                a += u
            row[1 + j] = a
        for i in range(d):
            for j in range(0 if kind == FULL else i, i + 1):
                q = _ZERO
                for b in range(nb):
                    q += ut[i, b] * yt[j, b]
                row[1 + d + i * d + j] = q


@kernel
def _add_part(part, acc):
    """acc += part in float64 (flat (K * (1 + d + d * d),) views of the layout of
    _stats_small32), as SIMD loops, if every entry of part is finite (returns False,
    adding nothing, if not: squares of points ~1e19 from a mean overflow float32)."""
    check = _ZERO
    for i in range(part.shape[0]):
        check += part[i] * _ZERO  # NaN unless finite
    if check != _ZERO:
        return False
    for i in range(part.shape[0]):
        acc[i] += np.float64(part[i])
    return True


@kernel
def _flush_part(kind, acc, nk, s1, s2):
    """Add a chunk's float64 sums acc (layout of _stats_small32's part) to its
    statistics nk, s1, s2 (lower triangle for FULL, the diagonal for DIAG) and
    zero acc."""
    n_components, d = s1.shape
    for k in range(n_components):
        row = acc[k]
        nk[k] += row[0]
        for i in range(d):
            s1[k, i] += row[1 + i]
            for j in range(0 if kind == FULL else i, i + 1):
                v = row[1 + d + i * d + j]
                if kind == DIAG:
                    s2[k, 0, i] += v
                else:
                    s2[k, i, j] += v
        for i in range(row.shape[0]):
            row[i] = 0.0


@kernel
def move_stats(kind, used, ref, nk, s1, s2):
    """Statistics about ``used`` moved onto ``ref`` in place (delta = used - ref):
    s1 += nk delta; s2 += delta s1' + s1 delta' + nk delta delta' (lower triangle
    for FULL, the diagonal for DIAG), with the old s1."""
    n_components, d = ref.shape
    for k in range(n_components):
        delta = used[k] - ref[k]
        a = s1[k].copy()
        for i in range(d):
            lo = 0 if kind == FULL else i
            for j in range(lo, i + 1):
                add = delta[i] * a[j] + a[i] * delta[j] + nk[k] * delta[i] * delta[j]
                s2[k, 0 if kind == DIAG else i, j] += add
            s1[k, i] += nk[k] * delta[i]
