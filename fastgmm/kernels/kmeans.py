"""Kernels for initialisation: scikit-learn's k-means (its Lloyd loop; the
k-means++ seeding is in :mod:`fastgmm.kernels.seeding`), and statistics of hard
labels.

The k-means kernels reproduce ``sklearn.cluster.KMeans`` (lloyd) on the data it
sees: rows centred by their mean (``x - mean``, in the data's dtype). The nearest
centre minimises ``||c||^2 - 2 x.c`` computed as scikit-learn's BLAS GEMM computes it
(one fused multiply-add chain over the features, in the data's dtype), the first of
equal distances wins, so ties resolve as in scikit-learn.

Parallel over fixed-size chunks with partial sums added in chunk order, like the
E-step, so results do not depend on the thread count; chunks go to the threads
dynamically (see :mod:`fastgmm.kernels.blocks`). Labels may be any signed
integer dtype (the caller picks the smallest that holds K).
"""

import numpy as np
from numba import prange

from .._jit import BLOCK, kernel
from . import FULL, TIED
from .blocks import (
    add_slots,
    n_slots_for,
    next_task,
    slot_buffers,
    task_queue,
)


# ------------------------------------------------------------------ Lloyd passes
@kernel(strict=True)
def _block_nearest(xt, nb, centers, cnorm, best, best_d, dist):
    """best[b] = argmin_k (cnorm_k - 2 x_b.c_k) over the points of a transposed
    block, first of ties, in the data's dtype (dist, best_d): scikit-learn's
    GEMM-based distance, one FMA chain over features (strict: no re-association)."""
    d = xt.shape[0]
    for b in range(nb):
        best_d[b] = np.inf
        best[b] = 0
    for k in range(centers.shape[0]):
        for b in range(nb):
            dist[b] = 0.0
        for j in range(d):
            c = centers[k, j]
            for b in range(nb):
                dist[b] += xt[j, b] * c
        ck = cnorm[k]
        for b in range(nb):
            dist[b] = ck - 2.0 * dist[b]  # -2 dot is exact: one rounding, as BLAS
        for b in range(nb):
            better = dist[b] < best_d[b]
            best_d[b] = dist[b] if better else best_d[b]
            best[b] = k if better else best[b]


@kernel
def _chunk_lloyd(X, sw, mean, centers, cnorm, start, stop, labels, nk, s1, sums):
    """Assign rows start:stop (labels, in place); add weights and weighted centred
    rows to nk, s1 when ``sums``. Returns the number of labels changed."""
    d = X.shape[1]
    xt = np.empty((d, BLOCK), X.dtype)
    dist = np.empty(BLOCK, X.dtype)
    best_d = np.empty(BLOCK, X.dtype)
    best = np.empty(BLOCK, np.int64)
    changed = 0
    for b0 in range(start, stop, BLOCK):
        nb = min(BLOCK, stop - b0)
        for b in range(nb):
            for j in range(d):
                xt[j, b] = X[b0 + b, j] - mean[j]
        _block_nearest(xt, nb, centers, cnorm, best, best_d, dist)
        for b in range(nb):
            i = b0 + b
            k = best[b]
            changed += labels[i] != k
            labels[i] = k
            if sums:
                w = sw[i] if sw.shape[0] > 0 else 1.0
                nk[k] += w
                for j in range(d):
                    s1[k, j] += w * xt[j, b]
    return changed


@kernel(strict="exact")
def _row_norms(centers, out):
    """out[k] = ||c_k||^2 in the centres' dtype, rounding for rounding as NumPy's
    ``einsum("ij,ij->i", c, c)`` (scikit-learn's ``row_norms``) on an x86-64 build:
    16-byte lanes of products added without FMA, 4 vectors at a time taken last to
    first, then the lanes added in adjacent pairs."""
    d = centers.shape[1]
    lanes = 16 // centers.itemsize
    acc = np.empty(lanes, centers.dtype)
    for k in range(centers.shape[0]):
        for lane in range(lanes):
            acc[lane] = 0
        j = 0
        while d - j >= 4 * lanes:
            for v in range(3, -1, -1):
                for lane in range(lanes):
                    x = centers[k, j + v * lanes + lane]
                    acc[lane] += x * x
            j += 4 * lanes
        while j < d:
            for lane in range(min(lanes, d - j)):
                x = centers[k, j + lane]
                acc[lane] += x * x
            j += lanes
        w = lanes
        while w > 1:
            w //= 2
            for lane in range(w):
                acc[lane] = acc[2 * lane] + acc[2 * lane + 1]
        out[k] = acc[0]


@kernel(strict="exact")
def move_centers(s1, nk, centers, shift):
    """centers = s1 / nk (``s1 * (1 / nk)`` in float64, then the centres' dtype);
    returns scikit-learn's total squared centre shift: shift[k] = the root of
    ``_euclidean_dense_dense`` (4 squares a step) between the old and new centre,
    squared, summed as NumPy sums (pairwise), all in the centres' dtype."""
    n_components, d = centers.shape
    acc = shift[n_components:]  # [acc, step] in the centres' dtype
    for k in range(n_components):
        alpha = 1.0 / nk[k]
        acc[0] = 0
        for j in range(d):
            old = centers[k, j]
            centers[k, j] = s1[k, j] * alpha
            diff = centers[k, j] - old
            if j >= d - d % 4:  # the remainder: one square at a time
                acc[0] += diff * diff
            elif j % 4 == 0:
                acc[1] = diff * diff
            else:
                acc[1] += diff * diff
                if j % 4 == 3:
                    acc[0] += acc[1]
        root = np.sqrt(acc[0])
        shift[k] = root * root
    return _pairwise_sum(shift, n_components)


@kernel(strict="exact")
def _pairwise_sum(a, n):
    """NumPy's pairwise sum of a[:n] in a's dtype: halves (split at a multiple of
    8) added, down to blocks of at most 128 summed with 8 accumulators (a stack,
    not recursion: Numba's cache does not keep recursive functions)."""
    todo = np.empty((192, 3), np.int64)  # (start, length, halves done): post-order
    values = np.empty(192, a.dtype)
    r = np.empty(8, a.dtype)
    top, n_values = 1, 0
    todo[0, 0], todo[0, 1], todo[0, 2] = 0, n, 0
    while top > 0:
        top -= 1
        start, length, done = todo[top, 0], todo[top, 1], todo[top, 2]
        if length < 8:
            values[n_values] = 0
            for i in range(start, start + length):
                values[n_values] += a[i]
            n_values += 1
        elif length <= 128:  # 8 accumulators, then the remainder
            for m in range(8):
                r[m] = a[start + m]
            i = 8
            while i < length - length % 8:
                for m in range(8):
                    r[m] += a[start + i + m]
                i += 8
            res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            for m in range(i, length):
                res += a[start + m]
            values[n_values] = res
            n_values += 1
        elif done:  # both halves summed: left + right
            n_values -= 1
            values[n_values - 1] = values[n_values - 1] + values[n_values]
        else:
            half = length // 2
            half -= half % 8
            todo[top, 2] = 1  # back to this one after its halves
            todo[top + 1, 0], todo[top + 1, 1], todo[top + 1, 2] = (
                start + half,
                length - half,
                0,
            )
            todo[top + 2, 0], todo[top + 2, 1], todo[top + 2, 2] = start, half, 0
            top += 3
    return values[0]


@kernel
def _pass_sums(m, pch, pnk, ps1, ps2, nk, s1):
    """nk, s1 = the sums of slots 0..m-1 (zeroing them); returns (labels changed,
    whether a centre has no weight). Loops, not array expressions: in the parallel
    caller each of those would be a parallel region of its own."""
    for k in range(nk.shape[0]):
        nk[k] = 0.0
        for j in range(s1.shape[1]):
            s1[k, j] = 0.0
    changed = add_slots(m, pch, pnk, ps1, ps2, nk, s1, ps2[0])
    empty = False
    for k in range(nk.shape[0]):
        empty |= nk[k] == 0.0
    return changed, empty


@kernel(parallel=True, inputs="X sw mean")
def lloyd_run(X, sw, mean, centers, tol, max_iter, pause, chunk, labels, nk, s1, state):
    """scikit-learn's Lloyd loop (``_kmeans_single_lloyd``) on the rows X - mean in
    one call: passes (each row to its nearest centre, labels in place; per centre
    the sums of weights and weighted rows, float64, chunk-ordered) and new centres
    (in place, data dtype) until no label changes, the squared centre shift is
    within ``tol``, or the passes done (state[0]) reach ``max_iter``; then, unless
    no label changed, the rows are labelled by the last centres.

    ``state`` (2,) int64: the passes done (in and out), the labels the last pass
    changed (out). Returns 0: converged strictly; 1: stopped on tol or max_iter;
    2: the last pass left a centre without weight: nk (K,), s1 (K, d) hold its
    sums and ``centers`` the centres it assigned to, for the caller to relocate
    rows (scikit-learn's argpartition) and finish the pass; 3: paused, not
    converged, when the passes done reach ``pause`` (call again to go on).
    """
    n, d = X.shape
    n_components = centers.shape[0]
    n_chunks = (n + chunk - 1) // chunk
    pch, pnk, ps1, ps2 = slot_buffers(n_chunks, n_components, 0, d)
    cnorm = np.empty(n_components, centers.dtype)
    shift = np.empty(n_components + 2, centers.dtype)
    sums = True
    while state[0] < max_iter or sums:
        sums = state[0] < max_iter  # else: the last labelling, no sums
        _row_norms(centers, cnorm)
        queue, n_workers = task_queue(n_chunks)
        if n_workers == 1:  # no parallel region (~5 us a pass on small data)
            for c in range(n_chunks):
                start, stop = c * chunk, min(n, (c + 1) * chunk)
                pch[c] = _chunk_lloyd(
                    X, sw, mean, centers, cnorm, start, stop, labels, pnk[c], ps1[c],
                    sums,
                )  # fmt: skip
        else:
            for _ in prange(n_workers):
                c = next_task(queue)
                while c < n_chunks:
                    start, stop = c * chunk, min(n, (c + 1) * chunk)
                    pch[c] = _chunk_lloyd(
                        X, sw, mean, centers, cnorm, start, stop, labels, pnk[c],
                        ps1[c], sums,
                    )  # fmt: skip
                    c = next_task(queue)
        if not sums:
            return 1
        changed, empty = _pass_sums(n_chunks, pch, pnk, ps1, ps2, nk, s1)
        state[0] += 1
        state[1] = int(changed)
        if empty:
            return 2
        if move_centers(s1, nk, centers, shift) <= tol and state[1] != 0:
            max_iter = state[0]  # stop on tol: label by these centres
        if state[1] == 0:
            return 0
        if state[0] >= pause and state[0] < max_iter:
            return 3
    return 1


# ------------------------------------------------------------ label statistics
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
    _, nk, s1, s2 = slot_buffers(1, n_components, p, d)
    if n_chunks == 1:  # no parallel region (small data), no slot to add
        first = n - n  # (int64: a literal 0 would compile the helper once more)
        _chunk_label_stats(X, sw, labels, first, n, kind, ref, nk[0], s1[0], s2[0])
        return nk[0], s1[0], s2[0]
    n_slots = n_slots_for(n_chunks, n_components, p, d)
    pll, pnk, ps1, ps2 = slot_buffers(n_slots, n_components, p, d)
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
