"""Kernels for initialisation: nearest-centre assignment, k-means++ potentials and
statistics of hard labels. Parallel over fixed-size chunks with partial sums added in
chunk order, like the E-step, so results do not depend on the thread count.

The four passes are modes of one parallel kernel, :func:`kmeans_pass` (each parallel
kernel costs seconds to compile); :func:`lloyd_step`, :func:`assign`,
:func:`update_min_dist`, :func:`potentials` and :func:`label_stats` call it."""

import numpy as np
from numba import prange

from .._jit import BLOCK, kernel, kernel_array
from . import FULL, TIED
from .blocks import add_slots, n_slots_for, next_task, slot_buffers, task_queue
from .logdensity import data_shape, load_block


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
    """Assign rows start:stop (labels, d2); add weighted offsets to nk, s1."""
    _, d = data_shape(X)
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
        _block_label_sums(xt, nb, centers, best, wb, nk, s1)
    return changed


@kernel
def _block_sq_dist(xt, nb, center, dist):
    """dist[b] = ||x_b - center||^2 for the points of a transposed block."""
    for b in range(nb):
        dist[b] = 0.0
    for j in range(xt.shape[0]):
        c = center[j]
        for b in range(nb):
            t = xt[j, b] - c
            dist[b] += t * t


@kernel
def _chunk_min_dist(X, center, start, stop, d2):
    _, d = data_shape(X)
    xt = np.zeros((d, BLOCK))
    dist = np.empty(BLOCK)
    for b0 in range(start, stop, BLOCK):
        nb = min(BLOCK, stop - b0)
        load_block(X, b0, nb, xt)
        _block_sq_dist(xt, nb, center, dist)
        for b in range(nb):
            d2[b0 + b] = min(d2[b0 + b], dist[b])


@kernel
def _chunk_potentials(X, sw, d2, cands, start, stop, pot):
    """pot[t] += sum_{start <= i < stop} w_i min(d2_i, ||x_i - cand_t||^2), in row order."""
    _, d = data_shape(X)
    xt = np.zeros((d, BLOCK))
    dist = np.empty(BLOCK)
    for b0 in range(start, stop, BLOCK):
        nb = min(BLOCK, stop - b0)
        load_block(X, b0, nb, xt)
        for t in range(cands.shape[0]):
            _block_sq_dist(xt, nb, cands[t], dist)
            acc = pot[t]
            for b in range(nb):
                w = sw[b0 + b] if sw.shape[0] > 0 else 1.0
                acc += w * min(d2[b0 + b], dist[b])
            pot[t] = acc


@kernel
def _chunk_label_stats(X, sw, labels, start, stop, kind, ref, nk, s1, s2):
    _, d = data_shape(X)
    xt = np.zeros((d, BLOCK))
    diff = np.empty(d)
    for b0 in range(start, stop, BLOCK):
        nb = min(BLOCK, stop - b0)
        load_block(X, b0, nb, xt)
        for b in range(nb):
            i = b0 + b
            k = labels[i] if labels.shape[0] > 0 else 0
            if k < 0:
                continue
            w = sw[i] if sw.shape[0] > 0 else 1.0
            nk[k] += w
            for j in range(d):
                diff[j] = xt[j, b] - ref[k, j]
                s1[k, j] += w * diff[j]
            if kind == FULL:
                for a in range(d):
                    for e in range(a + 1):
                        s2[k, a, e] += w * diff[a] * diff[e]
            elif kind != TIED:
                for j in range(d):
                    s2[k, 0, j] += w * diff[j] * diff[j]


#: modes of kmeans_pass
LLOYD, MIN_DIST, POTENTIALS, LABEL_STATS = 0, 1, 2, 3


@kernel(parallel=True, inputs="X sw centers", floats="X")
def kmeans_pass(X, sw, centers, mode, kind, labels, d2, chunk):
    """One parallel pass over X (n, d), float32 or float64; sw (n,) or (0,) for unit
    weights. Returns (nk (K,), s1 (K, d), s2 (K, p, d), count), K = len(centers):

    LLOYD        labels[i], d2[i] := nearest centre, squared distance; nk, s1: the
                 weighted counts and offsets from it; count: labels changed
    MIN_DIST     d2[i] := min(d2[i], ||x_i - centers[0]||^2)
    POTENTIALS   nk[t] = sum_i w_i min(d2_i, ||x_i - centers[t]||^2)
    LABEL_STATS  nk, s1, s2: statistics of the hard ``labels`` about ``centers``, as
                 em_pass returns them (p = d for FULL, else 1; -1: no component;
                 labels of length 0: every row in component 0)
    """
    n, d = data_shape(X)
    n_components = centers.shape[0]
    p = (d if kind == FULL else 1) if mode == LABEL_STATS else 0
    n_chunks = (n + chunk - 1) // chunk
    # one slot per chunk within SLOT_BYTES (see blocks.n_slots_for); chunks go to
    # the threads dynamically (see blocks.task_queue)
    n_slots = n_slots_for(n_chunks, n_components, p, d)
    pch, pnk, ps1, ps2 = slot_buffers(n_slots, n_components, p, d)
    _, nk, s1, s2 = slot_buffers(1, n_components, p, d)
    count = 0.0
    for g0 in range(0, n_chunks, n_slots):
        m = min(n_slots, n_chunks - g0)
        queue, n_workers = task_queue(m)
        for _ in prange(n_workers):
            c = next_task(queue)
            while c < m:
                start = (g0 + c) * chunk
                stop = min(n, start + chunk)
                if mode == LLOYD:
                    pch[c] = _chunk_lloyd(
                        X, sw, centers, start, stop, labels, d2, pnk[c], ps1[c]
                    )
                elif mode == MIN_DIST:
                    _chunk_min_dist(X, centers[0], start, stop, d2)
                elif mode == POTENTIALS:
                    _chunk_potentials(X, sw, d2, centers, start, stop, pnk[c])
                else:
                    _chunk_label_stats(
                        X, sw, labels, start, stop, kind, centers,
                        pnk[c], ps1[c], ps2[c],
                    )  # fmt: skip
                c = next_task(queue)
        count += add_slots(m, pch, pnk, ps1, ps2, nk[0], s1[0], s2[0])
    return nk[0], s1[0], s2[0], int(count)


def _writable(a):
    """``a``, or a copy if read-only (kmeans_pass writes labels and d2 in some modes:
    they are typed writable, and a read-only one would compile it a second time)."""
    return a if a.flags.writeable else a.copy()


_NO_LABELS = np.empty(0, np.int64)


def lloyd_step(X, sw, centers, chunk, labels, d2):
    """One Lloyd pass: assign each point to its nearest centre (updating labels, d2)
    and sum the weighted offsets from it. Returns (nk (K,), s1 (K, d), n_changed)."""
    centers = kernel_array(centers)
    nk, s1, _, changed = kmeans_pass(X, sw, centers, LLOYD, 0, labels, d2, chunk)
    return nk, s1, changed


def assign(X, centers, chunk, labels, d2):
    """labels[i] = argmin_k ||x_i - c_k||^2 and d2[i] = that squared distance: a
    Lloyd pass whose sums are dropped."""
    lloyd_step(X, np.empty(0), centers, chunk, labels, d2)


def update_min_dist(X, center, chunk, d2):
    """d2[i] = min(d2[i], ||x_i - center||^2) in place."""
    centers = kernel_array(np.reshape(center, (1, -1)))
    kmeans_pass(X, np.empty(0), centers, MIN_DIST, 0, _NO_LABELS, d2, chunk)


def potentials(X, sw, d2, cands, chunk):
    """pot[t] = sum_i w_i min(d2_i, ||x_i - cand_t||^2) (sw of length 0: unit weights)."""
    d2, cands = _writable(d2), kernel_array(cands)
    return kmeans_pass(X, sw, cands, POTENTIALS, 0, _NO_LABELS, d2, chunk)[0]


def label_stats(X, sw, labels, n_components, kind, ref, chunk):
    """Weighted statistics of hard labels about ``ref`` (n_components, d), as em_pass
    returns them (without loglik): (nk, s1, s2).

    labels (n,) int with -1 for "no component", or (0,) meaning every row in component 0.
    """
    if np.shape(ref)[0] != n_components:
        raise ValueError(
            f"ref has {np.shape(ref)[0]} rows for {n_components} components"
        )
    no_d2 = np.empty(0)
    labels, ref = _writable(np.asarray(labels, np.int64)), kernel_array(ref)
    nk, s1, s2, _ = kmeans_pass(X, sw, ref, LABEL_STATS, kind, labels, no_d2, chunk)
    return nk, s1, s2
