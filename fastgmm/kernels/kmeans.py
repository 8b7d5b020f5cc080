"""Kernels for initialisation: nearest-centre assignment, k-means++ potentials and
statistics of hard labels. Parallel over fixed-size chunks with partial sums added in
chunk order, like the E-step, so results do not depend on the thread count; chunks go
to the threads dynamically (see :mod:`fastgmm.kernels.blocks`)."""

import numpy as np
from numba import prange

from .._jit import BLOCK, kernel
from . import FULL, TIED
from .blocks import (
    add_slots,
    n_slots_for,
    next_task,
    read_only,
    slot_buffers,
    sum_rows,
    task_queue,
)
from .logdensity import load_block


@kernel
def _sq_dist(X, i, centers, k):
    acc = 0.0
    for j in range(X.shape[1]):
        t = X[i, j] - centers[k, j]
        acc += t * t
    return acc


@kernel
def _block_nearest(xt, nb, centers, best, best_d, dist):
    """Nearest centre of each point of a transposed block (SIMD over points):
    best[b] (float-coded index) and best_d[b] its squared distance."""
    d = xt.shape[0]
    for b in range(nb):
        best_d[b] = np.inf
        best[b] = 0.0
    for k in range(centers.shape[0]):
        for b in range(nb):
            dist[b] = 0.0
        for j in range(d):
            c = centers[k, j]
            for b in range(nb):
                t = xt[j, b] - c
                dist[b] += t * t
        for b in range(nb):
            better = dist[b] < best_d[b]
            best_d[b] = dist[b] if better else best_d[b]
            best[b] = k if better else best[b]


@kernel
def _block_label_sums(xt, nb, centers, best, wb, nk, s1):
    """nk[k] += sum of weights with label k; s1[k] += their weighted offsets from
    centre k (masked sums over points: SIMD, no scatter)."""
    for k in range(centers.shape[0]):
        acc = 0.0
        for b in range(nb):
            acc += wb[b] if best[b] == k else 0.0
        nk[k] += acc
        for j in range(xt.shape[0]):
            c = centers[k, j]
            acc = 0.0
            for b in range(nb):
                acc += (wb[b] * (xt[j, b] - c)) if best[b] == k else 0.0
            s1[k, j] += acc


@kernel
def _chunk_lloyd(X, sw, centers, start, stop, labels, d2, nk, s1):
    """Assign rows start:stop (labels, d2); add weighted offsets to nk, s1 (if given)."""
    d = X.shape[1]
    xt = np.zeros((d, BLOCK))
    best = np.empty(BLOCK)
    best_d = np.empty(BLOCK)
    dist = np.empty(BLOCK)
    wb = np.empty(BLOCK)
    changed = 0
    for b0 in range(start, stop, BLOCK):
        nb = min(BLOCK, stop - b0)
        load_block(X, b0, nb, xt)
        _block_nearest(xt, nb, centers, best, best_d, dist)
        for b in range(nb):
            i = b0 + b
            k = int(best[b])
            changed += labels[i] != k
            labels[i] = k
            d2[i] = best_d[b]
            wb[b] = sw[i] if sw.shape[0] > 0 else 1.0
        if nk.shape[0] > 0:
            _block_label_sums(xt, nb, centers, best, wb, nk, s1)
    return changed


@kernel
def _no_sums(d):
    """Empty nk, s1 (outputs) and sample weights (an input: typed read-only)."""
    return np.zeros(0), np.zeros((0, d)), read_only(np.zeros(0))


@kernel(parallel=True, inputs="X centers")
def assign(X, centers, chunk, labels, d2):
    """labels[i] = argmin_k ||x_i - c_k||^2 and d2[i] = that squared distance."""
    n = X.shape[0]
    n_chunks = (n + chunk - 1) // chunk
    none_k, none_s, sw = _no_sums(centers.shape[1])
    queue, n_workers = task_queue(n_chunks)
    for _ in prange(n_workers):
        c = next_task(queue)
        while c < n_chunks:
            start, stop = c * chunk, min(n, (c + 1) * chunk)
            _chunk_lloyd(X, sw, centers, start, stop, labels, d2, none_k, none_s)
            c = next_task(queue)


@kernel(parallel=True, inputs="X sw centers")
def lloyd_step(X, sw, centers, chunk, labels, d2):
    """One Lloyd pass: assign each point to its nearest centre (updating labels, d2)
    and sum the weighted offsets from it. Returns (nk (K,), s1 (K, d), n_changed)."""
    n, d = X.shape
    n_components = centers.shape[0]
    n_chunks = (n + chunk - 1) // chunk
    pch, pnk, ps1, ps2 = slot_buffers(n_chunks, n_components, 0, d)
    _, nk, s1, s2 = slot_buffers(1, n_components, 0, d)
    queue, n_workers = task_queue(n_chunks)
    for _ in prange(n_workers):
        c = next_task(queue)
        while c < n_chunks:
            start, stop = c * chunk, min(n, (c + 1) * chunk)
            pch[c] = _chunk_lloyd(
                X, sw, centers, start, stop, labels, d2, pnk[c], ps1[c]
            )
            c = next_task(queue)
    changed = add_slots(n_chunks, pch, pnk, ps1, ps2, nk[0], s1[0], s2[0])
    return nk[0], s1[0], int(changed)


@kernel(parallel=True, inputs="X center")
def update_min_dist(X, center, chunk, d2):
    """d2[i] = min(d2[i], ||x_i - center||^2) in place."""
    n, d = X.shape
    n_chunks = (n + chunk - 1) // chunk
    queue, n_workers = task_queue(n_chunks)
    for _ in prange(n_workers):
        c = next_task(queue)
        while c < n_chunks:
            for i in range(c * chunk, min(n, (c + 1) * chunk)):
                acc = 0.0
                for j in range(d):
                    t = X[i, j] - center[j]
                    acc += t * t
                d2[i] = min(d2[i], acc)
            c = next_task(queue)


@kernel(parallel=True, inputs="X sw d2 cands")
def potentials(X, sw, d2, cands, chunk):
    """pot[t] = sum_i w_i min(d2_i, ||x_i - cand_t||^2) (sw of length 0: unit weights)."""
    n = X.shape[0]
    n_cand = cands.shape[0]
    n_chunks = (n + chunk - 1) // chunk
    _, part, _, _ = slot_buffers(n_chunks, n_cand, 0, 0)
    queue, n_workers = task_queue(n_chunks)
    for _ in prange(n_workers):
        c = next_task(queue)
        while c < n_chunks:
            for i in range(c * chunk, min(n, (c + 1) * chunk)):
                w = sw[i] if sw.shape[0] > 0 else 1.0
                for t in range(n_cand):
                    part[c, t] += w * min(d2[i], _sq_dist(X, i, cands, t))
            c = next_task(queue)
    return sum_rows(part)


@kernel
def _chunk_label_stats(X, sw, labels, start, stop, kind, ref, nk, s1, s2):
    d = X.shape[1]
    diff = np.empty(d)
    for i in range(start, stop):
        k = labels[i] if labels.shape[0] > 0 else 0
        if k < 0:
            continue
        w = sw[i] if sw.shape[0] > 0 else 1.0
        nk[k] += w
        for j in range(d):
            diff[j] = X[i, j] - ref[k, j]
            s1[k, j] += w * diff[j]
        if kind == FULL:
            for a in range(d):
                for b in range(a + 1):
                    s2[k, a, b] += w * diff[a] * diff[b]
        elif kind != TIED:
            for j in range(d):
                s2[k, 0, j] += w * diff[j] * diff[j]


@kernel(parallel=True, inputs="X sw labels ref")
def label_stats(X, sw, labels, n_components, kind, ref, chunk):
    """Weighted statistics of hard labels, as em_pass returns them (without loglik).

    labels (n,) int with -1 for "no component", or (0,) meaning every row in component 0.
    """
    n, d = X.shape
    p = d if kind == FULL else 1
    n_chunks = (n + chunk - 1) // chunk
    n_slots = n_slots_for(n_chunks, n_components, p, d)
    pll, pnk, ps1, ps2 = slot_buffers(n_slots, n_components, p, d)
    _, nk, s1, s2 = slot_buffers(1, n_components, p, d)
    for g0 in range(0, n_chunks, n_slots):
        m = min(n_slots, n_chunks - g0)
        queue, n_workers = task_queue(m)
        for _ in prange(n_workers):
            c = next_task(queue)
            while c < m:
                start = (g0 + c) * chunk
                stop = min(n, start + chunk)
                _chunk_label_stats(
                    X, sw, labels, start, stop, kind, ref, pnk[c], ps1[c], ps2[c]
                )
                c = next_task(queue)
        add_slots(m, pll, pnk, ps1, ps2, nk[0], s1[0], s2[0])
    return nk[0], s1[0], s2[0]
