"""BayesianGaussianMixture: scikit-learn's variational Gaussian mixture over fastgmm's
fused EM pass (the family is :class:`fastgmm.engine.variational.Variational`)."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseMixture, fitted_arrays
from .engine.fit import Schedule
from .engine.variational import Variational, data_moments
from .model import covariance, variational

#: covariance_type names with a variational posterior (scikit-learn's and mclust's)
_COVARIANCE_TYPES = {
    name for m in variational.MODELS for name in (m, *covariance.get(m).aliases)
}


class BayesianGaussianMixture(BaseMixture):
    """Variational Bayesian estimation of a Gaussian mixture, on Numba-parallel kernels.

    A drop-in for :class:`sklearn.mixture.BayesianGaussianMixture`: the same
    parameters, defaults, attributes, methods, warnings and error messages, and from
    the same start the same iterations (lower bound to ~1e-12). Both weight priors
    (a truncated Dirichlet process, as stick-breaking, or a Dirichlet distribution)
    and the four covariance types (also by mclust's names 'VVV', 'EEE', 'VVI',
    'VII'; mclust's 'EEI' and 'EII' have no variational posterior here).

    Beyond scikit-learn: ``fit(X, sample_weight=...)`` (exact: integer weights give
    the fit of repeated rows), float32 data kept in float32 (float64 accumulators),
    out-of-core (memmaps, h5py/zarr arrays, callables) and Dask fits, ``n_jobs``,
    ``tol_per_sample`` (a convergence test that does not tighten with the data
    size), ``prune_threshold`` (switch off components with negligible weight) and
    ``n_effective_components_``.

    Parameters
    ----------
    n_components : int, default=1
        Maximum number of mixture components; the posterior may leave some with
        weights close to zero.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    tol : float, default=1e-3
        Convergence threshold on the change of the *total* lower bound (as in
        scikit-learn: on n samples this is about tol / n per sample, so large data
        may not converge within ``max_iter``; see ``tol_per_sample``).
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of the empirical
        covariances of the M-step.
    max_iter : int, default=100
    n_init : int, default=1
        Number of initialisations; the one with the highest lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How the initial responsibilities are chosen: scikit-learn's starts, with the
        same random draws for the same ``random_state``.
    weight_concentration_prior_type : {'dirichlet_process', \
'dirichlet_distribution'}, default='dirichlet_process'
    weight_concentration_prior : float or None, default=None
        Concentration (gamma) of the weight prior; None means 1 / n_components.
        Higher values put more mass on more components.
    mean_precision_prior : float or None, default=None
        Precision (beta_0) of the prior on the means; None means 1.
    mean_prior : array-like of shape (n_features,), default=None
        Prior mean of the means; None means the (weighted) mean of X.
    degrees_of_freedom_prior : float or None, default=None
        Wishart degrees of freedom (nu_0 > n_features - 1); None means n_features.
    covariance_prior : float or array-like, default=None
        Wishart prior covariance: (n_features, n_features) for full and tied,
        (n_features,) for diag, a float for spherical. None means the (weighted)
        sample covariance of X (ddof=1; the total sample weight must exceed 1).
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
        Start from the last fitted posterior (then ``n_init`` is ignored).
    verbose : int, default=0
    verbose_interval : int, default=10
    n_jobs : int, default=None
        Threads for the kernels: None keeps Numba's setting, -1 all cores.
    tol_per_sample : float or None, default=None
        If given, EM stops when the change of the lower bound *divided by the total
        sample weight* falls below this value (``tol`` is then not used), as
        :class:`~fastgmm.GaussianMixture`'s ``tol`` does. ``lower_bound_`` stays
        the total bound. Not in scikit-learn (whose default ``tol=1e-3`` on 100k
        points is a change of 1e-8 per sample).
    prune_threshold : float in (0, 1) or None, default=None
        If given, after every M-step each component whose expected weight is below
        this value (or that received no responsibility at all) is switched off: its
        weight concentration is set to 0, so ``weights_`` is exactly 0 there and it
        takes no responsibility from then on; its mean and covariance relax to the
        prior. The heaviest component is never pruned, and the bound then omits
        the weight terms of pruned components. Off by default (scikit-learn never
        prunes). Pruned components still cost their share of each pass.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        Expected parameters, scikit-learn's shapes, in the dtype of the training data.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Evidence lower bound of the best fit (total, up to constants, as
        scikit-learn's).
    lower_bounds_ : list of float
    weight_concentration_prior_ : float
    weight_concentration_ : ndarray of shape (n_components,) or tuple of two
        The Dirichlet concentrations, or the sticks' Beta parameters (a, b) for the
        Dirichlet process.
    mean_precision_prior_ : float
    mean_precision_ : ndarray of shape (n_components,)
    mean_prior_ : ndarray of shape (n_features,)
    degrees_of_freedom_prior_ : float
    degrees_of_freedom_ : ndarray of shape (n_components,) (a float for tied)
    covariance_prior_ : float or ndarray
    n_effective_components_ : int
        Components whose expected share of the training weight is at least
        ``EFFECTIVE_WEIGHT`` / n_components (the others are switched off by the
        prior); with ``prune_threshold``, the components not pruned.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    """

    #: a component is effective when its weight is at least this share of 1 / K
    EFFECTIVE_WEIGHT = 0.1

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [
            StrOptions({"kmeans", "random", "random_from_data", "k-means++"})
        ],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions(_COVARIANCE_TYPES)],
        "weight_concentration_prior_type": [
            StrOptions({"dirichlet_process", "dirichlet_distribution"})
        ],
        "weight_concentration_prior": [
            None,
            Interval(Real, 0.0, None, closed="neither"),
        ],
        "mean_precision_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_prior": [None, "array-like"],
        "degrees_of_freedom_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "covariance_prior": [
            None,
            "array-like",
            Interval(Real, 0.0, None, closed="neither"),
        ],
        "n_jobs": [Integral, None],
        "tol_per_sample": [None, Interval(Real, 0.0, None, closed="left")],
        "prune_threshold": [None, Interval(Real, 0.0, 1.0, closed="neither")],
    }

    #: weights are counts: they set the data's strength against the prior
    _weights_scale_free = False

    def __init__(
        self,
        *,
        n_components=1,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        n_jobs=None,
        tol_per_sample=None,
        prune_threshold=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_jobs = n_jobs
        self.tol_per_sample = tol_per_sample
        self.prune_threshold = prune_threshold

    # ------------------------------------------------------------ the fit
    def _training_data(self, X, sample_weight, random_state):
        """The data (see BaseMixture), then the priors resolved on it (one pass)."""
        data, init_data, dtype = super()._training_data(X, sample_weight, random_state)
        model = covariance.get(self.covariance_type)
        moments = data_moments(data, full=model.form == "dense")
        prior = variational.resolve_prior(self, data.n_features, moments)
        self.weight_concentration_prior_ = prior.weight_concentration
        self.mean_precision_prior_ = prior.mean_precision
        self.mean_prior_ = prior.mean
        self.degrees_of_freedom_prior_ = prior.degrees_of_freedom
        cov = prior.covariance
        self.covariance_prior_ = float(cov) if cov.ndim == 0 else cov
        return data, init_data, dtype

    def _family(self):
        """The variational family of the priors just resolved on the data."""
        prior = variational.Prior(
            self.weight_concentration_prior_type,
            self.weight_concentration_prior_,
            self.mean_precision_prior_,
            self.mean_prior_,
            self.degrees_of_freedom_prior_,
            np.asarray(self.covariance_prior_),
        )
        model = covariance.get(self.covariance_type)
        return Variational(model, prior, self.reg_covar, self.prune_threshold)

    def _schedule(self, data):
        tol = self.tol
        if self.tol_per_sample is not None:
            tol = self.tol_per_sample * data.total_weight
        return Schedule(tol, self.max_iter, self.n_init)

    def _set_fitted(self, result, dtype):
        p = result.params
        for name, value in fitted_arrays(p, dtype).items():  # float32: fit or raise
            setattr(self, name, value)
        post = p.posterior
        conc = post.weight_concentration.copy()
        self.weight_concentration_ = tuple(conc) if conc.ndim == 2 else conc
        self.mean_precision_ = post.mean_precision.copy()
        dof = post.degrees_of_freedom
        self.degrees_of_freedom_ = float(dof) if dof.ndim == 0 else dof.copy()
        self.converged_ = bool(result.converged)
        self.n_iter_ = int(result.n_iter)
        self.lower_bound_ = float(result.lower_bound)
        self.lower_bounds_ = [float(v) for v in result.lower_bounds]
        self.n_effective_components_ = self._n_effective(post)
        self._forget_derived()

    #: the fitted Params hold the posterior too (see BaseMixture._params)
    _PARAM_ARRAYS = (
        *BaseMixture._PARAM_ARRAYS, "weight_concentration_", "mean_precision_",
        "degrees_of_freedom_",
    )  # fmt: skip
    _PARAM_SCALARS = (*BaseMixture._PARAM_SCALARS, "weight_concentration_prior_type")

    def _n_effective(self, post):
        if self.prune_threshold is not None:
            return int(np.sum(post.active()))
        share = self.EFFECTIVE_WEIGHT / self.n_components
        return int(np.sum(variational.weights(post) >= share))

    # -------------------------------------------------------- persistence
    def _set_extra_state(self, arrays):
        """Restore the fitted state beyond GaussianMixture's (read from a model file:
        ``fastgmm.io.persist.ESTIMATOR_ARRAYS``), checking shapes and
        values; ValueError if they do not fit the parameters."""
        k, d = self.n_components, self.n_features_in_
        model = covariance.get(self.covariance_type)
        dp = self.weight_concentration_prior_type == variational.DIRICHLET_PROCESS
        shapes = {
            "weight_concentration_": (2, k) if dp else (k,),
            "mean_precision_": (k,),
            "degrees_of_freedom_": () if model.shared else (k,),
            "weight_concentration_prior_": (),
            "mean_precision_prior_": (),
            "mean_prior_": (d,),
            "degrees_of_freedom_prior_": (),
            "covariance_prior_": model.shape(1, d)[0 if model.shared else 1 :],
        }  # fmt: skip
        for name, shape in shapes.items():
            a = arrays[name]
            if a.shape != shape or not np.all(np.isfinite(a)):
                raise ValueError(
                    f"{name} has shape {a.shape} (expected {shape}) or non-finite values"
                )
            setattr(self, name, float(a) if a.ndim == 0 else a)
        conc = self.weight_concentration_
        if (
            np.any(conc < 0)
            or (dp and np.any(conc[1] <= 0))
            or np.any(self.mean_precision_ <= 0)
        ):
            raise ValueError("the posterior's concentrations must be positive")
        if np.any(np.asarray(self.degrees_of_freedom_) <= d - 1):
            raise ValueError(f"degrees_of_freedom_ must exceed {d - 1}")
        self.weight_concentration_ = tuple(conc) if dp else conc
        post = variational.posterior_of(self)
        self.n_effective_components_ = self._n_effective(post)


#: the fitted attributes a model file holds beyond GaussianMixture's
_EXTRA_STATE = (
    "weight_concentration_",
    "mean_precision_",
    "degrees_of_freedom_",
    "weight_concentration_prior_",
    "mean_precision_prior_",
    "mean_prior_",
    "degrees_of_freedom_prior_",
    "covariance_prior_",
)
