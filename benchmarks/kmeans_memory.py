"""Peak memory of the default (k-means) initialisation, each run in a fresh process.

For fastgmm (``GaussianMixture(K, max_iter=0).fit(X)``: validation, k-means++ and
Lloyd, the initial M-step) and scikit-learn's ``KMeans(K, n_init=1).fit(X)`` (what
its GaussianMixture runs first), print the peak resident memory above the data:
VmHWM after the run minus VmRSS with the data in memory, the JIT warmed up first on
small data and the peak reset (``/proc/self/clear_refs``). Linux only.

    python benchmarks/kmeans_memory.py --rows 5000000 --features 3 --dtype float32

The children import the fastgmm this script imports (``PYTHONPATH=/other/checkout``
compares another version).
"""

import argparse
import json
import os
import subprocess
import sys

CHILD = """
import json, sys, warnings
import numpy as np

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)

who, n, d, k, dtype = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
if who == "fastgmm":
    from fastgmm import GaussianMixture
    run = lambda X: GaussianMixture(k, max_iter=0, random_state=0).fit(X)
else:
    from sklearn.cluster import KMeans
    run = lambda X: KMeans(k, n_init=1, random_state=0).fit(X)
warnings.simplefilter("ignore")
run(np.random.default_rng(1).standard_normal((5000, d)).astype(dtype))  # warm-up
X = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32).astype(dtype)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS:")
run(X)
peak = status("VmHWM:")
print(json.dumps({"input": X.nbytes, "extra": peak - base}), file=sys.stderr)
"""


def measure(who, rows, features, k, dtype):
    import fastgmm

    root = os.path.dirname(os.path.dirname(os.path.abspath(fastgmm.__file__)))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, who, str(rows), str(features), str(k), dtype],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
    )
    return json.loads(proc.stderr.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--features", type=int, default=3)
    parser.add_argument("--components", type=int, default=8)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--who", default="fastgmm,sklearn")
    args = parser.parse_args()
    mib = 2**20
    for who in args.who.split(","):
        r = measure(who, args.rows, args.features, args.components, args.dtype)
        print(
            f"{who:8s} {args.rows} x {args.features} {args.dtype}, K={args.components}: "
            f"input {r['input'] / mib:.0f} MiB, peak extra {r['extra'] / mib:.0f} MiB "
            f"({r['extra'] / r['input']:.2f}x the input)"
        )


if __name__ == "__main__":
    main()
