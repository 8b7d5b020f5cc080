"""mclust's noise component: its density in the kernels, its EM path against the
reference, the hypervolume, and the estimator's contract with noise."""

import warnings

import numpy as np
import pytest
from scipy.special import logsumexp

from fastgmm import GaussianMixture, inspection
from fastgmm.engine.score import score
from fastgmm.model import covariance as cov
from fastgmm.model import mclust
from fastgmm.model.noise import Noise, region
from fastgmm.model.params import Params

from .. import reference as ref

KINDS = ["full", "tied", "diag", "EII", "VEV", "EVE"]


@pytest.fixture
def noisy(rng):
    """Two Gaussian clusters (600 points) and 150 uniform points around them."""
    X = np.vstack([rng.normal([0, 0], 1, (300, 2)), rng.normal([6, 3], 0.7, (300, 2))])
    noise = rng.uniform(X.min(0) - 2, X.max(0) + 2, (150, 2))
    truth = np.r_[np.zeros(600, bool), np.ones(150, bool)]
    return np.vstack([X, noise]), truth


@pytest.mark.parametrize("name", KINDS)
def test_kernel_density_with_noise_is_the_oracles(rng, name):
    """log p(x) = logsumexp(log w_k N_k(x), log w_0 - log V) for every density kind
    (a tied covariance is handed to the kernels as one factor per component)."""
    k, d = 3, 4
    w, means, c, pc = ref.random_params(rng, k, d, name)
    X = rng.normal(scale=3.0, size=(500, d))
    noise = Noise(0.2, -5.0)
    params = Params(cov.get(name), w * 0.8, means, c, pc, noise)
    lse, resp, labels = score(X, params, lse=True, resp=True, labels=True)
    wlp = ref.weighted_log_prob(X, w * 0.8, means, pc, ref.LAYOUT[name])
    wlp = np.hstack([wlp, np.full((len(X), 1), np.log(0.2) - 5.0)])
    np.testing.assert_allclose(lse, logsumexp(wlp, axis=1), rtol=1e-12)
    np.testing.assert_allclose(resp, np.exp(wlp - lse[:, None]), atol=1e-12)
    np.testing.assert_array_equal(labels, wlp.argmax(1))


@pytest.mark.parametrize("name", KINDS)
def test_em_path_with_noise_follows_reference(rng, monkeypatch, name):
    """From a given start, the estimator's EM with a noise component (a given
    volume) equals the reference's EM iterated with a uniform column."""
    monkeypatch.setattr(mclust, "INNER_TOL", 1e-15)
    monkeypatch.setattr(mclust, "INNER_MAX_ITER", 200_000)
    k, d, n_iter, reg, volume = 2, 3, 5, 1e-6, 400.0
    w, means, c, pc = ref.random_params(rng, k, d, name)
    X = ref.sample_mixture(rng, 800, w, means * 2, c, ref.LAYOUT[name])
    X = np.vstack([X, rng.uniform(-8, 8, (100, d))])
    share = 0.15
    start = dict(
        weights_init=w,
        means_init=means * 2,
        precisions_init=np.asarray(cov.get(name).precisions(pc)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached without converging
        gm = GaussianMixture(
            k, covariance_type=name, tol=0, max_iter=n_iter, reg_covar=reg,
            noise=share, noise_volume=volume, **start,
        ).fit(X)  # fmt: skip
    ww, mm, cc, nw = w * (1 - share), means * 2, c, share
    bounds = []
    for _ in range(n_iter):
        lb, ww, mm, cc, nw = ref.noise_em_iteration(
            X, ww, mm, cc, name, reg, nw, np.log(volume)
        )
        bounds.append(lb)
    np.testing.assert_allclose(gm.lower_bounds_, bounds, rtol=1e-10)
    np.testing.assert_allclose(gm.noise_weight_, nw, rtol=1e-8)
    np.testing.assert_allclose(gm.weights_, ww, rtol=1e-8)
    np.testing.assert_allclose(gm.means_, mm, rtol=1e-6, atol=1e-8)
    assert gm.noise_density_ == pytest.approx(1 / volume)


def test_hypervolume_is_mclusts_hypvol(rng):
    """hypvol = min(volume of the bounding box, volume of the bounding box of the
    principal-component scores); 'box' the former."""
    X = rng.normal(size=(300, 3)) @ np.array([[3, 1, 0], [1, 1, 0], [0, 0, 0.2]])
    X[:, 2] += 4 * X[:, 0]  # correlated: the rotated box is smaller
    box = np.log(np.ptp(X, axis=0)).sum()
    centred = X - X.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    pca = np.log(np.ptp(centred @ vt.T, axis=0)).sum()
    assert pca < box
    assert region(X, "box").log_volume == pytest.approx(box, rel=1e-12)
    assert region(X, "hypvol").log_volume == pytest.approx(min(box, pca), rel=1e-10)
    inside = region(X, "hypvol").draw(np.random.RandomState(0), 2000)
    assert np.ptp(inside, axis=0).max() <= np.ptp(X, axis=0).max() * 1.5
    with pytest.raises(ValueError, match="hypervolume is 0"):
        region(np.c_[X[:, :2], np.ones(300)], "box")


def test_noise_finds_scattered_points(noisy):
    """mclust's use: the noise component takes the uniform points without being told
    their share, and (almost) none of the clusters'."""
    X, truth = noisy
    gm = GaussianMixture(2, noise=True, random_state=0).fit(X)
    labels = gm.predict(X)
    assert abs(gm.noise_weight_ - truth.mean()) < 0.04
    assert (labels[truth] == -1).mean() > 0.75  # some uniform points fall in clusters
    assert (labels[~truth] == -1).mean() < 0.03
    proba = gm.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(
        np.where(proba.argmax(1) == 2, -1, proba.argmax(1)), labels
    )
    np.testing.assert_allclose(gm.weights_.sum() + gm.noise_weight_, 1.0, rtol=1e-12)
    # BIC counts the noise's weight and volume (mclust's nMclustParams(noise = TRUE))
    p = cov.n_parameters("full", 2, 2) + 2
    assert gm.bic(X) == pytest.approx(-2 * gm.score(X) * len(X) + p * np.log(len(X)))


def test_noise_mask_start_and_share(noisy):
    """A mask of initial noise points (mclust's initialization$noise) and a share."""
    X, truth = noisy
    by_mask = GaussianMixture(2, noise=truth, random_state=0).fit(X)
    by_share = GaussianMixture(2, noise=0.3, random_state=0).fit(X)
    for gm in (by_mask, by_share):
        assert abs(gm.noise_weight_ - truth.mean()) < 0.04
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(by_mask.predict(X), by_share.predict(X)) > 0.97


def test_noise_in_inspection(noisy):
    X, truth = noisy
    gm = GaussianMixture(2, noise=True, random_state=0).fit(X)
    flags = inspection.is_noise(gm, X)
    np.testing.assert_array_equal(flags, gm.predict(X) == -1)
    assert "noise" in inspection.summary(gm, X)
    plain = GaussianMixture(2, random_state=0).fit(X)
    assert not inspection.is_noise(plain, X).any()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(noise=np.ones(10, bool)), "boolean mask of shape"),
        (dict(noise=np.ones(750, bool)), "some but not all points"),
        (dict(noise=1.5), "noise"),
        (dict(noise=True, noise_volume="ball"), "noise_volume"),
        (dict(noise=True, noise_volume=-1.0), "noise_volume"),
    ],
)
def test_bad_noise_settings_are_named_and_keep_the_model(noisy, kwargs, message):
    X, _ = noisy
    gm = GaussianMixture(2, random_state=0).fit(X)
    before = gm.means_.copy()
    with pytest.raises(ValueError, match=message):
        gm.set_params(**kwargs).fit(X)
    np.testing.assert_array_equal(gm.means_, before)
    assert not hasattr(gm, "noise_weight_")


def test_noise_refused_where_unsupported(noisy, tmp_path):
    X, _ = noisy
    with pytest.raises(ValueError, match="partial_fit supports neither"):
        GaussianMixture(2, noise=True).partial_fit(X)
    path = tmp_path / "x.npy"
    np.save(path, X)
    with pytest.raises(ValueError, match="in memory"):
        GaussianMixture(2, noise=True).fit(np.load(path, mmap_mode="r"))
    gm = GaussianMixture(2, noise=True, random_state=0).fit(X)
    with pytest.raises(ValueError, match="noise component"):
        gm.sample(5)
    with pytest.raises(ValueError, match="noise component cannot be saved"):
        gm.save(tmp_path / "m.fgmm")
    import pickle

    back = pickle.loads(pickle.dumps(gm))
    np.testing.assert_array_equal(back.predict(X), gm.predict(X))


def test_refit_without_noise_drops_the_noise(noisy):
    X, _ = noisy
    gm = GaussianMixture(2, noise=True, random_state=0).fit(X)
    gm.set_params(noise=False).fit(X)
    assert not hasattr(gm, "noise_weight_")
    assert gm.predict_proba(X).shape == (len(X), 2)


@pytest.mark.parametrize("noise", [True, "mask"])
def test_select_with_noise_equals_the_estimator(noisy, noise):
    """Each select candidate with noise is the estimator's fit (the same EM path),
    and its BIC counts the noise's two parameters."""
    import fastgmm
    from fastgmm.selection import SELECT_INIT, SELECT_MAX_ITER, SELECT_TOL

    X, truth = noisy
    noise = truth if noise == "mask" else noise
    result = fastgmm.select(X, [1, 2], ["VVV", "EEI"], noise=noise, random_state=0)
    settings = dict(init_params=SELECT_INIT, tol=SELECT_TOL, max_iter=SELECT_MAX_ITER)
    for row, model in zip(result.table, result.models):
        cold = GaussianMixture(
            row["n_components"], covariance_type=row["covariance_type"],
            noise=noise, random_state=0, **settings,
        ).fit(X)  # fmt: skip
        assert model.lower_bound_ == pytest.approx(cold.lower_bound_, rel=1e-12)
        assert model.noise_weight_ == pytest.approx(cold.noise_weight_, rel=1e-10)
        assert row["n_parameters"] == cold._n_parameters()
        assert row["bic"] == pytest.approx(cold.bic(X), rel=1e-10)
    assert result.best_params_ == {"n_components": 2, "covariance_type": "VVV"}


def test_noise_mask_with_zero_weights_is_the_fit_without_those_rows(noisy):
    """Rows of zero weight are absent: a noise mask over all rows gives the fit of the
    rows kept with the mask restricted to them."""
    X, truth = noisy
    w = np.ones(len(X))
    w[::7] = 0.0
    keep = w > 0
    a = GaussianMixture(2, noise=truth, random_state=0).fit(X, sample_weight=w)
    b = GaussianMixture(2, noise=truth[keep], random_state=0).fit(X[keep])
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10)
    assert a.noise_weight_ == pytest.approx(b.noise_weight_, rel=1e-10)


def test_select_with_a_noise_mask_and_zero_weights(noisy):
    """select keeps rows of zero weight (weight 0) where fit drops them; a noise mask
    over all rows works in both and gives the same candidate."""
    import fastgmm

    X, truth = noisy
    w = np.ones(len(X))
    w[::7] = 0.0
    result = fastgmm.select(
        X, [2], ["VVV"], noise=truth, sample_weight=w, random_state=0
    )
    from fastgmm.selection import SELECT_INIT, SELECT_MAX_ITER, SELECT_TOL

    cold = GaussianMixture(
        2, noise=truth, random_state=0, init_params=SELECT_INIT, tol=SELECT_TOL,
        max_iter=SELECT_MAX_ITER,
    ).fit(X, sample_weight=w)  # fmt: skip
    (model,) = result.models
    np.testing.assert_allclose(model.means_, cold.means_, rtol=1e-8)
    assert model.noise_weight_ == pytest.approx(cold.noise_weight_, rel=1e-8)
