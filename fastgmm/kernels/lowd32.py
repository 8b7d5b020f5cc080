"""Kernels: the fused EM pass for float32 data of few features (FULL and DIAG kinds:
full, diag, spherical, and mclust's models of those kinds), computed in float32.

:func:`fastgmm.kernels.passes.em_pass` loads float32 rows into float64 blocks and
computes in float64. Here the hot loops run on float32 blocks of up to BLOCK32 rows
(:func:`block_rows`; twice the lanes per vector: 8 on AVX2, 16 on AVX-512): the
centred rows and Mahalanobis terms with the per-point maximum, the exp
(:func:`fastgmm.kernels.vecmath.exp2_32_shifted_sum`) and each block's statistics.
The log-densities are computed in base 2 (log2 p = log2(e) ln p): log2(e) is
folded into the constants and, as its square root, into the precision factors
(lp = const - ||y U||^2, no factor 1/2), so the exp is a power of 2 (no ln 2 in
its reduction). float64 is kept where precision needs it:

- the inputs: a centre c (the mean of the Gaussian components' means, rounded to
  float32) is subtracted from every row as it is loaded (one float32 subtraction per
  feature: the centred rows carry float32's relative precision about their distance
  from c, not from the origin), and the means, precision factors and constants
  (log weights + log dets) are computed in float64 about c and rounded once;
- the logsumexp's log and the log-likelihood sum (float64, from the float32 maximum
  times ln 2 and the sum of powers: without weights one log of a float64 product
  per group of rows);
- the statistics: each block's sums (at most BLOCK32 rows) in float32, added to the
  chunk's float64 sums (one flat SIMD loop per block, into the chunk's slot at its
  end); they are taken about float32(ref - c) and moved onto ``ref``
  in float64 at the end (:func:`move_stats`), so ``ref + s1 / nk`` carries no
  rounding of the reference.

Responsibilities below 2^-FLOOR2_32 = 2.4e-38 relative to a point's largest are
exactly 0 (float64 path: exp(-500)); float32's resolution is 2^-24. A block with a
log-density or a statistic that is not finite in float32 (a point ~1e19 from a
component, squares of data of scale ~1e19) is computed by em_pass's float64 block
routines instead, nothing of the float32 attempt kept, so such data behave as on the
float64 path. Chunks add their slots in chunk order: bitwise identical results for
any thread count.
"""

import numpy as np
from numba import prange

from .._jit import BLOCK, kernel
from . import DIAG, FULL
from .blocks import (
    add_slots,
    n_slots_for,
    next_task,
    read_only,
    slot_buffers,
    task_queue,
)
from .logdensity import block_buffers, block_log_prob
from .lowd32stats import (
    _add_part,
    _flush_part,
    _stats32,
    _stats_small32,
    move_stats,
)
from .passes import block_resp, block_stats
from .vecmath import exp2_32_shifted_sum, log_pos

#: float32 data with at most this many features takes this pass (FULL and DIAG);
#: see benchmarks/lowd32_ab.py for the crossover
MAX_D = 8

#: the most rows per float32 block (the statistics' float32 partial sums run over at
#: most this); see block_rows
BLOCK32 = 2304
#: bytes of a block's log-densities (K x rows, float32) from which blocks get fewer
#: rows than BLOCK32 (many components)
LP_BYTES = 72 * 1024

_ZERO = np.float32(0.0)
#: log2(e) and ln(2) (float64: the inputs are scaled before rounding to float32)
LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453
_ONE = np.float32(1.0)


def use_lowd32(dtype, kind, n_features):
    """Whether a pass over data of ``dtype`` and ``n_features`` with density ``kind``
    takes this module's float32 path (a function of dtype, kind and shape only)."""
    return dtype == np.float32 and kind in (FULL, DIAG) and n_features <= MAX_D


@kernel
def block_rows(chunk, n_components, d):
    """Rows per float32 block of a chunk of ``chunk`` rows: the chunk in equal blocks
    (multiples of 16) of at most BLOCK32 rows and LP_BYTES of log-densities, at
    least 256 rows (d > 3: 256). Per block and component the loops pay a fixed cost
    (broadcasts, alias checks, the statistics' ten horizontal sums) that at d <= 3
    is a large part of the work: at 1M x 3, K=8 (chunks of 2304 rows) blocks of 1152
    rows took 0.7x the time of 256 (full; diag 0.75x; one thread, CPU time), and a
    block of the whole chunk (2304 rows, 72 KiB of log-densities: L2, not L1) 0.86x
    the time of 1152 (full; diag 0.9x) once the exp and the logsumexp got cheaper."""
    target = max(256, min(BLOCK32, LP_BYTES // (4 * n_components)))
    if d > 3:
        target = 256
    n_blocks = -(-chunk // target)
    rows = -(-chunk // n_blocks)
    return min(BLOCK32, -(-rows // 16) * 16)


@kernel
def inputs32(const, loc, prec, ref):
    """(c32 (d,), const32 (K,), loc32 (K, d), prec32, ref32 (K, d), used (K, d)):
    the centre c (float32 of the mean of the Gaussian components' loc), the density
    inputs about it in float32 and base 2 (const32 = log2(e) const, prec32 =
    sqrt(log2(e) / 2) prec: const32 - ||y prec32||^2 = log2(e) (const - ||y
    prec||^2 / 2)), the statistics' reference float32(ref - c) and, in float64,
    the point ``used`` = c + ref32 the float32 statistics are taken about."""
    n_components, d = loc.shape
    centre = np.zeros(d)
    count = 0
    for k in range(n_components):
        if prec[k, 0, 0] != 0.0:  # not a noise component (zero precision)
            centre += loc[k]
            count += 1
    c32 = (centre / max(count, 1)).astype(np.float32)
    c64 = c32.astype(np.float64)
    loc32 = (loc - c64).astype(np.float32)
    ref32 = (ref - c64).astype(np.float32)
    used = ref32.astype(np.float64) + c64
    const32 = (const * LOG2E).astype(np.float32)
    prec32 = (prec * np.sqrt(0.5 * LOG2E)).astype(np.float32)
    return c32, const32, loc32, prec32, ref32, used


@kernel
def _load32(X, b0, nb, c32, xt):
    """xt[j, b] = X[b0 + b, j] - c32[j] for b < nb (float32); one loop over the
    rows for d <= 3 (a loop over j inside costs ~2x here). At d = 3 the rows as a
    slice with constant columns and distinct output rows: LLVM vectorises it
    (three vector loads, permutes), 0.6 -> 0.25-0.35 ns per row; d = 1, 2 repeat
    output rows (aliased: a scalar loop)."""
    d = X.shape[1]
    if d > 3:
        for b in range(nb):
            for j in range(d):
                xt[j, b] = X[b0 + b, j] - c32[j]
        return
    x0, x1, x2 = xt[0], xt[min(1, d - 1)], xt[d - 1]
    c0, c1, c2 = c32[0], c32[min(1, d - 1)], c32[d - 1]
    if d == 3:
        rows = X[b0 : b0 + nb]
        for b in range(nb):
            x0[b] = rows[b, 0] - c0
            x1[b] = rows[b, 1] - c1
            x2[b] = rows[b, 2] - c2
        return
    i1, i2 = min(1, d - 1), d - 1
    for b in range(nb):
        x0[b] = X[b0 + b, 0] - c0
        x1[b] = X[b0 + b, i1] - c1
        x2[b] = X[b0 + b, i2] - c2


@kernel
def _full_small32(xt, nb, const, loc, prec, lp, mx):
    """lp[k, b] = const[k] - ||(x_b - loc_k) U_k||^2 (base 2), d <= 3, float32, every
    feature in one pass (as logdensity._full_log_prob_small), and mx[b] = max_k
    lp[k, b]; returns the finite check (0 unless some lp is not finite)."""
    d = xt.shape[0]
    x0, x1, x2 = xt[0], xt[min(1, d - 1)], xt[d - 1]
    check = _ZERO
    for b in range(nb):
        mx[b] = -np.inf
    for k in range(const.shape[0]):
        c, u, row = const[k], prec[k], lp[k]
        m0, m1, m2 = loc[k, 0], loc[k, min(1, d - 1)], loc[k, d - 1]
        u00 = u[0, 0]
        # features beyond d weigh 0 (their factor entries read as 0)
        u01 = u[0, 1] if d > 1 else _ZERO
        u11 = u[1, 1] if d > 1 else _ZERO
        u02 = u[0, 2] if d > 2 else _ZERO
        u12 = u[1, 2] if d > 2 else _ZERO
        u22 = u[2, 2] if d > 2 else _ZERO
        for b in range(nb):
            y0 = x0[b] - m0
            y1 = x1[b] - m1
            t0 = y0 * u00
            t1 = y0 * u01 + y1 * u11
            t2 = y0 * u02 + y1 * u12 + (x2[b] - m2) * u22
            v = c - (t0 * t0 + t1 * t1 + t2 * t2)
            row[b] = v
            mx[b] = max(mx[b], v)
            check += v * _ZERO  # NaN unless finite
    return check


@kernel
def _diag_small32(xt, nb, const, loc, prec, lp, mx):
    """lp[k, b] = const[k] - sum_j ((x_bj - loc_kj) p_kj)^2 (base 2), d <= 3, float32,
    every feature in one pass, and mx as _full_small32; returns its check."""
    d = xt.shape[0]
    x0, x1, x2 = xt[0], xt[min(1, d - 1)], xt[d - 1]
    check = _ZERO
    for b in range(nb):
        mx[b] = -np.inf
    for k in range(const.shape[0]):
        c, p, row = const[k], prec[k, 0], lp[k]
        m0, m1, m2 = loc[k, 0], loc[k, min(1, d - 1)], loc[k, d - 1]
        p0 = p[0]
        p1 = p[1] if d > 1 else _ZERO
        p2 = p[2] if d > 2 else _ZERO
        for b in range(nb):
            t0 = (x0[b] - m0) * p0
            t1 = (x1[b] - m1) * p1
            t2 = (x2[b] - m2) * p2
            v = c - (t0 * t0 + t1 * t1 + t2 * t2)
            row[b] = v
            mx[b] = max(mx[b], v)
            check += v * _ZERO
    return check


@kernel
def _log_prob32(kind, xt, nb, const, loc, prec, lp, mx, yt, acc):
    """Weighted log-densities (base 2: inputs32) of the block xt (d, B) into lp (K, B),
    float32, and mx[b] = max_k lp[k, b]; True if every lp[k, b] (b < nb) is finite. At d <= 3 in
    one pass (_full_small32, _diag_small32); otherwise the centred rows into yt
    (d, B), then one pass per non-zero of the factor (FULL) or per feature (DIAG)
    into acc (B,)."""
    d = xt.shape[0]
    if kind == FULL and d <= 3:
        return _full_small32(xt, nb, const, loc, prec, lp, mx) == _ZERO
    if d <= 3:
        return _diag_small32(xt, nb, const, loc, prec, lp, mx) == _ZERO
    for k in range(const.shape[0]):
        for j in range(d):
            m = loc[k, j]
            for b in range(nb):
                yt[j, b] = xt[j, b] - m
        row = lp[k]
        for b in range(nb):
            row[b] = _ZERO
        if kind == DIAG:
            p = prec[k, 0]
            for j in range(d):
                q = p[j]
                for b in range(nb):
                    t = yt[j, b] * q
                    row[b] += t * t
        else:
            u = prec[k]
            for j in range(d):
                for b in range(nb):
                    acc[b] = yt[0, b] * u[0, j]
                for i in range(1, j + 1):
                    q = u[i, j]
                    for b in range(nb):
                        acc[b] += yt[i, b] * q
                for b in range(nb):
                    row[b] += acc[b] * acc[b]
        c = const[k]
        for b in range(nb):
            row[b] = c - row[b]
    return _max32(lp, nb, mx)


@kernel
def _max32(lp, nb, mx):
    """mx[b] = max_k lp[k, b]; True if every lp[k, b] (b < nb) is finite."""
    check = _ZERO
    row = lp[0]
    for b in range(nb):
        mx[b] = row[b]
        check += row[b] * _ZERO  # NaN unless finite
    for k in range(1, lp.shape[0]):
        row = lp[k]
        for b in range(nb):
            mx[b] = max(mx[b], row[b])
            check += row[b] * _ZERO
    return check == _ZERO


@kernel
def _resp32(lp, nb, wb, mx, s, scale, v64, weighted):
    """lp[k, b] <- 2^(lp[k, b] - mx[b]) (float32), scale[b] = wb[b] / sum_k (float32
    of the float64 quotient); returns sum_b wb[b] (ln 2 mx[b] + log sum_k) in float64.
    ``v64``: (3, B) float64 scratch (rows 0-2). Without weights (wb = 1) the scale
    is a float32 division (the same number: double rounding of a quotient of
    float32s is innocuous) and the logs come from products of the sums (_log_sum)."""
    for b in range(nb):
        s[b] = _ZERO
    for k in range(lp.shape[0]):
        exp2_32_shifted_sum(lp[k], mx, nb, s)
    ll = 0.0
    if not weighted:
        for b in range(nb):
            scale[b] = _ONE / s[b]
        for b in range(nb):  # apart: the division in full float32 vectors
            ll += np.float64(mx[b])
        return ll * LN2 + _log_sum(s, nb, lp.shape[0])
    s64, logs = v64[0], v64[1]
    for b in range(nb):
        s64[b] = np.float64(s[b])
    log_pos(s64, nb, logs, v64[2])  # s >= 1: the largest term is exp(0)
    for b in range(nb):
        ll += wb[b] * (np.float64(mx[b]) * LN2 + logs[b])
        scale[b] = np.float32(wb[b] / s64[b])
    return ll


@kernel
def _log_sum(s, nb, n_components):
    """sum_b log s[b] (b < nb, 1 <= s[b] <= n_components) in float64: the log of
    the float64 product of each group of rows (at most 2^1000: no overflow), a
    vectorised product and one log per group instead of one per row."""
    bits = 1
    while (1 << bits) < n_components:
        bits += 1
    group = max(1, 1000 // bits)
    total = 0.0
    for g0 in range(0, nb, group):
        prod = 1.0
        rows = s[g0 : min(nb, g0 + group)]  # indices from 0: no gathers
        for b in range(rows.shape[0]):
            prod *= np.float64(rows[b])
        total += np.log(prod)
    return total


@kernel
def _block64(X, sw, b0, nb, kind, const, loc, prec, used, bufs, nk, s1, s2):
    """em_pass's float64 block routines on rows b0:b0+nb, BLOCK rows at a time
    (statistics about ``used``); returns their sum_b w_b log p(x_b). ``bufs`` =
    block_buffers(d, K)."""
    mats, lp, vec = bufs
    xt = mats[0]
    wb, s, mx, ex = vec[0], vec[1], vec[2], vec[3:]
    ll = 0.0
    for a0 in range(b0, b0 + nb, BLOCK):
        na = min(BLOCK, b0 + nb - a0)
        for b in range(na):
            for j in range(X.shape[1]):
                xt[j, b] = X[a0 + b, j]
            wb[b] = sw[a0 + b] if sw.shape[0] > 0 else 1.0
        block_log_prob(na, kind, const, loc, prec, mats, lp, s)
        ll += block_resp(lp, na, wb, s, mx, ex)
        block_stats(na, kind, used, lp, nk, s1, s2, mats)
    return ll


@kernel
def scratch32(d, n_components, rows):
    """One worker's buffers for _chunk32 (allocated once per worker, not per chunk),
    B = rows: xt (d, B), yt (2, d, B), lp (K, B), part (K, 1 + d + d * d), v32 (4, B) float32;
    v64 (4, B) float64 (row 3: the weights, ones); block_buffers(d, K); acc (K, 1 +
    d + d * d) float64 (a chunk's sums of the blocks' parts); flat views of part and
    acc."""
    m = n_components * (1 + d + d * d)
    part, acc = np.zeros(m, np.float32), np.zeros(m)
    return (
        np.zeros((d, rows), np.float32),
        np.zeros((2, d, rows), np.float32),
        np.zeros((n_components, rows), np.float32),
        part.reshape(n_components, -1),
        np.zeros((4, rows), np.float32),
        np.ones((4, rows)),
        block_buffers(d, n_components),
        acc.reshape(n_components, -1),
        (part, acc),
    )


@kernel
def _chunk32(X, sw, start, stop, kind, ins, const, loc, prec, sums, scratch):
    """The float32 pass over rows start:stop (ins = inputs32(...)): statistics about
    ins' ``used`` into sums = (nk, s1, s2); returns sum_i w_i log p(x_i) (float64).
    A block with a log-density or a statistic that is not finite in float32 goes
    through _block64."""
    c32, const32, loc32, prec32, ref32, used = ins
    nk, s1, s2 = sums
    d = loc.shape[1]
    xt, yt, lp, part, v32, v64, bufs, acc, flat = scratch
    mx, s, scale = v32[0], v32[1], v32[2]
    wb = v64[3]  # ones unless weights are given
    ll = 0.0
    rows = xt.shape[1]
    for b0 in range(start, stop, rows):
        nb = min(rows, stop - b0)
        if sw.shape[0] > 0:
            for b in range(nb):
                wb[b] = sw[b0 + b]
        _load32(X, b0, nb, c32, xt)
        finite = _log_prob32(
            kind, xt, nb, const32, loc32, prec32, lp, mx, yt[0], v32[3]
        )
        if finite:
            block_ll = _resp32(lp, nb, wb, mx, s, scale, v64, sw.shape[0] > 0)
            if d <= 3:
                _stats_small32(nb, kind, xt, ref32, lp, scale, part)
            else:
                _stats32(nb, kind, xt, ref32, lp, scale, part, yt[0], yt[1])
            finite = _add_part(flat[0], flat[1])
        if finite:
            ll += block_ll
        else:
            ll += _block64(
                X, sw, b0, nb, kind, const, loc, prec, used, bufs, nk, s1, s2
            )
    _flush_part(kind, acc, nk, s1, s2)
    return ll


@kernel(parallel=True, inputs="X sw const loc prec ref")
def lowd32_em_pass(X, sw, kind, const, loc, prec, ref, chunk):
    """:func:`fastgmm.kernels.passes.em_pass` for float32 X (n, d), d <= MAX_D, and the
    FULL or DIAG kind, in float32 lanes (module docstring); same arguments and results.

    Returns (loglik_sum, nk (K,), s1 (K, d), s2 (K, p, d)) about ``ref`` (K, d), p = d
    for FULL (lower triangle), 1 for DIAG.
    """
    n, d = X.shape
    n_components = const.shape[0]
    p = d if kind == FULL else 1
    ins = inputs32(const, loc, prec, ref)
    used = read_only(ins[5])
    ins = (ins[0], ins[1], ins[2], ins[3], ins[4], used)
    n_chunks = (n + chunk - 1) // chunk
    n_slots = n_slots_for(n_chunks, n_components, p, d)
    pll, pnk, ps1, ps2 = slot_buffers(n_slots, n_components, p, d)
    _, nk, s1, s2 = slot_buffers(1, n_components, p, d)
    rows = block_rows(chunk, n_components, d)
    ll = 0.0
    for g0 in range(0, n_chunks, n_slots):
        m = min(n_slots, n_chunks - g0)
        queue, n_workers = task_queue(m)
        for _ in prange(n_workers):
            scratch = scratch32(d, n_components, rows)
            c = next_task(queue)
            while c < m:
                start = (g0 + c) * chunk
                stop = min(n, start + chunk)
                sums = (pnk[c], ps1[c], ps2[c])
                pll[c] = _chunk32(
                    X, sw, start, stop, kind, ins, const, loc, prec, sums, scratch
                )
                c = next_task(queue)
        ll += add_slots(m, pll, pnk, ps1, ps2, nk[0], s1[0], s2[0])
    move_stats(kind, used, ref, nk[0], s1[0], s2[0])
    return ll, nk[0], s1[0], s2[0]
