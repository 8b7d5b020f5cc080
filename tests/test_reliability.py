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


# ------------------------------------------------------- shapes of a model
def _fitted(data, cov_type="full", k=3):
    return GaussianMixture(k, covariance_type=cov_type, random_state=0).fit(data)


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("means_", np.zeros((3, 2)), ["n_features_in_ is 3", "(3, 2)"]),
        ("means_", np.zeros((3, 5)), ["n_features_in_", "5"]),
        ("means_", np.zeros(3), ["means_", "(3,)"]),
        ("weights_", np.full(4, 0.25), ["weights_", "(4,)", "(3,)"]),
        ("precisions_cholesky_", np.zeros((3, 2, 2)), ["precisions_cholesky_"]),
        ("precisions_cholesky_", np.zeros((2, 3, 3)), ["precisions_cholesky_"]),
        ("covariances_", np.zeros((3, 3)), ["covariances_", "(3, 3, 3)"]),
    ],
)
def test_hand_assigned_arrays_of_wrong_shape(data, name, value, words):
    """Every scoring entry checks K and d of every array before a kernel runs."""
    gm = _fitted(data)
    setattr(gm, name, value)
    big = np.tile(data, (50, 1))  # large X: out-of-bounds reads would crash
    for call in (gm.score_samples, gm.predict, gm.predict_proba, gm.score):
        with pytest.raises(ValueError) as err:
            call(big)
        for word in words:
            assert word in str(err.value)


def test_hand_built_model_checks_n_components_and_width(data):
    gm = _fitted(data)
    gm.n_components = 4
    with pytest.raises(ValueError, match="n_components is 4"):
        gm.predict(data)
    gm = _fitted(data)
    gm.means_, gm.n_features_in_ = np.zeros((3, 2)), 2  # consistent width, wrong U
    with pytest.raises(ValueError, match="precisions_cholesky_"):
        gm.predict(data[:, :2])
    with pytest.raises(ValueError, match="features"):
        gm.predict(data)  # wrong-width X


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_params_check_names_the_mismatch(data, cov_type):
    """The shapes come from the covariance-model table, for every model."""
    from fastgmm.engine.score import score
    from fastgmm.model.params import from_fitted

    gm = _fitted(data, cov_type)
    params = from_fitted(gm)
    with pytest.raises(ValueError, match="X has 2 features"):
        score(data[:, :2], params, lse=True)
    with pytest.raises(ValueError, match="2-D"):
        score(data[0], params, lse=True)
    bad = np.ones(np.shape(gm.precisions_cholesky_) + (1,))
    gm.precisions_cholesky_ = bad
    with pytest.raises(ValueError, match="precisions_cholesky_"):
        gm.score_samples(data)


def test_warm_start_and_partial_fit_check_shapes(data):
    gm = GaussianMixture(3, warm_start=True, random_state=0).fit(data)
    gm.weights_ = np.full(2, 0.5)
    with pytest.raises(ValueError, match="weights_"):
        gm.fit(data)
    with pytest.raises(ValueError, match="weights_"):
        gm.partial_fit(data)


def test_sklearn_model_with_wrong_shapes(data):
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    from fastgmm.inspection import confidence

    sk = SkGaussianMixture(2, random_state=0).fit(data)
    sk.precisions_cholesky_ = sk.precisions_cholesky_[:, :2, :2]
    with pytest.raises(ValueError, match="precisions_cholesky_"):
        confidence(sk, data)


# ------------------------------------------------------------------- memory
def _slot_bytes(k, p, d):
    return 8 * (1 + k * (1 + d + p * d))


@pytest.mark.parametrize(
    "n_chunks, k, p, d, expected",
    [
        (1000, 8, 3, 3, 64),  # small statistics: GROUP slots as before
        (10, 8, 3, 3, 10),  # fewer chunks than slots
        (1000, 128, 128, 128, 16),  # full, d = K = 128: 16 x 16.9 MB, not 64
        (1000, 128, 1, 128, 64),  # diag at the same size: small slots
        (1000, 64, 96, 96, 48),  # 4.8 MB slots: 48 fit in the budget
        (1000, 1024, 256, 256, 16),  # huge slots: never fewer than SLOT_STEP
        (3, 1024, 256, 256, 3),
    ],
)
def test_slot_count_bounds_partial_sum_memory(n_chunks, k, p, d, expected):
    """The slots a pass holds: a function of the problem shape only, within
    max(SLOT_BYTES, SLOT_STEP slots)."""
    from fastgmm.kernels.blocks import SLOT_BYTES, SLOT_STEP, slot_count

    n_slots = slot_count(n_chunks, k, p, d)
    assert n_slots == expected
    assert n_slots * _slot_bytes(k, p, d) <= max(
        SLOT_BYTES, SLOT_STEP * _slot_bytes(k, p, d)
    )


def test_em_pass_bitwise_whatever_the_slot_count():
    """Slots are added in chunk order, so a pass whose slots were capped (K d^2
    large) equals, bitwise, the same pass split into independent calls summed in
    chunk order: the cap changes memory, never results."""
    from fastgmm.kernels import FULL
    from fastgmm.kernels.blocks import slot_count
    from fastgmm.kernels.passes import em_pass

    gen = np.random.default_rng(0)
    k, d, chunk, n_chunks = 32, 128, 256, 52
    assert slot_count(n_chunks, k, d, d) == 48  # capped at this shape
    X = gen.normal(size=(n_chunks * chunk, d))
    const = np.zeros(k)
    loc = X[:k].copy()
    prec = np.tile(np.eye(d), (k, 1, 1))
    whole = em_pass(X, np.empty(0), FULL, const, loc, prec, loc, chunk)
    ll, nk, s1, s2 = 0.0, 0.0, 0.0, 0.0
    for start in range(0, len(X), chunk):
        part = em_pass(
            X[start : start + chunk], np.empty(0), FULL, const, loc, prec, loc, chunk
        )
        ll, nk, s1, s2 = ll + part[0], nk + part[1], s1 + part[2], s2 + part[3]
    assert whole[0] == ll
    for a, b in zip(whole[1:], (nk, s1, s2)):
        np.testing.assert_array_equal(a, b)
