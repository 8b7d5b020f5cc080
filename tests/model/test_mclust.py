"""mclust's 14 covariance models (fastgmm.model.mclust and their records) against the
NumPy reference written from the papers (tests/reference.py), against the
optimality of the M-step in each model's family, and EM paths against the
reference iterated from the same start."""

import warnings

import numpy as np
import pytest
from scipy.linalg import expm

from fastgmm import GaussianMixture
from fastgmm.model import covariance as cov
from fastgmm.model import mclust

from .. import reference as ref

NEW = ref.MCLUST_ONLY
ALL = ref.MCLUST_NAMES


@pytest.fixture
def tight(monkeypatch):
    """Inner iterations run to convergence (the reference's precision)."""
    monkeypatch.setattr(mclust, "INNER_TOL", 1e-15)
    monkeypatch.setattr(mclust, "INNER_MAX_ITER", 200_000)


def _problem(rng, name, G=3, d=4, n=400):
    """Data from a mixture of model ``name`` and random soft responsibilities."""
    w, means, c, _ = ref.random_params(rng, G, d, ref.SKLEARN_NAME.get(name, name))
    layout = ref.LAYOUT.get(ref.SKLEARN_NAME.get(name, name))
    X = ref.sample_mixture(rng, n, w, means * 2, c, layout)
    resp = rng.dirichlet(np.full(G, 0.7), size=n)
    return X, resp


#: models whose M-step iterates until its objective stops changing (as mclust's)
OBJECTIVE_STOPPED = ("VEE", "EVE", "VVE")


def assert_close(got, expected, rtol=1e-8, name=None):
    """Equal to rtol relative to the largest entry. VEE, EVE and VVE (``name``) stop
    on the objective (as mclust), which pins the parameters to about its square root:
    sqrt(1e-15) ~ 3e-8 under ``tight``, so 1e-7 for them (the GEMM kernels OpenBLAS
    picks for the CPU move them by up to ~1.3e-8 of the largest entry)."""
    rtol = max(rtol, 1e-7) if name in OBJECTIVE_STOPPED else rtol
    scale = float(np.max(np.abs(expected)))
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale)


def _dense(c, name, G, d):
    return cov.get(name).full(c, G, d)


# ---------------------------------------------------------------- parameter counts
@pytest.mark.parametrize("name", ALL)
def test_parameter_counts_equal_mclusts(name):
    """nMclustParams = nVarParams + G d + (G - 1), for every model, G and d."""
    for d in range(1, 7):
        for G in range(1, 6):
            expected = ref.n_var_params(name, G, d) + G * d + G - 1
            assert cov.n_parameters(name, G, d) == expected, (name, G, d)


def test_parameter_counts_of_mclusts_printed_summaries():
    """df of mclust's summaries on iris (d = 4): VEV,2 26; VVV,3 44; EEE,3 24;
    VEI,3 20 (mclust 6's summary(Mclust(iris[,-5], G=, modelNames=)))."""
    for name, G, df in [("VEV", 2, 26), ("VVV", 3, 44), ("EEE", 3, 24), ("VEI", 3, 20)]:
        assert cov.n_parameters(name, G, 4) == df


# ----------------------------------------------------------------- M-steps
@pytest.mark.parametrize("name", ALL)
def test_scatter_form_m_step_matches_reference(rng, tight, name):
    """record.fit (scatter, counts) -> covariances equals the papers' estimate."""
    X, resp = _problem(rng, name)
    nk, _, W = ref.scatter_matrices(X, resp)
    model = cov.get(name)
    scatter = W if model.form == "dense" else np.diagonal(W, axis1=1, axis2=2)
    got = _dense(model.fit(scatter, nk), name, 3, 4)
    expected = ref.mclust_covariances(name, W, nk)
    assert_close(got, expected, name=name)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", NEW)
def test_record_m_step_matches_reference(rng, tight, name, weighted):
    """The record's M-step on the kernels' statistics (about a reference point, with
    reg_covar and sample weights) equals the reference M-step on the raw data."""
    X, resp = _problem(rng, name)
    sw = rng.uniform(0.2, 2.0, len(X)) if weighted else None
    about = rng.normal(size=(3, 4))
    stats = ref.sufficient_stats(X, resp, sw, about, name)
    reg = 1e-3
    w, means, c = cov.estimate(name, stats, about, reg)
    w_o, means_o, c_o = ref.mclust_m_step(X, resp, reg, name, sw)
    np.testing.assert_allclose(w, w_o, rtol=1e-12)
    np.testing.assert_allclose(means, means_o, rtol=1e-10, atol=1e-12)
    assert_close(c, c_o, name=name)
    assert np.shape(c) == cov.get(name).shape(3, 4)


@pytest.mark.parametrize("name", ["VEI", "VEV", "VEE"])
def test_default_inner_tolerance_is_close_to_converged(rng, monkeypatch, name):
    """mclust's inner tolerance (sqrt(eps)) stops within ~1e-6 of convergence (EVE
    and VVE: see test_em_with_default_inner_tolerance_reaches_the_same_fit)."""
    X, resp = _problem(rng, name)
    nk, _, W = ref.scatter_matrices(X, resp)
    scatter = W if cov.get(name).form == "dense" else np.diagonal(W, axis1=1, axis2=2)
    default = cov.get(name).fit(scatter, nk)
    monkeypatch.setattr(mclust, "INNER_TOL", 1e-15)
    monkeypatch.setattr(mclust, "INNER_MAX_ITER", 200_000)
    converged = cov.get(name).fit(scatter, nk)
    np.testing.assert_allclose(default, converged, rtol=1e-5)


def _perturb(rng, name, covs, eps):
    """In-family perturbation of covariances (G, d, d) of mclust's model ``name``:
    volume, shape and orientation moved by ~eps, jointly where the letter is E."""
    vol, shp, ori = name
    G, d = covs.shape[0], covs.shape[1]
    vals, vecs = np.linalg.eigh(covs)  # ascending: a common shape keeps its order

    def draw(letter, make):
        one = make()
        return [one if letter == "E" else make() for _ in range(G)]

    dvol = draw(vol, lambda: np.exp(eps * rng.normal()))
    dshape = draw(shp, lambda: np.exp(eps * (z := rng.normal(size=d)) - eps * z.mean()))
    if shp == "I":  # spherical: the shape is the identity
        dshape = [np.ones(d)] * G

    def rotation():
        S = rng.normal(size=(d, d)) * eps
        return expm(S - S.T)

    rot = [np.eye(d)] * G if ori == "I" else draw(ori, rotation)
    return np.stack(
        [
            dvol[k] * (rot[k] @ vecs[k] * (vals[k] * dshape[k])) @ (rot[k] @ vecs[k]).T
            for k in range(G)
        ]
    )


@pytest.mark.parametrize("name", ALL)
def test_m_step_is_optimal_in_its_family(rng, tight, name):
    """Independent of any algorithm: no nearby covariances of the same model fit the
    scatters better (sum_k n_k log det S_k + tr(W_k S_k^-1) is minimal)."""
    X, resp = _problem(rng, name)
    nk, _, W = ref.scatter_matrices(X, resp)
    model = cov.get(name)
    scatter = W if model.form == "dense" else np.diagonal(W, axis1=1, axis2=2)
    best = _dense(model.fit(scatter, nk), name, 3, 4)
    value = ref.mclust_objective(best, W, nk)
    for eps in (1e-2, 1e-3):
        for _ in range(20):
            other = ref.mclust_objective(_perturb(rng, name, best, eps), W, nk)
            assert other >= value - 1e-9 * abs(value), (eps, other - value)


def _mclust6_vve(W, nk, n_iter=5000):
    """VVE as mclust 6's msvve iterates it: orientation steps with the unit-determinant
    shapes only (the volumes left out), then diag(D' W_k D) / n_k."""
    G, d = nk.shape[0], W.shape[1]
    D, shapes = np.eye(d), np.ones((G, d))
    for _ in range(n_iter):
        D = ref._orientation_mm(W, 1.0 / shapes, D)
        B = np.stack([np.diag(D.T @ Wk @ D) for Wk in W]) / nk[:, None]
        shapes = ref._unit(B)
    return np.stack([(D * b) @ D.T for b in B])


def test_vve_maximises_the_likelihood_where_mclust6_does_not(rng, tight):
    """With volumes far apart, the orientation step with the volumes (fastgmm) reaches
    a better M-step objective than mclust 6's unit-shape step, which is stationary at
    a different point."""
    d, G = 3, 2
    axes = ref.random_orthogonal(rng, d)
    # a common orientation, volumes 30x apart, plus some scatter off those axes
    W = np.stack(
        [
            s * axes @ np.diag(a) @ axes.T
            for s, a in [(1.0, [4.0, 1.0, 0.25]), (30.0, [0.3, 1.0, 3.0])]
        ]
    )
    W = W + np.stack([c @ c.T for c in rng.normal(size=(G, d, d)) * 0.6])
    nk = np.array([50.0, 80.0])
    ours = cov.get("VVE").fit(W, nk)
    theirs = _mclust6_vve(W, nk)
    gap = ref.mclust_objective(theirs, W, nk) - ref.mclust_objective(ours, W, nk)
    assert gap > 1e-3


# -------------------------------------------------------------------- EM paths
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", NEW)
def test_em_path_follows_reference(rng, tight, name, weighted):
    """The estimator's EM from a given start equals the reference's EM iterated from
    it (the inner iterations of each M-step started from the entering covariances)."""
    k, d, n_iter, reg = 3, 3, 6, 1e-6
    w, means, c, pc = ref.random_params(rng, k, d, name)
    X = ref.sample_mixture(rng, 1500, w, means, c, name)
    sw = rng.uniform(0.2, 2.0, len(X)) if weighted else None
    prec = cov.get(name).precisions(pc)
    start = dict(weights_init=w, means_init=means, precisions_init=prec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached without converging
        gm = GaussianMixture(
            k, covariance_type=name, tol=0, max_iter=n_iter, reg_covar=reg, **start
        ).fit(X, sample_weight=sw)
    bounds = []
    for _ in range(n_iter):
        lb, w, means, c = ref.mclust_em_iteration(X, w, means, c, name, reg, sw)
        bounds.append(lb)
    np.testing.assert_allclose(gm.lower_bounds_, bounds, rtol=1e-10)
    # EVE and VVE stop their MM iterations on the objective (as mclust): the
    # orientation is then pinned to about the square root of its tolerance
    rtol = 1e-6 if name in ("EVE", "VVE") else 1e-8
    np.testing.assert_allclose(gm.weights_, w, rtol=rtol)
    assert_close(gm.means_, means, rtol)
    assert_close(gm.covariances_, c, rtol)


@pytest.mark.parametrize("name", ["EVE", "VVE"])
def test_em_with_default_inner_tolerance_reaches_the_same_fit(rng, monkeypatch, name):
    """One cold MM M-step at mclust's tolerance is only ~1e-3 accurate, but EM carries
    the orientation from one iteration to the next: the fit it converges to is the
    one reached with the inner iterations run to convergence."""
    X, _ = _problem(rng, name, n=600)
    fit = lambda: GaussianMixture(  # noqa: E731
        3, covariance_type=name, tol=1e-12, max_iter=500, random_state=0
    ).fit(X)
    default = fit()
    monkeypatch.setattr(mclust, "INNER_TOL", 1e-15)
    monkeypatch.setattr(mclust, "INNER_MAX_ITER", 200_000)
    converged = fit()
    assert default.converged_ and converged.converged_
    np.testing.assert_allclose(default.lower_bound_, converged.lower_bound_, rtol=1e-9)
    assert_close(default.covariances_, converged.covariances_, 1e-4)


@pytest.mark.parametrize("name", NEW)
def test_em_never_decreases_the_likelihood(rng, name):
    """Generalised EM: with the default inner tolerance the log-likelihood rises."""
    X, _ = _problem(rng, name, n=600)
    gm = GaussianMixture(3, covariance_type=name, tol=0, max_iter=40, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    steps = np.diff(gm.lower_bounds_)
    assert np.all(steps > -1e-9 * np.abs(gm.lower_bounds_[1:]))


@pytest.mark.parametrize("name", NEW)
def test_mclust_model_through_the_public_api(tmp_path, blobs, name):
    """predict, sample, bic, persistence and select accept every mclust model."""
    import fastgmm

    gm = GaussianMixture(3, covariance_type=name, random_state=0).fit(blobs)
    assert gm.converged_ and np.isfinite(gm.bic(blobs))
    labels = gm.predict(blobs)
    assert len(np.unique(labels)) == 3
    assert gm.sample(10)[0].shape == (10, 2)
    gm.save(tmp_path / "m.fgmm")
    np.testing.assert_array_equal(
        fastgmm.load(tmp_path / "m.fgmm").predict(blobs), labels
    )
    result = fastgmm.select(blobs, [2, 3], ["VVV", name], random_state=0)
    assert name in [r["covariance_type"] for r in result.table]


@pytest.mark.parametrize("name", ["EVE", "VEV", "EVV", "VEE"])
def test_empty_component_is_ill_defined_not_a_scipy_error(name):
    """A component that receives no responsibility gives these iterative M-steps a
    0 / 0 covariance (reg_covar=0). It is an ill-defined covariance like any other:
    repaired with a DegenerateComponentWarning, or scikit-learn's ValueError with
    on_degenerate="raise". (It raised SciPy's "array must not contain infs or NaNs"
    in both modes, and made fastgmm.mclust(faithful, reg_covar=0) fail.)"""
    from fastgmm.datasets import load_faithful
    from fastgmm.exceptions import DegenerateComponentWarning

    X = np.asarray(load_faithful())
    means = np.array([X.mean(0), X.mean(0) + 1000.0])  # the second one: empty
    params = dict(covariance_type=name, reg_covar=0.0, means_init=means, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.warns(DegenerateComponentWarning):
            gm = GaussianMixture(2, **params).fit(X)
        assert np.isfinite(gm.covariances_).all()
        assert np.isfinite(gm.score(X))
        with pytest.raises(ValueError, match="ill-defined empirical covariance"):
            GaussianMixture(2, on_degenerate="raise", **params).fit(X)
