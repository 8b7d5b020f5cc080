#!/usr/bin/env python
"""Compile time per entry point: what a first call costs with an empty JIT cache.

Usage::

    python benchmarks/compile_times.py [--root PATH ...] [--out FILE]

For each ``--root`` (a fastgmm checkout; default: this one) a fresh interpreter with
an empty ``FASTGMM_CACHE_DIR`` runs the steps below in order, each twice: the first
call compiles what it needs, the second runs warm. The table gives, per step, the
first call's wall time, the warm call's, their difference (the compile time), and
the Numba specialisations the step added (new signatures of fastgmm's kernels).
A later step pays only for what the earlier ones did not compile, so the order is
that of a new user: a float64 fit, predictions, another covariance model, float32
data, sample weights, many features, the other starts.

Compile times depend on the machine and its load (the compiler runs on one core):
compare roots in the same run, and read the load printed under the table.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, sys, time, warnings
import numpy as np
import numba
from numba.core.dispatcher import Dispatcher

warnings.simplefilter("ignore")
from fastgmm import GaussianMixture

rng = np.random.default_rng(0)

def data(n, d, dtype=np.float64):
    X = rng.normal(size=(n, d))
    X[: n // 2] += 4.0
    return X.astype(dtype)

X3, X20 = data(2000, 3), data(2000, 20)
X3_32 = X3.astype(np.float32)
W = rng.uniform(0.5, 2.0, len(X3))
state = {}

def fit(X, cov="full", w=None, init="kmeans"):
    gm = GaussianMixture(3, covariance_type=cov, init_params=init, random_state=0,
                         max_iter=5)
    state["gm"] = gm.fit(X, sample_weight=w)

STEPS = [
    ("fit, float64, full (k-means start)", lambda: fit(X3)),
    ("predict", lambda: state["gm"].predict(X3)),
    ("predict_proba + score_samples",
     lambda: (state["gm"].predict_proba(X3), state["gm"].score_samples(X3))),
    ("fit, float64, diag", lambda: fit(X3, "diag")),
    ("fit, float32, full", lambda: fit(X3_32)),
    ("predict_proba, float32", lambda: state["gm"].predict_proba(X3_32)),
    ("fit, float64, tied, weighted", lambda: fit(X3, "tied", W)),
    ("fit, float64, full, d=20 (BLAS)", lambda: fit(X20)),
    ("fit, k-means++ start", lambda: fit(X3, init="k-means++")),
]

def signatures():
    out = 0
    for name, module in list(sys.modules.items()):
        if name.startswith("fastgmm") and module is not None:
            for obj in vars(module).values():
                if isinstance(obj, Dispatcher):
                    out += len(obj.signatures)
    return out

rows = []
for label, step in STEPS:
    before = signatures()
    t0 = time.perf_counter(); step(); cold = time.perf_counter() - t0
    t0 = time.perf_counter(); step(); warm = time.perf_counter() - t0
    rows.append([label, cold, warm, signatures() - before])
print(json.dumps(rows))
"""


def measure(root):
    """The probe's rows for the checkout at ``root``, with an empty cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, PYTHONPATH=str(root), FASTGMM_CACHE_DIR=cache)
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave the checkout as it is
        run = subprocess.run(
            [sys.executable, "-c", PROBE],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=cache,
        )
    return json.loads(run.stdout.splitlines()[-1])


def table(results):
    """A Markdown table: one row per step, columns per root."""
    roots = list(results)
    head = "| step | " + " | ".join(
        f"{r}: first call | warm | compile | new specialisations" for r in roots
    )
    lines = [head + " |", "|---" * (1 + 4 * len(roots)) + "|"]
    steps = [row[0] for row in results[roots[0]]]
    totals = {r: [0.0, 0] for r in roots}
    for i, step in enumerate(steps):
        cells = []
        for r in roots:
            _, cold, warm, n = results[r][i]
            totals[r][0] += cold - warm
            totals[r][1] += n
            cells.append(f"{cold:.2f} s | {warm:.3f} s | {cold - warm:.1f} s | {n}")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    cells = [f" | | {totals[r][0]:.1f} s | {totals[r][1]}" for r in roots]
    lines.append("| **total** |" + " |".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", action="append", help="a fastgmm checkout")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    roots = args.root or [str(ROOT)]
    results = {}
    for root in roots:
        print(f"measuring {root} (empty cache) ...", file=sys.stderr, flush=True)
        results[root] = measure(root)
    text = table(results)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text += f"\n\nload average at the end: {load:.1f} on {os.cpu_count()} cores\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
