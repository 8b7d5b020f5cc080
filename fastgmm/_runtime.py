"""Threads at run time: ``threads()``, ``n_jobs``, the serial cut-off and BLAS pinning.

One home for everything that decides how many threads run fastgmm's kernels and keeps
BLAS from competing with them for the same cores.

Small problems run on one thread (:data:`SERIAL_WORK`): a parallel region costs a few
microseconds on an idle machine, but when another process holds a core each one waits
for the operating system to run the second thread (milliseconds), which is most of
a small fit's time.

The thread pacing of EM iterations under load is in :mod:`fastgmm._pacing`.
"""

import os
import sys
import threading
from contextlib import contextmanager
from numbers import Integral

#: [True in a fork of a process whose kernels ran on GNU OpenMP threads]
_FORKED_FROM_OPENMP = [False]


def _forked_child():
    """os.register_at_fork hook, in the child: GNU OpenMP is not fork-safe (Numba
    stops a forked child at its first parallel region, and libgomp would hang it),
    so a child of a process that started Numba's OpenMP threads runs the serial
    twins of the parallel kernels (see fastgmm._jit.KernelEntry). The BLAS pin's
    lock and count start afresh: a lock another thread held at the fork stays held
    in the child."""
    global _blas_lock
    _blas_lock = threading.Lock()
    _blas_users[:] = [0, None]
    if "numba" not in sys.modules:
        return
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    if parallel is None or not getattr(parallel, "_is_initialized", False):
        return  # no threads started in the parent: the child starts its own
    try:
        layer = sys.modules["numba"].threading_layer()
    except ValueError:  # no threading layer loaded
        return
    omppool = sys.modules.get("numba.np.ufunc.omppool")
    vendor = getattr(omppool, "openmp_vendor", "GNU")
    if layer == "omp" and vendor == "GNU":  # tbb and workqueue are fork-safe
        _FORKED_FROM_OPENMP[0] = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked_child)


def threads_unsafe():
    """Whether this process must not start kernel threads: a fork of a process
    whose kernels ran on GNU OpenMP threads. Kernels then run serially (one thread,
    the same results); see docs/reliability.md."""
    return _FORKED_FROM_OPENMP[0]


def n_threads_for(n_jobs):
    """Translate scikit-learn's ``n_jobs`` into a thread count for Numba."""
    import numba

    avail = numba.config.NUMBA_NUM_THREADS
    if n_jobs is None:
        return numba.get_num_threads()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral):
        raise TypeError(f"n_jobs must be None or an int, got {n_jobs!r}.")
    n_jobs = int(n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None, -1 or a positive int.")
    if n_jobs < 0:
        return max(1, avail + 1 + n_jobs)
    return min(n_jobs, avail)


#: estimated work of one pass over the data (:func:`pass_work`) below which the kernels
#: run on one thread whatever ``n_jobs`` says (measured: ``benchmarks/serial_cutoff.py``)
SERIAL_WORK = 2_000_000


#: fewer features than this: no kernel calls BLAS (the GEMM forms start at d = 16,
#: ``kernels.fullgemm`` / ``kernels.diaggemm``)
BLAS_FEATURES = 16


def blas_idle(work, n_features):
    """Whether calls of this ``work`` (:func:`pass_work`) on ``n_features`` features
    can leave BLAS unpinned: small (one thread, :data:`SERIAL_WORK`) and narrow
    (no kernel GEMM), their only BLAS calls are on K x d x d arrays, below OpenBLAS's
    threading threshold. Pinning costs ~10 us a call (threadpoolctl)."""
    return work is not None and work < SERIAL_WORK and n_features < BLAS_FEATURES


def pass_work(n_rows, n_features, n_components, dense):
    """Estimated work of one pass (E-step and statistics), in units of roughly one
    floating-point operation: n K (d + 8) for diagonal and spherical models, and
    d (d + 1) / 2 more per point and component for dense (full, tied) ones."""
    per_pair = n_features + 8
    if dense:
        per_pair += n_features * (n_features + 1) // 2
    return n_rows * n_components * per_pair


_blas_lock = threading.Lock()
_blas_users = [0, None]  # [active calls, threadpoolctl limiter to restore]
_controller = [None, -1]  # [ThreadpoolController, len(sys.modules) when it scanned]


def _blas_controller():
    """One cached ``threadpoolctl.ThreadpoolController`` (its creation scans the
    loaded libraries, ~1-3 ms). A BLAS library can only be loaded by an import, so it
    is scanned afresh only when modules were imported since (call under _blas_lock)."""
    n_modules = len(sys.modules)
    if _controller[0] is None or _controller[1] != n_modules:
        from threadpoolctl import ThreadpoolController

        _controller[0] = ThreadpoolController()
        _controller[1] = len(sys.modules)  # after the import of threadpoolctl
    return _controller[0]


def _free_blas_control():
    """Let this thread set the BLAS limit.

    threadpoolctl >= 3.8 lets only one thread change the limit of a process-wide
    (pthreads) OpenBLAS pool -- the first that set one -- and silently ignores the
    others. fastgmm's pin is reference-counted and serialised by _blas_lock, so it may
    take the control for each change (and gives it back after it).
    """
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:  # older threadpoolctl: no controlling thread
        return
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


def _pin_blas(enter):
    """Reference-counted BLAS pinning: the first concurrent caller limits BLAS to one
    thread, the last one restores it (threadpoolctl's limits are process-global)."""
    with _blas_lock:
        if enter:
            if _blas_users[0] == 0:
                _free_blas_control()
                _blas_users[1] = _blas_controller().limit(limits=1, user_api="blas")
                _free_blas_control()
            _blas_users[0] += 1
        else:
            _blas_users[0] -= 1
            if _blas_users[0] == 0:
                _free_blas_control()
                _blas_users[1].restore_original_limits()
                _free_blas_control()
                _blas_users[1] = None


@contextmanager
def threads(n_jobs=None, work=None, pin_blas=True):
    """Run fastgmm kernels on ``n_jobs`` threads and pin BLAS to one thread.

    Parameters
    ----------
    n_jobs : int or None
        scikit-learn's spelling: ``None`` keeps Numba's current setting, ``-1`` uses
        all cores, ``-2`` all but one, a positive int that many threads.
    work : float or None
        The estimated work of one pass of the calls inside (:func:`pass_work`);
        below :data:`SERIAL_WORK` they run on one thread. None: no cut-off.
    pin_blas : bool
        False: leave BLAS as it is, for calls that run no threaded BLAS
        (:func:`blas_idle`).

    Notes
    -----
    BLAS (used for the small K x d x d linear algebra and the d >= 16 block GEMMs) is
    limited to one thread for the duration: its spinning worker threads otherwise
    steal the cores Numba needs. Safe to use from several Python threads at once.
    Results do not depend on the thread count, so the serial cut-off changes only
    the time. Entering costs ~15 us here (one cached
    threadpoolctl controller; the loaded libraries are rescanned only after imports).
    """
    import numba

    previous = numba.get_num_threads()
    n_threads = previous if n_jobs is None else n_threads_for(n_jobs)
    if work is not None and work < SERIAL_WORK:
        n_threads = 1
    if n_threads != previous:  # (~1 us a call: not when it is already so)
        numba.set_num_threads(n_threads)
    if pin_blas:
        _pin_blas(True)
    try:
        yield
    except SystemError as exc:
        if _interrupted(exc):
            raise KeyboardInterrupt from None
        raise
    finally:
        if pin_blas:
            _pin_blas(False)
        if numba.get_num_threads() != previous:
            numba.set_num_threads(previous)


def _interrupted(exc):
    """Whether ``exc`` is a Ctrl-C that a compiled kernel could not raise.

    A SIGINT that arrives while a kernel runs is handled by Python when the kernel
    calls back into it (to box its results); Numba then returns a result with the
    KeyboardInterrupt set, which Python reports as ``SystemError: ... returned a
    result with an exception set`` caused by it. ``threads()`` (around every kernel
    call) turns that back into the KeyboardInterrupt.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False
