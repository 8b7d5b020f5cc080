"""Dask support: exact EM over a ``dask.array`` on a cluster (optional extra ``dask``).

``GaussianMixture.fit`` accepts a 2-D ``dask.array.Array``. Each EM iteration maps
fastgmm's fused Numba chunk kernel over the row blocks on the workers and adds the
per-block sufficient statistics in a fixed binary tree (so results do not depend on
scheduling); the M-step runs on the client on K x d x d sums. The result equals the
in-memory fit from the same start up to float rounding. Initialisation runs on a
seeded sample of rows gathered to the client. With a ``distributed.Client`` active,
the work runs on its cluster (``Client("tcp://scheduler:8786")``); otherwise on
Dask's local scheduler.

``predict``, ``predict_proba`` and ``score_samples`` on a dask array return lazy dask
arrays computed block by block.

Tasks are pure functions of their block and the current parameters, so a task lost
with a killed worker is recomputed by Dask and the fit is unchanged; if Dask gives
up (``KilledWorker``) the error propagates and a previously fitted model is left as
it was.
"""

import threading
from contextlib import contextmanager

import numpy as np

from .._runtime import threads
from .sources import _check_block


def is_dask_array(X):
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "to_delayed")


def _worker():
    """The distributed worker running this task, or None."""
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):  # not on a distributed worker
        return None


def _task_slots():
    """How many tasks the process running this task may run at once, or None in the
    thread that called ``compute`` (synchronous scheduler)."""
    worker = _worker()
    if worker is not None:
        return getattr(getattr(worker, "state", worker), "nthreads", None) or 1
    if threading.current_thread() is threading.main_thread():
        return None
    import dask
    from dask.system import CPU_COUNT

    return dask.config.get("num_workers", None) or CPU_COUNT


def _task_threads():
    """Numba threads for a task where it runs: the process's cores
    (``NUMBA_NUM_THREADS``) shared among the tasks it runs at once, at least one;
    None (the caller's setting, e.g. the fit's ``n_jobs``) in the calling thread."""
    import numba

    slots = _task_slots()
    if slots is None:
        return None
    return max(1, numba.config.NUMBA_NUM_THREADS // slots)


def _clear_blas_control(force=True):
    """Let any thread set the BLAS thread limit next (``force=False``: only if this
    thread holds the control).

    threadpoolctl >= 3.8 lets only one thread change the limit of a process-wide
    (pthreads) OpenBLAS pool: the first that set one, until a ``with
    threadpool_limits(...)`` block clears it. fastgmm's reference-counted pin
    (``_runtime.threads``) sets limits outside such a block, so the first thread of a
    process that ran it keeps control: on a worker, the event-loop thread of
    ``client.run(fastgmm.warmup)``, and every later pin in a task thread would
    silently do nothing. fastgmm's pin serialises its own changes, so taking the
    control for them is safe.
    """
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:  # pragma: no cover (no such class: no controlling thread)
        return
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=force)


#: [this process's BLAS libraries as threadpoolctl sees them, whether they ran on one
#: thread at the first check]: scanned once (the scan reads /proc/self/maps: about
#: 2.5 ms in a worker process, at every task otherwise)
_BLAS = []


def _max_blas_threads(libraries):
    counts = [lib.get_num_threads() for lib in libraries.lib_controllers]
    return None if None in counts else max(counts, default=1)


def _blas_stays_single_threaded():
    """Whether this process's BLAS runs on one thread now and did at the first check
    (a worker's first fastgmm task). Then no fastgmm pin in the process can change it
    (each restores one thread), so a task need not pin it. Libraries loaded after the
    first check are not seen: fastgmm's imports load numpy's and scipy's before."""
    if not _BLAS:
        from threadpoolctl import ThreadpoolController

        libraries = ThreadpoolController().select(user_api="blas")
        _BLAS.extend([libraries, _max_blas_threads(libraries) == 1])
    return _BLAS[1] and _max_blas_threads(_BLAS[0]) == 1


@contextmanager
def _numba_threads(n):
    """Numba on ``n`` threads (None: unchanged) in this thread for the duration."""
    import numba

    previous = numba.get_num_threads()
    if n is not None:
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


#: serialises the tasks' BLAS pin and release with threadpoolctl's control clearing
_PIN_LOCK = threading.Lock()


@contextmanager
def _blas_pinned(n):
    """``_runtime.threads(n)`` for a task: entered and left under a lock that also
    frees threadpoolctl's control of the BLAS limit just before (see
    :func:`_clear_blas_control`), so that neither the pin nor its release is
    silently ignored because another task thread held the control."""
    scope = threads(n)
    with _PIN_LOCK:
        _clear_blas_control()
        scope.__enter__()
    try:
        yield
    finally:
        with _PIN_LOCK:
            _clear_blas_control()
            scope.__exit__(None, None, None)
            _clear_blas_control(force=False)


@contextmanager
def _task_threads_scope():
    """Where a task runs fastgmm kernels: BLAS on one thread, Numba on the task's
    share of the cores (:func:`_task_threads`).

    On a distributed worker whose BLAS runs on one thread anyway (a Nanny starts
    workers with ``OPENBLAS_NUM_THREADS=1``) only Numba's threads are set. Otherwise
    ``_runtime.threads`` pins BLAS for the task (reference-counted with every other
    fastgmm call in the process; see :func:`_blas_pinned`).
    """
    n = _task_threads()
    if _worker() is not None and _blas_stays_single_threaded():
        with _numba_threads(n):
            yield
    else:
        with _blas_pinned(n):
            yield


def _apply(fn, X, w, check, args):
    """fn(X, w, *args) on one checked block, in the task's thread scope.

    ``check`` is (block index, rows, n_features, values): the block must have the
    rows its chunk declares and n_features columns; ``values`` also checks that its
    values are finite and its weights finite and non-negative.
    """
    index, rows, n_features, values = check
    with _task_threads_scope():
        X, w = _check_block(X, w, n_features, index, values)
        if X.shape[0] != rows:
            raise ValueError(
                f"block {index}: {X.shape[0]} rows, but the dask array's chunks "
                f"declare {rows}"
            )
        return fn(X, w, *args)


def _add(a, b):
    return tuple(x + y for x, y in zip(a, b))


def sample_indices(n, size, random_state):
    """Sorted indices of min(n, size) distinct rows drawn uniformly from n, in memory
    O(size): ``RandomState.choice(n, replace=False)`` permutes all n rows (8 GB and
    minutes for n = 1e9)."""
    if size >= n:
        return np.arange(n)
    if n <= 4 * size:
        return np.sort(random_state.choice(n, size=size, replace=False))
    picked = np.empty(0, np.int64)
    while picked.shape[0] < size:  # few rounds: duplicates are rare when n > 4 size
        draw = random_state.randint(0, n, size=size - picked.shape[0], dtype=np.int64)
        picked = np.union1d(picked, draw)
    return picked


def _require_array(X):
    if not hasattr(X, "rechunk"):  # a dask DataFrame or Series
        raise TypeError(
            f"Expected a dask array, got a {type(X).__name__}: convert it with "
            "X.to_dask_array(lengths=True)."
        )


class DaskSource:
    """A dask array (and optional dask weights) as an EM block source.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
    sample_weight : dask or numpy array of shape (n_samples,), optional

    Notes
    -----
    Each pass is one graph (:meth:`_graph`): a task per row block, running in the
    worker's thread scope (:func:`_task_threads_scope`), with the pass's arguments as
    one shared key. The tasks of the first complete pass check every value of their
    block; later passes check each block's width and row count only.
    """

    def __init__(self, X, sample_weight=None):
        _require_array(X)
        if X.ndim != 2:
            raise ValueError(f"Expected 2D array, got {X.ndim}D dask array instead.")
        if np.isnan(X.shape[0]):
            X = X.compute_chunk_sizes()
        self.X = X.rechunk({1: -1})
        self.weights = None
        self.n_rows, self.n_features = self.X.shape
        if self.n_rows == 0:
            raise ValueError("Found array with 0 sample(s) (the dask array is empty).")
        if self.n_features == 0:
            raise ValueError(
                f"Found array with 0 feature(s) (shape={self.X.shape}) while a "
                "minimum of 1 is required."
            )
        if sample_weight is not None:
            import dask.array as da

            sample_weight = da.asarray(sample_weight)  # numpy weights are accepted too
            if sample_weight.ndim == 1 and np.isnan(sample_weight.shape[0]):
                sample_weight = sample_weight.compute_chunk_sizes()
            if sample_weight.shape != (self.n_rows,):
                raise ValueError(
                    f"sample_weight.shape == {sample_weight.shape}, expected "
                    f"{(self.n_rows,)}!"
                )
            self.weights = sample_weight.rechunk((self.X.chunks[0],))
        self.dtype = np.dtype(np.float32 if X.dtype == np.float32 else np.float64)
        self._validated = False  # a complete pass has checked every value

    def first_row(self):
        return np.asarray(self.X[0].compute(), dtype=np.float64)

    def map_sum(self, fn, *args):
        """Sum of fn(block, weights, *args) over the row blocks, as a fixed binary tree.

        The tasks of the first complete pass check every value of their block (finite
        rows, finite non-negative weights); later passes check the structure only.
        """
        import dask

        (total,) = dask.compute(self._graph(fn, *args))
        self._validated = True
        return total

    def _graph(self, fn, *args):
        """The delayed sum of one pass (see :meth:`map_sum`).

        ``args`` (the current parameters: K x d x d arrays) are one key of the graph,
        a dependency of every block task: serialised once per pass and fetched once
        per worker, instead of travelling inside each of the block tasks.
        """
        import dask
        from dask.base import tokenize

        values = not self._validated
        blocks = self.X.to_delayed().ravel()
        weights = (
            [None] * len(blocks)
            if self.weights is None
            else self.weights.to_delayed().ravel()
        )
        shared = dask.delayed(
            args, pure=True, traverse=False, name=f"fastgmm-args-{tokenize(args)}"
        )
        apply = dask.delayed(_apply, pure=True)
        add = dask.delayed(_add, pure=True)
        level = [
            apply(fn, b, w, (i, rows, self.n_features, values), shared)
            for i, (b, w, rows) in enumerate(zip(blocks, weights, self.X.chunks[0]))
        ]
        while len(level) > 1:
            pairs = [add(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            level = pairs + ([level[-1]] if len(level) % 2 else [])
        return level[0]

    def sample(self, n_max, random_state):
        """A seeded uniform sample of min(n_max, n_rows) rows, gathered to the client."""
        import dask

        idx = sample_indices(self.n_rows, n_max, random_state)
        X, w = self.X[idx], None if self.weights is None else self.weights[idx]
        X, w = dask.compute(X, w)
        X, checked = _check_block(X, w, None, values=not self._validated)
        return X, None if w is None else checked


def _score_block(X, params, covariance_type, what):
    from .em import score

    with _task_threads_scope():
        (out,) = score(
            _check_block(X, None, None)[0], params, covariance_type, **{what: True}
        )
    return out


def lazy_score(X, params, covariance_type, what, n_components):
    """Per-block outputs of a fitted model on a dask array, as a lazy dask array."""
    _require_array(X)
    X = X.rechunk({1: -1})
    if what == "resp":
        return X.map_blocks(
            _score_block,
            params,
            covariance_type,
            what,
            dtype=X.dtype if X.dtype == np.float32 else np.float64,
            chunks=(X.chunks[0], (n_components,)),
        )
    dtype = (
        np.int64
        if what == "labels"
        else (np.float32 if X.dtype == np.float32 else np.float64)
    )
    return X.map_blocks(
        _score_block, params, covariance_type, what, dtype=dtype, drop_axis=1
    )
