#!/usr/bin/env python
"""Where the float32 pass at few features (kernels/lowd32.py) spends its time.

Usage::

    python benchmarks/lowd32_stages.py [--cases px32-full px32-diag] [--rounds 15]
                                       [--rows N ...]

For each case (``peers.py``'s 1M x 3, K=8 float32 cases, from their shared start) the
script runs lowd32's block kernels over every row on one thread, cumulatively:
loading the rows into a centred float32 block (load), + log-densities and their
maximum, + the powers of 2 and their sums (exp), + the rest of the responsibilities
(scale and log-likelihood), + the block statistics, + their float64 chunk sums; and
reports each stage's increment in ns per row and per (row, component) term. Times are
process CPU time (``time.process_time``: time other processes hold the core is not
counted), the minimum over ``--rounds`` of the six runs taken in turn; JIT compile
excluded (each stage runs once first). ``--rows`` times the whole block loop at other
block sizes (one per entry, alternating; median of the per-round ratios against
``lowd32.block_rows``'s choice).

It calls lowd32's internals: it measures this checkout only (``px_ab.py`` compares
checkouts).
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from numba import njit  # noqa: E402

from fastgmm._jit import chunk_rows  # noqa: E402
from fastgmm._runtime import threads  # noqa: E402
from fastgmm.kernels import lowd32 as low  # noqa: E402
from fastgmm.kernels import lowd32stats as stats  # noqa: E402
from fastgmm.kernels.vecmath import exp2_32_shifted_sum  # noqa: E402

STAGES = ("load", "log-density", "exp", "resp rest", "statistics", "chunk sums")


@njit
def run(X, kind, const, loc, prec, ref, rows, stage):
    """lowd32's block loop over X up to ``stage`` (an index of STAGES)."""
    c32, const32, loc32, prec32, ref32, _ = low.inputs32(const, loc, prec, ref)
    d, n_components = X.shape[1], const.shape[0]
    xt, yt, lp, part, v32, v64, _, _, flat = low.scratch32(d, n_components, rows)
    mx, s, scale = v32[0], v32[1], v32[2]
    ll = 0.0
    for b0 in range(0, X.shape[0], rows):
        nb = min(rows, X.shape[0] - b0)
        low._load32(X, b0, nb, c32, xt)
        if stage >= 1:
            low._log_prob32(kind, xt, nb, const32, loc32, prec32, lp, mx, yt[0], v32[3])
        if stage == 2:
            for b in range(nb):
                s[b] = 0.0
            for k in range(n_components):
                exp2_32_shifted_sum(lp[k], mx, nb, s)
        if stage >= 3:
            ll += low._resp32(lp, nb, v64[3], mx, s, scale, v64, False)
        if stage >= 4:
            if d <= 3:
                stats._stats_small32(nb, kind, xt, ref32, lp, scale, part)
            else:
                stats._stats32(nb, kind, xt, ref32, lp, scale, part, yt[0], yt[1])
        if stage >= 5:
            stats._add_part(flat[0], flat[1])
    return ll


def stage_table(case, X, args, rounds):
    n, n_components = X.shape[0], args[1].shape[0]
    rows = low.block_rows(
        chunk_rows(X.shape[1], n_components), n_components, X.shape[1]
    )
    for stage in range(len(STAGES)):
        run(X, *args, rows, stage)
    best = [np.inf] * len(STAGES)
    for _ in range(rounds):
        for stage in range(len(STAGES)):
            t0 = time.process_time()
            run(X, *args, rows, stage)
            best[stage] = min(best[stage], time.process_time() - t0)
    lines = [f"{case}: blocks of {rows} rows", "", "| stage | ns/row | ns/term |"]
    lines.append("|---|---:|---:|")
    previous = 0.0
    for name, t in zip(STAGES, best):
        step, previous = (t - previous) * 1e9 / n, t
        lines.append(f"| {name} | {step:.2f} | {step / n_components:.3f} |")
    lines.append(f"| total | {best[-1] * 1e9 / n:.2f} | {best[-1] * 1e3:.2f} ms |")
    return lines, rows


def rows_table(X, args, rounds, default, others):
    sizes = [default] + [r for r in others if r != default]
    for r in sizes:
        run(X, *args, r, len(STAGES) - 1)
    times = {r: [] for r in sizes}
    for _ in range(rounds):
        for r in sizes:
            t0 = time.process_time()
            run(X, *args, r, len(STAGES) - 1)
            times[r].append(time.process_time() - t0)
    base = np.array(times[default])
    lines = [
        "",
        "| rows per block | ms (median) | time vs default (median of rounds) |",
    ]
    lines.append("|---:|---:|---:|")
    for r in sizes:
        t = np.array(times[r])
        lines.append(f"| {r} | {np.median(t) * 1e3:.2f} | {np.median(t / base):.3f} |")
    return lines


def main(argv=None):
    from lowd32_ab import peers_case

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", default=["px32-full", "px32-diag"])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--rows", nargs="+", type=int, default=[], help="block sizes")
    args = p.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f}; one thread, process CPU time\n")
    with threads(1):
        for case in args.cases:
            X, inputs = peers_case(case)
            lines, rows = stage_table(case, X, inputs, args.rounds)
            if args.rows:
                lines += rows_table(X, inputs, args.rounds, rows, args.rows)
            print("\n".join(lines) + "\n", flush=True)


if __name__ == "__main__":
    main()
