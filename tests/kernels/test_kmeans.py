"""The k-means kernels against NumPy and scikit-learn: nearest centres with
scikit-learn's distance and tie rule, the Lloyd loop, the k-means++ seeding,
chunked cumulative-sum search, and numpy's weighted choice."""

import numpy as np
import pytest
from sklearn.cluster._kmeans import _labels_inertia

from fastgmm._jit import BLOCK, chunk_rows
from fastgmm.engine.init import _ones_sum
from fastgmm.kernels.kmeans import _row_norms, lloyd_run, move_centers
from fastgmm.kernels.seeding import choice_index, locate, plusplus_run

DTYPES = [np.float32, np.float64]

#: (n, d, K, chunk): less than a block, several chunks, d=1, the driver's chunk
SHAPES = [
    pytest.param(37, 1, 1, BLOCK, id="n37-d1-K1"),
    pytest.param(300, 3, 4, BLOCK, id="n300-d3-K4-3chunks"),
    pytest.param(1000, 5, 3, 3 * BLOCK, id="n1000-d5-K3"),
    pytest.param(2000, 20, 7, None, id="n2000-d20-K7-driverchunks"),
]


def _chunk(chunk, d, k):
    return chunk_rows(d, k) if chunk is None else chunk


def _pseudo_dist(Xc, centers):
    """scikit-learn's ||c||^2 - 2 x.c (float64 reference)."""
    Xc, centers = Xc.astype(float), centers.astype(float)
    return (centers**2).sum(1)[None] - 2 * Xc @ centers.T


def _lloyd(X, sw, mean, centers, chunk, labels, max_iter, tol=0.0):
    """lloyd_run for at most ``max_iter`` passes (0: label only): (status, nk, s1,
    state); ``centers`` are moved in place."""
    k = centers.shape[0]
    nk, s1, state = np.zeros(k), np.zeros(centers.shape), np.zeros(2, np.int64)
    status = lloyd_run(
        X, sw, mean, centers, tol, max_iter, max_iter, chunk, labels, nk, s1, state
    )
    return status, nk, s1, state


def _assign(X, mean, centers, chunk, labels):
    """Label the rows by ``centers`` (no pass): lloyd_run with max_iter=0."""
    return _lloyd(X, np.empty(0), mean, centers.copy(), chunk, labels, 0)[0]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n, d, k, chunk", SHAPES)
def test_one_lloyd_pass_matches_numpy(rng, n, d, k, chunk, dtype, weighted):
    """One pass (max_iter=1): the nearest centres, their sums, the centres moved to
    the means, then the rows labelled by the moved centres."""
    X = (rng.normal(size=(n, d)) + 5.0).astype(dtype)
    sw = rng.uniform(0.1, 2, n) if weighted else np.empty(0)
    mean = X.mean(axis=0)
    Xc = X - mean
    centers = Xc[rng.choice(n, k, replace=False)] + dtype(0.1)
    start = centers.copy()
    labels = np.full(n, -1, np.int8)
    status, nk, s1, state = _lloyd(X, sw, mean, centers, _chunk(chunk, d, k), labels, 1)
    dist = _pseudo_dist(Xc, start)
    first = dist.argmin(1)
    w = sw if weighted else np.ones(n)
    onehot = np.eye(k)[first] * w[:, None]
    if np.any(onehot.sum(0) == 0):
        assert status == 2  # an empty centre: back to the caller, unmoved
        np.testing.assert_array_equal(centers, start)
        return
    np.testing.assert_allclose(nk, onehot.sum(0), rtol=1e-12)
    np.testing.assert_allclose(s1, onehot.T @ Xc.astype(float), rtol=1e-9, atol=1e-9)
    assert state[0] == 1 and state[1] == n  # every label was -1
    assert status == 1  # max_iter reached: labelled by the moved centres
    np.testing.assert_array_equal(centers, (s1 * (1.0 / nk)[:, None]).astype(dtype))
    dist = _pseudo_dist(Xc, centers)
    srt = np.sort(dist, axis=1)
    clear = np.ones(n, bool) if k == 1 else (srt[:, 1] - srt[:, 0]) > 1e-3
    np.testing.assert_array_equal(labels[clear], dist.argmin(1)[clear])
    again = labels.copy()
    assert _assign(X, mean, centers, _chunk(chunk, d, k), again) == 1
    np.testing.assert_array_equal(again, labels)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_row_norms_are_numpys_einsum_bit_for_bit(rng, dtype):
    """The centres' squared norms of the Lloyd loop equal scikit-learn's row_norms
    (NumPy's einsum), rounding for rounding, for every width up to 3 SIMD blocks."""
    for d in range(1, 50):
        centers = (rng.normal(size=(7, d)) * rng.uniform(0.1, 100, (7, 1))).astype(
            dtype
        )
        out = np.empty(7, dtype)
        _row_norms(centers, out)
        np.testing.assert_array_equal(out, np.einsum("ij,ij->i", centers, centers))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_centre_shift_is_scikit_learns(rng, dtype):
    """The new centres are s1 / nk as before (float64, then the data dtype) and the
    total squared shift is scikit-learn's (per centre ``_euclidean_dense_dense``,
    then NumPy's sum of the squares) up to its rounding; bit for bit against a
    plain Python rendering of those two steps."""
    for k, d in ((1, 1), (3, 4), (9, 7), (20, 13), (130, 3)):
        old = rng.normal(size=(k, d)).astype(dtype)
        nk = rng.uniform(1, 50, k)
        s1 = rng.normal(size=(k, d)) * nk[:, None]
        centers = old.copy()
        total = move_centers(s1, nk, centers, np.empty(k + 2, dtype))
        new = (s1 * (1.0 / nk)[:, None]).astype(dtype)
        np.testing.assert_array_equal(centers, new)
        shift = np.empty(k, dtype)
        for c in range(k):
            acc, sq = dtype(0), (new[c] - old[c]) ** 2
            for j in range(0, d - d % 4, 4):
                acc += ((sq[j] + sq[j + 1]) + sq[j + 2]) + sq[j + 3]
            for j in range(d - d % 4, d):
                acc += sq[j]
            shift[c] = np.sqrt(acc)
        assert total == (shift**2).sum()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_ties_resolve_as_scikit_learn(rng, d, dtype):
    """Integer data with centres on data points: many points are exactly equidistant
    from two centres; the labels equal scikit-learn's assignment of the same rows."""
    X = rng.integers(0, 4, size=(3000, d)).astype(dtype)
    for seed in range(5):
        idx = np.random.default_rng(seed).choice(len(X), 6, replace=False)
        mean = X.mean(axis=0)
        Xc = X - mean
        centers = np.ascontiguousarray(Xc[idx])
        labels = np.full(len(X), -1, np.int8)
        _assign(X, mean, centers, 2 * BLOCK, labels)
        expected = _labels_inertia(
            Xc, np.ones(len(X), dtype), centers, return_inertia=False
        )
        np.testing.assert_array_equal(labels, expected)


def test_duplicate_centres_give_the_first_index(rng):
    X = rng.normal(size=(500, 3))
    mean = X.mean(axis=0)
    centers = np.repeat((X[:1] - mean), 3, axis=0)
    labels = np.full(500, -1, np.int8)
    _assign(X, mean, centers, BLOCK, labels)
    assert np.all(labels == 0)


def _plusplus_reference(Xc, w, first, draws):
    """Greedy k-means++ in NumPy (float64) from the same draws: (indices, d2)."""
    n = len(Xc)
    d2 = ((Xc - Xc[first]) ** 2).sum(1)
    indices, pot = [first], (w * d2).sum()
    for c in range(1, draws.shape[0] + 1):
        cand = np.minimum(np.searchsorted(np.cumsum(w * d2), draws[c - 1] * pot), n - 1)
        dist = ((Xc[:, None] - Xc[cand][None]) ** 2).sum(-1)
        pots = (w[:, None] * np.minimum(d2[:, None], dist)).sum(0)
        t = int(np.argmin(pots))
        pot = pots[t]
        indices.append(int(cand[t]))
        d2 = np.minimum(d2, dist[:, t])
    return np.array(indices), d2


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n, d, k, chunk", SHAPES)
def test_plusplus_run_matches_numpy(rng, n, d, k, chunk, dtype, weighted):
    """The one-call k-means++: the rows NumPy's greedy k-means++ picks from the same
    draws, their centred rows as centres, the distances to the nearest one."""
    X = rng.normal(size=(n, d)).astype(dtype)
    sw = rng.uniform(0.1, 2, n) if weighted else np.empty(0)
    mean = X.mean(axis=0)
    Xc = X - mean
    draws = rng.random((k - 1, 2 + int(np.log(k))))
    first = int(rng.integers(n))
    centers, indices = np.empty((k, d), dtype), np.empty(k, np.int64)
    d2 = np.full(n, np.inf, dtype)
    plusplus_run(X, sw, mean, first, draws, _chunk(chunk, d, k), centers, indices, d2)
    w = sw if weighted else np.ones(n)
    expected, d2_expected = _plusplus_reference(Xc.astype(float), w, first, draws)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_array_equal(centers, Xc[expected])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(d2, d2_expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("chunk", [BLOCK, 3 * BLOCK, 10_000])
def test_locate_is_searchsorted_of_the_cumulative_sum(rng, chunk, weighted):
    """Integer-valued weights and distances: every partial sum is exact, so the
    chunked search equals np.searchsorted(np.cumsum(w * d2), t) exactly, including
    targets on a boundary, zero-weight rows, the first row and the clip to n - 1."""
    n = 2000
    d2 = rng.integers(0, 5, n).astype(float)
    sw = rng.integers(0, 3, n).astype(float) if weighted else np.empty(0)
    cum = np.cumsum(d2 * (sw if weighted else 1.0))
    targets = np.concatenate(
        [rng.uniform(0, cum[-1], 50), cum[rng.integers(0, n, 20)], [0.0, cum[-1] + 1]]
    )
    wd2 = d2 * (sw if weighted else 1.0)  # integers: exact in any order
    sums = np.add.reduceat(wd2, np.arange(0, n, chunk))
    assert sums.sum() == cum[-1]
    found = locate(sw, d2, chunk, sums, targets)
    expected = np.minimum(np.searchsorted(cum, targets), n - 1)
    np.testing.assert_array_equal(found, expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", [1, 7, 300, 100_003])
def test_choice_index_is_numpy_weighted_choice(n, dtype):
    """scikit-learn's first k-means++ draw, choice(n, p=w / w.sum()), from the same
    uniform draw: unit weights (p computed in the data's dtype) and random weights."""
    gen = np.random.default_rng(n)
    w = gen.uniform(0, 3, n)
    w[gen.random(n) < 0.1] = 0.0
    w[0] = max(w[0], 0.5)
    ones = np.ones(n, dtype)
    p_unit = float((ones / ones.sum())[0])
    for seed in range(20):
        expected = np.random.RandomState(seed).choice(n, p=ones / ones.sum())
        u = np.random.RandomState(seed).random_sample()
        assert choice_index(np.empty(0), n, p_unit, 1.0, u) == expected
        expected = np.random.RandomState(seed).choice(n, p=w / w.sum())
        assert choice_index(w, n, 0.0, float(w.sum()), u) == expected


@pytest.mark.parametrize("n", [1, 127, 129, 1000, 2**24 + 1, 2**24 + 7, 20_000_001])
def test_ones_sum_is_numpys_pairwise_sum(n):
    """The unit-weight total scikit-learn's p uses, without an array of n ones
    (float32 sums of more than 2**24 ones are rounded)."""
    assert _ones_sum(n, np.float32) == np.ones(n, np.float32).sum()
    assert _ones_sum(n, np.float64) == n
