"""fastgmm.BayesianGaussianMixture: scikit-learn's estimator checks, its EM path from
the same start, and what fastgmm adds (sample weights, float32, threads, streamed and
Dask data, tol_per_sample, pruning, persistence, inspection, the CLI)."""

import copy
import re
import warnings

import numpy as np
import pytest
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SKBayesian
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastgmm import BayesianGaussianMixture
from fastgmm.engine.score import score
from fastgmm.model.params import from_fitted

from .._same_fit import mixture_data

COV_TYPES = ("full", "tied", "diag", "spherical")
PRIORS = ("dirichlet_process", "dirichlet_distribution")
POSTERIOR = (
    "weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_",
    "mean_precision_", "degrees_of_freedom_",
)  # fmt: skip


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def assert_same_path(fg, sk, rtol=1e-10):
    """Same iterations, lower bounds to rtol, and posterior to ~rtol."""
    assert fg.n_iter_ == sk.n_iter_ and fg.converged_ == sk.converged_
    sk_bounds = np.ravel(sk.lower_bounds_)  # sklearn's tied bounds are (1,) arrays
    assert rel(fg.lower_bounds_, sk_bounds) <= rtol
    assert fg.lower_bound_ == pytest.approx(
        float(np.ravel(sk.lower_bound_)[0]), rel=rtol
    )
    for name in POSTERIOR:
        assert rel(getattr(fg, name), getattr(sk, name)) <= 100 * rtol, name
    assert (
        rel(np.asarray(fg.weight_concentration_), np.asarray(sk.weight_concentration_))
        <= 100 * rtol
    )


@pytest.fixture
def X(rng):
    return mixture_data(rng, n=1500)


def start_of(X, **params):
    """An estimator holding its initial posterior (max_iter=0) on X, ready to continue
    with warm_start: a start shared by every fit compared."""
    est = BayesianGaussianMixture(max_iter=0, random_state=0, **params).fit(X)
    return est.set_params(warm_start=True)


def continue_from(start, X, sample_weight=None, **params):
    est = copy.deepcopy(start).set_params(**params)
    return quiet(est.fit, X, sample_weight=sample_weight)


# ---------------------------------------------------------------- estimator checks
def _expected_failed_checks(est):
    if est.n_components == 1:
        return {}
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "the initialisation draws by row index (as GaussianMixture's); from a "
            "fixed start integer weights equal repeated rows exactly: see "
            "test_integer_weights_equal_repeated_rows"
        )
    }


@parametrize_with_checks(
    [
        BayesianGaussianMixture(),
        BayesianGaussianMixture(
            n_components=2,
            covariance_type="diag",
            weight_concentration_prior_type="dirichlet_distribution",
            init_params="random_from_data",
            random_state=0,
            max_iter=5,
            n_init=2,
        ),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# -------------------------------------------------------- scikit-learn's EM path
def _iris():
    return datasets.load_iris().data


#: the fast tier runs the synthetic set with random starts; the slow tier the rest
SLOW = pytest.mark.slow
PATH_CASES = [
    ("blobs", "random"),
    pytest.param("blobs", "random_from_data", marks=SLOW),
    pytest.param("iris", "random", marks=SLOW),
    pytest.param("iris", "random_from_data", marks=SLOW),
]


@pytest.mark.parametrize("dataset, init_params", PATH_CASES)
@pytest.mark.parametrize("prior_type", PRIORS)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_same_path_as_sklearn(X, covariance_type, prior_type, dataset, init_params):
    """From the same start (the same seeded draws) the same iterations: lower
    bounds to 1e-10 relative, the same n_iter, convergence and labels (tied from
    random rows with the Dirichlet process runs all 500 iterations in both)."""
    data, k = (X, 6) if dataset == "blobs" else (_iris(), 5)
    params = dict(
        n_components=k, covariance_type=covariance_type, random_state=3,
        weight_concentration_prior_type=prior_type, init_params=init_params,
        max_iter=500,
    )  # fmt: skip
    sk = quiet(SKBayesian(**params).fit, data)
    fg = quiet(BayesianGaussianMixture(**params).fit, data)
    assert_same_path(fg, sk)
    np.testing.assert_array_equal(fg.predict(data), sk.predict(data))


KMEANS_CASES = [
    ("full", "dirichlet_process"),
    *[
        pytest.param(c, p, marks=SLOW)
        for c in COV_TYPES
        for p in PRIORS
        if (c, p) != ("full", "dirichlet_process")
    ],
]


@pytest.mark.parametrize("covariance_type, prior_type", KMEANS_CASES)
def test_same_path_from_sklearns_kmeans_start(X, covariance_type, prior_type):
    """scikit-learn's own k-means start (its posterior after max_iter=0), continued
    by fastgmm with warm_start, follows scikit-learn's fit step for step."""
    params = dict(
        n_components=5, covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type, random_state=0,
    )  # fmt: skip
    sk0 = SKBayesian(max_iter=0, **params).fit(X)
    fg = BayesianGaussianMixture(warm_start=True, **params)
    for name in (*POSTERIOR, "weight_concentration_", "n_features_in_"):
        setattr(fg, name, copy.deepcopy(getattr(sk0, name)))
    fg.converged_, fg.lower_bound_ = False, -np.inf
    sk = quiet(SKBayesian(**params).fit, X)
    assert_same_path(quiet(fg.fit, X), sk)


@pytest.mark.parametrize("prior_type", PRIORS)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_scoring_a_sklearn_model_equals_sklearn(X, covariance_type, prior_type):
    """The variational E-step (per-component constants on the Gaussian kernels)
    scores scikit-learn's fitted model as scikit-learn does."""
    sk = quiet(
        SKBayesian(
            n_components=4, covariance_type=covariance_type, random_state=0,
            weight_concentration_prior_type=prior_type, max_iter=20,
        ).fit,
        X,
    )  # fmt: skip
    lse, resp, labels = score(X, from_fitted(sk), lse=True, resp=True, labels=True)
    np.testing.assert_allclose(lse, sk.score_samples(X), rtol=1e-12)
    np.testing.assert_allclose(resp, sk.predict_proba(X), rtol=1e-9, atol=1e-15)
    np.testing.assert_array_equal(labels, sk.predict(X))


@pytest.mark.parametrize("verbose", [1, 2])
def test_verbose_output_equals_sklearn(X, capsys, verbose):
    params = dict(
        n_components=3, init_params="random", random_state=0, verbose=verbose,
        verbose_interval=2, n_init=2, max_iter=12,
    )  # fmt: skip
    outputs = []
    for cls in (SKBayesian, BayesianGaussianMixture):
        quiet(cls(**params).fit, X)
        outputs.append(capsys.readouterr().out)
    if verbose == 2:  # timings differ: mask numbers
        outputs = [re.sub(r"-?\d+\.\d+", "#", out) for out in outputs]
    assert outputs[1] == outputs[0] and "  Iteration 2" in outputs[1]


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_sample_equals_sklearn(X, covariance_type):
    params = dict(n_components=3, covariance_type=covariance_type, random_state=5)
    fg = quiet(BayesianGaussianMixture(**params).fit, X)
    sk = SKBayesian(**params)
    for name in (*POSTERIOR, "weight_concentration_"):
        setattr(sk, name, copy.deepcopy(getattr(fg, name)))
    a, la = fg.sample(500)
    b, lb = sk.sample(500)
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_allclose(a, b, rtol=1e-12)


# ------------------------------------------------------------------ beyond sklearn
@pytest.mark.parametrize("prior_type", PRIORS)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_integer_weights_equal_repeated_rows(rng, X, covariance_type, prior_type):
    w = rng.integers(0, 4, size=X.shape[0])
    params = dict(covariance_type=covariance_type, n_components=4)
    start = start_of(X, weight_concentration_prior_type=prior_type, **params)
    a = continue_from(start, X, w.astype(float), max_iter=15, tol=0)
    b = continue_from(start, np.repeat(X, w, axis=0), max_iter=15, tol=0)
    for name in ("mean_prior_", "covariance_prior_", *POSTERIOR):
        assert rel(getattr(a, name), getattr(b, name)) <= 1e-9, name
    assert rel(a.lower_bounds_, b.lower_bounds_) <= 1e-10


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_float32_stays_float32_and_close_to_float64(X, covariance_type):
    params = dict(
        n_components=3, covariance_type=covariance_type, random_state=0,
        init_params="random_from_data", max_iter=8, tol=0,
    )  # fmt: skip
    a = quiet(BayesianGaussianMixture(**params).fit, X.astype(np.float32))
    b = quiet(BayesianGaussianMixture(**params).fit, X)
    for name in POSTERIOR[:5]:
        assert getattr(a, name).dtype == np.float32, name
        assert rel(getattr(a, name), getattr(b, name)) <= 1e-4, name
    assert a.predict_proba(X.astype(np.float32)).dtype == np.float32
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=1e-6)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_one_thread_equals_two_threads_bitwise(X, covariance_type):
    params = dict(n_components=4, covariance_type=covariance_type, random_state=0)
    one = quiet(BayesianGaussianMixture(n_jobs=1, **params).fit, X)
    two = quiet(BayesianGaussianMixture(n_jobs=2, **params).fit, X)
    for name in (*POSTERIOR, "lower_bounds_"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_streamed_fits_equal_in_memory(tmp_path, X, covariance_type):
    """A memmap and a callable of blocks give the in-memory fit from the same start
    (priors from the whole data)."""
    start = start_of(X, covariance_type=covariance_type, n_components=3)
    path = tmp_path / "X.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")

    def blocks():
        return (X[i : i + 333] for i in range(0, len(X), 333))

    expected = continue_from(start, X, max_iter=10, tol=0)
    for source in (mm, blocks):
        got = continue_from(start, source, max_iter=10, tol=0)
        for name in ("mean_prior_", "covariance_prior_", *POSTERIOR):
            assert rel(getattr(got, name), getattr(expected, name)) <= 1e-10, name
        assert rel(got.lower_bounds_, expected.lower_bounds_) <= 1e-12
    np.testing.assert_allclose(got.score_samples(mm), expected.score_samples(X))


def test_dask_fit_equals_in_memory(X):
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    start = start_of(X, n_components=3, weight_concentration_prior_type=PRIORS[1])
    expected = continue_from(start, X, max_iter=10, tol=0)
    with dask.config.set(scheduler="threads"):
        dX = da.from_array(X, chunks=(400, 3))
        got = continue_from(start, dX, max_iter=10, tol=0)
        labels = got.predict(dX).compute()
    assert rel(got.lower_bounds_, expected.lower_bounds_) <= 1e-12
    for name in POSTERIOR:
        assert rel(getattr(got, name), getattr(expected, name)) <= 1e-10, name
    np.testing.assert_array_equal(labels, expected.predict(X))


def test_tol_per_sample_is_tol_times_the_total_weight(rng, X):
    w = rng.uniform(0.5, 2.0, X.shape[0])
    params = dict(n_components=5, random_state=0, max_iter=300)
    a = quiet(
        BayesianGaussianMixture(tol_per_sample=1e-4, **params).fit, X, sample_weight=w
    )
    b = quiet(
        BayesianGaussianMixture(tol=1e-4 * w.sum(), **params).fit, X, sample_weight=w
    )
    assert a.converged_ and a.n_iter_ == b.n_iter_
    assert a.lower_bounds_ == b.lower_bounds_
    # and it is not the default total tolerance
    c = quiet(BayesianGaussianMixture(**params).fit, X, sample_weight=w)
    assert c.n_iter_ > a.n_iter_


def _issue_example(n=100_000):
    """The issue's case: 100k x 3 points, fitted with K=8."""
    gen = np.random.default_rng(0)
    centres = np.array([[0, 0, 0], [6, 1, 0], [1, 7, 3], [5, 5, 6]], float)
    labels = gen.integers(4, size=n)
    scales = 0.5 + gen.uniform(size=(4, 3))
    return centres[labels] + gen.normal(size=(n, 3)) * scales[labels]


def test_large_data_converges_with_tol_per_sample():
    X = _issue_example()
    params = dict(n_components=8, random_state=0)
    default = quiet(BayesianGaussianMixture(max_iter=40, **params).fit, X)
    assert not default.converged_  # scikit-learn's total tol: 1e-8 per sample here
    bgm = BayesianGaussianMixture(tol_per_sample=1e-3, **params).fit(X)
    assert bgm.converged_ and bgm.n_iter_ <= 20
    assert 4 <= bgm.n_effective_components_ <= 8
    assert bgm.n_effective_components_ == np.sum(bgm.weights_ >= 0.1 / 8)


def test_pruning_switches_components_off(X):
    params = dict(
        n_components=8, random_state=0, max_iter=300,
        weight_concentration_prior_type="dirichlet_distribution",
        weight_concentration_prior=1e-3,
    )  # fmt: skip
    plain = quiet(BayesianGaussianMixture(**params).fit, X)
    assert np.all(plain.weights_ > 0)
    bgm = quiet(BayesianGaussianMixture(prune_threshold=0.02, **params).fit, X)
    off = bgm.weights_ == 0
    assert 0 < off.sum() < 8 and bgm.n_effective_components_ == 8 - off.sum()
    assert np.all(bgm.weights_[~off] >= 0.02)
    assert np.all(bgm.weight_concentration_[off] == 0)
    resp = bgm.predict_proba(X)
    assert (
        np.all(resp[:, off] == 0)
        and not np.isin(bgm.predict(X), np.flatnonzero(off)).any()
    )
    # a pruned component's Gaussian-Wishart posterior is the prior's
    np.testing.assert_allclose(
        bgm.means_[off], np.broadcast_to(bgm.mean_prior_, (off.sum(), 3))
    )
    np.testing.assert_allclose(
        bgm.degrees_of_freedom_[off], bgm.degrees_of_freedom_prior_
    )
    assert np.isfinite(bgm.lower_bound_) and np.all(np.isfinite(bgm.score_samples(X)))


def test_pruning_keeps_one_component(X):
    bgm = quiet(
        BayesianGaussianMixture(
            n_components=4, prune_threshold=0.99, random_state=0
        ).fit,
        X,
    )
    assert np.sum(bgm.weights_ > 0) == 1 and bgm.weights_.max() == 1.0
    assert bgm.n_effective_components_ == 1 and np.all(
        bgm.predict(X) == bgm.weights_.argmax()
    )


def test_refit_resolves_the_priors_on_the_new_data(X):
    """Each fit takes its default priors from the data it is given (the family is
    built after the data), so a refit equals a fresh fit."""
    params = dict(n_components=3, random_state=0, init_params="random")
    bgm = quiet(BayesianGaussianMixture(**params).fit, X)
    refit = quiet(bgm.fit, 3.0 * X + 50.0)
    fresh = quiet(BayesianGaussianMixture(**params).fit, 3.0 * X + 50.0)
    for name in ("mean_prior_", "covariance_prior_", *POSTERIOR, "lower_bounds_"):
        np.testing.assert_array_equal(getattr(refit, name), getattr(fresh, name))


# ------------------------------------------------------------------------- errors
SK_ERRORS = [
    (dict(mean_prior=[0.0, 1.0]), "The parameter 'means' should have the shape"),
    (dict(degrees_of_freedom_prior=1.5), "should be greater than 2, but got 1.500"),
    (
        dict(covariance_prior=np.eye(2)),
        "The parameter 'full covariance_prior' should have the shape",
    ),
    (
        dict(covariance_prior=-np.eye(3)),
        "'full precision' should be symmetric, positive-definite",
    ),
    (
        dict(covariance_type="diag", covariance_prior=[1.0, -1.0, 1.0]),
        "'diag precision' should be positive",
    ),
    (dict(weight_concentration_prior=0.0), "a float in the range"),
    (dict(covariance_type="EEI"), "'covariance_type' parameter"),
]


@pytest.mark.parametrize("params, match", SK_ERRORS)
def test_errors_are_sklearns(X, params, match):
    with pytest.raises(ValueError, match=match) as ours:
        BayesianGaussianMixture(**params).fit(X)
    with pytest.raises(ValueError) as theirs:
        SKBayesian(**params).fit(X)
    if "EEI" not in repr(params):  # sklearn's option list has no mclust names
        assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize(
    "params, sample_weight, match",
    [
        (
            dict(covariance_type="spherical", covariance_prior=[1.0]),
            None,
            "positive number",
        ),
        (dict(prune_threshold=1.0), None, "'prune_threshold' parameter"),
        (dict(tol_per_sample=-1.0), None, "'tol_per_sample' parameter"),
        ({}, "tiny", "total sample weight above 1"),
        (dict(covariance_type="EII"), None, "'covariance_type' parameter"),
    ],
)
def test_bad_fastgmm_parameters(X, params, sample_weight, match):
    w = np.full(len(X), 0.5 / len(X)) if sample_weight == "tiny" else None
    with pytest.raises(ValueError, match=match):
        BayesianGaussianMixture(**params).fit(X, sample_weight=w)


def test_failed_fit_leaves_the_model_unchanged(X):
    bgm = BayesianGaussianMixture(n_components=3, random_state=0).fit(X)
    derived = bgm._derived  # (what the methods derive: kept, not copied)
    before = copy.deepcopy(bgm.__dict__)
    bgm.set_params(mean_prior=[1.0])
    with pytest.raises(ValueError):
        bgm.fit(X)
    assert before.keys() == bgm.__dict__.keys() and bgm._derived is derived
    for name, value in before.items():
        if name not in ("mean_prior", "_derived"):
            np.testing.assert_equal(getattr(bgm, name), value, err_msg=name)
