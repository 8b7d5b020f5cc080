"""fastgmm.model.variational against independent references: scikit-learn's
BayesianGaussianMixture methods (M-step, E-step, lower bound) on the same state, and
plain NumPy sums over (n, K) responsibility arrays (tests/reference.py)."""

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.mixture import BayesianGaussianMixture as SKBayesian

from fastgmm.model import covariance, variational
from fastgmm.model.params import from_fitted, kernel_inputs

from .. import reference as ref

COV_TYPES = ref.COVARIANCE_TYPES
PRIORS = ("dirichlet_process", "dirichlet_distribution")


def _data(rng, n=400, d=3):
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, 0.0], [1.0, 6.0, 2.0]])[:, :d]
    return centres[rng.integers(3, size=n)] + rng.normal(size=(n, d))


def _random_resp(rng, n, k):
    resp = rng.uniform(size=(n, k)) ** 3
    return resp / resp.sum(axis=1, keepdims=True)


def _sklearn_twin(X, covariance_type, prior_type, n_components=4, seed=0):
    """A scikit-learn BGM whose priors are set from X and whose posterior is one
    M-step of random responsibilities (its own private methods, as the oracle)."""
    sk = SKBayesian(
        n_components=n_components,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        mean_precision_prior=0.7,
        weight_concentration_prior=0.3,
        degrees_of_freedom_prior=X.shape[1] + 0.5,
    )
    sk._check_parameters(X)
    resp = _random_resp(np.random.default_rng(seed), X.shape[0], n_components)
    sk._m_step(X, np.log(resp))
    sk._set_parameters(sk._get_parameters())
    return sk


def _prior_of(sk):
    return variational.Prior(
        sk.weight_concentration_prior_type,
        sk.weight_concentration_prior_,
        sk.mean_precision_prior_,
        np.asarray(sk.mean_prior_, float),
        float(sk.degrees_of_freedom_prior_),
        np.asarray(sk.covariance_prior_, float),
    )


def _tied_total(X, w=None):
    w = np.ones(len(X)) if w is None else w
    centre = w @ X / w.sum()
    return centre, ((X - centre).T * w) @ (X - centre)


@pytest.mark.parametrize("prior_type", PRIORS)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_m_step_equals_sklearn(rng, covariance_type, prior_type):
    X = _data(rng)
    sk = _sklearn_twin(X, covariance_type, prior_type)
    resp = _random_resp(rng, X.shape[0], 4)
    means_before = rng.normal(size=(4, 3))  # statistics about any reference point
    stats = ref.sufficient_stats(X, resp, None, means_before, covariance_type)
    post, means, cov = variational.m_step(
        covariance_type, _prior_of(sk), stats, means_before, sk.reg_covar,
        _tied_total(X),
    )  # fmt: skip
    sk._m_step(X, np.log(resp))
    sk._set_parameters(sk._get_parameters())
    np.testing.assert_allclose(means, sk.means_, rtol=1e-12)
    np.testing.assert_allclose(cov, sk.covariances_, rtol=1e-11)
    np.testing.assert_allclose(post.mean_precision, sk.mean_precision_, rtol=1e-13)
    np.testing.assert_allclose(post.degrees_of_freedom, sk.degrees_of_freedom_)
    np.testing.assert_allclose(
        post.weight_concentration, np.asarray(sk.weight_concentration_), rtol=1e-13
    )
    np.testing.assert_allclose(variational.weights(post), sk.weights_, rtol=1e-13)


@pytest.mark.parametrize("prior_type", PRIORS)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_e_step_terms_equal_sklearn(rng, covariance_type, prior_type):
    """Gaussian log-density + the per-component constants = sklearn's variational
    weighted log-probabilities."""
    X = _data(rng)
    sk = _sklearn_twin(X, covariance_type, prior_type)
    params = from_fitted(sk)
    inputs = kernel_inputs(params)
    logdet = covariance.get(covariance_type).log_det(params.prec_chol, 4, 3)
    gauss = ref.log_gaussian_prob(
        X, sk.means_, sk.precisions_cholesky_, covariance_type
    )
    ours = gauss - logdet + 1.5 * np.log(2 * np.pi) + inputs.const
    np.testing.assert_allclose(ours, sk._estimate_weighted_log_prob(X), rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("covariance_type", ref.MODELS)
def test_weighted_mahalanobis_from_statistics(rng, covariance_type, weighted):
    """sum_ik w_i r_ik (x_i - m_k)' P_k (x_i - m_k) from (nk, s1, s2) (and the total
    scatter for tied) equals the direct sum over the (n, K) array."""
    X = _data(rng) + 100.0  # away from the origin: the tied identity must not cancel
    w = rng.uniform(0.1, 3.0, X.shape[0]) if weighted else None
    _, means, _, prec_chol = ref.random_params(rng, 4, 3, covariance_type)
    means += 100.0
    resp = _random_resp(rng, X.shape[0], 4)
    stats = ref.sufficient_stats(X, resp, w, means, covariance_type)
    maha = variational.weighted_mahalanobis(
        covariance_type, prec_chol, stats, means, _tied_total(X, w)
    )
    U = ref._as_full(prec_chol, covariance_type, 4, 3)
    direct = sum(
        ((1.0 if w is None else w) * resp[:, k])
        @ np.sum(((X - means[k]) @ U[k]) ** 2, axis=1)
        for k in range(4)
    )
    assert maha == pytest.approx(direct, rel=1e-11)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_resp_log_resp_from_the_pass(rng, covariance_type):
    """sum_i w_i sum_k r_ik log r_ik = sum_k nk_k c_k - maha / 2 - sum_i w_i lse_i."""
    X = _data(rng)
    w = rng.uniform(0.1, 3.0, X.shape[0])
    _, means, _, prec_chol = ref.random_params(rng, 4, 3, covariance_type)
    const = rng.normal(size=4) - 3.0
    U = ref._as_full(prec_chol, covariance_type, 4, 3)
    maha_ik = np.stack(
        [np.sum(((X - means[k]) @ U[k]) ** 2, axis=1) for k in range(4)], axis=1
    )
    log_rho = const - 0.5 * maha_ik
    lse = logsumexp(log_rho, axis=1)
    log_resp = log_rho - lse[:, None]
    resp = np.exp(log_resp)
    stats = ref.sufficient_stats(X, resp, w, means, covariance_type)
    maha = variational.weighted_mahalanobis(
        covariance_type, prec_chol, stats, means, _tied_total(X, w)
    )
    got = variational.resp_log_resp(float(w @ lse), stats[0], const, maha)
    assert got == pytest.approx(float(np.sum(w[:, None] * resp * log_resp)), rel=1e-11)


@pytest.mark.parametrize("prior_type", PRIORS)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_lower_bound_equals_sklearn(rng, covariance_type, prior_type):
    X = _data(rng)
    sk = _sklearn_twin(X, covariance_type, prior_type)
    log_norm, log_resp = sk._e_step(X)
    sk._m_step(X, log_resp)
    expected = sk._compute_lower_bound(log_resp, log_norm)
    post = variational.posterior_of(sk)
    r_log_r = float(np.sum(np.exp(log_resp) * log_resp))
    got = variational.lower_bound(
        r_log_r, post, covariance_type, sk.precisions_cholesky_, 3
    )
    assert got == pytest.approx(float(np.squeeze(expected)), rel=1e-13)


@pytest.mark.parametrize("prior_type", PRIORS)
def test_pruned_component_takes_nothing_from_the_others(rng, prior_type):
    """A pruned component (concentration 0) has E[log pi] = -inf and weight 0, and
    the others' expected log-weights are those of the posterior without it."""
    k = 5
    nk = rng.uniform(1.0, 50.0, k)
    nk[2] = 0.0
    prior = variational.Prior(prior_type, 0.2, 1.0, np.zeros(2), 2.0, np.eye(2))
    conc = variational._concentration(prior, nk)
    post = variational.Posterior(prior_type, conc, np.ones(k), np.full(k, 3.0))
    pruned = variational.prune(post, nk, 1e-12)
    assert not pruned.active()[2] and pruned.active().sum() == k - 1
    without = variational.Posterior(
        prior_type, variational._concentration(prior, np.delete(nk, 2)),
        np.ones(k - 1), np.full(k - 1, 3.0),
    )  # fmt: skip
    log_w = variational.expected_log_weights(pruned)
    assert log_w[2] == -np.inf and variational.weights(pruned)[2] == 0.0
    np.testing.assert_allclose(
        np.delete(log_w, 2), variational.expected_log_weights(without), rtol=1e-13
    )
    np.testing.assert_allclose(
        np.delete(variational.weights(pruned), 2),
        variational.weights(without),
        rtol=1e-13,
    )


def test_prune_keeps_the_heaviest_component():
    prior = variational.Prior("dirichlet_distribution", 0.1, 1.0, np.zeros(1), 1.0, 1.0)
    nk = np.array([3.0, 5.0, 4.0])
    post = variational.Posterior(
        "dirichlet_distribution", variational._concentration(prior, nk),
        np.ones(3), np.ones(3),
    )  # fmt: skip
    assert list(variational.prune(post, nk, 0.99).active()) == [False, True, False]
    assert variational.prune(post, nk, 0.01) is post
