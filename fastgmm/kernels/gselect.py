"""Kernels: top-C component selection (Kaldi's gselect) for the diagonal kinds, an
explicit approximation of the E-step for many components (``top_components``).

A *selection pass* (:func:`select_pass`) is the exact fused pass of
:mod:`fastgmm.kernels.diaggemm` (every component) that also writes, for each row
i, ``sel[i]`` (C,) int32: the indices of its C largest weighted log-densities,
largest first. A *restricted pass* (:func:`restricted_pass`) then covers, for each
row, only its C selected components: their weighted log-densities term by term
(point by point, each component's parameters contiguous; in float32 arithmetic for
float32 data with float64 sums, as diaggemm's sgemm), the logsumexp over those C
(so the per-point log-likelihood is a lower bound of the exact one), the others'
responsibilities exactly zero, and the statistics over the non-zero ones
(``diaggemm._add_point``). float32 data drop terms below the largest by more than
``diaggemm.TRUNCATE_LOG + log K``, as the exact float32 pass does.

Each chunk of rows writes its own slot of partial sums and the slots are added in
chunk order: bitwise identical results for any thread count. This module is
compiled only by fits that ask for top-C selection.
"""

import numpy as np
from numba import prange

from .._jit import BLOCK, kernel
from .blocks import add_slots, n_slots_for, next_task, slot_buffers, task_queue
from .diaggemm import _add_point, diag_pass, truncate
from .passes import block_resp


def select_pass(X, sw, kind, const, loc, prec, ref, chunk, sel):
    """:func:`fastgmm.kernels.diaggemm.diag_em_pass` (same arguments and results)
    that also writes sel (n, C) int32: each row's C largest weighted log-densities'
    component indices, largest first (ties: the lower index first)."""
    return diag_pass(X, sw, kind, const, loc, prec, ref, chunk, sel)


@kernel
def restricted_log_prob(X, b0, nb, sel, const, loc_x, prec_x, lp, mx):
    """lp[c, b] := const_k - 1/2 sum_j ((x_ij - mu_kj) p_kj)^2 for k = sel[i, c],
    i = b0 + b < b0 + nb, each term in X's dtype (loc_x, prec_x (K, d) in it), the
    sum in float64; mx[b] := max_c lp[c, b]."""
    d = X.shape[1]
    for b in range(nb):
        i = b0 + b
        x = X[i]
        top = -np.inf
        for c in range(sel.shape[1]):
            k = np.int64(sel[i, c])
            mean, p = loc_x[k], prec_x[k]
            acc = 0.0
            for j in range(d):
                t = (x[j] - mean[j]) * p[j]
                acc += t * t
            v = const[k] - 0.5 * acc
            lp[c, b] = v
            top = max(top, v)
        mx[b] = top


@kernel
def _restricted_chunk(X, sw, start, stop, sel, const, loc_x, prec_x, ref, cut, sums):
    """E-step over the selected components and statistics of rows start:stop into
    sums = (nk, s1, s2); returns the weighted sum of the restricted log-likelihoods."""
    nk, s1, s2 = sums
    n_top = sel.shape[1]
    lp = np.empty((n_top, BLOCK))
    wb, s, mx = np.ones(BLOCK), np.empty(BLOCK), np.empty(BLOCK)
    scratch = np.empty((3, BLOCK))
    ll = 0.0
    for b0 in range(start, stop, BLOCK):
        nb = min(BLOCK, stop - b0)
        if sw.shape[0] > 0:
            for b in range(nb):
                wb[b] = sw[b0 + b]
        restricted_log_prob(X, b0, nb, sel, const, loc_x, prec_x, lp, mx)
        if cut < np.inf:
            truncate(lp, nb, cut, mx)
        ll += block_resp(lp, nb, wb, s, mx, scratch)
        for b in range(nb):
            i = b0 + b
            for c in range(n_top):
                r = lp[c, b]
                if r != 0.0:
                    _add_point(X, i, np.int64(sel[i, c]), r, ref, nk, s1, s2)
    return ll


@kernel(parallel=True, inputs="X sw sel const loc_x prec_x ref")
def restricted_pass(X, sw, sel, const, loc_x, prec_x, ref, cut, chunk):
    """The fused EM pass over each row's selected components (module docstring).

    X (n, d) float32 or float64, sw (n,) or (0,), sel (n, C) int32 component
    indices in [0, K) (a selection pass's), const (K,), loc_x and prec_x (K, d) in
    X's dtype (means and diagonal precision factors), ref (K, d), ``cut``: terms
    below a row's largest by more are dropped (inf: none). Returns (loglik_sum, nk
    (K,), s1 (K, d), s2 (K, 1, d)) about ``ref``, as ``em_pass``.
    """
    n, d = X.shape
    n_components = const.shape[0]
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
            while c < m:
                start = (g0 + c) * chunk
                stop = min(n, start + chunk)
                sums = (pnk[c], ps1[c], ps2[c])
                pll[c] = _restricted_chunk(
                    X, sw, start, stop, sel, const, loc_x, prec_x, ref, cut, sums
                )
                c = next_task(queue)
        ll += add_slots(m, pll, pnk, ps1, ps2, nk[0], s1[0], s2[0])
    return ll, nk[0], s1[0], s2[0]
