"""Top-C component selection (kernels.gselect, engine.gselect, ``top_components``):
the restricted pass against the NumPy oracle restricted to the same components, the
selection pass's indices against the true top C, the fit against the exact one and
scikit-learn, the convergence rule, thread-count determinism, validation and
persistence."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.mixture import GaussianMixture as SkGMM

from fastgmm import GaussianMixture, load
from fastgmm._jit import BLOCK
from fastgmm.engine import gselect as engine_gselect
from fastgmm.kernels.diaggemm import TRUNCATE_LOG, diag_em_pass
from fastgmm.kernels.gselect import restricted_pass, select_pass
from fastgmm.model.params import kernel_inputs

from .. import reference as ref
from .helpers import assert_same_for_any_thread_count
from .test_diaggemm import DTYPES, problem, sk_start


def _args(X, sw, params):
    kind, const, loc, prec = kernel_inputs(params).astuple()
    sw = np.empty(0) if sw is None else np.asarray(sw, np.float64)
    return X, sw, kind, const, loc, prec, np.ascontiguousarray(params.means)


def run_restricted(X, sw, params, sel, chunk=4 * BLOCK):
    X, sw, _, const, loc, prec, ref_point = _args(X, sw, params)
    loc_x = np.ascontiguousarray(loc, X.dtype)
    prec_x = np.ascontiguousarray(prec[:, 0, :], X.dtype)
    K = const.shape[0]
    cut = TRUNCATE_LOG + np.log(K) if X.dtype == np.float32 else np.inf
    sel = np.ascontiguousarray(sel, np.int32)
    return restricted_pass(X, sw, sel, const, loc_x, prec_x, ref_point, cut, chunk)


def run_select(X, sw, params, n_top, chunk=4 * BLOCK, sel=None):
    """(pass results, sel) of a selection pass; ``sel``: a previous selection."""
    if sel is None:
        sel = np.full((len(X), n_top), -1, np.int32)
    out = select_pass(*_args(X, sw, params), chunk, sel)
    return out, sel


def oracle_restricted(X, sw, params, covariance_type, sel):
    K = params.means.shape[0]
    cut = TRUNCATE_LOG + np.log(K) if X.dtype == np.float32 else None
    log_norm, resp = ref.restricted_e_step(
        X, params.weights, params.means, params.prec_chol, covariance_type, sel, cut
    )
    w = np.ones(len(X)) if sw is None else sw
    stats = ref.sufficient_stats(X, resp, sw, params.means, covariance_type)
    return float(w @ log_norm), *stats


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
@pytest.mark.parametrize("spread", [1.0, 20.0], ids=["overlapping", "separated"])
def test_restricted_pass_matches_oracle(rng, dtype, covariance_type, spread):
    """Log-likelihood and statistics over each row's selected components as the
    oracle's (the true top C for half the rows, random components for the others),
    with weights (some zero), a partial last block and chunk."""
    n, d, K, C = 3 * 4 * BLOCK + 77, 12, 70, 5
    X, params = problem(rng, n, d, K, spread, dtype, covariance_type)
    sw = rng.uniform(0.0, 3.0, n)
    sw[rng.random(n) < 0.1] = 0.0
    sel = ref.top_components(
        X, params.weights, params.means, params.prec_chol, covariance_type, C
    )
    random_rows = rng.random(n) < 0.5
    sel[random_rows] = rng.permuted(np.tile(np.arange(K), (n, 1)), axis=1)[
        random_rows, :C
    ]
    expected = oracle_restricted(X, sw, params, covariance_type, sel)
    got = run_restricted(X, sw, params, sel)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(got[0], expected[0], rtol=rtol)
    for a, b in zip(got[1:], expected[1:]):
        scale = np.max(np.abs(b))
        np.testing.assert_allclose(a, b, rtol=rtol * 100, atol=rtol * 100 * scale)
    # a component selected by no row gets nothing
    unused = np.setdiff1d(np.arange(K), sel)
    assert np.all(got[1][unused] == 0.0)


def test_restricted_pass_is_a_lower_bound(rng):
    X, params = problem(rng, 2000, 8, 40, 1.0, np.float64)
    sel = ref.top_components(
        X, params.weights, params.means, params.prec_chol, "diag", 3
    )
    exact = diag_em_pass(*_args(X, None, params), 4 * BLOCK)[0]
    restricted = run_restricted(X, None, params, sel)[0]
    assert restricted < exact
    all_components = np.tile(np.arange(40), (len(X), 1))
    np.testing.assert_allclose(
        run_restricted(X, None, params, all_components)[0], exact, rtol=1e-13
    )


def test_restricted_pass_point_beyond_every_density(rng):
    """A row whose selected log-densities are all -inf: log p = -inf and equal
    shares over its selected components (as block_resp gives them)."""
    X, params = problem(rng, 300, 6, 10, 1.0, np.float64)
    X[7] = 1e200
    sel = np.tile(np.array([3, 1], np.int32), (len(X), 1))
    ll, nk, _, _ = run_restricted(X, None, params, sel, chunk=BLOCK)
    assert ll == -np.inf
    assert nk.sum() == pytest.approx(len(X))
    assert np.all(nk[[0, 2, 4, 5, 6, 7, 8, 9]] == 0.0) and nk[3] >= 0.5


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n_top", [1, 4, 70])
def test_select_pass_records_true_top_c(rng, dtype, n_top):
    """sel holds each row's C largest weighted log-densities, largest first (float32:
    up to the float32 rounding of its sgemm), also when it starts from another
    selection (a previous pass's: random distinct components here) or from rows
    that are none, and the pass's results are diag_em_pass's, bit for bit."""
    n, d, K = 2 * 4 * BLOCK + 33, 10, 70
    X, params = problem(rng, n, d, K, 1.0, dtype)
    out, sel = run_select(X, None, params, n_top)
    stale = rng.permuted(np.tile(np.arange(K, dtype=np.int32), (n, 1)), axis=1)
    stale = stale[:, :n_top].copy()
    stale[:5] = 0  # not a selection (repeats) ...
    stale[5:9, -1] = [K, 10**6, -1, -(10**6)]  # ... nor these (out of range)
    _, again = run_select(X, None, params, n_top, sel=stale)
    np.testing.assert_array_equal(again, sel)
    exact = diag_em_pass(*_args(X, None, params), 4 * BLOCK)
    for a, b in zip(out, exact):
        np.testing.assert_array_equal(a, b)
    wlp = ref.weighted_log_prob(
        X, params.weights, params.means, params.prec_chol, "diag"
    )
    expected = ref.top_components(
        X, params.weights, params.means, params.prec_chol, "diag", n_top
    )
    if dtype == np.float64:
        np.testing.assert_array_equal(sel, expected)
    else:  # near ties may swap: the values selected are the top values
        rows = np.arange(n)[:, None]
        np.testing.assert_allclose(
            wlp[rows, sel], wlp[rows, expected], rtol=1e-5, atol=1e-3
        )
        assert np.mean(sel == expected) > 0.99


def _fit_kw(params, **kw):
    return dict(covariance_type="diag", **sk_start(params), **kw)


def test_all_components_is_the_exact_fit(rng, monkeypatch):
    """C = K: the restricted passes run (spied) and the fit is the exact one and
    scikit-learn's from the same start (lower bounds to 1e-10, float64)."""
    calls = []

    def spy(*args):
        calls.append(args[2].shape)
        return restricted_pass(*args)

    monkeypatch.setattr(engine_gselect, "restricted_pass", spy)
    K = 8
    X, params = problem(rng, 3000, 5, K, 1.0, np.float64)
    kw = _fit_kw(params, tol=0.0, max_iter=9)
    exact = GaussianMixture(K, **kw).fit(X)
    ours = GaussianMixture(K, top_components=K, **kw).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = SkGMM(K, **kw).fit(X)
    assert calls and all(shape == (len(X), K) for shape in calls)
    np.testing.assert_allclose(ours.lower_bounds_, exact.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-10)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(
            getattr(ours, name), getattr(exact, name), rtol=1e-9, atol=1e-12
        )
    # top_components above n_components is the same fit
    more = GaussianMixture(K, top_components=K + 5, **kw).fit(X)
    np.testing.assert_array_equal(more.means_, ours.means_)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_few_components_reach_the_exact_fit_on_separated_data(rng, dtype):
    """C = 2 of K = 24 separated components: converged, mean log-likelihood within
    1e-6 of the exact fit's (float32: 2e-6 relative, the float32 sgemm of the
    selection passes against em_pass's float64 terms), the same parameters."""
    K = 24
    X, params = problem(rng, 6000, 8, K, 20.0, dtype)
    kw = _fit_kw(params, tol=1e-8, max_iter=300)
    exact = GaussianMixture(K, **kw).fit(X)
    ours = GaussianMixture(K, top_components=2, **kw).fit(X)
    assert exact.converged_ and ours.converged_
    gap = 1e-6 if dtype == np.float64 else 2e-6 * abs(exact.lower_bound_)
    assert abs(ours.lower_bound_ - exact.lower_bound_) < gap
    np.testing.assert_allclose(ours.means_, exact.means_, atol=1e-4 * (1 + 50))
    assert abs(ours.score(X) - exact.score(X)) < gap


def _spy_steps(monkeypatch):
    flags = []
    step = engine_gselect.Selection.step

    def spy(self, *args, **kw):
        out = step(self, *args, **kw)
        flags.append(self.kinds[1])
        return out

    monkeypatch.setattr(engine_gselect.Selection, "step", spy)
    return flags


def test_schedule_and_last_iteration_exact(rng, monkeypatch):
    """tol=0: a selection pass first, every REFRESH iterations, and last."""
    flags = _spy_steps(monkeypatch)
    X, params = problem(rng, 1500, 5, 12, 1.0, np.float64)
    max_iter = 2 * engine_gselect.REFRESH + 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(12, top_components=3, **_fit_kw(params, tol=0.0))
        gm.set_params(max_iter=max_iter).fit(X)
    expected = [i % engine_gselect.REFRESH == 0 for i in range(max_iter)]
    expected[-1] = True
    assert flags == expected
    assert gm.n_iter_ == max_iter and not gm.converged_


@pytest.mark.parametrize("n_top", [1, 3])
def test_converges_only_on_consecutive_exact_passes(rng, monkeypatch, n_top):
    """Convergence is declared on an exact pass after an exact pass, on overlapping
    data where the restricted fixed point is not EM's (C = 3: the restricted passes
    and the selection passes settle into a cycle, which must end the restricted
    phase; without that this fit does not converge in 500 iterations)."""
    flags = _spy_steps(monkeypatch)
    K = 12
    X, params = problem(rng, 3000, 5, K, 1.0, np.float64)
    kw = _fit_kw(params, tol=1e-5, max_iter=500)
    ours = GaussianMixture(K, top_components=n_top, **kw).fit(X)
    exact = GaussianMixture(K, **kw).fit(X)
    assert ours.converged_ and flags[-2:] == [True, True]
    assert not all(flags)  # restricted passes ran
    assert len(flags) == ours.n_iter_ == len(ours.lower_bounds_)
    assert abs(ours.lower_bound_ - exact.lower_bound_) < 2e-3  # another local optimum


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_bitwise_identical_for_any_thread_count(rng, dtype, no_serial_cutoff):
    X, params = problem(rng, 9 * BLOCK + 5, 10, 64, 1.0, dtype)
    sw = rng.uniform(0.5, 2.0, len(X))

    def compute():
        (sums, sel) = run_select(X, sw, params, 6, chunk=BLOCK)
        restricted = run_restricted(X, sw, params, sel, chunk=BLOCK)
        return (*sums, sel, *restricted)

    assert_same_for_any_thread_count(compute)
    kw = _fit_kw(params, tol=0.0, max_iter=8, top_components=6)
    fits = [GaussianMixture(64, n_jobs=j, **kw).fit(X) for j in (1, 2)]
    for name in ("means_", "covariances_", "weights_", "lower_bounds_"):
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name))


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(top_components=0), "top_components"),
        (dict(top_components=2.5), "top_components"),
        (dict(top_components="3"), "top_components"),
        (dict(top_components=2, covariance_type="full"), "diagonal covariance"),
        (dict(top_components=2, covariance_type="tied"), "diagonal covariance"),
        (dict(top_components=2, noise=True), "neither noise nor prior"),
        (dict(top_components=2, prior=True), "neither noise nor prior"),
    ],
)
def test_bad_settings_raise_and_leave_a_fitted_model(blobs, kw, match):
    gm = GaussianMixture(3, covariance_type="diag", random_state=0).fit(blobs)
    means = gm.means_.copy()
    with pytest.raises(ValueError, match=match):
        gm.set_params(**kw).fit(blobs)
    np.testing.assert_array_equal(gm.means_, means)


def test_streamed_data_and_partial_fit_raise(blobs, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, blobs)
    X = np.load(path, mmap_mode="r")
    gm = GaussianMixture(3, covariance_type="diag", top_components=2)
    with pytest.raises(ValueError, match="in-memory training data only"):
        gm.fit(X)
    with pytest.raises(ValueError, match="partial_fit does not support"):
        gm.partial_fit(blobs)


@pytest.mark.parametrize("covariance_type", ["spherical", "VVI", "EEI", "EII", "VEI"])
def test_every_diagonal_model_fits(blobs, covariance_type):
    kw = dict(covariance_type=covariance_type, random_state=0, tol=1e-6)
    exact = GaussianMixture(3, **kw).fit(blobs)
    ours = GaussianMixture(3, top_components=2, **kw).fit(blobs)
    assert ours.converged_
    assert abs(ours.lower_bound_ - exact.lower_bound_) < 1e-4


def test_parameter_round_trips(blobs, tmp_path):
    gm = GaussianMixture(3, covariance_type="diag", top_components=2, random_state=0)
    assert gm.get_params()["top_components"] == 2
    assert clone(gm).top_components == 2
    gm.fit(blobs)
    again = pickle.loads(pickle.dumps(gm))
    assert again.top_components == 2
    np.testing.assert_array_equal(again.predict(blobs), gm.predict(blobs))
    path = tmp_path / "model.fgmm"
    gm.save(path)
    loaded = load(path)
    assert loaded.top_components == 2
    np.testing.assert_array_equal(loaded.score_samples(blobs), gm.score_samples(blobs))
    refit = clone(loaded).fit(blobs)
    np.testing.assert_array_equal(refit.means_, gm.means_)
