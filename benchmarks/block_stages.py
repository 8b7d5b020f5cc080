#!/usr/bin/env python
"""Where one fused pass spends its time: the four block stages of the E-step.

Usage::

    python benchmarks/block_stages.py [--cases px64-full mid-diag ...] [--rounds 25]
                                      [--roots PATH ...]

For each case (the shapes of ``peers.py``: pixel-like 1M x 3, K=8 and blobs
200k x 16, K=16) the script runs the block kernels of ``kernels/passes.py`` in one
thread over 256k rows (blocks of ``BLOCK`` points), cumulatively: copying blocks in
(load), + log-densities, + responsibilities (max, exp, logsumexp), + statistics, and
reports each stage's increment in ns per point and per (point, component) term. Times
are CPU time of the process (``time.process_time``: time the process is descheduled
by other processes is not counted), the minimum over rounds of the four runs taken
in turn. JIT compile is excluded (each stage runs once before timing).

With ``--roots`` each checkout runs in a fresh process, alternating
(A B A B ...), so two versions of the kernels can be compared on a shared machine;
the table gives the median over rounds of each root's stage times and the median of
per-round ratios of totals against the first root.
"""

import argparse
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

CASES = {
    # case id -> (peers.py dataset, n, d, K, covariance type)
    "px64-full": ("pixel", 1_000_000, 3, 8, "full"),
    "px64-diag": ("pixel", 1_000_000, 3, 8, "diag"),
    "mid-diag": ("blobs", 200_000, 16, 16, "diag"),
    "mid-full": ("blobs", 200_000, 16, 16, "full"),
}
ROWS = 256_000


def measure(case, rounds):
    """(load, log-density, responsibilities, statistics) ns per point, min over rounds."""
    from numba import njit

    from fastgmm import GaussianMixture
    from fastgmm._jit import BLOCK, float_pair, kernel_array
    from fastgmm.kernels import passes
    from fastgmm.kernels.blas import blas_args
    from fastgmm.kernels.logdensity import block_buffers, block_log_prob, load_block
    from fastgmm.kernels.passes import block_resp, block_stats
    from fastgmm.model.params import from_fitted, kernel_inputs

    # after fastgmm: peers.py puts this checkout first on sys.path (--roots)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from peers import dataset

    kind_name, n, d, n_components, cov = CASES[case]
    X = dataset(kind_name, n, d, n_components)[:ROWS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(n_components, covariance_type=cov, max_iter=2)
        gm.set_params(random_state=0).fit(X[:20_000])
    inputs = kernel_inputs(from_fitted(gm))
    ref = kernel_array(gm.means_)
    pair = float_pair(kernel_array(X))
    mats, lp, vec = block_buffers(d, n_components)
    # checkouts before the BLAS branches left mixture_pass take a dsyrk queue and
    # the BLAS argument buffer (--roots may compare one with the other)
    old_api = hasattr(passes, "pending_buffers")
    if old_api:
        pend, fill = passes.pending_buffers(inputs.kind, d, n_components)
    else:
        pend, fill = np.empty((0, 0, d)), np.zeros(0, np.int64)
    p = d if cov == "full" else 1
    sums = np.zeros(n_components), np.zeros((n_components, d))
    s2 = np.zeros((n_components, p, d))
    n_blocks = X.shape[0] // BLOCK

    @njit
    def run(stage, pair, n_blocks, kind, const, loc, prec, ref, bufs, sums, args):
        mats, lp, vec, pend, fill = bufs
        nk, s1, s2 = sums
        ll = 0.0
        for i in range(n_blocks):
            load_block(pair, i * BLOCK, BLOCK, mats[0])
            if stage >= 1:
                if old_api:
                    block_log_prob(
                        BLOCK, kind, const, loc, prec, mats, lp, vec[1], args
                    )
                else:
                    block_log_prob(BLOCK, kind, const, loc, prec, mats, lp, vec[1])
            if stage >= 2:
                ll += block_resp(lp, BLOCK, vec[0], vec[1], vec[2], vec[3:])
            if stage >= 3:
                if old_api:
                    block_stats(
                        BLOCK, kind, ref, lp, nk, s1, s2, mats, pend, fill, args
                    )
                else:
                    block_stats(BLOCK, kind, ref, lp, nk, s1, s2, mats)
        return ll

    bufs = (mats, lp, vec, pend, fill)
    args = (pair, n_blocks, inputs.kind, inputs.const, inputs.loc, inputs.prec, ref)
    args += (bufs, (*sums, s2), blas_args())
    for stage in range(4):
        run(stage, *args)
    best = [np.inf] * 4
    for _ in range(rounds):
        for stage in range(4):
            t0 = time.process_time()
            run(stage, *args)
            seconds = time.process_time() - t0
            best[stage] = min(best[stage], seconds / (n_blocks * BLOCK) * 1e9)
    return [best[0]] + [best[i] - best[i - 1] for i in range(1, 4)], n_components


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--rounds", type=int, default=25, help="timed rounds per process")
    p.add_argument("--roots", nargs="+", help="checkouts to compare, alternating")
    p.add_argument("--pairs", type=int, default=3, help="alternations with --roots")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        stages, k = measure(args._child, args.rounds)
        import fastgmm

        print(" ".join(f"{v:.4f}" for v in stages), k, fastgmm.__file__)
        return
    roots = args.roots or [str(ROOT)]
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    head = "| case | root | load | log-density | responsibilities | statistics | total"
    print(head + " | per term: log-density, resp., stats | total vs first root |")
    print("|---" * 9 + "|")
    script = str(Path(__file__).resolve())
    for case in args.cases:
        runs = {root: [] for root in roots}
        for _ in range(args.pairs):
            for root in roots:
                env = dict(os.environ, PYTHONPATH=root)
                cmd = [sys.executable, script, "--_child", case]
                cmd += ["--rounds", str(args.rounds)]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if out.returncode:
                    raise SystemExit(out.stderr)
                *vals, k, where = out.stdout.split()
                if not where.startswith(str(Path(root).resolve())):
                    raise SystemExit(f"{root}: imported {where}")
                runs[root].append([float(v) for v in vals])
        first = np.array([sum(r) for r in runs[roots[0]]])
        for root in roots:
            med = np.median(np.array(runs[root]), axis=0)
            ratio = np.median(first / np.array([sum(r) for r in runs[root]]))
            per_term = ", ".join(f"{v / int(k):.3f}" for v in med[1:])
            cells = " | ".join(f"{v:.2f}" for v in med)
            print(f"| {case} | {root} | {cells} | {sum(med):.2f} | {per_term} | "
                  f"{ratio:.2f}x |")  # fmt: skip
    print(f"ns per point (1 thread, CPU time); load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
