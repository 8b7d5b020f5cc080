"""Kernels for scikit-learn's greedy k-means++ seeding (``_kmeans_plusplus``) on
the rows ``X - mean``: the whole seeding in one call (:func:`plusplus_run`), the
chunked cumulative-sum search of its draws (:func:`locate`) and numpy's weighted
choice of the first centre (:func:`choice_index`).

Distances to the nearest centre are held in the data's dtype (one array of n);
cumulative sums of ``w * d2`` are searched chunk by chunk (no array of n partial
sums). Parallel over fixed-size chunks with partial sums added in chunk order, so
results do not depend on the thread count (see :mod:`fastgmm.kernels.blocks`).
"""

import numpy as np
from numba import prange

from .._jit import kernel
from .blocks import next_task, slot_buffers, sum_rows, task_queue
from .kmeans import _pairwise_sum


@kernel
def _centred_sq_dist(X, i, mean, point):
    """||(x_i - mean) - point||^2 in float64 (x_i - mean in the data's dtype)."""
    acc = 0.0
    for j in range(X.shape[1]):
        t = (X[i, j] - mean[j]) - point[j]
        acc += t * t
    return acc


@kernel(strict=True)
def _running_sum(sw, d2, start, stop, base, target):
    """Add w_i d2_i (i = start, ...) to ``base`` in order; return (first i whose
    running sum reaches ``target``, or -1; the sum over start:stop)."""
    acc = base
    for i in range(start, stop):
        acc += (sw[i] if sw.shape[0] > 0 else 1.0) * d2[i]
        if acc >= target:
            return i, acc
    return -1, acc


@kernel(strict=True, inputs="sw d2 sums targets")
def locate(sw, d2, chunk, sums, targets):
    """For each target: the first row whose cumulative sum of w d2 reaches it
    (``np.searchsorted(np.cumsum(w * d2), target)``, clipped to n - 1), the cumulative
    sum taken chunk by chunk (chunk totals ``sums``, then in order within a chunk)."""
    n = d2.shape[0]
    out = np.empty(targets.shape[0], np.int64)
    for t in range(targets.shape[0]):
        v = targets[t]
        out[t] = n - 1
        base = 0.0
        for c in range(sums.shape[0]):
            start = c * chunk
            stop = min(n, start + chunk)
            if base + sums[c] >= v:
                i = _running_sum(sw, d2, start, stop, base, v)[0]
                # the running sum from base may round below base + sums[c]: a miss
                # falls back to the chunk's last row
                out[t] = i if i >= 0 else stop - 1
                break
            base += sums[c]
    return out


@kernel(strict=True, inputs="sw")
def choice_index(sw, n, p_unit, w_total, u):
    """numpy's ``RandomState.choice(n, p=p)`` given its uniform draw ``u``, with
    p_i = w_i / w_total (or p_unit for unit weights): the first i with
    cdf_i / cdf_{n-1} > u, cdf the running sum of p in row order, as numpy computes it."""
    total = 0.0
    for i in range(n):
        total += sw[i] / w_total if sw.shape[0] > 0 else p_unit
    acc = 0.0
    for i in range(n):
        acc += sw[i] / w_total if sw.shape[0] > 0 else p_unit
        if acc / total > u:
            return i
    return n - 1


@kernel
def _seed_chunk(X, sw, mean, d2, points, take, start, stop, part):
    """Rows start:stop of one k-means++ step. ``take``: d2 = min(d2, the squared
    distance to points[0]) and return the sum of w d2 in row order; else add
    w min(d2, squared distance to points[t]) to part[t] for each candidate t."""
    if take:
        for i in range(start, stop):
            d2[i] = min(d2[i], _centred_sq_dist(X, i, mean, points[0]))
        return _running_sum(sw, d2, start, stop, 0.0, np.inf)[1]
    for i in range(start, stop):
        w = sw[i] if sw.shape[0] > 0 else 1.0
        for t in range(points.shape[0]):
            part[t] += w * min(d2[i], _centred_sq_dist(X, i, mean, points[t]))
    return 0.0


@kernel
def _least_potential(part):
    """(t, pot_t): the candidate of least potential (the first of equal ones) of the
    chunks' partial potentials part (n_chunks, n_trials), added in chunk order;
    zeroes part. Loops, not array expressions: in the parallel caller each of those
    would be a parallel region of its own."""
    pots = sum_rows(part)
    for c in range(part.shape[0]):
        for t in range(part.shape[1]):
            part[c, t] = 0.0
    best = 0
    for t in range(1, pots.shape[0]):
        if pots[t] < pots[best]:
            best = t
    return best, pots[best]


@kernel(parallel=True, inputs="X sw mean draws")
def plusplus_run(X, sw, mean, first, draws, chunk, centers, indices, d2):
    """scikit-learn's greedy k-means++ in one call: centre 0 is row ``first``; each
    next one is, of the candidate rows drawn at ``draws[c - 1] * potential`` on the
    cumulative sum of w d2 (:func:`locate`), the one of least potential
    sum_i w_i min(d2_i, ||(x_i - mean) - cand||^2), the first of equal ones.

    draws (K - 1, n_trials): the uniform draws (scikit-learn's
    ``random_state.uniform(size=n_trials)`` per centre). Writes centers (K, d)
    (centred rows, data dtype), indices (K,) int64 and d2 (n,) (data dtype, given
    as inf). Steps alternate, one chunked pass each: take a centre (update d2 and
    the chunk sums), then the candidates' potentials.
    """
    n, d = X.shape
    n_components, n_trials = centers.shape[0], draws.shape[1]
    n_chunks = (n + chunk - 1) // chunk
    sums, part, _, _ = slot_buffers(n_chunks, n_trials, 0, 0)  # zeroed
    targets = np.empty(n_trials)
    points = np.empty((n_trials, d))
    rows = np.empty(n_trials, np.int64)
    row, pot, c = first, 0.0, 0
    for step in range(2 * n_components - 1):
        take = step % 2 == 0
        if take:  # row becomes centre c
            indices[c] = row
            for j in range(d):
                centers[c, j] = X[row, j] - mean[j]
                points[0, j] = centers[c, j]
        else:  # candidates for centre c
            for t in range(n_trials):
                targets[t] = draws[c - 1, t] * pot
            found = locate(sw, d2, chunk, sums, targets)
            for t in range(n_trials):
                rows[t] = found[t]
            for t in range(n_trials):
                for j in range(d):
                    points[t, j] = X[rows[t], j] - mean[j]
        queue, n_workers = task_queue(n_chunks)
        if n_workers == 1:  # no parallel region (small data)
            for k in range(n_chunks):
                start, stop = k * chunk, min(n, (k + 1) * chunk)
                total = _seed_chunk(X, sw, mean, d2, points, take, start, stop, part[k])
                if take:
                    sums[k] = total
        else:
            for _ in prange(n_workers):
                k = next_task(queue)
                while k < n_chunks:
                    start, stop = k * chunk, min(n, (k + 1) * chunk)
                    total = _seed_chunk(
                        X, sw, mean, d2, points, take, start, stop, part[k]
                    )
                    if take:
                        sums[k] = total
                    k = next_task(queue)
        if take:
            if c == 0:  # scikit-learn: closest_dist_sq @ sample_weight
                pot = _pairwise_sum(sums, n_chunks)
            c += 1
        else:
            t, pot = _least_potential(part)
            row = rows[t]
