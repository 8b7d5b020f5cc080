"""Shared checks of the kernel tests."""

import numba
import numpy as np

from fastgmm._runtime import threads


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
