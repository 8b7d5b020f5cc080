"""EM iterations: no scikit-learn, no estimator state.

One fused pass over the data per iteration computes the log-likelihood of the
current parameters and the statistics for the next ones (scikit-learn's E-step +
M-step, in the same order, with the same lower bound). What is fitted is a *family*:
an object with

- ``inputs(params)`` -> :class:`~fastgmm.model.params.KernelInputs` (the E-step),
- ``update(stats, ref, data)`` -> the next parameters (the M-step),
- ``bound(log_lik, stats, params, data)`` -> the lower bound of ``params``.

:class:`MaximumLikelihood` is the Gaussian mixture of scikit-learn's
``GaussianMixture``; another family (a variational posterior, a noise component)
plugs in with its own three methods on the same kernels.
"""

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._jit import kernel_array
from ..exceptions import DegenerateComponentWarning
from ..kernels.passes import em_pass
from ..model import covariance
from ..model.params import Params, kernel_inputs


@dataclass(frozen=True)
class MaximumLikelihood:
    """The Gaussian mixture fitted by maximum likelihood (scikit-learn's EM).

    Attributes
    ----------
    model : CovarianceModel
    reg_covar : float
        Added to the diagonal of every covariance.
    recover : bool
        Repair degenerate components (warning) instead of raising scikit-learn's
        ValueError.
    """

    model: object
    reg_covar: float = 1e-6
    recover: bool = True

    def inputs(self, params):
        return kernel_inputs(params)

    def update(self, stats, ref, data):
        return params_from_stats(stats, ref, self, data.tied_total, data.jitter)

    def bound(self, log_lik, stats, params, data):
        """Mean (weighted) log-likelihood of ``params``."""
        return log_lik / data.total_weight


@dataclass(frozen=True)
class EMResult:
    params: Params
    lower_bound: float
    lower_bounds: list = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False


def params_from_stats(stats, ref, family, tied_total, jitter):
    """M-step: new Params from statistics about ``ref``.

    A covariance that is not positive definite raises scikit-learn's ValueError, or,
    with ``family.recover``, is repaired (see ``CovarianceModel.repair``) with a
    :class:`DegenerateComponentWarning`.
    """
    model = family.model
    weights, means, cov = covariance.estimate(
        model, stats, ref, family.reg_covar, tied_total
    )
    try:
        prec_chol = _prec_chol(model, cov)
    except covariance.IllDefinedCovariance:
        if not family.recover:
            raise
        cov, repaired = model.repair(cov, jitter)
        prec_chol = model.prec_chol(cov)
        warnings.warn(
            f"Component(s) {repaired} had an ill-defined covariance (collapsed onto "
            "too few distinct points, or empty); a multiple of the data variance was "
            "added to their diagonal and the fit continued. Increase reg_covar, reduce "
            "n_components or scale the data to avoid this.",
            DegenerateComponentWarning,
            stacklevel=2,
        )
    return Params(model, weights, means, cov, prec_chol)


def _prec_chol(model, cov):
    """``model.prec_chol(cov)``; dense factors of a successful M-step in one kernel
    call (SciPy's two calls per component cost ~30 us each on small matrices);
    anything the kernel refuses (not positive definite, not finite) goes to the
    model, which raises its usual error."""
    if model.form == "dense":
        from ..kernels.cholesky import prec_chol_stack

        stack = kernel_array(cov).reshape(-1, *cov.shape[-2:])
        out = np.empty(stack.shape)
        if prec_chol_stack(stack, out) < 0:
            return out.reshape(cov.shape)
    return model.prec_chol(cov)


def block_em(X, sw, kind, const, loc, prec, ref, chunk):
    """(loglik sum, nk, s1, s2) of one block: the fused kernel (picklable wrapper)."""
    return em_pass(X, sw, kind, const, loc, prec, ref, chunk)


def pass_stats(data, params, family):
    """One fused pass: (log-likelihood sum, (nk, s1, s2), ref) under ``params``."""
    params.check(data.n_features)  # the kernels do not check bounds
    ref = kernel_array(params.means)
    args = (*family.inputs(params).astuple(), ref, data.chunk)
    ll, nk, s1, s2 = data.map_sum(block_em, *args)
    return ll, (nk, s1, s2), ref


def em_step(data, params, family):
    """One EM iteration: (lower bound of ``params``, next params)."""
    ll, stats, ref = pass_stats(data, params, family)
    return family.bound(ll, stats, params, data), family.update(stats, ref, data)


def run_em(data, start, family, tol, max_iter, lower_bound=-math.inf, on_iter=None):
    """EM from ``start`` until |change of lower bound| < tol or max_iter iterations.

    ``on_iter(n_iter, change)`` is called after every iteration (progress). The lower
    bound of iteration t is that of the parameters *entering* iteration t, as in
    scikit-learn.
    """
    params, lower_bounds, converged, n_iter = start, [], False, 0
    for n_iter in range(1, max_iter + 1):
        previous = lower_bound
        lower_bound, params = em_step(data, params, family)
        lower_bounds.append(lower_bound)
        change = lower_bound - previous
        if on_iter is not None:
            on_iter(n_iter, change)
        if abs(change) < tol:
            converged = True
            break
    return EMResult(params, lower_bound, lower_bounds, n_iter, converged)
