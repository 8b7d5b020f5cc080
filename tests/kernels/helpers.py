"""Shared checks of the kernel tests."""

import numba
import numpy as np

from fastgmm._runtime import threads
from fastgmm.model.params import kernel_inputs

from .. import reference as ref


def assert_same_for_any_thread_count(compute):
    """``compute()`` (a tuple of arrays) on 1, 2, then 1 thread: every output
    bitwise equal, the partial sums being added in a fixed chunk order."""
    outs = []
    for n_jobs in (1, 2, 1):
        with threads(n_jobs):
            assert numba.get_num_threads() == min(
                n_jobs, numba.config.NUMBA_NUM_THREADS
            )
            outs.append(tuple(compute()))
    for other in outs[1:]:
        assert len(other) == len(outs[0])
        for a, b in zip(outs[0], other):
            np.testing.assert_array_equal(a, b)


def pass_of(fn, X, sw, params, chunk):
    """An EM pass kernel ``fn`` (``passes.em_pass``'s arguments and results) over
    X with weights ``sw`` (None: unit) at ``params``, about their means."""
    kind, const, loc, prec = kernel_inputs(params).astuple()
    sw = np.empty(0) if sw is None else np.asarray(sw, np.float64)
    return fn(X, sw, kind, const, loc, prec, np.ascontiguousarray(params.means), chunk)


def pass_oracle(X, sw, params, covariance_type):
    """The NumPy oracle's (log-likelihood sum, nk, s1, s2) of that pass."""
    log_norm, resp = ref.e_step(
        X, params.weights, params.means, params.prec_chol, covariance_type
    )
    w = np.ones(len(X)) if sw is None else sw
    stats = ref.sufficient_stats(X, resp, sw, params.means, covariance_type)
    return (float(w @ log_norm), *stats)
