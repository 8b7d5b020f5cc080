#!/usr/bin/env python
"""The large-K diagonal path (kernels.diaggemm) against the term-by-term em_pass.

Usage::

    python benchmarks/large_k.py [--n 200000] [--repeats 7] [--sweep] [--out FILE]

One fused EM pass (E-step and statistics) of each kernel on the same data and
parameters, run alternately (old, new, old, new ...); reported: median times and
the median of the per-pair ratios old/new (> 1: the GEMM path is faster). The first
call of each kernel (compile, or load from the on-disk cache) is reported apart.

Cases: the UBM shape of issue 13 (200k x 40, K=256; components overlap, so most
responsibilities are non-zero) and the same shape with well-separated components
(most responsibilities exactly zero: the sparse statistics), float64 and float32.
``--sweep`` adds d x K shapes at n/4 rows, for the cut-off (diaggemm.use_gemm).
Both kernels run on every thread (``threads(-1)``: BLAS pinned to one thread).
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

from fastgmm._jit import chunk_rows, kernel_array  # noqa: E402
from fastgmm.kernels import DIAG  # noqa: E402
from fastgmm.kernels.diaggemm import diag_em_pass  # noqa: E402
from fastgmm.kernels.passes import em_pass  # noqa: E402


def problem(n, d, K, spread, seed=0):
    """(X float64, const, loc, prec): blobs with per-feature scales 0.5-1.5 around
    centres of scale ``spread``; the parameters are the truth, slightly perturbed."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(K, d))
    labels = rng.integers(0, K, n)
    scale = rng.uniform(0.5, 1.5, size=(K, d))
    X = np.ascontiguousarray(centres[labels] + rng.normal(size=(n, d)) * scale[labels])
    means = centres + 0.1 * rng.normal(size=(K, d))
    prec = 1.0 / (scale * 1.1)
    log_det = np.log(prec).sum(1)
    const = np.log(np.full(K, 1.0 / K)) + log_det - 0.5 * d * np.log(2 * np.pi)
    return X, kernel_array(const), kernel_array(means), kernel_array(prec[:, None, :])


def run_case(name, X, const, loc, prec, repeats):
    chunk = chunk_rows(X.shape[1], const.shape[0])
    sw = np.empty(0)
    old = lambda: em_pass(X, sw, DIAG, const, loc, prec, loc, chunk)  # noqa: E731
    new = lambda: diag_em_pass(X, sw, DIAG, const, loc, prec, loc, chunk)  # noqa: E731
    return pass_ab.row(name, old, new, repeats)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--sweep", action="store_true")
    p.add_argument("--out")
    args = p.parse_args()
    load = os.getloadavg()
    lines = [
        f"n={args.n}, {args.repeats} alternating pairs, load average at start "
        f"{load[0]:.1f} (2 cores)",
        "",
        "| case | em_pass ms | diaggemm ms | ratio (median, min-max of pairs) "
        "| first call s (old / new) | rel. diff of loglik |",
        "|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    cases = [(40, 256, 1.5, "ubm"), (40, 256, 6.0, "separated")]
    if args.sweep:
        cases += [(d, K, 1.5, "sweep") for d in (8, 16, 40) for K in (32, 64, 128)]
    for d, K, spread, label in cases:
        n = args.n if label != "sweep" else args.n // 4
        X, const, loc, prec = problem(n, d, K, spread)
        for dtype in (np.float64, np.float32):
            Xd = np.ascontiguousarray(X, dtype)
            name = f"{label} {n}x{d} K={K} {np.dtype(dtype).name}"
            lines.append(run_case(name, Xd, const, loc, prec, args.repeats))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
