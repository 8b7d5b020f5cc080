#!/usr/bin/env python
"""Top-C component selection (``top_components``, Kaldi's gselect) at the UBM shape
of issue 13: speed per iteration and what the approximation costs in likelihood.

Usage::

    python benchmarks/gselect.py [--n 200000] [--tops 5 10 20 50] [--iters 20]
                                 [--repeats 3] [--sk-iters 3] [--refresh 2 5 10 0]
                                 [--converge 10 20] [--out FILE]

Data: ``peers.py``'s ``ubm-diag`` / ``ubm32-diag`` (200k x 40 blobs, K=256, diag),
every system starting from the same parameters (``compare.start_params``).

1. *Passes*: one exact pass (``diaggemm.diag_em_pass``, what every exact iteration
   and every selection pass costs) against one restricted pass over the top C
   (``gselect.restricted_pass``), alternately (``pass_ab``): medians and the median
   of the per-pair ratios.
2. *Fits*: whole fits with ``tol=0`` and ``max_iter=m`` of fastgmm exact, fastgmm
   with ``top_components=C`` (its schedule: a selection pass first, every
   ``REFRESH`` iterations and last) and scikit-learn, in rounds (each system once
   per round, in turn); per iteration = (t(m) - t(1)) / (m - 1) per round, median
   over rounds (scikit-learn: a fit of ``--sk-iters`` iterations, then one
   ``_e_step`` + ``_m_step`` timed, what its loop runs per iteration: t(m) - t(1)
   of its whole fits scattered by seconds on this loaded machine, its k-means
   and final E-step included; its path is the exact one's); the ratio to scikit-learn of the same dtype is the median of the
   per-round ratios. *mean ll* is the exact mean log-likelihood (``score``) of the
   final parameters; *gap* is it minus the exact fastgmm fit's (negative: worse).
3. *Refresh*: C=10 float32 fits with other ``REFRESH`` values (0: never after the
   first), one run each: time per iteration and the gap.
4. *Converged fits*: float32, ``tol=--converge-tol`` (the start is already close
   to an optimum: the default 1e-3 stops exact EM after a few iterations) and
   ``max_iter=100``, exact and with ``--converge`` values of C, one run each:
   iterations, seconds, exact mean ll.

JIT compile and first calls are excluded (every system runs once before timing)
and reported apart. Threads: every core (BLAS pinned to one).
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pass_ab  # noqa: E402
from compare import start_params  # noqa: E402
from peers import dataset  # noqa: E402

from fastgmm import GaussianMixture  # noqa: E402
from fastgmm._jit import chunk_rows, kernel_array  # noqa: E402
from fastgmm._runtime import threads  # noqa: E402
from fastgmm.engine import gselect  # noqa: E402
from fastgmm.kernels.diaggemm import TRUNCATE_LOG, diag_em_pass  # noqa: E402
from fastgmm.kernels.gselect import restricted_pass, select_pass  # noqa: E402
from fastgmm.model import covariance  # noqa: E402
from fastgmm.model.params import Params, kernel_inputs  # noqa: E402

D, K = 40, 256


def params_of(start):
    model = covariance.get("diag")
    prec_chol = np.sqrt(np.asarray(start["precisions_init"], np.float64))
    return Params(
        model,
        np.asarray(start["weights_init"], np.float64),
        np.asarray(start["means_init"], np.float64),
        model.covariances_from_prec_chol(prec_chol),
        prec_chol,
    )


def pass_rows(X, start, tops, repeats):
    """Markdown rows: exact pass against restricted passes over the top C."""
    kind, const, loc, prec = kernel_inputs(params_of(start)).astuple()
    ref, sw = kernel_array(loc), np.empty(0)
    chunk = chunk_rows(X.shape[1], K)
    loc_x = kernel_array(loc, X.dtype)
    prec_x = kernel_array(prec[:, 0, :], X.dtype)
    cut = TRUNCATE_LOG + np.log(K) if X.dtype == np.float32 else np.inf
    rows = []
    for top in tops:
        sel = np.full((X.shape[0], top), -1, np.int32)  # no selection yet
        with threads(-1):
            select_pass(X, sw, kind, const, loc, prec, ref, chunk, sel)

        def exact():
            return diag_em_pass(X, sw, kind, const, loc, prec, ref, chunk)

        def restricted(sel=sel):
            return restricted_pass(X, sw, sel, const, loc_x, prec_x, ref, cut, chunk)

        name = f"{X.dtype.name} C={top}"
        rows.append(pass_ab.row(name, exact, restricted, repeats))
    return rows


def fit(X, start, m, system, top=None):
    """(seconds, estimator) of one fit of m iterations, tol=0."""
    kw = dict(covariance_type="diag", tol=0.0, max_iter=m, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if system == "sklearn":
            from sklearn.mixture import GaussianMixture as SkGMM

            # every start given: its init_params only draws rows (its default
            # runs k-means first, whose time would swamp t(m) - t(1))
            est = SkGMM(K, init_params="random_from_data", **kw)
        else:
            est = GaussianMixture(K, top_components=top, **kw)
        t0 = time.perf_counter()
        est.fit(X)
        return time.perf_counter() - t0, est


def exact_score(est, X64):
    gm = GaussianMixture(K, covariance_type="diag")
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        setattr(gm, name, np.asarray(getattr(est, name), np.float64))
    gm.precisions_ = gm.precisions_cholesky_**2
    gm.converged_, gm.n_iter_, gm.lower_bound_ = True, 1, 0.0
    gm.lower_bounds_, gm.n_features_in_ = [], X64.shape[1]
    return float(gm.score(X64))


def fit_rows(X, X64, start, tops, m, repeats, sk_iters):
    """Markdown rows of the fits (scikit-learn, unless sk_iters is 0, runs sk_iters
    iterations: its per-iteration time only; its path is the exact one's)."""
    systems = [("fastgmm exact", "fastgmm", None, m)]
    systems += [(f"fastgmm C={c}", "fastgmm", c, m) for c in tops]
    if sk_iters:
        systems.append(("scikit-learn", "sklearn", None, sk_iters))
    first = {name: fit(X, start, 2, kind, top)[0] for name, kind, top, _ in systems}
    net = {name: [] for name, *_ in systems}
    scores = {}
    for _ in range(repeats):
        for name, kind, top, iters in systems:
            if kind == "sklearn":  # its EM iteration itself (fit's own overheads
                _, est = fit(X, start, iters, kind, top)  # vary by seconds here)
                t0 = time.perf_counter()
                _, log_resp = est._e_step(X)
                est._m_step(X, log_resp)
                net[name].append(time.perf_counter() - t0)
                scores[name] = exact_score(est, X64)
                continue
            t1, _ = fit(X, start, 1, kind, top)
            tm, est = fit(X, start, iters, kind, top)
            net[name].append((tm - t1) / (iters - 1))
            scores[name] = exact_score(est, X64)
    base = scores["fastgmm exact"]
    sk = np.array(net.get("scikit-learn", [np.nan] * repeats))
    rows = []
    for name, _, _, iters in systems:
        t = np.array(net[name])
        gap = f"{scores[name] - base:+.1e}" if iters == m else "-"
        row = (
            f"| {X.dtype.name} | {name} | {iters} | {np.median(t) * 1e3:.0f} "
            f"| {np.median(sk / t):.1f} | {scores[name]:.6f} "
            f"| {gap} | {first[name]:.1f} |"
        )
        print(row, flush=True)
        rows.append(row)
    return rows


def refresh_rows(X, X64, start, refreshes, m, base):
    rows = []
    saved = gselect.REFRESH
    try:
        for r in refreshes:
            gselect.REFRESH = r if r > 0 else m + 1
            t1, _ = fit(X, start, 1, "fastgmm", 10)
            tm, est = fit(X, start, m, "fastgmm", 10)
            score = exact_score(est, X64)
            row = (
                f"| {X.dtype.name} | C=10, REFRESH={r if r > 0 else 'never'} "
                f"| {(tm - t1) / (m - 1) * 1e3:.0f} | {score:.6f} "
                f"| {score - base:+.1e} |"
            )
            print(row, flush=True)
            rows.append(row)
    finally:
        gselect.REFRESH = saved
    return rows


def converge_rows(X, X64, start, tops, tol):
    """Whole fits with ``tol`` and max_iter=100, one run each."""
    rows = []
    for top in (None, *tops):
        kw = dict(covariance_type="diag", top_components=top, tol=tol, **start)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = GaussianMixture(K, **kw)
            t0 = time.perf_counter()
            est.fit(X)
            seconds = time.perf_counter() - t0
        row = (
            f"| {X.dtype.name} | {'exact' if top is None else f'C={top}'} "
            f"| {est.n_iter_} | {est.converged_} | {seconds:.1f} "
            f"| {exact_score(est, X64):.6f} |"
        )
        print(row, flush=True)
        rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--tops", type=int, nargs="+", default=[5, 10, 20, 50])
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--refresh", type=int, nargs="*", default=[2, 5, 10, 0])
    ap.add_argument("--sk-iters", type=int, default=3, help="0: no scikit-learn")
    ap.add_argument("--converge", type=int, nargs="*", default=[10, 20])
    ap.add_argument("--converge-tol", type=float, default=1e-5)
    ap.add_argument("--out")
    args = ap.parse_args()
    X64 = dataset("blobs", args.n, D, K)
    lines = [f"n={args.n}, d={D}, K={K}, m={args.iters}, repeats={args.repeats}"]
    lines += ["", "### Passes", ""]
    lines += ["| case | exact ms | restricted ms | ratio | first s | rel. ll diff |"]
    lines += ["|---|---|---|---|---|---|"]
    fits = ["", "### Fits", ""]
    fits += [
        "| dtype | system | iters | ms / iter | x scikit-learn | mean ll | gap "
        "| first s |"
    ]
    fits += ["|---|---|---|---|---|---|---|---|"]
    conv = ["", f"### Converged fits (tol={args.converge_tol:g})", ""]
    conv += [
        "| dtype | system | n_iter | converged | s | mean ll |",
        "|---|---|---|---|---|---|",
    ]
    refresh = ["", "### Refresh", ""]
    refresh += [
        "| dtype | system | ms / iter | mean ll | gap |",
        "|---|---|---|---|---|",
    ]
    for dtype in (np.float32, np.float64):
        start = start_params(X64, K, "diag", dtype)
        X = np.ascontiguousarray(X64, dtype=dtype)
        lines += pass_rows(X, start, args.tops, 2 * args.repeats + 1)
        fits += fit_rows(
            X, X64, start, args.tops, args.iters, args.repeats, args.sk_iters
        )
        if dtype == np.float32 and args.refresh:
            _, est = fit(X, start, args.iters, "fastgmm")
            base = exact_score(est, X64)
            refresh += refresh_rows(X, X64, start, args.refresh, args.iters, base)
        if dtype == np.float32 and args.converge:
            conv += converge_rows(X, X64, start, args.converge, args.converge_tol)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    lines[0] += f", load average at the end {load} (2 cores)"
    text = "\n".join(lines + fits + refresh + conv) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
