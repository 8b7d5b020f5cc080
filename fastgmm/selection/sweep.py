"""The work-sharing engine of :func:`fastgmm.selection.select`.

For one K, :func:`fit_k` runs the one fit driver (:func:`fastgmm.engine.fit.fit`)
for every covariance model from shared starts: the scatter pass of ``make_data`` is
cached per chunk layout (:class:`DataCache`), k-means runs once per restart and its
labels seed every covariance model (:class:`SharedStarts`). :func:`candidate` turns
a result into a fitted ``GaussianMixture`` and scores it (BIC, AIC, ICL) in one
chunked pass of the one scorer.
"""

import time
from dataclasses import replace

import numpy as np

#: rows per scoring pass (bounds the responsibilities buffer)
SCORE_CHUNK = 1_000_000


class DataCache:
    """``make_data`` once per (dense shared or not, chunk layout), re-chunked per K."""

    def __init__(self, X, sample_weight):
        self.X, self.sample_weight, self._made = X, sample_weight, {}

    def get(self, n_components, model):
        from .._jit import chunk_rows
        from ..engine.data import make_data
        from ..kernels import TIED

        chunk = chunk_rows(self.X.shape[1], n_components)
        key = (model.kind == TIED, chunk)
        if key not in self._made:
            self._made[key] = make_data(self.X, self.sample_weight, n_components, model)
        return replace(self._made[key], chunk=chunk)


class SharedStarts:
    """Starting Params of every (covariance model, restart) of one K.

    With ``init_params="kmeans"`` k-means runs once per restart, on one generator
    shared in restart order (as ``n_init`` cold fits would draw), and its labels seed
    every covariance model; other methods run per model, each from its own copy of
    the candidate's generator. ``kmeans_seconds`` is the time k-means took.
    """

    def __init__(self, datas, n_components, method, seed):
        self.datas, self.n_components, self.method = datas, n_components, method
        self.seed = seed
        self._shared = np.random.RandomState(seed)
        self._own = {}
        self._kmeans = {}
        self.kmeans_seconds = 0.0

    def _labels(self, data, init):
        from ..engine.init import kmeans

        if init not in self._kmeans:
            t0 = time.perf_counter()
            self._kmeans[init] = kmeans(data, self.n_components, self._shared)
            self.kmeans_seconds += time.perf_counter() - t0
        return self._kmeans[init]

    def start(self, family, init):
        """Starting Params of restart ``init`` for ``family``'s covariance model."""
        from ..engine.init import hard_stats, initial_stats

        model, data = family.model, self.datas[family.model.name]
        if self.method == "kmeans":
            centers, labels = self._labels(data, init)
            stats, ref = hard_stats(data, labels, centers, self.n_components, model)
        else:
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


def fit_k(cache, n_components, models, settings, seed, monitor):
    """Best EM result per covariance model over the restarts, and seconds spent
    (each model's own time plus an equal share of the shared k-means)."""
    from functools import partial

    from ..engine.fit import Schedule, fit

    datas = {m.name: cache.get(n_components, m) for m in models}
    schedule = Schedule(settings["tol"], settings["max_iter"], settings["n_init"])
    families, start_datas = _families(cache, n_components, models, settings)
    shared = SharedStarts(start_datas, n_components, settings["init_params"], seed)
    best, seconds = {}, {}
    for m in models:
        family = families[m.name]
        t0, k0 = time.perf_counter(), shared.kmeans_seconds
        best[m.name] = fit(
            datas[m.name], family, schedule, partial(shared.start, family),
            n_components, monitor=monitor,
        )  # fmt: skip
        own_kmeans = shared.kmeans_seconds - k0
        seconds[m.name] = time.perf_counter() - t0 - own_kmeans
    for m in models:
        seconds[m.name] += shared.kmeans_seconds / len(models)
    return best, seconds


def candidate(X, sample_weight, result, settings, fitted_names):
    """The fitted GaussianMixture and its table row (without fit_time)."""
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


def sweep(X, sample_weight, ks, cov_types, settings, seeds, names, monitor):
    """(table rows, fitted models) of every (K, covariance type), K outermost."""
    from .._runtime import threads
    from ..engine.data import fit_work
    from ..model import covariance

    models = [covariance.get(c) for c in cov_types]
    monitor.start(len(ks) * len(models), settings["n_init"], settings["max_iter"])
    table, fitted = [], []
    work = max(fit_work(X, max(ks), m) or 0 for m in models)  # 0: none known
    with threads(settings["n_jobs"], work=work or None):
        cache = DataCache(X, sample_weight)
        for k in ks:
            best, seconds = fit_k(cache, k, models, settings, seeds[k], monitor)
            for c, m in zip(cov_types, models):
                t0 = time.perf_counter()
                params = {**settings, "covariance_type": c, "random_state": seeds[k]}
                model, row = candidate(X, sample_weight, best[m.name], params, names)
                row["fit_time"] = seconds[m.name] + time.perf_counter() - t0
                table.append(row)
                fitted.append(model)
                monitor.candidate_end(row)
    return table, fitted
