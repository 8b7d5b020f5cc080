"""Initialisation: kmeans (k-means++ seeding + Lloyd), k-means++, random,
random_from_data and user-given starting parameters.

Every method yields statistics of an initial assignment (hard labels, or soft
responsibilities for "random"), turned into :class:`Params` by the same M-step as EM,
exactly as scikit-learn builds its initial parameters from ``resp``. All randomness
comes from the caller's ``numpy.random.RandomState``; the kernels are deterministic
for any thread count.

"kmeans" is scikit-learn's start: ``GaussianMixture`` runs ``KMeans(K, n_init=1,
random_state=random_state).fit(X)``, and so does this module, draw for draw (the same
calls on the generator, the same k-means++ candidates, Lloyd passes, tie rule and
stopping rule), so the same ``random_state`` gives the same clusters. Memory beyond
the data: the labels (n, in the smallest integer dtype) and, while seeding, one
distance per row in the data's dtype.

"hc" and "short-em" (fastgmm's robust starts) choose among partitions made here and
in :mod:`fastgmm.engine.starts` (hc trees: :mod:`fastgmm.engine.hc`).
"""

import functools
import threading
from contextlib import contextmanager
from dataclasses import replace

import numpy as np

from .._jit import kernel_array
from .._pacing import pacing
from ..kernels import DIAG
from ..kernels.kmeans import label_stats, lloyd_run, move_centers
from ..kernels.seeding import choice_index, plusplus_run
from ..model.params import Params
from .starts import (
    HC_MODELS,
    N_KMEANS,
    N_RANDOM,
    Partition,
    hc_partitions,
    random_rows_partition,
    short_em,
)

#: init_params values: scikit-learn's four, then fastgmm's robust starts
METHODS = ("kmeans", "k-means++", "random", "random_from_data", "hc", "short-em")
ROBUST = ("hc", "short-em")
KMEANS_MAX_ITER = 300
KMEANS_TOL = 1e-4


_spare = threading.local()


@contextmanager
def seeded(random_state):
    """scikit-learn's ``check_random_state(random_state)`` for the length of a fit.

    For an int seed it yields ``RandomState(seed)``'s stream without the ~60 us of
    making a new MT19937 (its SeedSequence): this thread's spare bit generator,
    seeded as ``RandomState(seed)`` seeds its own (``_legacy_seeding``). The spare
    serves one fit at a time: a fit inside a fit gets a new one.
    """
    from sklearn.utils import check_random_state

    integer = isinstance(random_state, int | np.integer)
    if not integer or isinstance(random_state, bool) or not 0 <= random_state < 2**32:
        yield check_random_state(random_state)
        return
    spare = getattr(_spare, "generator", None) or np.random.MT19937()
    _spare.generator = None  # taken
    if not hasattr(spare, "_legacy_seeding"):  # a NumPy without it
        yield np.random.RandomState(int(random_state))
        return
    try:
        spare._legacy_seeding(int(random_state))
        yield np.random.RandomState(spare)
    finally:
        _spare.generator = spare


def label_dtype(n_components):
    """The smallest signed integer dtype holding labels 0..K-1 and -1."""
    for dtype in (np.int8, np.int16, np.int32):
        if n_components <= np.iinfo(dtype).max:
            return dtype
    return np.int64


@functools.cache
def _ones_sum(n, dtype):
    """``np.ones(n, dtype).sum()`` without the array: numpy's pairwise summation
    (blocks of up to 128 added exactly, halves split at multiples of 8)."""
    if n <= 128:
        return np.dtype(dtype).type(n)
    half = n // 2
    half -= half % 8
    return _ones_sum(half, dtype) + _ones_sum(n - half, dtype)


def _choice_p(data):
    """(p for unit weights, total weight) of scikit-learn's first k-means++ draw,
    ``choice(n, p=sample_weight / sample_weight.sum())``, as numpy computes them."""
    sw, dtype = data.sample_weight, data.X.dtype.type
    if sw.shape[0]:
        return 0.0, float(np.sum(sw))
    return float(dtype(1) / _ones_sum(data.X.shape[0], data.X.dtype.type)), 1.0


def kmeans_plusplus(data, n_components, random_state, mean=None):
    """scikit-learn's greedy k-means++ (``_kmeans_plusplus``: 2 + log(K) local
    trials, weighted, the same calls on ``random_state``) on the rows ``X - mean``.

    Returns (centres (K, d) in the data's dtype, centred; indices (K,) int64).
    The distances to the nearest centre are held in the data's dtype (one array of
    n); the seeding is one kernel call (``kernels.seeding.plusplus_run``).
    """
    X, n, chunk, sw = data.X, data.X.shape[0], data.chunk, data.sample_weight
    mean = np.zeros(X.shape[1], X.dtype) if mean is None else mean
    n_trials = 2 + int(np.log(n_components))
    p_unit, w_total = _choice_p(data)
    first = choice_index(sw, n, p_unit, w_total, random_state.random_sample())
    # scikit-learn's uniform(size=n_trials) per centre: the same doubles of the
    # stream (0 + 1 * u), drawn at once
    draws = random_state.random_sample((n_components - 1, n_trials))
    indices = np.empty(n_components, np.int64)
    centers = np.empty((n_components, X.shape[1]), X.dtype)
    d2 = np.full(n, np.inf, X.dtype)
    plusplus_run(X, sw, mean, first, draws, chunk, centers, indices, d2)
    return centers, indices


#: data of at most this many values: k-means' tolerance from ``np.var`` (as
#: scikit-learn computes it, ~10 us on small data), else from a pass of the kernels
#: (no n x d temporaries; equal to rounding)
NUMPY_VAR_VALUES = 100_000


def _unweighted_tolerance(data):
    """scikit-learn's KMeans tolerance: 1e-4 x the mean (unweighted) feature variance.

    Small data: scikit-learn's own expression (no pass of the kernels, and no
    feature variances computed for the fit: they are made only for a repair)."""
    X = data.X
    if X.size <= NUMPY_VAR_VALUES:
        return KMEANS_TOL * float(np.mean(np.var(X, axis=0)))
    if not data.sample_weight.shape[0] and np.any(data.feature_var > 0):
        return KMEANS_TOL * float(np.mean(data.feature_var))
    X, n = data.X, data.X.shape[0]
    ref = kernel_array(X[:1])
    _, s1, s2 = label_stats(
        X, np.empty(0), np.empty(0, np.int8), 1, DIAG, ref, data.chunk
    )
    var = s2[0, 0] / n - (s1[0] / n) ** 2
    return KMEANS_TOL * float(np.mean(var))


def _relocate_empty(data, mean, centers, nk, s1, labels):
    """scikit-learn's ``_relocate_empty_clusters_dense``: each empty cluster takes
    one of the rows farthest from their centres (``np.argpartition`` of the same
    distances, computed in blocks of rows; an array of n only in this rare case)."""
    X, sw = data.X, data.sample_weight
    empty = np.flatnonzero(nk == 0)
    dist = np.empty(X.shape[0], X.dtype)
    step = 1 << 16
    for s in range(0, X.shape[0], step):
        diff = (X[s : s + step] - mean) - centers[labels[s : s + step]]
        dist[s : s + step] = (diff**2).sum(axis=1)
    far = np.argpartition(dist, -len(empty))[: -len(empty) - 1 : -1]
    if np.max(dist) == 0:
        return
    for new, row in zip(empty, far):
        w = float(sw[row]) if sw.shape[0] else 1.0
        old = labels[row]
        x = np.asarray(X[row] - mean, np.float64)
        s1[old] -= x * w
        s1[new] = x * w
        nk[new] = w
        nk[old] -= w


def _average(s1, nk, dtype):
    """scikit-learn's ``_average_centers``: sums times 1 / weight; an empty cluster
    copies the heaviest one (as it stands at that point of the loop)."""
    if nk.all():  # no empty cluster: the same products, in one call
        return (s1 * (1.0 / nk)[:, None]).astype(dtype)
    heaviest = int(np.argmax(nk))
    for k in range(s1.shape[0]):
        if nk[k] > 0:
            s1[k] *= 1.0 / nk[k]
        else:
            s1[k] = s1[heaviest]
    return s1.astype(dtype)


def _moved_shift(s1, nk, centers):
    """Move ``centers`` (in place) to the relocated pass's averages; return the
    squared centre shift as scikit-learn's ``_center_shift`` then
    ``(center_shift**2).sum()`` round it: the kernel's ``move_centers`` when every
    cluster has weight (as on the kernel's own passes), else (a cluster still
    empty: no row to move to it) ``_average`` and the same sums in NumPy."""
    if nk.all():
        return move_centers(s1, nk, centers, np.empty(len(nk) + 2, centers.dtype))
    new = _average(s1, nk, centers.dtype)
    shift = np.sqrt(((new - centers) ** 2).sum(axis=1))
    centers[:] = new
    return float((shift**2).sum())


def lloyd(data, centers, mean, tol, max_iter=KMEANS_MAX_ITER):
    """scikit-learn's ``_kmeans_single_lloyd`` on the rows ``X - mean`` from centred
    ``centers`` (data dtype). Returns (centres (K, d) float64, centred; labels (n,)
    in the smallest integer dtype holding K; the number of passes, its ``n_iter_``).

    Stops when no label changes (strict convergence), or when the squared centre
    shift is within ``tol`` (then labels are recomputed for the last centres), after
    at most ``max_iter`` passes; empty clusters take the farthest rows. The loop
    runs in ``kernels.kmeans.lloyd_run``: on one thread in one call, on more one
    pass a call (paced); back here only for a pass that leaves a cluster empty.
    Sums are float64 and chunk-ordered (scikit-learn's depend on its thread count).
    """
    X, sw = data.X, data.sample_weight
    centers = np.array(centers, dtype=X.dtype, order="C")  # updated in place
    n_components = centers.shape[0]
    labels = np.full(X.shape[0], -1, label_dtype(n_components))
    nk, s1 = np.empty(n_components), np.empty(centers.shape)
    state = np.zeros(2, np.int64)  # passes done, labels changed by the last
    pacer = pacing("kmeans")
    # on one thread the whole loop is one call; on more, one pass a call, so that
    # the pacer times passes (the problem is then large enough for ~10 us a call)
    per_call = max_iter if pacer.n_threads <= 1 else 1
    limit = max_iter
    while True:
        with pacer.iteration():
            pause = int(state[0]) + per_call
            status = lloyd_run(
                X, sw, mean, centers, tol, limit, pause, data.chunk, labels, nk, s1,
                state,
            )  # fmt: skip
        if status == 3:  # paused
            continue
        if status != 2:
            break
        _relocate_empty(data, mean, centers, nk, s1, labels)
        if state[1] == 0:  # strict convergence
            centers[:] = _average(s1, nk, X.dtype)
            break
        if _moved_shift(s1, nk, centers) <= tol:
            limit = int(state[0])  # no more passes: label by these centres
    return centers.astype(np.float64), labels, int(state[0])


def kmeans(data, n_components, random_state):
    """scikit-learn's ``KMeans(n_clusters, n_init=1, random_state=random_state)
    .fit(X, sample_weight)`` (lloyd, 300 passes, tol 1e-4): its k-means++ seeds from
    the same draws, then its Lloyd passes, on the rows centred by their mean.
    Returns (centres (K, d) float64, labels (n,) in the smallest integer dtype).
    """
    mean = data.X.mean(axis=0)  # scikit-learn centres the data, in its dtype
    centers, _ = kmeans_plusplus(data, n_components, random_state, mean)
    centers, labels, _ = lloyd(data, centers, mean, _unweighted_tolerance(data))
    return centers + mean, labels


def hard_stats(data, labels, ref, n_components, model):
    """Statistics (nk, s1, s2) of hard labels about ``ref``, and ``ref``."""
    kind = model.kind
    ref = kernel_array(ref)
    return label_stats(
        data.X, data.sample_weight, labels, n_components, kind, ref, data.chunk
    ), ref


def _at_indices(data, indices, n_components, model):
    labels = np.full(data.X.shape[0], -1, label_dtype(n_components))
    labels[indices] = np.arange(n_components)
    return hard_stats(data, labels, data.X[indices], n_components, model)


def _random_stats(data, n_components, model, random_state):
    """Statistics of random soft responsibilities (holds an n x K array, init only)."""
    X = np.asarray(data.X, dtype=np.float64)
    resp = random_state.uniform(size=(X.shape[0], n_components))
    resp /= resp.sum(axis=1)[:, None]
    if data.sample_weight.shape[0]:
        resp *= data.sample_weight[:, None]
    nk = resp.sum(axis=0)
    ref = (resp.T @ X) / nk[:, None]
    full = model.kind != DIAG
    s2 = np.empty((n_components, X.shape[1] if full else 1, X.shape[1]))
    for k in range(n_components):
        diff = X - ref[k]
        s2[k] = (resp[:, k] * diff.T) @ diff if full else resp[:, k] @ diff**2
    s1 = np.zeros_like(ref)
    return (nk, s1, s2), ref


def initial_stats(data, n_components, model, method, random_state):
    """Statistics (nk, s1, s2) and their reference point for an init method."""
    if method == "kmeans":
        centers, labels = kmeans(data, n_components, random_state)
        return hard_stats(data, labels, centers, n_components, model)
    if method == "k-means++":
        _, indices = kmeans_plusplus(data, n_components, random_state)
        return _at_indices(data, indices, n_components, model)
    if method == "random_from_data":  # rows of zero weight are not data: never drawn
        rows = data.X.shape[0]
        if data.sample_weight.shape[0]:
            rows = np.flatnonzero(data.sample_weight > 0)
            if rows.shape[0] < n_components:
                raise ValueError(
                    f"Expected at least n_components = {n_components} samples with "
                    f"positive weight, got {rows.shape[0]}."
                )
        indices = random_state.choice(rows, size=n_components, replace=False)
        return _at_indices(data, indices, n_components, model)
    if method == "random":
        return _random_stats(data, n_components, model, random_state)
    raise ValueError(f"Unknown init_params {method!r}.")


def kmeans_partition(data, n_components, random_state, name="kmeans"):
    """The k-means start as a Partition (its M-step is that of ``"kmeans"``)."""
    centers, labels = kmeans(data, n_components, random_state)
    return Partition(name, labels, n_components, ref=centers)


def robust_partitions(data, n_components, method, random_state, trees=None):
    """The partitions a robust start (``"hc"``, ``"short-em"``) chooses from, made
    lazily in this order (see :mod:`fastgmm.engine.starts`): scikit-learn's k-means
    start, hc trees on one sample, further k-means and random-rows starts."""
    k, rs = n_components, random_state
    if method == "hc":
        yield from hc_partitions(data, [k], rs, ("VVV",), trees)[k]
        return
    yield kmeans_partition(data, k, rs)
    yield from hc_partitions(data, [k], rs, HC_MODELS, trees)[k]
    for i in range(1, N_KMEANS):
        yield kmeans_partition(data, k, rs, f"kmeans-{i}")
    positive = data.sample_weight.shape[0] == 0 or np.sum(data.sample_weight > 0) >= k
    for i in range(N_RANDOM if positive else 0):
        yield random_rows_partition(data, k, rs, f"random-{i}")


#: starts whose responsibilities are one row per component (the other rows none)
ONE_ROW_EACH = ("k-means++", "random_from_data")


def _uncentred_total(data):
    """``data`` whose ``tied_total`` is (0, X'X): a dense shared start from
    ``ONE_ROW_EACH`` is then scikit-learn's, (X'X - sum_k nk mu_k mu_k') / sum(nk)
    over every row (its formula assumes responsibilities summing to one per row;
    here they do not, so the pooled scatter about the centre would be another start)."""
    centre, total = data.tied_total
    second = total + data.total_weight * np.outer(centre, centre)
    return replace(data, tied_total=(np.zeros_like(centre), second))


def initialize(data, n_components, family, method, random_state, user=(None,) * 3):
    """Starting Params: from ``method``, overridden by user-given
    (weights_init, means_init, precisions_init) where not None."""
    weights_init, means_init, precisions_init = user
    model = family.model
    if (
        weights_init is not None
        and means_init is not None
        and precisions_init is not None
    ):
        start = Params(model, None, None, None, None)
    elif method == "hc":
        (part,) = robust_partitions(data, n_components, method, random_state)
        start = part.params(family, data)
    elif method == "short-em":
        parts = robust_partitions(data, n_components, method, random_state)
        start = short_em(data, family, parts)[0]
    else:
        stats, ref = initial_stats(data, n_components, model, method, random_state)
        if method in ONE_ROW_EACH and data.tied_total is not None:
            data = _uncentred_total(data)
        start = family.update(stats, ref, data)
    if weights_init is None and means_init is None and precisions_init is None:
        return start  # (keeps its kernel inputs, see model.params.with_inputs)
    weights = start.weights if weights_init is None else np.asarray(weights_init, float)
    means = start.means if means_init is None else np.asarray(means_init, float)
    if precisions_init is None:  # (keeps the family's extras, e.g. a posterior)
        return replace(start, weights=weights, means=means)
    prec_chol = model.prec_chol_from_prec(np.asarray(precisions_init, float))
    return Params(
        model, weights, means, model.covariances_from_prec_chol(prec_chol), prec_chol
    )
