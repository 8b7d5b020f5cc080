"""partial_fit: online EM with the step sizes gamma_t = t ** -learning_decay.

An approximation of the batch fit: these tests check that it approaches the batch
fit on a stationary stream, follow the documented recursion exactly where it has a
closed form (K=1), and behave as an estimator between calls and on bad input."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from fastgmm import GaussianMixture

from .._same_fit import (
    COVARIANCE_TYPES,
    assert_same_fit,
    assert_state_unchanged,
    fit_quietly,
    fitted_state,
    mixture_data,
    start_from,
)

K = 3


def chunks(X, size):
    return [X[i : i + size] for i in range(0, X.shape[0], size)]


def matched_errors(model, reference):
    """Largest |mean| and |weight| differences after matching each component of
    ``model`` to the nearest mean of ``reference`` (a one-to-one match is asserted)."""
    dist = ((model.means_[:, None, :] - reference.means_[None]) ** 2).sum(-1)
    order = dist.argmin(axis=1)
    assert sorted(order) == list(range(reference.n_components))
    mean_err = np.abs(model.means_ - reference.means_[order]).max()
    weight_err = np.abs(model.weights_ - reference.weights_[order]).max()
    return float(mean_err), float(weight_err)


# ------------------------------------------------------- approaches the batch fit
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_stationary_stream_approaches_the_batch_fit(rng, covariance_type):
    data = mixture_data(rng, n=80_000)  # one distribution: stream and held-out rows
    X, held_out = data[:60_000], data[60_000:]
    batch = fit_quietly(
        GaussianMixture(K, covariance_type=covariance_type, random_state=0), X
    )
    online = GaussianMixture(K, covariance_type=covariance_type, random_state=0)
    errors = []
    for chunk in chunks(X, 1000):
        online.partial_fit(chunk)
        errors.append(matched_errors(online, batch))
    mean_err, weight_err = errors[-1]
    assert online.n_iter_ == 60
    assert mean_err < 0.05 and weight_err < 0.02, errors[-1]
    assert mean_err < 0.5 * errors[0][0]  # it moved towards the batch fit
    # a held-out log-likelihood close to the batch fit's (not equal: approximate)
    assert online.score(held_out) == pytest.approx(batch.score(held_out), abs=0.01)
    assert online.score(held_out) < batch.score(held_out) + 1e-3


@pytest.mark.parametrize("learning_decay", [0.51, 0.75, 1.0])
def test_every_allowed_decay_approaches_the_batch_fit(rng, learning_decay):
    X = mixture_data(rng, n=40_000)
    batch = fit_quietly(GaussianMixture(K, covariance_type="diag", random_state=0), X)
    online = GaussianMixture(
        K, covariance_type="diag", random_state=0, learning_decay=learning_decay
    )
    for chunk in chunks(X, 1000):
        online.partial_fit(chunk)
    mean_err, weight_err = matched_errors(online, batch)
    assert mean_err < 0.06 and weight_err < 0.02


# ------------------------------------------------------- the documented recursion
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("learning_decay", [0.6, 1.0])
def test_step_sizes_follow_the_documented_schedule(
    rng, covariance_type, learning_decay
):
    """With one component the responsibilities are all 1, so the statistics of a
    chunk do not depend on the parameters and the recursion has a closed form:
    S_T = sum_t w_t s_t with w_t = gamma_t prod_{j>t} (1 - gamma_j), gamma_1 = 1,
    gamma_t = t ** -learning_decay. With decay 1 that is the plain average of the
    chunks: the batch fit on all rows."""
    parts = [
        rng.normal(loc=i % 3, scale=1 + i % 2, size=(400 + 50 * i, 3)) for i in range(8)
    ]
    model = GaussianMixture(
        1, covariance_type=covariance_type, learning_decay=learning_decay, reg_covar=0.0
    )
    for part in parts:
        model.partial_fit(part)
    T = len(parts)
    gamma = np.array([1.0] + [t**-learning_decay for t in range(2, T + 1)])
    w = np.array([gamma[t] * np.prod(1 - gamma[t + 1 :]) for t in range(T)])
    assert w.sum() == pytest.approx(1.0)
    centre = parts[0].mean(axis=0)
    mean = sum(wt * p.mean(axis=0) for wt, p in zip(w, parts))
    second = sum(
        wt * ((p - centre).T @ (p - centre)) / len(p) for wt, p in zip(w, parts)
    )
    cov = second - np.outer(mean - centre, mean - centre)
    expected = {
        "full": cov[None],
        "tied": cov,
        "diag": np.diag(cov)[None],
        "spherical": np.array([np.diag(cov).mean()]),
    }[covariance_type]
    np.testing.assert_allclose(model.means_[0], mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.covariances_, expected, rtol=1e-10)
    assert model.weights_[0] == pytest.approx(1.0)
    if learning_decay == 1.0:  # the chunks' statistics averaged with equal weights
        np.testing.assert_allclose(w, np.full(T, 1 / T))


def test_decay_one_with_equal_chunks_is_the_batch_fit(rng):
    X = rng.normal(size=(4000, 2)) * [1.0, 3.0] + [2.0, -1.0]
    online = GaussianMixture(1, learning_decay=1.0)
    for chunk in chunks(X, 500):
        online.partial_fit(chunk)
    batch = fit_quietly(GaussianMixture(1), X)
    np.testing.assert_allclose(online.means_, batch.means_, rtol=1e-10)
    np.testing.assert_allclose(online.covariances_, batch.covariances_, rtol=1e-10)


# ----------------------------------------------------------- estimator behaviour
def test_model_is_usable_after_the_first_call(rng):
    X = mixture_data(rng, n=3000)
    model = GaussianMixture(K, random_state=0).partial_fit(X[:1000])
    assert model.n_iter_ == 1 and not model.converged_
    assert model.n_features_in_ == 3
    assert model.predict(X).shape == (3000,)
    resp = model.predict_proba(X)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0)
    assert model.score_samples(X).shape == (3000,)
    assert np.isfinite(model.score(X))
    sampled, labels = model.sample(10)
    assert sampled.shape == (10, 3) and labels.shape == (10,)
    assert model.lower_bounds_ == [model.lower_bound_]


def test_n_iter_counts_chunks_and_lower_bound_is_the_chunk_loglik(rng):
    X = mixture_data(rng, n=5000)
    model = GaussianMixture(K, random_state=0)
    for i, chunk in enumerate(chunks(X, 1000), start=1):
        before = model.score(chunk) if i > 1 else None
        model.partial_fit(chunk)
        assert model.n_iter_ == i
        assert len(model.lower_bounds_) == i
        assert model.lower_bound_ == model.lower_bounds_[-1]
        if before is not None:  # the chunk's mean log-likelihood before its update
            assert model.lower_bound_ == pytest.approx(before, rel=1e-10)


def test_float32_is_preserved(rng):
    X = mixture_data(rng, n=3000).astype(np.float32)
    model = GaussianMixture(K, random_state=0)
    for chunk in chunks(X, 1000):
        model.partial_fit(chunk)
    for name in (
        "weights_",
        "means_",
        "covariances_",
        "precisions_",
        "precisions_cholesky_",
    ):
        assert getattr(model, name).dtype == np.float32, name
    assert model.predict_proba(X).dtype == np.float32
    reference = GaussianMixture(K, random_state=0)
    for chunk in chunks(X.astype(np.float64), 1000):
        reference.partial_fit(chunk)
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-4, atol=1e-4)


def test_reproducible_with_the_same_random_state(rng):
    X = mixture_data(rng, n=4000)
    a, b = GaussianMixture(K, random_state=3), GaussianMixture(K, random_state=3)
    for chunk in chunks(X, 800):
        a.partial_fit(chunk)
        b.partial_fit(chunk)
    assert_same_fit(a, b, rtol=0)


def test_integer_weights_equal_repeated_rows(rng):
    X = mixture_data(rng, n=3000)
    counts = rng.integers(0, 4, size=3000)
    start = start_from(X, K, "full")
    weighted, repeated = GaussianMixture(K, **start), GaussianMixture(K, **start)
    for i in range(0, 3000, 1000):
        weighted.partial_fit(X[i : i + 1000], sample_weight=counts[i : i + 1000])
        repeated.partial_fit(np.repeat(X[i : i + 1000], counts[i : i + 1000], axis=0))
    assert_same_fit(repeated, weighted, rtol=1e-9)


def test_first_call_uses_the_user_start(rng):
    X = mixture_data(rng, n=2000)
    start = start_from(X, K, "full")
    model = GaussianMixture(K, **start).partial_fit(X[:1000])
    fixed = GaussianMixture(K, tol=0, max_iter=1, **start)
    fixed = fit_quietly(fixed, X[:1000])  # one batch EM step on the same chunk
    np.testing.assert_allclose(model.means_, fixed.means_, rtol=1e-10)
    np.testing.assert_allclose(model.covariances_, fixed.covariances_, rtol=1e-9)
    assert model.lower_bound_ == pytest.approx(fixed.lower_bound_, rel=1e-12)


# ------------------------------------------------------------- after fit
def test_partial_fit_after_fit_continues_from_the_fitted_model(rng):
    X = mixture_data(rng, n=20_000)
    model = fit_quietly(GaussianMixture(K, random_state=0), X[:15_000])
    fitted = fitted_state(model)
    chunk = X[15_000:17_000]
    expected_lb = model.score(chunk)
    model.partial_fit(chunk)
    # the chunk was scored with the fitted parameters (no re-initialisation) ...
    assert model.lower_bound_ == pytest.approx(expected_lb, rel=1e-10)
    # ... and the update stays near them on data from the same distribution (the
    # first step after fit has gamma = 1: the chunk's sampling error, ~0.05 here)
    np.testing.assert_allclose(model.means_, fitted["means_"], atol=0.25)
    np.testing.assert_allclose(model.weights_, fitted["weights_"], atol=0.05)


def test_fit_resets_the_online_state(rng):
    model = GaussianMixture(2, random_state=0)
    for _ in range(20):  # a stream far away from the data fitted next
        model.partial_fit(
            rng.normal(size=(1000, 2))
            + [[5.0, 0.0]] * (rng.uniform(size=(1000, 1)) < 0.5)
        )
    X = rng.normal(size=(20_000, 2)) + [[100.0, 0.0]] * (
        rng.uniform(size=(20_000, 1)) < 0.5
    )
    model.fit(X)
    refit = model.means_.copy()
    model.partial_fit(X[:2000])
    np.testing.assert_allclose(
        np.sort(model.means_[:, 0]), np.sort(refit[:, 0]), atol=0.2
    )


# ------------------------------------------------------------------ errors
def test_wrong_number_of_features_later(rng):
    X = mixture_data(rng, n=3000)
    model = GaussianMixture(K, random_state=0).partial_fit(X[:1000])
    model.partial_fit(X[1000:2000])
    before = fitted_state(model)
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[2000:, :2])
    assert_state_unchanged(before, model)
    assert model.n_iter_ == 2
    model.partial_fit(X[2000:])
    assert model.n_iter_ == 3


def test_first_chunk_with_fewer_rows_than_components(rng):
    model = GaussianMixture(5)
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        model.partial_fit(rng.normal(size=(4, 2)))
    with pytest.raises(NotFittedError):
        model.predict(rng.normal(size=(4, 2)))
    model.partial_fit(rng.normal(size=(50, 2)))  # a later first call still works
    assert model.n_iter_ == 1
    model.partial_fit(rng.normal(size=(1, 2)))  # later chunks may be tiny
    assert model.n_iter_ == 2


@pytest.mark.parametrize(
    "bad", ["nan", "inf", "strings", "negative weight", "zero weights"]
)
def test_bad_chunks_raise_and_keep_the_model(rng, bad):
    X = mixture_data(rng, n=2000)
    model = GaussianMixture(K, random_state=0).partial_fit(X[:1000])
    before = fitted_state(model)
    chunk, sw = X[1000:].copy(), None
    if bad == "nan":
        chunk[5, 1] = np.nan
    elif bad == "inf":
        chunk[5, 1] = np.inf
    elif bad == "strings":
        chunk = chunk.astype(str).astype(object)
        chunk[0, 0] = "x"
    elif bad == "negative weight":
        sw = np.ones(len(chunk))
        sw[3] = -1
    else:
        sw = np.zeros(len(chunk))
    with pytest.raises(ValueError):
        model.partial_fit(chunk, sample_weight=sw)
    assert_state_unchanged(before, model)


@pytest.mark.parametrize("value", [0.5, 0.3, 1.01, -1, "fast", None])
def test_learning_decay_is_validated(rng, value):
    X = rng.normal(size=(100, 2))
    with pytest.raises(InvalidParameterError, match="learning_decay"):
        GaussianMixture(2, learning_decay=value).partial_fit(X)
    with pytest.raises(InvalidParameterError, match="learning_decay"):
        GaussianMixture(2, learning_decay=value).fit(X)
    model = GaussianMixture(2, random_state=0).partial_fit(X)
    before = fitted_state(model)
    model.set_params(learning_decay=value)
    with pytest.raises(InvalidParameterError):
        model.partial_fit(X)
    model.set_params(learning_decay=0.6)
    assert_state_unchanged({**before}, model)


@pytest.mark.parametrize("value", [0.5000001, 0.75, 1, 1.0])
def test_learning_decay_bounds(rng, value):
    GaussianMixture(2, learning_decay=value, random_state=0).partial_fit(
        rng.normal(size=(100, 2))
    )
