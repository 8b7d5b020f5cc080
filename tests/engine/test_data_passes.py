"""The data passes of a fit beyond its EM iterations (engine/data.py): the feature
variances of in-memory data of unit weights are computed only when needed."""

import numpy as np
import pytest

import fastgmm.engine.data as data_module
from fastgmm import GaussianMixture
from fastgmm.engine.data import make_data
from fastgmm.exceptions import DegenerateComponentWarning
from fastgmm.model import covariance


@pytest.fixture
def scatter_passes(monkeypatch):
    """Counts the total-scatter passes (the feature variances) of make_data's Data."""
    calls = []
    original = data_module._total_scatter

    def counted(*args):
        calls.append(args[2])
        return original(*args)

    monkeypatch.setattr(data_module, "_total_scatter", counted)
    return calls


@pytest.mark.parametrize("cov", ["full", "diag", "spherical"])
def test_fit_from_a_given_start_makes_no_variance_pass(blobs, scatter_passes, cov):
    """A start given in full and nothing to repair: the fit reads the data only in
    its EM iterations (scikit-learn makes no such pass either)."""
    start = GaussianMixture(3, covariance_type=cov, random_state=0).fit(blobs)
    scatter_passes.clear()
    given = {
        "weights_init": start.weights_,
        "means_init": start.means_,
        "precisions_init": start.precisions_,
    }
    gm = GaussianMixture(3, covariance_type=cov, max_iter=3, tol=0, **given)
    gm.fit(blobs)
    assert scatter_passes == []
    # weighted data and tied models keep the eager pass (total weight, X'X)
    gm.fit(blobs, sample_weight=np.full(len(blobs), 2.0))
    assert len(scatter_passes) == 1


def test_lazy_variances_are_the_eager_ones(blobs, scatter_passes):
    """Computed once on first use, shared by copies (model-selection sweeps
    re-chunk one Data), equal to the variances of the eager (weighted) pass."""
    from dataclasses import replace

    model = covariance.get("full")
    lazy = make_data(blobs, None, 3, model)
    eager = make_data(blobs, np.ones(len(blobs)), 3, model)
    assert len(scatter_passes) == 1  # the weighted one
    copy = replace(lazy, chunk=lazy.chunk)
    np.testing.assert_allclose(lazy.feature_var, eager.feature_var, rtol=1e-13)
    np.testing.assert_allclose(lazy.feature_var, np.var(blobs, axis=0), rtol=1e-12)
    assert copy.feature_var is lazy.feature_var
    assert lazy.jitter == pytest.approx(eager.jitter, rel=1e-13)
    assert lazy.n_features == 2 and lazy.total_weight == len(blobs)
    assert len(scatter_passes) == 2


def test_repair_reads_the_variances_when_it_needs_them(rng, scatter_passes):
    """A degenerate component during EM is repaired with the data's jitter, taken
    (one pass) at the repair: the same fit as with unit weights given."""
    X = np.repeat(rng.normal(size=(3, 2)), 5, axis=0)
    X = np.vstack([X, [[50.0, 50.0], [60.0, 40.0]]])
    start = {  # as test_estimator's collapse during EM
        "weights_init": [0.4, 0.3, 0.2, 0.1],
        "means_init": np.vstack([X[[0, 5, 10]], [[55.0, 45.0]]]),
        "precisions_init": np.repeat(np.eye(2)[None], 4, axis=0),
    }
    fits = []
    for sw in (None, np.ones(len(X))):
        gm = GaussianMixture(4, reg_covar=0.0, **start)
        with pytest.warns(DegenerateComponentWarning):
            fits.append(gm.fit(X, sample_weight=sw))
    assert len(scatter_passes) == 2
    np.testing.assert_allclose(fits[0].covariances_, fits[1].covariances_, rtol=1e-12)
