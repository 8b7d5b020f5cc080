"""The variational family: what :class:`fastgmm.BayesianGaussianMixture` hands to the
fit driver, on the same fused pass as maximum-likelihood EM.

:class:`Variational` has the family seam of :mod:`fastgmm.engine.em`:

- ``inputs(params)``: the Gaussian log-density with per-component constants
  (E[log pi_k], E[log det Lambda_k], d / beta_k; see
  :func:`fastgmm.model.variational.e_step_terms`), through the same kernels;
- ``update(stats, ref, data)``: the variational M-step from the pass's statistics;
- ``bound(log_lik, stats, params, data)``: scikit-learn's evidence lower bound. It
  needs the posterior *after* the M-step and the responsibilities' entropy, which
  comes from the pass too: sum r log r = sum_k nk_k const_k - tr(P_k S_k) / 2 -
  sum_i w_i lse_i, with S_k the scatter about the previous means.

:func:`data_moments` is the one data pass the default priors need (weighted mean and
scatter).
"""

from dataclasses import dataclass, field

import numpy as np

from ..kernels import DIAG, FULL
from ..model import variational
from ..model.params import Params, kernel_inputs
from .data import _total_scatter
from .em import _prec_chol


@dataclass(frozen=True, eq=False)
class Variational:
    """The variational posterior of a Bayesian Gaussian mixture.

    Attributes
    ----------
    model : CovarianceModel
    prior : fastgmm.model.variational.Prior
    reg_covar : float
        Added to the diagonal of the maximum-likelihood covariances the M-step uses
        (scikit-learn's).
    prune : float or None
        Switch off components whose expected weight falls below this (see
        :func:`fastgmm.model.variational.prune`); None keeps every component.
    """

    model: object
    prior: object
    reg_covar: float = 1e-6
    prune: object = None
    #: the last (stats, next Params): the bound of an iteration needs the M-step's
    #: result, which em_step then asks for again with the same statistics
    _last: list = field(default_factory=lambda: [None, None], repr=False)

    def inputs(self, params):
        return kernel_inputs(params)

    def update(self, stats, ref, data):
        if self._last[0] is stats:
            return self._last[1]
        post, means, cov = variational.m_step(
            self.model, self.prior, stats, ref, self.reg_covar, data.tied_total
        )
        if self.prune is not None:
            post = variational.prune(post, stats[0], self.prune)
        prec_chol = _prec_chol(self.model, cov)  # IllDefinedCovariance if not PD
        new = Params(self.model, variational.weights(post), means, cov, prec_chol, post)
        self._last[:] = [stats, new]
        return new

    def bound(self, log_lik, stats, params, data):
        """Lower bound of the posterior that ``stats`` (taken under ``params``) give."""
        new = self.update(stats, params.means, data)
        maha = variational.weighted_mahalanobis(
            self.model, params.prec_chol, stats, params.means, data.tied_total
        )
        const = self.inputs(params).const
        r_log_r = variational.resp_log_resp(log_lik, stats[0], const, maha)
        return variational.lower_bound(
            r_log_r, new.posterior, self.model, new.prec_chol, data.n_features
        )


def data_moments(data, full):
    """(total weight, weighted mean (d,), scatter about it) of the training data in
    one pass: the (d, d) scatter if ``full`` else its diagonal (d,). Dense shared
    models reuse the scatter their data already holds."""
    if data.tied_total is not None:
        centre, scatter = data.tied_total
        return data.total_weight, centre, scatter if full else np.diag(scatter)
    if data.source is not None:
        ref = data.source.first_row()
    else:
        ref = np.asarray(data.X[0], np.float64)
    return _total_scatter(data, ref, FULL if full else DIAG)
