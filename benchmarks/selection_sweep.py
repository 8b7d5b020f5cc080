#!/usr/bin/env python
"""Time ``fastgmm.selection.select`` against fitting every candidate cold.

Usage::

    python benchmarks/selection_sweep.py [--n 20000] [--d 4] [--k-max 8]
                                         [--repeats 3] [--no-sklearn] [--parallel]

The data are ``--d``-dimensional, 5 Gaussian clusters. The grid is K = 1..k-max x
{full, diag, tied, spherical}, one k-means restart, random_state=0. Three ways to get
the same table (BIC, AIC, ICL per candidate):

- ``select``: one sweep (shared validation, scatter pass and k-means, one scoring pass
  per candidate);
- ``fastgmm cold``: per candidate ``GaussianMixture(...).fit(X)``, then ``bic(X)``,
  ``aic(X)`` and ``predict_proba(X)`` (for ICL); also timed without ``predict_proba``
  (BIC/AIC only, the README's loop);
- ``sklearn cold``: the same with ``sklearn.mixture.GaussianMixture``.

``select`` runs with the estimator's settings (k-means start, tol 1e-3, 100
iterations) so all ways fit the same models, one K at a time (``parallel="kernels"``);
``--parallel`` adds ``select(parallel="candidates")`` (K values in threads, one kernel
thread each), the comparison behind ``select``'s ``parallel="auto"`` threshold.

The JIT is warmed first; each way is timed ``--repeats`` times in alternation; the
median and the best time are reported, with their ratios to ``select``.
"""

import argparse
import statistics
import time
import warnings

import numpy as np

COV_TYPES = ("full", "diag", "tied", "spherical")


def make_data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(5, d))
    labels = rng.integers(0, 5, size=n)
    return centres[labels] + rng.normal(size=(n, d)) * rng.uniform(0.5, 1.5, size=d)


#: the estimator's defaults, so that select and the cold loops fit the same models
SAME_AS_COLD = {"init_params": "kmeans", "tol": 1e-3, "max_iter": 100}


def sweep_select(X, ks, parallel="kernels"):
    from fastgmm.selection import select

    select(X, ks, COV_TYPES, random_state=0, parallel=parallel, **SAME_AS_COLD)


def sweep_cold(cls, X, ks, proba=True):
    for k in ks:
        for cov in COV_TYPES:
            gm = cls(k, covariance_type=cov, random_state=0).fit(X)
            gm.bic(X), gm.aic(X)
            if proba:
                gm.predict_proba(X)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--d", type=int, default=4)
    p.add_argument("--k-max", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-sklearn", action="store_true")
    p.add_argument("--no-cold", action="store_true", help="time select only")
    p.add_argument("--parallel", action="store_true", help="also parallel candidates")
    p.add_argument(
        "--threads", type=int, help="limit fastgmm and BLAS to this many threads"
    )
    args = p.parse_args(argv)
    from sklearn.mixture import GaussianMixture as SkGaussianMixture
    from threadpoolctl import threadpool_limits

    import fastgmm
    from fastgmm import GaussianMixture

    X, ks = make_data(args.n, args.d), range(1, args.k_max + 1)
    ways = {"select": lambda: sweep_select(X, ks)}
    if args.parallel:
        ways["select, parallel candidates"] = lambda: sweep_select(X, ks, "candidates")
    if not args.no_cold:
        ways["fastgmm cold (fit+bic+aic+proba)"] = lambda: sweep_cold(
            GaussianMixture, X, ks
        )
        ways["fastgmm cold (fit+bic+aic)"] = lambda: sweep_cold(
            GaussianMixture, X, ks, False
        )
    if not args.no_sklearn and not args.no_cold:
        ways["sklearn cold (fit+bic+aic+proba)"] = lambda: sweep_cold(
            SkGaussianMixture, X, ks
        )
    warnings.simplefilter("ignore")
    sweep_select(X[:2000], range(1, 3))  # warm the JIT
    sweep_select(X[:2000], range(1, 3), "candidates")
    sweep_cold(GaussianMixture, X[:2000], range(1, 3))
    times = {name: [] for name in ways}
    with fastgmm.threads(args.threads), threadpool_limits(args.threads):
        for _ in range(args.repeats):
            for name, run in ways.items():
                t0 = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - t0)
    n_cand = len(ks) * len(COV_TYPES)
    print(
        f"n={args.n} d={args.d} K=1..{args.k_max} x {len(COV_TYPES)} covariance "
        f"types = {n_cand} candidates, median of {args.repeats}, "
        f"threads: {args.threads or 'all'}"
    )
    base = statistics.median(times["select"])
    best = min(times["select"])
    print("| way | median s | vs select | best s | vs select |")
    print("|---|---:|---:|---:|---:|")
    for name, ts in times.items():
        med, low = statistics.median(ts), min(ts)
        print(
            f"| {name} | {med:.3f} | {med / base:.2f}x | {low:.3f} | {low / best:.2f}x |"
        )


if __name__ == "__main__":
    main()
