"""Reliability (issue 12): far points, shapes, weights, float32, atomic refits.

Each test names the behaviour it guards; see docs/reliability.md for the list.
"""

import threading
import time

import numpy as np
import pytest

from fastgmm import GaussianMixture
from fastgmm.inspection import fit_outlier_threshold, is_outlier

COV_TYPES = ["full", "tied", "diag", "spherical", "EEI", "EII"]


@pytest.fixture(scope="module")
def data():
    gen = np.random.default_rng(12)
    X = np.vstack([gen.normal(size=(400, 3)), gen.normal(size=(400, 3)) + 4.0])
    return X[gen.permutation(len(X))]


# ------------------------------------------------------------------ far points
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_far_points_score_minus_inf(data, cov_type):
    """A point whose density underflows under every component: log p = -inf (not
    NaN), equal responsibilities 1/K, label 0; the other points are unchanged."""
    X = data
    gm = GaussianMixture(3, covariance_type=cov_type, random_state=0).fit(X)
    far = np.array([[1e160, 0, 0], [1e200, -1e200, 1e200]])
    Z = np.vstack([X[:100], far, X[100:200]])
    scores = gm.score_samples(Z)
    proba = gm.predict_proba(Z)
    assert np.all(scores[100:102] == -np.inf)
    np.testing.assert_allclose(proba[100:102], 1 / 3)
    assert np.all(np.isfinite(proba))
    np.testing.assert_array_equal(gm.predict(Z)[100:102], 0)
    # ordinary points in the same blocks: bitwise what they score alone
    ordinary = np.r_[0:100, 102:202]
    np.testing.assert_array_equal(scores[ordinary], gm.score_samples(X[:200]))
    np.testing.assert_array_equal(proba[ordinary], gm.predict_proba(X[:200]))


@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_far_points_float32(data, cov_type):
    """float32 points cannot be far enough to underflow the float64 density: their
    log-density (-1e77) rounds to -inf in float32 and the responsibilities are the
    true ones, finite and summing to one."""
    X = data.astype(np.float32)
    gm = GaussianMixture(3, covariance_type=cov_type, random_state=0).fit(X)
    Z = np.array([[3e38, 0, 0], [-3e38, 3e38, 3e38]], dtype=np.float32)
    assert np.all(gm.score_samples(Z) == -np.inf)
    proba = gm.predict_proba(Z)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_far_points_are_outliers(data):
    gm = GaussianMixture(2, random_state=0).fit(data)
    threshold = fit_outlier_threshold(gm, data, percentile=1)
    Z = np.vstack([data[:5], [[1e160, 0.0, 0.0]]])
    np.testing.assert_array_equal(is_outlier(gm, Z, threshold)[-1], True)


def test_em_pass_far_zero_weight_row_adds_nothing(data):
    """Kernel level: a row of weight 0 whose log-density is -inf everywhere adds
    exactly nothing to the statistics or the log-likelihood."""
    from fastgmm.kernels import FULL
    from fastgmm.kernels.passes import em_pass

    K, d = 2, 3
    const = np.zeros(K)
    loc = data[:K].copy()
    prec = np.tile(np.eye(d), (K, 1, 1))
    sw = np.linspace(0.5, 1.5, len(data))
    far_X = np.vstack([data, [[1e160, 0.0, 0.0]]])
    far_sw = np.r_[sw, 0.0]
    a = em_pass(data, sw, FULL, const, loc, prec, loc, 128)
    b = em_pass(far_X, far_sw, FULL, const, loc, prec, loc, 128)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_predict_cli_flags_far_points(tmp_path, capsys):
    """The CLI's outlier column flags a point whose log-density is -inf."""
    from fastgmm.cli import main

    gen = np.random.default_rng(3)
    X = gen.normal(size=(300, 2))
    np.save(tmp_path / "train.npy", X)
    np.save(tmp_path / "new.npy", np.vstack([X[:3], [[1e160, 0.0]]]))
    model = str(tmp_path / "m.fgmm")
    assert main(["fit", str(tmp_path / "train.npy"), "-k", "2", "-o", model, "-q"]) == 0
    capsys.readouterr()
    assert main(["predict", model, str(tmp_path / "new.npy"), "--no-proba"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].split(",")[:3] == ["label", "log_density", "outlier"]
    last = rows[-1].split(",")
    assert float(last[1]) == -np.inf and last[2] in ("True", "1", "true")


# ------------------------------------------------------- shapes of a model
def _fitted(data, cov_type="full", k=3):
    return GaussianMixture(k, covariance_type=cov_type, random_state=0).fit(data)


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("means_", np.zeros((3, 2)), ["n_features_in_ is 3", "(3, 2)"]),
        ("means_", np.zeros((3, 5)), ["n_features_in_", "5"]),
        ("means_", np.zeros(3), ["means_", "(3,)"]),
        ("weights_", np.full(4, 0.25), ["weights_", "(4,)", "(3,)"]),
        ("precisions_cholesky_", np.zeros((3, 2, 2)), ["precisions_cholesky_"]),
        ("precisions_cholesky_", np.zeros((2, 3, 3)), ["precisions_cholesky_"]),
        ("covariances_", np.zeros((3, 3)), ["covariances_", "(3, 3, 3)"]),
    ],
)
def test_hand_assigned_arrays_of_wrong_shape(data, name, value, words):
    """Every scoring entry checks K and d of every array before a kernel runs."""
    gm = _fitted(data)
    setattr(gm, name, value)
    big = np.tile(data, (50, 1))  # large X: out-of-bounds reads would crash
    for call in (gm.score_samples, gm.predict, gm.predict_proba, gm.score):
        with pytest.raises(ValueError) as err:
            call(big)
        for word in words:
            assert word in str(err.value)


def test_hand_built_model_checks_n_components_and_width(data):
    gm = _fitted(data)
    gm.n_components = 4
    with pytest.raises(ValueError, match="n_components is 4"):
        gm.predict(data)
    gm = _fitted(data)
    gm.means_, gm.n_features_in_ = np.zeros((3, 2)), 2  # consistent width, wrong U
    with pytest.raises(ValueError, match="precisions_cholesky_"):
        gm.predict(data[:, :2])
    with pytest.raises(ValueError, match="features"):
        gm.predict(data)  # wrong-width X


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_params_check_names_the_mismatch(data, cov_type):
    """The shapes come from the covariance-model table, for every model."""
    from fastgmm.engine.score import score
    from fastgmm.model.params import from_fitted

    gm = _fitted(data, cov_type)
    params = from_fitted(gm)
    with pytest.raises(ValueError, match="X has 2 features"):
        score(data[:, :2], params, lse=True)
    with pytest.raises(ValueError, match="2-D"):
        score(data[0], params, lse=True)
    bad = np.ones(np.shape(gm.precisions_cholesky_) + (1,))
    gm.precisions_cholesky_ = bad
    with pytest.raises(ValueError, match="precisions_cholesky_"):
        gm.score_samples(data)


def test_warm_start_and_partial_fit_check_shapes(data):
    gm = GaussianMixture(3, warm_start=True, random_state=0).fit(data)
    gm.weights_ = np.full(2, 0.5)
    with pytest.raises(ValueError, match="weights_"):
        gm.fit(data)
    with pytest.raises(ValueError, match="weights_"):
        gm.partial_fit(data)


def test_sklearn_model_with_wrong_shapes(data):
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    from fastgmm.inspection import confidence

    sk = SkGaussianMixture(2, random_state=0).fit(data)
    sk.precisions_cholesky_ = sk.precisions_cholesky_[:, :2, :2]
    with pytest.raises(ValueError, match="precisions_cholesky_"):
        confidence(sk, data)


@pytest.mark.parametrize(
    "name, cut",
    [
        ("mean_precision_", slice(0, 2)),
        ("degrees_of_freedom_", slice(0, 5)),
        ("weight_concentration_", slice(0, 6)),
    ],
)
def test_bayesian_posterior_of_wrong_shape(data, name, cut):
    """A Bayesian mixture's posterior arrays feed the kernels' per-component terms:
    checked against K too (a longer one read means_ out of bounds)."""
    from fastgmm import BayesianGaussianMixture

    bgm = BayesianGaussianMixture(
        n_components=3, weight_concentration_prior_type="dirichlet_distribution",
        max_iter=5, random_state=0,
    ).fit(data)  # fmt: skip
    value = np.asarray(getattr(bgm, name))
    setattr(bgm, name, np.resize(value, cut.stop))
    with pytest.raises(ValueError, match=name):
        bgm.score_samples(np.repeat(data, 20, axis=0))


# --------------------------------------------------------------- sample weights
@pytest.mark.parametrize("cov_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize(
    "c, unit", [(1e-20, 1.0), (1e-5, 1.0), (3.0, 1.0), (1e150, 1.0), (1e300, 1e6)]
)
def test_sample_weight_scale_invariance(data, cov_type, c, unit):
    """Multiplying every weight by c gives the same fit, to rounding (tiny weights
    met the absolute 10 eps added to nk; huge ones times 1e12 scatter overflowed)."""
    X = data * unit
    w = np.random.default_rng(1).uniform(0.1, 2.0, len(data))
    kw = dict(covariance_type=cov_type, random_state=0, reg_covar=1e-8)
    base = GaussianMixture(2, **kw).fit(X, sample_weight=w)
    scaled = GaussianMixture(2, **kw).fit(X, sample_weight=w * c)
    assert scaled.n_iter_ == base.n_iter_
    assert scaled.lower_bound_ == pytest.approx(base.lower_bound_, rel=1e-12)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        want = getattr(base, name)
        np.testing.assert_allclose(
            getattr(scaled, name), want, rtol=1e-10, atol=1e-13 * np.abs(want).max()
        )


def test_power_of_two_weights_are_bitwise_invariant(data):
    w = np.random.default_rng(1).uniform(0.1, 2.0, len(data))
    base = GaussianMixture(2, random_state=0).fit(data, sample_weight=w)
    for c in (2.0**-70, 2.0**900):
        scaled = GaussianMixture(2, random_state=0).fit(data, sample_weight=w * c)
        np.testing.assert_array_equal(scaled.covariances_, base.covariances_)
        assert scaled.lower_bound_ == base.lower_bound_


def test_unit_weights_are_no_weights(data):
    """Unit weights are not rescaled: from one start, the fit without weights."""
    start = dict(
        means_init=data[:2],
        weights_init=[0.5, 0.5],
        precisions_init=np.tile(np.eye(3), (2, 1, 1)),
    )
    a = GaussianMixture(2, **start).fit(data)
    b = GaussianMixture(2, **start).fit(data, sample_weight=np.ones(len(data)))
    np.testing.assert_array_equal(a.covariances_, b.covariances_)


@pytest.mark.parametrize("far", [1e160, 1e300])
def test_zero_weight_row_is_an_absent_row(data, far):
    w = np.random.default_rng(1).uniform(0.1, 2.0, len(data))
    base = GaussianMixture(2, random_state=0).fit(data, sample_weight=w)
    X = np.vstack([data[:10], [[far, -far, far]], data[10:]])
    sw = np.r_[w[:10], 0.0, w[10:]]
    gm = GaussianMixture(2, random_state=0).fit(X, sample_weight=sw)
    np.testing.assert_array_equal(gm.covariances_, base.covariances_)
    np.testing.assert_array_equal(gm.means_, base.means_)
    assert gm.lower_bound_ == base.lower_bound_
    labels = gm.fit_predict(X, sample_weight=sw)  # labels for every row
    assert labels.shape == (len(X),)


def test_zero_weights_leave_too_few_rows(data):
    sw = np.zeros(len(data))
    sw[:2] = 1.0
    with pytest.raises(ValueError, match="n_samples = 2"):
        GaussianMixture(3).fit(data, sample_weight=sw)
    with pytest.raises(ValueError, match="non-zero"):  # scikit-learn's check
        GaussianMixture(1).fit(data, sample_weight=np.zeros(len(data)))


def test_partial_fit_weight_scale_invariance(data):
    X = data * 1e6
    w = np.random.default_rng(1).uniform(0.1, 2.0, len(data))
    a = GaussianMixture(2, random_state=0)
    b = GaussianMixture(2, random_state=0)
    for part in (slice(0, 400), slice(400, 800)):
        a.partial_fit(X[part], sample_weight=w[part])
        b.partial_fit(X[part], sample_weight=w[part] * 1e300)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-10)


# ----------------------------------------------------------------- float32
@pytest.mark.parametrize("cov_type", ["full", "diag", "spherical"])
@pytest.mark.parametrize("scale", [1e-25, 1e25])
def test_float32_results_not_representable_fail_clearly(data, cov_type, scale):
    """Covariances of 1e-50 or precisions of 1e50 do not fit in float32: a clear
    ValueError (scikit-learn raises too), never inf or 0 in the fitted model."""
    X = (data * scale).astype(np.float32)
    gm = GaussianMixture(2, covariance_type=cov_type, reg_covar=0, random_state=0)
    with pytest.raises(ValueError, match="float32|float64"):
        gm.fit(X)
    assert not hasattr(gm, "means_")


@pytest.mark.parametrize("scale", [1e-25, 1e25])
def test_bayesian_float32_results_not_representable_fail_clearly(data, scale):
    from fastgmm import BayesianGaussianMixture

    X = (data * scale).astype(np.float32)
    bgm = BayesianGaussianMixture(n_components=2, reg_covar=0, random_state=0)
    with pytest.raises(ValueError, match="float32|float64"):
        bgm.fit(X)
    assert not hasattr(bgm, "means_")


def test_float32_results_finite_when_they_fit(data):
    X = (data * 1e-15).astype(np.float32)  # covariances 1e-30: float32 holds them
    gm = GaussianMixture(2, reg_covar=0, random_state=0).fit(X)
    for name in ("covariances_", "precisions_", "precisions_cholesky_"):
        value = getattr(gm, name)
        assert value.dtype == np.float32 and np.isfinite(value).all()
    assert np.all(np.diagonal(gm.covariances_, 0, 1, 2) > 0)


# ------------------------------------------------------- partial_fit after fit
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_online_state_from_a_fit_gives_back_its_parameters(data, cov_type):
    """The online state a batch fit hands over: its M-step is the fitted model."""
    from fastgmm.engine.online import m_step, state_from_params
    from fastgmm.model.params import from_fitted

    gm = _fitted(data, cov_type)
    family = gm._family()
    state = state_from_params(from_fitted(gm), family, 800, 100)
    assert state.t == 8
    params = m_step(state, family)
    np.testing.assert_allclose(params.weights, gm.weights_, rtol=1e-12)
    np.testing.assert_allclose(params.means, gm.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(params.covariances, gm.covariances_, rtol=1e-9)


def test_partial_fit_after_fit_continues_with_a_small_step(data):
    """After fit on n rows, a chunk of m rows enters with step (n/m + 1)^-decay:
    a chunk from elsewhere moves the model a little, not all the way."""
    gm = GaussianMixture(2, random_state=0, learning_decay=1.0).fit(data)
    means = gm.means_.copy()
    chunk = data[:80] + 1.0  # 80 rows after a fit on 800: t0 = 10, gamma = 1/11
    gm.partial_fit(chunk)
    assert gm.n_iter_ == 11
    shift = np.abs(gm.means_ - means).max()
    assert 0.01 < shift < 0.2  # with gamma = 1 it would be about 1
    # a second call continues the same stream
    gm.partial_fit(chunk)
    assert gm.n_iter_ == 12


# ------------------------------------------------- atomic publication of a fit
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_predict_during_refit_of_another_width():
    """predict from other threads while the estimator is refitted on data of
    another width: every call sees the old model or the new one, never a mix
    (a clean feature-count ValueError, or exactly one model's answer)."""
    gen = np.random.default_rng(4)
    Xs = {
        d: gen.normal(size=(300, d)) + 3 * (gen.random((300, 1)) < 0.5) for d in (2, 5)
    }
    gm = GaussianMixture(2, random_state=0, max_iter=5, tol=0)
    expected = {d: gm.fit(X).score_samples(X) for d, X in Xs.items()}
    stop, problems, counts = threading.Event(), [], {"ok": 0, "refused": 0}

    def refit():
        while not stop.is_set():
            for X in Xs.values():
                gm.fit(X)

    def read(d):
        while not stop.is_set():
            try:
                scores = gm.score_samples(Xs[d])
            except ValueError as exc:
                if "features" not in str(exc):
                    problems.append(repr(exc))
                counts["refused"] += 1
                continue
            if not np.array_equal(scores, expected[d]):
                problems.append(f"width {d}: scores of a mixed model")
            counts["ok"] += 1

    threads = [threading.Thread(target=refit)]
    threads += [threading.Thread(target=read, args=(d,)) for d in (2, 5, 2, 5)]
    for t in threads:
        t.start()
    time.sleep(3.0)
    stop.set()
    for t in threads:
        t.join()
    assert not problems, problems[:5]
    assert counts["ok"] > 0 and counts["refused"] > 0


# ------------------------------------------------------------------ Ctrl-C
def test_interrupt_is_recognised_through_systemerror():
    """threads() (around every kernel call) turns a SystemError caused by a
    KeyboardInterrupt -- what Numba raises when Ctrl-C lands in a kernel -- back
    into the interrupt; other SystemErrors pass. (tests/test_processes.py sends a
    real SIGINT to a fit.)"""
    from fastgmm._runtime import threads

    def kernel_like():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError("returned a result with an exception set") from exc

    with pytest.raises(KeyboardInterrupt):
        with threads(1):
            kernel_like()
    with pytest.raises(SystemError):
        with threads(1):
            raise SystemError("something else")


def test_every_parallel_kernel_has_a_serial_twin():
    """A forked child of an OpenMP process runs serial twins only: every parallel
    kernel of the package has one (also one declaring no inputs)."""
    import importlib
    import pkgutil

    import fastgmm.kernels
    from fastgmm._jit import kernel

    parallel = []
    for info in pkgutil.iter_modules(fastgmm.kernels.__path__):
        module = importlib.import_module(f"fastgmm.kernels.{info.name}")
        for obj in vars(module).values():
            if getattr(obj, "targetoptions", {}).get("parallel"):
                parallel.append(obj)
    assert len(parallel) >= 4  # mixture_pass, the k-means kernels, two pixel kernels
    assert all(
        k.serial_options == {**k.targetoptions, "parallel": False} for k in parallel
    )

    def no_inputs(n):  # pragma: no cover (never compiled)
        return n

    assert kernel(parallel=True)(no_inputs).serial_options is not None


# ------------------------------------------------------------------- memory
def _slot_bytes(k, p, d):
    return 8 * (1 + k * (1 + d + p * d))


@pytest.mark.parametrize(
    "n_chunks, k, p, d, expected",
    [
        (1000, 8, 3, 3, 1000),  # small statistics: one slot per chunk
        (10, 8, 3, 3, 10),
        (1000, 128, 128, 128, 1),  # full, d = K = 128: one 16.9 MB slot, not 64
        (1000, 128, 1, 128, 63),  # diag at the same size: small slots
        (1000, 64, 96, 96, 3),  # 4.8 MB slots: 3 fit in the budget
        (3, 1024, 256, 256, 1),  # huge slots: never fewer than one
    ],
)
def test_slot_count_bounds_partial_sum_memory(n_chunks, k, p, d, expected):
    """The slots a pass holds: a function of the problem shape only (no thread
    count among the arguments), within max(SLOT_BYTES, one slot)."""
    from fastgmm._jit import SLOT_BYTES
    from fastgmm.kernels.blocks import n_slots_for

    n_slots = n_slots_for(n_chunks, k, p, d)
    assert n_slots == expected
    assert n_slots * _slot_bytes(k, p, d) <= max(SLOT_BYTES, _slot_bytes(k, p, d))


def test_em_pass_bitwise_whatever_the_slot_count():
    """Slots are added in chunk order, so a pass whose slots were capped (K d^2
    large) equals, bitwise, the same pass split into independent calls summed in
    chunk order: the cap changes memory, never results."""
    from fastgmm.kernels import FULL
    from fastgmm.kernels.blocks import n_slots_for
    from fastgmm.kernels.passes import em_pass

    gen = np.random.default_rng(0)
    k, d, chunk, n_chunks = 32, 128, 256, 7
    assert n_slots_for(n_chunks, k, d, d) == 3  # rounds of 3, 3 and 1 chunks
    X = gen.normal(size=(n_chunks * chunk, d))
    const = np.zeros(k)
    loc = X[:k].copy()
    prec = np.tile(np.eye(d), (k, 1, 1))
    whole = em_pass(X, np.empty(0), FULL, const, loc, prec, loc, chunk)
    ll, nk, s1, s2 = 0.0, 0.0, 0.0, 0.0
    for start in range(0, len(X), chunk):
        part = em_pass(
            X[start : start + chunk], np.empty(0), FULL, const, loc, prec, loc, chunk
        )
        ll, nk, s1, s2 = ll + part[0], nk + part[1], s1 + part[2], s2 + part[3]
    assert whole[0] == ll
    for a, b in zip(whole[1:], (nk, s1, s2)):
        np.testing.assert_array_equal(a, b)
