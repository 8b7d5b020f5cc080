"""Deterministic chunk-ordered reductions shared by the parallel kernels.

A parallel kernel gives each chunk of rows its own slot of partial sums and adds the
slots in chunk order, so results do not depend on the thread count. The slot
buffers and the ordered sum live here, in *serial* kernels: inside a
``parallel=True`` function every array expression (``np.zeros``, ``a += b``) becomes
a parallel region of its own, and thousands of tiny regions per pass cost more than
the work (and stall whenever another process holds a core).
"""

import numpy as np

from .._jit import kernel


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
