"""EM iterations: no scikit-learn, no estimator state.

One fused pass over the data per iteration computes the log-likelihood of the
current parameters and the statistics for the next ones (scikit-learn's E-step +
M-step, in the same order, with the same lower bound). What is fitted is a *family*:
an object with

- ``inputs(params)`` -> :class:`~fastgmm.model.params.KernelInputs` (the E-step),
- ``update(stats, ref, data, previous=None)`` -> the next parameters (the M-step;
  ``previous``, the parameters the statistics were computed under, lets an iterative
  M-step start its inner iterations there; None for a start's first M-step),
- ``bound(log_lik, stats, params, data)`` -> the lower bound of ``params``.

:class:`MaximumLikelihood` is the Gaussian mixture of scikit-learn's
``GaussianMixture``; :class:`ModelBased` adds mclust's conjugate prior (a MAP
M-step) and uniform noise component (one more kernel component with zero
precision); another family (a variational posterior) plugs in with its own three
methods on the same kernels.
"""

import math
import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from .._jit import kernel_array
from .._pacing import pacing
from ..exceptions import DegenerateComponentWarning
from ..kernels import DIAG, FULL
from ..kernels.diaggemm import diag_em_pass, use_gemm
from ..kernels.diagpass import diag_fused_pass, use_diag_pass
from ..kernels.fullgemm import full_em_pass
from ..kernels.fullgemm import use_gemm as use_full_gemm
from ..kernels.lowd32 import lowd32_em_pass, use_lowd32
from ..kernels.passes import em_pass
from ..model import covariance, prior
from ..model.fused import closed_params
from ..model.noise import Noise
from ..model.params import Params, kernel_inputs
from .gselect import Selection


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
    top_components : int or None
        Top-C component selection (:mod:`fastgmm.engine.gselect`, diagonal kinds
        only), or None for the exact E-step.
    """

    model: object
    reg_covar: float = 1e-6
    recover: bool = True
    top_components: object = None

    def inputs(self, params):
        return kernel_inputs(params)

    def update(self, stats, ref, data, previous=None):
        return params_from_stats(
            stats, ref, self, data.tied_total, lambda: data.jitter, previous
        )

    def bound(self, log_lik, stats, params, data):
        """Mean (weighted) log-likelihood of ``params``."""
        return log_lik / data.total_weight


@dataclass(frozen=True)
class ModelBased:
    """A Gaussian mixture with mclust's conjugate prior and/or uniform noise.

    Attributes
    ----------
    model : CovarianceModel
    reg_covar : float
    recover : bool
        As for :class:`MaximumLikelihood`.
    prior : Prior or None
        A conjugate prior (:mod:`fastgmm.model.prior`): the M-step maximises the
        posterior. The bound stays the mean log-likelihood (as mclust reports it).
    noise : Noise or None
        The noise component's initial weight and log density ``-log V``
        (:mod:`fastgmm.model.noise`).
    """

    model: object
    reg_covar: float = 1e-6
    recover: bool = True
    prior: object = None
    noise: object = None

    def inputs(self, params):
        return kernel_inputs(self.with_noise(params), tied_as_full=True)

    def with_noise(self, params):
        """``params`` with the noise component at its initial weight if they have
        none (a user-given start), the Gaussian weights scaled to make room."""
        if self.noise is None or params.noise is not None:
            return params
        weights = params.weights * (1.0 - self.noise.weight)
        return replace(params, weights=weights, noise=self.noise)

    def update(self, stats, ref, data, previous=None):
        """M-step. Statistics of an EM pass (``previous`` given) hold the noise
        component last (see ``inputs``); those of a start (``previous`` None) hold
        none: the start is then the Gaussian components alone, and ``inputs`` adds
        the noise at its initial weight."""
        nk, s1, s2 = stats
        noise, gauss_share = None, 1.0
        if self.noise is not None and previous is not None:
            total = nk.sum()
            noise = Noise(float(nk[-1] / total), self.noise.log_density)
            stats, ref = (nk[:-1], s1[:-1], s2[:-1]), ref[:-1]
            gauss_share = nk[:-1].sum() / total
        prev = None if previous is None else previous.covariances
        weights, means, cov = prior.estimate(
            self.model, stats, ref, self.reg_covar, self.prior, data.tied_total, prev
        )
        params = checked_params(
            self.model,
            self.recover,
            lambda: data.jitter,
            weights * gauss_share,
            means,
            cov,
        )
        return params if noise is None else replace(params, noise=noise)

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


def params_from_stats(stats, ref, family, tied_total, jitter, previous=None):
    """M-step: new Params from statistics about ``ref`` (``previous``: the Params
    they were computed under, or None).

    A covariance that is not positive definite raises scikit-learn's ValueError, or,
    with ``family.recover``, is repaired (see ``CovarianceModel.repair``) with a
    :class:`DegenerateComponentWarning`.
    """
    model = family.model
    fused = closed_params(model, stats, ref, family.reg_covar, tied_total)
    if fused is not None:  # a closed form, positive definite: one kernel call
        return fused
    prev = None if previous is None else previous.covariances
    weights, means, cov = covariance.estimate(
        model, stats, ref, family.reg_covar, tied_total, prev
    )
    return checked_params(model, family.recover, jitter, weights, means, cov)


def checked_params(model, recover, jitter, weights, means, cov):
    """Params of M-step estimates, their covariances checked (and repaired, by
    multiples of ``jitter``: a float, or a function returning it, called only for a
    repair)."""
    try:
        prec_chol = _prec_chol(model, cov)
    except covariance.IllDefinedCovariance:
        if not recover:
            raise
        cov, repaired = model.repair(cov, jitter() if callable(jitter) else jitter)
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
    """(loglik sum, nk, s1, s2) of one block: the fused kernel (picklable wrapper);
    diagonal models with many components and dense ones with many features take
    the GEMM forms (kernels.diaggemm, kernels.fullgemm), float32 data of few
    features the float32 pass (kernels.lowd32), the other diagonal ones from d = 4
    kernels.diagpass."""
    if use_lowd32(X.dtype, kind, X.shape[1]):
        return lowd32_em_pass(X, sw, kind, const, loc, prec, ref, chunk)
    if kind == DIAG and use_gemm(X.shape[1], const.shape[0]):
        return diag_em_pass(X, sw, kind, const, loc, prec, ref, chunk)
    if use_diag_pass(kind, X.shape[1]):
        return diag_fused_pass(X, sw, kind, const, loc, prec, ref, chunk)
    if kind == FULL and use_full_gemm(X.shape[1]):
        return full_em_pass(X, sw, kind, const, loc, prec, ref, chunk)
    return em_pass(X, sw, kind, const, loc, prec, ref, chunk)


def pass_stats(data, params, family, check=True):
    """One fused pass: (log-likelihood sum, (nk, s1, s2), ref) under ``params``
    (``check=False``: their shapes are known to be right, e.g. made by an M-step
    from checked ones)."""
    if check:
        params.check(data.n_features)  # the kernels do not check bounds
    inputs = family.inputs(params)
    ref = params.means
    extra = inputs.const.shape[0] - ref.shape[0]  # a noise component: about 0
    if extra:
        ref = np.vstack([ref, np.zeros((extra, ref.shape[1]))])
    ref = kernel_array(ref)
    args = (*inputs.astuple(), ref, data.chunk)
    ll, nk, s1, s2 = data.map_sum(block_em, *args)
    return ll, (nk, s1, s2), ref


def em_step(data, params, family, check=True):
    """One EM iteration: (lower bound of ``params``, next params)."""
    ll, stats, ref = pass_stats(data, params, family, check)
    bound = family.bound(ll, stats, params, data)
    return bound, family.update(stats, ref, data, previous=params)


def run_em(data, start, family, tol, max_iter, lower_bound=-math.inf, on_iter=None):
    """EM from ``start`` until |change of lower bound| < tol or max_iter iterations.

    ``on_iter(n_iter, change)`` is called after every iteration (progress). The lower
    bound of iteration t is that of the parameters *entering* iteration t, as in
    scikit-learn. Each iteration runs on the thread count of :func:`pacing` (fewer
    threads when other processes hold cores and that is faster; the same results).
    A family with ``top_components`` iterates on a :class:`Selection` (top-C
    selection), which also decides convergence (only on exact iterations).
    """
    params, lower_bounds, converged, n_iter = start, [], False, 0
    model = getattr(getattr(family, "model", None), "name", None)
    shape = (data.n_rows, start.means.shape[0], data.n_features, model)
    pacer = pacing("em", shape)
    selection = Selection.of(data, family, start.means.shape[0])
    start.check(data.n_features)  # once: each M-step keeps the shapes
    for n_iter in range(1, max_iter + 1):
        previous = lower_bound
        if selection is None:
            with pacer.iteration():
                lower_bound, params = em_step(data, params, family, check=False)
        else:  # paced by the kind of pass it runs
            last = n_iter == max_iter
            lower_bound, params = selection.step(data, params, family, last)
        lower_bounds.append(lower_bound)
        change = lower_bound - previous
        if on_iter is not None:
            on_iter(n_iter, change)
        if abs(change) < tol if selection is None else selection.done(change, tol):
            converged = True
            break
    return EMResult(params, lower_bound, lower_bounds, n_iter, converged)
