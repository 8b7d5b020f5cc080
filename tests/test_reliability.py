"""Reliability (issue 12): far points, shapes, weights, float32, atomic refits.

Each test names the behaviour it guards; see docs/reliability.md for the list.
"""

import numpy as np
import pytest

from fastgmm import GaussianMixture
from fastgmm.inspection import fit_outlier_threshold, is_outlier

COV_TYPES = ["full", "tied", "diag", "spherical", "EEI", "EII"]


@pytest.fixture(scope="module")
def data():
    gen = np.random.default_rng(12)
    X = np.vstack([gen.normal(size=(400, 3)), gen.normal(size=(400, 3)) + 4.0])
    return X[gen.permutation(len(X))]


# ------------------------------------------------------------------ far points
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_far_points_score_minus_inf(data, cov_type):
    """A point whose density underflows under every component: log p = -inf (not
    NaN), equal responsibilities 1/K, label 0; the other points are unchanged."""
    X = data
    gm = GaussianMixture(3, covariance_type=cov_type, random_state=0).fit(X)
    far = np.array([[1e160, 0, 0], [1e200, -1e200, 1e200]])
    Z = np.vstack([X[:100], far, X[100:200]])
    scores = gm.score_samples(Z)
    proba = gm.predict_proba(Z)
    assert np.all(scores[100:102] == -np.inf)
    np.testing.assert_allclose(proba[100:102], 1 / 3)
    assert np.all(np.isfinite(proba))
    np.testing.assert_array_equal(gm.predict(Z)[100:102], 0)
    # ordinary points in the same blocks: bitwise what they score alone
    ordinary = np.r_[0:100, 102:202]
    np.testing.assert_array_equal(scores[ordinary], gm.score_samples(X[:200]))
    np.testing.assert_array_equal(proba[ordinary], gm.predict_proba(X[:200]))


@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_far_points_float32(data, cov_type):
    """float32 points cannot be far enough to underflow the float64 density: their
    log-density (-1e77) rounds to -inf in float32 and the responsibilities are the
    true ones, finite and summing to one."""
    X = data.astype(np.float32)
    gm = GaussianMixture(3, covariance_type=cov_type, random_state=0).fit(X)
    Z = np.array([[3e38, 0, 0], [-3e38, 3e38, 3e38]], dtype=np.float32)
    assert np.all(gm.score_samples(Z) == -np.inf)
    proba = gm.predict_proba(Z)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_far_points_are_outliers(data):
    gm = GaussianMixture(2, random_state=0).fit(data)
    threshold = fit_outlier_threshold(gm, data, percentile=1)
    Z = np.vstack([data[:5], [[1e160, 0.0, 0.0]]])
    np.testing.assert_array_equal(is_outlier(gm, Z, threshold)[-1], True)


def test_em_pass_far_zero_weight_row_adds_nothing(data):
    """Kernel level: a row of weight 0 whose log-density is -inf everywhere adds
    exactly nothing to the statistics or the log-likelihood."""
    from fastgmm.kernels import FULL
    from fastgmm.kernels.passes import em_pass

    K, d = 2, 3
    const = np.zeros(K)
    loc = data[:K].copy()
    prec = np.tile(np.eye(d), (K, 1, 1))
    sw = np.linspace(0.5, 1.5, len(data))
    far_X = np.vstack([data, [[1e160, 0.0, 0.0]]])
    far_sw = np.r_[sw, 0.0]
    a = em_pass(data, sw, FULL, const, loc, prec, loc, 128)
    b = em_pass(far_X, far_sw, FULL, const, loc, prec, loc, 128)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_predict_cli_flags_far_points(tmp_path, capsys):
    """The CLI's outlier column flags a point whose log-density is -inf."""
    from fastgmm.cli import main

    gen = np.random.default_rng(3)
    X = gen.normal(size=(300, 2))
    np.save(tmp_path / "train.npy", X)
    np.save(tmp_path / "new.npy", np.vstack([X[:3], [[1e160, 0.0]]]))
    model = str(tmp_path / "m.fgmm")
    assert main(["fit", str(tmp_path / "train.npy"), "-k", "2", "-o", model, "-q"]) == 0
    capsys.readouterr()
    assert main(["predict", model, str(tmp_path / "new.npy"), "--no-proba"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].split(",")[:3] == ["label", "log_density", "outlier"]
    last = rows[-1].split(",")
    assert float(last[1]) == -np.inf and last[2] in ("True", "1", "true")
