"""The covariance-model table (fastgmm.model.covariance) against the NumPy oracle:
every record's shapes, parameter counts, factors, views, checks, repair, sampling
and M-step, and a fit of each mclust-only model (EEI, EII) against EM iterated by
the oracle from the same start."""

import warnings

import numpy as np
import pytest

from fastgmm import GaussianMixture
from fastgmm.model import covariance as cov
from fastgmm.model.params import Params, kernel_inputs

from .. import reference as ref

MODELS = ref.ALL_MODELS


def test_table_names_and_aliases():
    assert {m.name for m in cov.MODELS} == set(MODELS)
    assert set(ref.COVARIANCE_TYPES) <= set(cov.names())
    mclust = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}
    for sk_name, mc_name in mclust.items():
        assert cov.get(mc_name) is cov.get(sk_name)
        assert cov.get(sk_name).mclust == mc_name
    assert {m.name for m in cov.MODELS if m.sklearn} == set(ref.COVARIANCE_TYPES)
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        cov.get("VVZ")


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("k, d", [(1, 1), (3, 2), (4, 5)])
def test_parameter_count_and_shapes(name, k, d):
    model = cov.get(name)
    assert cov.n_parameters(name, k, d) == ref.n_parameters(name, k, d)
    _, _, c, pc = ref.random_params(np.random.default_rng(0), k, d, name)
    assert model.shape(k, d) == np.shape(c) == np.shape(pc)


@pytest.mark.parametrize("name", MODELS)
def test_factors_views_and_log_det(rng, name):
    k, d = 3, 4
    model = cov.get(name)
    _, means, c, pc_o = ref.random_params(rng, k, d, name)
    pc = model.prec_chol(np.asarray(c))
    np.testing.assert_allclose(pc, pc_o, rtol=1e-12)
    np.testing.assert_allclose(model.covariances_from_prec_chol(pc), c, rtol=1e-10)
    prec = model.precisions(pc)
    np.testing.assert_allclose(model.prec_chol_from_prec(prec), pc, rtol=1e-10)
    full = ref.covariances_from_prec_chol(pc, name, k, d)
    np.testing.assert_allclose(model.full(c, k, d), full, rtol=1e-10)
    sign, log_det = np.linalg.slogdet(full)
    np.testing.assert_allclose(model.log_det(pc, k, d), -0.5 * log_det, rtol=1e-10)


@pytest.mark.parametrize("name", MODELS)
def test_kernel_inputs_give_oracle_density(rng, name):
    """const/loc/prec of the kernel layout reproduce log w_k + log N(x | k)."""
    from fastgmm.engine.score import score

    k, d = 3, 4
    w, means, c, pc = ref.random_params(rng, k, d, name)
    X = rng.normal(scale=2.0, size=(500, d))
    params = Params(cov.get(name), w, means, c, pc)
    assert kernel_inputs(params).const.shape == (k,)
    (lse,) = score(X, params, lse=True)
    expected, _ = ref.e_step(X, w, means, pc, name)
    np.testing.assert_allclose(lse, expected, rtol=1e-12)


@pytest.mark.parametrize("name", MODELS)
def test_precision_checks(name):
    model = cov.get(name)
    k, d = 2, 3
    _, _, c, pc = ref.random_params(np.random.default_rng(1), k, d, name)
    model.check_precisions(model.precisions(np.asarray(pc)), name)
    bad = -np.abs(model.precisions(np.asarray(pc)))
    message = "symmetric, positive-definite" if model.form == "dense" else "positive"
    with pytest.raises(ValueError, match=message):
        model.check_precisions(bad, name)


@pytest.mark.parametrize("name", MODELS)
def test_repair_makes_positive_definite(name):
    model = cov.get(name)
    k, d = 3, 2
    c = np.zeros(model.shape(k, d))  # singular (dense) or zero variances
    with pytest.raises(cov.IllDefinedCovariance):
        model.prec_chol(c)
    fixed, repaired = model.repair(c, 1e-3)
    assert repaired
    assert np.all(np.isfinite(model.prec_chol(fixed)))


@pytest.mark.parametrize("name", MODELS)
def test_sampling_follows_the_full_view(name):
    model = cov.get(name)
    k, d = 2, 3
    w, means, c, _ = ref.random_params(np.random.default_rng(3), k, d, name)
    means = means * 10  # separated: labels are known anyway
    X, labels = cov.sample(np.random.RandomState(0), name, w, means, c, 40_000)
    assert X.shape == (40_000, d) and np.bincount(labels).sum() == 40_000
    full = model.full(c, k, d)
    for j in range(k):
        emp = np.cov(X[labels == j].T)
        np.testing.assert_allclose(emp, full[j], atol=0.08 * np.abs(full[j]).max())


@pytest.mark.parametrize("name", ["EEI", "EII"])
@pytest.mark.parametrize("weighted", [False, True])
def test_mclust_model_fit_follows_oracle_em(rng, name, weighted):
    """The estimator's EM path for a model scikit-learn lacks equals EM iterated by
    the oracle (E-step by logsumexp, mclust's pooled M-step) from the same start."""
    k, d, n_iter, reg = 3, 4, 6, 1e-6
    w, means, c, pc = ref.random_params(rng, k, d, name)
    X = ref.sample_mixture(rng, 2000, w, means, c, name)
    sw = rng.uniform(0.2, 2.0, len(X)) if weighted else None
    start = dict(weights_init=w, means_init=means, precisions_init=np.asarray(pc**2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached without converging
        gm = GaussianMixture(
            k, covariance_type=name, tol=0, max_iter=n_iter, reg_covar=reg, **start
        ).fit(X, sample_weight=sw)
    bounds = []
    for _ in range(n_iter):
        lb, w, means, c, pc = ref.em_iteration(X, w, means, pc, name, reg, sw)
        bounds.append(lb)
    np.testing.assert_allclose(gm.lower_bounds_, bounds, rtol=1e-11)
    np.testing.assert_allclose(gm.weights_, w, rtol=1e-9)
    np.testing.assert_allclose(gm.means_, means, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gm.covariances_, c, rtol=1e-9)
    assert np.shape(gm.covariances_) == cov.get(name).shape(k, d)


@pytest.mark.parametrize("name", ["EEI", "EII"])
def test_mclust_model_through_the_public_api(tmp_path, blobs, name):
    """predict, sample, bic, persistence and select accept the new records."""
    import fastgmm

    gm = GaussianMixture(3, covariance_type=name, random_state=0).fit(blobs)
    assert gm.converged_
    assert np.isfinite(gm.bic(blobs))
    labels = gm.predict(blobs)
    assert len(np.unique(labels)) == 3
    Xs, _ = gm.sample(10)
    assert Xs.shape == (10, 2)
    path = tmp_path / "m.fgmm"
    gm.save(path)
    back = fastgmm.load(path)
    np.testing.assert_array_equal(back.predict(blobs), labels)
    result = fastgmm.select(blobs, [2, 3], ["full", name], random_state=0)
    assert name in [r["covariance_type"] for r in result.table]
