"""BLAS level-3 routines that Numba does not expose, callable from cached kernels.

``np.dot`` is the only BLAS call Numba offers, and a GEMM does twice the useful work
on triangular (whitening, ``z = (x - mu) U``) and symmetric (scatter, ``sum r d d'``)
products. Here ``dtrmm`` and ``dsyrk`` from SciPy's ``cython_blas`` (the same BLAS
Numba's ``np.dot`` uses) are registered with LLVM under fixed symbol names, so the
kernels that call them link by name and stay cacheable on disk: importing this
module (done by every module that uses it) registers the symbols before any cached
kernel is loaded.

All arrays are C-contiguous float64; BLAS sees them as column-major transposes.
Scalar arguments travel by pointer (Fortran convention) in a small per-call buffer.
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


_dtrmm = _register("dtrmm", 11)
_dsyrk = _register("dsyrk", 10)

_R, _L, _T, _N, _U = 82, 76, 84, 78, 85  # ord("R"), ord("L"), ...


@kernel
def whiten_rows(upper, zt, nb):
    """In place: zt[:, :nb] := ((zt[:, :nb])' U)' for an upper-triangular U (d, d).

    zt is (d, ld) C-contiguous, i.e. column-major (ld, d): the block's points are its
    first nb rows. Only the upper triangle of ``upper`` is read.
    """
    if nb == 0:
        return
    d = upper.shape[0]
    ints = np.empty(4, np.int32)  # m, n, lda, ldb
    ints[0], ints[1], ints[2], ints[3] = nb, d, d, zt.shape[1]
    chars = np.empty(4, np.uint8)  # side, uplo, transa, diag
    chars[0], chars[1], chars[2], chars[3] = _R, _L, _T, _N
    alpha = np.ones(1)
    c, i = chars.ctypes.data, ints.ctypes.data
    # column-major, ``upper`` is U' (lower): B := B * (U')' = B U
    _dtrmm(
        c, c + 1, c + 2, c + 3, i, i + 4,
        alpha.ctypes.data, upper.ctypes.data, i + 8, zt.ctypes.data, i + 12,
    )  # fmt: skip


#: from this dimension on dsyrk beats a GEMM (which computes both triangles) here;
#: below, its per-call overhead loses (measured 128 rows: d=16 3.3 vs 1.9 us,
#: d=64 21 vs 27 us)
SYRK_MIN_D = 48


@kernel
def add_gram_lower(rows, n_rows, out):
    """out[i, j] += sum_{r < n_rows} rows[r, i] * rows[r, j] for i >= j (rows: (m, d)).

    The upper triangle of ``out`` (d, d) is left untouched (the GEMM path adds it too
    for d < SYRK_MIN_D; callers read the lower triangle only).
    """
    if n_rows == 0:
        return
    d = rows.shape[1]
    if d < SYRK_MIN_D:
        head = rows[:n_rows]
        out += np.dot(head.T, head)
        return
    ints = np.empty(4, np.int32)  # n, k, lda, ldc
    ints[0], ints[1], ints[2], ints[3] = d, n_rows, d, d
    chars = np.empty(2, np.uint8)  # uplo, trans
    # column-major, rows is (d, m) = A and out is out': C := C + A A', upper of C
    # is the lower triangle of out
    chars[0], chars[1] = _U, _N
    scal = np.ones(2)  # alpha, beta
    c, i, s = chars.ctypes.data, ints.ctypes.data, scal.ctypes.data
    _dsyrk(
        c, c + 1, i, i + 4, s, rows.ctypes.data, i + 8, s + 8, out.ctypes.data, i + 12,
    )  # fmt: skip
