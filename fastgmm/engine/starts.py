"""Starts that do better than one k-means on harder data: hc and short-EM.

A start here is a :class:`Partition`: hard labels on the rows of the data, or on
the sample an hc tree was built on, that any covariance model turns into starting
parameters with its own M-step. The same partitions serve every covariance model of
a sweep (:func:`fastgmm.select` makes them once per K).

``"hc"``
    mclust's model-based hierarchical agglomeration (:mod:`fastgmm.engine.hc`, VVV
    criterion) on at most 2000 rows, cut at K clusters; the start is the M-step of
    that sample's partition, and EM then runs on all rows (mclust's way).
``"short-em"``
    Short-EM selection among starts (Biernacki, Celeux & Govaert 2003, "emEM"): a
    few EM iterations from each candidate -- scikit-learn's k-means start (the first
    draws of ``random_state``, so ties go to it), hc with the VVV and the EII
    criteria, more k-means restarts and rows drawn at random -- then EM continues
    from the one with the highest likelihood. A candidate whose covariance
    collapses in its short run is dropped.
"""

from dataclasses import dataclass, replace

import numpy as np

from .._jit import kernel_array
from ..kernels.kmeans import label_stats
from ..model import covariance
from .data import make_data
from .em import run_em
from .hc import cut_tree, hc_tree, sample_rows

#: EM iterations of each short run, and the change of the lower bound that ends one
SHORT_ITER = 10
SHORT_TOL = 1e-6
#: short runs whose lower bounds differ by less than this (relative) tie, and the first
#: wins: starts that differ only in their labels' order reach the same optimum with
#: bounds a rounding apart, and rounding (the kernels' summation order) must not pick
TIE_RTOL = 1e-12
#: k-means starts and random-rows starts among the short-EM candidates
N_KMEANS = 3
N_RANDOM = 4
HC_MODELS = ("VVV", "EII")


@dataclass(frozen=True)
class Partition:
    """Hard labels (-1: not in the partition) of K clusters on the rows of the fit's
    data (``X is None``), or on a sample of it (``X``, ``weights``). ``ref`` (K, d):
    the point the M-step sums about (default: each cluster's first row)."""

    name: str
    labels: np.ndarray
    n_components: int
    X: object = None
    weights: object = None
    ref: object = None

    def params(self, family, data):
        """Starting Params for ``family``: the M-step of the labelled rows (of
        ``data``, the fit's data, or of the sample)."""
        if self.X is not None:
            data = make_data(self.X, self.weights, self.n_components, family.model)
        X, labels, k = data.X, self.labels, self.n_components
        ref = self.ref
        if ref is None:  # sums about the first row of each cluster
            ref = np.zeros((k, X.shape[1]))
            inside = np.flatnonzero(labels >= 0)
            found, first = np.unique(labels[inside], return_index=True)
            ref[found] = X[inside[first]]
        ref = kernel_array(ref)
        stats = label_stats(
            X, data.sample_weight, labels, k, family.model.kind, ref, data.chunk
        )
        return family.update(stats, ref, data)


def _labels_dtype(k):
    return np.int8 if k <= 127 else np.int32


def hc_partitions(data, ks, random_state, models=("VVV",), trees=None):
    """{K: [Partition per hc model]}: trees (mclust's hc) on one seeded sample of
    at most :data:`~fastgmm.engine.hc.SUBSET` rows of ``data`` (in memory), cut at
    each K (at most the sample's size). ``trees``, a dict, keeps the trees of the
    samples seen for the next call (a sweep over K on at most 2000 rows builds one)."""
    rows = sample_rows(data.X.shape[0], data.sample_weight, random_state)
    X = np.ascontiguousarray(data.X[rows])
    sw = data.sample_weight[rows] if data.sample_weight.shape[0] else None
    trees = {} if trees is None else trees
    out = {k: [] for k in ks}
    for model in models:
        key = (model, rows.shape[0], rows.tobytes())
        if key not in trees:
            trees[key] = hc_tree(X, model)
        cut = cut_tree(trees[key], X.shape[0], ks)
        for k in ks:
            labels = cut[min(k, len(rows))].astype(_labels_dtype(k))
            out[k].append(Partition(f"hc-{model}", labels, k, X, sw))
    return out


def random_rows_partition(data, k, random_state, name="random_from_data"):
    """K rows drawn at random (of positive weight), one per cluster."""
    rows = data.X.shape[0]
    if data.sample_weight.shape[0]:
        rows = np.flatnonzero(data.sample_weight > 0)
    picked = random_state.choice(rows, size=k, replace=False)
    labels = np.full(data.X.shape[0], -1, _labels_dtype(k))
    labels[picked] = np.arange(k)
    return Partition(name, labels, k)


def _better(bound, best):
    """Whether lower bound ``bound`` beats ``best`` by more than a tie (TIE_RTOL)."""
    if not np.isfinite(best):
        return bound > best
    return bound > best + TIE_RTOL * abs(best)


def short_em(data, family, partitions, n_iter=SHORT_ITER, tol=SHORT_TOL):
    """(Params after the best short run, its partition's name): ``n_iter`` EM
    iterations from each partition's start, the highest lower bound wins (the first
    of ties, bounds within TIE_RTOL). Short runs never repair a covariance: a collapsing start is dropped;
    when all collapse, the first partition's start is returned as it is."""
    strict = replace(family, recover=False) if hasattr(family, "recover") else family
    best, first = None, None
    for part in partitions:
        if first is None:
            first = part
        try:
            result = run_em(data, part.params(strict, data), strict, tol, n_iter)
        except covariance.IllDefinedCovariance:
            continue
        if best is None or _better(result.lower_bound, best[0].lower_bound):
            best = (result, part.name)
    if best is None:
        return first.params(family, data), first.name
    return best[0].params, best[1]
