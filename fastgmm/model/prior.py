"""The conjugate prior of mclust's ``priorControl()``: maximum a posteriori M-steps.

Fraley & Raftery (2007, "Bayesian regularization for normal mixture estimation and
model-based clustering", J. Classification 24) regularise EM with a conjugate prior;
mclust's ``priorControl()`` and ``defaultPrior`` set it from the data:

- each mean ``mu_k ~ N(mean, Sigma_k / shrinkage)``, ``shrinkage = 0.01``, ``mean`` the
  data mean;
- each covariance an inverse-Wishart-type density with ``dof = d + 2`` degrees of
  freedom and scale ``scale = var(X) / G^(2/d)`` (dense models), or the scalar
  ``mean(diag var(X)) / G^(2/d)`` per variance (diagonal and spherical models).

The M-step then maximises the posterior. With ``n_k``, ``xbar_k`` and ``W_k`` the
weighted count, mean and scatter of component k::

    mu_k = (n_k xbar_k + shrinkage mean) / (n_k + shrinkage)
    W~_k = W_k + shrinkage n_k / (n_k + shrinkage) (xbar_k - mean)(xbar_k - mean)' + S
    n~_k = n_k + [shrinkage > 0] + c

and the covariances are the model's own M-step (:mod:`fastgmm.model.mclust`) on
``W~_k`` and ``n~_k``, where ``S`` and ``c`` are the prior's scale and count of one
covariance: ``scale`` and ``dof + d + 1`` (dense), ``scale I`` and ``dof + 2``
(diagonal), ``scale / d I`` and ``(dof + 2) / d`` (one variance). A model whose
covariance is one for all components (EII, EEI, EEE) counts the prior once: ``S``
and ``c`` are divided by G. For VVV, EEE, VVI, EEI, VII and EII these are mclust's
formulas (``mstepVVV`` ... with a prior); for VEI, EVI, EEV and VEV mclust counts
the prior differently, and EVE, VEE, VVE and EVV have no prior in mclust: fastgmm
gives every model the same per-component prior, which is a proper MAP estimate in
each model's family. ``reg_covar`` is still added (``n~_k reg_covar`` on the
diagonal of ``W~_k``).
"""

from dataclasses import dataclass

import numpy as np

from . import covariance

#: mclust's defaultPrior shrinkage
DEFAULT_SHRINKAGE = 0.01
_KEYS = ("shrinkage", "mean", "dof", "scale")


@dataclass(frozen=True)
class Prior:
    """A conjugate prior (see the module docstring).

    Attributes
    ----------
    shrinkage : float
        kappa >= 0 (0: no prior on the means).
    mean : ndarray of shape (d,)
    dof : float
        nu > 0.
    scale : ndarray of shape (d, d) for dense models, a float otherwise.
    """

    shrinkage: float
    mean: np.ndarray
    dof: float
    scale: object


def _weighted_moments(X, sample_weight):
    """(mean (d,), covariance (d, d) with divisor sum(w) - 1, as R's var())."""
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
    total = w.sum()
    mean = w @ X / total
    diff = X - mean
    cov = (w[:, None] * diff).T @ diff / max(total - 1.0, np.finfo(float).tiny)
    return mean, cov


def default_prior(X, n_components, model, settings=None, sample_weight=None):
    """mclust's ``defaultPrior(data, G, modelName, ...)`` with ``priorControl``
    overrides in ``settings`` (keys ``shrinkage``, ``mean``, ``dof``, ``scale``).

    Parameters
    ----------
    X : ndarray of shape (n, d)
    n_components : int
    model : str or CovarianceModel
    settings : dict, optional
    sample_weight : ndarray of shape (n,), optional
        Frequency weights for the data mean and variance.

    Returns
    -------
    Prior
    """
    settings = {} if settings in (None, True) else dict(settings)
    bad = sorted(set(settings) - set(_KEYS))
    if bad:
        raise ValueError(f"prior accepts the keys {list(_KEYS)}, got {bad}")
    model = covariance.get(model)
    n, d = X.shape
    mean, var = _weighted_moments(X, sample_weight)
    shrinkage = float(settings.get("shrinkage", DEFAULT_SHRINKAGE))
    dof = float(settings.get("dof", d + 2))
    if not (np.isfinite(shrinkage) and shrinkage >= 0):
        raise ValueError(f"prior shrinkage must be >= 0, got {shrinkage!r}")
    if not (np.isfinite(dof) and dof > 0):
        raise ValueError(f"prior dof must be > 0, got {dof!r}")
    if "mean" in settings:
        mean = np.asarray(settings["mean"], dtype=np.float64).reshape(-1)
        if mean.shape != (d,) or not np.all(np.isfinite(mean)):
            raise ValueError(f"prior mean must be {d} finite numbers")
    fac = (1.0 / n_components) ** (2.0 / d)
    if "scale" in settings:
        scale = _check_scale(settings["scale"], model, d)
    elif model.form == "dense":
        scale = fac * (var if n > d else np.diag(np.diag(var)))
    else:
        scale = fac * float(np.trace(var)) / d
    return Prior(shrinkage, mean, dof, scale)


def _check_scale(scale, model, d):
    scale = np.asarray(scale, dtype=np.float64)
    if model.form == "dense":
        if scale.shape != (d, d) or not np.allclose(scale, scale.T):
            raise ValueError(f"prior scale must be a symmetric ({d}, {d}) matrix")
        if np.linalg.eigvalsh(scale).min() < 0:
            raise ValueError("prior scale must be positive semi-definite")
        return scale
    if scale.shape != () or not scale >= 0:
        raise ValueError(f"prior scale of a {model.form} model must be a number >= 0")
    return float(scale)


def _scatter(model, st):
    """Per-component scatter (K, d, d) or diagonals (K, d) about the new means. A
    dense shared model's first M-step (from a start's statistics, of the TIED kind:
    no per-component scatter, given with ``tied_total``) takes the pooled scatter,
    total minus between components, in the first slot: EEE's M-step only sums them.
    (The shape of ``s2`` cannot tell the kinds apart: at d = 1 both are (K, 1, 1).)"""
    k, d = st.means.shape
    if model.form != "dense":
        return covariance._diag_scatter(st)
    first_tied = model.shared and st.previous is None and st.tied_total is not None
    if not first_tied:
        return covariance._dense_scatter(st)
    centre, total = st.tied_total
    dm = st.means - centre
    pooled = np.zeros((k, d, d))
    pooled[0] = total - (st.nk_raw[:, None] * dm).T @ dm
    return pooled


def _prior_terms(model, prior, k, d):
    """(scale added to each component's scatter, count added to its n_k)."""
    if model.form == "dense":
        scale, count = np.asarray(prior.scale), prior.dof + d + 1
    elif model.form == "diag":
        scale, count = np.full(d, prior.scale), prior.dof + 2
    else:
        scale, count = np.full(d, prior.scale / d), (prior.dof + 2) / d
    if model.shared:
        scale, count = scale / k, count / k
    return scale, count + (1.0 if prior.shrinkage > 0 else 0.0)


def estimate(model, stats, ref, reg_covar, prior=None, tied_total=None, previous=None):
    """M-step of the Gaussian components with an optional conjugate prior:
    (weights (K,), means (K, d), covariances) from statistics (nk, s1, s2) about
    ``ref`` (see :func:`fastgmm.model.covariance.estimate`)."""
    model = covariance.get(model)
    st = covariance.make_stats(stats, ref, reg_covar, tied_total, previous)
    W, counts, means = _scatter(model, st), st.nk, st.means
    if prior is not None:
        k, d = means.shape
        kappa = prior.shrinkage
        diff = means - prior.mean
        between = kappa * st.nk / (st.nk + kappa)
        if W.ndim == 3:
            W = W + between[:, None, None] * diff[:, :, None] * diff[:, None, :]
        else:
            W = W + between[:, None] * diff**2
        scale, count = _prior_terms(model, prior, k, d)
        W = W + scale
        counts = st.nk + count
        means = (st.nk[:, None] * means + kappa * prior.mean) / (st.nk + kappa)[:, None]
    if W.ndim == 3:
        W = W + (counts * reg_covar)[:, None, None] * np.eye(W.shape[1])
    else:
        W = W + (counts * reg_covar)[:, None]
    return st.nk / st.nk.sum(), means, model.fit(W, counts, previous)
