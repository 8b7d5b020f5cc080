"""Kernels: the fused EM pass of the diagonal kinds (diag, spherical) for data of
d >= 4 features (float64, or float32 beyond lowd32's d) and fewer components than
diaggemm's (200k x 16, K=16: issue 13's
``mid-diag``). Same arguments and results as :func:`fastgmm.kernels.passes.em_pass`;
scoring keeps ``passes.py``.

Three changes to em_pass's block stages (``benchmarks/diag_stages.py``, one thread):

**Centred block, two operations per log-density term.** Each block is loaded about a
fixed centre c (the mean of the component means, a noise component left out,
computed once per pass from the parameters), y = x - c, and a component's term is t = y p - (m - c) p with
mp = (m - c) p precomputed per pass: one FMA (``contract``), then acc = fma(t, t, acc),
instead of a subtraction, a product and an FMA. The FMA rounds y p - mp once, so t is
off by about eps (|t| + |mp|): centring keeps |mp| at the scale of the spread of the
means in units of the component's sd, not of the data's distance from the origin
(scikit-learn's expanded form is off by eps (|x| p)^2 in the square).

**Responsibilities scaled inside the statistics.** The exp pass leaves exp(lp - max)
and the per-point factor w / sum; the statistics' first loop over a component's row
multiplies them (and sums nk), instead of a scaling pass of its own. The max over the
components takes four rows per pass. (A max kept while the log-density loop writes
the rows was slower: LLVM makes its update a masked store, which the next
component's load of the max waits for.)

**Statistics eight features per pass.** s1 and s2 about the current means (no
E[x^2] - mu^2 cancellation, as em_pass) for eight features per loop over the block
(the last d % 8 one per loop): the responsibility row is loaded once per eight features, each
loop has sixteen independent sums, and the sums' set-up and horizontal adds come
once per eight features (em_pass: one loop per feature). The expanded form (sum r y,
sum r y^2 with y^2 once per point) was not taken: it saves the subtraction and one
add per term, but those run on the add pipes, which the centred form keeps no busier
than the FMA pipes (two FMA-pipe and two add-pipe operations per term either way on
this machine), so it would not be faster and would bring back the cancellation. For
the same reason the log-density's two-operation form gains only its saved uops, not
an FMA-pipe cycle (the subtraction it saves ran on an add pipe).

Chunks add their slots in chunk order: bitwise identical results for any thread
count.
"""

import numpy as np
from numba import prange

from .._jit import BLOCK, kernel
from . import DIAG
from .blocks import add_slots, n_slots_for, next_task, slot_buffers, task_queue
from .passes import _far_points
from .vecmath import exp_shifted_sum, log_pos

#: the smallest number of features this pass serves (below, em_pass's pass per
#: block computes every feature at once)
MIN_D = 4
#: rows per block
ROWS = BLOCK


def use_diag_pass(kind, n_features):
    """Whether an EM pass of the DIAG kind takes this module's kernel: d >= MIN_D (a
    function of the problem only: results do not depend on the thread count). The
    caller checks lowd32's and diaggemm's shapes first; float32 data of more features
    than lowd32 takes (read into float64 blocks, as em_pass) gives the results of
    float64 data of the same values."""
    return kind == DIAG and n_features >= MIN_D


@kernel
def centred_inputs(loc, prec, ref):
    """(centre (d,), mp (K, d) = (loc - centre) * p, refc (K, d) = ref - centre),
    centre = the mean of the rows of loc of components with a non-zero precision (a
    noise component, zero precision at the origin, does not pull it away from the
    data)."""
    n_components, d = loc.shape
    centre = np.zeros(d)
    n_used = 0
    for k in range(n_components):
        used = False
        for j in range(d):
            used = used or prec[k, 0, j] != 0.0
        if used:
            n_used += 1
            for j in range(d):
                centre[j] += loc[k, j]
    for j in range(d):
        centre[j] /= max(n_used, 1)
    mp = np.empty((n_components, d))
    refc = np.empty((n_components, d))
    for k in range(n_components):
        for j in range(d):
            mp[k, j] = (loc[k, j] - centre[j]) * prec[k, 0, j]
            refc[k, j] = ref[k, j] - centre[j]
    return centre, mp, refc


@kernel
def _load(X, b0, nb, centre, xt):
    """xt[j, b] := X[b0 + b, j] - centre[j] for b < nb, X the data pair (float64
    rows, float32 rows; one empty: ``fastgmm._jit.float_pair``), read from whichever
    holds the rows (float32 values are exact in float64)."""
    X64, X32 = X
    d = X64.shape[1]
    if X64.shape[0] > 0:
        for b in range(nb):
            for j in range(d):
                xt[j, b] = X64[b0 + b, j] - centre[j]
    else:
        for b in range(nb):
            for j in range(d):
                xt[j, b] = X32[b0 + b, j] - centre[j]


@kernel
def _log_prob(xt, nb, const, mp, prec, lp, maha):
    """lp[k, b] := const[k] - 0.5 sum_j (y_bj p_kj - mp_kj)^2 for b < nb; eight
    (then four, then one) features per pass over the block, ``maha`` (BLOCK,)
    scratch."""
    d = xt.shape[0]
    for k in range(const.shape[0]):
        m, p = mp[k], prec[k, 0]
        for b in range(nb):
            maha[b] = 0.0
        j = 0
        while j + 8 <= d:
            x0, x1, x2, x3 = xt[j], xt[j + 1], xt[j + 2], xt[j + 3]
            x4, x5, x6, x7 = xt[j + 4], xt[j + 5], xt[j + 6], xt[j + 7]
            m0, m1, m2, m3 = m[j], m[j + 1], m[j + 2], m[j + 3]
            m4, m5, m6, m7 = m[j + 4], m[j + 5], m[j + 6], m[j + 7]
            p0, p1, p2, p3 = p[j], p[j + 1], p[j + 2], p[j + 3]
            p4, p5, p6, p7 = p[j + 4], p[j + 5], p[j + 6], p[j + 7]
            for b in range(nb):
                t0 = x0[b] * p0 - m0
                t1 = x1[b] * p1 - m1
                t2 = x2[b] * p2 - m2
                t3 = x3[b] * p3 - m3
                t4 = x4[b] * p4 - m4
                t5 = x5[b] * p5 - m5
                t6 = x6[b] * p6 - m6
                t7 = x7[b] * p7 - m7
                low = (t0 * t0 + t1 * t1) + (t2 * t2 + t3 * t3)
                maha[b] += low + ((t4 * t4 + t5 * t5) + (t6 * t6 + t7 * t7))
            j += 8
        if j + 4 <= d:
            x0, x1, x2, x3 = xt[j], xt[j + 1], xt[j + 2], xt[j + 3]
            m0, m1, m2, m3 = m[j], m[j + 1], m[j + 2], m[j + 3]
            p0, p1, p2, p3 = p[j], p[j + 1], p[j + 2], p[j + 3]
            for b in range(nb):
                t0 = x0[b] * p0 - m0
                t1 = x1[b] * p1 - m1
                t2 = x2[b] * p2 - m2
                t3 = x3[b] * p3 - m3
                maha[b] += (t0 * t0 + t1 * t1) + (t2 * t2 + t3 * t3)
            j += 4
        for i in range(j, d):
            mi, q = m[i], p[i]
            for b in range(nb):
                t = xt[i, b] * q - mi
                maha[b] += t * t
        c = const[k]
        for b in range(nb):
            lp[k, b] = c - 0.5 * maha[b]


@kernel
def _resp(lp, nb, wb, s, mx, scale, scratch):
    """lp (K, BLOCK) := exp(lp - mx), scale[b] := wb[b] / sum_k; return sum_b wb*lse_b
    and leave s[b] = lse_b: passes.block_resp without its max pass (mx given) and
    its scaling pass (the statistics scale). A point with mx[b] = -inf gets
    lse = -inf and responsibilities wb[b] / K (scale 1), as block_resp."""
    n_components = lp.shape[0]
    bits, logs = scratch[0], scratch[1]
    for b in range(nb):
        mx[b] = lp[0, b]
    k = 1
    while k + 4 <= n_components:  # four rows per pass: fewer loads and stores of mx
        r0, r1, r2, r3 = lp[k], lp[k + 1], lp[k + 2], lp[k + 3]
        for b in range(nb):
            mx[b] = max(max(mx[b], max(r0[b], r1[b])), max(r2[b], r3[b]))
        k += 4
    for i in range(k, n_components):
        for b in range(nb):
            mx[b] = max(mx[b], lp[i, b])
    n_far = 0
    for b in range(nb):
        n_far += mx[b] == -np.inf
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
    if n_far > 0:
        ll = _far_points(lp, nb, wb, s, mx)
        for b in range(nb):
            if mx[b] == -np.inf:
                scale[b] = 1.0
    return ll


@kernel
def _stats(nb, refc, lp, scale, xt, nk, s1, s2):
    """Add the block's statistics about ref (module docstring) into nk, s1, s2, with
    r[k, b] = lp[k, b] * scale[b] (written back into lp) and xt, refc both about the
    centre. Eight features per pass over the block, the last d % 8 one per pass
    (module docstring). The loop is written out here: moved into a function of its
    own (called per eight features) it measured 1.8x slower (diag_stages.py; the
    cause was not found)."""
    d = xt.shape[0]
    for k in range(lp.shape[0]):
        r = lp[k]
        acc = 0.0
        for b in range(nb):
            v = r[b] * scale[b]
            r[b] = v
            acc += v
        nk[k] += acc
        j = 0
        m = refc[k]
        while j + 8 <= d:
            x0, x1, x2, x3 = xt[j], xt[j + 1], xt[j + 2], xt[j + 3]
            x4, x5, x6, x7 = xt[j + 4], xt[j + 5], xt[j + 6], xt[j + 7]
            m0, m1, m2, m3 = m[j], m[j + 1], m[j + 2], m[j + 3]
            m4, m5, m6, m7 = m[j + 4], m[j + 5], m[j + 6], m[j + 7]
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
            q0 = q1 = q2 = q3 = q4 = q5 = q6 = q7 = 0.0
            for b in range(nb):
                rb = r[b]
                y0, y1, y2, y3 = x0[b] - m0, x1[b] - m1, x2[b] - m2, x3[b] - m3
                y4, y5, y6, y7 = x4[b] - m4, x5[b] - m5, x6[b] - m6, x7[b] - m7
                u0, u1, u2, u3 = rb * y0, rb * y1, rb * y2, rb * y3
                u4, u5, u6, u7 = rb * y4, rb * y5, rb * y6, rb * y7
                a0 += u0
                a1 += u1
                a2 += u2
                a3 += u3
                a4 += u4
                a5 += u5
                a6 += u6
                a7 += u7
                q0 += u0 * y0
                q1 += u1 * y1
                q2 += u2 * y2
                q3 += u3 * y3
                q4 += u4 * y4
                q5 += u5 * y5
                q6 += u6 * y6
                q7 += u7 * y7
            _add4(s1[k], j, a0, a1, a2, a3)
            _add4(s1[k], j + 4, a4, a5, a6, a7)
            _add4(s2[k, 0], j, q0, q1, q2, q3)
            _add4(s2[k, 0], j + 4, q4, q5, q6, q7)
            j += 8
        for i in range(j, d):
            mi = refc[k, i]
            a, q = 0.0, 0.0
            for b in range(nb):
                y = xt[i, b] - mi
                u = r[b] * y
                a += u
                q += u * y
            s1[k, i] += a
            s2[k, 0, i] += q


@kernel
def _add4(out, j, v0, v1, v2, v3):
    """out[j:j + 4] += (v0, v1, v2, v3)."""
    out[j] += v0
    out[j + 1] += v1
    out[j + 2] += v2
    out[j + 3] += v3


@kernel
def _chunk(X, sw, start, stop, const, ins, prec, nk, s1, s2):
    """The pass over rows start:stop into this chunk's slot (nk, s1, s2); returns
    sum_i w_i log p(x_i). ``ins`` = centred_inputs(...)."""
    centre, mp, refc = ins
    d = X[0].shape[1]
    n_components = const.shape[0]
    xt = np.empty((d, ROWS))
    lp = np.empty((n_components, ROWS))
    vec = np.empty((6, ROWS))
    wb, s, mx, scale = vec[0], vec[1], vec[2], vec[3]
    for b in range(ROWS):
        wb[b] = 1.0
    ll = 0.0
    for b0 in range(start, stop, ROWS):
        nb = min(ROWS, stop - b0)
        _load(X, b0, nb, centre, xt)
        if sw.shape[0] > 0:
            for b in range(nb):
                wb[b] = sw[b0 + b]
        _log_prob(xt, nb, const, mp, prec, lp, s)
        ll += _resp(lp, nb, wb, s, mx, scale, vec[4:6])
        _stats(nb, refc, lp, scale, xt, nk, s1, s2)
    return ll


@kernel(parallel=True, inputs="X sw const loc prec ref", floats="X")
def diag_fused_pass(X, sw, kind, const, loc, prec, ref, chunk):
    """:func:`fastgmm.kernels.passes.em_pass` for X (n, d), float64 or float32 (read
    into float64 blocks), d >= MIN_D, and the DIAG kind (module docstring); same
    arguments and results.

    X reaches the kernel as a float pair (``fastgmm._jit.float_pair``): one compiled
    specialisation serves both dtypes, so float32 data runs the very code float64
    data of the same values runs. (With one specialisation per dtype, each linked
    its own copies of the helpers, and which copy a process ran depended on the
    cache's history: float32 and float64 results could differ by an ulp; see
    ``tests/kernels/test_diagpass.py::test_float32_same_code_whatever_the_cache``.)

    Returns (loglik_sum, nk (K,), s1 (K, d), s2 (K, 1, d)) about ``ref`` (K, d).
    """
    n, d = X[0].shape[0] + X[1].shape[0], X[0].shape[1]
    n_components = const.shape[0]
    ins = centred_inputs(loc, prec, ref)
    n_chunks = (n + chunk - 1) // chunk
    _, nk, s1, s2 = slot_buffers(1, n_components, 1, d)
    if n_chunks == 1:  # no parallel region, no slot to add (as passes.mixture_pass)
        first = n - n  # (int64: a literal 0 would compile _chunk once more)
        ll = _chunk(X, sw, first, n, const, ins, prec, nk[0], s1[0], s2[0])
        return ll, nk[0], s1[0], s2[0]
    n_slots = n_slots_for(n_chunks, n_components, 1, d)
    pll, pnk, ps1, ps2 = slot_buffers(n_slots, n_components, 1, d)
    ll = 0.0
    for g0 in range(0, n_chunks, n_slots):
        m = min(n_slots, n_chunks - g0)
        queue, n_workers = task_queue(m)
        for _ in prange(n_workers):
            c = next_task(queue)
            while c < m:
                start = (g0 + c) * chunk
                stop = min(n, start + chunk)
                pll[c] = _chunk(
                    X, sw, start, stop, const, ins, prec, pnk[c], ps1[c], ps2[c]
                )
                c = next_task(queue)
        ll += add_slots(m, pll, pnk, ps1, ps2, nk[0], s1[0], s2[0])
    return ll, nk[0], s1[0], s2[0]
