"""Mixture parameters, the one converter from fitted models, and kernel inputs.

:class:`Params` is the state EM iterates on: weights, means and the covariance
model's covariances and precision-Cholesky factors (scikit-learn's shapes, float64),
with the :class:`~fastgmm.model.covariance.CovarianceModel` record that gives them
meaning, and for a variational (Bayesian) mixture its posterior
(:mod:`fastgmm.model.variational`). :func:`from_fitted` reads that state from any
fitted mixture (fastgmm's or scikit-learn's). :func:`kernel_inputs` turns it into what
the density kernels take;
:func:`density_inputs` is the lower-level form another model family (a variational
posterior, a noise component) feeds with its own per-component terms.
"""

from dataclasses import dataclass

import numpy as np

from .._jit import kernel_array
from ..kernels import FULL, TIED
from ..kernels.mstep import DENSE, DIAGONAL, SCALAR, density_terms
from . import covariance, variational
from .noise import Noise


@dataclass(frozen=True)
class Params:
    """Mixture parameters in scikit-learn's shapes (float64).

    Attributes
    ----------
    model : CovarianceModel
        The covariance model (see :mod:`fastgmm.model.covariance`).
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, d)
    covariances : ndarray or None
        In ``model.shape(K, d)``; None when only the factors are known.
    prec_chol : ndarray
        Precision-Cholesky factors, in ``model.shape(K, d)``.
    noise : Noise or None
        A uniform noise component (then ``weights`` sum to 1 - noise.weight).
    posterior : Posterior or None
        The variational posterior of a Bayesian mixture
        (:class:`fastgmm.model.variational.Posterior`): the E-step then uses its
        expected log-weights and log-determinants instead of log(weights) and the
        factors' log-determinants. None for a maximum-likelihood mixture.
    """

    model: object
    weights: np.ndarray
    means: np.ndarray
    covariances: object
    prec_chol: np.ndarray
    noise: object = None
    posterior: object = None

    @property
    def n_components(self):
        return self.means.shape[0]

    @property
    def n_features(self):
        return self.means.shape[1]

    def check(self, n_features=None, of="X"):
        """Raise ValueError unless every array has the shape of K components in d
        features (K, d from ``means``; d must equal ``n_features`` when given, the
        width of ``of``: "X" or "n_features_in_").

        The kernels do not check bounds: this runs before any of them reads the
        parameters (:func:`from_fitted`, the scorer, every EM pass).
        """
        means = np.asarray(self.means)
        if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
            raise ValueError(
                "means_ must have shape (n_components, n_features) with both >= 1, "
                f"got {means.shape}."
            )
        k, d = means.shape
        if n_features is not None and d != n_features:
            raise ValueError(
                f"X has {n_features} features, but the model's means_ have {d} "
                "features."
                if of == "X"
                else f"{of} is {n_features}, but means_ {means.shape} has {d} features."
            )
        expected = {"weights_": (k,), "precisions_cholesky_": self.model.shape(k, d)}
        if self.covariances is not None:
            expected["covariances_"] = self.model.shape(k, d)
        given = {
            "weights_": self.weights,
            "precisions_cholesky_": self.prec_chol,
            "covariances_": self.covariances,
        }
        if self.posterior is not None:
            post = self.posterior
            conc = (2, k) if post.weight_type == variational.DIRICHLET_PROCESS else (k,)
            expected["weight_concentration_"] = conc
            expected["mean_precision_"] = (k,)
            given["weight_concentration_"] = post.weight_concentration
            given["mean_precision_"] = post.mean_precision
            if np.ndim(post.degrees_of_freedom) != 0:  # a scalar for tied
                expected["degrees_of_freedom_"] = (k,)
                given["degrees_of_freedom_"] = post.degrees_of_freedom
        for name, shape in expected.items():
            got = np.shape(given[name])
            if got != shape:
                raise ValueError(
                    f"{name} has shape {got}, but a '{self.model.name}' mixture of "
                    f"{k} components in {d} features (means_ {means.shape}) needs "
                    f"{shape}."
                )
        return self


def from_fitted(model):
    """The fitted parameters of a mixture as float64 :class:`Params`.

    Parameters
    ----------
    model : GaussianMixture or BayesianGaussianMixture
        A fitted fastgmm or scikit-learn Gaussian mixture: ``covariance_type``,
        ``weights_``, ``means_``, ``precisions_cholesky_`` and (if present)
        ``covariances_`` are read; for a Bayesian mixture (one with
        ``degrees_of_freedom_``) also its posterior.

    Returns
    -------
    Params

    Raises
    ------
    ValueError
        When the arrays disagree in shape (with each other, with ``n_components``
        or with ``n_features_in_``): hand-assigned attributes are checked here,
        before any kernel reads them.
    """
    if not hasattr(model, "means_"):  # else fitted by scikit-learn's rule
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(model)  # (~10 us: its tags)
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    cov = getattr(model, "covariances_", None)
    noise = None
    if getattr(model, "noise_weight_", None) is not None:
        noise = Noise(float(model.noise_weight_), float(np.log(model.noise_density_)))
    params = Params(
        covariance.get(model.covariance_type),
        f64(model.weights_),
        f64(model.means_),
        None if cov is None else f64(cov),
        f64(model.precisions_cholesky_),
        noise,
        variational.posterior_of(model)
        if hasattr(model, "degrees_of_freedom_")
        else None,
    ).check(getattr(model, "n_features_in_", None), of="n_features_in_")
    n_components = getattr(model, "n_components", params.n_components)
    if n_components != params.n_components:
        raise ValueError(
            f"n_components is {n_components}, but the fitted arrays (means_ "
            f"{params.means.shape}) have {params.n_components} components."
        )
    return check_values(params)


#: how far the weights of a maximum-likelihood mixture may sum from 1 (float32
#: weights of any K round to well within it)
WEIGHT_SUM_TOL = 1e-6


def check_values(p):
    """``p`` when its values make a mixture: finite weights >= 0 (summing to 1, with
    the noise's, unless a variational posterior gives the weights), finite means,
    finite covariances and precision-Cholesky factors with positive diagonals, and
    a finite posterior; else the ValueError naming the first attribute that is not.

    One pass over the fitted arrays, per set of fitted attributes (a model's
    ``_params`` keeps the result): what a user assigns by hand is refused before a
    kernel turns it into NaN scores.
    """
    chol, cov, post = p.prec_chol, p.covariances, p.posterior
    values = [p.weights, p.means.ravel(), chol.ravel()]
    diag = [_diagonal(p.model, chol).ravel()]
    if cov is not None:
        values.append(np.ravel(cov))
        diag.append(_diagonal(p.model, cov).ravel())
    if post is not None:
        values += [post.weight_concentration.ravel(), post.mean_precision]
        values.append(np.ravel(post.degrees_of_freedom))
    diag = np.concatenate(diag)  # (one call per check on tiny arrays: ~1 us each)
    noise = 0.0 if p.noise is None else p.noise.weight
    total = float(np.sum(p.weights)) + noise
    if (
        np.isfinite(np.concatenate(values)).all()
        and diag.min() > 0
        and p.weights.min() >= 0
        and (post is not None or abs(total - 1.0) <= WEIGHT_SUM_TOL)
        and (post is None or _posterior_ok(post))
    ):
        return p
    raise ValueError(_value_error(p, diag, total))


def _diagonal(model, a):
    """The variances of ``a`` (covariances or factors in the model's shape)."""
    return np.diagonal(a, axis1=-2, axis2=-1) if model.form == "dense" else a


def _posterior_ok(post):
    return (
        (post.weight_concentration >= 0).all()
        and (post.mean_precision > 0).all()
        and (np.asarray(post.degrees_of_freedom) > 0).all()
    )


def _value_error(p, diag, total):
    """The message of :func:`check_values` for the first attribute that fails."""
    named = {"weights_": p.weights, "means_": p.means, "covariances_": p.covariances}
    named["precisions_cholesky_"] = p.prec_chol
    post = p.posterior
    if post is not None:
        named["weight_concentration_"] = post.weight_concentration
        named["mean_precision_"] = post.mean_precision
        named["degrees_of_freedom_"] = post.degrees_of_freedom
    for name, a in named.items():
        if a is not None and not np.isfinite(a).all():
            return f"The fitted {name} contain NaN or infinity."
    if not (p.weights >= 0).all():
        return "The fitted weights_ must be >= 0."
    if not (_diagonal(p.model, p.prec_chol) > 0).all():
        return (
            "The fitted precisions_cholesky_ are not Cholesky factors of "
            "precisions: their diagonal must be > 0."
        )
    if not (diag > 0).all():
        return "The fitted covariances_ must have variances (diagonal) > 0."
    if post is None:
        noise = "" if p.noise is None else " (with noise_weight_)"
        return f"The fitted weights_ must sum to 1{noise}, got {total!r}."
    return (
        "The fitted weight_concentration_ must be >= 0, and mean_precision_ and "
        "degrees_of_freedom_ > 0."
    )


@dataclass(frozen=True)
class KernelInputs:
    """What the density kernels take (see :mod:`fastgmm.kernels.logdensity`):
    ``kind`` (FULL, TIED, DIAG), ``const`` (K,), ``loc`` (K, d), ``prec``."""

    kind: int
    const: np.ndarray
    loc: np.ndarray
    prec: np.ndarray

    def astuple(self):
        return self.kind, self.const, self.loc, self.prec


def density_inputs(kind, log_weights, means, prec_k, log_det):
    """Kernel inputs from per-component terms in kernel layout.

    ``const[k] = log_weights[k] + log_det[k] - d/2 log(2 pi)``; for TIED the means
    are whitened once (``loc = means @ U``).

    Parameters
    ----------
    kind : int
        FULL, TIED or DIAG.
    log_weights, log_det : ndarray of shape (K,)
    means : ndarray of shape (K, d)
    prec_k : ndarray of shape (K, d, d), (1, d, d) or (K, 1, d)

    Returns
    -------
    KernelInputs
        Arrays float64 and C-contiguous.
    """
    d = means.shape[1]
    const = kernel_array(log_weights + log_det - 0.5 * d * np.log(2 * np.pi))
    loc = means @ prec_k[0] if kind == TIED else means
    return KernelInputs(kind, const, kernel_array(loc), kernel_array(prec_k))


#: the forms of the covariance models as the closed-form kernels' codes
FORMS = {"dense": DENSE, "diag": DIAGONAL, "scalar": SCALAR}
_PLANE = {
    "dense": lambda d: (d, d),
    "diag": lambda d: (1, d),
    "scalar": lambda d: (1, 1),
}


def factor_layout(model, k, d):
    """Shape (m, p, q) of the covariances and factors of a closed-form model in
    :mod:`fastgmm.kernels.mstep`: m = 1 if shared else K; (p, q) = (d, d) dense,
    (1, d) diag, (1, 1) scalar (a view of the model's own shape)."""
    return (1 if model.shared else k, *_PLANE[model.form](d))


def with_inputs(params, inputs, tied_as_full=False):
    """``params`` with their kernel inputs kept: :func:`kernel_inputs` returns them
    instead of computing them again (for ``tied_as_full``). Params are immutable and
    ``dataclasses.replace`` makes a new instance without them, so they cannot go
    stale; the arrays are made read-only (as kernel inputs are)."""
    for a in (inputs.const, inputs.loc, inputs.prec):
        a.setflags(write=False)
    object.__setattr__(params, "_inputs", (tied_as_full, inputs))
    return params


def _kept_inputs(params, tied_as_full):
    """The inputs :func:`with_inputs` kept on ``params`` for ``tied_as_full``, or
    None."""
    kept = params.__dict__.get("_inputs")
    return kept[1] if kept is not None and kept[0] == tied_as_full else None


def _closed_inputs(params):
    """Kernel inputs of a closed-form model in one kernel call (``density_terms``:
    the formulas of :func:`density_inputs`), for every Params alike (an M-step's or
    a fitted model's), so that equal parameters give bitwise equal inputs (the
    M-step computes them with the same code, ``closed_m_step``; kept with the
    Params by :func:`with_inputs`)."""
    kept = _kept_inputs(params, False)
    if kept is not None:
        return kept
    model = params.model
    k, d = params.means.shape
    prec = kernel_array(params.prec_chol).reshape(factor_layout(model, k, d))
    const, loc = np.empty(k), np.empty((k, d))
    kind = model.kind
    kprec = np.empty((1 if kind == TIED else k, prec.shape[1], d))
    dense = model.form == "dense"
    density_terms(
        kernel_array(params.weights), kernel_array(params.means), prec, dense,
        model.shared, const, loc, kprec,
    )  # fmt: skip
    inputs = KernelInputs(kind, const, loc, kprec)
    with_inputs(params, inputs)
    return inputs


def kernel_inputs(params, tied_as_full=False):
    """Kernel inputs of a Gaussian mixture's :class:`Params` (its variational
    E-step when it has a posterior).

    With a noise component, or ``tied_as_full``, a shared dense covariance is handed
    to the kernels as one FULL factor per component (the statistics then hold each
    component's scatter). The noise is one more component, last, with zero
    precision: its log-density is its constant ``log w_0 - log V``.
    """
    model = params.model
    if model.closed and params.noise is None and params.posterior is None:
        if not (tied_as_full and model.kind == TIED):
            return _closed_inputs(params)
    kept = _kept_inputs(params, tied_as_full)
    if kept is None:
        kept = _other_inputs(params, tied_as_full)
        with_inputs(params, kept, tied_as_full)
    return kept


def _other_inputs(params, tied_as_full):
    """:func:`kernel_inputs` of a model that is not closed-form, or has a noise
    component or a posterior."""
    model = params.model
    k, d = params.means.shape
    prec_k = model.to_kernel(params.prec_chol, k, d)
    if params.posterior is not None:
        log_w, log_det = variational.e_step_terms(
            params.posterior, model, params.prec_chol, d
        )
        return density_inputs(model.kind, log_w, params.means, prec_k, log_det)
    with np.errstate(divide="ignore"):
        log_w = np.log(params.weights)
    log_det = model.log_det(params.prec_chol, k, d)
    kind = model.kind
    if kind == TIED and (tied_as_full or params.noise is not None):
        kind, prec_k = FULL, np.repeat(prec_k, k, axis=0)
    inputs = density_inputs(kind, log_w, params.means, prec_k, log_det)
    if params.noise is None:
        return inputs
    with np.errstate(divide="ignore"):
        const = np.log(params.noise.weight) + params.noise.log_density
    return KernelInputs(
        kind,
        kernel_array(np.append(inputs.const, const)),
        kernel_array(np.vstack([inputs.loc, np.zeros((1, d))])),
        kernel_array(np.concatenate([inputs.prec, np.zeros((1, *prec_k.shape[1:]))])),
    )
