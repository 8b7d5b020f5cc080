"""Small data: the fixed costs of a fit and of the public methods (issue 13).

What a small fit no longer does, each with the behaviour it must keep: parameters
validated once per set of values, plain float arrays not passed through
scikit-learn's ``validate_data``, BLAS left unpinned where nothing uses it.
"""

import warnings
from dataclasses import replace

import numpy as np
import pytest
import sklearn.base
from sklearn.datasets import load_iris
from sklearn.utils._param_validation import InvalidParameterError

import fastgmm._base
from fastgmm import GaussianMixture, _runtime
from fastgmm._runtime import BLAS_FEATURES, SERIAL_WORK, blas_idle, threads

IRIS = load_iris().data


def _count_calls(monkeypatch, module, name):
    calls = []
    original = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_parameters_are_validated_once_per_fit_and_once_per_values(monkeypatch):
    GaussianMixture._valid_params = set()  # a fresh memory for this test
    calls = _count_calls(monkeypatch, sklearn.base, "validate_parameter_constraints")
    gm = GaussianMixture(3, random_state=0)
    gm.fit(IRIS)
    assert len(calls) == 1  # not once more inside the shared fit
    gm.fit(IRIS)
    GaussianMixture(3, random_state=0).fit(IRIS)
    assert len(calls) == 1  # the same values: validated already
    GaussianMixture(3, random_state=1).fit(IRIS)
    assert len(calls) == 2


def test_remembered_validation_still_refuses_bad_values():
    gm = GaussianMixture(3, random_state=0).fit(IRIS)
    means = gm.means_.copy()
    for name, bad in [("n_components", 0), ("tol", -1.0), ("covariance_type", "x")]:
        with pytest.raises(InvalidParameterError, match=name):
            GaussianMixture(3, random_state=0).set_params(**{name: bad}).fit(IRIS)
    np.testing.assert_array_equal(gm.means_, means)


def test_unhashable_parameters_are_validated_every_time(monkeypatch):
    calls = _count_calls(monkeypatch, sklearn.base, "validate_parameter_constraints")
    gm = GaussianMixture(2, means_init=IRIS[:2], random_state=0)
    gm.fit(IRIS)
    gm.fit(IRIS)
    assert len(calls) == 2


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_plain_arrays_skip_validate_data_with_the_same_result(monkeypatch, dtype):
    X = np.ascontiguousarray(IRIS, dtype=dtype)
    expected = GaussianMixture(3, random_state=0).fit(X)
    calls = _count_calls(monkeypatch, fastgmm._base, "validate_data")
    gm = GaussianMixture(3, random_state=0).fit(X)
    assert gm.n_features_in_ == 4 and not hasattr(gm, "feature_names_in_")
    for method in ("predict", "predict_proba", "score_samples"):
        got, want = getattr(gm, method)(X), getattr(expected, method)(X)
        np.testing.assert_array_equal(got, want)
    assert calls == []
    # anything else goes through validate_data: lists, Fortran order, ints
    GaussianMixture(3, random_state=0).fit(X.tolist())
    gm.predict(np.asfortranarray(X))
    gm.predict(X.astype(np.int64))
    assert len(calls) == 3


def test_plain_path_keeps_scikit_learns_checks_and_messages():
    gm = GaussianMixture(2, random_state=0).fit(IRIS)
    bad = IRIS.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(2, random_state=0).fit(bad)
    with pytest.raises(ValueError, match="NaN"):
        gm.predict(bad)
    with pytest.raises(ValueError, match="expecting 4 features"):
        gm.predict(IRIS[:, :3])
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        GaussianMixture(1).fit(IRIS[:1])
    with pytest.raises(ValueError, match="2D array"):
        GaussianMixture(1).fit(IRIS[0])


def test_refit_on_an_array_forgets_the_feature_names():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(IRIS, columns=list("abcd"))
    gm = GaussianMixture(2, random_state=0).fit(frame)
    assert list(gm.feature_names_in_) == list("abcd")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gm.predict(frame)
    with pytest.warns(UserWarning, match="feature names"):
        gm.predict(IRIS)  # fitted with names, scored without: scikit-learn warns
    gm.fit(IRIS)
    assert not hasattr(gm, "feature_names_in_")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gm.predict(IRIS)


def test_blas_is_idle_only_for_small_narrow_work():
    assert blas_idle(SERIAL_WORK - 1, BLAS_FEATURES - 1)
    assert not blas_idle(SERIAL_WORK, 1)
    assert not blas_idle(10, BLAS_FEATURES)  # the GEMM kernels' widths
    assert not blas_idle(None, 1)  # unknown work


def test_small_fits_and_scores_do_not_pin_blas(monkeypatch):
    pins = _count_calls(monkeypatch, _runtime, "_pin_blas")
    gm = GaussianMixture(3, random_state=0).fit(IRIS)
    gm.predict(IRIS)
    assert pins == []
    wide = np.random.default_rng(0).normal(size=(200, BLAS_FEATURES))
    GaussianMixture(2, random_state=0).fit(wide).predict(wide)
    assert len(pins) == 4  # enter and leave, fit and predict
    with threads(1, work=10, pin_blas=False):
        pass
    assert len(pins) == 4


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kmeans_centres_average_as_scikit_learns_loop(rng, dtype):
    """The one-call average equals scikit-learn's loop (``_average_centers``: each
    row times 1 / weight) bit for bit; an empty cluster keeps the loop's rule."""
    from fastgmm.engine.init import _average

    s1, nk = rng.normal(size=(5, 3)) * 100, rng.uniform(0.5, 50.0, 5)
    expected = np.array([s1[k] * (1.0 / nk[k]) for k in range(5)]).astype(dtype)
    got = _average(s1.copy(), nk, dtype)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, expected)
    nk[3] = 0.0  # empty: copies the heaviest centre
    got = _average(s1.copy(), nk, dtype)
    heaviest = int(np.argmax(nk))
    np.testing.assert_array_equal(
        got[3], got[heaviest] if heaviest < 3 else s1[heaviest].astype(dtype)
    )


@pytest.mark.parametrize("seed", [0, 7, 2**32 - 1, np.int64(5)])
def test_seeded_gives_random_states_stream(seed):
    from fastgmm.engine.init import seeded

    want = np.random.RandomState(seed)
    with seeded(seed) as rs:
        for draw in ("random_sample", "standard_normal", "uniform"):
            np.testing.assert_array_equal(
                getattr(rs, draw)(size=5), getattr(want, draw)(size=5)
            )
    with seeded(seed) as again:  # the spare, seeded afresh
        np.testing.assert_array_equal(
            again.random_sample(3), np.random.RandomState(seed).random_sample(3)
        )


def test_seeded_nested_and_other_seeds():
    from fastgmm.engine.init import seeded

    with seeded(3) as outer:
        first = outer.random_sample()
        with seeded(3) as inner:  # a fit inside a fit: its own generator
            assert inner is not outer
            inner.random_sample(10)
        assert outer.random_sample() == np.random.RandomState(3).random_sample(2)[1]
    assert first == np.random.RandomState(3).random_sample()
    given = np.random.RandomState(1)
    with seeded(given) as rs:
        assert rs is given
    with seeded(None) as rs:
        assert isinstance(rs, np.random.RandomState)
    for bad in (-1, 2**32, 1.5, "x"):
        with pytest.raises(ValueError), seeded(bad):
            pass


def test_fits_with_an_int_seed_equal_fits_with_its_random_state():
    for cov_type in ("full", "spherical"):
        a = GaussianMixture(3, covariance_type=cov_type, random_state=4).fit(IRIS)
        b = GaussianMixture(3, covariance_type=cov_type, random_state=4)
        b.set_params(random_state=np.random.RandomState(4)).fit(IRIS)
        np.testing.assert_array_equal(a.means_, b.means_)
        np.testing.assert_array_equal(a.covariances_, b.covariances_)


def test_scoring_a_fitted_model_skips_scikit_learns_fitted_check(monkeypatch):
    import sklearn.utils.validation as validation
    from sklearn.exceptions import NotFittedError

    gm = GaussianMixture(2, random_state=0).fit(IRIS)
    calls = _count_calls(monkeypatch, validation, "check_is_fitted")
    gm.predict(IRIS), gm.score_samples(IRIS), gm.predict_proba(IRIS)
    assert calls == []  # means_ is there: fitted by scikit-learn's own rule
    with pytest.raises(NotFittedError):
        GaussianMixture(2).predict(IRIS)
    assert len(calls) == 1


def test_repair_jitter_is_computed_once_per_data(monkeypatch):
    from fastgmm.engine.data import make_data
    from fastgmm.model import covariance

    data = make_data(IRIS, None, 3, covariance.get("diag"))
    expected = 1e-6 * float(np.mean(data.feature_var))
    means = _count_calls(monkeypatch, np, "mean")
    assert data.jitter == expected
    assert data.jitter == expected
    assert len(means) == 1


# ------------------------------------------- derived once: M-step and fitted model
@pytest.mark.parametrize("name", ["full", "tied", "diag", "spherical", "EEI", "EII"])
def test_m_step_kernel_inputs_equal_those_of_the_same_params(rng, name):
    """The closed M-step writes the next E-step's inputs in the same call: bitwise
    those that the same parameters get from ``density_terms`` called alone (a
    fitted model's), so scoring a fitted model repeats its last pass exactly."""
    from fastgmm.engine.data import make_data
    from fastgmm.engine.init import initialize
    from fastgmm.model.params import Params, kernel_inputs

    for trial in range(8):
        d, k = int(rng.integers(1, 7)), int(rng.integers(1, 5))
        scale = rng.uniform(0.1, 100, size=d)
        X = rng.normal(size=(200, d)) * scale + rng.normal(size=d) * 1e3
        family = GaussianMixture(k, covariance_type=name)._family()
        data = make_data(X, None, k, name)
        p = initialize(data, k, family, "kmeans", np.random.RandomState(trial))
        flag, kept = p.__dict__["_inputs"]  # made by the M-step
        assert flag is False
        copies = (a.copy() for a in (p.weights, p.means, p.covariances, p.prec_chol))
        fresh = kernel_inputs(Params(p.model, *copies))
        assert kernel_inputs(p) is kept
        for a, b in zip(kept.astuple()[1:], fresh.astuple()[1:]):
            assert a.shape == b.shape
            np.testing.assert_array_equal(a, b)


def _sklearn_twin(gm):
    """scikit-learn's GaussianMixture holding gm's fitted attributes (reference)."""
    from sklearn.mixture import GaussianMixture as SkGMM

    sk = SkGMM(gm.n_components, covariance_type=gm.covariance_type)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        setattr(sk, name, np.array(getattr(gm, name)))
    sk.n_features_in_ = gm.n_features_in_
    return sk


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_methods_follow_fitted_attributes_assigned_or_changed(covariance_type):
    """The Params (and density terms) scoring derives from the fitted attributes
    are kept between calls, and derived again after a user assigns ``weights_``,
    ``means_`` or ``precisions_cholesky_`` or changes one in place."""
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    gm.fit(IRIS)
    gm.predict_proba(IRIS)  # derived and kept

    def check():
        sk = _sklearn_twin(gm)
        np.testing.assert_allclose(gm.score_samples(IRIS), sk.score_samples(IRIS))
        # (responsibilities below exp(-500) of the largest are 0: vecmath.FLOOR)
        np.testing.assert_allclose(
            gm.predict_proba(IRIS), sk.predict_proba(IRIS), atol=1e-200
        )

    check()
    gm.means_ = gm.means_ + 0.5  # assigned
    check()
    gm.means_[0, 0] -= 1.0  # changed in place
    check()
    gm.weights_ = np.array([0.2, 0.3, 0.5])
    check()
    gm.precisions_cholesky_ = gm.precisions_cholesky_ * 1.5
    check()
    gm.precisions_cholesky_ *= 0.9
    check()


def test_fitted_params_are_derived_once_per_fitted_state(monkeypatch):
    gm = GaussianMixture(3, random_state=0).fit(IRIS)
    calls = _count_calls(monkeypatch, fastgmm._base, "from_fitted")
    for method in ("predict", "predict_proba", "score_samples", "score", "bic"):
        getattr(gm, method)(IRIS)
    assert len(calls) == 1
    gm.fit(IRIS[::-1])  # a refit starts afresh
    gm.predict(IRIS)
    assert len(calls) == 2
    gm.means_ = gm.means_.copy()
    gm.predict(IRIS)
    assert len(calls) == 3
    with pytest.raises(ValueError, match="means_"):  # still checked when changed
        gm.means_ = gm.means_[:, :2]
        gm.predict(IRIS)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
@pytest.mark.parametrize("prior_type", ["dirichlet_process", "dirichlet_distribution"])
def test_bayesian_methods_derive_once_and_follow_the_posterior(
    monkeypatch, covariance_type, prior_type
):
    """BayesianGaussianMixture keeps its derived Params between method calls too
    (its posterior included: a tuple for a Dirichlet process, a float number of
    degrees of freedom for tied) and derives them again when the posterior is
    changed in place or assigned."""
    import copy

    from fastgmm import BayesianGaussianMixture

    bgm = BayesianGaussianMixture(
        n_components=3, covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type, random_state=0,
    ).fit(IRIS)  # fmt: skip
    import fastgmm.model.variational

    calls = _count_calls(monkeypatch, fastgmm._base, "from_fitted")
    terms = _count_calls(monkeypatch, fastgmm.model.variational, "e_step_terms")
    before = bgm.predict_proba(IRIS)
    for method in ("predict", "score_samples", "score"):
        getattr(bgm, method)(IRIS)
    assert len(calls) == 1 and len(terms) == 1  # (its density terms kept too)
    assert bgm.means_.flags.writeable and bgm.weights_.flags.writeable
    conc = bgm.weight_concentration_
    (conc[0] if isinstance(conc, tuple) else conc)[0] *= 3.0  # in place
    changed = bgm.predict_proba(IRIS)
    assert len(calls) == 2 and not np.array_equal(changed, before)
    fresh = copy.deepcopy(bgm)  # (starts with nothing derived)
    np.testing.assert_array_equal(changed, fresh.predict_proba(IRIS))
    bgm.degrees_of_freedom_ = bgm.degrees_of_freedom_ * 2.0  # assigned
    np.testing.assert_array_equal(
        bgm.score_samples(IRIS), copy.deepcopy(bgm).score_samples(IRIS)
    )
    assert len(calls) == 5  # (each copy derives its own: 2 of the 5)


def test_loaded_model_keeps_derived_params(tmp_path, monkeypatch):
    gm = GaussianMixture(3, random_state=0).fit(IRIS)
    fastgmm.save(gm, tmp_path / "m.fgmm")
    loaded = fastgmm.load(tmp_path / "m.fgmm")
    calls = _count_calls(monkeypatch, fastgmm._base, "from_fitted")
    for _ in range(3):
        np.testing.assert_array_equal(loaded.predict(IRIS), gm.predict(IRIS))
    assert len(calls) == 2  # once for each model


def test_kept_derived_params_are_not_pickled():
    import copy
    import pickle

    gm = GaussianMixture(2, random_state=0).fit(IRIS)
    gm.predict(IRIS)
    assert gm._derived.entry is not None
    for twin in (pickle.loads(pickle.dumps(gm)), copy.deepcopy(gm)):
        assert twin._derived.entry is None and twin._derived is not gm._derived
        np.testing.assert_array_equal(twin.predict(IRIS), gm.predict(IRIS))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_small_kmeans_tolerance_is_scikit_learns_without_a_data_pass(rng, dtype):
    """k-means' tolerance on small data is scikit-learn's expression exactly, and
    a default fit that repairs nothing makes no pass for the feature variances."""
    from sklearn.cluster._kmeans import _tolerance

    from fastgmm.engine import init
    from fastgmm.engine.data import make_data
    from fastgmm.model import covariance

    X = (rng.normal(size=(500, 3)) * [1.0, 30.0, 1e-3] + 5.0).astype(dtype)
    for sw in (None, rng.uniform(0.5, 2.0, 500)):
        data = make_data(X, sw, 3, covariance.get("diag"))
        assert init._unweighted_tolerance(data) == _tolerance(X, init.KMEANS_TOL)
    data = make_data(X, None, 3, covariance.get("full"))
    family = GaussianMixture(3)._family()
    init.initialize(data, 3, family, "kmeans", np.random.RandomState(0))
    assert data.variances.value is None  # lazy: never asked for


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_fitted_arrays_checked_at_once_still_name_the_one_not_representable(
    covariance_type,
):
    """The fitted arrays are checked in one pass; one that cannot be represented
    is still named (float64 precisions that overflow; float32 means)."""
    from fastgmm._base import fitted_arrays
    from fastgmm.model import covariance
    from fastgmm.model.params import Params

    model = covariance.get(covariance_type)
    shape = model.shape(2, 2)
    cov = np.broadcast_to(np.eye(2) if model.form == "dense" else 1.0, shape)
    ok = Params(model, np.full(2, 0.5), np.zeros((2, 2)), cov.copy(), cov.copy())
    assert set(fitted_arrays(ok, np.float64)) >= {"precisions_", "means_"}
    tiny = replace(ok, covariances=cov * 1e-320, prec_chol=cov * 1e160)
    with pytest.raises(ValueError, match="fitted precisions_ cannot be represented"):
        fitted_arrays(tiny, np.float64)
    far = replace(ok, means=np.full((2, 2), 1e39))
    fitted_arrays(far, np.float64)
    with pytest.raises(ValueError, match="fitted means_ cannot be represented"):
        fitted_arrays(far, np.float32)


def test_scoring_one_chunk_enters_no_thread_scope(monkeypatch):
    """Scoring data of one chunk (no parallel region, no BLAS) on one thread skips
    threads(); more rows or more threads enter it (to run on one thread: see
    test_runtime); the results are the same, and a bad n_jobs still fails."""
    import numba

    import fastgmm.engine.score as score_module

    gm = GaussianMixture(3, random_state=0).fit(IRIS)
    expected = gm.score_samples(IRIS)
    calls = _count_calls(monkeypatch, score_module, "threads")
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        np.testing.assert_array_equal(gm.score_samples(IRIS), expected)
        assert calls == []
        many = np.tile(IRIS, (200, 1))  # 30,000 rows: several chunks
        np.testing.assert_allclose(gm.score_samples(many)[:150], expected, rtol=1e-12)
        assert len(calls) == 1
        with pytest.raises(ValueError, match="n_jobs"):
            gm.set_params(n_jobs=0).predict(IRIS)
    finally:
        numba.set_num_threads(previous)
    if previous > 1:
        gm.set_params(n_jobs=None).predict(IRIS)
        assert len(calls) == 2


def test_ctrl_c_in_a_scoring_kernel_without_thread_scope(monkeypatch):
    """A KeyboardInterrupt that reaches Python as Numba's SystemError is raised as
    itself on the path without threads(), as threads() does."""
    import fastgmm.engine.score as score_module

    gm = GaussianMixture(3, random_state=0).fit(IRIS)

    def interrupted(*args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError("returned a result with an exception set") from exc

    monkeypatch.setattr(score_module, "_score", interrupted)
    monkeypatch.setattr(score_module, "numba_threads", lambda: 1)
    with pytest.raises(KeyboardInterrupt):
        gm.predict(IRIS)
