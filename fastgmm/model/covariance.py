"""ONE table keyed by covariance_type.

Each entry says how to turn sufficient statistics into covariances, covariances or
precisions into precision-Cholesky factors, factors into the kernel layout and
log-determinants, and how many free parameters the type has. Shapes follow
scikit-learn: full (K, d, d), tied (d, d), diag (K, d), spherical (K,).
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..kernels import DIAG, FULL, TIED

ILL_DEFINED = (
    "Fitting the mixture model failed because some components have "
    "ill-defined empirical covariance (for instance caused by singleton "
    "or collapsed samples). Try to decrease the number of components, "
    "increase reg_covar, or scale the input data."
)


FLOAT32_HINT = (
    " The numerical accuracy can also be improved by passing float64"
    " data instead of float32."
)


class IllDefinedCovariance(ValueError):
    """A covariance matrix is not positive definite (scikit-learn's ValueError)."""


def _add_diagonal(cov, value):
    d = cov.shape[-1]
    cov[..., np.arange(d), np.arange(d)] += value
    return cov


def _cov_full(st):
    s2 = np.tril(st.s2) + np.tril(st.s2, -1).transpose(0, 2, 1)
    outer = st.s1[:, :, None] * st.delta[:, None, :]
    scatter = s2 - outer - outer.transpose(0, 2, 1)
    scatter += st.nk_raw[:, None, None] * st.delta[:, :, None] * st.delta[:, None, :]
    return _add_diagonal(scatter / st.nk[:, None, None], st.reg)


def _cov_tied(st):
    # sum_k scatter_k = total scatter - between-component scatter (exact for
    # responsibility-weighted means, as scikit-learn's X'X - nk mu' mu)
    centre, total = st.tied_total
    dm = st.means - centre
    cov = (total - (st.nk_raw[:, None] * dm).T @ dm) / st.nk.sum()
    return _add_diagonal((cov + cov.T) / 2, st.reg)


def _cov_diag(st):
    s2 = st.s2[:, 0, :]
    scatter = s2 - 2 * st.s1 * st.delta + st.nk_raw[:, None] * st.delta**2
    return scatter / st.nk[:, None] + st.reg


def _cov_spherical(st):
    return _cov_diag(st).mean(axis=1)


@dataclass(frozen=True)
class _Stats:
    """Statistics about ``ref`` with the derived new means (see :func:`estimate`)."""

    nk_raw: np.ndarray
    nk: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    delta: np.ndarray
    means: np.ndarray
    reg: float
    tied_total: object


def _chol_full(cov):
    from scipy import linalg

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


def repair(covariance_type, covariances, jitter, max_tries=12):
    """Make ill-defined covariances positive definite by adding ``jitter`` (x10 per try)
    to their diagonal; returns (repaired covariances, indices of repaired components)."""
    from scipy import linalg

    cov = np.array(covariances, dtype=np.float64, copy=True)
    if covariance_type in ("diag", "spherical"):
        bad = ~np.isfinite(cov) | (cov <= 0.0)
        cov[bad] = jitter
        rows = np.flatnonzero(bad.reshape(cov.shape[0], -1).any(axis=1))
        return cov, [int(k) for k in rows]
    stack = cov[None] if covariance_type == "tied" else cov
    repaired = []
    for k in range(stack.shape[0]):
        step = jitter
        for _ in range(max_tries):
            try:
                linalg.cholesky(stack[k], lower=True)
                break
            except linalg.LinAlgError:
                stack[k].flat[:: stack.shape[1] + 1] += step
                step *= 10.0
                if not repaired or repaired[-1] != k:
                    repaired.append(k)
    return (stack[0] if covariance_type == "tied" else stack), repaired


def _flip(a):
    return a[..., ::-1, ::-1]


def _chol_from_prec_full(prec):
    return np.stack([_flip(np.linalg.cholesky(_flip(p))) for p in prec])


@dataclass(frozen=True)
class CovarianceType:
    """How one covariance type maps between statistics, factors and kernel arrays."""

    kind: int
    covariance: Callable  # _Stats -> covariances
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


def names():
    """Every accepted ``covariance_type`` name (for choices in parsers and checks)."""
    return sorted(TABLE)


def estimate(cov_type, stats, ref, reg_covar, tied_total=None):
    """M-step: (weights, means, covariances) from weighted statistics about ``ref``.

    Follows scikit-learn: nk gets 10 * eps added, weights = nk / sum(nk), and
    reg_covar is added to the diagonal. ``tied_total`` = (centre, total scatter
    sum_i w_i (x_i - centre)(x_i - centre)') is needed for "tied" only.
    """
    nk_raw, s1, s2 = stats
    nk = nk_raw + 10 * np.finfo(np.float64).eps
    delta = s1 / nk[:, None]
    st = _Stats(nk_raw, nk, s1, s2, delta, ref + delta, reg_covar, tied_total)
    return nk / nk.sum(), st.means, TABLE[cov_type].covariance(st)


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


def _draw(rng, covariance_type, mean, covariances, k, count):
    if covariance_type == "full":
        return rng.multivariate_normal(mean, covariances[k], count)
    if covariance_type == "tied":
        return rng.multivariate_normal(mean, covariances, count)
    return mean + rng.standard_normal(size=(count, mean.shape[0])) * np.sqrt(covariances[k])


def sample(rng, covariance_type, weights, means, covariances, n_samples):
    """Draw from a mixture with scikit-learn's sequence of random numbers:
    component counts from a multinomial, then each component's rows in order.
    Returns (X float64 (n_samples, d), labels int64 (n_samples,))."""
    counts = rng.multinomial(n_samples, weights)
    parts = [
        _draw(rng, covariance_type, means[k], covariances, k, int(c))
        for k, c in enumerate(counts)
    ]
    labels = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    return np.vstack(parts).astype(np.float64), labels
