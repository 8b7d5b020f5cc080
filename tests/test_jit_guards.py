"""Guard rails on the JIT: BLAS argument liveness under NRT debugging, read-only
kernel inputs, the source-hashed on-disk cache and the compile budget.

The subprocess tests compile kernels afresh (no cache), so they take tens of seconds.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_cache(monkeypatch):
    """Kernels defined by a test are not written to the on-disk cache."""
    monkeypatch.setattr("fastgmm._jit.CACHE", False)


def run_python(code, env=None, timeout=900):
    """Run ``code`` in a fresh interpreter importing this checkout; return its
    last stdout line parsed as JSON (NRT debug output goes to stdout too)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    )
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "illegal value" not in proc.stdout + proc.stderr  # BLAS's xerbla
    return json.loads(proc.stderr.strip().splitlines()[-1])


# ------------------------------------------------------------ 1. BLAS argument buffers
NRT_PASS = """
    import json, sys
    import numpy as np
    from numba.core.registry import cpu_target
    from numba.core.runtime import rtsys
    from fastgmm.kernels import FULL, TIED
    from fastgmm.kernels.blas import SYRK_MIN_D
    from fastgmm.kernels.logdensity import TRMM_MIN_D
    from fastgmm.kernels.passes import em_pass

    rtsys.initialize(cpu_target.target_context)  # stats count from here on
    before = rtsys.get_allocation_stats()
    rng = np.random.default_rng(0)
    results = []
    # FULL at SYRK_MIN_D: dtrmm whitening and dsyrk scatter; TIED: dtrmm whitening
    # (unit precision factors: loc = means for both)
    for d, kind, n_prec in ((SYRK_MIN_D, FULL, 2), (TRMM_MIN_D, TIED, 1)):
        n, k = 700, 2
        X = rng.normal(size=(n, d))
        means = X[:k].copy()
        prec = np.tile(np.eye(d), (n_prec, 1, 1))
        out = em_pass(X, np.empty(0), kind, np.zeros(k), means, prec, means, 4 * 128)
        results.append(float(out[0]))
        del out
    after = rtsys.get_allocation_stats()
    # the BLAS wrappers themselves allocate nothing: their scratch is the caller's
    import numba
    from fastgmm.kernels.blas import add_gram_lower, blas_args, whiten_rows

    @numba.njit
    def calls(upper, zt, rows, out, args, repeat):
        for _ in range(repeat):
            whiten_rows(upper, zt, 100, args)
            add_gram_lower(rows, 100, out, args)

    d = SYRK_MIN_D
    blas = (np.eye(d), rng.normal(size=(d, 128)), rng.normal(size=(128, d)),
            np.zeros((d, d)), blas_args())
    calls(*blas, 1)  # compile
    counts = []
    for repeat in (1, 11):
        mid = rtsys.get_allocation_stats()
        calls(*blas, repeat)
        counts.append(rtsys.get_allocation_stats().alloc - mid.alloc)
    print(json.dumps({
        "ll": results,
        "blas_allocs": counts[1] - counts[0],
        "alloc": after.alloc - before.alloc, "free": after.free - before.free,
        "mi_alloc": after.mi_alloc - before.mi_alloc,
        "mi_free": after.mi_free - before.mi_free,
    }), file=sys.stderr)
"""


def test_blas_pass_balances_nrt_allocations_in_debug_mode():
    """NUMBA_DEBUG_NRT poisons freed memory: a BLAS argument freed before the call
    reads it would give BLAS garbage sizes; every allocation must be freed."""
    import numpy as np

    stats = run_python(
        NRT_PASS,
        {"NUMBA_DEBUG_NRT": "1", "NUMBA_NRT_STATS": "1", "FASTGMM_CACHE": "0"},
    )
    assert stats["alloc"] > 0
    assert stats["alloc"] == stats["free"]
    assert stats["mi_alloc"] == stats["mi_free"]
    assert np.all(np.isfinite(stats["ll"]))
    assert stats["blas_allocs"] == 0


# ------------------------------------------------------------- 2. read-only inputs
def test_kernel_input_is_a_read_only_view_not_a_copy():
    import numpy as np

    from fastgmm._jit import kernel_array, kernel_input

    X = np.arange(12.0).reshape(4, 3)
    for view in (kernel_input(X), kernel_array(X)):
        assert not view.flags.writeable and np.shares_memory(view, X)
    assert X.flags.writeable  # the caller's array is untouched
    frozen = kernel_input(X)
    assert kernel_input(frozen) is frozen
    assert kernel_array(np.asfortranarray(X)).flags.c_contiguous
    assert kernel_array(X, np.float32).dtype == np.float32
    assert kernel_input([1.0]) == [1.0]  # not an array: unchanged


def test_declared_inputs_compile_one_read_only_specialisation(no_cache):
    import numpy as np
    from numba import types

    from fastgmm._jit import kernel

    @kernel(inputs="x")
    def total(x, out):
        out[0] = x.sum()

    out = np.zeros(1)
    x = np.ones(3)
    total(x, out)
    frozen = x.copy()
    frozen.setflags(write=False)
    total(frozen, out)
    total(x=x, out=out)
    (signature,) = total.signatures
    assert signature == (
        types.Array(types.float64, 1, "C", readonly=True),
        types.Array(types.float64, 1, "C"),
    )
    assert x.flags.writeable and out[0] == 3.0


def test_a_kernel_writing_its_input_fails_to_compile(no_cache):
    import numpy as np
    from numba.core.errors import TypingError

    from fastgmm._jit import kernel

    @kernel(inputs="x")
    def scribble(x):
        x[0] = 1.0

    with pytest.raises(TypingError):
        scribble(np.zeros(3))


def test_undeclared_input_name_is_an_error(no_cache):
    from fastgmm._jit import kernel

    with pytest.raises(ValueError, match="no argument"):

        @kernel(inputs="y")
        def f(x):
            return x


def test_kernel_options_equal_numbas_njit(no_cache):
    """kernel() builds its dispatchers as numba.njit does (guards against drift)."""
    import numba

    from fastgmm._jit import FASTMATH, kernel

    def f(x):
        return x

    ours = kernel(parallel=True, inputs="x")(f)
    theirs = numba.njit(
        f, parallel=True, fastmath=FASTMATH, nogil=True, error_model="numpy"
    )
    assert ours.targetoptions == theirs.targetoptions
    assert isinstance(ours, type(theirs))
