"""Out-of-core fit: block sources (memmap, h5py, zarr, callables) give the in-memory
fit from the same start, fail clearly on bad blocks, and keep memory bounded."""

import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastgmm._base
import fastgmm.engine.data
import fastgmm.mixture
from fastgmm import GaussianMixture
from fastgmm.engine import sources
from fastgmm.engine.data import as_source
from fastgmm.model import covariance as cov

from .._same_fit import (
    COVARIANCE_TYPES,
    assert_same_fit,
    assert_state_unchanged,
    fit_quietly,
    fitted_state,
    fixed_iterations,
    mixture_data,
    start_from,
)

K = 3
#: rows per block read from memmaps and array-likes in these tests: small and not a
#: multiple of the kernel's chunk, so each fit streams several uneven blocks
BLOCK_ROWS = 997


@pytest.fixture
def small_blocks(monkeypatch):
    """Stream memmaps / h5py / zarr in BLOCK_ROWS-row blocks instead of 2**18."""
    small = functools.partial(as_source, block_rows=BLOCK_ROWS)
    for module in (fastgmm.engine.data, fastgmm._base):  # fitting and scoring
        monkeypatch.setattr(module, "as_source", small)


@pytest.fixture
def X(rng):
    return mixture_data(rng)


@pytest.fixture
def weights(rng, X):
    return rng.uniform(0.2, 3.0, size=X.shape[0])


def blocks_of(X, sizes=(1, 250, 0, 1800, 777), weights=None):
    """A callable yielding X (and weights) in blocks of the given sizes, cycling,
    including an empty block: a new generator at each call, as EM needs."""

    def blocks():
        start, i = 0, 0
        while start < X.shape[0]:
            stop = start + sizes[i % len(sizes)]
            rows = X[start:stop]
            yield rows if weights is None else (rows, weights[start:stop])
            start, i = stop, i + 1

    return blocks


def npy_memmap(tmp_path, X, name="X.npy"):
    path = tmp_path / name
    np.save(path, X)
    return np.load(path, mmap_mode="r")


# ------------------------------------------------------------ equal to in memory
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_memmap_equals_in_memory(X, tmp_path, small_blocks, covariance_type):
    start = start_from(X, K, covariance_type)
    expected = fit_quietly(fixed_iterations(K, covariance_type, start), X)
    mm = npy_memmap(tmp_path, X)
    actual = fit_quietly(fixed_iterations(K, covariance_type, start), mm)
    assert_same_fit(expected, actual)
    assert actual.n_features_in_ == X.shape[1]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True], ids=["rows", "rows+weights"])
def test_callable_blocks_equal_in_memory(X, weights, covariance_type, weighted):
    sw = weights if weighted else None
    start = start_from(X, K, covariance_type, sw)
    expected = fit_quietly(
        fixed_iterations(K, covariance_type, start), X, sample_weight=sw
    )
    actual = fit_quietly(
        fixed_iterations(K, covariance_type, start), blocks_of(X, weights=sw)
    )
    assert_same_fit(expected, actual)


def test_callable_returning_a_list_and_integer_blocks(X):
    """Any re-iterable works; integer rows are converted as in memory."""
    Xi = np.round(X * 10).astype(np.int32)
    start = start_from(Xi.astype(np.float64), K, "full")
    expected = fit_quietly(fixed_iterations(K, "full", start), Xi)
    actual = fit_quietly(
        fixed_iterations(K, "full", start),
        lambda: [Xi[i : i + 1000] for i in range(0, len(Xi), 1000)],
    )
    assert_same_fit(expected, actual)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_h5py_equals_in_memory(X, tmp_path, small_blocks, covariance_type):
    h5py = pytest.importorskip("h5py")
    start = start_from(X, K, covariance_type)
    expected = fit_quietly(fixed_iterations(K, covariance_type, start), X)
    with h5py.File(tmp_path / "X.h5", "w") as fh:
        fh.create_dataset("X", data=X, chunks=(500, X.shape[1]))
    with h5py.File(tmp_path / "X.h5", "r") as fh:
        actual = fit_quietly(fixed_iterations(K, covariance_type, start), fh["X"])
        np.testing.assert_array_equal(actual.predict(fh["X"]), expected.predict(X))
    assert_same_fit(expected, actual)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_zarr_equals_in_memory(X, tmp_path, small_blocks, covariance_type):
    zarr = pytest.importorskip("zarr")
    start = start_from(X, K, covariance_type)
    expected = fit_quietly(fixed_iterations(K, covariance_type, start), X)
    Z = zarr.open_array(  # zarr 2 and 3
        store=str(tmp_path / "X.zarr"),
        mode="w",
        shape=X.shape,
        chunks=(700, 3),
        dtype="f8",
    )
    Z[:] = X
    actual = fit_quietly(fixed_iterations(K, covariance_type, start), Z)
    assert_same_fit(expected, actual)


def test_memmap_views_and_offsets(X, tmp_path, small_blocks):
    """Regression: numpy gives a memmap view (mm[1000:]) its parent's ``offset``; the
    streamed rows must be the view's rows, not the file's first rows. Also a memmap
    opened at a byte offset, and a copy-on-write memmap changed in memory (the file
    differs from what the user sees: the mapping is read, not the file)."""
    start = start_from(X, K, "full")
    mm = npy_memmap(tmp_path, X)
    for view, rows in [(mm[1000:], X[1000:]), (mm[123:4567], X[123:4567])]:
        expected = fit_quietly(fixed_iterations(K, "full", start), rows)
        assert_same_fit(expected, fit_quietly(fixed_iterations(K, "full", start), view))

    header = np.load(tmp_path / "X.npy", mmap_mode="r").offset
    raw = np.memmap(
        tmp_path / "X.npy",
        dtype=np.float64,
        mode="r",
        offset=header + 500 * X.shape[1] * 8,
        shape=(X.shape[0] - 500, X.shape[1]),
    )
    expected = fit_quietly(fixed_iterations(K, "full", start), X[500:])
    assert_same_fit(expected, fit_quietly(fixed_iterations(K, "full", start), raw))

    cow = np.load(tmp_path / "X.npy", mmap_mode="c")
    cow[:, 0] += 3.0
    expected = fit_quietly(fixed_iterations(K, "full", start), np.array(cow))
    assert_same_fit(expected, fit_quietly(fixed_iterations(K, "full", start), cow))

    strided = mm[:, :2]  # not C-contiguous: sliced through the mapping
    start2 = start_from(X[:, :2], K, "diag")
    expected = fit_quietly(fixed_iterations(K, "diag", start2), X[:, :2])
    assert_same_fit(expected, fit_quietly(fixed_iterations(K, "diag", start2), strided))


def test_memmap_is_read_through_the_array_not_the_path(X, tmp_path, small_blocks):
    """The fit reads the array the user passed: a file written at the same path after
    the mapping (os.replace) changes what the path holds, not what the memmap maps."""
    start = start_from(X, K, "full")
    expected = fit_quietly(fixed_iterations(K, "full", start), X)
    mm = npy_memmap(tmp_path, X)
    np.save(tmp_path / "other.npy", X[::-1] * 2.0 + 1.0)  # same shape and header
    os.replace(tmp_path / "other.npy", tmp_path / "X.npy")
    assert np.load(tmp_path / "X.npy", mmap_mode="r")[0, 0] == X[-1, 0] * 2.0 + 1.0
    actual = fit_quietly(fixed_iterations(K, "full", start), mm)
    assert_same_fit(expected, actual)


def _this_tree_first():
    """PYTHONPATH for a subprocess that imports the fastgmm under test."""
    root = str(Path(fastgmm.mixture.__file__).resolve().parents[1])
    return os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])


TRUNCATED_SCRIPT = textwrap.dedent(
    """
    import functools, os, sys, warnings
    import numpy as np
    import fastgmm.engine.data
    from fastgmm import GaussianMixture
    from fastgmm.engine.data import as_source

    path = sys.argv[1]
    fastgmm.engine.data.as_source = functools.partial(as_source, block_rows=1000)
    np.save(path, np.random.default_rng(0).normal(size=(10_000, 3)))
    X = np.load(path, mmap_mode="r")
    os.truncate(path, os.path.getsize(path) - 8 * 3 * 2500)  # rows 7500.. are gone
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            GaussianMixture(2, max_iter=2, random_state=0).fit(X)
    except ValueError as exc:
        print(exc)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="cannot truncate a mapped file")
def test_memmap_of_a_truncated_file_raises(tmp_path):
    """A file truncated after it was mapped is shorter than the array: a clear
    ValueError, not a crash (reading mapped pages past the end of a file raises
    SIGBUS; run in a subprocess so that a regression cannot kill the test session).
    numpy itself refuses to map a file shorter than the array
    ("mmap length is greater than file size")."""
    out = subprocess.run(
        [sys.executable, "-c", TRUNCATED_SCRIPT, str(tmp_path / "X.npy")],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": _this_tree_first()},
    )
    assert out.returncode == 0, (out.returncode, out.stderr)
    message = out.stdout.strip()
    assert "is shorter than the array: rows 7000..7999" in message, message
    assert str(tmp_path / "X.npy") in message


def test_float32_memmap_keeps_float32(X, tmp_path, small_blocks):
    X32 = X.astype(np.float32)
    start = start_from(X32, K, "full")
    expected = fit_quietly(fixed_iterations(K, "full", start), X32)
    actual = fit_quietly(fixed_iterations(K, "full", start), npy_memmap(tmp_path, X32))
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert getattr(actual, name).dtype == np.float32
        # both accumulate in float64; only the block partition of the sums differs
        np.testing.assert_allclose(
            getattr(actual, name), getattr(expected, name), rtol=1e-5
        )
    # float32 data at d <= 8 take kernels/lowd32.py, whose block sums are float32:
    # the partition shows at float32's resolution (measured 5e-9 relative)
    assert abs(actual.lower_bound_ - expected.lower_bound_) <= 1e-7 * abs(
        expected.lower_bound_
    )


def test_inference_on_sources_equals_in_memory(X, tmp_path, small_blocks):
    gm = fit_quietly(GaussianMixture(K, random_state=0, max_iter=20), X)
    mm = npy_memmap(tmp_path, X)
    np.testing.assert_array_equal(gm.predict(mm), gm.predict(X))
    np.testing.assert_allclose(
        gm.predict_proba(blocks_of(X)), gm.predict_proba(X), rtol=1e-12
    )
    np.testing.assert_allclose(gm.score_samples(mm), gm.score_samples(X), rtol=1e-12)
    assert gm.score(mm) == pytest.approx(gm.score(X), rel=1e-12)


# --------------------------------------------------------------- initialisation
def test_default_init_on_all_rows_equals_in_memory(X, tmp_path, small_blocks):
    """With fewer rows than INIT_SAMPLE_ROWS the init sample is all rows (no random
    draws), so a default streamed fit equals the default in-memory fit."""
    expected = fit_quietly(GaussianMixture(K, random_state=3, max_iter=50), X)
    actual = fit_quietly(
        GaussianMixture(K, random_state=3, max_iter=50), npy_memmap(tmp_path, X)
    )
    assert_same_fit(expected, actual)


def test_init_on_a_sample_is_reproducible(X, tmp_path, small_blocks, monkeypatch):
    """More rows than INIT_SAMPLE_ROWS: initialisation sees a seeded sample only,
    EM sees every row; the same random_state gives the same model, whatever the
    block sizes."""
    monkeypatch.setattr(fastgmm._base, "INIT_SAMPLE_ROWS", 500)
    seen, starts = [], []
    initialize = fastgmm._base.initialize

    def spy(data, *args, **kwargs):
        seen.append(data.X.shape[0])
        starts.append(initialize(data, *args, **kwargs))
        return starts[-1]

    monkeypatch.setattr(fastgmm._base, "initialize", spy)
    mm = npy_memmap(tmp_path, X)
    first = fit_quietly(GaussianMixture(K, random_state=1), mm)
    again = fit_quietly(GaussianMixture(K, random_state=1), mm)
    other_blocks = fit_quietly(GaussianMixture(K, random_state=1), blocks_of(X))
    assert 350 < seen[0] < 650 and seen == [seen[0]] * 3
    assert_same_fit(first, again, rtol=0)
    assert_same_fit(first, other_blocks)
    assert first.converged_
    # EM itself ran on every row: the in-memory fit from the sample's start agrees
    start = starts[0]
    precisions = cov.TABLE["full"].precisions(start.prec_chol)
    in_memory = fit_quietly(
        GaussianMixture(
            K,
            weights_init=start.weights,
            means_init=start.means,
            precisions_init=precisions,
        ),
        X,
    )
    assert_same_fit(in_memory, first, rtol=1e-9)


def test_init_sample_with_weights_and_n_init(X, weights, monkeypatch):
    monkeypatch.setattr(fastgmm._base, "INIT_SAMPLE_ROWS", 800)
    src = blocks_of(X, weights=weights)
    a = fit_quietly(
        GaussianMixture(K, n_init=2, random_state=5, covariance_type="diag"), src
    )
    b = fit_quietly(
        GaussianMixture(K, n_init=2, random_state=5, covariance_type="diag"), src
    )
    assert_same_fit(a, b, rtol=0)
    assert a.converged_


# ------------------------------------------------------------ validated once
@pytest.fixture
def finite_checks(monkeypatch):
    """The shapes of the arrays whose values were checked for NaN / infinity."""
    seen = []
    check = sources._all_finite

    def counting(a):
        seen.append(a.shape)
        return check(a)

    monkeypatch.setattr(sources, "_all_finite", counting)
    return seen


def test_values_are_checked_once_per_fit(
    X, weights, tmp_path, small_blocks, finite_checks
):
    """The O(n) value checks run on every block of the first complete pass only, not
    at every EM iteration: one finiteness check per block (and per weight block) for
    a whole fit."""
    start = start_from(X, K, "full")
    gm = fit_quietly(
        fixed_iterations(K, "full", start, max_iter=4), npy_memmap(tmp_path, X)
    )
    assert gm.n_iter_ == 4
    n_blocks = -(-X.shape[0] // BLOCK_ROWS)
    assert finite_checks == [(BLOCK_ROWS, 3)] * (n_blocks - 1) + [
        (X.shape[0] % BLOCK_ROWS, 3)
    ]

    finite_checks.clear()  # default init: the variance pass, the sample pass, EM
    source = blocks_of(X, sizes=(1500,), weights=weights)
    gm = fit_quietly(GaussianMixture(K, random_state=0, max_iter=4, tol=0), source)
    assert gm.n_iter_ == 4
    assert finite_checks == [(1500, 3), (1500,)] * 4


def test_a_bad_value_is_refused_on_the_first_pass(X, finite_checks):
    """Only the first pass checks values, and it still names the block: in the block
    read to find the source's width and dtype too."""
    nan = X[:10].copy()
    nan[3, 1] = np.nan
    for source, block in [(_with_bad_block(X, nan), 1), (_with_bad_block(nan, X), 0)]:
        gm = GaussianMixture(K, random_state=0)
        with pytest.raises(ValueError) as error:
            gm.fit(source)
        assert str(error.value) == f"block {block}: Input X contains NaN or infinity."
        assert not hasattr(gm, "means_")


# ------------------------------------------------------------------ bad blocks
def _with_bad_block(X, bad):
    def blocks():
        yield X[:2000]
        yield bad
        yield X[2000:]

    return blocks


def _same_generator(X):
    gen = (X[i : i + 500] for i in range(0, len(X), 500))
    return lambda: gen


def _changing_source(X):
    calls = []

    def blocks():
        calls.append(1)
        yield X[: len(X) - len(calls)]  # one row fewer on each pass

    return blocks


def _bad_sources(X):
    nan, inf = X[:10].copy(), X[:10].copy()
    nan[3, 1], inf[5, 0] = np.nan, np.inf
    w = np.ones(2000)
    return {
        "nan": (ValueError, "NaN", _with_bad_block(X, nan)),
        "inf": (ValueError, "infinity", _with_bad_block(X, inf)),
        "wrong width": (ValueError, "3 features", _with_bad_block(X, X[:10, :2])),
        "1-D block": (ValueError, "2D block", _with_bad_block(X, X[:10, 0])),
        "strings": (ValueError, "numeric", _with_bad_block(X, X[:10].astype(str))),
        "objects": (ValueError, "numeric", _with_bad_block(X, X[:10].astype(object))),
        "empty source": (ValueError, "0 sample", lambda: iter(())),
        "only empty blocks": (ValueError, "0 sample", lambda: iter([X[:0], X[:0]])),
        "zero-width blocks": (
            ValueError,
            r"block 0: Found array with 0 feature\(s\)",
            lambda: iter([X[:2000, :0], X[2000:, :0]]),
        ),
        "zero-width block later": (
            ValueError,
            r"block 1: Found array with 0 feature\(s\)",
            _with_bad_block(X, X[:10, :0]),
        ),
        "negative weights": (
            ValueError,
            "sample weights",
            lambda: iter([(X[:2000], -w)]),
        ),
        "short weights": (
            ValueError,
            "sample weights",
            lambda: iter([(X[:2000], w[:-1])]),
        ),
        "nan weights": (
            ValueError,
            "sample weights",
            lambda: iter([(X[:2000], w * np.nan)]),
        ),
        "zero weights": (
            ValueError,
            "weight must be positive",
            lambda: iter([(X[:2000], 0 * w)]),
        ),
        "generator object": (TypeError, "callable", blocks_of(X)()),
        "same generator each call": (ValueError, "new iterable", _same_generator(X)),
        "rows change between passes": (ValueError, "new iterable", _changing_source(X)),
        "fewer rows than components": (
            ValueError,
            "n_samples >= n_components",
            lambda: iter([X[:2]]),
        ),
    }


BAD = list(_bad_sources(np.zeros((6000, 3))))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("case", BAD)
def test_bad_source_raises_and_keeps_the_fitted_model(X, case):
    error, match, source = _bad_sources(X)[case]
    gm = fit_quietly(GaussianMixture(K, random_state=0, max_iter=5), X)
    before = fitted_state(gm)
    with pytest.raises(error, match=match):
        gm.fit(source)
    assert_state_unchanged(before, gm)


def test_bad_blocks_at_inference(X):
    gm = fit_quietly(GaussianMixture(K, random_state=0, max_iter=5), X)
    with pytest.raises(ValueError, match="features"):
        gm.predict(lambda: iter([X[:10, :2]]))
    with pytest.raises(ValueError, match="NaN"):
        gm.score_samples(_with_bad_block(X, X[:3] * np.nan))
    with pytest.raises(TypeError, match="callable"):
        gm.predict(blocks_of(X)())


def test_zero_width_arrays_are_refused(tmp_path):
    """A memmap (or h5py / zarr array) of shape (n, 0) has no features to fit."""
    gm = GaussianMixture(K)
    with pytest.raises(ValueError, match=r"0 feature\(s\) \(shape=\(100, 0\)\)"):
        gm.fit(npy_memmap(tmp_path, np.zeros((100, 0))))
    assert not hasattr(gm, "means_")


def test_sample_weight_argument_with_streamed_data(X, tmp_path):
    gm = GaussianMixture(K)
    with pytest.raises(TypeError, match=r"\(rows, weights\) pairs"):
        gm.fit(npy_memmap(tmp_path, X), sample_weight=np.ones(len(X)))
    assert not hasattr(gm, "means_")


# ------------------------------------------------------------------ memory cap
MEMORY_SCRIPT = textwrap.dedent(
    """
    import gc, json, sys, time
    import numpy as np

    path, rows, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6.0, size=(4, d))
    header = {"descr": "<f8", "fortran_order": False, "shape": (rows, d)}
    t0 = time.perf_counter()
    with open(path, "wb") as fh:  # written in pieces: nothing of the file's size in RAM
        np.lib.format.write_array_header_1_0(fh, header)
        for start in range(0, rows, 500_000):
            m = min(500_000, rows - start)
            block = centres[rng.integers(4, size=m)] + rng.normal(size=(m, d))
            fh.write(block.tobytes())
    write_s = time.perf_counter() - t0

    import warnings
    from fastgmm import GaussianMixture

    def status(key):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024

    # JIT warm-up on tiny data through the same code path (memmap, K=4, full)
    np.save(path + ".tiny.npy", np.asarray(np.load(path, mmap_mode="r")[:5000]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GaussianMixture(4, max_iter=2, random_state=0, init_params="k-means++").fit(
            np.load(path + ".tiny.npy", mmap_mode="r")
        )
    X = np.load(path, mmap_mode="r")
    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    rss0 = status("VmRSS")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(
            4, max_iter=2, tol=0, random_state=0, init_params="k-means++"
        ).fit(X)
    fit_s = time.perf_counter() - t0
    peak = status("VmHWM")
    err = np.abs(np.sort(gm.means_, axis=0) - np.sort(centres, axis=0)).max()
    print(json.dumps({
        "file_bytes": X.nbytes, "rss_before": rss0, "peak": peak, "growth": peak - rss0,
        "write_s": write_s, "fit_s": fit_s, "n_iter": gm.n_iter_, "mean_err": float(err),
    }))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc"
)
def test_memory_stays_bounded_by_the_block_size(tmp_path):
    """Fit a ~400 MB float64 .npy through np.load(mmap_mode='r') in a fresh process
    (k-means++ init on the 200k-row sample, 2 EM iterations: 4 passes over the file):
    the peak RSS growth during fit must stay well below the file size. Expected:
    the mapped pages of one 2**18-row block (~17 MB; each block's pages are dropped
    once it was used), the init sample (~13 MB) and kernel scratch: 45 MB measured."""
    rows, d = 6_250_000, 8  # 400 MB
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            MEMORY_SCRIPT,
            str(tmp_path / "big.npy"),
            str(rows),
            str(d),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": _this_tree_first()},
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(result)
    assert result["file_bytes"] == rows * d * 8
    assert result["n_iter"] == 2
    assert result["mean_err"] < 0.05  # the fit used the data
    assert result["growth"] < result["file_bytes"] / 3, result
