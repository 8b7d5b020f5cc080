"""Initialisation: kmeans (k-means++ seeding + Lloyd), k-means++, random,
random_from_data and user-given starting parameters.

Every method yields statistics of an initial assignment (hard labels, or soft
responsibilities for "random"), turned into :class:`Params` by the same M-step as EM,
exactly as scikit-learn builds its initial parameters from ``resp``. All randomness
comes from the caller's ``numpy.random.RandomState``; the kernels are deterministic
for any thread count.
"""

from dataclasses import replace

import numpy as np

from .._jit import kernel_array
from ..kernels import DIAG
from ..kernels.kmeans import (
    assign,
    label_stats,
    lloyd_step,
    potentials,
    update_min_dist,
)
from ..model.params import Params

KMEANS_MAX_ITER = 300
KMEANS_TOL = 1e-4


def _weights(data):
    sw = data.sample_weight
    return sw if sw.shape[0] else None


def kmeans_plusplus(data, n_components, random_state):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii; scikit-learn's variant with
    2 + log(K) local trials), weighted. Returns (centers (K, d) float64, indices (K,))."""
    X, n = data.X, data.X.shape[0]
    w = _weights(data)
    n_trials = 2 + int(np.log(n_components))
    first = random_state.choice(n, p=None if w is None else w / w.sum())
    indices = np.empty(n_components, np.int64)
    centers = np.empty((n_components, X.shape[1]))
    indices[0], centers[0] = first, X[first]
    d2 = np.full(n, np.inf)
    update_min_dist(X, centers[0], data.chunk, d2)
    for c in range(1, n_components):
        cum = np.cumsum(d2 if w is None else w * d2)
        cand = np.searchsorted(cum, random_state.uniform(size=n_trials) * cum[-1])
        cand = np.minimum(cand, n - 1)
        pots = potentials(
            X, data.sample_weight, d2, np.asarray(X[cand], np.float64), data.chunk
        )
        best = int(np.argmin(pots))
        indices[c], centers[c] = cand[best], X[cand[best]]
        update_min_dist(X, centers[c], data.chunk, d2)
    return centers, indices


def kmeans(data, n_components, random_state):
    """Weighted Lloyd k-means from k-means++ seeds; returns (centers, labels).

    Stops when no label changes or the squared centre shift falls below
    1e-4 x the mean feature variance (scikit-learn's rule), after at most 300 passes.
    Empty clusters are moved to the points farthest from their centres.
    """
    X, n = data.X, data.X.shape[0]
    centers, _ = kmeans_plusplus(data, n_components, random_state)
    tol = KMEANS_TOL * float(np.mean(data.feature_var))
    labels, d2 = np.full(n, -1, np.int64), np.empty(n)
    for _ in range(KMEANS_MAX_ITER):
        nk, s1, changed = lloyd_step(
            X, data.sample_weight, centers, data.chunk, labels, d2
        )
        if changed == 0:
            break
        new = centers + s1 / np.maximum(nk, np.finfo(float).tiny)[:, None]
        for k in np.flatnonzero(nk == 0):
            far = int(np.argmax(d2))
            new[k], d2[far] = X[far], 0.0
        shift = float(((new - centers) ** 2).sum())
        centers = new
        if shift <= tol:
            assign(X, centers, data.chunk, labels, d2)
            break
    return centers, labels


def hard_stats(data, labels, ref, n_components, model):
    """Statistics (nk, s1, s2) of hard labels about ``ref``, and ``ref``."""
    kind = model.kind
    ref = kernel_array(ref)
    return label_stats(
        data.X, data.sample_weight, labels, n_components, kind, ref, data.chunk
    ), ref


def _at_indices(data, indices, n_components, model):
    labels = np.full(data.X.shape[0], -1, np.int64)
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


def initialize(data, n_components, family, method, random_state, user=(None,) * 3):
    """Starting Params: from ``method``, overridden by user-given
    (weights_init, means_init, precisions_init) where not None."""
    weights_init, means_init, precisions_init = user
    model = family.model
    if weights_init is None or means_init is None or precisions_init is None:
        stats, ref = initial_stats(data, n_components, model, method, random_state)
        start = family.update(stats, ref, data)
    else:
        start = Params(model, None, None, None, None)
    weights = start.weights if weights_init is None else np.asarray(weights_init, float)
    means = start.means if means_init is None else np.asarray(means_init, float)
    if precisions_init is None:  # (keeps the family's extras, e.g. a posterior)
        return replace(start, weights=weights, means=means)
    prec_chol = model.prec_chol_from_prec(np.asarray(precisions_init, float))
    return Params(
        model, weights, means, model.covariances_from_prec_chol(prec_chol), prec_chol
    )
