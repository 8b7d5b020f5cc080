"""The work-sharing engine of :func:`fastgmm.selection.select`.

For one K, :func:`fit_k` runs every covariance type's EM restarts from shared
starts: the scatter pass of ``make_data`` is cached per chunk layout
(:class:`DataCache`), k-means runs once per restart and its labels seed every
covariance type (:func:`starts`). :func:`candidate` turns a result into a fitted
``GaussianMixture`` and scores it (BIC, AIC, ICL) in one chunked pass.
"""

import math
import time
from dataclasses import replace

import numpy as np

#: rows per scoring pass (bounds the responsibilities buffer)
SCORE_CHUNK = 1_000_000


class DataCache:
    """``make_data`` once per (tied or not, chunk layout), re-chunked per K."""

    def __init__(self, X, sample_weight):
        self.X, self.sample_weight, self._made = X, sample_weight, {}

    def get(self, n_components, covariance_type):
        from .._jit import chunk_rows
        from ..engine.em import make_data

        chunk = chunk_rows(self.X.shape[1], n_components)
        key = (covariance_type == "tied", chunk)
        if key not in self._made:
            cov_type = "tied" if key[0] else "full"
            self._made[key] = make_data(
                self.X, self.sample_weight, n_components, cov_type
            )
        return replace(self._made[key], chunk=chunk)


def starts(datas, n_components, method, random_states, options):
    """Starting Params of one restart for every covariance type.

    k-means runs once and its labels seed every covariance type; the other methods
    run per covariance type, each from its own copy of the candidate's generator.
    """
    from ..engine.em import params_from_stats
    from ..engine.init import _hard_stats, initial_stats, kmeans

    out, shared = {}, None
    for cov_type, data in datas.items():
        opts = options[cov_type]
        if method == "kmeans":
            if shared is None:
                shared = kmeans(data, n_components, random_states[cov_type])
            centers, labels = shared
            stats, ref = _hard_stats(data, labels, centers, n_components, cov_type)
        else:
            stats, ref = initial_stats(
                data, n_components, cov_type, method, random_states[cov_type]
            )
        out[cov_type] = params_from_stats(stats, ref, opts, data)
    return out


def fit_k(cache, n_components, cov_types, settings, seed, monitor):
    """Best EM result per covariance type over the restarts, and seconds spent."""
    from ..engine.em import Options, run_em

    datas = {c: cache.get(n_components, c) for c in cov_types}
    recover = settings["on_degenerate"] == "recover"
    options = {
        c: Options(
            c, settings["tol"], settings["reg_covar"], settings["max_iter"], recover
        )
        for c in cov_types
    }
    same = settings["init_params"] == "kmeans"
    shared_rs = np.random.RandomState(seed)
    rss = {c: shared_rs if same else np.random.RandomState(seed) for c in cov_types}
    best, seconds = dict.fromkeys(cov_types), dict.fromkeys(cov_types, 0.0)
    for init in range(settings["n_init"]):
        t0 = time.perf_counter()
        start = starts(datas, n_components, settings["init_params"], rss, options)
        share = (time.perf_counter() - t0) / len(cov_types)
        for c in cov_types:
            t0 = time.perf_counter()
            monitor.run_start(n_components, c, init)
            if settings["max_iter"] == 0:
                from ..engine.em import EMResult

                result = EMResult(start[c], -math.inf, [], 0, False)
            else:
                result = run_em(
                    datas[c], start[c], options[c], on_iter=monitor.iteration
                )
            monitor.run_end(n_components, c, init, result)
            if (
                best[c] is None
                or settings["max_iter"] == 0
                or result.lower_bound > best[c].lower_bound
            ):
                best[c] = result
            seconds[c] += share + time.perf_counter() - t0
    return best, seconds


def candidate(X, sample_weight, result, settings, fitted_names):
    """The fitted GaussianMixture and its table row (without fit_time)."""
    from ..inspection import _confidence, _score_chunks, model_params
    from ..mixture import GaussianMixture
    from ..model import covariance as cov

    k, d = result.params.means.shape
    model = GaussianMixture(k, **settings)
    model._set_fitted(result, X.dtype)
    for name, value in fitted_names.items():
        setattr(model, name, value)
    log_lik, penalty = 0.0, 0.0
    params, kind = model_params(model), model.covariance_type
    # n_jobs=False: sweep() already holds the thread setting
    chunks = _score_chunks(
        X, params, kind, SCORE_CHUNK, False, lse=True, resp=True, labels=True
    )
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
    p = cov.n_parameters(model.covariance_type, k, d)
    bic = -2.0 * log_lik + p * math.log(n_eff)
    row = {
        "n_components": k,
        "covariance_type": model.covariance_type,
        "bic": bic,
        "aic": -2.0 * log_lik + 2.0 * p,
        "icl": bic + 2.0 * penalty,
        "log_likelihood": log_lik,
        "n_parameters": p,
        "converged": bool(result.converged),
        "n_iter": int(result.n_iter),
    }
    return model, row


def sweep(X, sample_weight, ks, cov_types, settings, seeds, names, monitor):
    """(table rows, fitted models) of every (K, covariance type), K outermost."""
    from .._runtime import threads

    monitor.start(len(ks) * len(cov_types), settings["n_init"], settings["max_iter"])
    table, models = [], []
    with threads(settings["n_jobs"]):
        cache = DataCache(X, sample_weight)
        for k in ks:
            best, seconds = fit_k(cache, k, cov_types, settings, seeds[k], monitor)
            for c in cov_types:
                t0 = time.perf_counter()
                params = {**settings, "covariance_type": c, "random_state": seeds[k]}
                model, row = candidate(X, sample_weight, best[c], params, names)
                row["fit_time"] = seconds[c] + time.perf_counter() - t0
                table.append(row)
                models.append(model)
                monitor.candidate_end(row)
    return table, models
