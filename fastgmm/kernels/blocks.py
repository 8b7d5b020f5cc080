"""Deterministic chunk-ordered reductions shared by the parallel kernels.

A parallel kernel gives each chunk of rows its own slot of partial sums and adds the
slots in chunk order, so results do not depend on the thread count. The slot
buffers and the ordered sum live here, in *serial* kernels: inside a
``parallel=True`` function every array expression (``np.zeros``, ``a += b``) becomes
a parallel region of its own, and thousands of tiny regions per pass cost more than
the work (and stall whenever another process holds a core).
"""

import numpy as np
from numba import config, types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic

from .._jit import GROUP, kernel, kernel_input

#: partial-sum memory a reduction may hold (bytes), unless that leaves fewer than
#: SLOT_STEP slots; slot counts are multiples of SLOT_STEP (see slot_count)
SLOT_BYTES = 256 << 20
SLOT_STEP = 16


@intrinsic
def read_only(typingctx, a):
    """``a`` (an array) typed read-only, same memory: for an array a kernel makes and
    hands on where its callee expects an input (inputs are typed read-only, see
    ``fastgmm._jit.kernel``), so the callee is not compiled a second time."""
    if not isinstance(a, types.Array):
        return None
    sig = a.copy(readonly=True)(a)

    def codegen(context, builder, signature, args):
        return impl_ret_borrowed(context, builder, signature.return_type, args[0])

    return sig, codegen


if config.DISABLE_JIT:  # intrinsics exist only in compiled code
    read_only = kernel_input


@kernel
def slot_count(n_chunks, n_components, p, d):
    """Partial-sum slots held at once for n_chunks chunks: at most GROUP, and, when
    the slots of a large K x p x d problem would pass SLOT_BYTES, the largest
    multiple of SLOT_STEP that fits (at least SLOT_STEP).

    A function of the problem shape only, never of the thread count; the slots are
    added in chunk order whatever their number, so results do not depend on it.
    Memory: at most max(SLOT_BYTES, SLOT_STEP slots) of 8 (1 + K (1 + d + p d)) bytes
    each (full covariance, d = K = 128: 16 slots, 270 MB instead of 64, 1.1 GB).
    """
    per_slot = 8 * (1 + n_components * (1 + d + p * d))
    fit = SLOT_BYTES // per_slot
    cap = GROUP if fit >= GROUP else max(SLOT_STEP, fit // SLOT_STEP * SLOT_STEP)
    return max(1, min(cap, n_chunks))


@kernel
def slot_buffers(n_slots, n_components, p, d):
    """Zeroed partial sums: ll (S,), nk (S, K), s1 (S, K, d), s2 (S, K, p, d)."""
    return (
        np.zeros(n_slots),
        np.zeros((n_slots, n_components)),
        np.zeros((n_slots, n_components, d)),
        np.zeros((n_slots, n_components, p, d)),
    )


@kernel
def add_slots(m, pll, pnk, ps1, ps2, nk, s1, s2):
    """Add slots 0..m-1 to nk, s1, s2 in slot order, zero them; return their ll sum."""
    ll = 0.0
    for c in range(m):
        ll += pll[c]
        nk += pnk[c]
        s1 += ps1[c]
        s2 += ps2[c]
        pll[c] = 0.0
        pnk[c] = 0.0
        ps1[c] = 0.0
        ps2[c] = 0.0
    return ll


@kernel
def sum_rows(part):
    """part.sum(axis=0) of a 2-D array, row by row in order."""
    out = np.zeros(part.shape[1])
    for c in range(part.shape[0]):
        out += part[c]
    return out
