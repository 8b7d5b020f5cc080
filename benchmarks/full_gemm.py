#!/usr/bin/env python
"""The FULL path at d >= 16 (kernels.fullgemm) against em_pass, side by side.

Usage::

    python benchmarks/full_gemm.py [--repeats 7] [--sweep] [--out FILE]

One fused EM pass (E-step and statistics) of each kernel on the same data and
parameters, run alternately (old, new, old, new ...); reported: median times, the
median of the per-pair ratios old/new (> 1: the new path is faster) with their
min-max, the first call of each (compile, or load from the on-disk cache) apart,
and the relative difference of the two log-likelihood sums.

Cases: benchmarks/peers.py's mid-full (200k x 16, K=16) and d64-full (50k x 64,
K=16), with its starting parameters (a short scikit-learn fit on a subsample),
float64 and float32. ``--sweep`` adds blobs at d = 8 ... 64 (100k rows, K=16) for
the cut-off (fullgemm.GEMM_MIN_D; below it em_pass runs its SIMD loops). Both
kernels run on every thread (``threads(-1)``: BLAS pinned to one thread).

Since the BLAS branches left em_pass (its FULL scatter is now SIMD loops at every d,
to keep the general pass's compile short), the old column at d >= 16 is that
fallback, not the dtrmm/dsyrk pass the published ratios (README, measured before)
were taken against; em_pass no longer serves FULL EM from d = 16 (engine/em.py sends
it here).
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pass_ab  # noqa: E402
from compare import start_params  # noqa: E402
from peers import CASES, dataset  # noqa: E402

from fastgmm._jit import chunk_rows  # noqa: E402
from fastgmm.kernels.fullgemm import full_em_pass  # noqa: E402
from fastgmm.kernels.passes import em_pass  # noqa: E402
from fastgmm.model import covariance  # noqa: E402
from fastgmm.model.params import Params, kernel_inputs  # noqa: E402


def inputs(weights, means, covs):
    model = covariance.get("full")
    params = Params(model, weights, means, covs, model.prec_chol(covs))
    return (*kernel_inputs(params).astuple(), np.ascontiguousarray(means))


def peers_case(case):
    """(X float64, kernel inputs) of a benchmarks/peers.py case from its start."""
    kind, n, d, K, _, _ = CASES[case]
    X = dataset(kind, n, d, K)
    start = start_params(X, K, "full", np.float64)
    covs = np.linalg.inv(start["precisions_init"])
    return X, inputs(start["weights_init"], start["means_init"], covs)


def sweep_case(d, n=100_000, K=16):
    """(X, kernel inputs): blobs as peers.py's, parameters the truth perturbed."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(K, d))
    labels = rng.integers(0, K, n)
    scale = rng.uniform(0.5, 1.5, size=(K, d))
    X = np.ascontiguousarray(centres[labels] + rng.normal(size=(n, d)) * scale[labels])
    covs = np.array([np.diag(s**2) for s in scale]) * 1.1
    return X, inputs(np.full(K, 1.0 / K), centres + 0.1, covs)


def run_case(name, X, args, repeats):
    kind, const, loc, prec, ref = args
    chunk = chunk_rows(X.shape[1], const.shape[0])
    sw = np.empty(0)
    old = lambda: em_pass(X, sw, kind, const, loc, prec, ref, chunk)  # noqa: E731
    new = lambda: full_em_pass(X, sw, kind, const, loc, prec, ref, chunk)  # noqa: E731
    return pass_ab.row(name, old, new, repeats)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--sweep", action="store_true")
    p.add_argument("--out")
    args = p.parse_args()
    load = os.getloadavg()
    lines = [
        f"{args.repeats} alternating pairs, load average at start {load[0]:.1f} "
        f"(2 cores)",
        "",
        "| case | em_pass ms | fullgemm ms | ratio (median, min-max of pairs) "
        "| first call s (old / new) | rel. diff of loglik |",
        "|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for case in ("mid-full", "d64-full"):
        X, ins = peers_case(case)
        for dtype in (np.float64, np.float32):
            Xd = np.ascontiguousarray(X, dtype)
            name = f"{case} {X.shape[0]}x{X.shape[1]} {np.dtype(dtype).name}"
            lines.append(run_case(name, Xd, ins, args.repeats))
    if args.sweep:
        for d in (8, 12, 16, 24, 32, 48, 64):
            X, ins = sweep_case(d)
            name = f"sweep {X.shape[0]}x{d} K=16 float64"
            lines.append(run_case(name, X, ins, args.repeats))
    lines.append("")
    lines.append(f"load average at end {os.getloadavg()[0]:.1f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
