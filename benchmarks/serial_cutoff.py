#!/usr/bin/env python
"""Where do two threads start to beat one? The measurement behind ``SERIAL_WORK``.

Usage::

    python benchmarks/serial_cutoff.py [--busy] [--repeats 31] [--out FILE]

For shapes spanning four decades of :func:`fastgmm._runtime.pass_work`, times one
fused EM pass (``em_pass``, the kernel every iteration runs) on 1 and on 2 threads,
alternating 1, 2, 1, 2 ..., and prints the median of the per-pair ratios
t(1 thread) / t(2 threads): above 1, the parallel pass pays. ``--busy`` holds one
core with a spinning process (``while True: pass``) for the whole run: the case of a
machine shared with another busy process, where each parallel region waits for the
operating system to run the second thread. The cut-off ``SERIAL_WORK`` sits where
the quiet ratio passes ~1.2 and the busy ratio is no worse than ~0.8 (see the
docstring of ``fastgmm._runtime``). Kernels are warmed before timing.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare import TICK, cpu_ticks, md_table  # noqa: E402

#: (d, K, covariance kind name) x rows: work from ~1e4 to ~1e8
SHAPES = [
    (1, 2, "diag", (500, 4_000, 30_000, 200_000, 1_000_000)),
    (4, 3, "full", (150, 1_500, 15_000, 150_000, 600_000)),
    (3, 8, "full", (1_000, 5_000, 20_000, 100_000, 500_000)),
    (16, 16, "diag", (500, 3_000, 20_000, 100_000)),
    (16, 16, "full", (300, 2_000, 10_000, 50_000)),
]


def problem(n, d, K, kind_name, rng):
    from fastgmm._jit import chunk_rows, kernel_array
    from fastgmm.kernels import DIAG, FULL

    X = rng.normal(size=(n, d))
    kind = FULL if kind_name == "full" else DIAG
    means = kernel_array(X[:K] + 0.1)
    prec = np.tile(np.eye(d), (K, 1, 1)) if kind == FULL else np.ones((K, 1, d))
    args = (kind, kernel_array(np.zeros(K)), means, kernel_array(prec), means)
    return X, np.empty(0), args, chunk_rows(d, K)


def time_pass(X, sw, args, chunk, n_threads, repeats):
    from fastgmm._runtime import threads
    from fastgmm.kernels.passes import em_pass

    with threads(n_threads):
        t0 = time.perf_counter()
        for _ in range(repeats):
            em_pass(X, sw, *args, chunk)
        return (time.perf_counter() - t0) / repeats


def measure(repeats):
    from fastgmm._runtime import pass_work

    rng = np.random.default_rng(0)
    rows = []
    for d, K, kind_name, sizes in SHAPES:
        for n in sizes:
            X, sw, args, chunk = problem(n, d, K, kind_name, rng)
            work = pass_work(n, d, K, kind_name == "full")
            inner = max(1, int(2e7 // work))  # ~ms per sample for small passes
            for t in (1, 2):
                time_pass(X, sw, args, chunk, t, 2)  # warm (compile or load)
            a0 = cpu_ticks()
            t0 = time.perf_counter()
            one, two = [], []
            for _ in range(repeats):
                one.append(time_pass(X, sw, args, chunk, 1, inner))
                two.append(time_pass(X, sw, args, chunk, 2, inner))
            wall = time.perf_counter() - t0
            b0 = cpu_ticks()
            others = None
            if a0 and b0:
                others = ((b0[0] - a0[0]) - (b0[1] - a0[1])) / TICK / wall
            one, two = np.array(one), np.array(two)
            ratio = float(np.median(one / two))
            rows.append((d, K, kind_name, n, work, one, two, ratio, others))
            print(
                f"  d={d} K={K} {kind_name} n={n}: work {work:.2e}, 1 thread "
                f"{np.median(one) * 1e6:.0f} us, 2 threads {np.median(two) * 1e6:.0f} "
                f"us, ratio {ratio:.2f}",
                file=sys.stderr,
                flush=True,
            )
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--busy", action="store_true", help="hold one core with a spinner")
    p.add_argument("--repeats", type=int, default=31, help="alternating pairs (31)")
    p.add_argument("--out", help="also write the markdown table here")
    args = p.parse_args(argv)
    from fastgmm._runtime import SERIAL_WORK

    spinner = None
    if args.busy:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
    try:
        rows = measure(args.repeats)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    load = "one core held by a spinning process" if args.busy else "no spinner"
    lines = [
        f"# 1 vs 2 threads per EM pass ({load}); SERIAL_WORK = {SERIAL_WORK:.0e}",
        "",
    ]
    lines += md_table(
        ["d", "K", "model", "n", "work", "1 thread", "2 threads", "t1 / t2", "others"],
        [
            (
                d, K, kind, f"{n:,}", f"{work:.1e}",
                f"{np.median(one) * 1e6:.0f} us", f"{np.median(two) * 1e6:.0f} us",
                f"{ratio:.2f}", "-" if others is None else f"{others:.2f}",
            )
            for d, K, kind, n, work, one, two, ratio, others in rows
        ],
    )  # fmt: skip
    lines.append("")
    lines.append(
        "*others* = cores used by other processes meanwhile (the spinner included)."
    )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
