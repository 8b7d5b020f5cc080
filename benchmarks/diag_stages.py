#!/usr/bin/env python
"""The block stages of the diagonal float64 pass (kernels/diagpass.py) against
em_pass's (kernels/passes.py), side by side in one process.

Usage::

    python benchmarks/diag_stages.py [--rounds 15] [--d 16] [--k 16]

On 256k rows of ``peers.py``'s blobs (mid-diag's data) with parameters from a short
fit, each pass's block kernels run in one thread, cumulatively: loading blocks,
+ log-densities, + responsibilities, + statistics; both kinds of each stage in turn
(em_pass's, then diagpass's), ``--rounds`` times. Each stage's increment is given in
ns per point, the minimum over rounds of process CPU time (``time.process_time``:
time other processes hold the core is not counted). JIT compile is excluded (every
stage runs once before timing). The block size is a run-time value, as in the passes.

Then the whole passes (``em_pass`` against ``diag_fused_pass``, all 256k rows)
alternating, ``--rounds`` pairs, on one thread (CPU time) and on two (wall time):
``pass_ab.py``'s rows (medians, median of per-pair ratios em_pass / diagpass).
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ROWS = 256_000


def kernels():
    """(em_pass's stages, diagpass's stages) as two jitted functions."""
    from numba import njit

    from fastgmm.kernels import diagpass as dp
    from fastgmm.kernels.logdensity import block_buffers, block_log_prob, load_block
    from fastgmm.kernels.passes import block_resp, block_stats

    @njit
    def old(stage, pair, kind, const, loc, prec, ref, n_blocks, rows):
        nb, d, k = rows[0], loc.shape[1], const.shape[0]
        mats, lp, vec = block_buffers(d, k)
        nk, s1, s2 = np.zeros(k), np.zeros((k, d)), np.zeros((k, 1, d))
        ll = 0.0
        for i in range(n_blocks):
            load_block(pair, i * nb, nb, mats[0])
            if stage >= 1:
                block_log_prob(nb, kind, const, loc, prec, mats, lp, vec[1])
            if stage >= 2:
                ll += block_resp(lp, nb, vec[0], vec[1], vec[2], vec[3:])
            if stage >= 3:
                block_stats(nb, kind, ref, lp, nk, s1, s2, mats)
        return ll

    @njit
    def new(stage, X, const, loc, prec, ref, n_blocks, rows):
        nb, d, k = rows[0], loc.shape[1], const.shape[0]
        centre, mp, refc = dp.centred_inputs(loc, prec, ref)
        xt, lp, vec = np.empty((d, nb)), np.empty((k, nb)), np.ones((6, nb))
        nk, s1, s2 = np.zeros(k), np.zeros((k, d)), np.zeros((k, 1, d))
        ll = 0.0
        for i in range(n_blocks):
            dp._load(X, i * nb, nb, centre, xt)
            if stage >= 1:
                dp._log_prob(xt, nb, const, mp, prec, lp, vec[1])
            if stage >= 2:
                ll += dp._resp(lp, nb, vec[0], vec[1], vec[2], vec[3], vec[4:6])
            if stage >= 3:
                dp._stats(nb, refc, lp, vec[3], xt, nk, s1, s2)
        return ll

    return old, new


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--k", type=int, default=16)
    args = p.parse_args(argv)
    from fastgmm import GaussianMixture
    from fastgmm._jit import BLOCK, float_pair, kernel_array
    from fastgmm.model.params import from_fitted, kernel_inputs

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from peers import dataset

    X = kernel_array(dataset("blobs", ROWS, args.d, args.k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(args.k, covariance_type="diag", max_iter=2)
        gm.set_params(random_state=0).fit(X[:20_000])
    ins = kernel_inputs(from_fitted(gm))
    ref = kernel_array(gm.means_)
    rows, n_blocks = np.array([BLOCK]), len(X) // BLOCK
    old, new = kernels()
    pair = float_pair(X)
    runs = (
        lambda s: old(s, pair, ins.kind, ins.const, ins.loc, ins.prec, ref, n_blocks, rows),
        lambda s: new(s, pair, ins.const, ins.loc, ins.prec, ref, n_blocks, rows),
    )  # fmt: skip
    for s in range(4):
        for run in runs:
            run(s)
    best = np.full((2, 4), np.inf)
    for _ in range(args.rounds):
        for s in range(4):
            for i, run in enumerate(runs):
                t0 = time.process_time()
                run(s)
                seconds = time.process_time() - t0
                best[i, s] = min(best[i, s], seconds / (n_blocks * BLOCK) * 1e9)
    print(f"load average {os.getloadavg()[0]:.2f}; {args.rounds} rounds; ns per point")
    print("| pass | load | log-density | responsibilities | statistics | total |")
    print("|---|---|---|---|---|---|")
    for name, t in zip(("em_pass", "diagpass"), best):
        inc = [t[0]] + [t[i] - t[i - 1] for i in range(1, 4)]
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in inc) + f" | {t[3]:.2f} |")
    whole_passes(X, ins, ref, args.rounds)


def whole_passes(X, ins, ref, rounds):
    """em_pass against diag_fused_pass, alternating (pass_ab.row)."""
    from pass_ab import row

    from fastgmm.kernels.diagpass import diag_fused_pass
    from fastgmm.kernels.passes import em_pass

    args = (X, np.empty(0), ins.kind, ins.const, ins.loc, ins.prec, ref, 2048)
    print(
        "\n| pass, threads | em_pass ms | diagpass ms | ratio (min-max) | first s | rel. ll |"
    )
    print("|---|---|---|---|---|---|")
    for n_jobs in (1, 2):
        name = f"{len(X)} rows, {n_jobs}"
        row(
            name, lambda: em_pass(*args), lambda: diag_fused_pass(*args), rounds, n_jobs
        )


if __name__ == "__main__":
    main()
