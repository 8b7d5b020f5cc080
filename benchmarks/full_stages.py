#!/usr/bin/env python
"""Where the FULL pass at d >= 16 (kernels.fullgemm) spends its time, per stage.

Usage::

    python benchmarks/full_stages.py [--cases mid-full d64-full] [--rounds 15]

For benchmarks/peers.py's mid-full (200k x 16, K=16) and d64-full (50k x 64, K=16)
from their starting parameters, the block kernels of ``full_em_pass`` run in one
thread over the rows (blocks of ``BLOCK`` points), cumulatively: copying blocks in
(load), + log-densities (the path the pass takes: fullquad's one GEMM where its bound
allows, else the column groups), + responsibilities, + statistics (sums, the scatter's
queue and Gram products). Each stage's increment is reported in ns per point and
per (point, component) term, with the log-density's FLOP rate. Times are CPU time of
the process (``time.process_time``), the minimum over rounds of the four runs taken
in turn; JIT compile is excluded (each stage runs once first).
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

from full_gemm import peers_case  # noqa: E402

STAGES = ("load", "log-density", "responsibilities", "statistics")


def measure(case, rounds):
    """(ns per point of each stage, n_components, log-density FLOPs per point)."""
    from numba import njit

    from fastgmm._jit import BLOCK, float_pair, kernel_array
    from fastgmm.kernels import fullgemm as fg
    from fastgmm.kernels import fullquad as fq
    from fastgmm.kernels.blas import blas_args
    from fastgmm.kernels.passes import block_resp

    X, (_, const, loc, prec, ref) = peers_case(case)
    n_rows = (min(len(X), 128_000) // BLOCK) * BLOCK
    pair = float_pair(kernel_array(X[:n_rows]))
    K, d = loc.shape
    ins = fg.pass_inputs(const, loc, prec)
    W = ins[0]
    if d <= fq.QUAD_MAX_D:
        flops = 2 * K * fq.n_quad_features(d)
    else:
        g = W.shape[3]
        flops = sum(2 * K * g * min(d, (q + 1) * g) for q in range(W.shape[0]))

    @njit
    def run(stage, X, n, ins, const, ref):
        W, m, centre, C, p_norm = ins
        yt, ft, xct, ynorm = fg._buffers(ins)
        a = ref - centre
        lp = np.empty((K, BLOCK))
        vec = np.zeros((7, BLOCK))
        vec[0] = 1.0
        scratch = (vec[6], np.empty(BLOCK, np.int64))
        pend, fill = np.empty((K, d, fg.PENDING)), np.zeros(K, np.int64)
        nk, s1, s2 = np.zeros(K), np.zeros((K, d)), np.zeros((K, d, d))
        args = blas_args()
        ll = 0.0
        for b0 in range(0, n, BLOCK):
            fg.load_rows(X, b0, BLOCK, centre, xct, ynorm)
            ys = (xct, ynorm)
            if stage >= 1:
                quad = (C, p_norm)
                fg._log_prob(BLOCK, const, (W, m, centre), quad, ys, (yt, ft), lp, args)
            if stage >= 2:
                ll += block_resp(lp, BLOCK, vec[0], vec[1], vec[2], vec[3:6])
            if stage >= 3:
                fg.block_stats(BLOCK, a, lp, xct, nk, s1, s2, pend, fill, scratch)
        if stage >= 3:
            fg.flush_pending(pend, fill, s2)
        return ll

    args = (pair, n_rows, ins, const, ref)
    for stage in range(4):
        run(stage, *args)
    best = [np.inf] * 4
    for _ in range(rounds):
        for stage in range(4):
            t0 = time.process_time()
            run(stage, *args)
            best[stage] = min(best[stage], (time.process_time() - t0) / n_rows * 1e9)
    return [best[0]] + [best[i] - best[i - 1] for i in range(1, 4)], K, flops


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", default=["mid-full", "d64-full"])
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args(argv)
    from fastgmm._runtime import threads

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print("| case | " + " | ".join(STAGES) + " | total | per term (ns) "
          "| log-density GFLOP/s |")  # fmt: skip
    print("|---" * 8 + "|")
    for case in args.cases:
        with threads(1):
            stages, K, flops = measure(case, args.rounds)
        per_term = ", ".join(f"{v / K:.2f}" for v in stages)
        cells = " | ".join(f"{v:.1f}" for v in stages)
        print(f"| {case} | {cells} | {sum(stages):.1f} | {per_term} "
              f"| {flops / stages[1]:.1f} |")  # fmt: skip
    print(f"ns per point (1 thread, CPU time); load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
