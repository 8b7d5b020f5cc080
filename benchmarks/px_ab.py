#!/usr/bin/env python
"""Issue 13's 1M x 3, K=8 cases: two checkouts of fastgmm side by side.

Usage::

    python benchmarks/px_ab.py --roots OLD NEW [--cases px64-diag ...]
                               [--pairs 5] [--rounds 7] [--out FILE]

For each case (``peers.py``'s px64-full, px64-diag, px32-full, px32-diag: 1M x 3
pixel-like data, K=8, from its shared start; or, with ``--cases``, mid-diag, mid-full
or d64-full) each checkout runs in a fresh process,
alternating (OLD NEW OLD NEW ...), ``--pairs`` times. A process measures, after one
untimed fit of each kind (JIT compile or cache load, reported apart):

- *pass 1t*: one EM pass (``engine.em.pass_stats``) on one thread, process CPU time
  (not counting time other processes hold the core);
- *pass 2t*: the same on two threads, wall time;
- *fit(1)*, *fit(5)*: whole ``fit`` calls from the given start, ``tol=0``,
  max_iter 1 and 5, two threads, wall time; *net* = (fit(5) - fit(1)) / 4 is the
  cost of one more EM iteration (M-step and Python included), *fixed* = fit(1) -
  net what a fit costs beyond its iterations; *t/iter* = fit(5) / 5 is
  ``compare.py``'s headline column.

Each is the median of ``--rounds`` repeats within the process; the table gives the
median over pairs of each checkout's figure and the median of the per-pair ratios
OLD / NEW (> 1: NEW faster). EM iterations run on every thread (the thread pacing
under load is off: the figures are of the code, not of the pacer).
"""

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CASES = ("px64-full", "px64-diag", "px32-full", "px32-diag")
#: other peers.py cases it takes with --cases (not run by default)
MORE_CASES = ("mid-diag", "mid-full", "d64-full")
FIELDS = ("pass1", "pass2", "fit1", "fit5")


def measure(case, rounds):
    """{field: median seconds} of this process's checkout (see module docstring)."""
    import fastgmm
    from fastgmm import GaussianMixture
    from fastgmm._runtime import threads
    from fastgmm.engine.data import make_data
    from fastgmm.engine.em import MaximumLikelihood, pass_stats
    from fastgmm.model.params import from_fitted

    # after fastgmm: peers.py puts this script's checkout first on sys.path
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from compare import start_params
    from peers import CASES as PEER_CASES
    from peers import dataset

    try:
        import fastgmm._pacing as pacing_home
    except ImportError:  # a checkout from before the pacing had its own module
        import fastgmm._runtime as pacing_home
    pacing_home.BUSY_CORES = float("inf")  # no pacing: every iteration on 2 threads
    kind, n, d, k, dtype, cov = PEER_CASES[case]
    X64 = dataset(kind, n, d, k)
    start = start_params(X64, k, cov, dtype)
    X = np.ascontiguousarray(X64, dtype=dtype)
    common = dict(n_components=k, covariance_type=cov, tol=0.0, **start)
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    fitted = GaussianMixture(max_iter=1, **common).fit(X)
    first = time.perf_counter() - t0
    params = from_fitted(fitted)
    family = MaximumLikelihood(params.model)
    data = make_data(X, None, k, params.model)

    def one_pass(n_jobs):
        clock = time.process_time if n_jobs == 1 else time.perf_counter
        with threads(n_jobs):
            t0 = clock()
            pass_stats(data, params, family)
            return clock() - t0

    def one_fit(m):
        with threads(-1):
            est = GaussianMixture(max_iter=m, **common)
            t0 = time.perf_counter()
            est.fit(X)
            return time.perf_counter() - t0

    one_pass(1), one_pass(2), one_fit(1)
    times = {f: [] for f in FIELDS}
    for _ in range(rounds):
        times["pass1"].append(one_pass(1))
        times["pass2"].append(one_pass(2))
        times["fit1"].append(one_fit(1))
        times["fit5"].append(one_fit(5))
    out = {f: float(np.median(v)) for f, v in times.items()}
    out["first"] = first
    out["where"] = fastgmm.__file__
    return out


def derived(r):
    """net, fixed and t/iter (seconds) of one process's figures."""
    net = (r["fit5"] - r["fit1"]) / 4
    return {"net": net, "fixed": r["fit1"] - net, "titer": r["fit5"] / 5}


COLUMNS = (
    ("pass1", "pass 1t ms"),
    ("pass2", "pass 2t ms"),
    ("net", "net ms"),
    ("fixed", "fixed ms"),
    ("titer", "t/iter ms"),
)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--roots", nargs=2, metavar=("OLD", "NEW"))
    p.add_argument(
        "--cases", nargs="+", default=list(CASES), choices=CASES + MORE_CASES
    )
    p.add_argument("--pairs", type=int, default=5, help="alternations per case")
    p.add_argument("--rounds", type=int, default=7, help="repeats per process")
    p.add_argument("--out", help="also write the markdown table here")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        print(json.dumps(measure(args._child, args.rounds)))
        return
    if not args.roots:
        p.error("--roots OLD NEW is required")
    lines = [
        f"load average at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
        f"{args.pairs} pairs x {args.rounds} rounds; OLD = {args.roots[0]}, "
        f"NEW = {args.roots[1]}",
        "",
        "| case | | " + " | ".join(h for _, h in COLUMNS) + " | first fit s |",
        "|---" * (len(COLUMNS) + 3) + "|",
    ]
    print("\n".join(lines), flush=True)
    for case in args.cases:
        runs = {root: [] for root in args.roots}
        for _ in range(args.pairs):
            for root in args.roots:
                env = dict(os.environ, PYTHONPATH=root)
                cmd = [sys.executable, str(Path(__file__).resolve()), "--_child"]
                cmd += [case, "--rounds", str(args.rounds)]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if out.returncode:
                    raise SystemExit(out.stderr)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                if not r.pop("where").startswith(str(Path(root).resolve())):
                    raise SystemExit(f"{root}: imported another fastgmm")
                runs[root].append({**r, **derived(r)})
        old, new = (runs[root] for root in args.roots)
        for label, rs in (("OLD", old), ("NEW", new)):
            cells = [f"{np.median([r[f] for r in rs]) * 1e3:.2f}" for f, _ in COLUMNS]
            first = np.median([r["first"] for r in rs])
            row = f"| {case} | {label} | " + " | ".join(cells) + f" | {first:.1f} |"
            print(row, flush=True)
            lines.append(row)
        ratios = []
        for f, _ in COLUMNS:
            pairs = [(a[f], b[f]) for a, b in zip(old, new)]
            if min(min(p) for p in pairs) <= 0:  # a net or fixed cost lost in noise
                ratios.append("n/a")
                continue
            rr = np.array([a / b for a, b in pairs])
            ratios.append(f"{np.median(rr):.2f}x ({rr.min():.2f}-{rr.max():.2f})")
        row = f"| {case} | OLD/NEW | " + " | ".join(ratios) + " | |"
        print(row, flush=True)
        lines.append(row)
    tail = f"load average at end {os.getloadavg()[0]:.2f}"
    print(tail)
    lines += ["", tail]
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
