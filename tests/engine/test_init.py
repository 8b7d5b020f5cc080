"""The default start is scikit-learn's: k-means++ from the same random stream, the
same Lloyd passes and stopping rule, hence the same labels (ARI 1, in fact equal
arrays) on real data, weighted or not, and the same generator state afterwards."""

import functools
import warnings

import numpy as np
import pytest
from sklearn import datasets
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.metrics import adjusted_rand_score

from fastgmm._runtime import threads
from fastgmm.engine.data import make_data
from fastgmm.engine.init import kmeans, label_dtype, lloyd
from fastgmm.engine.init import kmeans_plusplus as fg_plusplus
from fastgmm.model import covariance


@functools.cache
def _pixels(name, n):
    import skimage.data

    img = getattr(skimage.data, name)()
    P = img.reshape(-1, 3).astype(np.float64) / 255.0
    return P[np.random.default_rng(0).choice(len(P), n, replace=False)]


def _standardised(X):
    return (X - X.mean(0)) / X.std(0)


@functools.cache
def load(name):
    sets = {
        "iris": (lambda: datasets.load_iris().data, 3),
        "wine": (lambda: _standardised(datasets.load_wine().data), 3),
        "digits": (lambda: datasets.load_digits().data, 10),
        "coffee": (lambda: _pixels("coffee", 20_000), 5),
        "astronaut": (lambda: _pixels("astronaut", 20_000), 8),
    }
    make, k = sets[name]
    return np.ascontiguousarray(make(), np.float64), k


def _data(X, k, sample_weight=None):
    return make_data(X, sample_weight, k, covariance.get("full"))


def sklearn_kmeans(X, k, random_state, sample_weight=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km = KMeans(k, n_init=1, random_state=random_state)
        return km.fit(X, sample_weight=sample_weight)


@pytest.mark.parametrize("name", ["iris", "wine", "digits", "coffee", "astronaut"])
def test_kmeans_labels_equal_scikit_learns(name):
    X, k = load(name)
    data = _data(X, k)
    for seed in range(4):
        sk_rs, fg_rs = np.random.RandomState(seed), np.random.RandomState(seed)
        sk = sklearn_kmeans(X, k, sk_rs)
        centers, labels = kmeans(data, k, fg_rs)
        assert adjusted_rand_score(sk.labels_, labels) == 1.0
        np.testing.assert_array_equal(labels, sk.labels_)
        np.testing.assert_allclose(centers, sk.cluster_centers_, rtol=1e-9, atol=1e-9)
        # the same draws were taken: the streams continue alike (n_init > 1)
        assert fg_rs.random_sample() == sk_rs.random_sample()


@pytest.mark.parametrize("name", ["iris", "wine", "digits", "coffee"])
def test_lloyd_passes_equal_scikit_learns(name, monkeypatch):
    """The compiled Lloyd loop takes as many passes as scikit-learn's (its n_iter_)
    to the same labels and centres, float64 and float32, from the same k-means++
    seeds; on one thread the whole loop is one kernel call."""
    import fastgmm.engine.init as init

    calls = []
    run = init.lloyd_run
    monkeypatch.setattr(init, "lloyd_run", lambda *a: calls.append(1) or run(*a))
    X, k = load(name)
    for dtype in (np.float64, np.float32):
        Xd = X.astype(dtype)
        data = _data(Xd, k)
        mean = Xd.mean(axis=0)
        for seed in range(3):
            sk = sklearn_kmeans(Xd, k, seed)
            centers, _ = fg_plusplus(data, k, np.random.RandomState(seed), mean)
            calls.clear()
            with threads(1):
                fg_centers, labels, n_iter = lloyd(
                    data, centers, mean, init._unweighted_tolerance(data)
                )
            assert n_iter == sk.n_iter_
            np.testing.assert_array_equal(labels, sk.labels_)
            tol = 1e-9 if dtype == np.float64 else 1e-5
            np.testing.assert_allclose(
                fg_centers + mean, sk.cluster_centers_, rtol=tol, atol=tol
            )
            assert len(calls) == 1


def test_weighted_kmeans_equals_scikit_learns(rng):
    X, k = load("wine")
    w = rng.uniform(0, 3, len(X))
    w[rng.random(len(X)) < 0.2] = 0.0
    data = _data(X, k, w)
    for seed in range(4):
        sk = sklearn_kmeans(X, k, seed, sample_weight=w)
        _, labels = kmeans(data, k, np.random.RandomState(seed))
        np.testing.assert_array_equal(labels, sk.labels_)


def test_kmeans_plusplus_indices_equal_scikit_learns():
    """init_params="k-means++": scikit-learn's public kmeans_plusplus (raw rows)."""
    for name in ("iris", "digits", "coffee"):
        X, k = load(name)
        for seed in range(3):
            _, expected = kmeans_plusplus(X, k, random_state=seed)
            _, indices = fg_plusplus(_data(X, k), k, np.random.RandomState(seed))
            np.testing.assert_array_equal(indices, expected)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_empty_clusters_are_relocated_as_scikit_learn_does(rng, weighted):
    """Lloyd from centres of which some start empty (far from every row, or twins of
    another centre): they move to the rows farthest from their centres, as in
    scikit-learn's ``_kmeans_single_lloyd``; labels and centres equal its own."""
    from sklearn.cluster._kmeans import _kmeans_single_lloyd

    X, _ = load("wine")
    w = rng.uniform(0.5, 2, len(X)) if weighted else None
    data = _data(X, 6, w)
    mean = X.mean(axis=0)
    Xc = X - mean
    centers = np.vstack([Xc[[3, 70, 140]], Xc[[70]], [[50.0] * 13, [-40.0] * 13]])
    labels, _, sk_centers, sk_iter = _kmeans_single_lloyd(
        Xc,
        np.ones(len(X)) if w is None else w,
        centers.copy(),
        tol=1e-4 * X.var(0).mean(),
    )
    fg_centers, fg_labels, n_iter = lloyd(data, centers, mean, 1e-4 * X.var(0).mean())
    np.testing.assert_array_equal(fg_labels, labels)
    np.testing.assert_allclose(fg_centers, sk_centers, rtol=1e-10, atol=1e-10)
    assert n_iter == sk_iter
    assert len(np.unique(labels)) == 6


def _sklearn_shift(old, new):
    """scikit-learn's squared centre shift of a pass: ``_center_shift`` (the root of
    ``_euclidean_dense_dense``: four squares a step, then the remainder), squared
    and summed by NumPy."""
    d = old.shape[1]
    shift = np.empty(len(old))
    for k, (a, b) in enumerate(zip(new, old)):
        r = 0.0
        for i in range(0, d - d % 4, 4):
            s = [(a[j] - b[j]) * (a[j] - b[j]) for j in range(i, i + 4)]
            r += ((s[0] + s[1]) + s[2]) + s[3]
        for j in range(d - d % 4, d):
            r += (a[j] - b[j]) * (a[j] - b[j])
        shift[k] = np.sqrt(r)
    return (shift**2).sum()


def test_relocation_pass_stops_on_scikit_learns_shift():
    """A pass that empties a cluster (a centre far from every row) relocates in
    Python; its centre shift is rounded as scikit-learn's (the kernel's
    move_centers), so with ``tol`` exactly at scikit-learn's shift of that pass both
    stop there: the same passes, labels and centres. (NumPy's row sums of squares
    round this shift 2 ulps above it: the loop then took another pass.)"""
    from sklearn.cluster._kmeans import _kmeans_single_lloyd

    X, _ = load("wine")
    X = _standardised(X)
    mean = X.mean(axis=0)
    Xc = X - mean
    centers = np.vstack([Xc[[141, 152, 113, 114, 62]], np.full((1, 13), 50.0)])
    ones = np.ones(len(X))
    _, _, after, _ = _kmeans_single_lloyd(Xc, ones, centers.copy(), 1, tol=0.0)
    tol = _sklearn_shift(centers, after)
    numpy_shift = (np.sqrt(((after - centers) ** 2).sum(axis=1)) ** 2).sum()
    assert numpy_shift > tol  # the case tells the two roundings apart
    labels, _, sk_centers, sk_iter = _kmeans_single_lloyd(
        Xc, ones, centers.copy(), tol=tol
    )
    assert sk_iter == 1  # scikit-learn stops on the relocation pass
    fg_centers, fg_labels, n_iter = lloyd(_data(X, 6), centers, mean, tol)
    assert n_iter == sk_iter
    np.testing.assert_array_equal(fg_labels, labels)
    np.testing.assert_array_equal(fg_centers, sk_centers)


def test_duplicate_rows_fewer_than_clusters():
    """Fewer distinct rows than clusters: relocation finds nothing to move (every
    distance is 0) and empty clusters copy the heaviest centre, as scikit-learn's."""
    from sklearn.cluster._kmeans import _kmeans_single_lloyd

    X = np.repeat([[0.0, 0.0], [1.0, 2.0], [3.0, 1.0]], [50, 30, 20], axis=0)
    mean = X.mean(axis=0)
    Xc = X - mean
    centers = Xc[[0, 60, 90, 0, 60]]
    labels, _, sk_centers, sk_iter = _kmeans_single_lloyd(
        Xc, np.ones(100), centers.copy()
    )
    fg_centers, fg_labels, n_iter = lloyd(_data(X, 5), centers, mean, 1e-4)
    np.testing.assert_array_equal(fg_labels, labels)
    np.testing.assert_array_equal(fg_centers, sk_centers)
    assert n_iter == sk_iter


def test_tolerance_exit_recomputes_labels(monkeypatch):
    """A loose tolerance stops Lloyd before labels settle; the labels are then those
    of the final centres (scikit-learn's extra E-step), equal to scikit-learn's."""
    import fastgmm.engine.init as init

    X, k = load("coffee")
    monkeypatch.setattr(init, "KMEANS_TOL", 1e-1)
    for seed in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sk = KMeans(k, n_init=1, random_state=seed, tol=1e-1).fit(X)
        _, labels = kmeans(_data(X, k), k, np.random.RandomState(seed))
        np.testing.assert_array_equal(labels, sk.labels_)
        assert sk.n_iter_ < 10  # the tolerance, not strict convergence, stopped it


def test_float32_data_small_sets_equal_scikit_learns():
    """float32 rows: distances in float32 as scikit-learn computes them."""
    for name in ("iris", "wine", "digits"):
        X, k = load(name)
        X32 = X.astype(np.float32)
        for seed in range(3):
            sk = sklearn_kmeans(X32, k, seed)
            _, labels = kmeans(_data(X32, k), k, np.random.RandomState(seed))
            np.testing.assert_array_equal(labels, sk.labels_)


def test_labels_use_the_smallest_integer_dtype():
    assert label_dtype(1) == np.int8 and label_dtype(127) == np.int8
    assert label_dtype(128) == np.int16 and label_dtype(40_000) == np.int32
    X, k = load("iris")
    _, labels = kmeans(_data(X, k), k, np.random.RandomState(0))
    assert labels.dtype == np.int8


@pytest.mark.slow  # a fresh process
def test_kmeans_start_memory_is_bounded():
    """Issue 12: the k-means start of a large float32 fit held int64 labels, float64
    distances and n-sized cumulative sums (3.1x the input at 20M x 3). Now: int8
    labels and float32 distances, one third of the input at d = 3 (measured 0.34x at
    5M x 3, peak resident memory above the data, JIT warm)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    script = root / "benchmarks" / "kmeans_memory.py"
    out = subprocess.run(
        [sys.executable, str(script), "--rows", "2000000", "--who", "fastgmm"],
        capture_output=True, text=True, check=True, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    ).stdout  # fmt: skip
    ratio = float(out.split("(")[-1].split("x")[0])
    assert ratio <= 0.5, out
