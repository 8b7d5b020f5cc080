"""Kernels: the fused E-step (logsumexp responsibilities, per-point log-likelihood) and
the weighted sufficient statistics, accumulated in the same pass over the data.

Nothing of size n_samples x n_components is allocated: each parallel task owns a
fixed-size chunk of rows and a slot of partial sums; the slots are added in chunk
order, so results are bitwise identical for any thread count.

Statistics are taken around a reference point per component (the current means,
which the E-step already subtracts), so there is no E[xx'] - mu mu' cancellation:

    nk[k]        = sum_i w_i r_ik
    s1[k, j]     = sum_i w_i r_ik (x_ij - ref_kj)
    s2[k, i, j]  = sum_i w_i r_ik (x_i - ref_k)_i (x_i - ref_k)_j   (FULL: i >= j filled)
    s2[k, 0, j]  = sum_i w_i r_ik (x_ij - ref_kj)^2                   (DIAG)
    (TIED needs only nk and s1: its scatter comes from X'X, computed once per fit)
"""

import numpy as np
from numba import prange

from .._jit import kernel
from . import DIAG, FULL, TIED
from .blocks import add_slots, n_slots_for, next_task, slot_buffers, task_queue
from .logdensity import (
    block_buffers,
    block_log_prob,
    data_shape,
    load_block,
)
from .vecmath import exp_shifted_sum, log_pos


@kernel
def block_resp(lp, nb, wb, s, mx, scratch):
    """Turn lp (K, BLOCK) into weighted responsibilities in place; return sum_b wb*lse_b.

    After the call lp[k, b] = wb[b] * exp(lp[k, b] - lse_b) and s[b] = lse_b.
    Responsibilities below exp(-500) relative to the largest are set to 0 (see
    vecmath.FLOOR). ``scratch`` is a float64 buffer of shape (3, BLOCK). A point whose
    log-probability is -inf under every component (too far from all of them for
    its density to be represented) gets lse_b = -inf and equal responsibilities
    wb[b] / K (see _far_points).
    """
    n_components = lp.shape[0]
    bits, scale, logs = scratch[0], scratch[1], scratch[2]
    for b in range(nb):
        mx[b] = lp[0, b]
    for k in range(1, n_components):
        for b in range(nb):
            mx[b] = max(mx[b], lp[k, b])
    n_far = 0
    for b in range(nb):
        n_far += mx[b] == -np.inf
    for b in range(nb):
        s[b] = 0.0
    for k in range(n_components):
        exp_shifted_sum(lp[k], mx, nb, s)
    for b in range(nb):
        scale[b] = wb[b] / s[b]
    log_pos(s, nb, logs, bits)  # s >= 1: the largest term is exp(0)
    ll = 0.0
    for b in range(nb):
        lse = mx[b] + logs[b]
        ll += wb[b] * lse
        s[b] = lse
    for k in range(n_components):
        for b in range(nb):
            lp[k, b] *= scale[b]
    if n_far > 0:
        ll = _far_points(lp, nb, wb, s, mx)
    return ll


@kernel
def _far_points(lp, nb, wb, s, mx):
    """Fix the points of a block with mx[b] = -inf (every log-probability -inf, the
    logsumexp above gave NaN): log p(x) = -inf, responsibilities wb[b] / K. Returns
    the block's sum_b wb*lse_b again, a point of zero weight adding nothing."""
    n_components = lp.shape[0]
    for b in range(nb):
        if mx[b] == -np.inf:
            s[b] = -np.inf
            for k in range(n_components):
                lp[k, b] = wb[b] / n_components
    ll = 0.0
    for b in range(nb):
        if wb[b] != 0.0:
            ll += wb[b] * s[b]
    return ll


@kernel
def block_stats(nb, kind, ref, resp, nk, s1, s2, mats):
    """Add one block's weighted statistics (see module docstring) into nk, s1, s2.

    The block is mats[0] (d, BLOCK); mats[1] and mats[3] are scratch. FULL (loops)
    and DIAG at d <= 3 take every statistic of a component in one pass
    (_stats_small: 2.6x and 1.2x the passes per feature at d=3). The FULL scatter is
    SIMD loops at every d (the EM pass of FULL from d = 16 is kernels.fullgemm's,
    with its own BLAS scatter).
    """
    xt, dk, rd = mats[0], mats[1], mats[3]
    d = xt.shape[0]
    loops_full = kind == FULL
    if d <= 3 and (kind == DIAG or loops_full):
        _stats_small(nb, kind, ref, resp, nk, s1, s2, xt)
        return
    for k in range(resp.shape[0]):
        r = resp[k]
        acc = 0.0
        for b in range(nb):
            acc += r[b]
        nk[k] += acc
        # one pass per feature: s1, and the offsets the FULL scatter needs or, for
        # the diagonal kinds, s2
        for j in range(d):
            m = ref[k, j]
            a1, a2 = 0.0, 0.0
            if loops_full:
                for b in range(nb):
                    t = xt[j, b] - m
                    u = r[b] * t
                    dk[j, b] = t
                    rd[j, b] = u
                    a1 += u
            elif kind == FULL:
                for b in range(nb):
                    t = xt[j, b] - m
                    dk[j, b] = t
                    a1 += r[b] * t
            elif kind == TIED:  # its scatter comes from X'X
                for b in range(nb):
                    a1 += r[b] * (xt[j, b] - m)
            else:
                for b in range(nb):
                    u = r[b] * (xt[j, b] - m)
                    a1 += u
                    a2 += u * (xt[j, b] - m)
            s1[k, j] += a1
            if kind == DIAG:
                s2[k, 0, j] += a2
        if loops_full:
            for i in range(d):
                for j in range(i + 1):
                    acc = 0.0
                    for b in range(nb):
                        acc += rd[i, b] * dk[j, b]
                    s2[k, i, j] += acc


@kernel
def _stats_small(nb, kind, ref, resp, nk, s1, s2, xt):
    """block_stats for FULL and DIAG at d <= 3: every statistic of a component in one
    pass over the block (features beyond d are computed on a repeated row and not
    stored)."""
    d = xt.shape[0]
    x0, x1, x2 = xt[0], xt[min(1, d - 1)], xt[min(2, d - 1)]
    for k in range(resp.shape[0]):
        r = resp[k]
        m0, m1, m2 = ref[k, 0], ref[k, min(1, d - 1)], ref[k, min(2, d - 1)]
        n, a0, a1, a2 = 0.0, 0.0, 0.0, 0.0
        q00, q10, q11, q20, q21, q22 = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        for b in range(nb):
            y0, y1, y2 = x0[b] - m0, x1[b] - m1, x2[b] - m2
            u0, u1, u2 = r[b] * y0, r[b] * y1, r[b] * y2
            n += r[b]
            a0 += u0
            a1 += u1
            a2 += u2
            q00 += u0 * y0
            q10 += u1 * y0
            q11 += u1 * y1
            q20 += u2 * y0
            q21 += u2 * y1
            q22 += u2 * y2
        nk[k] += n
        a, q = (a0, a1, a2), ((q00, 0.0, 0.0), (q10, q11, 0.0), (q20, q21, q22))
        for i in range(d):
            s1[k, i] += a[i]
            if kind == DIAG:
                s2[k, 0, i] += q[i][i]
            else:
                for j in range(i + 1):
                    s2[k, i, j] += q[i][j]


@kernel
def _argmax(lp, nb, b0, out_label):
    """out_label[b0 + b] = argmax_k lp[k, b] (the first on ties)."""
    for b in range(nb):
        best = 0
        for k in range(1, lp.shape[0]):
            if lp[k, b] > lp[best, b]:
                best = k
        out_label[b0 + b] = best


@kernel
def _store(out, b0, nb, vals):
    """out[b0 + b] = vals[b] (out (n,)), or out[b0 + b, k] = vals[k, b] (out (n, K))."""
    if out.ndim == 1:
        for b in range(nb):
            out[b0 + b] = vals[b]
    else:
        for b in range(nb):
            for k in range(out.shape[1]):
                out[b0 + b, k] = vals[k, b]


@kernel
def _store_pair(out, b0, nb, vals):
    """_store into whichever half of the float pair ``out`` holds rows (if any)."""
    if out[0].shape[0] > 0:
        _store(out[0], b0, nb, vals)
    elif out[1].shape[0] > 0:
        _store(out[1], b0, nb, vals)


@kernel
def _chunk_pass(X, sw, start, stop, kind, const, loc, prec, ref, sums, outs):
    """The pass over rows start:stop: statistics about ``ref`` into sums = (nk, s1, s2)
    unless ref is empty, per-point outputs into the non-empty ones of outs =
    (out_lse, out_resp, out_label); returns sum_i w_i log p(x_i) (0 if not needed)."""
    _, d = data_shape(X)
    n_components = const.shape[0]
    nk, s1, s2 = sums
    out_lse, out_resp, out_label = outs
    stats = ref.shape[0] > 0
    resp = stats or out_lse[0].shape[0] + out_lse[1].shape[0] > 0
    resp = resp or out_resp[0].shape[0] + out_resp[1].shape[0] > 0
    mats, lp, vec = block_buffers(d, n_components)
    wb, s, mx, ex = vec[0], vec[1], vec[2], vec[3:]
    # the rows in equal blocks of at most the buffers' width (see block_buffers)
    size, cap = stop - start, lp.shape[1]
    n_blocks = (size + cap - 1) // cap
    rows = min(cap, ((size + n_blocks - 1) // n_blocks + 7) // 8 * 8)
    ll = 0.0
    for b0 in range(start, stop, rows):
        nb = min(rows, stop - b0)
        load_block(X, b0, nb, mats[0])
        if sw.shape[0] > 0:
            for b in range(nb):
                wb[b] = sw[b0 + b]
        block_log_prob(nb, kind, const, loc, prec, mats, lp, s)
        if out_label.shape[0] > 0:
            _argmax(lp, nb, b0, out_label)
        if resp:
            ll += block_resp(lp, nb, wb, s, mx, ex)
            _store_pair(out_lse, b0, nb, s)
            _store_pair(out_resp, b0, nb, lp)
        if stats:
            block_stats(nb, kind, ref, lp, nk, s1, s2, mats)
    return ll


@kernel(
    parallel=True,
    inputs="X sw const loc prec ref",
    floats="X out_lse out_resp",
)
def mixture_pass(
    X, sw, kind, const, loc, prec, ref, chunk, out_lse, out_resp, out_label
):
    """One pass over X (n, d), float32 or float64: log-densities, responsibilities,
    and what is asked for: the statistics about ``ref`` (K, d) (empty: none) and the
    per-point outputs given with n rows (see em_pass and score_pass).

    Returns (loglik_sum, nk (K,), s1 (K, d), s2 (K, p, d)), p = d for FULL, else 1
    (K = 0 without statistics).
    """
    n, d = data_shape(X)
    k_sums = const.shape[0] if ref.shape[0] > 0 else 0
    p = d if kind == FULL else 1
    n_chunks = (n + chunk - 1) // chunk
    _, nk, s1, s2 = slot_buffers(1, k_sums, p, d)
    # the parallel loop takes arrays, not tuples of writable arrays: unpacked here
    lse64, lse32 = out_lse
    resp64, resp32 = out_resp
    if n_chunks == 1:  # no parallel region (~1 us on small data), no slot to add
        all_outs = ((lse64, lse32), (resp64, resp32), out_label)
        all_sums = (nk[0], s1[0], s2[0])
        first = n - n  # (int64: a literal 0 would compile _chunk_pass once more)
        ll = _chunk_pass(
            X, sw, first, n, kind, const, loc, prec, ref, all_sums, all_outs
        )
        return ll, nk[0], s1[0], s2[0]
    # one slot per chunk within SLOT_BYTES (see blocks.n_slots_for); chunks go to
    # the threads dynamically (see blocks.task_queue)
    n_slots = n_slots_for(n_chunks, k_sums, p, d)
    pll, pnk, ps1, ps2 = slot_buffers(n_slots, k_sums, p, d)
    ll = 0.0
    for g0 in range(0, n_chunks, n_slots):
        m = min(n_slots, n_chunks - g0)
        queue, n_workers = task_queue(m)
        for _ in prange(n_workers):
            c = next_task(queue)
            while c < m:
                start = (g0 + c) * chunk
                stop = min(n, start + chunk)
                sums = (pnk[c], ps1[c], ps2[c])
                outs = ((lse64, lse32), (resp64, resp32), out_label)
                pll[c] = _chunk_pass(
                    X, sw, start, stop, kind, const, loc, prec, ref, sums, outs
                )
                c = next_task(queue)
        ll += add_slots(m, pll, pnk, ps1, ps2, nk[0], s1[0], s2[0])
    return ll, nk[0], s1[0], s2[0]


def em_pass(X, sw, kind, const, loc, prec, ref, chunk):
    """One fused E+M-statistics pass over X (n, d), float32 or float64.

    sw is (n,) sample weights or (0,) for unit weights. Returns
    (loglik_sum, nk (K,), s1 (K, d), s2 (K, p, d)) with p = d for FULL, else 1.
    """
    none = np.empty(0, X.dtype)
    return mixture_pass(
        X, sw, kind, const, loc, prec, ref, chunk, none,
        np.empty((0, const.shape[0]), X.dtype), np.empty(0, np.int64),
    )  # fmt: skip


#: read-only empty float64 inputs by shape: "no sample weights", "no statistics"
_EMPTY = {}


def _empty_input(*shape):
    """A read-only empty float64 array of ``shape`` (made once per shape: the
    kernel's input conversion passes it as it is; it holds nothing to change)."""
    a = _EMPTY.get(shape)
    if a is None:
        a = np.empty(shape)
        a.setflags(write=False)
        if len(_EMPTY) < 256:
            _EMPTY[shape] = a
    return a


def score_pass(X, kind, const, loc, prec, chunk, out_lse, out_resp, out_label):
    """Per-point outputs for X (n, d), float32 or float64, each skipped when given
    with length 0.

    out_lse (n,): log p(x_i); out_resp (n, K): responsibilities, both in X's dtype;
    out_label (n,): argmax_k.
    """
    mixture_pass(
        X, _empty_input(0), kind, const, loc, prec, _empty_input(0, X.shape[1]),
        chunk, out_lse, out_resp, out_label,
    )  # fmt: skip
