#!/usr/bin/env python
"""One large-K diagonal pass (kernels.diaggemm) of two checkouts, side by side.

Usage::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/large_k_ab.py --roots OLD NEW [--rounds 7] [--n 200000]
                                        [--dtype float32] [--out FILE]

Each round runs every checkout in a fresh process, in turn (A B A B ...): the process
builds the UBM problem of ``large_k.py`` (200k x 40, K=256, centres of scale 1.5),
calls ``diag_em_pass`` once untimed (compile, or load from that checkout's on-disk
cache; reported apart), then times ``--reps`` passes on one thread (CPU time,
``time.process_time``: robust to other processes) and on two threads (wall time), and
reports the median of each. The table gives the medians over rounds and the median of
the per-round ratios against the first checkout (> 1: faster than it), and the
relative difference of the log-likelihood sums.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def child(n, dtype, reps):
    from fastgmm._jit import chunk_rows  # first: the checkout on PYTHONPATH
    from fastgmm._runtime import threads
    from fastgmm.kernels import DIAG
    from fastgmm.kernels.diaggemm import diag_em_pass

    sys.path.insert(0, str(HERE))
    from large_k import problem

    X, const, loc, prec = problem(n, 40, 256, 1.5)
    X = np.ascontiguousarray(X, dtype)
    chunk = chunk_rows(X.shape[1], const.shape[0])
    sw = np.empty(0)

    def one():
        return diag_em_pass(X, sw, DIAG, const, loc, prec, loc, chunk)

    out = {}
    with threads(-1):
        t0 = time.perf_counter()
        out["ll"] = float(one()[0])
        out["file"] = sys.modules["fastgmm"].__file__
        out["first"] = time.perf_counter() - t0
    for n_jobs, clock, key in ((1, time.process_time, "cpu1"), (-1, None, "wall2")):
        clock = clock or time.perf_counter
        with threads(n_jobs):
            one()
            times = []
            for _ in range(reps):
                t0 = clock()
                one()
                times.append(clock() - t0)
        out[key] = float(np.median(times))
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--roots", nargs="+")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--out")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.n, np.dtype(args.dtype), args.reps)
    if not args.roots:
        p.error("--roots is required")
    runs = {root: [] for root in args.roots}
    load = os.getloadavg()[0]
    for _ in range(args.rounds):
        for root in args.roots:
            env = {**os.environ, "PYTHONPATH": root}
            cmd = [sys.executable, __file__, "--child", "--n", str(args.n)]
            cmd += ["--dtype", args.dtype, "--reps", str(args.reps)]
            res = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if res.returncode:
                sys.exit(f"{root}: {res.stderr}")
            runs[root].append(json.loads(res.stdout.strip().splitlines()[-1]))
    base = runs[args.roots[0]]
    lines = [
        f"{args.n} x 40, K=256, {args.dtype}; {args.rounds} rounds of alternating "
        f"processes, {args.reps} passes each; load average at start {load:.1f}, at "
        f"end {os.getloadavg()[0]:.1f} (2 cores)",
        "",
        "| checkout | 1 thread CPU ms | ratio | 2 threads wall ms | ratio "
        "| first call s | rel. diff of loglik |",
        "|---|---|---|---|---|---|---|",
    ]
    for root in args.roots:
        r = runs[root]
        cells = [root]
        for key in ("cpu1", "wall2"):
            t = np.array([x[key] for x in r])
            ratio = np.array([b[key] for b in base]) / t
            cells += [
                f"{np.median(t) * 1e3:.1f}",
                f"{np.median(ratio):.2f} ({ratio.min():.2f}-{ratio.max():.2f})",
            ]
        cells.append(f"{np.median([x['first'] for x in r]):.1f}")
        cells.append(f"{abs(r[0]['ll'] - base[0]['ll']) / abs(base[0]['ll']):.1e}")
        lines.append("| " + " | ".join(cells) + " |")
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
