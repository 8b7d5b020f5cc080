"""GaussianMixture: scikit-learn's estimator contract over fastgmm's EM core."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, validate_data

from ._base import BaseMixture, fitted_arrays, publish, snapshot
from ._runtime import threads
from .engine.data import check_n_samples, fit_work, make_data, present_rows
from .engine.em import EMResult, MaximumLikelihood, ModelBased
from .engine.gselect import check_top_components
from .engine.init import METHODS, initialize
from .engine.online import online_step, state_from_params
from .model import covariance, criteria
from .model.checks import check_user_init
from .modelbased import model_based_setup, noise_is_on


class GaussianMixture(BaseMixture):
    """Gaussian Mixture, fitted by EM on Numba-parallel kernels.

    A drop-in for :class:`sklearn.mixture.GaussianMixture`: the same parameters,
    defaults, attributes, methods, warnings and error messages. Beyond it:
    ``fit(X, sample_weight=...)`` (exact weighted EM), float32 kept end to end
    (float64 accumulators inside), ``n_jobs``, mclust's 14 covariance models, its
    uniform noise component and its conjugate prior (all off by default).

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : str, default='full'
        The covariance model: scikit-learn's 'full', 'tied', 'diag', 'spherical'
        (also by mclust's names 'VVV', 'EEE', 'VVI', 'VII'), or one of mclust's
        other ten: 'EEI' (one diagonal covariance shared by all components,
        ``covariances_`` of shape (n_features,)), 'EII' (one variance shared by all,
        a 0-d array), 'VEI', 'EVI' (diagonal, shape (n_components, n_features)),
        'VEE', 'EVE', 'VVE', 'EEV', 'VEV', 'EVV' (shape (n_components, n_features,
        n_features)). See ``docs/model-based-clustering.md`` and
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
    noise : bool, float or array-like of bool, default=False
        Add mclust's noise component, a uniform density ``1 / V`` over the data's
        hypervolume: ``True`` (initial noise share 0.1), a share in (0, 1), or a
        boolean mask of shape (n_samples,) marking the points that start as noise
        (mclust's ``initialization = list(noise = ...)``: the other points are
        initialised with ``init_params``). ``predict`` then labels noise points -1
        and ``predict_proba`` has a last column for the noise.
    noise_volume : {'hypvol', 'box'} or float, default='hypvol'
        ``V``: mclust's ``hypvol`` (the smaller of the bounding box of the data and
        of its principal-component scores), the bounding box, or a given volume
        (mclust's ``Vinv = 1 / noise_volume``).
    prior : None, True or dict, default=None
        mclust's conjugate prior (``priorControl()``; a MAP M-step, see
        ``fastgmm.model.prior``): True for mclust's defaults, or a dict overriding
        some of ``shrinkage``, ``mean``, ``dof``, ``scale``.
    top_components : int or None, default=None
        A fastgmm extension and an explicit approximation, off by default: top-C
        component selection (Kaldi's gselect) for diagonal models with many
        components (diagonal kinds only: 'diag', 'spherical' and mclust's diagonal
        models; in-memory data; neither ``noise`` nor ``prior``; not
        ``partial_fit``). An exact iteration (every component) records each
        sample's ``top_components`` components of largest weighted density (an
        int32 array of shape (n_samples, top_components) held during the fit);
        the iterations in between compute each sample's E-step over those only
        (responsibilities zero elsewhere, its log-likelihood a lower bound of the
        exact one). The exact iteration runs first, every
        ``fastgmm.engine.gselect.REFRESH`` iterations and last; once the restricted
        iterations meet ``tol`` every later one is exact, and only two exact
        iterations in a row can converge, so ``lower_bound_``, ``converged_`` and
        the fitted optimum are exact EM's (the scoring methods never use the
        selection). ``top_components >= n_components`` gives the exact fit. See
        ``docs/scaling.md`` ("Top-C selection").

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
    noise_weight_ : float
        With ``noise``: the noise component's weight (``weights_`` sum to one minus
        it).
    noise_density_ : float
        With ``noise``: its density ``1 / V`` (mclust's ``Vinv``).
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
        "noise": ["boolean", Interval(Real, 0.0, 1.0, closed="neither"), "array-like"],
        "noise_volume": [
            StrOptions({"hypvol", "box"}),
            Interval(Real, 0.0, None, closed="neither"),
        ],
        "prior": [None, "boolean", dict],
        "top_components": [Interval(Integral, 1, None, closed="left"), None],
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
        noise=False,
        noise_volume="hypvol",
        prior=None,
        top_components=None,
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
        self.noise = noise
        self.noise_volume = noise_volume
        self.prior = prior
        self.top_components = top_components

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
        if isinstance(family, ModelBased):
            raise ValueError("partial_fit supports neither noise nor prior.")
        if self.top_components is not None:
            raise ValueError("partial_fit does not support top_components.")
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
        setup = getattr(self, "_setup", None)
        model = covariance.get(self.covariance_type)
        recover = self.on_degenerate == "recover"
        if setup is not None:
            return ModelBased(model, self.reg_covar, recover, setup.prior, setup.noise)
        if self._model_based():
            return ModelBased(model, self.reg_covar, recover)  # set up by fit
        return MaximumLikelihood(model, self.reg_covar, recover, self.top_components)

    def _model_based(self):
        return noise_is_on(self.noise) or self.prior not in (None, False)

    @property
    def _weights_scale_free(self):
        """Without a prior c * w fits as w; with one the weights are counts (they set
        the data's strength against the prior), so they are not rescaled."""
        return self.prior in (None, False)

    def _fit(self, X, sample_weight):
        """Set up the noise and the prior from the data, then fit."""
        self._validate_params()
        top, model_based = self.top_components, self._model_based()
        check_top_components(top, self.covariance_type, model_based, X)
        if not model_based:
            return self._fit_validated(X, sample_weight)
        self._setup = model_based_setup(self, X, sample_weight)
        try:
            self._fit_validated(X, sample_weight)
        finally:
            self.__dict__.pop("_setup", None)

    def _training_data(self, X, sample_weight, random_state):
        data, init_data, dtype = super()._training_data(X, sample_weight, random_state)
        mask = getattr(getattr(self, "_setup", None), "noise_mask", None)
        if mask is not None and sample_weight is not None:  # rows of weight 0 dropped
            mask = mask[np.asarray(sample_weight, dtype=np.float64) > 0]
        if mask is not None:  # the initialisation sees only the points not noise
            sw = data.sample_weight if data.sample_weight.shape[0] else None
            sw = np.where(mask, 0.0, 1.0 if sw is None else sw)
            model = covariance.get(self.covariance_type)
            init_data = make_data(data.X, sw, self.n_components, model)
        return data, init_data, dtype

    def _set_fitted(self, result, dtype):
        p = result.params
        family = self._family()
        if isinstance(family, ModelBased):  # a start (max_iter=0) gets its noise
            p = family.with_noise(p)
        arrays = fitted_arrays(p, dtype)
        for name in ("noise_weight_", "noise_density_"):
            self.__dict__.pop(name, None)
        if p.noise is not None:
            self.noise_weight_ = float(p.noise.weight)
            self.noise_density_ = float(np.exp(p.noise.log_density))
        for name, value in arrays.items():
            setattr(self, name, value)
        self._forget_derived()
        self.converged_ = bool(result.converged)
        self.n_iter_ = int(result.n_iter)
        self.lower_bound_ = float(result.lower_bound)
        self.lower_bounds_ = [float(v) for v in result.lower_bounds]

    #: the fitted Params are read from these too (see BaseMixture._params)
    _PARAM_SCALARS = (*BaseMixture._PARAM_SCALARS, "noise_weight_", "noise_density_")

    def _n_parameters(self):
        """Number of free parameters of the model (mclust's count with a noise
        component: its weight and its volume add two)."""
        n = covariance.n_parameters(
            self.covariance_type, self.n_components, self.means_.shape[1]
        )
        return n + (2 if hasattr(self, "noise_weight_") else 0)

    def predict(self, X):
        """Most probable component of each sample, shape (n_samples,); -1 for points
        most probably noise (with ``noise``)."""
        labels = super().predict(X)
        if hasattr(self, "noise_weight_"):
            labels = np.where(labels == self.n_components, -1, labels)
        return labels

    def predict_proba(self, X):
        """Responsibilities p(k | x), shape (n_samples, n_components), with a last
        column for the noise component when the model has one."""
        return super().predict_proba(X)

    def sample(self, n_samples=1):
        """Draw samples from the Gaussian components (see ``BaseMixture.sample``);
        a model with a noise component cannot be sampled (its region is not kept)."""
        if hasattr(self, "noise_weight_"):
            raise ValueError(
                "sample() is not available for a model with a noise component."
            )
        return super().sample(n_samples)

    def bic(self, X):
        """Bayesian information criterion on X (lower is better)."""
        model, n = snapshot(self), X.shape[0]
        return criteria.bic(model.score(X) * n, model._n_parameters(), n)

    def aic(self, X):
        """Akaike information criterion on X (lower is better)."""
        model = snapshot(self)
        return criteria.aic(model.score(X) * X.shape[0], model._n_parameters())
