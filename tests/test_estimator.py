"""fastgmm.GaussianMixture as a scikit-learn estimator: the estimator checks, parity
with sklearn.mixture.GaussianMixture, EM invariants, errors, and awkward inputs."""

import copy
import functools
import re
import warnings

import numba
import numpy as np
import pytest
from scipy import sparse
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture as SKGaussianMixture
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastgmm.engine.em
from fastgmm import GaussianMixture
from fastgmm.engine.init import METHODS
from fastgmm.exceptions import DegenerateComponentWarning
from fastgmm.kernels.lowd32 import MAX_D
from fastgmm.model import covariance as cov

from . import reference as ref

COV_TYPES = ref.COVARIANCE_TYPES
FITTED = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
    "converged_",
    "n_iter_",
    "lower_bound_",
    "lower_bounds_",
    "n_features_in_",
)


# ---------------------------------------------------------------------------- helpers
@functools.cache
def _pixels(name, n=20_000):
    import skimage.data

    img = getattr(skimage.data, name)()
    P = img.reshape(-1, 3).astype(np.float64) / 255.0
    return P[np.random.default_rng(0).choice(len(P), n, replace=False)]


@functools.cache
def load(name):
    """(X read-only float64, n_components) for the parity data sets."""
    loaders = {
        "iris": (lambda: datasets.load_iris().data, 3),
        "wine": (lambda: datasets.load_wine().data, 3),
        "breast_cancer": (lambda: datasets.load_breast_cancer().data, 2),
        "digits": (lambda: datasets.load_digits().data, 10),
        "astronaut": (lambda: _pixels("astronaut"), 5),
        "coffee": (lambda: _pixels("coffee"), 5),
        "astronaut_5k": (lambda: _pixels("astronaut", 5_000), 5),
    }
    make, n_components = loaders[name]
    X = np.ascontiguousarray(make(), dtype=np.float64)
    X.setflags(write=False)
    return X, n_components


def quiet(fn, *args, **kwargs):
    """Call fn with ConvergenceWarning silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def sklearn_start(X, n_components, covariance_type, seed=0):
    """weights/means/precisions after one scikit-learn EM iteration (a common start)."""
    s = quiet(
        SKGaussianMixture(
            n_components, covariance_type=covariance_type, max_iter=1, random_state=seed
        ).fit,
        X,
    )
    return {
        "weights_init": s.weights_,
        "means_init": s.means_,
        "precisions_init": s.precisions_,
    }


def fitted_state(est):
    return {
        name: copy.deepcopy(getattr(est, name)) for name in FITTED if hasattr(est, name)
    }


def assert_same_fit(a, b, rtol=0.0):
    """Fitted attributes of two estimators equal (bitwise when rtol == 0)."""
    sa, sb = fitted_state(a), fitted_state(b)
    assert sa.keys() == sb.keys()
    for name in sa:
        x, y = sa[name], sb[name]
        if rtol == 0.0:
            np.testing.assert_array_equal(x, y, err_msg=name)
            if isinstance(x, np.ndarray):
                assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name
        elif isinstance(x, (bool, int)):
            assert x == y, name
        else:
            np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol, err_msg=name)


def mixture_data(rng, n=600, d=3, n_components=3, covariance_type="full", spread=3.0):
    w, means, covariances, _ = ref.random_params(rng, n_components, d, covariance_type)
    return ref.sample_mixture(
        rng, n, w, means * spread / 2, covariances, covariance_type
    )


def _normalise(message):
    """Sort the {..} option sets of InvalidParameterError (set order is arbitrary)."""
    return re.sub(
        r"\{([^{}]*)\}",
        lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}",
        message,
    )


def fit_error(cls, X, params, sample_weight=None):
    """The exception raised by cls(**params).fit(X, ...)."""
    est = cls(**params)
    kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
    with pytest.raises(Exception) as info:
        quiet(est.fit, X, **kwargs)
    return info.value


# ---------------------------------------------------------------- estimator checks
def _expected_failed_checks(est):
    if est.n_components == 1:
        return {}
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "the randomised initialisation draws its starting rows by row index, so "
            "repeating rows changes the start (as for sklearn's KMeans, which sklearn "
            "also xfails); from a fixed start integer weights equal repeated rows "
            "exactly: see test_integer_weights_equal_repeated_rows"
        )
    }


@parametrize_with_checks(
    [
        GaussianMixture(),
        GaussianMixture(
            n_components=2,
            covariance_type="diag",
            init_params="random_from_data",
            random_state=0,
        ),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_sample_weight_equivalence_check_fails_only_through_the_start():
    """The one expected-failed check passes when the start is fixed."""
    from sklearn.utils.estimator_checks import (
        check_sample_weight_equivalence_on_dense_data,
    )

    rng = np.random.RandomState(42)  # the data the check itself uses (15 x 30)
    X = rng.rand(15, 30)
    means = X[[0, 7]]
    est = GaussianMixture(
        2,
        covariance_type="diag",
        means_init=means,
        weights_init=[0.5, 0.5],
        precisions_init=np.full((2, 30), 10.0),
        tol=1e-12,
    )
    quiet(check_sample_weight_equivalence_on_dense_data, "GaussianMixture", est)


# -------------------------------------------------------------- parity with sklearn
PARITY_SETS = ["iris", "wine", "breast_cancer", "digits", "astronaut", "coffee"]


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dataset", PARITY_SETS)
def test_same_start_parity_with_sklearn(dataset, covariance_type):
    X, n_components = load(dataset)
    start = sklearn_start(X, n_components, covariance_type)
    sk = quiet(
        SKGaussianMixture(n_components, covariance_type=covariance_type, **start).fit, X
    )
    fg = quiet(
        GaussianMixture(n_components, covariance_type=covariance_type, **start).fit, X
    )
    assert fg.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-6)
    assert abs(fg.n_iter_ - sk.n_iter_) <= 1
    common = min(len(fg.lower_bounds_), len(sk.lower_bounds_))
    np.testing.assert_allclose(
        fg.lower_bounds_[:common], sk.lower_bounds_[:common], rtol=1e-6
    )
    assert np.mean(fg.predict(X) == sk.predict(X)) >= 0.999
    assert fg.bic(X) == pytest.approx(sk.bic(X), rel=1e-6)


#: (data set, covariance type): the cheap ones, for run time (digits: slow tier)
DEFAULT_INIT_CASES = (
    [("iris", c) for c in COV_TYPES]
    + [("wine", c) for c in COV_TYPES]
    + [
        ("astronaut_5k", "diag"),
        ("astronaut_5k", "spherical"),
    ]
)


@pytest.mark.parametrize("dataset, covariance_type", DEFAULT_INIT_CASES)
def test_default_init_not_worse_than_sklearn(dataset, covariance_type):
    X, n_components = load(dataset)
    for seed in range(3):
        params = {"covariance_type": covariance_type, "n_init": 3, "random_state": seed}
        sk = quiet(SKGaussianMixture(n_components, **params).fit, X)
        fg = quiet(GaussianMixture(n_components, **params).fit, X)
        rel = (fg.lower_bound_ - sk.lower_bound_) / abs(sk.lower_bound_)
        assert rel >= -1e-3, (seed, fg.lower_bound_, sk.lower_bound_)


def _standardised(name):
    X, n_components = load(name)
    return (X - X.mean(0)) / X.std(0), n_components


def _assert_default_fit_is_sklearns(X, n_components, covariance_type, seeds):
    """Change one import: the same random_state gives scikit-learn's start (its
    k-means labels), hence its EM path, lower bound and clusters."""
    for seed in seeds:
        params = {"covariance_type": covariance_type, "random_state": seed}
        sk = quiet(SKGaussianMixture(n_components, **params).fit, X)
        fg = quiet(GaussianMixture(n_components, **params).fit, X)
        assert fg.n_iter_ == sk.n_iter_, seed
        assert fg.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-9, abs=1e-9)
        assert adjusted_rand_score(sk.predict(X), fg.predict(X)) == 1.0, seed


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("dataset", ["iris", "wine", "coffee"])
def test_default_init_reproduces_sklearn(dataset, covariance_type):
    if dataset == "wine":
        X, n_components = _standardised(dataset)
    else:
        X, n_components = load(dataset)
    _assert_default_fit_is_sklearns(X, n_components, covariance_type, range(3))


@pytest.mark.slow
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_default_init_reproduces_sklearn_on_digits(covariance_type):
    X, n_components = load("digits")
    _assert_default_fit_is_sklearns(X, n_components, covariance_type, range(3))


# ------------------------------------------------------------------------ invariants
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("init_params", ["kmeans", "random"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_lower_bound_never_decreases(rng, covariance_type, init_params, weighted):
    X = mixture_data(rng, n=800, d=3, n_components=4, spread=1.0)  # overlapping
    sw = rng.uniform(0, 3, len(X)) if weighted else None
    gm = quiet(
        GaussianMixture(
            4,
            covariance_type=covariance_type,
            init_params=init_params,
            tol=1e-10,
            max_iter=60,
            random_state=0,
        ).fit,
        X,
        sample_weight=sw,
    )
    lb = np.asarray(gm.lower_bounds_)
    assert len(lb) == gm.n_iter_ > 5
    assert np.all(np.diff(lb) >= -1e-12 * np.abs(lb[1:]))
    assert gm.lower_bound_ == lb[-1]


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_float32_fit_close_to_float64(rng, covariance_type):
    X = mixture_data(rng, n=2000, d=3, n_components=3, covariance_type=covariance_type)
    start = sklearn_start(X, 3, covariance_type)
    g64 = GaussianMixture(3, covariance_type=covariance_type, **start).fit(X)
    X32 = X.astype(np.float32)
    g32 = GaussianMixture(3, covariance_type=covariance_type, **start).fit(X32)
    for name in (
        "weights_",
        "means_",
        "covariances_",
        "precisions_",
        "precisions_cholesky_",
    ):
        a32, a64 = getattr(g32, name), getattr(g64, name)
        assert a32.dtype == np.float32 and a64.dtype == np.float64, name
        np.testing.assert_allclose(a32, a64, rtol=1e-4, atol=1e-5, err_msg=name)
    assert g32.lower_bound_ == pytest.approx(g64.lower_bound_, rel=1e-6)
    assert abs(g32.n_iter_ - g64.n_iter_) <= 1
    assert g32.score_samples(X32).dtype == np.float32
    assert g32.predict_proba(X32).dtype == np.float32
    assert g32.predict(X32).dtype == np.int64
    np.testing.assert_allclose(
        g32.score_samples(X32), g64.score_samples(X), rtol=1e-5, atol=1e-5
    )
    assert np.mean(g32.predict(X32) == g64.predict(X)) > 0.999
    # float64 input to a float32-fitted model gives float64 outputs (as sklearn)
    assert g32.score_samples(X).dtype == np.float64


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_float32_equals_float64_of_the_same_values(rng, covariance_type):
    """Above kernels.lowd32.MAX_D features (and for tied at any d) float32 data is
    read into float64 inside EM: only the final cast differs. (The "kmeans" start,
    like scikit-learn's KMeans, computes in the data's dtype, so float32 and float64
    data may start apart: here a dtype-free start.) At fewer features full, diag and
    spherical compute in float32: see tests/kernels/test_lowd32.py."""
    d = MAX_D + 1
    X32 = mixture_data(rng, n=500, d=d, n_components=3).astype(np.float32)
    params = dict(covariance_type=covariance_type, init_params="random_from_data")
    g32 = quiet(GaussianMixture(3, random_state=1, **params).fit, X32)
    g64 = quiet(
        GaussianMixture(3, random_state=1, **params).fit, X32.astype(np.float64)
    )
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(
            getattr(g32, name), getattr(g64, name).astype(np.float32)
        )
    assert g32.lower_bounds_ == g64.lower_bounds_


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_integer_weights_equal_repeated_rows(rng, covariance_type):
    X = mixture_data(rng, n=300, d=2, n_components=3)
    sw = rng.integers(0, 4, len(X))
    start = sklearn_start(X, 3, covariance_type)
    params = dict(covariance_type=covariance_type, tol=1e-8, **start)
    weighted = quiet(GaussianMixture(3, **params).fit, X, sample_weight=sw)
    repeated = quiet(GaussianMixture(3, **params).fit, np.repeat(X, sw, axis=0))
    assert weighted.n_iter_ == repeated.n_iter_
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, rel=1e-12)
    np.testing.assert_allclose(
        weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-12
    )
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(
            getattr(weighted, name),
            getattr(repeated, name),
            rtol=1e-10,
            atol=1e-12,
            err_msg=name,
        )
    # float weights scale-invariant: w and 2.5 w give the same fit
    scaled = quiet(GaussianMixture(3, **params).fit, X, sample_weight=2.5 * sw)
    assert_same_fit(weighted, scaled, rtol=1e-10)


two_threads = pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads to compare"
)


@two_threads
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_one_thread_equals_two_threads_bitwise(
    rng, covariance_type, dtype, no_serial_cutoff
):
    # 20k rows: several chunks; default kmeans init
    X = mixture_data(rng, n=20_000, d=3, n_components=4).astype(dtype)
    fits = []
    for n_jobs in (1, 2):
        gm = quiet(
            GaussianMixture(
                4,
                covariance_type=covariance_type,
                n_init=2,
                random_state=3,
                n_jobs=n_jobs,
            ).fit,
            X,
        )
        fits.append((gm, gm.predict_proba(X), gm.score_samples(X)))
    assert_same_fit(fits[0][0], fits[1][0])
    for a, b in zip(fits[0][1:], fits[1][1:]):
        assert a.tobytes() == b.tobytes()


@two_threads
def test_one_thread_equals_two_threads_bitwise_gemm_path(rng, no_serial_cutoff):
    X = mixture_data(rng, n=3000, d=16, n_components=3, covariance_type="diag")
    one = quiet(GaussianMixture(3, random_state=0, n_jobs=1, max_iter=20).fit, X)
    two = quiet(GaussianMixture(3, random_state=0, n_jobs=2, max_iter=20).fit, X)
    assert_same_fit(one, two)


@pytest.mark.parametrize("max_iter", [1, 3, 100])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_fit_predict_equals_fit_then_predict(rng, covariance_type, max_iter):
    X = mixture_data(rng, n=500, d=2, n_components=3, spread=1.5)
    params = {
        "covariance_type": covariance_type,
        "max_iter": max_iter,
        "random_state": 0,
    }
    labels = quiet(GaussianMixture(3, **params).fit_predict, X)
    gm = quiet(GaussianMixture(3, **params).fit, X)
    np.testing.assert_array_equal(labels, gm.predict(X))
    np.testing.assert_array_equal(labels, gm.predict_proba(X).argmax(1))


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_warm_start_continues(rng, covariance_type):
    X = mixture_data(rng, n=600, d=2, n_components=3, spread=1.2)
    cold = quiet(
        GaussianMixture(
            3, covariance_type=covariance_type, tol=0, max_iter=10, random_state=0
        ).fit,
        X,
    )
    warm = GaussianMixture(
        3,
        covariance_type=covariance_type,
        tol=0,
        max_iter=4,
        random_state=0,
        warm_start=True,
    )
    quiet(warm.fit, X)
    first = list(warm.lower_bounds_)
    warm.set_params(max_iter=6)
    quiet(warm.fit, X)
    np.testing.assert_allclose(
        first + warm.lower_bounds_, cold.lower_bounds_, rtol=1e-12
    )
    assert warm.n_iter_ == 6
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(warm, name), getattr(cold, name), rtol=1e-10)
    # warm start converges from its previous lower bound: tol large stops at once
    warm.set_params(max_iter=50, tol=1.0)
    quiet(warm.fit, X)
    assert warm.converged_ and warm.n_iter_ == 1


def test_warm_start_matches_sklearn(rng):
    X = mixture_data(rng, n=400, d=2, n_components=2, spread=1.2)
    start = sklearn_start(X, 2, "full")
    ests = [
        cls(2, warm_start=True, max_iter=3, **start)
        for cls in (SKGaussianMixture, GaussianMixture)
    ]
    for _ in range(3):
        for e in ests:
            quiet(e.fit, X)
        np.testing.assert_allclose(
            ests[1].lower_bounds_, ests[0].lower_bounds_, rtol=1e-10
        )
        np.testing.assert_allclose(ests[1].means_, ests[0].means_, rtol=1e-8)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_max_iter_zero_returns_the_start(rng, covariance_type):
    X = mixture_data(rng, n=300, d=2, n_components=2)
    start = sklearn_start(X, 2, covariance_type)
    fg = GaussianMixture(2, covariance_type=covariance_type, max_iter=0, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning for max_iter=0
        fg.fit(X)
    assert fg.n_iter_ == 0 and fg.converged_ is False
    assert fg.lower_bound_ == -np.inf and fg.lower_bounds_ == []
    np.testing.assert_array_equal(fg.weights_, start["weights_init"])
    np.testing.assert_array_equal(fg.means_, start["means_init"])
    np.testing.assert_allclose(fg.precisions_, start["precisions_init"], rtol=1e-12)
    prec_chol = ref.precision_cholesky(fg.covariances_, covariance_type)
    np.testing.assert_allclose(fg.precisions_cholesky_, prec_chol, rtol=1e-10)
    log_norm, resp = ref.e_step(X, fg.weights_, fg.means_, prec_chol, covariance_type)
    np.testing.assert_allclose(fg.score_samples(X), log_norm, rtol=1e-10)
    np.testing.assert_array_equal(fg.predict(X), resp.argmax(1))
    # without a user start: the initialisation itself, as scikit-learn's max_iter=0
    gm = GaussianMixture(
        2, covariance_type=covariance_type, max_iter=0, random_state=0
    ).fit(X)
    sk = SKGaussianMixture(
        2, covariance_type=covariance_type, max_iter=0, random_state=0
    ).fit(X)
    assert (
        gm.n_iter_ == sk.n_iter_ == 0 and gm.lower_bound_ == sk.lower_bound_ == -np.inf
    )
    assert np.all(np.isfinite(gm.score_samples(X)))
    # one more iteration from it (warm start) is the first EM step
    one = GaussianMixture(
        2, covariance_type=covariance_type, max_iter=1, random_state=0
    )
    quiet(one.fit, X)
    gm.set_params(warm_start=True, max_iter=1)
    quiet(gm.fit, X)
    np.testing.assert_allclose(gm.means_, one.means_, rtol=1e-12)


def test_convergence_warning_text_equals_sklearn(rng):
    X = mixture_data(rng, n=300, d=2, n_components=3, spread=1.0)
    messages = []
    for cls in (SKGaussianMixture, GaussianMixture):
        with pytest.warns(ConvergenceWarning) as record:
            gm = cls(3, max_iter=2, tol=0, random_state=0).fit(X)
        assert not gm.converged_ and gm.n_iter_ == 2
        messages.append(
            [str(w.message) for w in record if w.category is ConvergenceWarning]
        )
    expected = (
        "Best performing initialization did not converge. Try different init "
        "parameters, or increase max_iter, tol, or check for degenerate data."
    )
    assert messages[1] == messages[0] == [expected]


def test_no_convergence_warning_when_converged(rng):
    X = mixture_data(rng, n=300, d=2, n_components=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gm = GaussianMixture(2, random_state=0).fit(X)
    assert gm.converged_


@pytest.mark.parametrize("verbose", [1, 2])
def test_verbose_output_equals_sklearn(rng, capsys, verbose):
    X = mixture_data(rng, n=400, d=2, n_components=3, spread=1.5)
    start = sklearn_start(X, 3, "full")
    outputs = []
    for cls in (SKGaussianMixture, GaussianMixture):
        quiet(cls(3, verbose=verbose, verbose_interval=2, n_init=2, **start).fit, X)
        outputs.append(capsys.readouterr().out)
    if verbose == 2:  # timings and lower bounds differ in the last digits: mask numbers
        outputs = [re.sub(r"-?\d+\.\d+", "#", out) for out in outputs]
    assert outputs[1] == outputs[0]
    assert "Initialization 1" in outputs[1] and "  Iteration 2" in outputs[1]


def _copy_fitted(sk, fg):
    """Give a fastgmm estimator exactly the parameters of a fitted sklearn one."""
    for name in FITTED:
        setattr(fg, name, copy.deepcopy(getattr(sk, name)))
    return fg


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_sample_reproduces_sklearn(rng, covariance_type):
    X = mixture_data(rng, n=400, d=3, n_components=3)
    sk = quiet(
        SKGaussianMixture(3, covariance_type=covariance_type, random_state=5).fit, X
    )
    fg = _copy_fitted(
        sk, GaussianMixture(3, covariance_type=covariance_type, random_state=5)
    )
    for n in (1, 7, 500):
        Xs, ys = fg.sample(n)
        Xk, yk = sk.sample(n)
        assert Xs.shape == (n, 3) and ys.shape == (n,)
        assert Xs.dtype == Xk.dtype and ys.dtype == yk.dtype
        np.testing.assert_array_equal(ys, yk)
        np.testing.assert_array_equal(Xs, Xk)
    # a fitted fastgmm model samples from itself: component counts follow the weights
    own = quiet(
        GaussianMixture(3, covariance_type=covariance_type, random_state=5).fit, X
    )
    Xs, ys = own.sample(20_000)
    assert np.all(np.diff(ys) >= 0)
    np.testing.assert_allclose(
        np.bincount(ys, minlength=3) / 20_000, own.weights_, atol=0.015
    )
    for k in range(3):
        np.testing.assert_allclose(Xs[ys == k].mean(0), own.means_[k], atol=0.15)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_bic_aic_equal_sklearn(rng, covariance_type):
    X = mixture_data(rng, n=400, d=3, n_components=3)
    sk = quiet(
        SKGaussianMixture(3, covariance_type=covariance_type, random_state=0).fit, X
    )
    fg = _copy_fitted(sk, GaussianMixture(3, covariance_type=covariance_type))
    Xt = mixture_data(rng, n=100, d=3, n_components=2)
    for data in (X, Xt):
        assert fg._n_parameters() == sk._n_parameters()
        assert fg.bic(data) == pytest.approx(sk.bic(data), rel=1e-12)
        assert fg.aic(data) == pytest.approx(sk.aic(data), rel=1e-12)
        np.testing.assert_allclose(
            fg.score_samples(data), sk.score_samples(data), rtol=1e-12
        )
        np.testing.assert_allclose(
            fg.predict_proba(data), sk.predict_proba(data), atol=1e-12
        )
        assert fg.score(data) == pytest.approx(sk.score(data), rel=1e-12)


def test_degenerate_component_is_repaired_with_a_warning(rng):
    """Collapsed components (duplicates, reg_covar=0): scikit-learn raises its
    ill-defined-covariance ValueError; fastgmm repairs them with a warning."""
    X = np.repeat(rng.normal(size=(3, 2)), 5, axis=0)
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        SKGaussianMixture(3, reg_covar=0.0, random_state=0).fit(X)
    with pytest.warns(DegenerateComponentWarning, match="ill-defined covariance"):
        gm = GaussianMixture(3, reg_covar=0.0, random_state=0).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.all(np.isfinite(getattr(gm, name))), name
    assert np.isfinite(gm.lower_bound_)
    assert np.all(np.linalg.eigvalsh(gm.covariances_) > 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_degenerate_component_raises_sklearns_error_on_request(rng, dtype):
    """on_degenerate='raise': scikit-learn's ValueError and message (float32 hint
    included), whether the collapse happens at initialisation or during EM."""
    X = np.repeat(rng.normal(size=(3, 2)), 5, axis=0).astype(dtype)
    with pytest.raises(ValueError) as sk:
        SKGaussianMixture(3, reg_covar=0.0, random_state=0).fit(X)
    gm = GaussianMixture(3, reg_covar=0.0, random_state=0, on_degenerate="raise")
    with pytest.raises(ValueError) as fg:
        gm.fit(X)
    assert str(fg.value) == str(sk.value)
    assert not hasattr(gm, "means_")
    # a collapse during EM (the start is fine)
    X2 = np.vstack([X.astype(np.float64), [[50.0, 50.0], [60.0, 40.0]]]).astype(dtype)
    start = {
        "weights_init": [0.4, 0.3, 0.2, 0.1],
        "means_init": np.vstack([X2[[0, 5, 10]], [[55.0, 45.0]]]),
        "precisions_init": np.repeat(np.eye(2)[None], 4, axis=0),
    }
    errors = []
    for cls, extra in (
        (SKGaussianMixture, {}),
        (GaussianMixture, {"on_degenerate": "raise"}),
    ):
        with pytest.raises(ValueError) as info:
            cls(4, reg_covar=0.0, **start, **extra).fit(X2)
        errors.append(str(info.value))
    assert errors[1] == errors[0]
    assert ("float64 data instead of float32" in errors[1]) == (dtype == np.float32)


# ----------------------------------------------------------------------------- errors
def _X(rng_seed=0, n=20, d=2):
    return np.random.default_rng(rng_seed).normal(size=(n, d))


def _with(value):
    X = _X()
    X[3, 1] = value
    return X


X_ERRORS = [
    ("nan", lambda: _with(np.nan), {}, ValueError, "Input X contains NaN"),
    ("inf", lambda: _with(np.inf), {}, ValueError, "Input X contains infinity"),
    ("1d", lambda: _X()[:, 0], {}, ValueError, "Expected 2D array, got 1D array"),
    ("3d", lambda: _X()[None], {}, ValueError, "Found array with dim 3"),
    ("empty", lambda: np.empty((0, 2)), {}, ValueError, r"0 sample\(s\)"),
    ("no features", lambda: np.empty((5, 0)), {}, ValueError, r"0 feature\(s\)"),
    ("one sample", lambda: _X()[:1], {}, ValueError, "a minimum of 2 is required"),
    ("complex", lambda: _X() + 1j, {}, ValueError, "Complex data not supported"),
    (
        "strings",
        lambda: np.array([["a", "b"], ["c", "d"]]),
        {},
        ValueError,
        "could not convert string",
    ),
    ("sparse", lambda: sparse.csr_matrix(_X()), {}, TypeError, "Sparse data"),
    (
        "n_samples < n_components",
        lambda: _X()[:3],
        {"n_components": 4},
        ValueError,
        r"Expected n_samples >= n_components but got n_components = 4, n_samples = 3",
    ),
]

PARAM_ERRORS = [
    ("n_components=0", {"n_components": 0}, "n_components"),
    ("n_components=1.5", {"n_components": 1.5}, "n_components"),
    ("n_components='2'", {"n_components": "2"}, "n_components"),
    ("tol=-1", {"tol": -1.0}, "tol"),
    ("tol='a'", {"tol": "a"}, "tol"),
    ("reg_covar=-1e-6", {"reg_covar": -1e-6}, "reg_covar"),
    ("reg_covar=None", {"reg_covar": None}, "reg_covar"),
    ("max_iter=-1", {"max_iter": -1}, "max_iter"),
    ("max_iter=2.5", {"max_iter": 2.5}, "max_iter"),
    ("n_init=0", {"n_init": 0}, "n_init"),
    ("n_init=None", {"n_init": None}, "n_init"),
    ("init_params='kmeans++'", {"init_params": "kmeans++"}, "init_params"),
    ("init_params=None", {"init_params": None}, "init_params"),
    ("covariance_type='Full'", {"covariance_type": "Full"}, "covariance_type"),
    ("covariance_type=1", {"covariance_type": 1}, "covariance_type"),
    ("verbose_interval=0", {"verbose_interval": 0}, "verbose_interval"),
    ("verbose_interval=1.0", {"verbose_interval": 1.0}, "verbose_interval"),
    ("verbose=-1", {"verbose": -1}, "verbose"),
    ("warm_start=1", {"warm_start": 1}, "warm_start"),
    ("random_state='0'", {"random_state": "0"}, "random_state"),
]

INIT_ERRORS = [
    (
        "weights_init shape",
        {"weights_init": [1.0]},
        r"'weights' should have the shape of \(2,\), but got \(1,\)",
    ),
    (
        "weights_init 2d",
        {"weights_init": [[0.5, 0.5]]},
        r"'weights' should have the shape",
    ),
    (
        "weights_init sum",
        {"weights_init": [0.3, 0.3]},
        r"'weights' should be normalized",
    ),
    (
        "weights_init range",
        {"weights_init": [1.5, -0.5]},
        r"'weights' should be in the range \[0, 1\]",
    ),
    ("weights_init nan", {"weights_init": [np.nan, 0.5]}, "Input contains NaN"),
    (
        "means_init shape",
        {"means_init": np.zeros((2, 3))},
        r"'means' should have the shape of \(2, 2\), but got \(2, 3\)",
    ),
    ("means_init 1d", {"means_init": np.zeros(2)}, r"'means' should have the shape"),
    (
        "means_init inf",
        {"means_init": [[0.0, np.inf], [1.0, 1.0]]},
        "Input contains infinity",
    ),
    (
        "precisions full shape",
        {"precisions_init": np.ones((2, 3, 3))},
        r"'full precision' should have the shape of \(2, 2, 2\)",
    ),
    (
        "precisions full 2d",
        {"precisions_init": np.eye(2)},
        r"'full precision' should have the shape",
    ),
    (
        "precisions full not PD",
        {"precisions_init": np.array([np.eye(2), -np.eye(2)])},
        "'full precision' should be symmetric, positive-definite",
    ),
    (
        "precisions full asymmetric",
        {"precisions_init": np.array([np.eye(2), [[1.0, 0.5], [0.0, 1.0]]])},
        "'full precision' should be symmetric, positive-definite",
    ),
    (
        "precisions tied shape",
        {"covariance_type": "tied", "precisions_init": np.eye(3)},
        r"'tied precision' should have the shape of \(2, 2\)",
    ),
    (
        "precisions tied singular",
        {"covariance_type": "tied", "precisions_init": np.zeros((2, 2))},
        "'tied precision' should be symmetric, positive-definite",
    ),
    (
        "precisions diag shape",
        {"covariance_type": "diag", "precisions_init": np.ones((2, 3))},
        r"'diag precision' should have the shape of \(2, 2\)",
    ),
    (
        "precisions diag zero",
        {
            "covariance_type": "diag",
            "precisions_init": np.array([[1.0, 1.0], [0.0, 1.0]]),
        },
        "'diag precision' should be positive",
    ),
    (
        "precisions spherical shape",
        {"covariance_type": "spherical", "precisions_init": np.ones(3)},
        r"'spherical precision' should have the shape of \(2,\)",
    ),
    (
        "precisions spherical negative",
        {"covariance_type": "spherical", "precisions_init": [-1.0, 1.0]},
        "'spherical precision' should be positive",
    ),
    (
        "precisions spherical nan",
        {"covariance_type": "spherical", "precisions_init": [np.nan, 1.0]},
        "Input contains NaN",
    ),
]


def _option_sets(message):
    return [set(m.split(", ")) for m in re.findall(r"\{([^{}]*)\}", message)]


def _assert_same_error(fg_err, sk_err):
    """Same class and message; an option set may hold more than scikit-learn's only
    where fastgmm accepts more (covariance_type: mclust's names and models;
    init_params: the robust starts)."""
    assert type(fg_err) is type(sk_err)
    fg, sk = _normalise(str(fg_err)), _normalise(str(sk_err))
    if fg == sk:
        return
    blank = lambda m: re.sub(r"\{[^{}]*\}", "{}", m)  # noqa: E731
    assert blank(fg) == blank(sk), (fg, sk)
    extended = {"'covariance_type'": set(cov.names()), "'init_params'": set(METHODS)}
    (name,) = [name for name in extended if name in fg]
    for mine, theirs in zip(_option_sets(fg), _option_sets(sk)):
        assert mine >= theirs
        assert {o.strip("'") for o in mine} == extended[name]


@pytest.mark.parametrize(
    "make_X, params, exc, match",
    [pytest.param(*case[1:], id=case[0]) for case in X_ERRORS],
)
def test_bad_X(make_X, params, exc, match):
    fg = fit_error(GaussianMixture, make_X(), params)
    assert isinstance(fg, exc) and re.search(match, str(fg)), repr(fg)
    _assert_same_error(fg, fit_error(SKGaussianMixture, make_X(), params))


@pytest.mark.parametrize(
    "params, name", [pytest.param(*c[1:], id=c[0]) for c in PARAM_ERRORS]
)
def test_bad_parameter(params, name):
    fg = fit_error(GaussianMixture, _X(), params)
    assert isinstance(fg, InvalidParameterError)
    assert f"The '{name}' parameter of GaussianMixture must be" in str(fg)
    _assert_same_error(fg, fit_error(SKGaussianMixture, _X(), params))


@pytest.mark.parametrize(
    "name, value",
    [("n_components", True), ("max_iter", False), ("n_init", True),
     ("verbose_interval", True), ("top_components", True)],
)  # fmt: skip
def test_bool_counts_are_refused(name, value):
    """scikit-learn's integer intervals take bools (bool is an Integral), and
    n_components=True then failed inside k-means++ with a TypeError about sequences."""
    params = {"covariance_type": "diag", name: value}
    fg = fit_error(GaussianMixture, _X(), params)
    assert isinstance(fg, InvalidParameterError)
    assert f"The '{name}' parameter of GaussianMixture must be an int" in str(fg)
    assert f"Got {value!r} instead" in str(fg)


@pytest.mark.parametrize(
    "params, match", [pytest.param(*c[1:], id=c[0]) for c in INIT_ERRORS]
)
def test_bad_user_start(params, match):
    params = dict(n_components=2, **params)
    fg = fit_error(GaussianMixture, _X(), params)
    assert isinstance(fg, ValueError) and re.search(match, str(fg)), repr(fg)
    _assert_same_error(fg, fit_error(SKGaussianMixture, _X(), params))


@pytest.mark.parametrize(
    "sample_weight, match",
    [
        pytest.param(
            -np.ones(20),
            "Negative values in data passed to `sample_weight`",
            id="negative",
        ),
        pytest.param(
            np.r_[np.nan, np.ones(19)], "sample_weight contains NaN", id="nan"
        ),
        pytest.param(
            np.r_[np.inf, np.ones(19)], "sample_weight contains infinity", id="inf"
        ),
        pytest.param(
            np.ones(3), r"sample_weight.shape == \(3,\), expected \(20,\)", id="length"
        ),
        pytest.param(np.ones((20, 1)), "Sample weights must be 1D", id="2d"),
        pytest.param(np.zeros(20), "at least one non-zero", id="all zero"),
        pytest.param(np.array(["a"] * 20), "could not convert string", id="strings"),
    ],
)
def test_bad_sample_weight(sample_weight, match):
    err = fit_error(GaussianMixture, _X(), {"n_components": 2}, sample_weight)
    assert isinstance(err, ValueError) and re.search(match, str(err)), repr(err)


@pytest.mark.parametrize(
    "n_jobs, exc, match",
    [
        (0, ValueError, "n_jobs == 0"),
        (1.5, InvalidParameterError, "The 'n_jobs' parameter of GaussianMixture"),
        ("2", InvalidParameterError, "The 'n_jobs' parameter of GaussianMixture"),
    ],
)
def test_bad_n_jobs(n_jobs, exc, match):
    err = fit_error(GaussianMixture, _X(), {"n_jobs": n_jobs})
    assert isinstance(err, exc) and re.search(match, str(err)), repr(err)


@pytest.mark.parametrize("n_jobs", [None, 1, 2, -1, -2, 64])
def test_valid_n_jobs_give_the_same_fit(n_jobs, no_serial_cutoff):
    X = _X(n=200)
    base = GaussianMixture(2, random_state=0, n_jobs=1).fit(X)
    assert_same_fit(GaussianMixture(2, random_state=0, n_jobs=n_jobs).fit(X), base)


@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "score_samples", "score"]
)
def test_predict_errors_equal_sklearn(method):
    X = _X()
    fitted = [
        cls(2, random_state=0).fit(X) for cls in (SKGaussianMixture, GaussianMixture)
    ]
    for bad, exc in [
        (_X(n=5, d=3), ValueError),  # different number of features
        (_X(n=5)[:, 0], ValueError),  # 1-D
        (_with(np.nan), ValueError),
    ]:
        errs = []
        for est in fitted:
            with pytest.raises(exc) as info:
                getattr(est, method)(bad)
            errs.append(info.value)
        _assert_same_error(errs[1], errs[0])
    with pytest.raises(
        ValueError, match="X has 3 features, but GaussianMixture is expecting 2"
    ):
        getattr(fitted[1], method)(_X(n=5, d=3))


@pytest.mark.parametrize(
    "method, args",
    [
        ("predict", 1),
        ("predict_proba", 1),
        ("score_samples", 1),
        ("score", 1),
        ("bic", 1),
        ("aic", 1),
        ("sample", 0),
    ],
)
def test_unfitted_raises_not_fitted(method, args):
    errs = []
    for cls in (SKGaussianMixture, GaussianMixture):
        with pytest.raises(NotFittedError) as info:
            getattr(cls(), method)(*([_X()] if args else []))
        errs.append(info.value)
    _assert_same_error(errs[1], errs[0])
    assert "not fitted yet" in str(errs[1])


def test_sample_zero_error_equals_sklearn(rng):
    X = _X()
    errs = []
    for cls in (SKGaussianMixture, GaussianMixture):
        with pytest.raises(ValueError) as info:
            cls(2, random_state=0).fit(X).sample(0)
        errs.append(info.value)
    _assert_same_error(errs[1], errs[0])
    assert "The sampling requires at least one sample" in str(errs[1])


FAILING_REFITS = [
    pytest.param(lambda X: _with(np.nan), {}, None, id="nan X"),
    pytest.param(
        lambda X: X[:2], {"n_components": 3}, None, id="n_samples < n_components"
    ),
    pytest.param(
        lambda X: X, {"weights_init": [0.2, 0.2, 0.2]}, None, id="bad weights_init"
    ),
    pytest.param(
        lambda X: X, {"covariance_type": "bad"}, None, id="bad covariance_type"
    ),
    pytest.param(lambda X: X, {}, -np.ones(20), id="negative weights"),
    pytest.param(
        lambda X: _X(n=20, d=3),
        {"means_init": np.zeros((3, 2))},
        None,
        id="means vs new d",
    ),
]


@pytest.mark.parametrize("make_X, params, sample_weight", FAILING_REFITS)
def test_failed_fit_leaves_fitted_model_unchanged(make_X, params, sample_weight):
    X = _X()
    gm = GaussianMixture(3, random_state=0).fit(X)
    before = fitted_state(gm)
    proba = gm.predict_proba(X)
    original = gm.get_params()
    gm.set_params(**params)
    kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
    with pytest.raises((ValueError, TypeError)):
        gm.fit(make_X(X), **kwargs)
    gm.set_params(**original)
    after = fitted_state(gm)
    assert after.keys() == before.keys()
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    np.testing.assert_array_equal(gm.predict_proba(X), proba)


def test_fit_failing_during_em_leaves_fitted_model_unchanged(monkeypatch):
    """A failure after validation and initialisation (here: in the 2nd EM step) on
    data with another number of features restores every fitted attribute."""
    X = _X()
    gm = GaussianMixture(2, random_state=0).fit(X)
    before = fitted_state(gm)
    calls = []
    real_step = fastgmm.engine.em.em_step

    def failing_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise FloatingPointError("injected failure")
        return real_step(*args, **kwargs)

    monkeypatch.setattr(fastgmm.engine.em, "em_step", failing_step)
    with pytest.raises(FloatingPointError, match="injected"):
        gm.fit(_X(n=30, d=3))
    assert len(calls) == 2
    after = fitted_state(gm)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    gm.predict(X)  # still a 2-feature model


# ----------------------------------------------------- awkward-but-valid input
def _blob_data():
    rng = np.random.default_rng(11)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, -2.0], [1.0, 6.0, 3.0]])
    return np.vstack([c + rng.normal(size=(120, 3)) for c in centres])


def _readonly(X):
    X = X.copy()
    X.setflags(write=False)
    return X


AWKWARD = [
    pytest.param(lambda X: np.asfortranarray(X), lambda X: X, id="fortran order"),
    pytest.param(
        lambda X: np.ascontiguousarray(X[::-1])[::-1],
        lambda X: X,
        id="negative strides",
    ),
    pytest.param(
        lambda X: X[::-1, ::-1],
        lambda X: np.ascontiguousarray(X[::-1, ::-1]),
        id="reversed view",
    ),
    pytest.param(
        lambda X: np.hstack([X[:, :1] * 0, X, X[:, :1]])[:, 1:4],
        lambda X: X,
        id="column slice",
    ),
    pytest.param(
        lambda X: X[::2], lambda X: np.ascontiguousarray(X[::2]), id="row step"
    ),
    pytest.param(_readonly, lambda X: X, id="read-only"),
    pytest.param(lambda X: X.tolist(), lambda X: X, id="list of lists"),
    pytest.param(
        lambda X: np.round(X * 10).astype(np.int64),
        lambda X: np.round(X * 10),
        id="int64",
    ),
    pytest.param(
        lambda X: np.round(X * 10).astype(np.int32),
        lambda X: np.round(X * 10),
        id="int32",
    ),
    pytest.param(
        lambda X: np.asfortranarray(X.astype(np.float32)),
        lambda X: X.astype(np.float32),
        id="float32 fortran",
    ),
]


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
@pytest.mark.parametrize("awkward, clean", AWKWARD)
def test_awkward_input_equals_clean_input(awkward, clean, covariance_type):
    X = _blob_data()
    params = {"covariance_type": covariance_type, "random_state": 0}
    a = GaussianMixture(3, **params).fit(awkward(X))
    c = GaussianMixture(3, **params).fit(clean(X))
    assert_same_fit(a, c)
    Xc = clean(X)
    np.testing.assert_array_equal(a.predict_proba(awkward(X)), c.predict_proba(Xc))
    np.testing.assert_array_equal(a.score_samples(awkward(X)), c.score_samples(Xc))


def test_read_only_input_uses_the_same_kernels():
    """Read-only and writable input compile no second copy of the kernels (a
    different compilation may round a vectorised sum differently): inputs reach
    the kernels typed read-only, one specialisation for every X dtype."""
    from numba import types

    from fastgmm.kernels.kmeans import label_stats, lloyd_run
    from fastgmm.kernels.passes import mixture_pass

    X = _blob_data()
    signatures = {}
    kmeans_kernels = (lloyd_run, label_stats)  # one specialisation per X dtype
    for data in (X, _readonly(X), X.astype(np.float32)):
        gm = GaussianMixture(3, random_state=0).fit(data)
        gm.predict_proba(data)
        # read-only weights and starting parameters too
        start = {k: _readonly(v) for k, v in sklearn_start(X, 3, "full").items()}
        weights = _readonly(np.ones(len(X)))
        GaussianMixture(3, max_iter=2, **start).fit(data, sample_weight=weights)
        for kernel in (mixture_pass, *kmeans_kernels):
            key = (kernel, data.dtype) if kernel in kmeans_kernels else kernel
            signatures.setdefault(key, set(kernel.signatures))
            if kernel is mixture_pass or data.dtype == np.float64:
                assert set(kernel.signatures) == signatures[key]  # nothing new
    assert len(lloyd_run.signatures) == 2  # float64 and float32
    for kernel in (mixture_pass, *kmeans_kernels):
        for signature in kernel.signatures:
            inputs = [signature[i] for i in kernel.input_positions]
            arrays = [a for t in inputs for a in getattr(t, "types", [t])]
            assert arrays and all(not a.mutable for a in arrays)
    for signature in mixture_pass.signatures:
        assert isinstance(signature[0], types.BaseTuple)  # the float pair


def test_input_array_is_not_modified():
    X = _blob_data()
    X_f = np.asfortranarray(X)
    copies = X.copy(), X_f.copy()
    sw = np.ones(len(X))
    GaussianMixture(3, random_state=0).fit(X, sample_weight=sw)
    GaussianMixture(3, random_state=0).fit(X_f)
    np.testing.assert_array_equal(X, copies[0])
    np.testing.assert_array_equal(X_f, copies[1])
    np.testing.assert_array_equal(sw, 1.0)


def test_bool_input_equals_float_input(rng):
    X = rng.random((300, 4)) < [0.2, 0.5, 0.7, 0.9]
    params = {"covariance_type": "diag", "reg_covar": 1e-3, "random_state": 0}
    a = quiet(GaussianMixture(2, **params).fit, X)
    c = quiet(GaussianMixture(2, **params).fit, X.astype(np.float64))
    assert_same_fit(a, c)


def test_pandas_dataframe_keeps_feature_names():
    pd = pytest.importorskip("pandas")
    X = _blob_data()
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    gm = GaussianMixture(3, random_state=0).fit(df)
    clean = GaussianMixture(3, random_state=0).fit(X)
    assert_same_fit(gm, clean)
    np.testing.assert_array_equal(gm.feature_names_in_, ["a", "b", "c"])
    assert not hasattr(clean, "feature_names_in_")
    np.testing.assert_array_equal(gm.predict(df), clean.predict(X))
    # the same warnings and errors as scikit-learn for mismatched names
    sk = SKGaussianMixture(3, random_state=0).fit(df)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        gm.predict(X)
    renamed = df.rename(columns={"a": "z"})
    errs = []
    for est in (sk, gm):
        with pytest.raises(ValueError) as info:
            est.predict(renamed)
        errs.append(info.value)
    _assert_same_error(errs[1], errs[0])
    # a float32 DataFrame stays float32
    gm32 = GaussianMixture(3, random_state=0).fit(df.astype(np.float32))
    assert gm32.means_.dtype == np.float32


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_single_feature(rng, covariance_type):
    X = np.concatenate([rng.normal(0, 1, 300), rng.normal(5, 0.5, 200)])[:, None]
    start = sklearn_start(X, 2, covariance_type)
    fg = GaussianMixture(2, covariance_type=covariance_type, **start).fit(X)
    sk = SKGaussianMixture(2, covariance_type=covariance_type, **start).fit(X)
    assert fg.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-8)
    assert fg.n_iter_ == sk.n_iter_
    np.testing.assert_allclose(np.sort(fg.means_[:, 0]), [0.0, 5.0], atol=0.2)
    np.testing.assert_allclose(fg.score_samples(X), sk.score_samples(X), rtol=1e-6)
    default = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    np.testing.assert_allclose(np.sort(default.means_[:, 0]), [0.0, 5.0], atol=0.2)


def test_single_feature_covariance_types_agree(rng):
    X = np.concatenate([rng.normal(0, 1, 300), rng.normal(5, 0.5, 200)])[:, None]
    start = sklearn_start(X, 2, "full")
    p = start["precisions_init"][:, 0, 0]
    fits = {
        "full": GaussianMixture(2, **start).fit(X),
        "diag": GaussianMixture(
            2,
            covariance_type="diag",
            weights_init=start["weights_init"],
            means_init=start["means_init"],
            precisions_init=p[:, None],
        ).fit(X),
        "spherical": GaussianMixture(
            2,
            covariance_type="spherical",
            weights_init=start["weights_init"],
            means_init=start["means_init"],
            precisions_init=p,
        ).fit(X),
    }
    lb = fits["full"].lower_bound_
    for name, gm in fits.items():
        assert gm.lower_bound_ == pytest.approx(lb, rel=1e-12), name
        np.testing.assert_allclose(gm.means_, fits["full"].means_, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_n_samples_equal_n_components(rng, covariance_type):
    X = rng.normal(size=(5, 2)) * 10
    fg = GaussianMixture(5, covariance_type=covariance_type, random_state=0).fit(X)
    sk = SKGaussianMixture(5, covariance_type=covariance_type, random_state=0).fit(X)
    # every point gets its own component
    assert sorted(fg.predict(X)) == list(range(5))
    np.testing.assert_allclose(
        np.sort(fg.means_, axis=0), np.sort(X, axis=0), atol=1e-6
    )
    assert fg.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-6)
    assert np.all(np.isfinite(fg.score_samples(X)))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_one_component_is_closed_form(rng, covariance_type, weighted):
    X = (
        rng.normal(size=(500, 3))
        @ np.array([[2.0, 0, 0], [0.5, 1.0, 0], [0.2, -0.3, 0.5]])
        + 4.0
    )
    sw = rng.uniform(0, 2, len(X)) if weighted else np.ones(len(X))
    gm = GaussianMixture(1, covariance_type=covariance_type, reg_covar=1e-4).fit(
        X, sample_weight=sw if weighted else None
    )
    mean = np.average(X, axis=0, weights=sw)
    cov = np.cov(X.T, aweights=sw, bias=True) + 1e-4 * np.eye(3)
    expected = {
        "full": cov[None],
        "tied": cov,
        "diag": np.diag(cov)[None],
        "spherical": np.diag(cov).mean()[None],
    }[covariance_type]
    np.testing.assert_allclose(gm.means_, mean[None], rtol=1e-12)
    np.testing.assert_allclose(gm.covariances_, expected, rtol=1e-10)
    np.testing.assert_allclose(gm.weights_, [1.0])
    assert gm.converged_ and gm.n_iter_ == 2  # the 2nd iteration changes nothing


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_offset_1e8_translates_means(rng, covariance_type):
    X = mixture_data(rng, n=1000, d=2, n_components=3)
    start = sklearn_start(X, 3, covariance_type)
    shifted_start = dict(start, means_init=start["means_init"] + 1e8)
    base = GaussianMixture(3, covariance_type=covariance_type, **start).fit(X)
    far = GaussianMixture(3, covariance_type=covariance_type, **shifted_start).fit(
        X + 1e8
    )
    np.testing.assert_allclose(far.means_ - 1e8, base.means_, atol=1e-6)
    np.testing.assert_allclose(far.covariances_, base.covariances_, rtol=1e-6)
    np.testing.assert_allclose(far.weights_, base.weights_, rtol=1e-6)
    assert far.lower_bound_ == pytest.approx(base.lower_bound_, rel=1e-6)
    np.testing.assert_array_equal(far.predict(X + 1e8), base.predict(X))
    # default initialisation: the same clustering, far from the origin
    d = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    f = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X + 1e8)
    np.testing.assert_allclose(f.means_ - 1e8, d.means_, atol=1e-5)
    np.testing.assert_allclose(f.covariances_, d.covariances_, rtol=1e-5)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_float32_far_from_origin(rng, covariance_type):
    """float32 data at 1e4 +- 1: statistics about the means keep the variance."""
    X = (mixture_data(rng, n=2000, d=2, n_components=2, spread=4.0) + 1e4).astype(
        np.float32
    )
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    g64 = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(
        X.astype(np.float64)
    )
    np.testing.assert_allclose(gm.covariances_, g64.covariances_, rtol=1e-5)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_constant_column_with_reg_covar(rng, covariance_type):
    X = mixture_data(rng, n=500, d=2, n_components=2)
    X = np.hstack([X, np.full((len(X), 1), 3.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateComponentWarning)
        gm = quiet(
            GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit, X
        )
    var = {
        "full": lambda: gm.covariances_[:, 2, 2],
        "tied": lambda: gm.covariances_[2, 2],
        "diag": lambda: gm.covariances_[:, 2],
        "spherical": lambda: None,
    }[covariance_type]()
    if var is not None:
        np.testing.assert_allclose(var, 1e-6, rtol=1e-6)
    np.testing.assert_allclose(gm.means_[:, 2], 3.0, rtol=1e-14)
    start = sklearn_start(X, 2, covariance_type)
    sk = quiet(SKGaussianMixture(2, covariance_type=covariance_type, **start).fit, X)
    fg = quiet(GaussianMixture(2, covariance_type=covariance_type, **start).fit, X)
    assert fg.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-6)


def test_random_from_data_never_starts_at_zero_weight_rows(rng):
    X = rng.normal(size=(200, 2))
    w = np.zeros(200)
    w[:6] = 1.0
    for seed in range(5):
        gm = GaussianMixture(
            3, init_params="random_from_data", random_state=seed, max_iter=0
        ).fit(X, sample_weight=w)
        for mean in gm.means_:
            assert np.any(np.all(np.isclose(X[:6], mean), axis=1))
