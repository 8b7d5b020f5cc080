"""Each parallel kernel holds exactly one parallel loop (its prange over chunks).

Inside a ``parallel=True`` function every array expression (``np.zeros``, ``a += b``)
becomes a parallel region of its own; in a loop over partial-sum slots that made
thousands of tiny regions per pass, 30 % of a pass on a quiet machine and a several-fold
slow-down whenever another process held a core. Allocation and the ordered sums
belong in serial kernels (``fastgmm.kernels.blocks``). Compiles fresh copies (not cached)."""

import numba
import numpy as np
import pytest

from fastgmm._jit import FASTMATH
from fastgmm.kernels import FULL
from fastgmm.kernels import kmeans as _kmeans
from fastgmm.kernels import passes as _estep


def _args(name):
    rng = np.random.default_rng(0)
    X, K, d = rng.random((300, 3)), 2, 3
    labels, d2 = np.zeros(300, np.int8), np.full(300, np.inf)
    mean, cnorm = X.mean(axis=0), np.ones(K)
    prec = np.tile(np.eye(d), (K, 1, 1))
    return {
        "em_pass": (
            X,
            np.empty(0),
            FULL,
            np.zeros(K),
            X[:K].copy(),
            prec,
            X[:K].copy(),
            128,
        ),
        "score_pass": (
            X,
            FULL,
            np.zeros(K),
            X[:K].copy(),
            prec,
            128,
            np.empty(300),
            np.empty((0, K)),
            np.empty(0, np.int64),
        ),
        "assign": (X, mean, X[:K].copy(), cnorm, 128, labels),
        "lloyd_step": (X, np.empty(0), mean, X[:K].copy(), cnorm, 128, labels),
        "update_min_dist": (X, mean, X[0].copy(), 128, d2),
        "potentials": (X, np.empty(0), mean, np.ones(300), X[:4].copy(), 128),
        "chunk_sums": (np.empty(0), np.ones(300), 128),
        "label_stats": (X, np.empty(0), labels, K, FULL, X[:K].copy(), 128),
    }[name]


KERNELS = [
    (_estep, "em_pass"),
    (_estep, "score_pass"),
    (_kmeans, "assign"),
    (_kmeans, "lloyd_step"),
    (_kmeans, "update_min_dist"),
    (_kmeans, "potentials"),
    (_kmeans, "chunk_sums"),
    (_kmeans, "label_stats"),
]


@pytest.mark.slow  # compiles every parallel kernel afresh
@pytest.mark.parametrize("module, name", KERNELS, ids=[n for _, n in KERNELS])
def test_one_parallel_region(module, name):
    fresh = numba.njit(
        getattr(module, name).py_func, parallel=True, fastmath=FASTMATH, cache=False
    )
    fresh(*_args(name))
    (compiled,) = fresh.overloads.values()
    parfors = compiled.metadata["parfor_diagnostics"].initial_parfors
    assert len(parfors) == 1, f"{name} has {len(parfors)} parallel regions"
