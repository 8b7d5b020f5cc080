#!/usr/bin/env python
"""One block's log-densities: another checkout's kernel against this one's, in one
process.

Usage::

    FASTGMM_CACHE=0 python benchmarks/log_density_ab.py OTHER_ROOT [--shapes 3x8 16x16]
                                                        [--kind diag|full] [--rounds 11]

``kernels/logdensity.py`` of OTHER_ROOT (a fastgmm checkout, e.g. ``/work/main``) is
loaded as a second module beside this checkout's; both ``block_log_prob`` run on the
same block (BLOCK points, random parameters), alternating, one thread. Times are CPU
time (``time.process_time``), per (point, component) term; the ratio is the median of
per-round ratios, other / this (> 1: this checkout faster). Compile is excluded (one
call of each before timing). In one process the two kernels see the same machine
state, which alternating processes on a shared machine do not. Also prints the largest
relative difference of the two results.
"""

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load_other(root):
    path = Path(root) / "fastgmm" / "kernels" / "logdensity.py"
    name = "fastgmm.kernels._logdensity_other"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def compare(other, this, d, n_components, kind, rounds):
    from numba import njit

    from fastgmm.kernels import DIAG, FULL
    from fastgmm.kernels.blas import blas_args

    code = {"diag": DIAG, "full": FULL}[kind]

    def runner(module):
        block_log_prob = module.block_log_prob

        @njit
        def run(reps, block, const, loc, prec, mats, lp, maha, args):
            for _ in range(reps):
                block_log_prob(block, code, const, loc, prec, mats, lp, maha, args)

        return run

    rng = np.random.default_rng(0)
    mats, lp, vec = this.block_buffers(d, n_components)
    block = mats.shape[2]
    mats[0] = rng.normal(size=(d, block))
    if kind == "diag":
        prec = rng.uniform(0.5, 2, (n_components, 1, d))
    else:
        prec = np.triu(rng.uniform(0.5, 2, (n_components, d, d)))
    inputs = [rng.normal(size=n_components), rng.normal(size=(n_components, d)), prec]
    for a in inputs:
        a.setflags(write=False)
    args = (*inputs, mats, lp, vec[1], blas_args())
    runs = {"other": runner(other), "this": runner(this)}
    out = {}
    for name, run in runs.items():
        run(1, block, *args)
        out[name] = lp.copy()
    diff = np.max(np.abs(out["other"] - out["this"]) / np.abs(out["this"]))
    reps = max(1, 300_000 // n_components)
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            t0 = time.process_time()
            run(reps, block, *args)
            times[name].append(time.process_time() - t0)
    t_other, t_this = np.array(times["other"]), np.array(times["this"])
    per_term = 1e9 / (reps * block * n_components)
    print(
        f"| {kind} | {d} | {n_components} | {np.median(t_other) * per_term:.3f} | "
        f"{np.median(t_this) * per_term:.3f} | {np.median(t_other / t_this):.2f}x | "
        f"{diff:.1e} |"
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("other", help="the other checkout's root")
    p.add_argument("--shapes", nargs="+", default=["3x8", "5x8", "16x16", "40x16"])
    p.add_argument("--kind", choices=["diag", "full"], default="diag")
    p.add_argument("--rounds", type=int, default=11)
    args = p.parse_args(argv)
    import os

    from fastgmm.kernels import logdensity as this

    other = load_other(args.other)
    print(f"other: {args.other}; this: {ROOT}; load {os.getloadavg()[0]:.2f}")
    print(
        "| kind | d | K | other ns/term | this ns/term | other / this | max rel diff |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for shape in args.shapes:
        d, k = (int(v) for v in shape.split("x"))
        compare(other, this, d, k, args.kind, args.rounds)


if __name__ == "__main__":
    main()
