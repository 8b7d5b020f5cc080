"""THE covariance-model table: one record per covariance model.

A record says everything about one model: its names (scikit-learn's where one
exists, mclust's three letters as an alias), its *form* -- ``dense``, ``diag`` or
``scalar`` covariances, one per component or one ``shared`` by all -- and its M-step
(statistics -> covariances). Everything else is derived from the form by the
:class:`CovarianceModel` methods: attribute shapes, precision validation, the
statistics and density kind the kernels use, precision-Cholesky factors,
log-determinants, the kernel layout, repair, sampling, the full-covariance view and
the parameter count.

Adding a model whose M-step reuses the statistics of an existing density kind (for
example mclust's EEI, one diagonal covariance shared by all components) is one
record in :data:`MODELS` plus its tests.

Shapes follow scikit-learn (K components, d features)::

    full / VVV  dense,  per component   (K, d, d)
    tied / EEE  dense,  shared          (d, d)
    diag / VVI  diag,   per component   (K, d)
    spherical / VII  scalar, per component   (K,)
    EEI         diag,   shared          (d,)
    EII         scalar, shared          ()
"""

from collections.abc import Callable
from dataclasses import dataclass

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


# ------------------------------------------------------------------ M-steps
@dataclass(frozen=True)
class Stats:
    """Weighted statistics about ``ref`` with the derived new means.

    ``nk_raw`` (K,) weights, ``nk`` the same + 10 eps (scikit-learn), ``s1`` (K, d)
    and ``s2`` (K, p, d) sums about ``ref`` (see :mod:`fastgmm.kernels.passes`),
    ``delta`` = s1 / nk, ``means`` = ref + delta, ``tied_total`` = (centre, total
    scatter) of the data for shared dense models.
    """

    nk_raw: np.ndarray
    nk: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    delta: np.ndarray
    means: np.ndarray
    reg: float
    tied_total: object


def _add_diagonal(cov, value):
    d = cov.shape[-1]
    cov[..., np.arange(d), np.arange(d)] += value
    return cov


def _m_dense(st):
    """Per-component scatter / nk_k + reg (VVV)."""
    s2 = np.tril(st.s2) + np.tril(st.s2, -1).transpose(0, 2, 1)
    outer = st.s1[:, :, None] * st.delta[:, None, :]
    scatter = s2 - outer - outer.transpose(0, 2, 1)
    scatter += st.nk_raw[:, None, None] * st.delta[:, :, None] * st.delta[:, None, :]
    return _add_diagonal(scatter / st.nk[:, None, None], st.reg)


def _m_dense_shared(st):
    """Pooled scatter / n + reg (EEE): total scatter - between-component scatter,
    exact for responsibility-weighted means, as scikit-learn's X'X - nk mu' mu."""
    centre, total = st.tied_total
    dm = st.means - centre
    cov = (total - (st.nk_raw[:, None] * dm).T @ dm) / st.nk.sum()
    return _add_diagonal((cov + cov.T) / 2, st.reg)


def _diag_scatter(st):
    """sum_i r_ik (x_ij - mu_kj)^2, shape (K, d)."""
    s2 = st.s2[:, 0, :]
    return s2 - 2 * st.s1 * st.delta + st.nk_raw[:, None] * st.delta**2


def _m_diag(st):
    """Per-component diagonal scatter / nk_k + reg (VVI)."""
    return _diag_scatter(st) / st.nk[:, None] + st.reg


def _m_scalar(st):
    """Per-component mean variance (VII), as scikit-learn's spherical."""
    return _m_diag(st).mean(axis=1)


def _m_diag_shared(st):
    """Pooled diagonal scatter / n + reg (EEI)."""
    return _diag_scatter(st).sum(axis=0) / st.nk.sum() + st.reg


def _m_scalar_shared(st):
    """Pooled mean variance (EII): tr(W) / (n d) + reg."""
    return _m_diag_shared(st).mean()


# ------------------------------------------------------------ forms -> arrays
def _cholesky_lower(a):
    from scipy import linalg

    try:
        return linalg.cholesky(a, lower=True)
    except linalg.LinAlgError:
        raise IllDefinedCovariance(ILL_DEFINED) from None


def _prec_chol_dense(cov):
    """Upper-triangular U with U U' = inv(cov), for (..., d, d)."""
    from scipy import linalg

    stack = cov.reshape(-1, *cov.shape[-2:])
    eye = np.eye(cov.shape[-1])
    out = np.empty_like(stack)
    for k in range(stack.shape[0]):
        lower = _cholesky_lower(stack[k])
        out[k] = linalg.solve_triangular(lower, eye, lower=True).T
    return out.reshape(cov.shape)


def _prec_chol_positive(cov):
    if np.any(cov <= 0.0) or not np.all(np.isfinite(cov)):
        raise IllDefinedCovariance(ILL_DEFINED)
    return np.asarray(1.0 / np.sqrt(cov))


def _flip(a):
    return a[..., ::-1, ::-1]


def _prec_chol_from_prec_dense(prec):
    stack = prec.reshape(-1, *prec.shape[-2:])
    out = np.stack([_flip(np.linalg.cholesky(_flip(p))) for p in stack])
    return out.reshape(prec.shape)


def _repair_dense(cov, jitter, max_tries=12):
    from scipy import linalg

    stack = cov.reshape(-1, *cov.shape[-2:])
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
    return cov, repaired


def _repair_positive(cov, jitter):
    bad = ~np.isfinite(cov) | (cov <= 0.0)
    cov[bad] = jitter
    if bad.ndim < 2:  # shared (d,) or () or one variance per component (K,)
        rows = np.flatnonzero(bad) if bad.ndim == 1 else np.flatnonzero([bad])
    else:
        rows = np.flatnonzero(bad.any(axis=1))
    return cov, [int(k) for k in rows]


#: free parameters of one covariance of each form, for d features
_FORM_PARAMS = {
    "dense": lambda d: d * (d + 1) / 2.0,
    "diag": lambda d: d,
    "scalar": lambda d: 1,
}


@dataclass(frozen=True)
class CovarianceModel:
    """One covariance model: names, form and M-step (see the module docstring).

    Attributes
    ----------
    name : str
        The canonical name (scikit-learn's where one exists).
    aliases : tuple of str
        Other accepted names (mclust's three letters).
    form : {"dense", "diag", "scalar"}
        What one covariance is: a (d, d) matrix, its diagonal (d,), or one variance.
    shared : bool
        One covariance for all components (mclust's "E" volume, shape, orientation).
    m_step : callable
        :class:`Stats` -> covariances in this model's shape (reg_covar included).
    description : str
        One line for tables and help texts.
    sklearn : bool
        scikit-learn's GaussianMixture has this model (under ``name``).
    """

    name: str
    aliases: tuple
    form: str
    shared: bool
    m_step: Callable
    description: str
    sklearn: bool = False

    # -- what the kernels see
    @property
    def kind(self):
        """Density kind of the kernels: FULL, TIED (dense shared) or DIAG."""
        if self.form == "dense":
            return TIED if self.shared else FULL
        return DIAG

    @property
    def mclust(self):
        """mclust's name of the model."""
        return next((a for a in (self.name, *self.aliases) if a.isupper()), self.name)

    def shape(self, n_components, n_features):
        """Shape of ``covariances_``, ``precisions_`` and ``precisions_cholesky_``."""
        one = {"dense": (n_features, n_features), "diag": (n_features,), "scalar": ()}
        return one[self.form] if self.shared else (n_components, *one[self.form])

    def n_cov_params(self, n_components, n_features):
        """Free parameters of the covariances."""
        return _FORM_PARAMS[self.form](n_features) * (
            1 if self.shared else n_components
        )

    def _diagonals(self, a, n_components, n_features):
        """Per-component diagonals (K, d) of a diag/scalar-form array (a view)."""
        if self.form == "scalar":
            a = np.asarray(a)[..., None]
        return np.broadcast_to(a, (n_components, n_features))

    # -- covariances <-> precision-Cholesky factors
    def prec_chol(self, covariances):
        """Precision-Cholesky factors of covariances; IllDefinedCovariance if not PD."""
        if self.form == "dense":
            return _prec_chol_dense(covariances)
        return _prec_chol_positive(covariances)

    def prec_chol_from_prec(self, precisions):
        if self.form == "dense":
            return _prec_chol_from_prec_dense(precisions)
        return np.asarray(np.sqrt(precisions))

    def precisions(self, prec_chol):
        if self.form == "dense":
            return prec_chol @ np.swapaxes(prec_chol, -1, -2)
        return np.asarray(prec_chol) ** 2

    def covariances_from_prec_chol(self, prec_chol):
        """Covariances implied by precision-Cholesky factors."""
        precisions = self.precisions(prec_chol)
        if self.form == "dense":
            return np.linalg.inv(precisions)
        return np.asarray(1.0 / precisions)

    def log_det(self, prec_chol, n_components, n_features):
        """log det U_k of every component, shape (K,)."""
        if self.form == "dense":
            diag = np.log(np.diagonal(prec_chol, axis1=-2, axis2=-1)).sum(axis=-1)
            return np.broadcast_to(diag, (n_components,)).copy()
        return np.log(self._diagonals(prec_chol, n_components, n_features)).sum(axis=1)

    def to_kernel(self, prec_chol, n_components, n_features):
        """Factors in the kernel layout: FULL (K, d, d), TIED (1, d, d), DIAG (K, 1, d)."""
        if self.form == "dense":
            return prec_chol if not self.shared else prec_chol[None]
        return self._diagonals(prec_chol, n_components, n_features)[:, None, :]

    # -- views, checks, repair, sampling
    def full(self, covariances, n_components, n_features):
        """Every component's covariance as a (K, d, d) float64 array (a copy)."""
        cov = np.asarray(covariances, dtype=np.float64)
        if self.form == "dense":
            return np.broadcast_to(cov, (n_components, n_features, n_features)).copy()
        diag = self._diagonals(cov, n_components, n_features)
        return diag[:, :, None] * np.eye(n_features)

    def check_precisions(self, precisions, label):
        """Raise scikit-learn's ValueError unless ``precisions`` are valid for this
        form: symmetric positive definite matrices, or positive numbers."""
        if self.form != "dense":
            if np.any(precisions <= 0.0):
                raise ValueError(f"'{label} precision' should be positive")
            return
        for p in np.reshape(precisions, (-1, *np.shape(precisions)[-2:])):
            if not (np.allclose(p, p.T) and np.all(np.linalg.eigvalsh(p) > 0.0)):
                raise ValueError(
                    f"'{label} precision' should be symmetric, positive-definite"
                )

    def repair(self, covariances, jitter):
        """Make ill-defined covariances positive definite by adding ``jitter`` (x10
        per try) to their diagonal; returns (repaired copy, indices repaired)."""
        cov = np.array(covariances, dtype=np.float64, copy=True)
        if self.form == "dense":
            return _repair_dense(cov, jitter)
        return _repair_positive(cov, jitter)

    def draw(self, rng, mean, covariances, k, count):
        """``count`` points of component k, with scikit-learn's random stream."""
        cov = covariances if self.shared else covariances[k]
        if self.form == "dense":
            return rng.multivariate_normal(mean, cov, count)
        return mean + rng.standard_normal(size=(count, mean.shape[0])) * np.sqrt(cov)


#: every covariance model, in the order tables and help texts list them
MODELS = (
    CovarianceModel(
        "full", ("VVV",), "dense", False, _m_dense,
        "each component its own general covariance", sklearn=True,
    ),
    CovarianceModel(
        "tied", ("EEE",), "dense", True, _m_dense_shared,
        "one general covariance shared by all components", sklearn=True,
    ),
    CovarianceModel(
        "diag", ("VVI",), "diag", False, _m_diag,
        "each component its own diagonal covariance", sklearn=True,
    ),
    CovarianceModel(
        "spherical", ("VII",), "scalar", False, _m_scalar,
        "each component its own single variance", sklearn=True,
    ),
    CovarianceModel(
        "EEI", (), "diag", True, _m_diag_shared,
        "one diagonal covariance shared by all components",
    ),
    CovarianceModel(
        "EII", (), "scalar", True, _m_scalar_shared,
        "one single variance shared by all components",
    ),
)  # fmt: skip

#: canonical name -> record
TABLE = {m.name: m for m in MODELS}
_BY_NAME = {n: m for m in MODELS for n in (m.name, *m.aliases)}


def names():
    """Every accepted ``covariance_type`` (canonical names and aliases), sorted."""
    return sorted(_BY_NAME)


def get(covariance_type):
    """The record of a covariance model by any of its names."""
    if isinstance(covariance_type, CovarianceModel):
        return covariance_type
    try:
        return _BY_NAME[covariance_type]
    except (KeyError, TypeError):
        raise ValueError(
            f"covariance_type must be one of {names()}, got {covariance_type!r}"
        ) from None


def estimate(model, stats, ref, reg_covar, tied_total=None):
    """M-step: (weights, means, covariances) from weighted statistics about ``ref``.

    Follows scikit-learn: nk gets 10 * eps added, weights = nk / sum(nk), and
    reg_covar is added to the diagonal. ``tied_total`` = (centre, total scatter
    sum_i w_i (x_i - centre)(x_i - centre)') is needed for dense shared models only.
    """
    nk_raw, s1, s2 = stats
    nk = nk_raw + 10 * np.finfo(np.float64).eps
    delta = s1 / nk[:, None]
    st = Stats(nk_raw, nk, s1, s2, delta, ref + delta, reg_covar, tied_total)
    return nk / nk.sum(), st.means, get(model).m_step(st)


def n_parameters(model, n_components, n_features):
    """Free parameters of a mixture (as scikit-learn's ``_n_parameters``)."""
    cov_params = get(model).n_cov_params(n_components, n_features)
    return int(cov_params + n_features * n_components + n_components - 1)


def sample(rng, model, weights, means, covariances, n_samples):
    """Draw from a mixture with scikit-learn's sequence of random numbers:
    component counts from a multinomial, then each component's rows in order.
    Returns (X float64 (n_samples, d), labels int64 (n_samples,))."""
    model = get(model)
    counts = rng.multinomial(n_samples, weights)
    parts = [
        model.draw(rng, means[k], covariances, k, int(c)) for k, c in enumerate(counts)
    ]
    labels = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    return np.vstack(parts).astype(np.float64), labels
