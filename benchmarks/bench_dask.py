#!/usr/bin/env python
"""Per-EM-iteration time of fastgmm on a dask array through a distributed
LocalCluster (1 and 2 worker processes) against the in-memory fit.

Usage::

    python benchmarks/bench_dask.py [--quick] [--n N] [--iters M] [--repeats R]
                                    [--workers 1,2] [--scheduler tcp://host:8786]
                                    [--out benchmarks/results/dask.md]

Every system starts from the same parameters (weights_init, means_init,
precisions_init from a short fastgmm fit on a 20k-row subsample) with tol=0 and a
fixed max_iter, so all run the same EM (the lower bounds are compared). Reported:

- *per iter*: the median time of EM iterations 2..M of one fit, measured between
  the ends of consecutive EM steps (one full pass over the data each; per-fit
  costs such as set-up, the scatter pass and the init sample are excluded); then the
  median over repeats, with the min-max of the repeats;
- *fit / iter*: whole ``fit`` time / M (includes the per-fit costs);
- *vs in-memory*: median over alternating pairs (in-memory, cluster, in-memory, ...)
  of cluster per-iter / in-memory per-iter;
- *empty pass*: the per-iteration time on a tiny array with the same number of
  blocks, i.e. the fixed cost of a distributed pass (graph building, scheduling,
  task dispatch, gathering K x d x d statistics), independent of n.

The dask array is ``da.from_array(X, chunks=...).persist()``: blocks stay in the
workers' memory across iterations. The row "not persisted" repeats the largest
cluster without ``persist()``: the graph then carries the numpy data, which are
shipped from the client at every iteration.

Each worker is a separate process with one Dask thread; its Numba kernels use
``cores // workers`` threads (``NUMBA_NUM_THREADS``), so the cluster never
oversubscribes the machine. The in-memory fit uses all cores. With ``--scheduler``
the cluster rows run on an existing cluster instead (its own worker settings).

Before each repeat the script waits (``--max-wait`` s at most) for other processes
to use less than 0.3 cores; the column *others' CPU* shows what they used anyway
(cores, excluding this process and its LocalCluster workers; with ``--scheduler``
the remote workers count as others when they run on this machine).

Results (markdown) go to stdout and, with ``--out``, to that file plus a .json.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def say(*args):
    print(*args, file=sys.stderr, flush=True)


def make_data(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5.0, size=(k, d))
    labels = rng.integers(k, size=n)
    scales = 0.5 + rng.uniform(size=(k, d))
    return centres[labels] + rng.normal(size=(n, d)) * scales[labels]


def start_params(X, k):
    from fastgmm import GaussianMixture

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(k, max_iter=5, random_state=0).fit(X[:20_000])
    return {
        "weights_init": gm.weights_,
        "means_init": gm.means_,
        "precisions_init": gm.precisions_,
    }


def timed_fit(X, k, start, max_iter):
    """(whole fit seconds, per-iteration seconds (list), fitted model). The i-th
    per-iteration time (i >= 2) is the interval between the ends of EM steps i-1 and
    i (``fastgmm.engine.em.em_step``, one full pass over the data plus the M-step)."""
    from fastgmm import GaussianMixture
    from fastgmm.engine import em as _em

    stamps, em_step = [], _em.em_step

    def timed_step(*args):
        out = em_step(*args)
        stamps.append(time.perf_counter())
        return out

    gm = GaussianMixture(k, tol=0, max_iter=max_iter, **start)
    _em.em_step = timed_step
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            gm.fit(X)
            seconds = time.perf_counter() - t0
    finally:
        _em.em_step = em_step
    return seconds, list(np.diff(stamps)), gm


class CpuMeter:
    """CPU used by other processes (not this one, not its workers) while timing."""

    def __init__(self):
        import psutil

        self.psutil = psutil
        self.me = psutil.Process()

    def _ours(self):
        total = 0.0
        for p in [self.me, *self.me.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except self.psutil.Error:
                pass
        return total

    def __enter__(self):
        self.t0, self.wall0 = self.psutil.cpu_times(), time.perf_counter()
        self.ours0 = self._ours()
        return self

    def __exit__(self, *exc):
        t1 = self.psutil.cpu_times()
        busy = lambda t: (
            t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)
        )
        wall = time.perf_counter() - self.wall0
        self.others = (
            max(0.0, (busy(t1) - busy(self.t0)) - (self._ours() - self.ours0)) / wall
        )


def per_iter(X, k, start, iters):
    """(median seconds per EM iteration, whole fit seconds / iters, model)."""
    seconds, laps, gm = timed_fit(X, k, start, iters)
    return statistics.median(laps), seconds / iters, gm


def quiet(max_wait, threshold=0.3):
    """Wait (at most max_wait s) until other processes use < threshold cores."""
    deadline = time.perf_counter() + max_wait
    while True:
        with CpuMeter() as meter:
            time.sleep(0.5)
        if meter.others < threshold or time.perf_counter() > deadline:
            return meter.others


def _warm_worker():
    import numpy as np

    from fastgmm import GaussianMixture

    X = np.random.default_rng(0).normal(size=(500, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GaussianMixture(2, max_iter=2, random_state=0).fit(X)
    import numba

    return numba.get_num_threads()


def run_cluster(label, client, X, k, start, args, reference, persist=True):
    import dask.array as da
    from distributed import wait

    numba_threads = sorted(set(client.run(_warm_worker).values()))
    n_workers = len(client.scheduler_info()["workers"])
    block = -(-X.shape[0] // (4 * max(n_workers, 1)))  # 4 blocks per worker
    dX = da.from_array(X, chunks=(block, X.shape[1]))
    if persist:
        dX = dX.persist()
        wait(dX)
    n_blocks = dX.numblocks[0]
    tiny = da.from_array(X[: 64 * n_blocks], chunks=(64, X.shape[1])).persist()
    wait(tiny)
    timed_fit(dX, k, start, 2)  # warm: first graph, first transfers
    nets, fits, ratios, mem_nets, others, empties = [], [], [], [], [], []
    gm = None
    for r in range(args.repeats):
        quiet(args.max_wait)
        with CpuMeter() as meter:
            mem_net, _, _ = per_iter(X, k, start, args.iters)
            net, per_fit, gm = per_iter(dX, k, start, args.iters)
            empty, _, _ = per_iter(tiny, k, start, args.iters)
        nets.append(net), fits.append(per_fit), mem_nets.append(mem_net)
        ratios.append(net / mem_net), others.append(meter.others), empties.append(empty)
        say(
            f"  {label} repeat {r + 1}: net {net * 1e3:.0f} ms/iter, in-memory "
            f"{mem_net * 1e3:.0f} ms, empty pass {empty * 1e3:.0f} ms, others {meter.others:.2f} cores"
        )
    dll = max(abs(a - b) for a, b in zip(gm.lower_bounds_, reference.lower_bounds_))
    return {
        "system": label,
        "workers": n_workers,
        "numba_threads": numba_threads,
        "blocks": n_blocks,
        "persisted": persist,
        "net": statistics.median(nets),
        "net_range": (min(nets), max(nets)),
        "fit_per_iter": statistics.median(fits),
        "ratio": statistics.median(ratios),
        "ratio_range": (min(ratios), max(ratios)),
        "in_memory_net": statistics.median(mem_nets),
        "empty_pass": statistics.median(empties),
        "others": statistics.median(others),
        "dll": dll,
    }


def local_cluster(n_workers, cores, numba_threads=None):
    from distributed import Client, LocalCluster

    numba_threads = numba_threads or max(1, cores // n_workers)
    env = {
        "NUMBA_NUM_THREADS": str(numba_threads),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    os.environ["PYTHONPATH"] = env["PYTHONPATH"]  # spawned workers import this tree
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        env=env,
    )
    return cluster, Client(cluster)


def fmt_ms(s):
    return f"{s * 1e3:.0f} ms" if s >= 0.01 else f"{s * 1e3:.1f} ms"


def table(rows, mem):
    head = (
        "| system | workers x Numba threads | blocks | per iter (min-max) | fit / iter "
        "| vs in-memory (min-max) | empty pass | max abs diff of lower bounds | others' CPU |"
    )
    lines = [head, "|" + "---|" * 9]
    lines.append(
        f"| in-memory | 1 process x {mem['threads']} | - | {fmt_ms(mem['net'])} "
        f"({fmt_ms(mem['net_range'][0])}-{fmt_ms(mem['net_range'][1])}) "
        f"| {fmt_ms(mem['fit_per_iter'])} | 1 | - | 0 | {mem['others']:.2f} |"
    )
    for r in rows:
        threads = "/".join(map(str, r["numba_threads"]))
        lines.append(
            f"| {r['system']} | {r['workers']} x {threads} | {r['blocks']} | {fmt_ms(r['net'])} "
            f"({fmt_ms(r['net_range'][0])}-{fmt_ms(r['net_range'][1])}) | "
            f"{fmt_ms(r['fit_per_iter'])} | {r['ratio']:.2f}x "
            f"({r['ratio_range'][0]:.2f}-{r['ratio_range'][1]:.2f}) | {fmt_ms(r['empty_pass'])} | "
            f"{r['dll']:.1e} | {r['others']:.2f} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="n=200k, 3 repeats, 8 iterations"
    )
    parser.add_argument("--n", type=int, default=None, help="rows (default 2,000,000)")
    parser.add_argument("--d", type=int, default=3)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument(
        "--iters", type=int, default=None, help="max_iter M (default 10)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="alternating pairs (default 5)"
    )
    parser.add_argument("--workers", default="1,2", help="LocalCluster sizes, e.g. 1,2")
    parser.add_argument(
        "--numba-threads",
        type=int,
        default=None,
        help="Numba threads per worker (default: cores // workers)",
    )
    parser.add_argument(
        "--no-unpersisted", action="store_true", help="skip the not-persisted row"
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        help="address of an existing cluster (tcp://host:8786) instead of LocalClusters",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=30.0,
        help="seconds to wait for other processes to go quiet before each repeat",
    )
    parser.add_argument(
        "--out", default=None, help="also write the report here (and .json)"
    )
    args = parser.parse_args()
    n = args.n or (200_000 if args.quick else 2_000_000)
    args.iters = args.iters or (8 if args.quick else 10)
    args.repeats = args.repeats or (3 if args.quick else 5)

    import dask
    import distributed
    import numba

    cores = os.cpu_count()
    say(
        f"data n={n} d={args.d} K={args.k} full float64; {args.iters} iterations, {args.repeats} repeats"
    )
    X = make_data(n, args.d, args.k)
    start = start_params(X, args.k)
    timed_fit(X, args.k, start, 2)  # JIT warm-up
    mem_nets, mem_fits = [], []
    quiet(args.max_wait)
    with CpuMeter() as meter:
        for _ in range(args.repeats):
            net, per_fit, reference = per_iter(X, args.k, start, args.iters)
            mem_nets.append(net), mem_fits.append(per_fit)
    mem = {
        "net": statistics.median(mem_nets),
        "net_range": (min(mem_nets), max(mem_nets)),
        "fit_per_iter": statistics.median(mem_fits),
        "others": meter.others,
        "threads": numba.get_num_threads(),
    }
    say(f"in-memory: net {mem['net'] * 1e3:.0f} ms/iter")

    rows = []
    if args.scheduler:
        client = distributed.Client(args.scheduler)
        rows.append(
            run_cluster(
                f"cluster {args.scheduler}", client, X, args.k, start, args, reference
            )
        )
        client.close()
    else:
        sizes = [int(w) for w in args.workers.split(",")]
        for w in sizes:
            cluster, client = local_cluster(w, cores, args.numba_threads)
            with cluster, client:
                rows.append(
                    run_cluster(
                        "LocalCluster", client, X, args.k, start, args, reference
                    )
                )
                if w == max(sizes) and not args.no_unpersisted:
                    rows.append(
                        run_cluster(
                            "LocalCluster, not persisted",
                            client,
                            X,
                            args.k,
                            start,
                            args,
                            reference,
                            persist=False,
                        )
                    )

    report = "\n".join(
        [
            f"## fastgmm on Dask: per-iteration time, n={n:,} d={args.d} K={args.k} full float64",
            "",
            (
                f"{platform.processor() or platform.machine()}, {cores} cores; Python "
                f"{platform.python_version()}, dask {dask.__version__}, distributed "
                f"{distributed.__version__}, numba {numba.__version__}; tol=0, "
                f"max_iter={args.iters}, {args.repeats} alternating repeats (medians); "
                f"load average at the end {os.getloadavg()[0]:.1f}."
            ),
            "",
            table(rows, mem),
            "",
        ]
    )
    print(report)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)
        out.with_suffix(".json").write_text(
            json.dumps(
                {
                    "n": n,
                    "d": args.d,
                    "k": args.k,
                    "iters": args.iters,
                    "in_memory": mem,
                    "rows": rows,
                },
                indent=1,
                default=list,
            )
        )


if __name__ == "__main__":
    main()
