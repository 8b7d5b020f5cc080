"""The one home of fastgmm's Numba policy.

Every kernel in the package is decorated with :func:`kernel`; nothing is compiled at
import time (no eager signatures), compiled code is cached on disk, and the fastmath
set is the *safe* one: FMA contraction and re-association (so reductions vectorise),
never the no-NaN / no-inf assumptions that break a logsumexp meeting ``-inf``.

Environment variables
---------------------
FASTGMM_CACHE
    ``0`` disables the on-disk JIT cache (default: enabled).
"""

import os

import numpy as np

CACHE = os.environ.get("FASTGMM_CACHE", "1") != "0"

#: LLVM fast-math flags that keep inf/NaN semantics. ``reassoc`` lets LLVM vectorise
#: sums; the order is fixed by the code, so results stay bitwise reproducible.
FASTMATH = {"contract", "reassoc", "nsz", "arcp"}

#: points per block: the unit of SIMD work (blocks are transposed to features x points)
BLOCK = 128
#: maximum number of partial-sum slots held at once by a chunked reduction
GROUP = 64


#: for code whose rounding is part of the algorithm (the exp range reduction)
STRICT_FASTMATH = {"contract"}


def kernel(fn=None, *, parallel=False, strict=False):
    """Decorate a Numba kernel with the project policy (lazy, cached, safe fastmath).

    ``error_model="numpy"``: a float division by zero gives inf/NaN as in NumPy instead
    of raising, so divisions carry no hidden branch and their loops vectorise (inputs
    are validated before any kernel runs).

    ``strict=True`` allows only FMA contraction: for code that relies on exact
    IEEE rounding, which re-association would optimise away.
    """
    import numba

    def wrap(f):
        flags = STRICT_FASTMATH if strict else FASTMATH
        return numba.njit(
            f,
            cache=CACHE,
            parallel=parallel,
            fastmath=flags,
            nogil=True,
            error_model="numpy",
        )

    return wrap if fn is None else wrap(fn)


class _Alias:
    """Holds an ``__array_interface__`` and keeps the array it describes alive."""

    def __init__(self, array, interface):
        self.array = array
        self.__array_interface__ = interface


def kernel_input(X):
    """X itself, or for a read-only ndarray a writable-typed alias of the same memory.

    Numba types read-only arrays separately, so without this every kernel would be
    compiled (and cached) a second time for them, and that second compilation may
    vectorise a sum differently: results 1 ulp apart for the same data. Kernels never
    write their input, so the alias is safe even over read-only pages.
    """
    if not isinstance(X, np.ndarray) or X.flags.writeable:
        return X
    interface = dict(X.__array_interface__)
    interface["data"] = (interface["data"][0], False)
    return np.asarray(_Alias(X, interface))


def kernel_array(a, dtype=np.float64):
    """``a`` as a C-contiguous, writable-typed ``dtype`` array for a kernel argument
    (copied only when the dtype or layout differs; see kernel_input)."""
    return kernel_input(np.ascontiguousarray(a, dtype=dtype))


def chunk_rows(n_features, n_components):
    """Rows per partial-sum slot: a deterministic function of the problem shape only.

    The result never depends on the thread count, so chunked reductions give
    bitwise-identical answers for any number of threads.
    """
    # aim for ~256 KiB of per-chunk log-prob work, in whole blocks, 4..64 blocks, and
    # at least 2 K d rows, so that a chunk's K x d x d partial sums (zeroed, added)
    # cost little next to its rows' O(K d^2) work (measured at d=64, K=16: 25 % faster)
    per_row = 8 * (n_components + 2 * n_features)
    blocks = (256 * 1024) // (per_row * BLOCK)
    blocks = max(blocks, -(-2 * n_components * n_features // BLOCK))
    return max(4, min(64, blocks)) * BLOCK
