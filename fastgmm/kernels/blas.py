"""BLAS level-3 routines that Numba does not expose, callable from cached kernels.

``np.dot`` is the only BLAS call Numba offers, and it copies a sliced operand on
every call. Here ``dgemm`` from SciPy's ``cython_blas`` (the same BLAS
Numba's ``np.dot`` uses) are registered with LLVM under fixed symbol names, so the
kernels that call them link by name and stay cacheable on disk: importing this
module (done by every module that uses it) registers the symbol before any cached
kernel is loaded.

All arrays are C-contiguous float64; BLAS sees them as column-major transposes.
Scalar arguments travel by pointer (Fortran convention) in a small argument buffer
(:func:`blas_args`) that the *caller* owns: the external function receives only
addresses, and an array allocated inside the kernel, whose last use in Numba's IR is
taking its address, could be freed by the runtime before BLAS reads it. An argument
of the kernel stays alive for the whole call (the caller holds it), and allocating
it once per chunk saves three allocations per call.
"""

import llvmlite.binding as llvm
import numpy as np
from numba import types
from numba.extending import get_cython_function_address

from .._jit import kernel


def _register(name, n_args):
    symbol = "fastgmm_" + name
    llvm.add_symbol(
        symbol, get_cython_function_address("scipy.linalg.cython_blas", name)
    )
    # every argument is a pointer, passed as an address (intp) from the kernels
    return types.ExternalFunction(symbol, types.void(*([types.intp] * n_args)))


_dgemm = _register("dgemm", 13)

_R, _L, _T, _N, _U = 82, 76, 84, 78, 85  # ord("R"), ord("L"), ...


#: float64 slots of an argument buffer: bytes 0-3 hold characters (uint8), bytes
#: 8-31 up to six int32, bytes 32-47 two float64 (alpha, beta)
ARGS_SIZE = 8


@kernel
def blas_args():
    """An argument buffer for gemm_points: (ARGS_SIZE,) float64.

    One per task, allocated by the caller next to its other per-chunk scratch.
    """
    return np.empty(ARGS_SIZE)


@kernel
def gemm_points(xt, nb, n_inner, w, n_out, yt, args):
    """yt[c, b] := sum_{i < n_inner} w[c, i] * xt[i, b] for b < nb, c < n_out.

    Points along the last axis (xt (>= n_inner, ldx), yt (>= n_out, ldy)), w
    (>= n_out, ldw); each C-contiguous, w possibly with its rows split over several
    axes (..., ldw). Only their leading parts are read or written, in place (no copy
    of a slice, which np.dot would make).
    ``args`` is the caller's argument buffer (blas_args).
    """
    if nb == 0 or n_out == 0:
        return
    chars, ints = args.view(np.uint8), args.view(np.int32)
    chars[0], chars[1] = _N, _N  # transa, transb
    ints[2], ints[3], ints[4] = nb, n_out, n_inner  # m, n, k
    ints[5], ints[6], ints[7] = xt.shape[-1], w.shape[-1], yt.shape[-1]  # lda, ldb, ldc
    args[4], args[5] = 1.0, 0.0  # alpha, beta
    c = args.ctypes.data
    i, s = c + 8, c + 32
    # column-major, yt is (ldy, n_out) := xt (ldx, n_inner) @ w' (n_inner, n_out)
    _dgemm(
        c, c + 1, i, i + 4, i + 8, s, xt.ctypes.data, i + 12,
        w.ctypes.data, i + 16, s + 8, yt.ctypes.data, i + 20,
    )  # fmt: skip
