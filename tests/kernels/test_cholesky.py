"""The M-step's precision-Cholesky kernel against SciPy (scikit-learn's computation)
and its fall-back to the covariance model for matrices it refuses."""

import numpy as np
import pytest
from scipy import linalg

from fastgmm.engine.em import _prec_chol
from fastgmm.kernels.cholesky import prec_chol_stack
from fastgmm.model import covariance as cov


def _spd(rng, m, d):
    A = rng.normal(size=(m, d, d))
    return A @ A.transpose(0, 2, 1) + 0.1 * np.eye(d)


@pytest.mark.parametrize("d", [1, 2, 3, 7, 16, 40])
def test_prec_chol_stack_matches_scipy(rng, d):
    stack = _spd(rng, 5, d)
    out = np.full_like(stack, np.nan)
    assert prec_chol_stack(stack, out) == -1
    for k in range(len(stack)):
        lower = linalg.cholesky(stack[k], lower=True)
        expected = linalg.solve_triangular(lower, np.eye(d), lower=True).T
        np.testing.assert_allclose(out[k], expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(np.tril(out[k], -1), 0.0)  # upper triangular
        np.testing.assert_allclose(out[k] @ out[k].T @ stack[k], np.eye(d), atol=1e-9)


def test_prec_chol_stack_reads_the_lower_triangle_only(rng):
    stack = _spd(rng, 2, 4)
    scribbled = stack.copy()
    scribbled[:, 0, 3] = 1e6  # the upper triangle is not read
    a, b = np.empty_like(stack), np.empty_like(stack)
    assert prec_chol_stack(stack, a) == prec_chol_stack(scribbled, b) == -1
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [-1.0, 0.0, np.nan, np.inf])
def test_prec_chol_stack_reports_the_first_bad_matrix(rng, bad):
    stack = _spd(rng, 4, 3)
    stack[2, 1, 1] = bad
    stack[3, 2, 2] = -5.0
    assert prec_chol_stack(stack, np.empty_like(stack)) == 2


def test_m_step_factors_fall_back_to_the_model_and_its_errors(rng):
    full = cov.get("full")
    good = _spd(rng, 3, 4)
    np.testing.assert_allclose(_prec_chol(full, good), full.prec_chol(good), rtol=1e-12)
    not_pd = good.copy()
    not_pd[1] = -np.eye(4)
    with pytest.raises(cov.IllDefinedCovariance):
        _prec_chol(full, not_pd)
    with_nan = good.copy()
    with_nan[0, 0, 0] = np.nan
    with pytest.raises(cov.IllDefinedCovariance):  # ill-defined, as not_pd
        _prec_chol(full, with_nan)
    tied = good[0]
    np.testing.assert_allclose(
        _prec_chol(cov.get("tied"), tied), cov.get("tied").prec_chol(tied), rtol=1e-12
    )
    diag = np.abs(good[:, 0, :])
    np.testing.assert_array_equal(
        _prec_chol(cov.get("diag"), diag), cov.get("diag").prec_chol(diag)
    )
