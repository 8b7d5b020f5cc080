"""fastgmm.mclust: mclust's Mclust entry point (tables in mclust's layout, the best
model, classification, uncertainty, noise) and the data sets it is shown on."""

import numpy as np
import pytest
from sklearn.datasets import load_iris

import fastgmm
from fastgmm.clustering import MODEL_NAMES
from fastgmm.datasets import load_faithful, make_banknote_like, make_diabetes_like


@pytest.fixture(scope="module")
def iris_result():
    """A part of mclust's default sweep on iris (the whole sweep: the slow tier)."""
    return fastgmm.mclust(
        load_iris().data, [1, 2, 3], ["EII", "EEE", "VEV", "VVV"], random_state=0
    )


def test_iris_is_mclusts_choice(iris_result):
    """Mclust(iris[, -5]) in mclust 6: VEV with 2 components, log-likelihood
    -215.726, df 26, BIC -561.7285, ICL -561.7289."""
    res = iris_result
    assert (res.best_model, res.best_G) == ("VEV", 2)
    assert res.loglik == pytest.approx(-215.726, abs=1e-3)
    assert res.n_parameters == 26
    assert res.bic[res.G.index(2), res.models.index("VEV")] == pytest.approx(
        -561.7285, abs=1e-3
    )
    assert res.icl[res.G.index(2), res.models.index("VEV")] == pytest.approx(
        -561.7289, abs=1e-3
    )


@pytest.mark.slow
def test_iris_default_sweep_is_mclusts():
    """The whole default sweep (G = 1..9, the 14 models): mclust's top three on iris
    are VEV,2 (-561.73), VEV,3 (-562.55), VVV,2 (-574.02)."""
    res = fastgmm.mclust(load_iris().data, random_state=0, tol=1e-6, n_init=3)
    assert res.G == list(range(1, 10)) and res.models == list(MODEL_NAMES)
    assert res.bic.shape == (9, 14)
    top = res.top(3)
    assert [(m, g) for m, g, _ in top] == [("VEV", 2), ("VEV", 3), ("VVV", 2)]
    np.testing.assert_allclose(
        [b for _, _, b in top], [-561.73, -562.55, -574.02], atol=0.02
    )


def test_tables_have_mclusts_layout_and_sign(iris_result):
    """Rows G, columns the models in mclust's order; values are minus select's BIC
    (mclust's sign), so the best is the largest."""
    res = iris_result
    assert res.G == [1, 2, 3] and res.models == ["EII", "EEE", "VEV", "VVV"]
    assert res.bic.shape == (3, 4)
    for row in res.selection.table:
        i = res.G.index(row["n_components"])
        j = res.models.index(
            fastgmm.model.covariance.get(row["covariance_type"]).mclust
        )
        assert res.bic[i, j] == -row["bic"]
    assert res.bic[res.G.index(res.best_G), res.models.index(res.best_model)] == (
        np.nanmax(res.bic)
    )
    # G = 1: every model with one component is the same single Gaussian family
    np.testing.assert_allclose(res.bic[0, res.models.index("EEE") :], res.bic[0, -1])
    text = res.format_table()
    assert text.splitlines()[1].split() == ["G", "EII", "EEE", "VEV", "VVV"]
    assert [m for m, _, _ in res.top(3)][0] == "VEV"
    assert "Mclust VEV (ellipsoidal, equal shape) model with 2 components" in (
        res.summary()
    )


def test_classification_and_uncertainty(iris_result):
    res = iris_result
    X = load_iris().data
    np.testing.assert_array_equal(res.classification, res.model_.predict(X))
    z = res.model_.predict_proba(X)
    np.testing.assert_allclose(res.uncertainty, 1 - z.max(axis=1))
    assert not res.noise.any()
    assert np.bincount(res.classification).tolist() == [50, 100]


def test_noise_only_model_and_noise(rng):
    """With noise, G = 0 is mclust's noise-only model: log L = -n log V, one
    parameter; on clusters plus uniform points a G > 0 model wins and flags noise."""
    X = np.vstack([rng.normal([0, 0], 1, (200, 2)), rng.normal([7, 2], 0.8, (200, 2))])
    X = np.vstack([X, rng.uniform(X.min(0) - 3, X.max(0) + 3, (80, 2))])
    res = fastgmm.mclust(X, [0, 1, 2, 3], ["VVV", "EII"], noise=True, random_state=0)
    assert res.G == [0, 1, 2, 3]
    box = fastgmm.model.noise.region(X, "hypvol").log_volume
    n = len(X)
    np.testing.assert_allclose(res.bic[0], 2 * (-n * box) - np.log(n))
    assert res.best_G == 2 and res.noise.sum() > 40
    np.testing.assert_array_equal(res.noise, res.classification == -1)
    assert res.z.shape == (n, 3)
    with pytest.raises(ValueError, match="needs noise"):
        fastgmm.mclust(X, [0, 1])


def test_models_by_either_name_and_few_points(rng):
    X = rng.normal(size=(5, 6))
    res = fastgmm.mclust(X, [1, 2], random_state=0)
    assert res.models == ["EII", "VII", "EEI", "VEI", "EVI", "VVI"]  # n <= d: mclust's
    res = fastgmm.mclust(rng.normal(size=(50, 2)), 2, ["full", "VVV", "tied"])
    assert res.models == ["VVV", "EEE"]
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        fastgmm.mclust(X, 2, ["XYZ"])


def test_prior_reaches_every_candidate(rng):
    """prior=True goes to every candidate (a MAP fit differs from the ML one)."""
    X = rng.normal(size=(60, 2))
    plain = fastgmm.mclust(X, [2], ["VVV"], random_state=0)
    regularised = fastgmm.mclust(X, [2], ["VVV"], prior=True, random_state=0)
    assert regularised.model_.prior is True
    assert not np.allclose(plain.model_.covariances_, regularised.model_.covariances_)


def test_data_sets_ship_without_download():
    X = load_faithful()
    assert X.shape == (272, 2)
    np.testing.assert_allclose(X.mean(axis=0), [3.487783, 70.897059], atol=1e-6)
    Xd, yd = make_diabetes_like()
    assert Xd.shape == (145, 3) and np.bincount(yd).tolist() == [76, 36, 33]
    Xb, yb = make_banknote_like()
    assert Xb.shape == (200, 6) and np.bincount(yb).tolist() == [100, 85, 15]
    np.testing.assert_array_equal(make_banknote_like(3)[0], make_banknote_like(3)[0])


@pytest.mark.slow
def test_faithful_with_a_tight_search_is_mclusts_eee3():
    """Mclust(faithful) in mclust 6: EEE with 3 components, BIC -2314.386. Among the
    ellipsoidal models, with a tight tolerance and a few starts (mclust stops at a
    relative change of 1e-5, ~0.1 lower). The diagonal models are left out: on
    faithful's rounded waiting times a VVI component collapses onto equal values
    (kept finite by reg_covar), which mclust reports as NA and select's
    degenerate-fit flag (part 2 of issue 14) excludes."""
    models = ["EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV"]
    res = fastgmm.mclust(
        load_faithful(), range(1, 6), models, random_state=0, tol=1e-8, n_init=3
    )
    assert (res.best_model, res.best_G) == ("EEE", 3)
    assert res.bic[2, res.models.index("EEE")] == pytest.approx(-2314.386, abs=0.15)


def test_noise_only_model_with_weights_is_repeated_rows(rng):
    """On uniform points the noise-only model (G = 0) wins; its log-likelihood is
    -sum(w) log V and its BIC uses n = sum(w), as for repeated rows."""
    X = rng.uniform(0, 4, size=(60, 2))
    w = rng.integers(1, 4, size=60)
    args = ([0, 1], ["EII"])
    opts = dict(noise=True, noise_volume=16.0, random_state=0)
    weighted = fastgmm.mclust(X, *args, sample_weight=w, **opts)
    repeated = fastgmm.mclust(np.repeat(X, w, axis=0), *args, **opts)
    assert weighted.best_G == repeated.best_G == 0
    assert weighted.loglik == pytest.approx(-w.sum() * np.log(16.0), rel=1e-12)
    assert weighted.loglik == pytest.approx(repeated.loglik, rel=1e-12)
    assert weighted.bic[0, 0] == pytest.approx(repeated.bic[0, 0], rel=1e-12)
    assert weighted.noise.all() and weighted.n_parameters == 1
