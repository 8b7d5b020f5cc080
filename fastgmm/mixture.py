"""GaussianMixture: scikit-learn's estimator contract over fastgmm's EM core."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, validate_data

from ._base import BaseMixture, fitted_arrays, publish, snapshot
from ._runtime import threads
from .engine.data import check_n_samples, fit_work, make_data, present_rows
from .engine.em import EMResult, MaximumLikelihood
from .engine.init import METHODS, initialize
from .engine.online import online_step, state_from_params
from .model import covariance, criteria
from .model.checks import check_user_init
from .model.params import from_fitted


class GaussianMixture(BaseMixture):
    """Gaussian Mixture, fitted by EM on Numba-parallel kernels.

    A drop-in for :class:`sklearn.mixture.GaussianMixture`: the same parameters,
    defaults, attributes, methods, warnings and error messages. Beyond it:
    ``fit(X, sample_weight=...)`` (exact weighted EM), float32 kept end to end
    (float64 accumulators inside), and ``n_jobs``.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : str, default='full'
        The covariance model: scikit-learn's 'full', 'tied', 'diag', 'spherical'
        (also by mclust's names 'VVV', 'EEE', 'VVI', 'VII'), or mclust's 'EEI' (one
        diagonal covariance shared by all components, ``covariances_`` of shape
        (n_features,)) and 'EII' (one variance shared by all, a 0-d array). See
        ``fastgmm.model.covariance.MODELS``.
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound (mean log-likelihood).
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of covariances.
    max_iter : int, default=100
        Number of EM iterations to perform.
    n_init : int, default=1
        Number of initialisations; the best result is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data', 'hc', \
            'short-em'}, default='kmeans'
        Method used to initialise the responsibilities. 'kmeans' is scikit-learn's
        start, draw for draw: the same ``random_state`` gives the same k-means
        clusters as ``sklearn.mixture.GaussianMixture`` (float64 data; on float32
        data scikit-learn's float32 running sums may draw other k-means++ seeds from
        some tens of thousands of rows on). fastgmm extensions, better
        on higher-dimensional data (see ``fastgmm.engine.starts``): 'hc', mclust's
        model-based hierarchical clustering (VVV criterion, on at most 2000 rows) cut
        at ``n_components``; 'short-em', a few EM iterations from each of several
        starts (scikit-learn's k-means start, hc with the VVV and EII criteria, more
        k-means and random-rows starts), continuing the best. ``n_iter_`` counts the
        iterations after the short runs.
    weights_init : array-like of shape (n_components,), default=None
    means_init : array-like of shape (n_components, n_features), default=None
    precisions_init : array-like, default=None
        User-provided starting parameters (shapes as scikit-learn's).
    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation; results do not depend on the thread count.
    warm_start : bool, default=False
        Start from the last fitted parameters (then ``n_init`` is ignored).
    verbose : int, default=0
    verbose_interval : int, default=10
    n_jobs : int, default=None
        Threads for the kernels: None keeps Numba's setting (all cores by default),
        -1 all cores, a positive int that many.
    on_degenerate : {'recover', 'raise'}, default='recover'
        What to do when a component collapses (its covariance is not positive
        definite): 'recover' adds a small multiple of the data variance to its
        diagonal (10x more per try), warns with
        :class:`~fastgmm.exceptions.DegenerateComponentWarning` and continues;
        'raise' stops with scikit-learn's ValueError.
    learning_decay : float in (0.5, 1], default=0.6
        Step-size exponent of :meth:`partial_fit` (online EM): the statistics of the
        t-th chunk enter the running average with weight ``t ** -learning_decay``.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        Fitted parameters, in the dtype of the training data.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean (weighted) log-likelihood of the best fit.
    lower_bounds_ : list of float
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions(set(METHODS))],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions(set(covariance.names()))],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
        "n_jobs": [Integral, None],
        "on_degenerate": [StrOptions({"recover", "raise"})],
        "learning_decay": [Interval(Real, 0.5, 1.0, closed="right")],
    }

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        n_jobs=None,
        on_degenerate="recover",
        learning_decay=0.6,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_jobs = n_jobs
        self.on_degenerate = on_degenerate
        self.learning_decay = learning_decay

    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the model with one chunk of a stream (online EM).

        The first call initialises the parameters on the chunk with ``init_params``
        (or ``*_init``); each call then runs one stochastic EM step (see
        :mod:`fastgmm._online`): an approximation of the batch fit that converges on
        a stationary stream, usable between calls. ``n_iter_`` counts the chunks seen
        and ``lower_bound_`` is the last chunk's mean log-likelihood before its update.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : GaussianMixture
        """
        with publish(self) as work:
            work._partial_fit(X, sample_weight)
        return self

    def _partial_fit(self, X, sample_weight):
        self._validate_params()
        first = not hasattr(self, "converged_")
        X = validate_data(
            self, X, reset=first, dtype=[np.float64, np.float32], order="C"
        )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            X, sample_weight = present_rows(X, sample_weight)
        family = self._family()
        state = getattr(self, "_online_state", None)
        work = fit_work(X, self.n_components, self.covariance_type)
        with threads(self.n_jobs, work=work):
            if first:
                check_n_samples(X.shape[0], self.n_components)
                data = make_data(X, sample_weight, self.n_components, family.model)
                user = check_user_init(self, X.shape[1])
                params = initialize(
                    data,
                    self.n_components,
                    family,
                    self.init_params,
                    check_random_state(self.random_state),
                    user,
                )
            else:
                params = self._params()
                if state is None:  # after fit: continue from the fitted model
                    n_fit = getattr(self, "_n_fit_rows", None)
                    state = state_from_params(params, family, n_fit, X.shape[0])
            state, params, ll = online_step(
                state,
                X,
                sample_weight,
                params,
                family,
                self.learning_decay,
            )
        bounds = [] if first else list(self.lower_bounds_)
        self._set_fitted(EMResult(params, ll, bounds + [ll], state.t, False), X.dtype)
        self._online_state = state

    def _user_init(self, n_features):
        return check_user_init(self, n_features)

    def _start_is_given(self):
        given = (self.weights_init, self.means_init, self.precisions_init)
        return all(v is not None for v in given)

    def _family(self):
        return MaximumLikelihood(
            covariance.get(self.covariance_type),
            self.reg_covar,
            recover=self.on_degenerate == "recover",
        )

    def _set_fitted(self, result, dtype):
        p = result.params
        arrays = fitted_arrays(p, dtype)
        for name, value in arrays.items():
            setattr(self, name, value)
        self.converged_ = bool(result.converged)
        self.n_iter_ = int(result.n_iter)
        self.lower_bound_ = float(result.lower_bound)
        self.lower_bounds_ = [float(v) for v in result.lower_bounds]

    def _params(self):
        """The fitted parameters as float64 Params."""
        return from_fitted(self)

    def _n_parameters(self):
        """Number of free parameters of the model."""
        return covariance.n_parameters(
            self.covariance_type, self.n_components, self.means_.shape[1]
        )

    def bic(self, X):
        """Bayesian information criterion on X (lower is better)."""
        model, n = snapshot(self), X.shape[0]
        return criteria.bic(model.score(X) * n, model._n_parameters(), n)

    def aic(self, X):
        """Akaike information criterion on X (lower is better)."""
        model = snapshot(self)
        return criteria.aic(model.score(X) * X.shape[0], model._n_parameters())
