"""The closed-form M-step kernel (fastgmm.kernels.mstep, through
fastgmm.model.fused) against the NumPy oracle and the table's M-step."""

import numpy as np
import pytest

from fastgmm.model import covariance as cov
from fastgmm.model.fused import closed_params
from fastgmm.model.params import Params, density_inputs, kernel_inputs

from .. import reference as ref

CLOSED = ("full", "tied", "diag", "spherical", "EEI", "EII")


def _problem(rng, name, n=300, d=3, k=3, weighted=True):
    X = rng.normal(size=(n, d)) * [1.0, 2.0, 0.5][:d] + 5.0
    resp = rng.dirichlet(np.ones(k), size=n)
    sw = rng.uniform(0.5, 2.0, n) if weighted else None
    centre_k = X[rng.choice(n, k, replace=False)]  # statistics about data points
    stats = ref.sufficient_stats(X, resp, sw, centre_k, name)
    w = np.ones(n) if sw is None else sw
    centre = (w @ X) / w.sum()
    total = ((X - centre).T * w) @ (X - centre)
    return X, resp, sw, stats, centre_k, (centre, total)


def test_only_closed_forms_are_marked():
    assert {m.name for m in cov.MODELS if m.closed} == set(CLOSED)


@pytest.mark.parametrize("name", CLOSED)
@pytest.mark.parametrize("weighted", [False, True])
def test_closed_m_step_equals_the_oracle(rng, name, weighted):
    X, resp, sw, stats, centre_k, tied = _problem(rng, name, weighted=weighted)
    model = cov.get(name)
    p = closed_params(model, stats, centre_k, 1e-4, tied)
    weights, means, covs, prec = p.weights, p.means, p.covariances, p.prec_chol
    w_ref, m_ref, c_ref = ref.m_step(X, resp, 1e-4, name, sw)
    np.testing.assert_allclose(weights, w_ref, rtol=1e-12)
    np.testing.assert_allclose(means, m_ref, rtol=1e-12)
    np.testing.assert_allclose(covs, c_ref, rtol=1e-10)
    np.testing.assert_allclose(prec, ref.precision_cholesky(c_ref, name), rtol=1e-10)
    assert np.shape(covs) == np.shape(prec) == model.shape(3, 3)


@pytest.mark.parametrize("name", CLOSED)
def test_closed_m_step_equals_the_table_to_rounding(rng, name):
    """The kernel and the NumPy M-step of the record agree to a few ulps."""
    _, _, _, stats, centre_k, tied = _problem(rng, name, d=3)
    model = cov.get(name)
    got = closed_params(model, stats, centre_k, 1e-6, tied)
    w, m, c = cov.estimate(model, stats, centre_k, 1e-6, tied)
    want = Params(model, w, m, c, model.prec_chol(c))
    for name in ("weights", "means", "covariances", "prec_chol"):
        np.testing.assert_allclose(
            getattr(got, name), getattr(want, name), rtol=1e-14, atol=0
        )


@pytest.mark.parametrize("name", CLOSED)
def test_closed_kernel_inputs_equal_numpys(rng, name):
    """kernel_inputs of a closed-form model (one kernel call) equals the NumPy
    formulas of density_inputs, for M-step and hand-made Params alike."""
    _, _, _, stats, centre_k, tied = _problem(rng, name, d=3)
    model = cov.get(name)
    weights = rng.dirichlet(np.ones(3))
    for params in (
        closed_params(model, stats, centre_k, 1e-6, tied),
        Params(model, weights, *_given(rng, model)),
    ):
        got = kernel_inputs(params)
        k, d = params.means.shape
        want = density_inputs(
            model.kind, np.log(params.weights), params.means,
            model.to_kernel(params.prec_chol, k, d),
            model.log_det(params.prec_chol, k, d),
        )  # fmt: skip
        assert got.kind == want.kind
        for field in ("const", "loc", "prec"):
            a, b = getattr(got, field), getattr(want, field)
            assert a.shape == b.shape, field
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


def _given(rng, model):
    """(means, covariances, prec_chol) of a hand-made model of 3 components in 3-D."""
    _, means, covs, _ = ref.random_params(rng, 3, 3, model.name)
    covs = np.asarray(covs, dtype=float)
    return means, covs, model.prec_chol(covs)


@pytest.mark.parametrize("name", CLOSED)
def test_closed_m_step_refuses_what_numpy_must_handle(rng, name):
    """Not positive definite or not finite: None (the NumPy path then raises or
    repairs with its messages)."""
    _, _, _, (nk, s1, s2), centre_k, (centre, total) = _problem(rng, name)
    model = cov.get(name)
    bad_s2 = s2.copy()
    bad_s2[1 if not model.shared else slice(None)] = 0.0  # no scatter, no reg
    bad_total = np.zeros_like(total)
    stats = (nk, np.zeros_like(s1), bad_s2)
    assert closed_params(model, stats, centre_k, 0.0, (centre, bad_total)) is None
    nan_s1 = s1.copy()
    nan_s1[0, 0] = np.nan
    stats = (nk, nan_s1, s2)
    assert closed_params(model, stats, centre_k, 1e-6, (centre, total)) is None


def test_models_without_a_closed_form_are_left_to_numpy(rng):
    _, _, _, stats, centre_k, tied = _problem(rng, "full")
    assert closed_params(cov.get("VEV"), stats, centre_k, 1e-6, tied) is None
