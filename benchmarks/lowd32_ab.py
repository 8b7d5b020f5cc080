#!/usr/bin/env python
"""The float32 small-d pass (kernels.lowd32) against em_pass, side by side.

Usage::

    python benchmarks/lowd32_ab.py [--repeats 9] [--sweep] [--cpu] [--out FILE]

One fused EM pass (E-step and statistics) of each kernel on the same float32 data
and parameters, run alternately (old, new, old, new ...); reported: median times,
the median of the per-pair ratios old/new (> 1: the float32 pass is faster) with
their min-max, the first call of each (compile, or load from the on-disk cache)
apart, and the relative difference of the two log-likelihood sums (em_pass computes
in float64).

Cases: benchmarks/peers.py's px32-full and px32-diag (1M x 3, K=8, float32), with
its starting parameters (a short scikit-learn fit on a subsample). ``--sweep`` adds
blobs at d = 2 ... 16 (200k rows, K=8, full and diag) for the cut-off
(lowd32.MAX_D). Both kernels run on every thread (``threads(-1)``), or with
``--cpu`` on one thread timed in process CPU time (steadier on a machine whose other
processes hold the cores: wall times there come in scheduler slices).
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

import pass_ab  # noqa: E402
from compare import start_params  # noqa: E402
from peers import CASES, dataset  # noqa: E402

from fastgmm._jit import chunk_rows  # noqa: E402
from fastgmm._runtime import threads  # noqa: E402
from fastgmm.kernels.lowd32 import lowd32_em_pass  # noqa: E402
from fastgmm.kernels.passes import em_pass  # noqa: E402
from fastgmm.model import covariance  # noqa: E402
from fastgmm.model.params import Params, kernel_inputs  # noqa: E402


def inputs(cov_type, weights, means, covs):
    model = covariance.get(cov_type)
    params = Params(model, weights, means, covs, model.prec_chol(covs))
    return (*kernel_inputs(params).astuple(), np.ascontiguousarray(means))


def peers_case(case):
    """(X float32, kernel inputs) of a benchmarks/peers.py case from its start."""
    kind, n, d, K, dtype, cov_type = CASES[case]
    X = np.ascontiguousarray(dataset(kind, n, d, K), dtype)
    start = start_params(X, K, cov_type, np.float64)
    prec = start["precisions_init"]
    covs = np.linalg.inv(prec) if cov_type == "full" else 1.0 / prec
    return X, inputs(cov_type, start["weights_init"], start["means_init"], covs)


def sweep_case(d, cov_type, n=200_000, K=8):
    """(X float32, kernel inputs): blobs, parameters the truth perturbed."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(K, d))
    labels = rng.integers(0, K, n)
    scale = rng.uniform(0.5, 1.5, size=(K, d))
    X = centres[labels] + rng.normal(size=(n, d)) * scale[labels]
    X = np.ascontiguousarray(X, np.float32)
    var = 1.1 * scale**2
    covs = np.array([np.diag(v) for v in var]) if cov_type == "full" else var
    return X, inputs(cov_type, np.full(K, 1.0 / K), centres + 0.1, covs)


def cpu_row(name, old, new, repeats):
    """pass_ab.row on one thread, timed in process CPU time."""
    with threads(1):
        first = []
        for fn in (old, new):
            t0 = time.process_time()
            fn()
            first.append(time.process_time() - t0)
        a, b = old(), new()
        t_old, t_new = [], []
        for _ in range(repeats):
            for fn, ts in ((old, t_old), (new, t_new)):
                t0 = time.process_time()
                fn()
                ts.append(time.process_time() - t0)
    t_old, t_new = np.array(t_old), np.array(t_new)
    ratios = t_old / t_new
    text = (
        f"| {name} | {np.median(t_old) * 1e3:.2f} | {np.median(t_new) * 1e3:.2f} "
        f"| {np.median(ratios):.2f} ({ratios.min():.2f}-{ratios.max():.2f}) "
        f"| {first[0]:.1f} / {first[1]:.1f} | {abs(a[0] - b[0]) / abs(a[0]):.1e} |"
    )
    print(text, flush=True)
    return text


def run_case(name, X, args, repeats, cpu=False):
    kind, const, loc, prec, ref = args
    chunk = chunk_rows(X.shape[1], const.shape[0])
    sw = np.empty(0)
    old = lambda: em_pass(X, sw, kind, const, loc, prec, ref, chunk)  # noqa: E731
    new = lambda: lowd32_em_pass(X, sw, kind, const, loc, prec, ref, chunk)  # noqa: E731
    return (cpu_row if cpu else pass_ab.row)(name, old, new, repeats)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--sweep", action="store_true")
    p.add_argument("--cpu", action="store_true", help="one thread, CPU time")
    p.add_argument("--out")
    args = p.parse_args()
    load = os.getloadavg()
    lines = [
        f"{args.repeats} alternating pairs, load average at start {load[0]:.1f} "
        f"(2 cores); "
        + ("one thread, process CPU time" if args.cpu else "every thread, wall time"),
        "",
        "| case | em_pass ms | lowd32 ms | ratio (median, min-max of pairs) "
        "| first call s (old / new) | rel. diff of loglik |",
        "|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for case in ("px32-full", "px32-diag"):
        X, ins = peers_case(case)
        name = f"{case} {X.shape[0]}x{X.shape[1]} K={ins[1].shape[0]}"
        lines.append(run_case(name, X, ins, args.repeats, args.cpu))
    if args.sweep:
        for cov_type in ("full", "diag"):
            for d in (2, 3, 4, 6, 8, 12, 16):
                X, ins = sweep_case(d, cov_type)
                name = f"sweep {X.shape[0]}x{d} K=8 {cov_type}"
                lines.append(run_case(name, X, ins, args.repeats, args.cpu))
    lines.append("")
    lines.append(f"load average at end {os.getloadavg()[0]:.1f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
