"""One fused pass of two kernels side by side: the harness of large_k.py and
full_gemm.py (a kernel of their own against the general ``em_pass``)."""

import time

import numpy as np

from fastgmm._runtime import threads


def alternate(old, new, repeats, n_jobs=-1):
    """Time the calls ``old()`` and ``new()`` alternately (old, new, old, ...) on
    ``n_jobs`` threads (every one by default; BLAS pinned to one), after one untimed
    call each (compile or load from the cache). With ``n_jobs=1`` the times are CPU
    time of the process (``time.process_time``: not counting time other processes
    hold the core, for a loaded machine), else wall time.

    Returns (first-call seconds (old, new), relative difference of their log-likelihood
    sums, old seconds (repeats,), new seconds (repeats,)).
    """
    clock = time.process_time if n_jobs == 1 else time.perf_counter
    with threads(n_jobs):
        first = []
        for fn in (old, new):
            t0 = time.perf_counter()
            fn()
            first.append(time.perf_counter() - t0)
        a, b = old(), new()
        rel = abs(a[0] - b[0]) / abs(a[0])
        t_old, t_new = [], []
        for _ in range(repeats):
            for fn, ts in ((old, t_old), (new, t_new)):
                t0 = clock()
                fn()
                ts.append(clock() - t0)
    return first, rel, np.array(t_old), np.array(t_new)


def row(name, old, new, repeats, n_jobs=-1):
    """A markdown row: case, median ms of each, median (min-max) of the per-pair
    ratios old / new (> 1: new is faster), first calls, relative loglik difference.
    Printed as well."""
    first, rel, t_old, t_new = alternate(old, new, repeats, n_jobs)
    ratios = t_old / t_new
    text = (
        f"| {name} | {np.median(t_old) * 1e3:.1f} | {np.median(t_new) * 1e3:.1f} "
        f"| {np.median(ratios):.2f} ({ratios.min():.2f}-{ratios.max():.2f}) "
        f"| {first[0]:.1f} / {first[1]:.1f} | {rel:.1e} |"
    )
    print(text, flush=True)
    return text
