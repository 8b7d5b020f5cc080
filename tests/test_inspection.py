"""Reading a fitted model (fastgmm.inspection) and the standardiser (fastgmm.scaling)."""

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from fastgmm.inspection import (
    component_stds,
    confidence,
    entropy,
    fit_outlier_threshold,
    is_outlier,
    low_confidence,
    score_chunks,
    summary,
)
from fastgmm.mixture import GaussianMixture
from fastgmm.scaling import Standardizer


@pytest.fixture(scope="module")
def data():
    """Two overlapping 2-D clusters in very different units, and new points."""
    gen = np.random.default_rng(5)
    a = gen.normal([0.0, 1000.0], [1.0, 300.0], size=(200, 2))
    b = gen.normal([1.5, 1800.0], [1.0, 300.0], size=(200, 2))
    return np.vstack([a, b]), gen.normal([0.75, 1400.0], [1.0, 300.0], size=(50, 2))


@pytest.fixture(scope="module", params=["fastgmm", "sklearn"])
def fitted(request, data):
    X, _ = data
    cls = GaussianMixture if request.param == "fastgmm" else SkGaussianMixture
    return cls(2, covariance_type="full", random_state=0).fit(X)


def test_confidence_and_entropy_match_predict_proba(fitted, data):
    X, new = data
    for Z in (X, new):
        proba = fitted.predict_proba(Z)
        np.testing.assert_allclose(confidence(fitted, Z), proba.max(axis=1), rtol=1e-12)
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = -np.nansum(proba * np.log(proba), axis=1)
        np.testing.assert_allclose(entropy(fitted, Z), ent, rtol=1e-9, atol=1e-12)
    ent = entropy(fitted, X)
    assert np.all(ent >= 0) and np.all(ent <= np.log(2) + 1e-12)
    assert np.all(confidence(fitted, X) >= 0.5)


def test_chunking_does_not_change_results(fitted, data):
    X, _ = data
    whole = {
        k: v for _, out in score_chunks(fitted, X, proba=True) for k, v in out.items()
    }
    parts = list(score_chunks(fitted, X, proba=True, chunk_size=7))
    assert [start for start, _ in parts] == list(range(0, len(X), 7))
    for key, value in whole.items():
        joined = np.concatenate([out[key] for _, out in parts])
        np.testing.assert_array_equal(joined, value)
    np.testing.assert_array_equal(whole["labels"], fitted.predict(X))
    np.testing.assert_allclose(
        whole["log_density"], fitted.score_samples(X), rtol=1e-12
    )


def test_low_confidence(fitted, data):
    X, _ = data
    conf = fitted.predict_proba(X).max(axis=1)
    for threshold in (0.6, 0.9, 0.99):
        idx = low_confidence(fitted, X, threshold)
        np.testing.assert_array_equal(idx, np.flatnonzero(conf < threshold))
    assert low_confidence(fitted, X, 0.5).size == 0
    assert 0 < low_confidence(fitted, X, 0.9).size < len(X)


def test_outlier_threshold_and_flags(fitted, data):
    X, _ = data
    threshold = fit_outlier_threshold(fitted, X, percentile=5)
    assert threshold == pytest.approx(
        np.percentile(fitted.score_samples(X), 5), rel=1e-12
    )
    flags = is_outlier(fitted, X, threshold)
    assert flags.dtype == bool and abs(flags.mean() - 0.05) < 0.01
    far = np.array([[50.0, 1400.0], [0.75, 1400.0]])
    np.testing.assert_array_equal(is_outlier(fitted, far, threshold), [True, False])
    with pytest.raises(ValueError, match="percentile"):
        fit_outlier_threshold(fitted, X, percentile=120)


def test_wrong_number_of_features(fitted):
    with pytest.raises(ValueError, match="features"):
        confidence(fitted, np.zeros((3, 5)))


def test_summary_in_original_units(data):
    X, _ = data
    scaler = Standardizer.fit(X)
    Z = scaler.transform(X)
    gm = GaussianMixture(2, random_state=0).fit(Z)
    text = summary(gm, Z, scaler=scaler, feature_names=["temp", "price"])
    means = gm.means_ * scaler.scale_ + scaler.mean_
    for value in means.ravel():
        assert f"{value:.4g}" in text
    stds = component_stds(gm) * scaler.scale_
    for value in stds.ravel():
        assert f"{value:.4g}" in text
    counts = np.bincount(gm.predict(Z), minlength=2)
    for c in counts:
        assert f" {c} " in text
    assert "original units" in text and "temp" in text and "price" in text
    assert "converged" in text and "BIC" in text
    n_low = int(np.sum(gm.predict_proba(Z).max(axis=1) < 0.9))
    assert f"{n_low} points" in text


def test_summary_without_data_and_names(fitted):
    text = summary(fitted)
    assert "model units" in text and "x0" in text and "size" not in text
    assert f"{fitted.weights_[0]:.4f}" in text
    with pytest.raises(ValueError, match="feature names"):
        summary(fitted, feature_names=["only one"])


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical"])
def test_component_stds(data, cov):
    X, _ = data
    gm = GaussianMixture(2, covariance_type=cov, random_state=0).fit(X / X.std(axis=0))
    c = gm.covariances_
    if cov == "full":
        full = c
    elif cov == "tied":
        full = np.broadcast_to(c, (2, 2, 2))
    elif cov == "diag":
        full = np.stack([np.diag(row) for row in c])
    else:
        full = c[:, None, None] * np.eye(2)
    expected = np.sqrt(np.diagonal(full, axis1=1, axis2=2))
    np.testing.assert_allclose(component_stds(gm), expected)


# ------------------------------------------------------------------ Standardizer
def test_standardizer_round_trip(data):
    X, _ = data
    s = Standardizer.fit(X)
    Z = s.transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(s.inverse_transform(Z), X, rtol=1e-12)
    again = Standardizer.from_dict(s.to_dict())
    np.testing.assert_array_equal(again.mean_, s.mean_)
    np.testing.assert_array_equal(again.scale_, s.scale_)
    assert s.transform(X.astype(np.float32)).dtype == np.float32


def test_standardizer_weights_and_constant_column():
    X = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    s = Standardizer.fit(X, sample_weight=[1, 0, 1])
    np.testing.assert_allclose(s.mean_, [3.0, 5.0])
    np.testing.assert_allclose(s.scale_, [2.0, 1.0])  # constant column: scale 1


@pytest.mark.parametrize(
    "bad",
    [
        {"mean": [0.0], "scale": [0.0]},
        {"mean": [0.0, 1.0], "scale": [1.0]},
        {"mean": [np.nan], "scale": [1.0]},
        {"scale": [1.0]},
    ],
)
def test_standardizer_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        Standardizer.from_dict(bad)


def test_standardizer_checks_width():
    s = Standardizer.fit(np.eye(3))
    with pytest.raises(ValueError, match="3 features"):
        s.transform(np.zeros((2, 2)))
