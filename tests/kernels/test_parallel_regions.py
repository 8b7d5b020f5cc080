"""Each parallel kernel holds exactly one parallel loop (its prange over chunks).

Inside a ``parallel=True`` function every array expression (``np.zeros``, ``a += b``)
becomes a parallel region of its own; in a loop over partial-sum slots that made
thousands of tiny regions per pass, 30 % of a pass on a quiet machine and a several-fold
slow-down whenever another process held a core. Allocation and the ordered sums
belong in serial kernels (``fastgmm.kernels.blocks``). Compiles fresh copies (not cached)."""

import numba
import numpy as np
import pytest

from fastgmm._jit import FASTMATH, _convert
from fastgmm.kernels import FULL
from fastgmm.kernels import kmeans as _kmeans
from fastgmm.kernels import passes as _estep


def _args(name):
    rng = np.random.default_rng(0)
    X, K, d = rng.random((300, 3)), 2, 3
    labels, d2 = np.zeros(300, np.int64), np.full(300, np.inf)
    prec = np.tile(np.eye(d), (K, 1, 1))
    return {
        "mixture_pass": (
            X,
            np.empty(0),
            FULL,
            np.zeros(K),
            X[:K].copy(),
            prec,
            X[:K].copy(),
            128,
            np.empty(300),
            np.empty((0, K)),
            np.empty(0, np.int64),
        ),
        "kmeans_pass": (X, np.empty(0), X[:K].copy(), 3, FULL, labels, d2, 128),
    }[name]


KERNELS = [(_estep, "mixture_pass"), (_kmeans, "kmeans_pass")]


@pytest.mark.slow  # compiles every parallel kernel afresh
@pytest.mark.parametrize("module, name", KERNELS, ids=[n for _, n in KERNELS])
def test_one_parallel_region(module, name):
    kernel = getattr(module, name)
    fresh = numba.njit(kernel.py_func, parallel=True, fastmath=FASTMATH, cache=False)
    args, _ = _convert(kernel.convert, _args(name), {})  # float pairs, read-only
    fresh(*args)
    (compiled,) = fresh.overloads.values()
    parfors = compiled.metadata["parfor_diagnostics"].initial_parfors
    assert len(parfors) == 1, f"{name} has {len(parfors)} parallel regions"
