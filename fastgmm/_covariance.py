"""ONE table keyed by covariance_type.

Each entry says how to turn sufficient statistics into covariances, covariances or
precisions into precision-Cholesky factors, factors into the kernel layout and
log-determinants, and how many free parameters the type has. Shapes follow
scikit-learn: full (K, d, d), tied (d, d), diag (K, d), spherical (K,).
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import linalg

from ._logdensity import DIAG, FULL, TIED

ILL_DEFINED = (
    "Fitting the mixture model failed because some components have "
    "ill-defined empirical covariance (for instance caused by singleton "
    "or collapsed samples). Try to decrease the number of components, "
    "increase reg_covar, or scale the input data."
)


class IllDefinedCovariance(ValueError):
    """A covariance matrix is not positive definite (scikit-learn's ValueError)."""


def _centre(nk_raw, nk, s1, s2_diag=None):
    """Shift of the means from the reference, and the diagonal scatter about them."""
    delta = s1 / nk[:, None]
    if s2_diag is None:
        return delta, None
    return delta, s2_diag - 2 * s1 * delta + nk_raw[:, None] * delta**2


def _cov_full(nk_raw, nk, s1, s2, reg, tied_total):
    delta, _ = _centre(nk_raw, nk, s1)
    s2 = np.tril(s2) + np.tril(s2, -1).transpose(0, 2, 1)
    outer = s1[:, :, None] * delta[:, None, :]
    scatter = s2 - outer - outer.transpose(0, 2, 1)
    scatter += nk_raw[:, None, None] * delta[:, :, None] * delta[:, None, :]
    cov = scatter / nk[:, None, None]
    cov[:, np.arange(cov.shape[1]), np.arange(cov.shape[1])] += reg
    return delta, cov


def _cov_tied(nk_raw, nk, s1, s2, reg, tied_total):
    delta, _ = _centre(nk_raw, nk, s1)
    return delta, None  # needs the means: finished in estimate()


def _cov_diag(nk_raw, nk, s1, s2, reg, tied_total):
    delta, scatter = _centre(nk_raw, nk, s1, s2[:, 0, :])
    return delta, scatter / nk[:, None] + reg


def _cov_spherical(nk_raw, nk, s1, s2, reg, tied_total):
    delta, cov = _cov_diag(nk_raw, nk, s1, s2, reg, tied_total)
    return delta, cov.mean(axis=1)


def _chol_full(cov):
    n_features = cov.shape[-1]
    eye = np.eye(n_features)
    out = np.empty_like(cov)
    for k in range(cov.shape[0]):
        try:
            lower = linalg.cholesky(cov[k], lower=True)
        except linalg.LinAlgError:
            raise IllDefinedCovariance(ILL_DEFINED) from None
        out[k] = linalg.solve_triangular(lower, eye, lower=True).T
    return out


def _chol_tied(cov):
    return _chol_full(cov[None])[0]


def _chol_diag(cov):
    if np.any(cov <= 0.0) or not np.all(np.isfinite(cov)):
        raise IllDefinedCovariance(ILL_DEFINED)
    return 1.0 / np.sqrt(cov)


def _flip(a):
    return a[..., ::-1, ::-1]


def _chol_from_prec_full(prec):
    return np.stack([_flip(np.linalg.cholesky(_flip(p))) for p in prec])


@dataclass(frozen=True)
class CovarianceType:
    """How one covariance type maps between statistics, factors and kernel arrays."""

    kind: int
    covariance: Callable  # (nk_raw, nk, s1, s2, reg, tied_total) -> (delta, cov)
    prec_chol: Callable  # covariances -> precision Cholesky (sklearn shape)
    prec_chol_from_prec: Callable  # precisions -> precision Cholesky
    to_kernel: Callable  # (prec_chol, K, d) -> (K|1, d|1, d) array
    log_det: Callable  # (prec_chol, K, d) -> (K,)
    precisions: Callable  # prec_chol -> precisions
    n_cov_params: Callable  # (K, d) -> number of covariance parameters


_diag_log_det = lambda pc, K, d: np.log(pc).sum(axis=1)  # noqa: E731

TABLE = {
    "full": CovarianceType(
        FULL, _cov_full, _chol_full, _chol_from_prec_full,
        lambda pc, K, d: pc,
        lambda pc, K, d: np.log(np.diagonal(pc, axis1=1, axis2=2)).sum(axis=1),
        lambda pc: pc @ pc.transpose(0, 2, 1),
        lambda K, d: K * d * (d + 1) / 2.0,
    ),
    "tied": CovarianceType(
        TIED, _cov_tied, _chol_tied, lambda p: _chol_from_prec_full(p[None])[0],
        lambda pc, K, d: pc[None],
        lambda pc, K, d: np.full(K, np.log(np.diag(pc)).sum()),
        lambda pc: pc @ pc.T,
        lambda K, d: d * (d + 1) / 2.0,
    ),
    "diag": CovarianceType(
        DIAG, _cov_diag, _chol_diag, np.sqrt,
        lambda pc, K, d: pc[:, None, :],
        _diag_log_det,
        lambda pc: pc**2,
        lambda K, d: K * d,
    ),
    "spherical": CovarianceType(
        DIAG, _cov_spherical, _chol_diag, np.sqrt,
        lambda pc, K, d: np.repeat(pc[:, None, None], d, axis=2),
        lambda pc, K, d: d * np.log(pc),
        lambda pc: pc**2,
        lambda K, d: K,
    ),
}


def estimate(cov_type, stats, ref, reg_covar, tied_total=None):
    """M-step: (weights, means, covariances) from weighted statistics about ``ref``.

    Follows scikit-learn: nk gets 10 * eps added, weights = nk / sum(nk), and
    reg_covar is added to the diagonal. ``tied_total`` = (centre, total scatter
    sum_i w_i (x_i - centre)(x_i - centre)') is needed for "tied" only.
    """
    nk_raw, s1, s2 = stats
    nk = nk_raw + 10 * np.finfo(np.float64).eps
    entry = TABLE[cov_type]
    delta, cov = entry.covariance(nk_raw, nk, s1, s2, reg_covar, tied_total)
    means = ref + delta
    if cov_type == "tied":
        centre, total = tied_total
        dm = means - centre
        cov = (total - (nk_raw[:, None] * dm).T @ dm) / nk.sum()
        cov = (cov + cov.T) / 2
        cov.flat[:: cov.shape[0] + 1] += reg_covar
    return nk / nk.sum(), means, cov


def covariances_from_prec_chol(entry, prec_chol):
    """Covariances implied by precision-Cholesky factors (used when started from precisions)."""
    precisions = entry.precisions(prec_chol)
    if entry.kind == DIAG:
        return 1.0 / precisions
    return np.linalg.inv(precisions)


def n_parameters(cov_type, n_components, n_features):
    """Free parameters of a mixture (as scikit-learn's ``_n_parameters``)."""
    cov_params = TABLE[cov_type].n_cov_params(n_components, n_features)
    return int(cov_params + n_features * n_components + n_components - 1)
