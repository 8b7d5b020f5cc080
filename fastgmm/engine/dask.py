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

import numpy as np

from .._runtime import threads
from .sources import _check_block, is_dask_array  # noqa: F401 (re-exported)


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


def _task_threads_scope():
    """Where a task runs fastgmm kernels: BLAS on one thread, Numba on the task's
    share of the cores (:func:`_task_threads`)."""
    return threads(_task_threads())


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


def check_array(X):
    """TypeError for a dask DataFrame or Series, ValueError unless ``X`` is 2-D
    (scikit-learn's message): before anything reads ``X.shape[1]``."""
    if not hasattr(X, "rechunk"):  # a dask DataFrame or Series
        raise TypeError(
            f"Expected a dask array, got a {type(X).__name__}: convert it with "
            "X.to_dask_array(lengths=True)."
        )
    if X.ndim != 2:
        raise ValueError(f"Expected 2D array, got {X.ndim}D dask array instead.")


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
        check_array(X)
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
    from .score import score

    with _task_threads_scope():
        (out,) = score(_check_block(X, None, None)[0], params, **{what: True})
    return out


def lazy_score(X, params, covariance_type, what, n_components):
    """Per-block outputs of a fitted model on a dask array, as a lazy dask array."""
    check_array(X)
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
