"""Kernels: the fused E-step and statistics of the diagonal kinds (diag, spherical)
for many components (speaker-recognition UBMs, Fisher vectors: d ~ 40, K ~ 256-512).

Three changes to :func:`fastgmm.kernels.passes.em_pass`, measured in
``benchmarks/large_k.py`` (see docs/scaling.md):

**float32 data: the log-densities in GEMM form, in float32.** For a diagonal
precision q_kj = p_kj^2 and y = x - c about a fixed centre c (the mean of the
component means, against cancellation),

    log w_k N(x | mu_k) = const_k - 1/2 sum_j q_kj m_kj^2
                          + sum_j y_j^2 (-q_kj / 2) + sum_j y_j (m_kj q_kj),  m_k = mu_k - c

so the log-densities of GEMM_ROWS = 512 rows are one sgemm W (K, 2d) @ [y^2; y]
(2d, 512) (at 128 rows a call ran at a third of the sgemm rate of 512). Rows whose
product is not finite (points so far away that y^2 overflows) are recomputed term by
term, so far outliers behave as in em_pass. Float64 data keeps em_pass's term-by-term
loop: on this machine (two FMA and two add pipes) it runs at the dgemm rate (2 FMAs
per point, component and feature either way) without the GEMM's extra passes.

**float32 data: truncated posteriors.** A point's terms more than
``TRUNCATE_LOG + log K`` below its largest (relative weight < 2^-24 / K each) are
dropped, i.e. get a responsibility of exactly 0, as Kaldi, yael and VLFeat do: all of
them together are below 2^-24 of the point's density, float32's resolution, so the
log-likelihood moves by less than one float32 rounding and the kept responsibilities
by less than 2^-24 relative. With many components nearly all of them are dropped
(0.4 % kept on the UBM case of ``benchmarks/large_k.py``): a GEMM block's kept terms are
found by a float32 scan of its products (:mod:`fastgmm.kernels.kept32`: the same set
as converting every term to float64, proven there, at a fraction of the cost), listed
component by component, and only those go through exp, the logsumexp and the
statistics (sparse_resp_stats); a block with more than SPARSE_MAX of its terms kept,
a product that is not finite, or a pass that records a selection goes the dense way
in blocks of BLOCK rows (every term in float64: kept_terms, or truncate, then as
float64). float64 data keeps every term down to exp(-500).

**Statistics over the non-zero responsibilities only.** Responsibilities below
exp(-500) relative to the largest are exactly zero (``passes.block_resp``); a block
whose fraction of non-zero ones is at most ``SPARSE_MAX`` adds its statistics point by
point over those only (d multiply-adds each), the others go through em_pass's
``block_stats``. Both accumulate about the current means in float64 (no E[x^2] -
mu^2 cancellation) in a fixed order per chunk, and chunks add their slots in chunk
order: bitwise identical results for any thread count.
"""

import numpy as np
from numba import prange

from .._jit import BLOCK, kernel
from .blocks import add_slots, n_slots_for, next_task, slot_buffers, task_queue
from .kept32 import kept_terms32
from .logdensity import block_buffers, block_log_prob
from .passes import block_resp, block_stats
from .topc import record_top
from .vecmath import exp_shifted_sum, log_pos

#: this path serves diagonal models with at least this many components and features
#: (benchmarks/large_k.py --sweep, loaded machine: float32 1.2-1.3x at d=40, K=64-128;
#: at d <= 16 no gain clear of the noise)
GEMM_MIN_K = 64
GEMM_MIN_D = 32
#: a block whose fraction of non-zero responsibilities is at most this adds its
#: statistics point by point over the non-zero ones, else as em_pass does
SPARSE_MAX = 0.25
#: float32 data: terms below max - TRUNCATE_LOG - log K of a point are dropped
#: (module docstring); log(2^24)
TRUNCATE_LOG = 24.0 * np.log(2.0)
#: float32 data: rows per sgemm (a multiple of BLOCK; the later stages go by BLOCK)
GEMM_ROWS = 4 * BLOCK


def use_gemm(n_features, n_components):
    """Whether the diagonal kinds take this module's GEMM path for a problem shape
    (a function of the shape only: results do not depend on the thread count)."""
    return n_components >= GEMM_MIN_K and n_features >= GEMM_MIN_D


@kernel
def gemm_inputs(X, const, loc, prec):
    """(W (K, 2d) in X's dtype, c (K,) = const_k - 1/2 sum_j q_kj m_kj^2, centre (d,)):
    the GEMM form of the module docstring."""
    n_components, d = loc.shape
    centre = np.zeros(d)
    for k in range(n_components):
        centre += loc[k]
    centre /= n_components
    W = np.empty((n_components, 2 * d), X.dtype)
    c = np.empty(n_components)
    for k in range(n_components):
        acc = 0.0
        for j in range(d):
            q = prec[k, 0, j] * prec[k, 0, j]
            m = loc[k, j] - centre[j]
            W[k, j] = -0.5 * q
            W[k, d + j] = m * q
            acc += q * m * m
        c[k] = const[k] - 0.5 * acc
    return W, c, centre


@kernel
def _load(X, b0, nb, xt):
    """xt (d, BLOCK) float64 := rows b0:b0+nb transposed."""
    d = X.shape[1]
    for b in range(nb):
        for j in range(d):
            xt[j, b] = X[b0 + b, j]


@kernel
def _load_y(X, g0, ng, centre, yt):
    """yt (2d, GEMM_ROWS) in X's dtype := [y^2; y] of rows g0:g0+ng, y = x - centre
    in float64, zero past ng (feature by feature: contiguous stores)."""
    d = X.shape[1]
    for j in range(d):
        cj = centre[j]
        sq, lin = yt[j], yt[d + j]
        for b in range(ng):
            y = np.float64(X[g0 + b, j]) - cj
            sq[b] = y * y
            lin[b] = y
        for b in range(ng, yt.shape[1]):
            sq[b], lin[b] = 0.0, 0.0


@kernel
def _direct(X, i, b, const, loc, prec, lp):
    """lp[:, b] := const_k - 1/2 sum_j ((x_ij - mu_kj) p_kj)^2, term by term."""
    for k in range(loc.shape[0]):
        acc = 0.0
        for j in range(loc.shape[1]):
            t = (X[i, j] - loc[k, j]) * prec[k, 0, j]
            acc += t * t
        lp[k, b] = const[k] - 0.5 * acc


@kernel
def _gemm_log_prob(X, b0, nb, off, ins, const, loc, prec, lpx, lp, mx, check):
    """Weighted log-densities of rows b0:b0+nb into lp (K, BLOCK) float64 from their
    products lpx[:, off:off+nb] (in X's dtype), and mx[b] = max_k lp[k, b]; rows with
    a non-finite product term by term (``check``: (BLOCK,) float64 scratch)."""
    c = ins[1]
    for b in range(nb):
        check[b] = 0.0
        mx[b] = -np.inf
    for k in range(lp.shape[0]):
        ck = c[k]
        for b in range(nb):
            t = np.float64(lpx[k, off + b])
            v = ck + t
            lp[k, b] = v
            mx[b] = max(mx[b], v)
            check[b] += t * 0.0  # NaN unless finite
    for b in range(nb):
        if check[b] != 0.0:
            _direct(X, b0 + b, b, const, loc, prec, lp)
            mx[b] = lp[0, b]
            for k in range(1, lp.shape[0]):
                mx[b] = max(mx[b], lp[k, b])


@kernel
def truncate(lp, nb, cut, mx):
    """lp[k, b] := -inf where lp[k, b] < mx[b] - cut, for b < nb, where mx[b] is the
    largest lp[:, b] (-inf: the point is left as it is)."""
    for k in range(lp.shape[0]):
        row = lp[k]
        for b in range(nb):
            if row[b] < mx[b] - cut:
                row[b] = -np.inf


@kernel
def kept_terms(lp, nb, cut, mx, ents, t, cap):
    """The terms of lp[:, :nb] at least mx[b] - cut, component by component:
    ents[0, i] = k, ents[1, i] = b, t[i] = lp[k, b] - mx[b]. Returns their number, or
    -1 if there are more than ``cap`` or a point has every term -inf."""
    m = 0
    for b in range(nb):
        if mx[b] == -np.inf:
            return -1
    for k in range(lp.shape[0]):
        row = lp[k]
        for b in range(nb):
            v = row[b] - mx[b]
            if v >= -cut:
                if m == cap:
                    return -1
                ents[0, m], ents[1, m], t[m] = k, b, v
                m += 1
    return m


@kernel
def sparse_resp_stats(X, b0, nb, m, ents, t, wb, mx, ref, nk, s1, s2, s, scratch):
    """E-step and statistics of a block from its m kept terms (kept_terms): returns
    sum_b wb[b] * lse_b; adds r_kb = wb[b] exp(t) / sum_k exp(t) into nk, s1, s2 per
    component in point order, as _sparse_stats. ``s``: (BLOCK,) scratch,
    ``scratch``: (2, m) or longer float64."""
    zero, unused = scratch[0], scratch[1]
    for i in range(m):
        zero[i], unused[i] = 0.0, 0.0
    exp_shifted_sum(t, zero, m, unused)  # same exp as block_resp
    for b in range(nb):
        s[b] = 0.0
    for i in range(m):
        s[ents[1, i]] += t[i]
    logs = scratch[1]
    log_pos(s, nb, logs, scratch[0])
    ll = 0.0
    for b in range(nb):
        if wb[b] != 0.0:
            ll += wb[b] * (mx[b] + logs[b])
    for i in range(m):
        k, b = ents[0, i], ents[1, i]
        r = t[i] * (wb[b] / s[b])
        if r != 0.0:
            _add_point(X, b0 + b, k, r, ref, nk, s1, s2)
    return ll


@kernel
def _add_point(X, i, k, r, ref, nk, s1, s2):
    """Add row i with responsibility r to component k's DIAG statistics about ref."""
    nk[k] += r
    for j in range(ref.shape[1]):
        u = X[i, j] - ref[k, j]
        v = r * u
        s1[k, j] += v
        s2[k, 0, j] += v * u


@kernel
def n_nonzero(resp, nb):
    """Number of non-zero entries in resp[:, :nb]."""
    count = 0
    for k in range(resp.shape[0]):
        for b in range(nb):
            count += resp[k, b] != 0.0
    return count


@kernel
def _sparse_stats(X, b0, nb, resp, ref, nk, s1, s2):
    """block_stats (DIAG) over the non-zero responsibilities only, component by
    component (each component's sums in point order, as block_stats adds them)."""
    for k in range(ref.shape[0]):
        r_k = resp[k]
        for b in range(nb):
            if r_k[b] != 0.0:
                _add_point(X, b0 + b, k, r_k[b], ref, nk, s1, s2)


@kernel
def _buffers(X, ins, sel):
    """One worker's scratch for :func:`_chunk` (allocated once per pass and worker:
    large buffers allocated per chunk cost page faults)."""
    n_components, d2 = ins[0].shape
    gemm = X.itemsize == 4
    mats, lp, vec = block_buffers(d2 // 2, n_components)
    rows = GEMM_ROWS if gemm else BLOCK
    yt = np.zeros((d2 if gemm else 0, rows), X.dtype)
    lpx = np.empty((n_components if gemm else 0, rows), X.dtype)
    scratch32 = np.empty((4, rows), X.dtype)
    c32 = ins[1].astype(X.dtype)
    wide = np.zeros((3, rows))  # weights (ones), s, mx of a GEMM block
    wide[0] = 1.0
    cap = int(SPARSE_MAX * n_components * rows) if gemm else 0
    ents = np.empty((2, cap), np.int64)
    terms = np.empty((3, max(cap, BLOCK * (sel.shape[1] + 2))))
    order = np.empty((3, cap))
    return mats, lp, vec, yt, lpx, (scratch32, c32, wide, order), ents, terms


@kernel
def _chunk(X, sw, start, stop, kind, ins, const, loc, prec, ref, nk, s1, s2, sel,
           bufs):  # fmt: skip
    """E-step and statistics of rows start:stop (ins = gemm_inputs, bufs =
    :func:`_buffers`); returns the weighted log-likelihood sum. With sel (n, C)
    (C > 0), also sel[i] := the indices of row i's C largest weighted log-densities
    (:func:`record_top`). float32 data: one sgemm per GEMM_ROWS rows, then blocks of
    BLOCK rows; a block's kept terms from the float32 products (kept32), else the
    dense way (:func:`_dense_block`)."""
    mats, lp, vec, yt, lpx, (scratch32, c32, wide, order), ents, terms = bufs
    gemm = X.itemsize == 4
    rows = GEMM_ROWS if gemm else BLOCK
    cut = TRUNCATE_LOG + np.log(loc.shape[0])
    wg, sg, mg = wide[0], wide[1], wide[2]
    ll = 0.0
    for g0 in range(start, stop, rows):
        ng = min(rows, stop - g0)
        if gemm and sel.shape[1] == 0:
            _load_y(X, g0, ng, ins[2], yt)
            np.dot(ins[0], yt, lpx)
            m = kept_terms32(
                lpx, ng, ins[1], c32, cut, mg, scratch32, ents, terms[0],
                ents.shape[1], order,
            )  # fmt: skip
            if m >= 0:
                if sw.shape[0] > 0:
                    for b in range(ng):
                        wg[b] = sw[g0 + b]
                ll += sparse_resp_stats(
                    X, g0, ng, m, ents, terms[0], wg, mg, ref, nk, s1, s2, sg,
                    terms[1:],
                )  # fmt: skip
                continue
        elif gemm:
            _load_y(X, g0, ng, ins[2], yt)
            np.dot(ins[0], yt, lpx)
        for b0 in range(g0, g0 + ng, BLOCK):
            nb = min(BLOCK, g0 + ng - b0)
            if sw.shape[0] > 0:
                for b in range(nb):
                    vec[0, b] = sw[b0 + b]
            ll += _dense_block(
                X, b0, nb, b0 - g0, kind, ins, const, loc, prec, ref, nk, s1, s2,
                sel, lpx, mats, lp, vec, ents, terms,
            )  # fmt: skip
    return ll


@kernel
def _dense_block(X, b0, nb, off, kind, ins, const, loc, prec, ref, nk, s1, s2,
                 sel, lpx, mats, lp, vec, ents, terms):  # fmt: skip
    """E-step and statistics of rows b0:b0+nb with every log-density in float64
    (lp): float32 data from the products lpx[:, off:off+nb], float64 data term by
    term; then as :func:`_chunk` (record_top, kept terms or truncation, statistics
    sparse or dense). Returns the weighted log-likelihood sum."""
    n_components = loc.shape[0]
    wb, s, mx, ex = vec[0], vec[1], vec[2], vec[3:]
    _load(X, b0, nb, mats[0])
    if X.itemsize == 4:
        _gemm_log_prob(X, b0, nb, off, ins, const, loc, prec, lpx, lp, mx, ex[0])
        if sel.shape[1] > 0:
            record_top(lp, nb, b0, sel, terms[0])
        cut = TRUNCATE_LOG + np.log(n_components)
        cap = int(SPARSE_MAX * n_components * BLOCK)
        m = kept_terms(lp, nb, cut, mx, ents, terms[0], cap)
        if m >= 0:
            return sparse_resp_stats(
                X, b0, nb, m, ents, terms[0], wb, mx, ref, nk, s1, s2, s, terms[1:]
            )
        truncate(lp, nb, cut, mx)
    else:
        block_log_prob(nb, kind, const, loc, prec, mats, lp, s)
        if sel.shape[1] > 0:
            record_top(lp, nb, b0, sel, terms[0])
    ll = block_resp(lp, nb, wb, s, mx, ex)
    if n_nonzero(lp, nb) <= SPARSE_MAX * n_components * nb:
        _sparse_stats(X, b0, nb, lp, ref, nk, s1, s2)
    else:
        block_stats(nb, kind, ref, lp, nk, s1, s2, mats)
    return ll


#: the selection of a pass that records none (diag_em_pass)
NO_SELECTION = np.empty((0, 0), np.int32)


def diag_em_pass(X, sw, kind, const, loc, prec, ref, chunk):
    """:func:`fastgmm.kernels.passes.em_pass` for the DIAG kind and many components
    (module docstring); same arguments and results.

    X (n, d) float32 or float64, sw (n,) or (0,), kind DIAG, prec (K, 1, d). Returns
    (loglik_sum, nk (K,), s1 (K, d), s2 (K, 1, d)) about ``ref`` (K, d).
    """
    return diag_pass(X, sw, kind, const, loc, prec, ref, chunk, NO_SELECTION)


@kernel(parallel=True, inputs="X sw const loc prec ref")
def diag_pass(X, sw, kind, const, loc, prec, ref, chunk, sel):
    """:func:`diag_em_pass` that also records each row's top components in ``sel``
    (n, C) int32 (:func:`fastgmm.kernels.gselect.select_pass`; (0, 0): none)."""
    n, d = X.shape
    n_components = const.shape[0]
    ins = gemm_inputs(X, const, loc, prec)
    n_chunks = (n + chunk - 1) // chunk
    n_slots = n_slots_for(n_chunks, n_components, 1, d)
    pll, pnk, ps1, ps2 = slot_buffers(n_slots, n_components, 1, d)
    _, nk, s1, s2 = slot_buffers(1, n_components, 1, d)
    ll = 0.0
    for g0 in range(0, n_chunks, n_slots):
        m = min(n_slots, n_chunks - g0)
        queue, n_workers = task_queue(m)
        for _ in prange(n_workers):
            c = next_task(queue)
            bufs = _buffers(X, ins, sel)
            while c < m:
                start = (g0 + c) * chunk
                stop = min(n, start + chunk)
                pll[c] = _chunk(
                    X, sw, start, stop, kind, ins, const, loc, prec, ref,
                    pnk[c], ps1[c], ps2[c], sel, bufs,
                )  # fmt: skip
                c = next_task(queue)
        ll += add_slots(m, pll, pnk, ps1, ps2, nk[0], s1[0], s2[0])
    return ll, nk[0], s1[0], s2[0]
