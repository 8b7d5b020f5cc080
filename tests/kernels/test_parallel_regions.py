"""Each parallel kernel holds exactly one parallel loop (its prange over chunks).

Inside a ``parallel=True`` function every array expression (``np.zeros``, ``a += b``)
becomes a parallel region of its own; in a loop over partial-sum slots that made
thousands of tiny regions per pass, 30 % of a pass on a quiet machine and a several-fold
slow-down whenever another process held a core. Allocation and the ordered sums
belong in serial kernels (``fastgmm.kernels.blocks``). Compiles fresh copies (not cached)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

from fastgmm._jit import FASTMATH, _convert
from fastgmm.kernels import DIAG, FULL
from fastgmm.kernels import diagpass as _diagpass
from fastgmm.kernels import kmeans as _kmeans
from fastgmm.kernels import passes as _estep
from fastgmm.kernels import seeding as _seeding

ROOT = Path(__file__).resolve().parents[2]


def _args(name):
    rng = np.random.default_rng(0)
    X, K, d = rng.random((300, 3)), 2, 3
    labels, d2 = np.zeros(300, np.int8), np.full(300, np.inf)
    mean = X.mean(axis=0)
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
        "lloyd_run": (
            *(X, np.empty(0), mean, X[:K].copy(), 1e-4, 300, 300, 128, labels),
            *(np.empty(K), np.empty((K, d)), np.zeros(2, np.int64)),
        ),
        "plusplus_run": (
            *(X, np.empty(0), mean, 7, np.random.default_rng(0).random((K - 1, 3))),
            *(128, np.empty((K, d)), np.empty(K, np.int64), d2),
        ),
        "label_stats": (X, np.empty(0), labels, K, FULL, X[:K].copy(), 128),
        "diag_fused_pass": (
            np.hstack([X, X[:, :1]]),
            np.empty(0),
            DIAG,
            np.zeros(K),
            np.ones((K, d + 1)),
            np.ones((K, 1, d + 1)),
            np.ones((K, d + 1)),
            128,
        ),
    }[name]


KERNELS = [
    (_estep, "mixture_pass"),
    (_kmeans, "lloyd_run"),
    (_seeding, "plusplus_run"),
    (_kmeans, "label_stats"),
    (_diagpass, "diag_fused_pass"),
]


def count_regions(name):
    """Parallel regions of a fresh (uncached) parallel compile of kernel ``name``."""
    module = dict((n, m) for m, n in KERNELS)[name]
    kernel = getattr(module, name)
    fresh = numba.njit(kernel.py_func, parallel=True, fastmath=FASTMATH, cache=False)
    args, _ = _convert(kernel.convert, _args(name), {})  # float pairs, read-only
    fresh(*args)
    (compiled,) = fresh.overloads.values()
    return len(compiled.metadata["parfor_diagnostics"].initial_parfors)


PROBE = """
import json, sys
sys.path.insert(0, {here!r})
import test_parallel_regions
print(json.dumps(test_parallel_regions.count_regions({name!r})), file=sys.stderr)
"""


@pytest.mark.slow  # compiles every parallel kernel afresh
@pytest.mark.parametrize("module, name", KERNELS, ids=[n for _, n in KERNELS])
def test_one_parallel_region(module, name):
    """In a fresh interpreter with the on-disk cache off: in a process whose kernels
    load their helpers from a warm cache, compiling a fresh copy here aborted inside
    LLVM (while loading a cached helper), on main's kernels too."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, FASTGMM_CACHE="0", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(here=here, name=name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    n_regions = json.loads(proc.stderr.strip().splitlines()[-1])
    assert n_regions == 1, f"{name} has {n_regions} parallel regions"
