#!/usr/bin/env python
"""Small data: whole default fits and the public methods, fastgmm against
scikit-learn side by side (issue 13's small-data target).

Usage::

    python benchmarks/small_data.py [--pairs 31] [--threads 1 2]
        [--baseline /path/to/other/checkout] [--out benchmarks/results/small-data.md]

Cases: iris (150 x 4, K=3) and 4,000 x 1 (two normal clusters, K=2), every
covariance type scikit-learn has; for each, the whole default fit
(``GaussianMixture(n_components=K, covariance_type=COV, random_state=0).fit(X)``)
and, on the fitted model, ``predict``, ``predict_proba``, ``score_samples``,
``score``, ``bic`` and ``aic`` on the training data.

Each measurement runs fastgmm and scikit-learn one after the other, ``--pairs``
times, the order alternating from pair to pair (A B, B A, A B, ...): the first call
after the worker wakes from its read of the next request runs slower (CPU frequency
and caches; about 1.4x for an iris diag fit on this machine), so a fixed order would
charge that to one system. The table gives each system's median CPU time (``time.process_time``, every
thread of the process) and wall time, and the median over the pairs of the ratio
scikit-learn / fastgmm (above 1: fastgmm faster). Every call is warmed first (the
JIT compile or the load from Numba's on-disk cache is excluded; it is timed once,
in a fresh process, and reported apart). ``--threads 1``: Numba and scikit-learn's
BLAS / OpenMP pools limited to one thread; ``2``: both at two.

``--baseline PATH``: then also an A/B of this checkout against another (e.g. an
export of ``main``): two worker processes, one importing fastgmm from each checkout,
are asked in turn for one fastgmm call at a time (this, baseline, baseline, this,
...: which runs first alternates), and a
second table gives the median of the per-pair ratios t(baseline) / t(this checkout).
It is a coarse check for the methods: calls of ~30 us differ between two worker
processes by up to a quarter with identical code (an A/A run of one commit against a
copy of itself gave 0.73-1.04 for the iris methods, 0.93-0.99 for the fits); time
smaller differences with hot loops in one process per checkout, alternating.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COV_TYPES = ("full", "tied", "diag", "spherical")
METHODS = ("fit", "predict", "predict_proba", "score_samples", "score", "bic", "aic")


def datasets():
    """name -> (X, K)."""
    from sklearn.datasets import load_iris

    rng = np.random.default_rng(0)
    x1 = np.concatenate([rng.normal(0.0, 1.0, 2000), rng.normal(4.0, 1.0, 2000)])
    return {"iris": (load_iris().data, 3), "4000x1": (x1[:, None], 2)}


def _call(cls, X, K, cov, method, fitted):
    if method == "fit":
        return lambda: cls(n_components=K, covariance_type=cov, random_state=0).fit(X)
    return lambda: getattr(fitted, method)(X)


def _time(f):
    c0, w0 = time.process_time(), time.perf_counter()
    f()
    return time.process_time() - c0, time.perf_counter() - w0


class Worker:
    """Times fastgmm and scikit-learn in this process (one pair at a time)."""

    def __init__(self, n_threads):
        import numba
        from sklearn.mixture import GaussianMixture as SkGMM
        from threadpoolctl import threadpool_limits

        import fastgmm

        warnings.simplefilter("ignore")
        numba.set_num_threads(n_threads)
        self._limits = threadpool_limits(n_threads)  # scikit-learn's BLAS / OpenMP
        self.systems = {"fastgmm": fastgmm.GaussianMixture, "sklearn": SkGMM}
        self.data, self.fitted, self.warm = datasets(), {}, set()

    def _callable(self, system, case, cov, method):
        X, K = self.data[case]
        cls = self.systems[system]
        key = (system, case, cov)
        if key not in self.fitted:
            self.fitted[key] = _call(cls, X, K, cov, "fit", None)()
        return _call(cls, X, K, cov, method, self.fitted[key])

    def pair(self, case, cov, method, only=None, sklearn_first=False):
        """{system: (cpu s, wall s)} of one call each, fastgmm first unless
        ``sklearn_first``."""
        out = {}
        order = ("sklearn", "fastgmm") if sklearn_first else ("fastgmm", "sklearn")
        for system in order if only is None else (only,):
            f = self._callable(system, case, cov, method)
            if (system, case, cov, method) not in self.warm:
                f()  # warm (JIT, caches), not timed
                self.warm.add((system, case, cov, method))
            out[system] = _time(f)
        return out


def serve(n_threads):
    """Worker loop: one JSON request per line on stdin, one answer per line."""
    worker = Worker(n_threads)
    import fastgmm

    print(json.dumps({"ready": str(Path(fastgmm.__file__).parents[1])}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        print(json.dumps(worker.pair(*req)), flush=True)


def cold_fit_seconds(path, n_threads):
    """Wall time of the first default fit of iris in a fresh process (imports
    excluded): the JIT's compile or on-disk cache load, reported apart."""
    code = (
        "import time, numba, warnings; warnings.simplefilter('ignore');"
        f"numba.set_num_threads({n_threads});"
        f"import sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r});"
        "from small_data import datasets; import fastgmm;"
        "X, K = datasets()['iris']; t = time.perf_counter();"
        "fastgmm.GaussianMixture(K, random_state=0).fit(X);"
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=path, env=_env(path), check=True,
        capture_output=True, text=True,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def _env(path):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(path)
    return env


class Remote:
    """A worker process importing fastgmm from ``path``."""

    def __init__(self, path, n_threads):
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve",
             str(n_threads)],
            cwd=ROOT, env=_env(path), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.path = json.loads(self.proc.stdout.readline())["ready"]

    def pair(self, *req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def median_ratio(num, den):
    return statistics.median(a / b for a, b in zip(num, den))


def _cells():
    for case in ("iris", "4000x1"):
        for cov in COV_TYPES:
            for method in METHODS:
                yield case, cov, method


def run(args):
    """Rows against scikit-learn (this checkout alone), then the A/B rows (this
    checkout and the baseline, fastgmm only), per thread count."""
    rows, ab_rows = [], []
    for n_threads in args.threads:
        here = Remote(ROOT, n_threads)
        for case, cov, method in _cells():
            t = {"fastgmm": [], "sklearn": []}
            for i in range(args.pairs):
                got = here.pair(case, cov, method, None, i % 2 == 1)
                t["fastgmm"].append(got["fastgmm"])
                t["sklearn"].append(got["sklearn"])
            rows.append(_row(n_threads, case, cov, method, t))
            print(rows[-1], file=sys.stderr)
        if args.baseline:
            base = Remote(args.baseline, n_threads)
            for case, cov, method in _cells():
                t = {"fastgmm": [], "base": []}
                for i in range(args.pairs):  # (which runs first alternates)
                    order = (("fastgmm", here), ("base", base))[:: 1 - 2 * (i % 2)]
                    for key, remote in order:
                        got = remote.pair(case, cov, method, "fastgmm")
                        t[key].append(got["fastgmm"])
                ab_rows.append(_ab_row(n_threads, case, cov, method, t))
                print(ab_rows[-1], file=sys.stderr)
            base.close()
        here.close()
    return rows, ab_rows


def _col(samples, i):
    return [s[i] for s in samples]


def _row(n_threads, case, cov, method, t):
    fg, sk = t["fastgmm"], t["sklearn"]
    return (
        f"| {n_threads} | {case} | {cov} | {method} "
        f"| {statistics.median(_col(fg, 0)) * 1e3:.3f} "
        f"| {statistics.median(_col(sk, 0)) * 1e3:.3f} "
        f"| {median_ratio(_col(sk, 0), _col(fg, 0)):.2f} "
        f"| {statistics.median(_col(fg, 1)) * 1e3:.3f} "
        f"| {statistics.median(_col(sk, 1)) * 1e3:.3f} "
        f"| {median_ratio(_col(sk, 1), _col(fg, 1)):.2f} |"
    )


def _ab_row(n_threads, case, cov, method, t):
    fg, base = t["fastgmm"], t["base"]
    return (
        f"| {n_threads} | {case} | {cov} | {method} "
        f"| {statistics.median(_col(base, 0)) * 1e3:.3f} "
        f"| {statistics.median(_col(fg, 0)) * 1e3:.3f} "
        f"| {median_ratio(_col(base, 0), _col(fg, 0)):.2f} "
        f"| {median_ratio(_col(base, 1), _col(fg, 1)):.2f} |"
    )


def report(args, rows, ab_rows, cold):
    head = [
        "# Small data: whole default fit and public methods vs scikit-learn",
        "",
        f"`python benchmarks/small_data.py --pairs {args.pairs} --threads "
        f"{' '.join(map(str, args.threads))}"
        f"{' --baseline ' + str(args.baseline) if args.baseline else ''}`; "
        f"load average at start / end: "
        f"{args.load_start} / {os.getloadavg()[0]:.2f}. Medians over {args.pairs} "
        "pairs, the order within a pair alternating; ratio = median of per-pair scikit-learn / fastgmm "
        "(above 1: fastgmm faster). CPU = process time of all threads.",
        "",
        "On 2 threads scikit-learn's k-means runs on OpenMP threads that spin-wait; "
        "on a machine where other processes hold a core its fits then take tens or "
        "hundreds of ms (CPU), and its spinning workers slow the fastgmm call that "
        "follows: those ratios show that behaviour, not steady-state arithmetic.",
        "",
        "JIT (first default fit of iris in a fresh process, imports excluded; "
        "cache warm): " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in cold.items()),
        "",
        "| threads | data | covariance | call | fastgmm CPU ms | sklearn CPU ms "
        "| CPU ratio | fastgmm wall ms | sklearn wall ms | wall ratio |",
        "|---:|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines = head + rows
    if ab_rows:
        lines += [
            "",
            f"## A/B: this checkout against `{args.baseline}`",
            "",
            "Ratio = median of per-pair t(baseline) / t(this checkout) (above 1: "
            "this checkout faster), pairs alternating between the two processes, "
            "which runs first alternating too.",
            "",
            "| threads | data | covariance | call | baseline CPU ms | this CPU ms "
            "| CPU ratio | wall ratio |",
            "|---:|---|---|---|---:|---:|---:|---:|",
            *ab_rows,
        ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=31)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        return serve(args.serve)
    args.load_start = f"{os.getloadavg()[0]:.2f}"
    cold = {"this checkout": cold_fit_seconds(ROOT, 1)}
    if args.baseline:
        cold["baseline"] = cold_fit_seconds(args.baseline, 1)
    rows, ab_rows = run(args)
    text = report(args, rows, ab_rows, cold)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return None


if __name__ == "__main__":
    main()
