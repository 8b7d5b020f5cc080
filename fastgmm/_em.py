"""The functional EM core: no scikit-learn, no estimator state.

``run_em(data, start, options)`` runs EM from a starting :class:`Params` and returns an
immutable :class:`EMResult`. One fused pass over the data per iteration computes the
log-likelihood of the current parameters and the statistics for the next ones
(scikit-learn's E-step + M-step, in the same order, with the same lower bound).
"""

import math
from dataclasses import dataclass, field

import numpy as np

from . import _covariance as cov
from ._estep import em_pass, score_pass
from ._jit import chunk_rows
from ._kmeans import label_stats
from ._logdensity import FULL, kernel_arrays


@dataclass(frozen=True)
class Params:
    """Mixture parameters in scikit-learn's shapes (float64)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: object  # ndarray, or None when started from precisions
    prec_chol: np.ndarray


@dataclass(frozen=True)
class Data:
    """Validated training data: X (n, d) float32/float64 C-contiguous, weights."""

    X: np.ndarray
    sample_weight: np.ndarray  # (n,) float64, or (0,) for unit weights
    total_weight: float
    chunk: int
    tied_total: object = None  # (centre, scatter) for covariance_type="tied"


@dataclass(frozen=True)
class Options:
    covariance_type: str = "full"
    tol: float = 1e-3
    reg_covar: float = 1e-6
    max_iter: int = 100


@dataclass(frozen=True)
class EMResult:
    params: Params
    lower_bound: float
    lower_bounds: list = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False


def make_data(X, sample_weight, n_components, covariance_type):
    """Wrap validated X and weights; precompute the total scatter for "tied"."""
    n, d = X.shape
    chunk = chunk_rows(d, n_components)
    if sample_weight is None:
        sw, total = np.empty(0), float(n)
    else:
        sw = np.ascontiguousarray(sample_weight, dtype=np.float64)
        total = float(sw.sum())
    data = Data(X, sw, total, chunk)
    if covariance_type != "tied":
        return data
    return Data(X, sw, total, chunk, total_scatter(data))


def total_scatter(data):
    """(centre, sum_i w_i (x_i - centre)(x_i - centre)') with the weighted mean as centre."""
    X = data.X
    ref = np.asarray(X[:1], dtype=np.float64)
    nk, s1, s2 = label_stats(
        X, data.sample_weight, np.empty(0, np.int64), 1, FULL, ref, data.chunk
    )
    delta = s1[0] / nk[0]
    s2 = np.tril(s2[0]) + np.tril(s2[0], -1).T
    return ref[0] + delta, s2 - np.outer(s1[0], delta)


def kernel_params(params, covariance_type):
    """(kind, const, loc, prec) arrays for the kernels from parameters."""
    entry = cov.TABLE[covariance_type]
    n_components, d = params.means.shape
    with np.errstate(divide="ignore"):
        log_w = np.log(params.weights)
    prec_k = entry.to_kernel(params.prec_chol, n_components, d)
    log_det = entry.log_det(params.prec_chol, n_components, d)
    return (entry.kind, *kernel_arrays(entry.kind, log_w, params.means, prec_k, log_det))


def params_from_stats(stats, ref, reg_covar, covariance_type, tied_total=None):
    """M-step: new Params from statistics about ``ref``."""
    weights, means, covariances = cov.estimate(
        covariance_type, stats, ref, reg_covar, tied_total
    )
    prec_chol = cov.TABLE[covariance_type].prec_chol(covariances)
    return Params(weights, means, covariances, prec_chol)


def em_step(data, params, options):
    """One fused pass: (mean log-likelihood of ``params``, next Params)."""
    kind, const, loc, prec = kernel_params(params, options.covariance_type)
    ref = np.ascontiguousarray(params.means, dtype=np.float64)
    ll, nk, s1, s2 = em_pass(
        data.X, data.sample_weight, kind, const, loc, prec, ref, data.chunk
    )
    new = params_from_stats(
        (nk, s1, s2), ref, options.reg_covar, options.covariance_type, data.tied_total
    )
    return ll / data.total_weight, new


def run_em(data, start, options, lower_bound=-math.inf, on_iter=None):
    """EM from ``start`` until |change of lower bound| < tol or max_iter iterations.

    ``on_iter(n_iter, change)`` is called after every iteration (verbose output).
    The lower bound of iteration t is the mean log-likelihood of the parameters
    *entering* iteration t, as in scikit-learn.
    """
    params, lower_bounds, converged, n_iter = start, [], False, 0
    for n_iter in range(1, options.max_iter + 1):
        previous = lower_bound
        lower_bound, params = em_step(data, params, options)
        lower_bounds.append(lower_bound)
        change = lower_bound - previous
        if on_iter is not None:
            on_iter(n_iter, change)
        if abs(change) < options.tol:
            converged = True
            break
    return EMResult(params, lower_bound, lower_bounds, n_iter, converged)


def score(X, params, covariance_type, *, lse=False, resp=False, labels=False):
    """Chunked per-point outputs of a model: log p(x), responsibilities, labels.

    Returns a tuple with the requested arrays in that order (dtype of X for floats).
    """
    n = X.shape[0]
    n_components = params.means.shape[0]
    kind, const, loc, prec = kernel_params(params, covariance_type)
    out_lse = np.empty(n if lse else 0, dtype=X.dtype)
    out_resp = np.empty((n if resp else 0, n_components), dtype=X.dtype)
    out_label = np.empty(n if labels else 0, dtype=np.int64)
    chunk = chunk_rows(X.shape[1], n_components)
    score_pass(X, kind, const, loc, prec, chunk, out_lse, out_resp, out_label)
    wanted = (out_lse, lse), (out_resp, resp), (out_label, labels)
    return tuple(a for a, w in wanted if w)
