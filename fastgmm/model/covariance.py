"""THE covariance-model table: one record per covariance model.

A record says everything about one model: its names (scikit-learn's where one
exists, mclust's three letters as an alias), its *form* -- ``dense``, ``diag`` or
``scalar`` covariances, one per component or one ``shared`` by all -- and its M-step
(statistics -> covariances; for mclust's models the scatter-form M-step of
:mod:`fastgmm.model.mclust`). Everything else is derived from the form by the
:class:`CovarianceModel` methods: attribute shapes, precision validation, the
statistics and density kind the kernels use, precision-Cholesky factors,
log-determinants, the kernel layout, repair, sampling, the full-covariance view and
the parameter count (mclust's ``nVarParams`` where the form's count does not apply).

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
    VEI, EVI    diag,   per component   (K, d)
    EEV, VEV, EVV, VEE, EVE, VVE
                dense,  per component   (K, d, d)

``reg_covar`` enters every M-step as ``n_k * reg_covar`` added to the diagonal of
each component's scatter before the model's estimate: for scikit-learn's models and
EEI, EII this is exactly reg_covar added to the diagonal of the covariances; for the
others it keeps the result inside the model's family (``lambda_k D A D' + reg I``
would not be a VEV covariance).
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..kernels import DIAG, FULL, TIED
from . import mclust

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
    scatter) of the data for shared dense models, ``previous`` the covariances the
    statistics were computed under (None at the start): iterative M-steps start there.
    """

    nk_raw: np.ndarray
    nk: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    delta: np.ndarray
    means: np.ndarray
    reg: float
    tied_total: object
    previous: object = None


def _add_diagonal(cov, value):
    d = cov.shape[-1]
    cov[..., np.arange(d), np.arange(d)] += value
    return cov


def _dense_scatter(st):
    """sum_i r_ik (x_i - mu_k)(x_i - mu_k)', shape (K, d, d), from FULL statistics."""
    s2 = np.tril(st.s2) + np.tril(st.s2, -1).transpose(0, 2, 1)
    outer = st.s1[:, :, None] * st.delta[:, None, :]
    scatter = s2 - outer - outer.transpose(0, 2, 1)
    scatter += st.nk_raw[:, None, None] * st.delta[:, :, None] * st.delta[:, None, :]
    return scatter


def _m_dense(st):
    """Per-component scatter / nk_k + reg (VVV)."""
    return _add_diagonal(_dense_scatter(st) / st.nk[:, None, None], st.reg)


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


def regularised_scatter(form, st):
    """Per-component scatter about the new means with ``n_k * reg`` added to its
    diagonal: (K, d, d) for the dense form, the diagonals (K, d) otherwise."""
    if form == "dense":
        return _add_diagonal(_dense_scatter(st), (st.nk * st.reg)[:, None])
    return _diag_scatter(st) + (st.nk * st.reg)[:, None]


def _m_constrained(fit, form, st):
    """An mclust M-step (:mod:`fastgmm.model.mclust`) on the regularised scatter,
    warm-started from the previous covariances."""
    return fit(regularised_scatter(form, st), st.nk, st.previous)


def _mclust_m_step(fit, form):
    return partial(_m_constrained, fit, form)


# ------------------------------------------------------------ forms -> arrays
def _cholesky_lower(a):
    from scipy import linalg

    if not np.isfinite(a).all():  # (an M-step's 0 / 0: an empty component)
        raise IllDefinedCovariance(ILL_DEFINED)
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
        if not np.isfinite(stack[k]).all():  # nothing to keep: start from 0
            stack[k] = 0.0
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
    fit : callable
        The scatter-form M-step of :mod:`fastgmm.model.mclust`: (per-component
        scatter, counts, previous covariances or None) -> covariances; used with a
        prior or a noise component.
    n_var : callable or None
        (K, d) -> free covariance parameters (mclust's ``nVarParams``) when they are
        not the form's count (one covariance of the form per component, or one).
    closed : bool
        ``m_step`` is a closed form that :mod:`fastgmm.kernels.mstep` also computes,
        with the factors, in one kernel call (see :mod:`fastgmm.model.fused`).
    """

    name: str
    aliases: tuple
    form: str
    shared: bool
    m_step: Callable
    description: str
    sklearn: bool = False
    fit: Callable = None
    n_var: Callable = None
    closed: bool = False

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
        if self.n_var is not None:
            return self.n_var(n_components, n_features)
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


def _record(name, aliases, form, shared, fit, description, sklearn=False, **kw):
    """A record whose M-step is ``m_step`` if given, else mclust's scatter form."""
    m_step = kw.pop("m_step", None) or _mclust_m_step(fit, form)
    return CovarianceModel(
        name, aliases, form, shared, m_step, description, sklearn, fit, **kw
    )


def _rot(d):
    """Free parameters of an orientation (d x d orthogonal)."""
    return d * (d - 1) / 2


#: every covariance model, in the order tables and help texts list them (scikit-learn's
#: four, then mclust's others in mclust's order)
MODELS = (
    _record("full", ("VVV",), "dense", False, mclust.vvv, "each component its own general covariance", True, m_step=_m_dense, closed=True),
    _record("tied", ("EEE",), "dense", True, mclust.eee, "one general covariance shared by all components", True, m_step=_m_dense_shared, closed=True),
    _record("diag", ("VVI",), "diag", False, mclust.vvi, "each component its own diagonal covariance", True, m_step=_m_diag, closed=True),
    _record("spherical", ("VII",), "scalar", False, mclust.vii, "each component its own single variance", True, m_step=_m_scalar, closed=True),
    _record("EII", (), "scalar", True, mclust.eii, "one single variance shared by all components", m_step=_m_scalar_shared, closed=True),
    _record("EEI", (), "diag", True, mclust.eei, "one diagonal covariance shared by all components", m_step=_m_diag_shared, closed=True),
    _record("VEI", (), "diag", False, mclust.vei, "diagonal, equal shape", n_var=lambda g, d: g + d - 1),
    _record("EVI", (), "diag", False, mclust.evi, "diagonal, equal volume, varying shape", n_var=lambda g, d: 1 + g * (d - 1)),
    _record("VEE", (), "dense", False, mclust.vee, "ellipsoidal, equal shape and orientation", n_var=lambda g, d: g + d - 1 + _rot(d)),
    _record("EVE", (), "dense", False, mclust.eve, "ellipsoidal, equal volume and orientation", n_var=lambda g, d: 1 + g * (d - 1) + _rot(d)),
    _record("VVE", (), "dense", False, mclust.vve, "ellipsoidal, equal orientation", n_var=lambda g, d: g * d + _rot(d)),
    _record("EEV", (), "dense", False, mclust.eev, "ellipsoidal, equal volume and shape", n_var=lambda g, d: d + g * _rot(d)),
    _record("VEV", (), "dense", False, mclust.vev, "ellipsoidal, equal shape", n_var=lambda g, d: g + d - 1 + g * _rot(d)),
    _record("EVV", (), "dense", False, mclust.evv, "ellipsoidal, equal volume", n_var=lambda g, d: 1 + g * (d * (d + 1) / 2 - 1)),
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


def make_stats(stats, ref, reg_covar, tied_total=None, previous=None):
    """:class:`Stats` of (nk, s1, s2) about ``ref``: nk gets 10 * eps added (as
    scikit-learn), the new means are ref + s1 / nk."""
    nk_raw, s1, s2 = stats
    nk = nk_raw + 10 * np.finfo(np.float64).eps
    delta = s1 / nk[:, None]
    return Stats(
        nk_raw, nk, s1, s2, delta, ref + delta, reg_covar, tied_total, previous
    )


def estimate(model, stats, ref, reg_covar, tied_total=None, previous=None):
    """M-step: (weights, means, covariances) from weighted statistics about ``ref``.

    Follows scikit-learn: nk gets 10 * eps added, weights = nk / sum(nk), and
    reg_covar is added to the diagonal. ``tied_total`` = (centre, total scatter
    sum_i w_i (x_i - centre)(x_i - centre)') is needed for dense shared models only;
    ``previous`` covariances (of the same model) start iterative M-steps.
    """
    st = make_stats(stats, ref, reg_covar, tied_total, previous)
    return st.nk / st.nk.sum(), st.means, get(model).m_step(st)


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
