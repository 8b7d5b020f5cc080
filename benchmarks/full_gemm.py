#!/usr/bin/env python
"""The FULL path at d >= 16 (kernels.fullgemm) against em_pass, side by side.

Usage::

    python benchmarks/full_gemm.py [--repeats 7] [--sweep] [--baseline REV] [--score]
                                   [--out FILE]

One fused EM pass (E-step and statistics) of each kernel on the same data and
parameters, run alternately (old, new, old, new ...); reported: median times, the
median of the per-pair ratios old/new (> 1: the new path is faster) with their
min-max, the first call of each (compile, or load from the on-disk cache) apart,
and the relative difference of the two log-likelihood sums.

``--threads 1`` runs both on one thread and times CPU time (a loaded machine).
``--baseline REV``: the old column is full_em_pass of the package at git revision
REV of this checkout (exported with ``git archive`` to a temporary folder and
imported as ``fastgmm_baseline``, compiled there), to measure a change of the
fullgemm path itself. ``--score``: rows of the scoring pass too (log p(x) and
responsibilities: passes.score_pass against fullgemm.full_score_pass; the
log-likelihood column then compares the sums of log p(x)).

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
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pass_ab  # noqa: E402
from compare import start_params  # noqa: E402
from peers import CASES, dataset  # noqa: E402

from fastgmm._jit import chunk_rows  # noqa: E402
from fastgmm.kernels.fullgemm import full_em_pass, full_score_pass  # noqa: E402
from fastgmm.kernels.passes import em_pass, score_pass  # noqa: E402
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


def baseline_pass(rev):
    """full_em_pass of the package at git revision ``rev`` (see module docstring)."""
    tar = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "fastgmm"],
        capture_output=True,
        check=True,
    ).stdout
    folder = Path(tempfile.mkdtemp(prefix="fastgmm-baseline-"))
    tarfile.open(fileobj=io.BytesIO(tar)).extractall(folder, filter="data")
    (folder / "fastgmm").rename(folder / "fastgmm_baseline")
    sys.path.insert(0, str(folder))
    from fastgmm_baseline.kernels.fullgemm import full_em_pass as baseline

    return baseline


def run_case(name, X, args, repeats, old_pass=em_pass, n_jobs=-1):
    kind, const, loc, prec, ref = args
    chunk = chunk_rows(X.shape[1], const.shape[0])
    sw = np.empty(0)
    old = lambda: old_pass(X, sw, kind, const, loc, prec, ref, chunk)  # noqa: E731
    new = lambda: full_em_pass(X, sw, kind, const, loc, prec, ref, chunk)  # noqa: E731
    return pass_ab.row(name, old, new, repeats, n_jobs)


def score_case(name, X, args, repeats, n_jobs=-1):
    """The scoring passes (log p(x) and responsibilities), as (loglik sum,)."""
    kind, const, loc, prec, _ = args
    chunk = chunk_rows(X.shape[1], const.shape[0])
    lse, resp = np.empty(len(X), X.dtype), np.empty((len(X), len(const)), X.dtype)
    labels = np.empty(0, np.int64)

    def scorer(fn):
        def run():
            fn(X, kind, const, loc, prec, chunk, lse, resp, labels)
            return (float(np.sum(lse, dtype=np.float64)),)

        return run

    old, new = scorer(score_pass), scorer(full_score_pass)
    return pass_ab.row(name, old, new, repeats, n_jobs)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--sweep", action="store_true")
    p.add_argument("--baseline", metavar="REV", help="old column: fullgemm at REV")
    p.add_argument("--score", action="store_true", help="the scoring passes too")
    p.add_argument(
        "--threads", type=int, default=-1, help="1: one thread, CPU time (loaded box)"
    )
    p.add_argument("--out")
    args = p.parse_args()
    old_pass, old_name = em_pass, "em_pass"
    if args.baseline:
        old_pass, old_name = (
            baseline_pass(args.baseline),
            f"fullgemm at {args.baseline}",
        )
    load = os.getloadavg()
    how = "1 thread, CPU time" if args.threads == 1 else f"threads {args.threads}"
    lines = [
        f"{args.repeats} alternating pairs ({how}), load average at start "
        f"{load[0]:.1f} (2 cores)",
        "",
        f"| case | {old_name} ms | fullgemm ms | ratio (median, min-max of pairs) "
        "| first call s (old / new) | rel. diff of loglik |",
        "|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for case in ("mid-full", "d64-full"):
        X, ins = peers_case(case)
        for dtype in (np.float64, np.float32):
            Xd = np.ascontiguousarray(X, dtype)
            name = f"{case} {X.shape[0]}x{X.shape[1]} {np.dtype(dtype).name}"
            lines.append(run_case(name, Xd, ins, args.repeats, old_pass, args.threads))
        if args.score:
            name = f"score {case} {X.shape[0]}x{X.shape[1]} float64 (score_pass)"
            lines.append(score_case(name, X, ins, args.repeats, args.threads))
    if args.sweep:
        for d in (8, 12, 16, 24, 32, 48, 64):
            X, ins = sweep_case(d)
            name = f"sweep {X.shape[0]}x{d} K=16 float64"
            lines.append(run_case(name, X, ins, args.repeats, old_pass, args.threads))
    lines.append("")
    lines.append(f"load average at end {os.getloadavg()[0]:.1f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
