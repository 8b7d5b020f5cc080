"""Kernels: the kept terms of a block of float32 log-density products, found by a
float32 scan (the truncated posteriors of :mod:`fastgmm.kernels.diaggemm`).

diaggemm's float32 path computes a block's products P (K, B) by one sgemm; a term's
weighted log-density is v_kb = c_k + P_kb in float64, and the terms kept are those with
v_kb >= max_k v_kb - cut. Converting all K x B products to float64 and scanning them
twice (the maximum, then the kept list) cost more than the sgemm on the UBM case
(200k x 40, K=256: 0.4 % of the terms kept). :func:`kept_terms32` finds the same set
from float32 sums u_kb = fl32(P_kb + fl32(c_k)), 16 lanes wide:

1. the float32 maximum u_b of every column (and whether the column is finite);
2. the candidates u_kb >= u_b - cut - margin_b, component by component (a vector count
   per component first: most components have no candidate in a block);
3. for the candidates only, v_kb in float64 as the dense path computes it, the exact
   maximum v_b among them, and the terms v_kb >= v_b - cut.

**The kept set is the dense one exactly.** |u_kb - v_kb| <= e_kb = 2^-23 (|c_k| +
|u_kb|) (one rounding of c_k and one of the sum, each 2^-24 relative, plus v_kb's
float64 rounding). The largest v_b is attained at some k* with u_k*b >= v_b - e_k*b,
and u_b <= v_b + e, so every term of the dense set satisfies u_kb >= u_b - cut -
(e_kb + e_k'b + the float32 rounding of the threshold); margin_b = 2^-20 (max_k |c_k|
+ |u_b| + cut) bounds that sum. The maximum itself is a candidate, so step 3's v_b is
the dense maximum, and its comparison is the dense path's, in float64.
"""

import numpy as np

from .._jit import kernel

#: the relative bound of step 2's margin (module docstring)
MARGIN_REL = 2.0**-20


@kernel
def kept_terms32(lpx, nb, c, c32, cut, mx, scratch, ents, t, cap, order):
    """The terms v_kb = c[k] + lpx[k, b] (b < nb) at least mx[b] - cut, where
    mx[b] := max_k v_kb (float64), component by component (each component's in
    column order): ents[0, i] = k, ents[1, i] = b, t[i] = v_kb - mx[b]. Returns
    their number; -1 if there are more than ``cap`` candidates; -2 if a column has
    a product that is not finite or no finite term (the caller then takes the dense
    path). ``c32`` = c in lpx's dtype; ``scratch`` (4, >= nb) in lpx's dtype;
    ``order`` (3, cap) float64 scratch."""
    top, arg, thr = scratch[0], scratch[1], scratch[2]
    if not _column_max(lpx, nb, c32, top, arg, scratch[3]):
        return -2
    c_abs = 0.0
    for k in range(lpx.shape[0]):
        if c[k] > -np.inf:  # (a component of weight 0 has c = -inf)
            c_abs = max(c_abs, abs(c[k]))
    if nb > cap:
        return -1
    for b in range(nb):  # each column's float32 maximum is a candidate
        u_b = np.float64(top[b])
        thr[b] = u_b - cut - MARGIN_REL * (c_abs + abs(u_b) + cut)
        k = int(arg[b])
        mx[b] = c[k] + np.float64(lpx[k, b])
        ents[0, b], ents[1, b], t[b] = k, b, mx[b]
    m = _candidates(lpx, nb, c, c32, thr, arg, mx, ents, t, cap)
    if m < 0:
        return m
    kept = 0
    for i in range(m):
        b = ents[1, i]
        v = t[i] - mx[b]
        if v >= -cut:
            ents[0, kept], ents[1, kept], t[kept] = ents[0, i], b, v
            kept += 1
    if kept > nb:  # some column has more than one: component by component
        _sort_by_component(ents, t, kept, lpx.shape[0], order)
    return kept


@kernel
def _column_max(lpx, nb, c32, top, arg, check):
    """Step 1: top[b] := max_k (lpx[k, b] + c32[k]) in lpx's dtype and arg[b] := the
    first k attaining it (as a float); whether every product is finite and every
    column has a finite term."""
    zero = lpx.dtype.type(0.0)
    for b in range(nb):
        top[b], arg[b], check[b] = -np.inf, 0.0, 0.0
    for k in range(lpx.shape[0]):
        ck, kf = c32[k], lpx.dtype.type(k)
        row = lpx[k, :nb]  # (a slice: 2-D indexing does not vectorise)
        for b in range(nb):
            p = row[b]
            u = p + ck
            better = u > top[b]
            top[b] = u if better else top[b]
            arg[b] = kf if better else arg[b]
            check[b] += p * zero  # NaN unless finite (p - p: folded to 0 by LLVM)
    for b in range(nb):
        if check[b] != 0.0 or top[b] == -np.inf:
            return False
    return True


@kernel
def _candidates(lpx, nb, c, c32, thr, arg, mx, ents, t, cap):
    """Step 2: after the nb columns' maxima (ents[:, :nb], t[:nb]), the other terms
    with lpx[k, b] + c32[k] >= thr[b], component by component: ents[:, i] = (k, b),
    t[i] = v_kb (float64), and mx[b] := max(mx[b], v_kb). Returns the number of
    entries, or -1 past ``cap``. Most rows have none: a vectorised count (a float
    sum: an integer count of comparisons does not vectorise) skips them."""
    zero, one = lpx.dtype.type(0.0), lpx.dtype.type(1.0)
    m = nb
    for k in range(lpx.shape[0]):
        ck, kf = c32[k], lpx.dtype.type(k)
        row = lpx[k, :nb]
        hits = zero
        for b in range(nb):
            hits += one if row[b] + ck >= thr[b] and arg[b] != kf else zero
        b = 0
        while hits > 0.0 and b < nb:
            if row[b] + ck >= thr[b] and arg[b] != kf:
                if m == cap:
                    return -1
                v = c[k] + np.float64(row[b])
                ents[0, m], ents[1, m], t[m] = k, b, v
                mx[b] = max(mx[b], v)
                m += 1
                hits -= one
            b += 1
    return m


@kernel
def _sort_by_component(ents, t, m, n_components, order):
    """Sort the m entries by (component, column), stably: a counting sort by column,
    then one by component (``order`` (3, >= m) float64 scratch)."""
    n_cols = 0
    for i in range(m):
        n_cols = max(n_cols, ents[1, i] + 1)
    for key, size in ((1, n_cols), (0, n_components)):
        start = np.zeros(size + 1, np.int64)
        for i in range(m):
            start[ents[key, i] + 1] += 1
        for j in range(size):
            start[j + 1] += start[j]
        for i in range(m):
            j = start[ents[key, i]]
            start[ents[key, i]] += 1
            order[0, j], order[1, j], order[2, j] = ents[0, i], ents[1, i], t[i]
        for j in range(m):
            ents[0, j], ents[1, j], t[j] = (
                int(order[0, j]),
                int(order[1, j]),
                order[2, j],
            )
