#!/usr/bin/env python
"""fastgmm.BayesianGaussianMixture against scikit-learn's, side by side, as ratios.

Usage::

    python benchmarks/bayesian.py [--quick] [--cases PATTERN ...] [--repeats N]
                                  [--out benchmarks/results/bayesian.md]

Cases (``--cases`` glob patterns; default ``px64-full px64-diag issue100k``):

- ``px64-COV[-dd]``: per iteration on compare.py's pixel-like data, n=1M, d=3, K=8,
  float64, for COV in full/tied/diag/spherical, with the Dirichlet-process weight
  prior (``-dd``: the Dirichlet distribution). Both systems start from the same
  posterior: ``init_params='random_from_data'`` with the same seed (the same rows;
  ``'random'`` for tied, whose scikit-learn start also uses rows without
  responsibility), ``tol=0`` and a fixed ``max_iter``. Runs alternate fastgmm,
  scikit-learn, fastgmm, ...; reported as compare.py does: t/iter of the whole
  ``fit`` / n_iter, the net cost of one more iteration
  ``(t(max_iter=m) - t(max_iter=1)) / (m - 1)``, the median of per-pair ratios with
  their min-max, the best-of ratio, the JIT warm-up time (excluded from every
  timing) and the largest relative difference of the two lower-bound trajectories.
- ``issue100k``: the issue's example, n=100k, d=3, K=8 (four Gaussian clusters):
  whole default fits of both (scikit-learn's ``tol`` on the total bound), and
  fastgmm with ``tol_per_sample=1e-3``: time, iterations, convergence and
  ``n_effective_components_``.

Every timed fit records the CPU other processes used meanwhile ("others' CPU", in
cores): this 2-core machine is shared, so the report states the load it ran under.
``--threads 1`` runs both systems on one thread (fastgmm ``n_jobs=1``, scikit-learn's
BLAS limited to one thread): on a machine whose cores are busy with other work that
comparison depends less on how the scheduler shares the second core.
"""

import argparse
import fnmatch
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import (  # noqa: E402  (benchmarks/ is not a package)
    Timer,
    jit_counts,
    machine_rows,
    make_dataset,
    md_table,
    say,
)

#: case id -> (covariance_type, weight prior type)
ITER_CASES = {}
for _cov in ("full", "tied", "diag", "spherical"):
    ITER_CASES[f"px64-{_cov}"] = (_cov, "dirichlet_process")
    ITER_CASES[f"px64-{_cov}-dd"] = (_cov, "dirichlet_distribution")
DEFAULT_CASES = ("px64-full", "px64-diag", "issue100k")
N, K = 1_000_000, 8


def _classes():
    from sklearn.mixture import BayesianGaussianMixture as SkBGM

    from fastgmm import BayesianGaussianMixture as FastBGM

    return FastBGM, SkBGM


def _common(cov_type, prior_type):
    init = "random" if cov_type == "tied" else "random_from_data"
    return dict(
        n_components=K, covariance_type=cov_type, tol=0.0, random_state=0,
        weight_concentration_prior_type=prior_type, init_params=init,
    )  # fmt: skip


def warm_up(X, common):
    """A tiny fit of this case (compile, or load from the cache); its seconds and how."""
    FastBGM, _ = _classes()
    hits0, misses0 = jit_counts()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        FastBGM(max_iter=2, **common).fit(np.ascontiguousarray(X[:2048]))
    seconds = time.perf_counter() - t0
    hits, misses = jit_counts()
    return seconds, f"{misses - misses0} compiled, {hits - hits0} loaded"


def run_iter_case(case, X, args, timer):
    FastBGM, SkBGM = _classes()
    common = _common(*ITER_CASES[case])
    if args.threads:
        common["n_jobs"] = args.threads
    warm_s, warm_how = warm_up(X, common)
    fm, sm = args.fast_iter, args.sk_iter
    sk_common = {k: v for k, v in common.items() if k != "n_jobs"}

    def group():
        tf, ef = timer.fit(FastBGM, X, max_iter=fm, **common)
        ts, es = timer.fit(SkBGM, X, max_iter=sm, **sk_common)
        tf1, _ = timer.fit(FastBGM, X, max_iter=1, **common)
        ts1, _ = timer.fit(SkBGM, X, max_iter=1, **sk_common)
        assert ef.n_iter_ == fm and es.n_iter_ == sm
        lb_f = np.asarray(ef.lower_bounds_[:sm], dtype=float)
        lb_s = np.ravel(np.asarray(es.lower_bounds_, dtype=float))
        say(
            f"  {case}: fastgmm {tf / fm * 1e3:8.1f} ms/iter, sklearn {ts / sm * 1e3:8.1f}"
        )
        return tf, ts, tf1, ts1, float(np.max(np.abs(lb_f - lb_s) / np.abs(lb_s)))

    if args.threads:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=args.threads):
            kept, redone = timer.run_groups(args.repeats, args.max_retries, group)
    else:
        kept, redone = timer.run_groups(args.repeats, args.max_retries, group)
    tf, ts, tf1, ts1, dlb = (np.array(v) for v in zip(*(r for r, _ in kept)))
    fast, sk = tf / fm, ts / sm
    ratios = sk / fast
    fast_net = (np.median(tf) - np.median(tf1)) / (fm - 1)
    sk_net = (np.median(ts) - np.median(ts1)) / (sm - 1)
    return {
        "case": case, "fast_s": float(np.median(fast)), "sk_s": float(np.median(sk)),
        "ratio": float(np.median(ratios)), "ratio_min": float(ratios.min()),
        "ratio_max": float(ratios.max()), "best_ratio": float(sk.min() / fast.min()),
        "fast_net_s": float(fast_net), "sk_net_s": float(sk_net),
        "net_ratio": float(sk_net / fast_net) if fast_net > 0 else float("nan"),
        "warm_s": warm_s, "warm_how": warm_how, "rel_dlb": float(dlb.max()),
        "others": float(np.median([load for _, load in kept])), "redone": redone,
        "raw": {"fast": tf.tolist(), "sk": ts.tolist(), "fast1": tf1.tolist(),
                "sk1": ts1.tolist()},
    }  # fmt: skip


def issue_data(n=100_000):
    """Four anisotropic Gaussian clusters in 3-D (the test suite's issue example)."""
    gen = np.random.default_rng(0)
    centres = np.array([[0, 0, 0], [6, 1, 0], [1, 7, 3], [5, 5, 6]], float)
    labels = gen.integers(4, size=n)
    scales = 0.5 + gen.uniform(size=(4, 3))
    return centres[labels] + gen.normal(size=(n, 3)) * scales[labels]


def run_issue(args, timer):
    FastBGM, SkBGM = _classes()
    X = issue_data(10_000 if args.quick else 100_000)
    warm_up(X, dict(n_components=K))
    rows = []
    systems = [
        ("scikit-learn, defaults", SkBGM, {}),
        ("fastgmm, defaults", FastBGM, {}),
        ("fastgmm, tol_per_sample=1e-3", FastBGM, {"tol_per_sample": 1e-3}),
    ]
    timer.start_group()
    for label, cls, extra in systems:
        seconds, est = timer.fit(cls, X, n_components=K, random_state=0, **extra)
        rows.append({
            "system": label, "seconds": seconds, "n_iter": int(est.n_iter_),
            "converged": bool(est.converged_),
            "effective": getattr(est, "n_effective_components_", None),
            "weights": np.round(np.sort(est.weights_)[::-1], 4).tolist(),
        })  # fmt: skip
        say(f"  issue100k: {label}: {seconds:.2f} s, {est.n_iter_} iterations")
    return {"case": "issue100k", "n": X.shape[0], "rows": rows,
            "others": timer.group_others()}  # fmt: skip


def report(machine, iters, issue, args):
    lines = ["# fastgmm BayesianGaussianMixture vs scikit-learn", ""]
    lines += md_table(["", ""], machine) + [""]
    if iters:
        lines += [
            f"## Per iteration, n={N:,} d=3 K={K} float64 (same start, tol=0; fastgmm "
            f"max_iter {args.fast_iter}, scikit-learn {args.sk_iter}; "
            f"{args.repeats} alternating groups; threads: {args.threads or 'default'})",
            "",
        ]
        head = ["case", "fastgmm t/iter", "sklearn t/iter", "speed-up (min-max)",
                "best", "net fastgmm", "net sklearn", "net speed-up", "JIT s",
                "max rel Δ bound", "others' CPU"]  # fmt: skip
        rows = [
            [r["case"], f"{r['fast_s'] * 1e3:.1f} ms", f"{r['sk_s'] * 1e3:.0f} ms",
             f"{r['ratio']:.1f}× ({r['ratio_min']:.1f}–{r['ratio_max']:.1f})",
             f"{r['best_ratio']:.1f}×", f"{r['fast_net_s'] * 1e3:.1f} ms",
             f"{r['sk_net_s'] * 1e3:.0f} ms", f"{r['net_ratio']:.1f}×",
             f"{r['warm_s']:.1f} ({r['warm_how']})", f"{r['rel_dlb']:.1e}",
             f"{r['others']:.2f}"]
            for r in iters
        ]  # fmt: skip
        lines += md_table(head, rows) + [""]
    if issue:
        lines += [f"## The issue's example: n={issue['n']:,} d=3 K={K}, whole fits", ""]
        head = ["fit", "time", "iterations", "converged", "effective", "weights"]
        rows = [
            [r["system"], f"{r['seconds']:.2f} s", str(r["n_iter"]),
             str(r["converged"]), str(r["effective"] or "–"),
             " ".join(f"{w:.3f}" for w in r["weights"])]
            for r in issue["rows"]
        ]  # fmt: skip
        lines += md_table(head, rows)
        lines += ["", f"others' CPU during these fits: {issue['others']:.2f} cores", ""]
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", nargs="*", default=list(DEFAULT_CASES))
    p.add_argument("--quick", action="store_true", help="n / 10, fewer repeats")
    p.add_argument("--repeats", type=int, default=3, help="alternating groups")
    p.add_argument("--fast-iter", type=int, default=5)
    p.add_argument("--sk-iter", type=int, default=3)
    p.add_argument("--cooldown", type=float, default=0.3)
    p.add_argument("--max-wait", type=float, default=5.0, help="s to wait for quiet")
    p.add_argument("--max-retries", type=int, default=1)
    p.add_argument(
        "--threads", type=int, help="threads of both systems (default: machine's)"
    )
    p.add_argument("--out", help="also write the report (and .json) here")
    return p.parse_args(argv)


def main(argv=None):
    global N
    args = parse_args(argv)
    if args.quick:
        N, args.repeats = N // 10, min(args.repeats, 2)
    wanted = lambda case: any(fnmatch.fnmatch(case, p) for p in args.cases)  # noqa: E731
    machine = machine_rows(os.getloadavg())
    timer = Timer(args.cooldown, args.max_wait)
    iters = []
    cases = [c for c in ITER_CASES if wanted(c)]
    if cases:
        X = make_dataset("pixel", N)
        for case in cases:
            say(f"{case} ...")
            iters.append(run_iter_case(case, X, args, timer))
    issue = run_issue(args, timer) if wanted("issue100k") else None
    text = report(machine, iters, issue, args)
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        out.with_suffix(".json").write_text(
            json.dumps({"iters": iters, "issue": issue}, indent=1)
        )


if __name__ == "__main__":
    main()
