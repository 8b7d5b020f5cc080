"""mclust's conjugate prior (fastgmm.model.prior): mclust's MAP formulas where they
apply, the posterior's optimality in every model's family otherwise, mclust's
defaultPrior, and fits that stay well defined where maximum likelihood collapses."""

import warnings

import numpy as np
import pytest

from fastgmm import GaussianMixture
from fastgmm.exceptions import DegenerateComponentWarning
from fastgmm.model import covariance as cov
from fastgmm.model import mclust
from fastgmm.model.prior import Prior, default_prior, estimate

from .. import reference as ref
from .test_mclust import _perturb


@pytest.fixture
def tight(monkeypatch):
    monkeypatch.setattr(mclust, "INNER_TOL", 1e-15)
    monkeypatch.setattr(mclust, "INNER_MAX_ITER", 200_000)


def _problem(rng, G=3, d=3, n=60):
    X = rng.normal(size=(n, d)) * [1.0, 2.0, 0.5] + rng.normal(size=d)
    resp = rng.dirichlet(np.full(G, 0.5), size=n)
    return X, resp


def _prior(rng, name, d):
    dense = cov.get(name).form == "dense"
    A = rng.normal(size=(d, d))
    scale = A @ A.T / d + np.eye(d) if dense else 0.7
    return Prior(0.3, rng.normal(size=d), d + 2.5, scale)


def _map(name, X, resp, prior, reg=0.0):
    about = np.zeros((resp.shape[1], X.shape[1]))
    kind = "full" if cov.get(name).form == "dense" else "diag"
    stats = ref.sufficient_stats(X, resp, None, about, kind)
    return estimate(name, stats, about, reg, prior)


@pytest.mark.parametrize("name", ["VVV", "EEE", "VVI", "EEI", "VII", "EII"])
def test_map_m_step_equals_mclusts(rng, name):
    """mclust's formulas (Fraley & Raftery 2007) for the six models where they are
    fastgmm's."""
    X, resp = _problem(rng)
    prior = _prior(rng, name, 3)
    _, means, c = _map(name, X, resp, prior)
    means_o, c_o = ref.mclust_map_m_step(
        X, resp, name, prior.shrinkage, prior.mean, prior.dof, prior.scale
    )
    np.testing.assert_allclose(means, means_o, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cov.get(name).full(c, 3, 3), c_o, rtol=1e-10)


@pytest.mark.parametrize("name", ref.MCLUST_NAMES)
def test_map_m_step_maximises_the_posterior(rng, tight, name):
    """The estimates maximise the log posterior (written out in the reference): no
    nearby means, nor covariances of the same model, do better."""
    X, resp = _problem(rng)
    prior = _prior(rng, name, 3)
    _, means, c = _map(name, X, resp, prior)
    covs = cov.get(name).full(c, 3, 3)
    args = (X, resp, prior.shrinkage, prior.mean, prior.dof, prior.scale)
    best = ref.log_posterior(name, means, covs, *args)
    for eps in (1e-2, 1e-3):
        for _ in range(15):
            other_means = means + eps * rng.normal(size=means.shape)
            assert ref.log_posterior(name, other_means, covs, *args) <= best + 1e-9
            other = _perturb(rng, name, covs, eps)
            assert ref.log_posterior(name, means, other, *args) <= best + 1e-9


def test_default_prior_is_mclusts(rng):
    """defaultPrior: mean = colMeans, dof = d + 2, shrinkage 0.01, scale = var(X) /
    G^(2/d) (dense) or sum(diag var) / d / G^(2/d) (the others); var with n - 1."""
    X = rng.normal(size=(40, 3)) @ rng.normal(size=(3, 3))
    G = 4
    fac = (1 / G) ** (2 / 3)
    dense = default_prior(X, G, "VVV")
    np.testing.assert_allclose(dense.mean, X.mean(0))
    np.testing.assert_allclose(dense.scale, fac * np.cov(X.T))
    assert dense.dof == 5 and dense.shrinkage == 0.01
    diag = default_prior(X, G, "VEI")
    np.testing.assert_allclose(diag.scale, fac * np.trace(np.cov(X.T)) / 3)
    few = default_prior(X[:3], G, "VVV")  # n <= d: the diagonal of var
    np.testing.assert_allclose(few.scale, fac * np.diag(np.diag(np.cov(X[:3].T))))
    custom = default_prior(
        X, G, "VVV", {"shrinkage": 0.5, "dof": 9, "scale": np.eye(3)}
    )
    assert custom.shrinkage == 0.5 and custom.dof == 9
    np.testing.assert_array_equal(custom.scale, np.eye(3))


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"shrink": 1}, "prior accepts the keys"),
        ({"shrinkage": -1}, "shrinkage must be >= 0"),
        ({"dof": 0}, "dof must be > 0"),
        ({"mean": [1, 2]}, "prior mean must be 3 finite numbers"),
        ({"scale": np.ones((2, 2))}, "symmetric \\(3, 3\\)"),
        ({"scale": -np.eye(3)}, "positive semi-definite"),
    ],
)
def test_bad_prior_settings_are_named(rng, settings, message):
    X = rng.normal(size=(30, 3))
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2, prior=settings).fit(X)


def test_prior_keeps_high_k_fits_well_defined(rng):
    """Many components on few distinct points: maximum likelihood collapses
    components (repaired, with a warning); the prior keeps every covariance
    positive definite without repair and converges."""
    base = rng.normal(size=(12, 3))
    X = np.repeat(base, 5, axis=0) + rng.normal(scale=1e-9, size=(60, 3))
    with pytest.warns(DegenerateComponentWarning):
        GaussianMixture(10, reg_covar=0.0, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateComponentWarning)
        gm = GaussianMixture(10, reg_covar=0.0, prior=True, random_state=0).fit(X)
    assert gm.converged_
    assert np.all(np.linalg.eigvalsh(gm.covariances_) > 1e-3)


def test_prior_changes_nothing_when_off(rng):
    """prior=None (the default) is scikit-learn's EM, bitwise."""
    X = rng.normal(size=(200, 2))
    a = GaussianMixture(3, random_state=0).fit(X)
    b = GaussianMixture(3, random_state=0, prior=None, noise=False).fit(X)
    np.testing.assert_array_equal(a.covariances_, b.covariances_)
    assert a.lower_bounds_ == b.lower_bounds_


def test_prior_fit_uses_weights_as_repeated_rows(rng):
    """Integer sample weights give the fit of repeated rows (also the data mean and
    variance the default prior takes)."""
    X = rng.normal(size=(80, 2))
    w = rng.integers(1, 4, size=80)
    start = dict(
        weights_init=[0.5, 0.5],
        means_init=X[:2],
        precisions_init=np.stack([np.eye(2)] * 2),
    )
    a = GaussianMixture(2, prior=True, **start).fit(X, sample_weight=w)
    b = GaussianMixture(2, prior=True, **start).fit(np.repeat(X, w, axis=0))
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-8)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-8)


def test_select_with_prior_equals_the_estimator(rng):
    """Each select candidate with the prior is the estimator's fit (the prior's scale
    follows K, as mclust's defaultPrior)."""
    import fastgmm
    from fastgmm.selection import SELECT_INIT, SELECT_MAX_ITER, SELECT_TOL

    X = np.vstack([rng.normal(size=(60, 2)), rng.normal(size=(60, 2)) + 4])
    result = fastgmm.select(X, [1, 3], ["VVV", "VEI"], prior=True, random_state=0)
    settings = dict(init_params=SELECT_INIT, tol=SELECT_TOL, max_iter=SELECT_MAX_ITER)
    for row, model in zip(result.table, result.models):
        cold = GaussianMixture(
            row["n_components"], covariance_type=row["covariance_type"],
            prior=True, random_state=0, **settings,
        ).fit(X)  # fmt: skip
        np.testing.assert_allclose(model.covariances_, cold.covariances_, rtol=1e-12)
        assert model.lower_bound_ == pytest.approx(cold.lower_bound_, rel=1e-12)


def test_one_feature_shared_models_agree_with_the_prior(rng):
    """At d = 1, EEE, EEI and EII are one shared variance with the same default
    prior, so their MAP fits from one start agree. EEE's start has TIED statistics
    whose s2 is (K, 1, 1) like a FULL one: the first M-step must still take the pooled
    scatter (a shape test read the unfilled s2 as the scatter)."""
    X = np.concatenate([rng.normal(0, 1, 70), rng.normal(5, 2, 50)])[:, None]
    fits = [
        GaussianMixture(2, covariance_type=name, prior=True, random_state=0).fit(X)
        for name in ("EEE", "EEI", "EII")
    ]
    for other in fits[1:]:
        np.testing.assert_allclose(fits[0].means_, other.means_, rtol=1e-10)
        np.testing.assert_allclose(
            fits[0].covariances_.ravel(), np.ravel(other.covariances_), rtol=1e-10
        )
        assert fits[0].lower_bound_ == pytest.approx(other.lower_bound_, rel=1e-12)


def test_model_files_keep_the_prior_or_refuse_it(rng, tmp_path):
    """prior=True is kept by a model file; prior settings (a dict, which may hold
    arrays) are refused with a clear error rather than dropped."""
    import fastgmm

    X = rng.normal(size=(80, 2))
    gm = GaussianMixture(2, covariance_type="VEV", prior=True, random_state=0).fit(X)
    fastgmm.save(gm, tmp_path / "p.fgmm")
    back = fastgmm.load(tmp_path / "p.fgmm")
    assert back.prior is True
    np.testing.assert_array_equal(back.predict_proba(X), gm.predict_proba(X))
    gm = GaussianMixture(2, prior={"shrinkage": 0.1}, random_state=0).fit(X)
    with pytest.raises(ValueError, match="prior settings"):
        fastgmm.save(gm, tmp_path / "q.fgmm")
    assert not (tmp_path / "q.fgmm").exists()
