#!/usr/bin/env python
"""What OpenBLAS's kernel choice is worth to fastgmm: its GEMM cases per EM iteration
with the kernels OpenBLAS picks for the CPU against a pinned core.

Usage::

    python benchmarks/blas_kernels.py [--cases mid-full d64-full ubm-diag ubm32-diag]
                                      [--pinned Haswell] [--pairs 5] [--out FILE]

OpenBLAS chooses its kernels once, when it loads: from the CPU, unless the
environment variable ``OPENBLAS_CORETYPE`` names a core (some machine images pin an
older core, with ``OPENBLAS_L2_SIZE``, for old OpenBLAS builds that failed on newer
CPUs). fastgmm's kernels call SciPy's OpenBLAS for the full E-step at d >= 16
(``kernels/fullquad.py``, ``fullgemm.py``) and the float32 large-K diagonal E-step
(``kernels/diaggemm.py``); the other cases do not call BLAS in their passes.

Each (case, configuration) runs in a fresh process -- ``auto``: both variables
unset, OpenBLAS's own choice; ``pinned``: ``OPENBLAS_CORETYPE`` set to ``--pinned``
-- alternating (auto, pinned, auto, ...) ``--pairs`` times. A process times fastgmm
per EM iteration from peers.py's starting parameters, net of the fixed cost:
(t(9) - t(1)) / 8, the median of 3, after one untimed fit (JIT compile and the
disk cache excluded). The table gives each configuration's median and the median of
per-pair ratios pinned / auto (> 1: OpenBLAS's own choice faster), with the kernels
each process reported (threadpoolctl's ``architecture`` of SciPy's OpenBLAS).
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time, warnings
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/benchmarks"]
import numpy as np
import scipy.linalg.cython_blas
from threadpoolctl import threadpool_info
import peers
from fastgmm import GaussianMixture

kind, n, d, K, dtype, cov = peers.CASES[sys.argv[2]]
X64 = peers.dataset(kind, n, d, K)
start = peers.start_params(X64, K, cov, dtype)
X = np.ascontiguousarray(X64, dtype=dtype)


def fit(m):
    est = GaussianMixture(K, covariance_type=cov, tol=0.0, max_iter=m, reg_covar=0.0,
                          **start)
    t0 = time.perf_counter()
    est.fit(X)
    return time.perf_counter() - t0


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fit(2)
    net = sorted((fit(9) - fit(1)) / 8 for _ in range(3))[1]
core = [p.get("architecture") for p in threadpool_info()
        if "scipy.libs" in p.get("filepath", "") or "scipy_openblas" in p.get("prefix", "")]
print(json.dumps({"net": net, "core": core[0] if core else "?"}))
"""


def run_one(case, pinned):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    if pinned:
        env["OPENBLAS_CORETYPE"] = pinned
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), case],
        capture_output=True, text=True, env=env, check=True, timeout=1800,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--cases", nargs="+", default=["mid-full", "d64-full", "ubm-diag", "ubm32-diag"]
    )
    p.add_argument("--pinned", default="Haswell", help="the pinned OpenBLAS core")
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--out", help="also write the markdown table here")
    args = p.parse_args(argv)
    import numpy as np

    lines = [
        "| case | OpenBLAS's choice | per iter | pinned | per iter | pinned / auto |",
        "|---|---|---:|---|---:|---:|",
    ]
    for case in args.cases:
        auto, pin = [], []
        for _ in range(args.pairs):
            auto.append(run_one(case, None))
            pin.append(run_one(case, args.pinned))
        a = np.array([r["net"] for r in auto])
        b = np.array([r["net"] for r in pin])
        lines.append(
            f"| {case} | {auto[0]['core']} | {np.median(a) * 1e3:.1f} ms | "
            f"{pin[0]['core']} | {np.median(b) * 1e3:.1f} ms | "
            f"{np.median(b / a):.2f}× ({np.min(b / a):.2f}–{np.max(b / a):.2f}) |"
        )
        print(lines[-1], flush=True)
    load = os.getloadavg()
    text = "\n".join(
        [
            "# fastgmm per EM iteration by OpenBLAS kernels",
            "",
            f"{args.pairs} alternating pairs of fresh processes, 2 threads; load "
            f"average at the end {load[0]:.2f}.",
            "",
            *lines,
            "",
        ]
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
