"""Hostile inputs (issue 14's sweep, second round): fitted attributes assigned by
hand with bad values, data whose spread overflows float64, Dask arrays that are not
2-D. Each test names the behaviour it guards; see docs/reliability.md.
"""

import numpy as np
import pytest

from fastgmm import BayesianGaussianMixture, GaussianMixture


@pytest.fixture(scope="module")
def data():
    gen = np.random.default_rng(14)
    X = np.vstack([gen.normal(size=(100, 3)), gen.normal(size=(100, 3)) + 5.0])
    return X[gen.permutation(len(X))]


def _scale(a, factor):
    return np.asarray(a) * factor


def _first_nan(a):
    a = np.array(a, dtype=np.float64)
    a.flat[0] = np.nan
    return a


# ------------------------------------------------------- fitted values by hand
BAD_VALUES = [
    ("means_", _first_nan, "means_ contain NaN or infinity"),
    ("weights_", lambda w: _scale(w, np.inf), "weights_ contain NaN or infinity"),
    ("weights_", lambda w: w[::-1] - np.array([1.0] + [0.0] * (len(w) - 1)), ">= 0"),
    ("weights_", lambda w: _scale(w, 2.0), "weights_ must sum to 1, got 2.0"),
    ("precisions_cholesky_", lambda u: -np.asarray(u), "diagonal must be > 0"),
    ("precisions_cholesky_", lambda u: _scale(u, 0.0), "diagonal must be > 0"),
    ("precisions_cholesky_", _first_nan, "precisions_cholesky_ contain NaN"),
    ("covariances_", lambda c: -np.asarray(c), "covariances_ must have variances"),
    ("covariances_", _first_nan, "covariances_ contain NaN"),
]


@pytest.mark.parametrize("cov_type", ["full", "tied", "diag", "spherical", "EII"])
@pytest.mark.parametrize("name, bad, words", BAD_VALUES)
def test_hand_assigned_values_are_refused(data, cov_type, name, bad, words):
    """Values that make no mixture (NaN, negative or unnormalised weights, factors
    without a positive diagonal, negative variances) are refused with the
    attribute's name by every method, before any kernel: they used to give NaN
    scores, -inf log-likelihoods, or SciPy's 'array must not contain infs or NaNs'
    from warm_start and partial_fit."""
    gm = GaussianMixture(2, covariance_type=cov_type, random_state=0).fit(data)
    setattr(gm, name, bad(getattr(gm, name)))
    calls = [gm.score_samples, gm.predict, gm.predict_proba, gm.score, gm.bic]
    calls += [lambda X: gm.sample(5), gm.partial_fit]
    for call in calls:
        with pytest.raises(ValueError, match=words.replace("(", r"\(")):
            call(data)
    gm.set_params(warm_start=True)
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
        gm.fit(data)


def test_valid_hand_built_models_are_accepted(data):
    """The check refuses no model a fit gives: zero weights, weights of float32
    rounding, a noise component's weights (summing to 1 - noise_weight_)."""
    gm = GaussianMixture(3, random_state=0).fit(data)
    gm.weights_ = np.array([0.5, 0.5, 0.0])
    assert np.isfinite(gm.score_samples(data)).all()
    gm32 = GaussianMixture(7, covariance_type="diag", random_state=0)
    gm32.fit(data.astype(np.float32))
    assert np.isfinite(gm32.score_samples(data.astype(np.float32))).all()
    noisy = GaussianMixture(2, noise=True, random_state=0).fit(data)
    assert noisy.weights_.sum() < 1.0 - 1e-6
    assert np.isfinite(noisy.score_samples(data)).all()


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("mean_precision_", lambda a: -np.asarray(a), "mean_precision_"),
        ("degrees_of_freedom_", _first_nan, "degrees_of_freedom_ contain NaN"),
        ("weight_concentration_", lambda a: -np.asarray(a), "weight_concentration_"),
    ],
)
def test_bayesian_posterior_values_are_refused(data, name, value, words):
    """A Bayesian mixture's posterior gives its expected log-weights and
    log-determinants (digamma of its values): NaN or negative values are refused
    with the attribute's name instead of giving NaN scores."""
    bgm = BayesianGaussianMixture(
        n_components=2, weight_concentration_prior_type="dirichlet_distribution",
        max_iter=20, random_state=0,
    ).fit(data)  # fmt: skip
    setattr(bgm, name, value(getattr(bgm, name)))
    for call in (bgm.score_samples, bgm.predict, bgm.predict_proba):
        with pytest.raises(ValueError, match=words):
            call(data)


# ------------------------------------------------- data that overflows float64
@pytest.mark.parametrize(
    "cov_type", ["full", "tied", "diag", "spherical", "EEI", "VVE"]
)
@pytest.mark.parametrize("scale", [1e160, 1e300])
def test_data_whose_spread_overflows_is_refused(data, cov_type, scale):
    """Squared deviations beyond float64: diag, spherical and EEI fits used to
    'succeed' with covariances of reg_covar, a -inf lower bound and every label 0
    (after 100 repair warnings); full and tied raised SciPy's 'array must not contain
    infs or NaNs', VVE a LinAlgError. Now a ValueError says why, before any pass,
    and a fitted model is left as it was."""
    gm = GaussianMixture(2, covariance_type=cov_type, random_state=0).fit(data)
    before = gm.means_.copy()
    with pytest.raises(ValueError, match="too spread out for float64: feature 0"):
        gm.fit(data * scale)
    np.testing.assert_array_equal(gm.means_, before)


def test_spread_check_paths(data):
    """The check serves every path that fits in-memory data (select, partial_fit,
    Bayesian) and streamed sources (their first pass); float32 data, data up to
    1e150 and far rows of zero weight are fitted as before."""
    import fastgmm

    far = data * 1e200
    with pytest.raises(ValueError, match="too spread out"):
        fastgmm.select(far, [1, 2], covariance_types=["diag"])
    with pytest.raises(ValueError, match="too spread out"):
        GaussianMixture(2).partial_fit(far)
    with pytest.raises(ValueError, match="too spread out"):
        BayesianGaussianMixture(n_components=2).fit(far)
    with pytest.raises(ValueError, match="the data's squared deviations"):
        GaussianMixture(2, covariance_type="diag").fit(lambda: iter([far]))
    gm = GaussianMixture(2, covariance_type="diag", random_state=0)
    assert np.isfinite(gm.fit(data * 1e150).score_samples(data * 1e150)).all()
    assert np.isfinite(gm.fit((data * 1e15).astype(np.float32)).lower_bound_)


@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_select_drops_rows_of_zero_weight(data, cov_type):
    """select, like GaussianMixture.fit, drops the rows of weight 0 (with their
    noise flags): a far row of weight 0 gives bitwise the sweep without it. It
    used to reach the scatter pass (0 * inf: SciPy's error for full) and k-means."""
    import fastgmm

    X = np.vstack([data[:100], [[1e200, 0.0, 0.0]], data[100:]])
    w = np.r_[np.ones(100), 0.0, np.ones(len(data) - 100)]
    opts = dict(covariance_types=[cov_type], random_state=0, init_params="kmeans")
    got = fastgmm.select(X, [1, 2], sample_weight=w, **opts)
    want = fastgmm.select(data, [1, 2], sample_weight=np.ones(len(data)), **opts)
    for a, b in zip(got.models, want.models):
        np.testing.assert_array_equal(a.means_, b.means_)
        np.testing.assert_array_equal(a.covariances_, b.covariances_)
    np.testing.assert_array_equal(got.column("bic"), want.column("bic"))
    mask = np.zeros(len(X), bool)
    mask[[0, 100]] = True  # row 100 is the absent one
    noisy = fastgmm.select(X, [2], sample_weight=w, noise=mask, **opts)
    assert np.isfinite(noisy.column("bic")).all()


@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_partial_fit_of_a_chunk_far_from_the_model(data, cov_type):
    """A one-row chunk has no spread of its own, but online EM takes its statistics
    about the model's means: a row at 1e200 made diag's model garbage (-inf scores
    for ordinary data) and full raise SciPy's error. The check includes the means;
    the model is left as it was."""
    gm = GaussianMixture(2, covariance_type=cov_type, random_state=0).fit(data)
    before = gm.score_samples(data)
    with pytest.raises(
        ValueError, match="spans 1e\\+200 \\(with the nearest mean EM starts from"
    ):
        gm.partial_fit(np.array([[1e200, 0.0, 0.0]]))
    np.testing.assert_array_equal(gm.score_samples(data), before)
    gm.partial_fit(np.array([[1e150, 0.0, 0.0]]))  # far, but representable
    assert np.isfinite(gm.score_samples(data)).all()


@pytest.mark.parametrize("start", ["warm_start", "means_init"])
@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_starting_means_far_from_the_data(data, start, cov_type):
    """EM's first E-step takes the statistics about the means it starts from: a warm
    start (or means_init) 1e155 away from data of ordinary spread made full raise
    SciPy's error and diag 'converge' to two identical components (every
    responsibility 1/K); now refused before any pass, the model as it was."""
    far = data * 1e150 + 1e155  # spread 1e151: fitted from scratch, it is fine
    if start == "warm_start":
        gm = GaussianMixture(2, covariance_type=cov_type, warm_start=True)
        gm.fit(data)
        before = gm.means_.copy()
        with pytest.raises(ValueError, match="with the nearest mean EM starts from"):
            gm.fit(far)
        np.testing.assert_array_equal(gm.means_, before)
    else:
        gm = GaussianMixture(2, covariance_type=cov_type, means_init=data[:2])
        with pytest.raises(ValueError, match="with the nearest mean EM starts from"):
            gm.fit(far)
    fitted = GaussianMixture(2, covariance_type=cov_type, random_state=0).fit(far)
    assert np.isfinite(fitted.lower_bound_)


def test_one_far_starting_mean_is_fine(data):
    """A component that starts far away gets no responsibility while another covers
    the data: means_init or a warm start with one mean at 1e300 fits as before (as
    scikit-learn's does): the check asks for the data to be within range of the
    nearest starting mean."""
    means = np.array([[1e300, 0.0, 0.0], [0.0, 0.0, 0.0]])
    gm = GaussianMixture(2, means_init=means, random_state=0).fit(data)
    assert np.isfinite(gm.score_samples(data)).all()
    warm = GaussianMixture(2, warm_start=True, random_state=0).fit(data)
    warm.means_ = np.array([[1e300, 0.0, 0.0], warm.means_[1]])
    assert np.isfinite(warm.fit(data).lower_bound_)


def test_starting_means_add_no_pass_over_the_data(data, monkeypatch):
    """A fit from given means checks the data's spread with them without reading X
    again: the range make_data's check found is handed on (one min / max pass per
    fit, not two)."""
    import fastgmm._base
    import fastgmm.engine.data

    reads = []

    def counted(X, *args, **kwargs):
        out = check_spread(X, *args, **kwargs)
        reads.append(len(args) < 3 or args[2] is None)
        return out

    check_spread = fastgmm.engine.data.check_spread
    monkeypatch.setattr(fastgmm.engine.data, "check_spread", counted)
    monkeypatch.setattr(fastgmm._base, "check_spread", counted)
    GaussianMixture(2, means_init=data[:2], random_state=0).fit(data)
    assert reads == [True, False]  # (make_data's reads X; the start's does not)


def test_spread_check_is_exact_per_feature():
    """Only the global range is read for ordinary data; beyond it, each feature's
    range decides (a constant feature far from the others is fine)."""
    from fastgmm.engine.data import check_spread

    gen = np.random.default_rng(1)
    X = np.c_[gen.normal(size=100), np.full(100, 1e200)]
    check_spread(X)  # the global range fails, each feature's passes
    X[0, 1] = 0.0
    with pytest.raises(ValueError, match="feature 1 spans 1e\\+200"):
        check_spread(X)
    check_spread(X, sample_weight=np.r_[0.0, np.ones(99)])  # that row is absent


# --------------------------------------------------------------------- Dask
@pytest.mark.parametrize("shape", [(60,), (1, 60, 3)])
def test_dask_scoring_of_an_array_not_2d(data, shape):
    """predict on a 1-D dask array raised IndexError (a 3-D one: 'X has 60
    features'); now scikit-learn's 'Expected 2D array' as fit gives."""
    da = pytest.importorskip("dask.array")
    gm = GaussianMixture(2, random_state=0).fit(data)
    X = da.from_array(np.zeros(shape), chunks=20)
    for call in (gm.predict, gm.score_samples, gm.predict_proba):
        with pytest.raises(ValueError, match=f"Expected 2D array, got {len(shape)}D"):
            call(X)


# ------------------------------------------------------------------ mclust
def test_mclust_empty_g_names_the_problem(data):
    """mclust(X, G=[]) said 'No candidate could be fitted (every BIC is NA)' after
    fitting nothing; now G's own message, as select's for an empty k_range."""
    import fastgmm

    with pytest.raises(ValueError, match="G must name at least one number"):
        fastgmm.mclust(data, G=[])
    with pytest.raises(ValueError, match="G must name at least one number"):
        fastgmm.mclust(data, G=range(0))


# ------------------------------------------------------------------ threads
@pytest.mark.parametrize("n_jobs", [1.5, "2", True, np.nan])
def test_threads_refuses_what_is_not_an_int(n_jobs):
    """fastgmm.threads(1.5) and threads(True) ran on 1 thread, threads('a') and
    threads(nan) raised int()'s 'invalid literal' / 'cannot convert'; the estimators'
    n_jobs is checked by scikit-learn's constraints, the public threads() was not."""
    import fastgmm

    with pytest.raises(TypeError, match="n_jobs must be None or an int"):
        with fastgmm.threads(n_jobs):
            pass
    with fastgmm.threads(np.int64(1)):  # NumPy integers are ints
        pass


# --------------------------------------------------------------- inspection
def test_inspection_refuses_a_nan_threshold(data):
    """low_confidence(threshold=nan) and is_outlier(threshold=nan) flagged nothing
    (every comparison with NaN is False); now a ValueError. Infinite thresholds
    keep their meaning (everything, nothing)."""
    from fastgmm.inspection import is_outlier, low_confidence

    gm = GaussianMixture(2, random_state=0).fit(data)
    with pytest.raises(ValueError, match="threshold must be a number, got nan"):
        low_confidence(gm, data, threshold=np.nan)
    with pytest.raises(ValueError, match="threshold must be a number, got nan"):
        is_outlier(gm, data, np.nan)
    assert is_outlier(gm, data, np.inf).all()
    assert not is_outlier(gm, data, -np.inf).any()


def test_standardizer_of_data_at_any_finite_scale():
    """The command line's --scale (Standardizer.fit), the way out of the spread
    error, overflowed on the same data (mean_ must be finite...); it now divides
    each column by a power of two first: bitwise the same on ordinary data, finite
    on data at 1e300. NaN is named."""
    from fastgmm.scaling import Standardizer

    gen = np.random.default_rng(3)
    X = gen.normal(size=(500, 3)) * [1.0, 1e-8, 1e8] + [0.0, 5.0, -7.0]
    w = gen.random(500)
    for sw in (None, w):
        mean = np.average(X, axis=0, weights=sw)
        var = np.average((X - mean) ** 2, axis=0, weights=sw)
        st = Standardizer.fit(X, sw)
        np.testing.assert_array_equal(st.mean_, mean)
        np.testing.assert_array_equal(st.scale_, np.sqrt(var))
    Y = gen.normal(size=(500, 3))
    big = Standardizer.fit(Y * 1e300)
    np.testing.assert_allclose(big.scale_, np.sqrt(Y.var(axis=0)) * 1e300, rtol=1e-12)
    Z = big.transform(Y * 1e300)
    fitted = GaussianMixture(2, random_state=0).fit(Z)
    assert np.isfinite(fitted.lower_bound_)
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        Standardizer.fit(np.r_[X, [[np.nan, 0.0, 0.0]]])
