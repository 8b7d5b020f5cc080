"""The variational posterior of a Bayesian Gaussian mixture: priors, M-step, E-step
constants and the evidence lower bound (scikit-learn's ``BayesianGaussianMixture``).

The model (Bishop, PRML 10.2; Blei & Jordan 2006 for the Dirichlet process) puts a
Dirichlet-distribution or stick-breaking (truncated Dirichlet-process) prior on the
weights and a Gaussian-Wishart prior on each component's mean and precision. The
posterior keeps scikit-learn's parameterisation and formulas:

- weights: Dirichlet concentrations (K,), or the Beta parameters of the sticks (2, K);
- means: ``means_`` with precision scale ``mean_precision`` (beta, (K,));
- precisions: Wishart with ``degrees_of_freedom`` (nu, (K,), a scalar when tied) and
  the covariances normalised by nu, so the precision-Cholesky factors of
  ``covariances_`` are those of E[Lambda_k] = nu_k W_k.

Everything is computed from the fused pass's statistics (nk, s1, s2 about the previous
means), so the E-step is the Gaussian log-density plus per-component constants
(:func:`e_step_terms`) and needs no kernel of its own. Pure NumPy/SciPy on arrays of
size K x d x d: no data, no estimator state.
"""

import math
from dataclasses import dataclass

import numpy as np

from . import covariance
from .checks import _as_float_array, check_shape

DIRICHLET_PROCESS = "dirichlet_process"
DIRICHLET_DISTRIBUTION = "dirichlet_distribution"
#: the covariance models with a variational posterior (scikit-learn's four)
MODELS = ("full", "tied", "diag", "spherical")


@dataclass(frozen=True, eq=False)
class Prior:
    """The prior (scikit-learn's ``*_prior_`` attributes, resolved), float64.

    ``covariance`` has one component's covariance shape: (d, d) for full and tied,
    (d,) for diag, () for spherical.
    """

    weight_type: str
    weight_concentration: float
    mean_precision: float
    mean: np.ndarray
    degrees_of_freedom: float
    covariance: np.ndarray


@dataclass(frozen=True, eq=False)
class Posterior:
    """The variational parameters besides means and covariances.

    Attributes
    ----------
    weight_type : {'dirichlet_process', 'dirichlet_distribution'}
    weight_concentration : ndarray of shape (2, K) (the sticks' Beta parameters) or (K,)
        A concentration of 0 (first Beta parameter for the process) marks a pruned
        component: zero weight, no responsibility.
    mean_precision : ndarray of shape (K,)
    degrees_of_freedom : ndarray of shape (K,), or () for tied
    """

    weight_type: str
    weight_concentration: np.ndarray
    mean_precision: np.ndarray
    degrees_of_freedom: np.ndarray

    def active(self):
        """Boolean mask (K,) of the components that are not pruned."""
        conc = self.weight_concentration
        return (conc[0] if self.weight_type == DIRICHLET_PROCESS else conc) > 0


def posterior_of(model):
    """The :class:`Posterior` of a fitted Bayesian mixture (fastgmm's or
    scikit-learn's): ``weight_concentration_prior_type``, ``weight_concentration_``,
    ``mean_precision_``, ``degrees_of_freedom_``."""
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    return Posterior(
        model.weight_concentration_prior_type,
        f64(model.weight_concentration_),
        f64(model.mean_precision_),
        f64(model.degrees_of_freedom_),
    )


def resolve_prior(est, n_features, moments):
    """The :class:`Prior` of estimator ``est``'s ``*_prior`` parameters, defaults
    filled in from the data as scikit-learn does, with its messages.

    ``moments`` = (total weight W, weighted mean (d,), scatter about it: (d, d) for
    full and tied, its diagonal (d,) otherwise). Defaults: weight concentration
    1 / n_components, mean precision 1, mean the data mean, degrees of freedom d,
    covariance the sample covariance scatter / (W - 1) (NumPy's ``np.cov``; with
    integer weights that of the repeated rows), its diagonal for diag and the mean
    of the diagonal for spherical.
    """
    model, d = covariance.get(est.covariance_type), n_features
    total, centre, scatter = moments
    alpha = est.weight_concentration_prior
    beta = est.mean_precision_prior
    mean = est.mean_prior
    if mean is None:
        mean = np.asarray(centre, dtype=np.float64)
    else:
        mean = _as_float_array(mean, False)
        check_shape(mean, (d,), "means")
    dof = est.degrees_of_freedom_prior
    if dof is None:
        dof = d
    elif not dof > d - 1.0:
        raise ValueError(
            "The parameter 'degrees_of_freedom_prior' should be greater than %d, "
            "but got %.3f." % (d - 1, dof)
        )
    cov = est.covariance_prior
    if cov is None:
        if not total > 1.0:
            raise ValueError(
                "The default covariance_prior (the sample covariance) needs a total "
                f"sample weight above 1, got {total}; pass covariance_prior."
            )
        cov = np.asarray(scatter, dtype=np.float64) / (total - 1.0)
        cov = cov.mean() if model.name == "spherical" else cov
    else:
        cov = _check_covariance_prior(cov, est.covariance_type, model, d)
    return Prior(
        est.weight_concentration_prior_type,
        1.0 / est.n_components if alpha is None else float(alpha),
        1.0 if beta is None else float(beta),
        np.asarray(mean, dtype=np.float64),
        float(dof),
        np.asarray(cov, dtype=np.float64),
    )


def _check_covariance_prior(cov, covariance_type, model, d):
    if model.form == "scalar":
        cov = np.asarray(cov, dtype=np.float64)
        if cov.shape != () or not cov > 0:
            raise ValueError(
                f"The parameter 'covariance_prior' should be a positive number for "
                f"covariance_type={covariance_type!r}, got {cov!r}"
            )
        return cov
    cov = _as_float_array(cov, False)
    shape = (d, d) if model.form == "dense" else (d,)
    check_shape(cov, shape, "%s covariance_prior" % covariance_type)
    model.check_precisions(cov, covariance_type)
    return cov


# ------------------------------------------------------------------- weights
def weights(post):
    """Expected mixture weights ``weights_`` (scikit-learn's), shape (K,)."""
    conc = post.weight_concentration
    if post.weight_type == DIRICHLET_PROCESS:
        a, b = conc
        total = a + b
        w = a / total * np.hstack((1.0, np.cumprod(b / total)[:-1]))
        return w / np.sum(w)
    return conc / np.sum(conc)


def expected_log_weights(post):
    """E[log pi_k], shape (K,); -inf for pruned components."""
    from scipy.special import digamma

    conc = post.weight_concentration
    with np.errstate(divide="ignore", invalid="ignore"):
        if post.weight_type == DIRICHLET_PROCESS:
            a, b = conc
            digamma_sum = digamma(a + b)
            out = (
                digamma(a)
                - digamma_sum
                + np.hstack((0.0, np.cumsum(digamma(b) - digamma_sum)[:-1]))
            )
        else:
            out = digamma(conc) - digamma(np.sum(conc))
    return np.where(post.active(), out, -np.inf)


def _concentration(prior, nk):
    if prior.weight_type == DIRICHLET_PROCESS:
        rest = np.hstack((np.cumsum(nk[::-1])[-2::-1], 0.0))
        return np.stack((1.0 + nk, prior.weight_concentration + rest))
    return prior.weight_concentration + nk


def prune(post, nk_raw, threshold):
    """Switch off the components whose expected weight is below ``threshold`` or that
    received no responsibility at all (a pruned one gets none, so it stays off): their
    weight concentration becomes 0. The heaviest component is always kept."""
    off = (weights(post) < threshold) | (nk_raw <= 0.0)
    off[np.argmax(weights(post))] = False
    if not off.any():
        return post
    conc = post.weight_concentration.copy()
    if post.weight_type == DIRICHLET_PROCESS:
        conc[0, off] = 0.0
    else:
        conc[off] = 0.0
    return Posterior(
        post.weight_type, conc, post.mean_precision, post.degrees_of_freedom
    )


# ---------------------------------------------------------------- the M-step
def _wishart_full(prior, nk, xk, sk, beta):
    dof = prior.degrees_of_freedom + nk
    diff = xk - prior.mean
    outer = diff[:, :, None] * diff[:, None, :]
    cov = (
        prior.covariance
        + nk[:, None, None] * sk
        + (nk * prior.mean_precision / beta)[:, None, None] * outer
    )
    return dof, cov / dof[:, None, None]


def _wishart_tied(prior, nk, xk, sk, beta):
    k = nk.shape[0]
    dof = np.asarray(prior.degrees_of_freedom + nk.sum() / k)
    diff = xk - prior.mean
    cov = (
        prior.covariance
        + sk * nk.sum() / k
        + prior.mean_precision / k * np.dot((nk / beta) * diff.T, diff)
    )
    return dof, cov / dof


def _wishart_diag(prior, nk, xk, sk, beta):
    dof = prior.degrees_of_freedom + nk
    diff = xk - prior.mean
    scale = (prior.mean_precision / beta)[:, None]
    cov = prior.covariance + nk[:, None] * (sk + scale * np.square(diff))
    return dof, cov / dof[:, None]


def _wishart_spherical(prior, nk, xk, sk, beta):
    dof = prior.degrees_of_freedom + nk
    diff = xk - prior.mean
    scale = prior.mean_precision / beta
    cov = prior.covariance + nk * (sk + scale * np.mean(np.square(diff), 1))
    return dof, cov / dof


_WISHART = {
    "full": _wishart_full,
    "tied": _wishart_tied,
    "diag": _wishart_diag,
    "spherical": _wishart_spherical,
}


def m_step(model, prior, stats, ref, reg_covar, tied_total=None):
    """Variational M-step from the statistics (nk, s1, s2) about ``ref``.

    scikit-learn's: nk, the responsibility-weighted means xk and covariances sk
    (reg_covar included) of the maximum-likelihood M-step
    (:func:`fastgmm.model.covariance.estimate`), then the Dirichlet and
    Gaussian-Wishart updates. Returns (posterior, means (K, d), covariances).
    """
    model = covariance.get(model)
    if model.name not in _WISHART:
        raise ValueError(
            f"covariance_type {model.name!r} has no variational posterior; "
            f"use one of {list(MODELS)}"
        )
    _, xk, sk = covariance.estimate(model, stats, ref, reg_covar, tied_total)
    nk = stats[0] + 10 * np.finfo(np.float64).eps
    beta = prior.mean_precision + nk
    means = (prior.mean_precision * prior.mean + nk[:, None] * xk) / beta[:, None]
    dof, cov = _WISHART[model.name](prior, nk, xk, sk, beta)
    post = Posterior(prior.weight_type, _concentration(prior, nk), beta, dof)
    return post, means, cov


# -------------------------------------------------------- E-step and bound
def _per_component(dof, k):
    return np.broadcast_to(np.asarray(dof, dtype=np.float64), (k,))


def e_step_terms(post, model, prec_chol, n_features):
    """(E[log pi_k], log-determinant term) of the variational E-step, each (K,).

    With them :func:`fastgmm.model.params.density_inputs` gives scikit-learn's
    ``_estimate_weighted_log_prob``: log N(x | m_k, (nu_k W_k)^-1) + E[log pi_k]
    - d/2 log nu_k + (E[log det Lambda_k] - log det W_k - d / beta_k) / 2, where
    E[log det Lambda_k] - log det W_k = d log 2 + sum_i digamma((nu_k - i) / 2).
    """
    from scipy.special import digamma

    model = covariance.get(model)
    k, d = post.mean_precision.shape[0], n_features
    nu = _per_component(post.degrees_of_freedom, k)
    log_lambda = d * np.log(2.0) + np.sum(
        digamma(0.5 * (nu - np.arange(d)[:, None])), 0
    )
    log_det = model.log_det(prec_chol, k, d) - 0.5 * d * np.log(nu)
    return expected_log_weights(post), log_det + 0.5 * (
        log_lambda - d / post.mean_precision
    )


def log_dirichlet_norm(concentration):
    """log of the Dirichlet normalisation, log Gamma(sum a) - sum log Gamma(a_k)."""
    from scipy.special import gammaln

    return gammaln(np.sum(concentration)) - np.sum(gammaln(concentration))


def log_wishart_norm(degrees_of_freedom, log_det_prec_chol, n_features):
    """log of the Wishart normalisation per component, without the log(pi) term
    (scikit-learn's ``_log_wishart_norm``)."""
    from scipy.special import gammaln

    nu = degrees_of_freedom
    return -(
        nu * log_det_prec_chol
        + nu * n_features * 0.5 * math.log(2.0)
        + np.sum(gammaln(0.5 * (nu - np.arange(n_features)[:, None])), 0)
    )


def weighted_mahalanobis(model, prec_chol, stats, means, tied_total=None):
    """sum_i w_i sum_k r_ik (x_i - m_k)' P_k (x_i - m_k) from the pass's statistics
    about ``means``: sum_k tr(P_k S_k); for tied, sum_k S_k comes from the total
    scatter T about c as T - sum_k [s1_k e_k' + e_k s1_k' + nk_k e_k e_k'], e_k = m_k - c.
    """
    model = covariance.get(model)
    nk, s1, s2 = stats
    k, d = means.shape
    if model.form != "dense":
        prec = model.to_kernel(prec_chol, k, d)[:, 0, :] ** 2
        return float(np.sum(prec * s2[:, 0, :]))
    prec = model.precisions(prec_chol)
    if model.shared:
        centre, total = tied_total
        e = means - centre
        cross = s1.T @ e
        return float(np.sum(prec * (total - cross - cross.T - (nk[:, None] * e).T @ e)))
    scatter = np.tril(s2) + np.tril(s2, -1).transpose(0, 2, 1)
    return float(np.sum(prec * scatter))


def resp_log_resp(log_lik, nk, const, maha):
    """sum_i w_i sum_k r_ik log r_ik from one pass: log r_ik = const_k - maha_ik / 2
    - lse_i, so the sum is sum_k nk_k const_k - maha / 2 - sum_i w_i lse_i
    (``log_lik``); components without responsibility add nothing."""
    with np.errstate(invalid="ignore"):
        cross = np.where(nk > 0, nk * const, 0.0)
    return float(np.sum(cross)) - 0.5 * maha - log_lik


def lower_bound(r_log_r, post, model, prec_chol, n_features):
    """scikit-learn's evidence lower bound (constant terms dropped) of the posterior
    ``post`` (after the M-step) with the responsibilities of the E-step before it.

    Pruned components add no weight term (their concentration is 0).
    """
    from scipy.special import betaln

    model = covariance.get(model)
    k, d = post.mean_precision.shape[0], n_features
    nu = post.degrees_of_freedom
    log_det = model.log_det(prec_chol, k, d) - 0.5 * d * np.log(_per_component(nu, k))
    if model.shared:
        log_wishart = k * float(log_wishart_norm(nu, log_det[0], d)[0])
    else:
        log_wishart = float(np.sum(log_wishart_norm(nu, log_det, d)))
    active, conc = post.active(), post.weight_concentration
    if post.weight_type == DIRICHLET_PROCESS:
        log_norm_weight = -float(np.sum(betaln(conc[0, active], conc[1, active])))
    else:
        log_norm_weight = float(log_dirichlet_norm(conc[active]))
    return (
        -r_log_r
        - log_wishart
        - log_norm_weight
        - 0.5 * d * float(np.sum(np.log(post.mean_precision)))
    )
