"""The functional EM core: no scikit-learn, no estimator state.

``run_em(data, start, options)`` runs EM from a starting :class:`Params` and returns an
immutable :class:`EMResult`. One fused pass over the data per iteration computes the
log-likelihood of the current parameters and the statistics for the next ones
(scikit-learn's E-step + M-step, in the same order, with the same lower bound).
"""

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._jit import chunk_rows, kernel_array, kernel_input
from ..exceptions import DegenerateComponentWarning
from ..kernels.kmeans import label_stats
from ..kernels.logdensity import DIAG, FULL, kernel_arrays
from ..kernels.passes import em_pass, score_pass
from ..model import covariance as cov


@dataclass(frozen=True)
class Params:
    """Mixture parameters in scikit-learn's shapes (float64)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: object  # ndarray, or None when started from precisions
    prec_chol: np.ndarray


@dataclass(frozen=True)
class Data:
    """Validated training data and what is precomputed from it once per fit.

    In memory, X (n, d) is float32/float64 C-contiguous and ``sample_weight`` (n,)
    float64 or (0,) for unit weights. For streamed or distributed data X is None and
    ``source`` delivers the blocks (see :mod:`fastgmm._stream`).
    """

    X: object
    sample_weight: np.ndarray
    total_weight: float
    chunk: int
    feature_var: np.ndarray  # (d,) weighted variance of each feature
    tied_total: object = None  # (centre, scatter) for covariance_type="tied"
    source: object = None

    def map_sum(self, fn, *args):
        """sum over blocks of fn(X_block, sw_block, *args): tuples added element-wise,
        in block order (so results do not depend on scheduling)."""
        if self.source is None:
            return fn(self.X, self.sample_weight, *args)
        return self.source.map_sum(fn, *args)

    @property
    def jitter(self):
        """First diagonal increment used to repair a degenerate covariance."""
        scale = float(np.mean(self.feature_var))
        return 1e-6 * scale if scale > 0 and np.isfinite(scale) else 1e-6


@dataclass(frozen=True)
class Options:
    covariance_type: str = "full"
    tol: float = 1e-3
    reg_covar: float = 1e-6
    max_iter: int = 100
    recover: bool = True  # repair degenerate components (else raise as scikit-learn)


@dataclass(frozen=True)
class EMResult:
    params: Params
    lower_bound: float
    lower_bounds: list = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False


def make_data(
    X, sample_weight, n_components, covariance_type, source=None, variances=True
):
    """Wrap validated X and weights (or a block ``source`` with X=None) and
    precompute the feature variances and, for "tied", the total scatter.

    ``variances=False`` skips that data pass unless "tied" needs it (feature_var is
    then zero): for callers that never repair a covariance from it.
    """
    d = source.n_features if source is not None else X.shape[1]
    X = kernel_input(X)
    chunk = chunk_rows(d, n_components)
    if sample_weight is None:
        sw = np.empty(0)
    else:
        sw = kernel_array(sample_weight)
    data = Data(X, sw, 0.0, chunk, np.zeros(d), None, source)
    if not variances and covariance_type != "tied" and source is None:
        total = float(sw.sum()) if sw.shape[0] else float(X.shape[0])
        if not total > 0:
            raise ValueError("The total sample weight must be positive.")
        return Data(X, sw, total, chunk, np.zeros(d), None, source)
    kind = FULL if covariance_type == "tied" else DIAG
    ref = source.first_row() if source is not None else np.asarray(X[0], np.float64)
    total, centre, scatter = _total_scatter(data, ref, kind)
    feature_var = (np.diag(scatter) if kind == FULL else scatter) / total
    tied = (centre, scatter) if covariance_type == "tied" else None
    return Data(X, sw, total, chunk, feature_var, tied, source)


def block_scatter(X, sw, kind, ref, chunk):
    """(total weight, s1, s2) of a block about ``ref`` (1, d): one label_stats pass."""
    nk, s1, s2 = label_stats(X, sw, np.empty(0, np.int64), 1, kind, ref, chunk)
    return nk[0], s1[0], s2[0]


def _total_scatter(data, ref, kind):
    """(total weight, centre, scatter about it) with the weighted mean as centre:
    the full (d, d) scatter for FULL, its diagonal for DIAG."""
    ref = kernel_array(np.reshape(ref, (1, -1)))
    total, s1, s2 = data.map_sum(block_scatter, kind, ref, data.chunk)
    if not total > 0:
        raise ValueError("The total sample weight must be positive.")
    delta = s1 / total
    if kind == DIAG:
        return total, ref[0] + delta, s2[0] - s1 * delta
    s2 = np.tril(s2) + np.tril(s2, -1).T
    return total, ref[0] + delta, s2 - np.outer(s1, delta)


def kernel_params(params, covariance_type):
    """(kind, const, loc, prec) arrays for the kernels from parameters."""
    entry = cov.TABLE[covariance_type]
    n_components, d = params.means.shape
    with np.errstate(divide="ignore"):
        log_w = np.log(params.weights)
    prec_k = entry.to_kernel(params.prec_chol, n_components, d)
    log_det = entry.log_det(params.prec_chol, n_components, d)
    return (
        entry.kind,
        *kernel_arrays(entry.kind, log_w, params.means, prec_k, log_det),
    )


def params_from_stats(stats, ref, options, data):
    """M-step: new Params from statistics about ``ref``.

    A covariance that is not positive definite raises scikit-learn's ValueError, or,
    with ``options.recover``, is repaired (see :func:`_covariance.repair`) with a
    :class:`DegenerateComponentWarning`.
    """
    cov_type = options.covariance_type
    weights, means, covariances = cov.estimate(
        cov_type, stats, ref, options.reg_covar, data.tied_total
    )
    entry = cov.TABLE[cov_type]
    try:
        prec_chol = entry.prec_chol(covariances)
    except cov.IllDefinedCovariance:
        if not options.recover:
            raise
        covariances, repaired = cov.repair(cov_type, covariances, data.jitter)
        prec_chol = entry.prec_chol(covariances)
        warnings.warn(
            f"Component(s) {repaired} had an ill-defined covariance (collapsed onto "
            "too few distinct points, or empty); a multiple of the data variance was "
            "added to their diagonal and the fit continued. Increase reg_covar, reduce "
            "n_components or scale the data to avoid this.",
            DegenerateComponentWarning,
            stacklevel=2,
        )
    return Params(weights, means, covariances, prec_chol)


def block_em(X, sw, kind, const, loc, prec, ref, chunk):
    """(loglik sum, nk, s1, s2) of one block: the fused kernel (picklable wrapper)."""
    return em_pass(X, sw, kind, const, loc, prec, ref, chunk)


def em_step(data, params, options):
    """One fused pass: (mean log-likelihood of ``params``, next Params)."""
    kind, const, loc, prec = kernel_params(params, options.covariance_type)
    ref = kernel_array(params.means)
    ll, nk, s1, s2 = data.map_sum(block_em, kind, const, loc, prec, ref, data.chunk)
    new = params_from_stats((nk, s1, s2), ref, options, data)
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
    X = kernel_input(X)
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
