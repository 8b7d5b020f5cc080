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


def run_python(code, env=None, timeout=900, root=ROOT):
    """Run ``code`` in a fresh interpreter importing the package under ``root`` (this
    checkout by default); return the last line it wrote to stderr, parsed as JSON
    (stdout is left to NRT debug output)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(root)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        cwd=str(root),  # "-c" puts the working folder first on sys.path
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
    from fastgmm.kernels.fullgemm import full_em_pass
    from fastgmm.kernels.passes import em_pass

    rtsys.initialize(cpu_target.target_context)  # stats count from here on
    before = rtsys.get_allocation_stats()
    rng = np.random.default_rng(0)
    results = []
    # FULL at d = 48 (fullgemm): dgemm log-densities in column groups; TIED:
    # np.dot whitening (unit precision factors: loc = means for both)
    for d, kind, n_prec in ((48, FULL, 2), (32, TIED, 1)):
        n, k = 700, 2
        X = rng.normal(size=(n, d))
        means = X[:k].copy()
        prec = np.tile(np.eye(d), (n_prec, 1, 1))
        fn = full_em_pass if kind == FULL else em_pass
        out = fn(X, np.empty(0), kind, np.zeros(k), means, prec, means, 4 * 128)
        results.append(float(out[0]))
        del out
    after = rtsys.get_allocation_stats()
    # the BLAS wrappers themselves allocate nothing: their scratch is the caller's
    import numba
    from fastgmm.kernels.blas import blas_args, gemm_points

    @numba.njit
    def calls(upper, zt, rows, out, args, yt, repeat):
        for _ in range(repeat):
            gemm_points(zt, 100, upper.shape[0], upper, upper.shape[0], yt, args)

    d = 48
    blas = (np.eye(d), rng.normal(size=(d, 128)), rng.normal(size=(128, d)),
            np.zeros((d, d)), blas_args(), np.zeros((d, 128)))
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


@pytest.mark.slow
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


def test_float_pair_puts_the_dtype_in_data_not_in_the_type():
    import numpy as np
    from numba import typeof

    from fastgmm._jit import float_pair

    X64 = np.arange(6.0).reshape(3, 2)
    X32 = X64.astype(np.float32)
    pair64, pair32 = float_pair(X64, read_only=True), float_pair(X32, read_only=True)
    assert pair64[0] is not X64 and np.shares_memory(pair64[0], X64)  # a view
    assert pair64[1].shape == (0, 2) and pair64[1].dtype == np.float32
    assert pair32[0].shape == (0, 2) and pair32[1].base is not None
    assert typeof(pair64) == typeof(pair32)  # one specialisation for both dtypes
    assert not any(a.flags.writeable for a in pair64 + pair32)
    out = float_pair(np.empty(3, np.float32))  # an output: stays writable
    assert out[1].flags.writeable and out[0].shape == (0,) and out[0].flags.writeable
    for bad in (np.arange(6).reshape(3, 2), np.zeros(3, np.float16), [1.0, 2.0]):
        with pytest.raises(TypeError, match="float32 or float64"):
            float_pair(bad)


def test_float_pair_kernels_run_on_both_dtypes_with_one_compile(no_cache):
    import numpy as np

    from fastgmm._jit import kernel

    @kernel(inputs="x", floats="x out")
    def double(x, out):
        if x[0].shape[0] > 0:
            for i in range(x[0].shape[0]):
                out[0][i] = 2 * x[0][i]
        else:
            for i in range(x[1].shape[0]):
                out[1][i] = 2 * x[1][i]

    for dtype in (np.float64, np.float32):
        x = np.arange(4, dtype=dtype)
        out = np.zeros(4, dtype)
        double(x, out)
        np.testing.assert_array_equal(out, 2 * x)
    assert len(double.signatures) == 1


def test_watch_compiles_reports_the_outermost_kernel_once(no_cache, caplog):
    import logging

    import numpy as np

    from fastgmm._jit import kernel, watch_compiles

    @kernel
    def inner(x):
        return x.sum()

    @kernel(inputs="x")
    def outer(x):
        return inner(x) + 1.0

    seen = []
    unwatch = watch_compiles(lambda *event: seen.append(event))
    with caplog.at_level(logging.INFO, logger="fastgmm"):
        assert outer(np.ones(3)) == 4.0
        assert outer(np.ones(5)) == 6.0  # compiled already: nothing reported
    unwatch()
    outer(np.ones((2, 2)))  # a new signature, after unwatch: not seen
    test = "test_watch_compiles_reports_the_outermost_kernel_once"
    name = f"test_jit_guards.{test}.<locals>.outer"
    assert [(e, n) for e, n, _ in seen] == [("start", name), ("end", name)]
    assert seen[0][2] == 0.0 and seen[1][2] > 0.0
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith(f"compiling {name} (first use; cached afterwards")
    assert messages[1].startswith(f"compiled {name} in ")
    assert len(messages) == 2


# ------------------------------------------------------------ 3. source-hashed cache
CACHE_PROBE = """
    import json, sys
    import numpy as np
    from fastgmm import _jit
    from fastgmm.kernels.passes import block_resp

    # two components 100 nats apart: the far one's responsibility is e^-100 unless
    # the exp floor (vecmath.FLOOR, inlined from another file) cuts it to 0
    lp = np.zeros((2, 128))
    lp[1] = -100.0
    vec = np.ones((6, 128))
    block_resp(lp, 1, vec[0], vec[1], vec[2], vec[3:])
    stats = block_resp.stats
    print(json.dumps({
        "path": stats.cache_path, "dir": _jit.cache_dir(), "file": _jit.__file__,
        "hits": sum(stats.cache_hits.values()),
        "misses": sum(stats.cache_misses.values()),
        "far": lp[1, 0],
    }), file=sys.stderr)
"""


def _package_copy(tmp_path):
    import shutil

    pkg = tmp_path / "pkg"
    shutil.copytree(
        ROOT / "fastgmm", pkg / "fastgmm", ignore=shutil.ignore_patterns("__pycache__")
    )
    return pkg


@pytest.mark.slow
def test_editing_a_kernel_file_invalidates_cached_callers_in_other_files(tmp_path):
    """A cached caller (passes.block_resp) must not keep the old code of a callee
    from another file (vecmath's exp) after that file changes."""
    pkg = _package_copy(tmp_path)
    env = {"FASTGMM_CACHE_DIR": str(tmp_path / "cache"), "FASTGMM_CACHE": "1"}
    first = run_python(CACHE_PROBE, env, root=pkg)
    assert first["misses"] == 1 and first["hits"] == 0
    assert first["path"] == first["dir"]
    assert first["dir"].startswith(str(tmp_path / "cache" / "jit-"))
    assert first["file"].startswith(str(pkg))
    assert 0 < first["far"] < 1e-40
    again = run_python(CACHE_PROBE, env, root=pkg)
    assert again["hits"] == 1 and again["misses"] == 0  # loaded from the cache
    assert again["dir"] == first["dir"] and again["far"] == first["far"]

    vecmath = pkg / "fastgmm" / "kernels" / "vecmath.py"
    source = vecmath.read_text()
    assert "\nFLOOR = 500.0" in source
    vecmath.write_text(source.replace("\nFLOOR = 500.0", "\nFLOOR = 50.0"))
    edited = run_python(CACHE_PROBE, env, root=pkg)
    assert edited["dir"] != first["dir"]
    assert edited["misses"] == 1 and edited["hits"] == 0
    assert edited["far"] == 0.0  # the new floor: nothing stale was loaded


@pytest.mark.slow
def test_cache_folder_defaults_and_fallbacks(tmp_path):
    pkg = _package_copy(tmp_path)
    env = {"FASTGMM_CACHE_DIR": "", "NUMBA_CACHE_DIR": "", "FASTGMM_CACHE": "1"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    in_tree = run_python(CACHE_PROBE, env, root=pkg)
    assert in_tree["dir"].startswith(str(pkg / "fastgmm" / "__pycache__" / "jit-"))

    # an unwritable package folder (here: __pycache__ is a file): the user's cache
    other = _package_copy(tmp_path / "other")
    (other / "fastgmm" / "__pycache__").write_text("")
    user = run_python(CACHE_PROBE, env, root=other)
    assert user["dir"].startswith(str(tmp_path / "xdg" / "fastgmm" / "jit-"))
    assert user["dir"].endswith(in_tree["dir"][-16:])  # same sources, same hash

    off = run_python(CACHE_PROBE, dict(env, FASTGMM_CACHE="0"), root=pkg)
    assert off["path"] is None and off["misses"] == 1


TASK_QUEUE_PROBE = """
    import json, sys
    import numba
    from fastgmm.kernels.blocks import task_queue

    FIRST = None
    if FIRST:
        n = task_queue(3)[1]  # compiled, written to the cache
    else:
        # a new kernel linking the *cached* task_queue (its thread-count symbol)
        n = numba.njit(lambda m: task_queue(m)[1])(3)
    print(json.dumps({"n": int(n), "hits": sum(task_queue.stats.cache_hits.values())}), file=sys.stderr)
"""


def test_new_kernel_links_a_cached_task_queue(tmp_path):
    """A kernel compiled in a process that loaded task_queue from the on-disk cache
    links its get_num_threads symbol (was: "LLVM ERROR: Symbol not found", abort)."""
    env = {"FASTGMM_CACHE_DIR": str(tmp_path / "cache"), "FASTGMM_CACHE": "1"}
    first = run_python(TASK_QUEUE_PROBE.replace("= None", "= True"), env)
    again = run_python(TASK_QUEUE_PROBE.replace("= None", "= False"), env)
    assert first["n"] >= 1 and again["n"] == first["n"]
    assert first["hits"] == 0 and again["hits"] == 1  # task_queue from the cache


# ------------------------------------------------------------------ 4. compile budget
BUDGET_PROBE = """
    import json, sys
    import numpy as np
    from numba import types
    from fastgmm import GaussianMixture
    from fastgmm._jit import KernelDispatcher, KernelEntry

    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 1.0, 0.0], [1.0, 7.0, 2.0]])
    X64 = np.vstack([rng.normal(size=(100, 3)) + c for c in centres])
    weights = rng.uniform(0.5, 2.0, len(X64))
    for X in (X64, X64.astype(np.float32)):
        for cov in ("full", "tied", "diag", "spherical"):
            for w in (None, weights):
                gm = GaussianMixture(3, covariance_type=cov, random_state=0, max_iter=3)
                gm.fit(X, sample_weight=w)
                gm.predict(X), gm.predict_proba(X), gm.score_samples(X), gm.bic(X)

    def read_only(t):  # an array type, or a float pair of them
        return all(not a.mutable for a in t) if isinstance(t, types.BaseTuple) else (
            not t.mutable
        )

    kernels = {}
    for name, module in sorted(sys.modules.items()):
        if not name.startswith("fastgmm.kernels") or module is None:
            continue
        for attr, obj in vars(module).items():
            if isinstance(obj, KernelDispatcher) and obj.py_func.__module__ == name:
                sigs = obj.signatures
                x_dtypes = sorted({str(s[0].dtype) for s in sigs if s and
                                   isinstance(s[0], types.Array) and s[0].ndim == 2})
                kernels[name.split(".")[-1] + "." + attr] = {
                    "n": len(sigs),
                    "entry": isinstance(obj, KernelEntry),
                    "parallel": obj.targetoptions.get("parallel", False),
                    "x_dtypes": x_dtypes,
                    "x_pair": all(s and isinstance(s[0], types.BaseTuple) for s in sigs),
                    "inputs_read_only": all(
                        read_only(s[i]) for s in sigs
                        for i in getattr(obj, "input_positions", ())
                    ),
                }
    print(json.dumps(kernels), file=sys.stderr)
"""

#: specialisations after the standard calls above (float64 + float32 data, four
#: covariance types, with and without weights), measured with numba 0.68: 43 (with
#: main's task-queue kernels, prec_chol_stack and _far_points). The data's dtype is
#: data, not type (float pairs, see fastgmm._jit.float_pair): each parallel entry
#: kernel compiles once for both dtypes and every covariance model; only tiny
#: helpers compile per dtype (_copy_block, _store, _store_pair). slot_buffers
#: compiles per literal size its callers pass (2). Before float pairs and the
#: merged passes (mixture_pass: EM statistics and scoring; kmeans_pass: Lloyd,
#: k-means++ and hard-label statistics): 47 specialisations without the task
#: queue, 14 of them parallel entry compiles (now 2).
#: The k-means start is scikit-learn's draw for draw (distances, ties and running
#: sums in the data's own dtype, as scikit-learn computes them), so its kernels
#: compile once per dtype: five parallel entries and their serial helpers, two
#: specialisations each (measured: 63 in all; folding them into float pairs as the
#: mixture pass is left to do).
#: 67: small and mid d have helpers of their own: the log-densities (logdensity.
#: _diag_log_prob: diag at d >= 4, eight features per pass, 1.3-1.9x at d=16;
#: _diag_log_prob_small and _full_log_prob_small: d <= 3, every feature in one pass,
#: 1.2-1.7x (diag) and 2.8-3.7x (full) at d=3; benchmarks/log_density_ab.py) and the
#: statistics (passes._stats_small: full and diag at d <= 3 in one pass, 2.6x full,
#: 1.2x diag at d=3); a helper of this size compiled alone in 0.4 s, and the fused
#: exp (vecmath.exp_shifted_sum) replaced exp_nonpos_inplace one for one.
#: 77: the float32 pass at few features (kernels.lowd32: its entry, 13 helpers and
#: vecmath.exp2_32_shifted_sum, 15 in all, plus the float64 block routines it shares
#: with mixture_pass, not compiled again) and one more in main meanwhile; compiled
#: only by float32 fits of full/diag/spherical models at d <= 8 (the float64 demo
#: compiles none of them).
#: 82: the closed-form M-step in one call (kernels.mstep: closed_m_step and its three
#: helpers, density_terms for the E-step inputs; prec_chol_stack, called from
#: closed_m_step with writable arrays, is compiled by it and no longer from Python in
#: these calls): a separate compile, 1.4 s + 0.4 s here, which replaces ~40 us of
#: NumPy calls per EM iteration on small data (issue 13, benchmarks/small_data.py).
#: 86: add_slots' flat loops (blocks._add_rows, and blocks._slot_sum: the ll sum
#: kept strict), which every chunked pass shares (51 -> 7 us of serial time per
#: 1M x 3 pass), and lowd32.block_rows and lowd32stats._flush_part (blocks of up to
#: 1152 rows, a chunk's float64 sums flushed once), compiled only by the float32 pass.
#: 90: the k-means start in two kernel calls (kmeans.lloyd_run, seeding.plusplus_run,
#: issue 13's small data): their helpers (scikit-learn's row norms and centre shift,
#: numpy's pairwise sum, the pass sums, the least potential) replace five entries.
#: 91: lowd32._log_sum (the float32 pass's log-likelihood as one log per group of
#: float64 products: 0.88 -> 0.2 ns per row at 1M x 3), compiled only by that pass.
#: 92: mstep.density_terms also inside closed_m_step (writable arrays there, read-only
#: from Python for a fitted model): one kernel call less per EM iteration (issue 13).
BUDGET_TOTAL = 92
#: slot_buffers: per literal size and dtype its callers pass (the mixture pass 2,
#: the k-means kernels 3)
BUDGET_PER_KERNEL = {"passes._store": 4, "blocks.slot_buffers": 5}
MIXTURE_ENTRIES = {"passes.mixture_pass"}
KMEANS_ENTRIES = {
    "kmeans.label_stats",
    "kmeans.lloyd_run",
    "seeding.plusplus_run",
}
#: the float32 pass at few features (kernels.lowd32, full/diag/spherical, d <= 8):
#: float32 data only, one specialisation, compiled by a float32 fit alone
LOWD32_ENTRIES = {"lowd32.lowd32_em_pass"}
PARALLEL_ENTRIES = MIXTURE_ENTRIES | KMEANS_ENTRIES | LOWD32_ENTRIES


@pytest.mark.slow
def test_compile_budget():
    """Specialisations per kernel after a standard set of estimator calls, compiled
    afresh: one per parallel entry kernel for float32 and float64 data alike
    (read-only inputs: no writable twin)."""
    kernels = run_python(BUDGET_PROBE, {"FASTGMM_CACHE": "0"})
    counts = {name: k["n"] for name, k in kernels.items()}
    # parallel entries these calls compile (diaggemm.diag_pass, the large-K
    # diagonal pass, serves K >= 64 only, and fullgemm.full_em_pass d >= 16:
    # imported, not compiled here)
    entries = {
        name for name, k in kernels.items() if k["entry"] and k["parallel"] and k["n"]
    }
    assert entries == PARALLEL_ENTRIES
    assert kernels["diaggemm.diag_pass"]["n"] == 0
    assert kernels["fullgemm.full_em_pass"]["n"] == 0
    for name in entries:
        k = kernels[name]
        assert k["inputs_read_only"], name
        if name in MIXTURE_ENTRIES:
            assert k["n"] == 1 and k["x_pair"], (name, k)  # float32 and float64 data
        elif name in LOWD32_ENTRIES:
            assert k["n"] == 1 and k["x_dtypes"] == ["float32"], (name, k)
        else:
            assert k["n"] <= 2, (name, k)  # one per data dtype
    for name, n in counts.items():
        assert n <= BUDGET_PER_KERNEL.get(name, 2), (name, n)
    assert sum(counts.values()) <= BUDGET_TOTAL, counts
    print(f"{sum(counts.values())} specialisations of {len(counts)} kernels: {counts}")


# --------------------------------------------------------------- 5. threads() cost
def test_threads_reuses_one_threadpool_controller(monkeypatch):
    """Entering threads() does not rescan the loaded libraries each time; BLAS is
    still pinned to one thread inside and restored after; a new import rescans."""
    import threadpoolctl

    from fastgmm import _runtime
    from fastgmm._runtime import threads

    made = []
    original = threadpoolctl.ThreadpoolController

    class Counting(original):
        def __init__(self):
            made.append(1)
            super().__init__()

    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", Counting)
    monkeypatch.setattr(_runtime, "_controller", [None, -1])

    def blas_threads():
        return [
            lib["num_threads"]
            for lib in original().info()  # uncounted
            if lib["user_api"] == "blas"
        ]

    before = blas_threads()
    for _ in range(5):
        with threads():
            assert set(blas_threads()) <= {1}
            with threads(1):  # nested: the outer limit stays
                assert set(blas_threads()) <= {1}
        assert blas_threads() == before
    assert len(made) == 1

    monkeypatch.setitem(sys.modules, "fastgmm_fake_module", None)  # "an import"
    with threads():
        pass
    assert len(made) == 2
