"""The work-sharing engine of :func:`fastgmm.selection.select`.

For one K, :func:`fit_k` runs the one fit driver (:func:`fastgmm.engine.fit.fit`)
for every covariance model from shared starts: the scatter pass of ``make_data`` is
cached per chunk layout (:class:`DataCache`), and the starts of each restart are made
once and seed every covariance model (:class:`SharedStarts`: k-means labels, or the
partitions hc and short-EM choose from, with one hc tree for all K when the tree's
rows do not depend on K). :func:`candidate` turns a result into a fitted
``GaussianMixture``, scores it (BIC, AIC, ICL) in one chunked pass of the one scorer
and flags it when degenerate (:func:`degeneracy`).

Candidates of different K are independent: :func:`sweep` fits them in a thread pool
(each on one kernel thread) when the data are small, where fixed costs dominate and
parallel kernels gain little; the results are bitwise those of the serial sweep.
"""

import functools
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace

import numpy as np

from ..engine.report import Monitor

#: rows per scoring pass (bounds the responsibilities buffer)
SCORE_CHUNK = 1_000_000
#: parallel="auto" fits the K values in parallel below this many values (rows x
#: features); measured in benchmarks/selection_sweep.py (see docs/usage.md)
PARALLEL_MAX_VALUES = 1_000_000


class WatchRepairs:
    """Mixin for a frozen-dataclass family with a ``recover`` flag: remembers which
    parameters a repair produced (a fit is flagged when its final parameters are
    among them). Its M-step is the family's own, first tried without repair."""

    def update(self, stats, ref, data, **kw):
        from ..model import covariance

        if not self.recover:
            return super().update(stats, ref, data, **kw)
        try:
            return replace(self, recover=False).update(stats, ref, data, **kw)
        except covariance.IllDefinedCovariance:
            params = super().update(stats, ref, data, **kw)
            self.repaired[id(params)] = params
            return params

    def was_repaired(self, params):
        return self.repaired.get(id(params)) is params


@functools.cache
def _watched_class(cls):
    namespace = {
        "__annotations__": {"repaired": object},
        "repaired": field(
            default_factory=weakref.WeakValueDictionary, compare=False, repr=False
        ),
        "__module__": __name__,
    }
    return dataclass(frozen=True)(
        type(f"Watched{cls.__name__}", (WatchRepairs, cls), namespace)
    )


def watched(family):
    """``family`` (a frozen dataclass with ``recover``) that remembers its repairs."""
    cls = _watched_class(type(family))
    return cls(**{f.name: getattr(family, f.name) for f in fields(family)})


class DataCache:
    """``make_data`` once per (dense shared or not, chunk layout), re-chunked per K;
    safe to share between threads."""

    def __init__(self, X, sample_weight):
        self.X, self.sample_weight, self._made = X, sample_weight, {}
        self._lock = threading.Lock()

    def get(self, n_components, model):
        from .._jit import chunk_rows
        from ..engine.data import make_data
        from ..kernels import TIED

        chunk = chunk_rows(self.X.shape[1], n_components)
        key = (model.kind == TIED, chunk)
        with self._lock:
            if key not in self._made:
                self._made[key] = make_data(
                    self.X, self.sample_weight, n_components, model
                )
            return replace(self._made[key], chunk=chunk)


class SharedStarts:
    """Starting Params of every (covariance model, restart) of one K.

    k-means, hc and short-EM make their starts (k-means labels, or the partitions
    hc and short-EM choose from) once per restart, on one generator shared in
    restart order (as ``n_init`` cold fits would draw), and they seed every
    covariance model; other methods run per model, each from its own copy of the
    candidate's generator. ``seconds`` is the time spent making shared starts.
    """

    SHARED = ("kmeans", "hc", "short-em")

    def __init__(self, datas, n_components, method, seed, trees=None):
        self.datas, self.n_components, self.method = datas, n_components, method
        self.seed, self.trees = seed, trees
        self._shared = np.random.RandomState(seed)
        self._own = {}
        self._made = {}
        self.seconds = 0.0

    def _partitions(self, data, init):
        from ..engine.init import kmeans_partition, robust_partitions

        if init not in self._made:
            t0 = time.perf_counter()
            k, rs = self.n_components, self._shared
            if self.method == "kmeans":
                parts = [kmeans_partition(data, k, rs)]
            else:
                parts = list(robust_partitions(data, k, self.method, rs, self.trees))
            self._made[init] = parts
            self.seconds += time.perf_counter() - t0
        return self._made[init]

    def start(self, family, init):
        """Starting Params of restart ``init`` for ``family``'s covariance model."""
        from ..engine.init import initial_stats
        from ..engine.starts import short_em

        model, data = family.model, self.datas[family.model.name]
        if self.method in self.SHARED:
            parts = self._partitions(data, init)
            if self.method == "short-em":
                return short_em(data, family, parts)[0]
            return parts[0].params(family, data)
        rs = self._own.setdefault(model.name, np.random.RandomState(self.seed))
        stats, ref = initial_stats(data, self.n_components, model, self.method, rs)
        return family.update(stats, ref, data)


def _families(cache, n_components, models, settings):
    """The family of each model (mclust's noise and prior set up from the data),
    and the data its starts see (the points not marked as noise)."""
    from ..engine.data import make_data
    from ..mixture import GaussianMixture
    from ..modelbased import model_based_setup

    families, starts = {}, {}
    for m in models:
        est = GaussianMixture(n_components, covariance_type=m.name, **settings)
        data = cache.get(n_components, m)
        starts[m.name] = data
        if est._model_based():
            est._setup = model_based_setup(est, cache.X, cache.sample_weight)
            mask = est._setup.noise_mask
            if mask is not None:
                sw = cache.sample_weight
                sw = np.where(mask, 0.0, 1.0 if sw is None else sw)
                starts[m.name] = make_data(cache.X, sw, n_components, m)
        families[m.name] = est._family()
    return families, starts


def fit_k(cache, n_components, models, settings, seed, monitor, trees=None):
    """Per covariance model: (best EM result over the restarts, its family), and
    seconds spent (each model's own time plus an equal share of the shared starts)."""
    from functools import partial

    from ..engine.fit import Schedule, fit

    datas = {m.name: cache.get(n_components, m) for m in models}
    schedule = Schedule(settings["tol"], settings["max_iter"], settings["n_init"])
    families, start_datas = _families(cache, n_components, models, settings)
    shared = SharedStarts(
        start_datas, n_components, settings["init_params"], seed, trees
    )  # fmt: skip
    best, seconds = {}, {}
    for m in models:
        family = watched(families[m.name])
        t0, s0 = time.perf_counter(), shared.seconds
        result = fit(
            datas[m.name], family, schedule, partial(shared.start, family),
            n_components, monitor=monitor,
        )  # fmt: skip
        best[m.name] = (result, family)
        seconds[m.name] = time.perf_counter() - t0 - (shared.seconds - s0)
    for m in models:
        seconds[m.name] += shared.seconds / len(models)
    return best, seconds


def degeneracy(params, reg_covar, repaired=False):
    """Why a fit is degenerate ('' if it is not): 'collapsed' when a component's
    covariance has a direction of variance at most 2 x reg_covar (the data's own
    variance there is no larger than the regularisation that keeps it finite),
    'repaired' when its final covariances needed fastgmm's repair."""
    k, d = params.means.shape
    full = params.model.full(params.covariances, k, d)
    smallest = float(np.linalg.eigvalsh(full).min())
    reasons = []
    if smallest <= 2 * reg_covar:
        reasons.append("collapsed")
    if repaired:
        reasons.append("repaired")
    return "+".join(reasons)


def candidate(X, sample_weight, result, settings, fitted_names):
    """The fitted GaussianMixture and its table row (without fit_time and flags)."""
    from ..engine.score import score_chunks
    from ..inspection import _confidence
    from ..mixture import GaussianMixture
    from ..model import criteria
    from ..model.params import from_fitted

    k = result.params.means.shape[0]
    model = GaussianMixture(k, **settings)
    model._set_fitted(result, X.dtype)
    for name, value in fitted_names.items():
        setattr(model, name, value)
    log_lik, penalty = 0.0, 0.0
    chunks = score_chunks(
        X, from_fitted(model), SCORE_CHUNK, settings["n_jobs"],
        lse=True, resp=True, labels=True,
    )  # fmt: skip
    for start, (lse, resp, labels) in chunks:
        neg_log_conf = -np.log(_confidence(resp, labels))
        if sample_weight is None:
            log_lik += float(np.sum(lse, dtype=np.float64))
            penalty += float(neg_log_conf.sum())
        else:
            w = sample_weight[start : start + lse.shape[0]]
            log_lik += float(np.dot(w, lse.astype(np.float64)))
            penalty += float(np.dot(w, neg_log_conf))
    n_eff = X.shape[0] if sample_weight is None else float(sample_weight.sum())
    p = model._n_parameters()
    row = {
        "n_components": k,
        "covariance_type": model.covariance_type,
        "bic": criteria.bic(log_lik, p, n_eff),
        "aic": criteria.aic(log_lik, p),
        "icl": criteria.icl(log_lik, p, n_eff, penalty),
        "log_likelihood": log_lik,
        "n_parameters": p,
        "converged": bool(result.converged),
        "n_iter": int(result.n_iter),
    }
    return model, row


def _one_k(job, k, monitor):
    """(rows, models) of one K: every covariance model fitted, scored, flagged."""
    X, sample_weight, cov_types, models, settings, seeds, names, cache, trees = job
    best, seconds = fit_k(cache, k, models, settings, seeds[k], monitor, trees)
    rows, fitted = [], []
    for c, m in zip(cov_types, models):
        t0 = time.perf_counter()
        result, family = best[m.name]
        params = {**settings, "covariance_type": c, "random_state": seeds[k]}
        model, row = candidate(X, sample_weight, result, params, names)
        row["degenerate"] = degeneracy(
            result.params, settings["reg_covar"], family.was_repaired(result.params)
        )
        row["fit_time"] = seconds[m.name] + time.perf_counter() - t0
        rows.append(row)
        fitted.append(model)
    return rows, fitted


class _Serialized(Monitor):
    """A monitor's run hooks called from several threads, one call at a time (the
    runs of different K interleave)."""

    def __init__(self, monitor):
        self.monitor, self.lock = monitor, threading.Lock()

    def run_start(self, *args):
        with self.lock:
            self.monitor.run_start(*args)

    def iteration(self, *args):
        with self.lock:
            self.monitor.iteration(*args)

    def run_end(self, *args):
        with self.lock:
            self.monitor.run_end(*args)


def in_parallel(parallel, X, ks, n_jobs):
    """Whether the K values are fitted concurrently (see :data:`PARALLEL_MAX_VALUES`)."""
    from .._runtime import n_threads_for

    if parallel == "kernels" or len(ks) < 2 or n_threads_for(n_jobs) < 2:
        return False
    return parallel == "candidates" or X.size < PARALLEL_MAX_VALUES


def sweep(X, sample_weight, ks, cov_types, settings, seeds, names, monitor, parallel):
    """(table rows, fitted models) of every (K, covariance type), K outermost."""
    from .._runtime import n_threads_for, threads
    from ..engine.data import fit_work
    from ..model import covariance

    models = [covariance.get(c) for c in cov_types]
    monitor.start(len(ks) * len(models), settings["n_init"], settings["max_iter"])
    job = (
        X, sample_weight, cov_types, models, settings, seeds, names,
        DataCache(X, sample_weight), {},
    )  # fmt: skip
    table, fitted = [], []
    if in_parallel(parallel, X, ks, settings["n_jobs"]):
        n_workers = min(len(ks), n_threads_for(settings["n_jobs"]))

        shared = _Serialized(monitor)

        def work(k):
            with threads(1):
                return _one_k(job, k, shared)

        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            results = list(pool.map(work, ks))
    else:
        work = max(fit_work(X, max(ks), m) or 0 for m in models)  # 0: none known
        with threads(settings["n_jobs"], work=work or None):
            results = [_one_k(job, k, monitor) for k in ks]
    for rows, models_k in results:
        for row, model in zip(rows, models_k):
            table.append(row)
            fitted.append(model)
            monitor.candidate_end(row)
    return table, fitted
