"""The diagonal kinds' pass of float64 data (kernels.diagpass) against the NumPy
oracle, em_pass and scikit-learn; data far from the origin; far points; thread-count
determinism; and which fits take it."""

import os
import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGMM

from fastgmm import GaussianMixture
from fastgmm._jit import BLOCK
from fastgmm.kernels import DIAG, FULL
from fastgmm.kernels.diagpass import MIN_D, diag_fused_pass, use_diag_pass
from fastgmm.kernels.passes import em_pass
from fastgmm.model import covariance as cov
from fastgmm.model.params import Params, kernel_inputs

from .helpers import assert_same_for_any_thread_count, pass_of
from .helpers import pass_oracle as oracle


def problem(rng, n, d, K, covariance_type="diag", offset=50.0, spread=1.0):
    """(X, Params): overlapping blobs around centres ``offset`` from the origin,
    spread ``spread``; the parameters are the truth, perturbed."""
    centres = offset + rng.normal(scale=spread, size=(K, d))
    labels = rng.integers(0, K, n)
    scale = rng.uniform(0.5, 1.5, size=(K, d))
    if covariance_type == "spherical":
        scale = scale[:, :1] * np.ones(d)
    X = centres[labels] + rng.normal(size=(n, d)) * scale[labels]
    weights = rng.dirichlet(np.full(K, 5.0))
    means = centres + 0.1 * rng.normal(size=(K, d))
    prec_chol = 1.0 / (scale * 1.1)
    if covariance_type == "spherical":
        prec_chol = prec_chol[:, 0]
    model = cov.get(covariance_type)
    return X, Params(
        model, weights, means, model.covariances_from_prec_chol(prec_chol), prec_chol
    )


def run(X, sw, params, chunk=4 * BLOCK, fn=diag_fused_pass):
    return pass_of(fn, X, sw, params, chunk)


def assert_stats_close(got, expected, rtol):
    np.testing.assert_allclose(got[0], expected[0], rtol=rtol)
    for a, b in zip(got[1:], expected[1:]):
        scale = np.max(np.abs(b))
        np.testing.assert_allclose(a, b, rtol=100 * rtol, atol=100 * rtol * scale)


# d: 8-feature groups, then 4, then single features in both loops of the kernel
@pytest.mark.parametrize("d", [4, 5, 8, 13, 16, 19])
@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_matches_oracle(rng, d, covariance_type):
    """Log-likelihood and statistics as the oracle's, with sample weights (some zero),
    a partial last block and chunk."""
    n, K = 3 * 4 * BLOCK + 77, 7
    X, params = problem(rng, n, d, K, covariance_type)
    sw = rng.uniform(0.0, 3.0, n)
    sw[rng.random(n) < 0.1] = 0.0
    assert_stats_close(
        run(X, sw, params), oracle(X, sw, params, covariance_type), 1e-12
    )
    assert_stats_close(
        run(X, None, params), oracle(X, None, params, covariance_type), 1e-12
    )


def test_same_as_em_pass(rng):
    """The same results as em_pass's blocks (to rounding)."""
    X, params = problem(rng, 5000, 16, 16)
    assert_stats_close(run(X, None, params), run(X, None, params, fn=em_pass), 1e-13)


@pytest.mark.parametrize("offset", [1e6, 1e9])
def test_far_from_origin(rng, offset):
    """Tight clusters 1e6 and 1e9 from the origin: the block is centred, so the
    log-densities keep their digits (y p - mp rounds at the scale of the spread;
    uncentred, mp ~ offset / sd, the log-likelihood would be off by ~1e-7 relative
    at 1e9) and the statistics, about the means, match the oracle."""
    X, params = problem(rng, 2 * BLOCK + 9, 12, 5, offset=offset, spread=3.0)
    expected = oracle(X, None, params, "diag")
    got = run(X, None, params)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-13)
    assert_stats_close(got, expected, 1e-12)


def test_far_from_origin_with_a_noise_component(rng):
    """A noise component (zero precision, at the origin, last) does not pull the
    centre off the data: data 1e9 from the origin as em_pass gives it (whose x - m
    is exact there); fails with the noise row counted in the centre."""
    X, params = problem(rng, 2 * BLOCK + 9, 12, 5, offset=1e9, spread=3.0)
    kind, const, loc, prec = kernel_inputs(params).astuple()
    const = np.append(const, np.log(0.01) - 12 * np.log(1e3))
    loc = np.vstack([loc, np.zeros((1, 12))])
    prec = np.concatenate([prec, np.zeros((1, 1, 12))])
    ref_point = np.vstack([params.means, np.zeros((1, 12))])
    args = (X, np.empty(0), kind, const, loc, prec, ref_point, BLOCK)
    a, b = em_pass(*args), diag_fused_pass(*args)
    np.testing.assert_allclose(b[0], a[0], rtol=1e-13)
    assert_stats_close(b, a, 1e-12)


def test_bitwise_identical_for_any_thread_count(rng, no_serial_cutoff):
    X, params = problem(rng, 9 * BLOCK + 5, 10, 6)
    sw = rng.uniform(0.5, 2.0, len(X))
    assert_same_for_any_thread_count(lambda: run(X, sw, params, chunk=BLOCK))


def test_far_points_as_em_pass(rng):
    """A point 1e150 away (its log-density is finite: -1e300-ish) and one 1e200 away
    (-inf under every component: log p = -inf, equal responsibilities): as em_pass."""
    X, params = problem(rng, 300, 8, 5)
    X[3] = 1e150
    a, b = run(X, None, params, fn=em_pass), run(X, None, params)
    assert np.isfinite(b[0]) and all(np.all(np.isfinite(v)) for v in b[1:])
    np.testing.assert_allclose(b[0], a[0], rtol=1e-12)
    np.testing.assert_allclose(b[1], a[1], rtol=1e-12)
    X[7] = -1e200
    a, b = run(X, None, params, fn=em_pass), run(X, None, params)
    assert a[0] == b[0] == -np.inf
    np.testing.assert_allclose(b[1], a[1], rtol=1e-12)
    assert np.all(b[1] >= 1.0 / 5)  # the far point's equal shares


def test_which_fits_take_it():
    assert use_diag_pass(DIAG, MIN_D)
    assert not use_diag_pass(DIAG, MIN_D - 1)
    assert not use_diag_pass(FULL, 16)


def test_float32_data_as_float64_of_the_same_values(rng):
    """float32 rows are read into float64 blocks: the same results, bitwise, as
    float64 data of the same values."""
    X, params = problem(rng, 3 * BLOCK + 11, 12, 5)
    X32 = X.astype(np.float32)
    a, b = run(X32, None, params), run(X32.astype(np.float64), None, params)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_estimator_takes_the_path_and_matches_sklearn(
    rng, monkeypatch, covariance_type
):
    """From the same start, scikit-learn's EM path: lower bound to 1e-10, parameters
    close; and the fit went through diag_fused_pass (fails without the hook)."""
    import fastgmm.engine.em as em

    calls = []

    def spy(*args):
        calls.append(args[0].shape)
        return diag_fused_pass(*args)

    monkeypatch.setattr(em, "diag_fused_pass", spy)
    X, params = problem(rng, 4000, 16, 16, covariance_type)
    start = dict(
        weights_init=params.weights,
        means_init=params.means,
        precisions_init=params.prec_chol**2,
    )
    kw = dict(covariance_type=covariance_type, tol=0.0, max_iter=5, **start)
    ours = GaussianMixture(16, **kw).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = SkGMM(16, **kw).fit(X)
    assert calls
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-10)
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(
        ours.covariances_, theirs.covariances_, rtol=1e-6, atol=1e-8
    )


CACHE_HISTORY = """
import json, os, sys
import numpy as np
from fastgmm._jit import BLOCK
from fastgmm.kernels import DIAG
from fastgmm.kernels.diagpass import diag_fused_pass

step = sys.argv[1]
rng = np.random.default_rng(0)
n, d, K = 3 * BLOCK + 11, 12, 5
runs = []
for _ in range(20):
    centres = 50.0 + rng.normal(size=(K, d))
    labels = rng.integers(0, K, n)
    scale = rng.uniform(0.5, 1.5, size=(K, d))
    X = (centres[labels] + rng.normal(size=(n, d)) * scale[labels]).astype(np.float32)
    prec = (1.0 / (1.1 * scale))[:, None, :]
    means = centres + 0.1 * rng.normal(size=(K, d))
    const = np.log(rng.dirichlet(np.full(K, 5.0))) + np.log(prec[:, 0]).sum(1)
    runs.append((X, (const - 0.5 * d * np.log(2 * np.pi), means, prec, means)))


def passes(dtype):
    out = [diag_fused_pass(X.astype(dtype), np.empty(0), DIAG, *p, 4 * BLOCK)
           for X, p in runs]
    return [[np.asarray(a).tolist() for a in o] for o in out]


if step == "float64":
    passes(np.float64)
elif step == "float32":
    import numba
    numba.njit(lambda x: x + 1)(1)  # this process numbers its functions apart
    passes(np.float32)
else:  # the helpers' own compiled code loaded first, as when a caller compiles
    from fastgmm.kernels import diagpass as dp
    lp, v, xt, mp = np.ones((K, BLOCK)), np.ones(BLOCK), np.ones((d, BLOCK)), np.ones((K, d))
    const, prec = np.zeros(K), np.ones((K, 1, d))
    const.setflags(write=False), prec.setflags(write=False)
    dp._resp(lp, 4, v.copy(), v.copy(), v.copy(), v.copy(), np.ones((2, BLOCK)))
    dp._log_prob(xt, 4, const, mp, prec, lp, v.copy())
    dp._stats(4, mp.copy(), lp, v.copy(), xt, np.zeros(K), mp.copy(), np.zeros((K, 1, d)))
    print(json.dumps(passes(np.float64) == passes(np.float32)), file=sys.stderr)
"""


@pytest.mark.slow
def test_float32_same_code_whatever_the_cache(tmp_path):
    """float32 and float64 data of the same values, bitwise equal in a process whose
    cache has this history: the float64 pass compiled; the helpers' entries then
    lost (as a concurrent process's index write loses them) and the float32 pass
    compiled in another process (its helpers compiled anew, under other symbol
    names); then a process that loads the helpers' own code first. Each compiled
    library carries its own copies of the helpers it calls (re-optimised with it,
    rounding apart by an ulp at times), and a process runs the copy loaded first
    under each symbol name: with a specialisation per dtype, float64 ran the copies
    in its own library and float32 the helpers' (30 of the 80 arrays differed)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, FASTGMM_CACHE_DIR=str(tmp_path), PYTHONPATH=str(root))

    def run(step):
        proc = subprocess.run(
            [sys.executable, "-c", CACHE_HISTORY, step],
            env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stderr

    run("float64")
    helpers = ("_resp", "_log_prob", "_stats", "_chunk", "_load", "_add4")
    for path in tmp_path.glob("jit-*/kernels.diagpass.*"):
        if path.name.split(".")[2].split("-")[0] in helpers:
            path.unlink()
    run("float32")
    assert run("both").strip().splitlines()[-1] == "true"


def test_one_chunk_pass_is_the_slot_sum_of_chunks(rng):
    """A pass over one chunk runs without the parallel loop (no region to open, no
    slot to add); a pass over several chunks adds exactly those one-chunk results,
    in chunk order: the same statistics, bit for bit."""
    chunk, K, d = 4 * BLOCK, 5, 6
    n = 3 * chunk
    X, params = problem(rng, n, d, K, "diag")
    sw = rng.uniform(0.5, 2.0, n)
    whole = run(X, sw, params, chunk=chunk)
    sums = [0.0, 0.0, 0.0, 0.0]
    for i in range(0, n, chunk):
        part = run(X[i : i + chunk], sw[i : i + chunk], params, chunk=chunk)
        sums = [s + p for s, p in zip(sums, part)]
    for got, expected in zip(whole, sums):
        np.testing.assert_array_equal(got, expected)
