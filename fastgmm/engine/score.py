"""The one scorer: per-point outputs of a fitted mixture, chunk by chunk.

Every caller that scores points -- the estimator's ``predict``, ``predict_proba``,
``score_samples``, ``bic``; inspection; model selection; segmentation; Dask blocks;
plots -- goes through :func:`score` or :func:`score_chunks`. Each call enters the
thread scope once (threads for the kernels, BLAS pinned to one thread).
"""

import numpy as np

from .._jit import chunk_rows, kernel_input
from .._runtime import _interrupted as interrupted
from .._runtime import blas_idle, n_threads_for, pass_work, threads
from ..kernels import DIAG, FULL
from ..kernels.fullgemm import full_score_pass, use_gemm
from ..kernels.passes import score_pass
from ..model.params import kernel_inputs

#: rows scored at a time by :func:`score_chunks` (bounds a K-wide buffer)
CHUNK_ROWS = 1_000_000


def _score(X, inputs, lse, resp, labels):
    n, d = X.shape
    k = inputs.const.shape[0]
    out_lse = np.empty(n if lse else 0, dtype=X.dtype)
    out_resp = np.empty((n if resp else 0, k), dtype=X.dtype)
    out_label = np.empty(n if labels else 0, dtype=np.int64)
    chunk = chunk_rows(d, k)
    # dense models from d = 16: every component's log-densities in one or a few
    # GEMMs per block (kernels.fullgemm), as their EM passes
    dense = inputs.kind == FULL and use_gemm(d)
    kernel = full_score_pass if dense else score_pass
    kernel(X, *inputs.astuple(), chunk, out_lse, out_resp, out_label)
    wanted = (out_lse, lse), (out_resp, resp), (out_label, labels)
    return tuple(a for a, w in wanted if w)


def numba_threads():
    """Numba's thread count for this thread (imports Numba on first use only)."""
    import numba

    return numba.get_num_threads()


def score(
    X, params, *, lse=False, resp=False, labels=False, n_jobs=None, family=None,
    checked=False,
):  # fmt: skip
    """Per-point outputs of a model: log p(x), responsibilities, labels.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64, C-contiguous (validated)
    params : Params
        The model (see :mod:`fastgmm.model.params`).
    lse, resp, labels : bool
        Which outputs to return, in that order.
    n_jobs : int or None
        Threads (scikit-learn's spelling); small problems run on one thread (see
        :func:`fastgmm._runtime.threads`).
    family : object, optional
        Supplies ``inputs(params)``; default: the maximum-likelihood mixture.
    checked : bool
        The shapes of ``params`` are known to be consistent (e.g. by
        :func:`~fastgmm.model.params.from_fitted`): only X's width is checked.

    Returns
    -------
    tuple of ndarray
        ``log p(x)`` (n,) and responsibilities (n, K) in X's dtype, labels (n,) int64.
    """
    if np.ndim(X) != 2:
        raise ValueError(f"Expected a 2-D array of points, got shape {np.shape(X)}.")
    n, d = X.shape
    if not (checked and d == params.means.shape[1]):
        params.check(d)  # the kernels do not check bounds
    work = pass_work(n, d, params.n_components, params.model.kind != DIAG)
    idle = blas_idle(work, d)
    if idle and n <= chunk_rows(d, params.n_components) and numba_threads() == 1:
        # one chunk, no BLAS, one thread already: no thread scope to enter (~2 us)
        if n_jobs is not None:
            n_threads_for(n_jobs)  # (its errors)
        inputs = kernel_inputs(params) if family is None else family.inputs(params)
        try:
            return _score(kernel_input(X), inputs, lse, resp, labels)
        except SystemError as exc:  # a Ctrl-C in the kernel, as threads() does
            if interrupted(exc):
                raise KeyboardInterrupt from None
            raise
    with threads(n_jobs, work=work, pin_blas=not idle):
        inputs = kernel_inputs(params) if family is None else family.inputs(params)
        return _score(kernel_input(X), inputs, lse, resp, labels)


def score_chunks(X, params, chunk_size=CHUNK_ROWS, n_jobs=None, **wanted):
    """Yield (start, outputs of :func:`score`) for row chunks of X.

    Each chunk is scored inside its own thread scope, so nothing is changed while
    the generator is suspended.
    """
    chunk_size = max(1, int(chunk_size))
    for start in range(0, X.shape[0], chunk_size):
        part = X[start : start + chunk_size]
        yield start, score(part, params, n_jobs=n_jobs, **wanted)


def score_blocks(source, params, n_jobs=None, **wanted):
    """:func:`score` of every block of a source, concatenated in order."""
    parts = [score(X, params, n_jobs=n_jobs, **wanted) for X, _ in source._iter()]
    return tuple(np.concatenate(p) for p in zip(*parts))
