"""Deterministic chunk-ordered reductions and the task queue shared by the parallel
kernels.

A parallel kernel gives each chunk of rows its own slot of partial sums and adds the
slots in chunk order, so results do not depend on the thread count. The slot
buffers and the ordered sum live here, in *serial* kernels: inside a
``parallel=True`` function every array expression (``np.zeros``, ``a += b``) becomes
a parallel region of its own, and thousands of tiny regions per pass cost more than
the work (and stall whenever another process holds a core).

Chunks are handed out dynamically: a parallel kernel starts one worker per thread
(``prange(n_workers)``, one parallel region) and each worker takes the next chunk
number from a shared counter (:func:`next_task`, an atomic fetch-and-add) until none
is left. Numba's own ``prange`` gives each thread a fixed share of the iterations,
so one thread descheduled by another process stalls the whole pass; here the other
threads take over its chunks. Which thread runs a chunk changes nothing: each chunk
writes its own slot.
"""

import numba
import numpy as np
from numba import config, types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic

from .._jit import SLOT_BYTES, kernel, kernel_input


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


@intrinsic
def _fetch_add(typingctx, counter):
    """Atomically ``counter[0] += 1``; returns the value before (int64 array)."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        (aryty,) = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(
            context, builder, aryty, ary, [cgutils.intp_t(0)]
        )
        one = context.get_constant(types.int64, 1)
        return builder.atomic_rmw("add", ptr, one, "monotonic")

    return types.int64(counter), codegen


@intrinsic
def _num_threads(typingctx):
    """numba.get_num_threads() linked by symbol name, as Numba's own parallel loops
    call it (its public overload goes through a ctypes pointer, which would make
    the calling kernel uncacheable)."""
    from llvmlite import ir
    from numba.np.ufunc.parallel import _launch_threads

    _launch_threads()  # registers the symbol

    def codegen(context, builder, signature, args):
        # ... but only when this is compiled: a kernel loaded from the on-disk cache
        # registers it on loading, as Numba's parallel kernels do (else a new kernel
        # linking a cached caller of this one fails: "Symbol not found")
        from numba.core.typed_passes import _reload_parfors

        context.active_code_library._reload_init.add(_reload_parfors)
        fnty = ir.FunctionType(cgutils.intp_t, [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "get_num_threads")
        return builder.call(fn, [])

    return types.intp(), codegen


def _fetch_add_python(counter):
    """_fetch_add without the JIT (prange is then a serial loop)."""
    value = int(counter[0])
    counter[0] = value + 1
    return value


if config.DISABLE_JIT:  # intrinsics exist only in compiled code
    read_only = kernel_input
    _fetch_add = _fetch_add_python
    _num_threads = numba.get_num_threads


@kernel
def task_queue(n_tasks):
    """(counter, n_workers) for ``n_tasks`` chunks: a zeroed task counter (1,) int64
    for :func:`next_task` and the number of workers to start, one per thread (at
    most one per task)."""
    return np.zeros(1, np.int64), max(1, min(_num_threads(), n_tasks))


@kernel
def next_task(counter):
    """The next task number of a queue (0, 1, 2, ... across all workers, each number
    given out once); a worker stops when it reaches the number of tasks."""
    return _fetch_add(counter)


@kernel
def n_slots_for(n_chunks, n_components, p, d):
    """Partial-sum slots held at once by a chunked reduction of K x p x d statistics:
    one per chunk (one parallel region per pass) within SLOT_BYTES."""
    per_slot = 8 * (1 + n_components * (1 + d + p * d))
    return max(1, min(n_chunks, SLOT_BYTES // per_slot))


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
    """Add slots 0..m-1 to nk, s1, s2 in slot order, zero them; return their ll sum.

    Every element (and ll) gets its slots' values in slot order, as the array
    expressions this replaced did, bit for bit; as flat SIMD loops over the
    contiguous slots: 7 against 51 us for the 435 slots of a 1M x 3, K=8 full pass
    (serial time between two parallel regions)."""
    ll = _slot_sum(m, pll)
    _add_rows(m, pnk.reshape(-1), nk.reshape(-1))
    _add_rows(m, ps1.reshape(-1), s1.reshape(-1))
    _add_rows(m, ps2.reshape(-1), s2.reshape(-1))
    return ll


@kernel(strict=True)
def _slot_sum(m, pll):
    """pll[0] + ... + pll[m-1] in that order (no re-association), zeroing them."""
    ll = 0.0
    for c in range(m):
        ll += pll[c]
        pll[c] = 0.0
    return ll


@kernel
def _add_rows(m, part, out):
    """out += the rows 0..m-1 of part, element by element in row order, zeroing
    them; part (S * size,) and out (size,) flat (C-contiguous slots, reshaped)."""
    size = out.shape[0]
    for c in range(m):
        base = c * size
        for i in range(size):
            out[i] += part[base + i]
            part[base + i] = 0.0


@kernel
def sum_rows(part):
    """part.sum(axis=0) of a 2-D array, row by row in order."""
    out = np.zeros(part.shape[1])
    for c in range(part.shape[0]):
        out += part[c]
    return out
