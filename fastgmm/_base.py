"""The estimator machinery every fastgmm mixture shares (scikit-learn's BaseMixture).

:class:`BaseMixture` validates, builds the training data, runs the one fit driver
(:func:`fastgmm.engine.fit.fit`) on the family the subclass supplies
(``_family()``), sets the fitted attributes once, and scores through the one scorer
(:mod:`fastgmm.engine.score`). A subclass supplies its parameters, ``_family``,
``_user_init`` and ``_set_fitted``.
"""

import warnings
from contextlib import contextmanager
from functools import partial
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from ._derived import Derived, derived_params
from ._runtime import threads
from .engine.dask import check_array, is_dask_array, lazy_score
from .engine.data import (
    as_source,
    check_n_samples,
    check_spread,
    fit_work,
    make_data,
    pins_blas,
    present_rows,
    streamed_data,
)
from .engine.fit import Schedule, fit
from .engine.init import initialize, seeded
from .engine.report import VerboseMonitor
from .engine.score import score, score_blocks
from .engine.sources import is_source
from .model import covariance
from .model.params import from_fitted

#: rows sampled from a streamed data set to initialise the fit
INIT_SAMPLE_ROWS = 200_000


def snapshot(estimator):
    """A consistent view of ``estimator``: a shallow copy of its attributes taken in
    one step (a dict copy, atomic under the GIL), as an instance of its class.

    Readers (``predict``, ``score_samples``, ...) work on a snapshot, so a concurrent
    refit can never show them the arrays of one model and the feature count of
    another.
    """
    view = object.__new__(type(estimator))
    view.__dict__ = estimator.__dict__.copy()
    return view


@contextmanager
def publish(estimator):
    """Run a fitting call on a working copy of ``estimator`` (yielded) and publish
    its attributes in one step (a swap of the attribute dict) when it succeeds.

    A concurrent reader sees the old state or the new one, never a mix; a failed or
    interrupted call leaves the estimator exactly as it was.
    """
    work = snapshot(estimator)
    yield work
    estimator.__dict__ = work.__dict__


#: types of parameter values whose validation is remembered (immutable, hashable)
_PLAIN = (type(None), bool, int, float, str)


def _plain_key(params):
    """A hashable key of ``params`` (name -> value) when every value is a plain
    immutable scalar, the type included (True and 1 validate differently); else
    None (arrays, generators, dicts: validated every time)."""
    key = []
    for name, value in params.items():
        if type(value) not in _PLAIN:
            return None
        key.append((name, type(value), value))
    return tuple(key)


def _plain_rows(X, min_rows, n_features=None):
    """Whether ``X`` is what scikit-learn's ``validate_data`` would return unchanged:
    a C-contiguous float32/float64 ndarray (no subclass), 2-D, at least ``min_rows``
    rows and one column (``n_features`` of them when given), every value finite.
    Then the checks are done (~2 us instead of ~50); anything else goes through
    ``validate_data`` for its conversions and messages."""
    return (
        type(X) is np.ndarray
        and X.ndim == 2
        and (X.dtype == np.float64 or X.dtype == np.float32)
        and X.flags.c_contiguous
        and X.shape[0] >= min_rows
        and X.shape[1] >= 1
        and (n_features is None or X.shape[1] == n_features)
        and bool(np.isfinite(X).all())
    )


def _no_bool_counts(estimator, params):
    """scikit-learn's integer intervals accept True and False (bool is an Integral);
    a count given as a bool is a mistake that would fail deep inside the fit."""
    from sklearn.utils._param_validation import Interval, InvalidParameterError

    for name, value in params.items():
        if type(value) is not bool:
            continue
        for c in estimator._parameter_constraints.get(name, ()):
            if isinstance(c, Interval) and c.type is Integral:
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(estimator).__name__} must be "
                    f"{c}. Got {value!r} instead."
                )


def fitted_arrays(p, dtype):
    """The fitted arrays of Params ``p`` in ``dtype``; ValueError when one of them
    cannot be represented there (a float32 fit whose covariances or precisions
    overflow to inf or underflow to 0 after the float64 computation)."""
    with np.errstate(over="ignore", under="ignore"):
        arrays = _fitted(p, dtype, np.asarray)
    return _checked(arrays, p.model.form == "dense", dtype)


def _fitted(p, dtype, cast):
    return {
        "weights_": cast(p.weights, dtype=dtype),
        "means_": cast(p.means, dtype=dtype),
        "covariances_": cast(p.covariances, dtype=dtype),
        "precisions_cholesky_": cast(p.prec_chol, dtype=dtype),
        "precisions_": cast(p.model.precisions(p.prec_chol), dtype=dtype),
    }


_VARIANCES = ("covariances_", "precisions_cholesky_", "precisions_")


def _checked(arrays, dense, dtype):
    """``arrays`` when every value is finite and every variance positive (one
    check of all of them at once); else the ValueError naming the first that is
    not."""
    values = [arrays[name] for name in _VARIANCES]
    diags = [np.diagonal(a, axis1=-2, axis2=-1) for a in values] if dense else values
    every = np.concatenate([a.ravel() for a in values] + [arrays["means_"].ravel()])
    variances = np.concatenate([a.ravel() for a in diags])
    if np.isfinite(every).all() and (variances > 0).all():
        return arrays
    for name, a, diag in zip(_VARIANCES, values, diags):
        if not (np.isfinite(a).all() and (diag > 0).all()):
            raise ValueError(
                f"The fitted {name} cannot be represented in {np.dtype(dtype)}: "
                "they overflow to inf or underflow to 0 (the data's scale is too "
                "large or too small for it). Scale the data, or pass float64 data."
            )
    raise ValueError(
        f"The fitted means_ cannot be represented in {np.dtype(dtype)} (they "
        "overflow to inf). Scale the data, or pass float64 data."
    )


def _check_start_spread(data, warm, user):
    """The spread check of in-memory data (``engine.data.check_spread``) with the
    means EM starts from when they are given (a warm start's, ``means_init``): the
    first E-step takes the statistics about them. The data's range comes from the
    check ``make_data`` made (X is not read again unless the check fails)."""
    means = [] if warm is None else [warm[0].means]
    means += [] if user[1] is None else [user[1]]
    if means and data.source is None:
        sw = data.sample_weight if data.sample_weight.shape[0] else None
        check_spread(data.X, sw, np.vstack(means), data.value_range)


class BaseMixture(DensityMixin, BaseEstimator):
    """Fitting, scoring, sampling and persistence of a mixture (not public).

    Subclasses define the parameters (``n_components``, ``covariance_type``,
    ``tol``, ``max_iter``, ``n_init``, ``init_params``, ``random_state``,
    ``warm_start``, ``verbose``, ``verbose_interval``, ``n_jobs``) and:

    - ``_family()``: what EM fits (see :mod:`fastgmm.engine.em`), built after the
      training data (``_training_data``), which a subclass may extend;
    - ``_user_init(n_features)``: validated user-given (weights, means, precisions),
      each None when not given;
    - ``_set_fitted(result, dtype)``: the fitted attributes of a result's Params
      (then ``_forget_derived()``); ``_params()`` reads them back (extend
      ``_PARAM_ARRAYS`` / ``_PARAM_SCALARS`` for more fitted state).
    """

    #: whether a fit depends on sample_weight only up to its scale (c * w fits as w;
    #: the weights are then scaled by a power of two, see engine.data.present_rows)
    _weights_scale_free = True

    def _user_init(self, n_features):
        return (None, None, None)

    @classmethod
    def _get_param_names(cls):
        """scikit-learn's parameter names (from the signature of ``__init__``, which
        ``inspect`` reads at ~20 us a call), read once per class."""
        names = cls.__dict__.get("_param_names")
        if names is None:
            names = super()._get_param_names()
            cls._param_names = names
        return list(names)

    def _validate_params(self):
        """scikit-learn's parameter validation; a set of plain values (numbers,
        strings, None) that passed once for this class is not checked again (the
        constraints are a pure function of the values)."""
        params = self.get_params(deep=False)
        key = _plain_key(params)
        valid = type(self).__dict__.get("_valid_params")
        if key is not None and valid is not None and key in valid:
            return
        super()._validate_params()
        _no_bool_counts(self, params)
        if key is not None:
            if valid is None or len(valid) >= 64:
                valid = type(self)._valid_params = set()
            valid.add(key)

    #: the fitted attributes the Params are read from (see _params); a subclass
    #: with more fitted state extends them
    _PARAM_ARRAYS = ("weights_", "means_", "covariances_", "precisions_cholesky_")
    _PARAM_SCALARS = ("covariance_type", "n_components", "n_features_in_")

    def _params(self):
        """The fitted parameters as float64 Params (checked), derived once per set
        of fitted attributes: a user's assignment to them, or a change in place, is
        seen by the next call (see :mod:`fastgmm._derived`)."""
        return derived_params(
            self, partial(from_fitted, self), self._PARAM_ARRAYS, self._PARAM_SCALARS
        )

    def _forget_derived(self):
        """Start afresh what the methods derive from the fitted attributes (each
        fit, and a load from a model file, call this)."""
        self._derived = Derived()

    def _start_is_given(self):
        """Whether the user gave every starting parameter (nothing to initialise)."""
        return False

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters with EM (best of ``n_init`` runs).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a block source
            In-memory data, or data streamed block by block with memory bounded by
            the block size: a ``numpy.memmap``, an h5py/zarr array, or a callable
            returning a new iterable of blocks (arrays, or (rows, weights) pairs).
            Streamed data are initialised on a seeded sample of at most
            ``INIT_SAMPLE_ROWS`` rows; EM itself runs on all rows.
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; integer weights give the same fit as repeated rows.

        Returns
        -------
        self : GaussianMixture
        """
        with publish(self) as work:
            work._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit the model and return the component label of each sample of X.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def _validate_fit_input(self, X, sample_weight):
        if _plain_rows(X, 2):  # validate_data's result and attributes, directly
            self.__dict__.pop("feature_names_in_", None)
            self.n_features_in_ = X.shape[1]
        else:
            X = validate_data(
                self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, order="C"
            )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            X, sample_weight = present_rows(
                X, sample_weight, scale=self._weights_scale_free
            )
        check_n_samples(X.shape[0], self.n_components)
        return X, sample_weight

    def _training_data(self, X, sample_weight, random_state):
        """(data for EM, data for the initialisation, dtype)."""
        k, model = self.n_components, covariance.get(self.covariance_type)
        if not is_source(X):
            X, sample_weight = self._validate_fit_input(X, sample_weight)
            data = make_data(X, sample_weight, k, model)
            return data, data, X.dtype
        init_rows = 0 if self._start_is_given() else INIT_SAMPLE_ROWS
        data, init_data = streamed_data(
            X, sample_weight, k, model, random_state, init_rows
        )
        self.n_features_in_ = data.n_features
        self.__dict__.pop("feature_names_in_", None)
        return data, init_data, data.dtype

    def _fit(self, X, sample_weight):
        self._validate_params()
        self._fit_validated(X, sample_weight)

    def _fit_validated(self, X, sample_weight):
        """``_fit`` after ``_validate_params``."""
        # a batch fit starts a new stream: partial_fit continues from the fitted
        # model (fastgmm.engine.online.state_from_params), with its row count
        self.__dict__.pop("_online_state", None)
        k = self.n_components
        warm = None
        if self.warm_start and hasattr(self, "converged_"):
            warm = (self._params(), self.lower_bound_)
        work = fit_work(X, k, self.covariance_type)  # small fits: one thread
        with (
            seeded(self.random_state) as random_state,
            threads(self.n_jobs, work=work, pin_blas=pins_blas(X, work)),
        ):
            data, init_data, dtype = self._training_data(X, sample_weight, random_state)
            self._n_fit_rows = data.n_rows
            family = self._family()  # after the data: a family may depend on it
            user = self._user_init(data.n_features)
            _check_start_spread(data, warm, user)

            def starts(init):
                return initialize(
                    init_data, k, family, self.init_params, random_state, user
                )

            monitor = VerboseMonitor(self.verbose, self.verbose_interval)
            schedule = self._schedule(data)
            best = fit(data, family, schedule, starts, k, warm=warm, monitor=monitor)
        if not best.converged and self.max_iter > 0:
            warnings.warn(  # noqa: B028 (scikit-learn's warning, its stack level)
                "Best performing initialization did not converge. "
                "Try different init parameters, or increase max_iter, "
                "tol, or check for degenerate data.",
                ConvergenceWarning,
            )
        self._set_fitted(best, dtype)

    def _schedule(self, data):
        """When EM stops (``tol`` on the change of the lower bound) and restarts."""
        return Schedule(self.tol, self.max_iter, self.n_init)

    # ------------------------------------------------------------- inference
    def _score(self, X, **wanted):
        model = snapshot(self)  # one consistent state, whatever a refit does
        params = model._params()  # NotFittedError unless fitted; shapes checked
        if type(X) is not np.ndarray:  # (a plain ndarray is in memory)
            if is_dask_array(X):
                check_array(X)  # 2-D, before its width is read
                model._check_features(X.shape[1])
                ((what, _),) = wanted.items()
                k = model.n_components
                return (lazy_score(X, params, model.covariance_type, what, k),)
            if is_source(X):
                source = as_source(X)
                model._check_features(source.n_features)
                return score_blocks(source, params, model.n_jobs, **wanted)
        plain = not hasattr(model, "feature_names_in_") and _plain_rows(
            X, 1, getattr(model, "n_features_in_", -1)
        )
        if not plain:
            X = validate_data(
                model, X, reset=False, dtype=[np.float64, np.float32], order="C"
            )
        # params are checked against n_features_in_, and X against it above
        return score(X, params, n_jobs=model.n_jobs, checked=True, **wanted)

    def _check_features(self, n_features):
        if n_features != self.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but {type(self).__name__} "
                f"is expecting {self.n_features_in_} features as input."
            )

    def score_samples(self, X):
        """Log-likelihood of each sample, log p(x), shape (n_samples,)."""
        return self._score(X, lse=True)[0]

    def score(self, X, y=None):
        """Mean log-likelihood of the samples of X (float)."""
        return float(np.mean(self.score_samples(X)))

    def predict(self, X):
        """Most probable component of each sample, shape (n_samples,)."""
        return self._score(X, labels=True)[0]

    def predict_proba(self, X):
        """Responsibilities p(k | x), shape (n_samples, n_components)."""
        return self._score(X, resp=True)[0]

    def sample(self, n_samples=1):
        """Draw ``n_samples`` points from the fitted mixture.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            Component of each sample.
        """
        model = snapshot(self)
        check_is_fitted(model)
        if n_samples < 1:
            raise ValueError(
                "Invalid value for 'n_samples': %d . The sampling requires at "
                "least one sample." % (model.n_components)
            )
        params = model._params()  # shapes checked
        rng = check_random_state(model.random_state)
        return covariance.sample(
            rng,
            model.covariance_type,
            params.weights,
            params.means,
            params.covariances,
            n_samples,
        )

    # ----------------------------------------------------------- persistence
    def save(self, path):
        """Write the fitted model to ``path`` in fastgmm's safe, versioned format
        (a zip of ``.npy`` arrays and JSON metadata; no pickle). See :func:`fastgmm.load`."""
        from .io.persist import save

        save(self, path)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`, validating every field."""
        from .io.persist import load

        return load(path)
