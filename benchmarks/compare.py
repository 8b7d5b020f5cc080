#!/usr/bin/env python
"""fastgmm against scikit-learn, side by side in one process, as ratios.

Usage::

    python benchmarks/compare.py [--quick] [--cases PATTERN ...] [--repeats N]
                                 [--out benchmarks/results/NAME.md]

Prints (markdown, on stdout; progress goes to stderr):

1. the machine: CPU, cores, library versions, BLAS, the fastgmm source state;
2. the machine's measured limits: float64 GEMM rate (numpy, 2 BLAS threads), numpy
   ``exp`` throughput, memory read bandwidth (large ``sum``);
3. per-EM-iteration time for each case (``--cases`` ids in brackets):
   pixel-like n=1M d=3 K=8 float64 [px64-COV] and float32 [px32-COV] for every COV in
   full/tied/diag/spherical, mid-dimension n=200k d=16 K=16 [mid-COV], n=50k d=64 K=16
   full [d64-full]. Both systems start from the same parameters (weights_init,
   means_init, precisions_init from a short scikit-learn fit on a 20k-row subsample),
   with tol=0 and a fixed max_iter. Reported: time/n_iter of the whole ``fit`` call and
   a "net" per-iteration time that removes each system's fixed per-fit cost (input
   validation, start-up, the final labelling pass; scikit-learn's final E-step is
   about half an iteration)::

       net = (t(max_iter=m) - t(max_iter=1)) / (m - 1)

   Runs alternate fastgmm, scikit-learn, fastgmm, scikit-learn ...; speed-ups are the
   median of the per-pair ratios sklearn/fastgmm, times are medians. The JIT is warmed
   by a tiny fit of the same dtype and covariance type first; that warm-up time
   (compile, or load from Numba's on-disk cache) is reported separately;
4. fastgmm's fraction of the roofline for each case (formulas in :func:`work_per_iter`);
5. the whole fit with default settings (k-means init), n=1M d=3 K=8 full [fit];
6. the peak memory of that fit, each system in a fresh subprocess [memory].

``--quick`` divides every n by 10 and runs fewer repeats (a smoke run, < 1 min).

BLAS threads: both systems run with the machine defaults; fastgmm pins BLAS to one
thread itself inside ``fit``. scikit-learn's threaded OpenBLAS/OpenMP workers keep
spinning for ~0.1 s after a call, which slows whatever runs next on this 2-core machine,
so every timed fit is preceded by a short sleep (``--cooldown``).
"""

import argparse
import fnmatch
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
try:
    import fastgmm
except ImportError:  # run from a checkout without PYTHONPATH / editable install
    sys.path.insert(0, str(ROOT))
    import fastgmm

from fastgmm.model.covariance import MODELS  # noqa: E402

#: the covariance models scikit-learn has too (compared side by side)
COV_TYPES = tuple(m.name for m in MODELS if m.sklearn)

#: dataset name -> (n at full size, d, K)
DATASETS = {
    "pixel": (1_000_000, 3, 8),
    "mid": (200_000, 16, 16),
    "d64": (50_000, 64, 16),
}

#: case id -> (dataset, dtype, covariance_type)
ITER_CASES = {}
for _cov in COV_TYPES:
    ITER_CASES[f"px64-{_cov}"] = ("pixel", np.float64, _cov)
for _cov in COV_TYPES:
    ITER_CASES[f"px32-{_cov}"] = ("pixel", np.float32, _cov)
for _cov in COV_TYPES:
    ITER_CASES[f"mid-{_cov}"] = ("mid", np.float64, _cov)
ITER_CASES["d64-full"] = ("d64", np.float64, "full")
OTHER_CASES = ("fit", "memory")

#: rows of the subsample the shared starting parameters are fitted on
START_ROWS = 20_000
#: rows of the tiny warm-up fits
WARM_ROWS = 2_048


def say(*args):
    """Progress line on stderr (stdout carries only the report)."""
    print(*args, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- data
def make_dataset(name, n, seed=0):
    """Synthetic data, float64, C-contiguous, rows shuffled.

    pixel: 12 anisotropic Gaussian colour clusters in the unit RGB cube, quantised to
           8-bit levels and clipped, like the pixels of a photograph.
    mid, d64: K well-separated Gaussian blobs with random full covariances.
    """
    rng = np.random.default_rng(seed)
    d = DATASETS[name][1]
    if name == "pixel":
        n_true, spread, scale = 12, 0.06, None
    else:
        n_true, spread, scale = DATASETS[name][2], 1.0 / np.sqrt(d), 4.0
    weights = rng.dirichlet(np.full(n_true, 2.0))
    counts = rng.multinomial(n, weights)
    if scale is None:
        centres = rng.uniform(0.1, 0.9, size=(n_true, d))
    else:
        centres = rng.normal(scale=scale, size=(n_true, d))
    X = np.empty((n, d))
    row = 0
    for k, count in enumerate(counts):
        A = rng.normal(scale=spread, size=(d, d))
        X[row : row + count] = centres[k] + rng.standard_normal((count, d)) @ A.T
        row += count
    if name == "pixel":
        np.clip(np.round(X * 255.0) / 255.0, 0.0, 1.0, out=X)
    return np.ascontiguousarray(X[rng.permutation(n)])


def start_params(X, n_components, cov_type, dtype):
    """Shared starting parameters: a short scikit-learn fit on a subsample."""
    from sklearn.mixture import GaussianMixture as SkGMM

    rng = np.random.default_rng(1)
    rows = rng.choice(X.shape[0], size=min(X.shape[0], START_ROWS), replace=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = SkGMM(
            n_components,
            covariance_type=cov_type,
            init_params="k-means++",
            max_iter=10,
            random_state=0,
        ).fit(X[np.sort(rows)])
    return {
        "weights_init": gm.weights_.astype(dtype),
        "means_init": gm.means_.astype(dtype),
        "precisions_init": gm.precisions_.astype(dtype),
    }


# -------------------------------------------------------------------------- machine
def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_state():
    def git(*args):
        out = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        )
        return out.stdout.rstrip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "fastgmm")
    files = [line[3:] for line in dirty.splitlines()]
    return head + (f" + uncommitted changes in {', '.join(files)}" if files else "")


def machine_rows(load_at_start):
    import numba
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    blas = [
        f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}, "
        f"{p.get('num_threads')} threads, {Path(p.get('filepath', '')).name})"
        for p in threadpool_info()
        if p.get("user_api") == "blas"
    ]
    openmp = [
        f"{Path(p.get('filepath', '')).name} ({p.get('num_threads')} threads)"
        for p in threadpool_info()
        if p.get("user_api") == "openmp"
    ]
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not yet initialised"
    return [
        ("CPU", cpu_model()),
        ("cores", f"{os.cpu_count()} logical, {affinity} usable"),
        ("load average at start", " ".join(f"{v:.2f}" for v in load_at_start)),
        ("Python", platform.python_version()),
        ("numpy / scipy", f"{np.__version__} / {scipy.__version__}"),
        ("scikit-learn", sklearn.__version__),
        (
            "numba",
            f"{numba.__version__} ({numba.get_num_threads()} threads, layer {layer})",
        ),
        ("BLAS", "; ".join(blas) or "none found"),
        ("OpenMP", "; ".join(openmp) or "none loaded"),
        ("fastgmm", f"{fastgmm.__version__} at {ROOT}, git {git_state()}"),
    ]


# --------------------------------------------------------------------------- limits
def measure_limits(quick):
    """Measured float64 GEMM rate, numpy exp cost and memory read bandwidth."""
    from threadpoolctl import threadpool_limits

    limits = {}
    size = 1024 if quick else 2048
    rng = np.random.default_rng(0)
    a, b = rng.random((size, size)), rng.random((size, size))
    for threads in (1, 2):
        best = np.inf
        with threadpool_limits(limits=threads, user_api="blas"):
            a @ b
            for _ in range(3 if quick else 5):
                t0 = time.perf_counter()
                a @ b
                best = min(best, time.perf_counter() - t0)
        limits[f"gemm{threads}"] = 2.0 * size**3 / best
    del a, b

    y = rng.uniform(-30.0, 0.0, 1 << 14)
    out = np.empty_like(y)
    best = np.inf
    for _ in range(100 if quick else 300):
        t0 = time.perf_counter()
        np.exp(y, out=out)
        best = min(best, time.perf_counter() - t0)
    limits["exp_s"] = best / y.size  # seconds per element, one thread

    big = np.ones((10 if quick else 40) * 1_000_000)  # 80 / 320 MB, far beyond L3
    half = big.size // 2
    best1 = best2 = np.inf
    with ThreadPoolExecutor(2) as pool:
        for _ in range(3 if quick else 5):
            t0 = time.perf_counter()
            big.sum()
            best1 = min(best1, time.perf_counter() - t0)
            t0 = time.perf_counter()
            list(pool.map(np.add.reduce, (big[:half], big[half:])))
            best2 = min(best2, time.perf_counter() - t0)
    limits["bw1"] = big.nbytes / best1
    limits["bw2"] = big.nbytes / best2
    limits["bw"] = max(limits["bw1"], limits["bw2"])
    return limits


# ------------------------------------------------------------------------- roofline
def work_per_iter(cov_type, n, d, K):
    """(FLOPs, exp/log evaluations) of one EM iteration: one fused pass over X.

    Counted per point-component pair (a multiply-add is 2 FLOPs); M-step work on the
    K x d x d parameters is O(K d^3) and ignored:

    log-density   full       d (x - mu) + d(d+1) (z = (x - mu) U, U triangular)
                             + 2d (||z||^2) + 2 (const - maha/2)        = d^2 + 4d + 2
                  tied       per point d(d+1) (z = x U once); per pair
                             d (z - mu U) + 2d + 2                      = 3d + 2
                  diag/sph.  d (x - mu) + d (* prec) + 2d + 2           = 4d + 2
    responsibilities         max, subtract, sum, scale, weight          = 5
                             + 1 exp per pair, + 1 log per point
    statistics    all        nk 1 + (x - mu) d + s1 2d                  = 3d + 1
                  full       + r(x - mu) d + lower triangle d(d+1)      = + d^2 + 2d
                  diag/sph.  + r(x - mu)^2 3d                           = + 3d

    Totals per pair: full 2d^2 + 9d + 8; tied 6d + 8 (+ d(d+1) per point);
    diag and spherical 10d + 8.
    """
    if cov_type == "full":
        flops = n * K * (2 * d * d + 9 * d + 8)
    elif cov_type == "tied":
        flops = n * K * (6 * d + 8) + n * d * (d + 1)
    else:
        flops = n * K * (10 * d + 8)
    return float(flops), float(n * (K + 1))


def skipped_flops(cov_type, n, d, K, zero_frac):
    """FLOPs fastgmm does not execute: for full covariance on its BLAS path
    (d >= GEMM_MIN_D) the scatter (d^2 + 2d per pair) of pairs whose responsibility
    is exactly 0 (below exp(-500) of the largest) adds nothing and is skipped."""
    from fastgmm.kernels.logdensity import GEMM_MIN_D

    if cov_type != "full" or d < GEMM_MIN_D:
        return 0.0
    return float(n * K * zero_frac * (d * d + 2 * d))


def roofline(cov_type, n, d, K, itemsize, seconds, limits, threads, zero_frac=0.0):
    """Bounds and fastgmm's fractions of them for one iteration taking ``seconds``.

    compute bound = FLOPs / GEMM rate + (exp + log count) * numpy exp time / threads
    memory bound  = n * d * itemsize (one read of X) / read bandwidth
    The *done* variant counts only the FLOPs fastgmm executes (see skipped_flops).
    """
    flops, n_exp = work_per_iter(cov_type, n, d, K)
    t_exp = n_exp * limits["exp_s"] / threads
    t_compute = flops / limits["gemm2"] + t_exp
    done = flops - skipped_flops(cov_type, n, d, K, zero_frac)
    n_bytes = n * d * itemsize
    t_memory = n_bytes / limits["bw"]
    return {
        "flops": flops,
        "flops_done": done,
        "zero_frac": zero_frac,
        "bytes": n_bytes,
        "gflops": flops / seconds / 1e9,
        "t_compute": t_compute,
        "t_memory": t_memory,
        "frac_compute": t_compute / seconds,
        "frac_compute_done": (done / limits["gemm2"] + t_exp) / seconds,
        "frac_memory": t_memory / seconds,
    }


# --------------------------------------------------------------------------- timing
def jit_counts():
    """(loaded from cache, compiled) specialisations of fastgmm's Numba kernels so far."""
    from numba.core.dispatcher import Dispatcher

    seen, hits, misses = set(), 0, 0
    for name, mod in list(sys.modules.items()):
        if not name.startswith("fastgmm") or mod is None:
            continue
        for obj in vars(mod).values():
            if isinstance(obj, Dispatcher) and id(obj) not in seen:
                seen.add(id(obj))
                stats = obj.stats  # with FASTGMM_CACHE=0 every compile is a miss
                hits += sum(stats.cache_hits.values())
                misses += sum(stats.cache_misses.values())
    return hits, misses


TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_ticks():
    """(busy ticks of the whole machine, CPU ticks of this process), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy, int(own[11]) + int(own[12])  # utime + stime, all threads


class Timer:
    """Timed fits on a shared machine.

    Each fit is preceded by ``cooldown`` seconds of sleep (spinning BLAS / OpenMP
    workers of the previous fit go idle). :meth:`quiet` waits until other processes
    use less than ``QUIET`` cores; every fit records the CPU other processes used
    while it ran (machine busy ticks minus this process's ticks), so a group of runs
    disturbed by someone else can be detected and repeated.
    """

    QUIET = 0.25  # cores used by other processes that still count as quiet

    def __init__(self, cooldown, max_wait):
        self.cooldown = cooldown
        self.max_wait = max_wait
        self.others_ticks = 0.0
        self.wall = 0.0
        self.jit_events = 0

    def quiet(self):
        """Wait (at most max_wait s) until other processes use < QUIET cores."""
        if self.max_wait <= 0:
            return 0.0
        deadline = time.perf_counter() + self.max_wait
        while True:
            a = cpu_ticks()
            t0 = time.perf_counter()
            time.sleep(0.3)
            b = cpu_ticks()
            if a is None or b is None:
                return 0.0
            others = ((b[0] - a[0]) - (b[1] - a[1])) / TICK / (time.perf_counter() - t0)
            if others < self.QUIET or time.perf_counter() > deadline:
                return others

    def start_group(self):
        self.others_ticks, self.wall = 0.0, 0.0

    def group_others(self):
        """Mean cores used by other processes during the fits since start_group()."""
        return self.others_ticks / TICK / self.wall if self.wall > 0 else 0.0

    def fit(self, cls, X, **params):
        """(seconds, fitted estimator) of ``cls(**params).fit(X)``."""
        est = cls(**params)
        jit_before = jit_counts()
        gc.collect()
        time.sleep(self.cooldown)  # let spinning BLAS / OpenMP workers go to sleep
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = cpu_ticks()
            t0 = time.perf_counter()
            est.fit(X)
            seconds = time.perf_counter() - t0
            b = cpu_ticks()
        if jit_counts() != jit_before:
            self.jit_events += 1
            say("    WARNING: a Numba kernel was compiled or loaded inside a timed fit")
        if a is not None and b is not None:
            self.others_ticks += max(0, (b[0] - a[0]) - (b[1] - a[1]))
            self.wall += seconds
        return seconds, est

    def run_groups(self, n_groups, max_retries, body):
        """Call ``body()`` (one group of alternating fits) until ``n_groups`` groups ran
        while other processes stayed below QUIET cores; a disturbed group is discarded
        and redone, at most ``max_retries`` times per call (then kept anyway).

        Returns (list of (body result, others' mean cores), number of redone groups).
        """
        kept, retries = [], 0
        while len(kept) < n_groups:
            self.quiet()
            self.start_group()
            result = body()
            load = self.group_others()
            if load > self.QUIET and retries < max_retries:
                retries += 1
                say(f"    (other processes used {load:.2f} cores meanwhile: repeating)")
                continue
            kept.append((result, load))
        return kept, retries


def warm_up(X, K, cov_type, start):
    """Tiny fits of this dtype / covariance type; returns fastgmm's time and JIT state."""
    from sklearn.mixture import GaussianMixture as SkGMM

    from fastgmm import GaussianMixture as FastGMM

    Xs = np.ascontiguousarray(X[:WARM_ROWS])
    hits0, misses0 = jit_counts()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        FastGMM(K, covariance_type=cov_type, max_iter=2, random_state=0).fit(Xs)
        FastGMM(K, covariance_type=cov_type, max_iter=1, tol=0, **start).fit(Xs)
        seconds = time.perf_counter() - t0
        SkGMM(K, covariance_type=cov_type, max_iter=1, tol=0, **start).fit(Xs)
    hits, misses = jit_counts()
    hits, misses = hits - hits0, misses - misses0
    if misses and hits:
        how = f"{misses} compiled, {hits} loaded"
    elif misses:
        how = f"{misses} compiled"
    elif hits:
        how = f"{hits} loaded"
    else:
        how = "in memory"
    return seconds, how


def run_iter_case(case, X, K, dtype, cov_type, args, timer, limits, threads):
    from sklearn.mixture import GaussianMixture as SkGMM

    from fastgmm import GaussianMixture as FastGMM

    n, d = X.shape
    start = start_params(X, K, cov_type, dtype)
    X = np.ascontiguousarray(X, dtype=dtype)
    warm_s, warm_how = warm_up(X, K, cov_type, start)
    common = dict(n_components=K, covariance_type=cov_type, tol=0.0, **start)
    fast_m, sk_m = args.fast_iter, args.sk_iter

    def group():
        """fastgmm, sklearn at max_iter=m, then fastgmm, sklearn at max_iter=1."""
        tf, ef = timer.fit(FastGMM, X, max_iter=fast_m, **common)
        ts, es = timer.fit(SkGMM, X, max_iter=sk_m, **common)
        tf1, _ = timer.fit(FastGMM, X, max_iter=1, **common)
        ts1, _ = timer.fit(SkGMM, X, max_iter=1, **common)
        assert ef.n_iter_ == fast_m and es.n_iter_ == sk_m, (ef.n_iter_, es.n_iter_)
        lb_f = np.asarray(ef.lower_bounds_[:sk_m], dtype=float)
        lb_s = np.asarray(es.lower_bounds_, dtype=float)
        say(
            f"  {case}: fastgmm {tf / fast_m * 1e3:8.1f} ms/iter, "
            f"sklearn {ts / sk_m * 1e3:8.1f} ms/iter"
        )
        return tf, ts, tf1, ts1, float(np.max(np.abs(lb_f - lb_s)))

    jit_events = timer.jit_events
    kept, redone = timer.run_groups(args.repeats, args.max_retries, group)
    tf, ts, tf1, ts1, dll = (np.array(v) for v in zip(*(r for r, _ in kept)))
    loads = np.array([load for _, load in kept])
    fast, sk = tf / fast_m, ts / sk_m
    ratios = sk / fast
    # net cost of one more iteration, from the medians (robust to one disturbed run)
    fast_net = (np.median(tf) - np.median(tf1)) / (fast_m - 1)
    sk_net = (np.median(ts) - np.median(ts1)) / (sk_m - 1)
    net_ratio = sk_net / fast_net if fast_net > 0 and sk_net > 0 else float("nan")
    # best-of: other processes only ever add time, so the minima are the least
    # disturbed estimates on a busy machine
    best_ratio = float(sk.min() / fast.min())
    fast_best_net = (tf.min() - tf1.min()) / (fast_m - 1)
    t_roof = float(fast_best_net) if fast_best_net > 0 else float(fast.min())
    # share of (point, component) pairs with a responsibility of exactly 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = FastGMM(max_iter=1, **common).fit(X)
    zero_frac = float(np.mean(one.predict_proba(X) == 0.0))
    roof = roofline(
        cov_type, n, d, K, np.dtype(dtype).itemsize, t_roof, limits, threads, zero_frac
    )
    return {
        "case": case,
        "n": n,
        "d": d,
        "K": K,
        "dtype": np.dtype(dtype).name,
        "cov": cov_type,
        "fast_iter": fast_m,
        "sk_iter": sk_m,
        "fast_s": float(np.median(fast)),
        "sk_s": float(np.median(sk)),
        "ratio": float(np.median(ratios)),
        "ratio_min": float(ratios.min()),
        "ratio_max": float(ratios.max()),
        "fast_net_s": float(fast_net),
        "sk_net_s": float(sk_net),
        "net_ratio": float(net_ratio),
        "best_ratio": best_ratio,
        "fast_best_s": float(fast.min()),
        "sk_best_s": float(sk.min()),
        "roof_s": float(t_roof),
        "warm_s": warm_s,
        "warm_how": warm_how,
        "delta_ll": float(dll.max()),
        "others": float(np.median(loads)),
        "redone": redone,
        "jit_in_timed": timer.jit_events - jit_events,
        "raw": {
            "fast": tf.tolist(),
            "sk": ts.tolist(),
            "fast1": tf1.tolist(),
            "sk1": ts1.tolist(),
        },
        **roof,
    }


def run_whole_fit(X, K, args, timer):
    from sklearn.mixture import GaussianMixture as SkGMM

    from fastgmm import GaussianMixture as FastGMM

    warm_up(X, K, "full", start_params(X, K, "full", X.dtype))
    with warnings.catch_warnings():  # full size: kernels only reached by large inputs
        warnings.simplefilter("ignore")
        FastGMM(K, max_iter=1, random_state=0).fit(X)

    def group():
        tf, ef = timer.fit(FastGMM, X, n_components=K, random_state=0)
        ts, es = timer.fit(SkGMM, X, n_components=K, random_state=0)
        say(f"  fit: fastgmm {tf:.2f} s, sklearn {ts:.2f} s")
        return tf, ts, ef, es

    jit_events = timer.jit_events
    kept, redone = timer.run_groups(args.fit_repeats, args.max_retries, group)
    fast = np.array([r[0] for r, _ in kept])
    sk = np.array([r[1] for r, _ in kept])
    ef, es = kept[-1][0][2], kept[-1][0][3]
    ratios = sk / fast
    return {
        "best_ratio": float(sk.min() / fast.min()),
        "fast_best_s": float(fast.min()),
        "sk_best_s": float(sk.min()),
        "n": X.shape[0],
        "d": X.shape[1],
        "K": K,
        "fast_s": float(np.median(fast)),
        "sk_s": float(np.median(sk)),
        "ratio": float(np.median(ratios)),
        "ratio_min": float(ratios.min()),
        "ratio_max": float(ratios.max()),
        "fast_n_iter": int(ef.n_iter_),
        "sk_n_iter": int(es.n_iter_),
        "fast_lb": float(ef.lower_bound_),
        "sk_lb": float(es.lower_bound_),
        "fast_converged": bool(ef.converged_),
        "sk_converged": bool(es.converged_),
        "others": float(np.median([load for _, load in kept])),
        "redone": redone,
        "jit_in_timed": timer.jit_events - jit_events,
        "raw": {"fast": fast.tolist(), "sk": sk.tolist()},
    }


# --------------------------------------------------------------------------- memory
def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def memory_child(system, path, K):
    """In a fresh process: load X, import and warm ``system``, fit, report peak RSS."""
    X = np.load(path)
    rss_data = _status_kb("VmRSS")
    if system == "fastgmm":
        from fastgmm import GaussianMixture as cls
    else:
        from sklearn.mixture import GaussianMixture as cls
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # same size, one iteration: loads every kernel (and library code path) the
        # fit reaches, so the JIT's own memory is not counted as the fit's
        cls(K, max_iter=1, random_state=0).fit(X)
        gc.collect()
        try:  # reset VmHWM to the current RSS: only the fit's own peak is measured
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            reset = True
        except OSError:
            reset = False
        rss_before = _status_kb("VmRSS")
        t0 = time.perf_counter()
        est = cls(K, random_state=0).fit(X)
        seconds = time.perf_counter() - t0
    if reset:
        peak = _status_kb("VmHWM")
    else:  # ru_maxrss cannot be reset: it includes the import / JIT peak
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "system": system,
                "rss_data_kb": rss_data,
                "rss_before_kb": rss_before,
                "peak_kb": peak,
                "reset": reset,
                "seconds": seconds,
                "n_iter": int(est.n_iter_),
            }
        )
    )


def run_memory(X, K):
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "X.npy")
        np.save(path, X)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), env.get("PYTHONPATH")])
        )
        for system in ("fastgmm", "sklearn"):
            say(f"  memory: {system} in a fresh process")
            out = subprocess.run(
                [sys.executable, __file__, "--_memory-child", system, path, str(K)],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if out.returncode != 0:
                raise RuntimeError(f"memory child {system} failed:\n{out.stderr}")
            results[system] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


# --------------------------------------------------------------------------- report
def md_table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append(
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"
    )
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def fmt_ms(seconds):
    ms = seconds * 1e3
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def busy(r):
    text = f"{r['others']:.2f}"
    text += f" ({r['redone']} redone)" if r["redone"] else ""
    text += f" JIT in {r['jit_in_timed']} timed fits!" if r["jit_in_timed"] else ""
    return text


def report(
    args, machine, limits, threads, iter_results, fit_result, mem_result, elapsed
):
    out = []
    mode = "quick (n / 10)" if args.quick else "full"
    out.append(f"# fastgmm vs scikit-learn ({mode})")
    out.append("")
    out += md_table(["machine", ""], machine)
    out.append("")
    out.append("## Measured limits")
    out.append("")
    out += md_table(
        ["limit", "measured"],
        [
            ("float64 GEMM, 2 BLAS threads", f"{limits['gemm2'] / 1e9:.0f} GFLOP/s"),
            ("float64 GEMM, 1 BLAS thread", f"{limits['gemm1'] / 1e9:.0f} GFLOP/s"),
            ("numpy exp, float64, 1 thread", f"{limits['exp_s'] * 1e9:.2f} ns/element"),
            ("memory read (sum), 1 thread", f"{limits['bw1'] / 1e9:.1f} GB/s"),
            ("memory read (sum), 2 threads", f"{limits['bw2'] / 1e9:.1f} GB/s"),
        ],
    )
    out.append("")
    if iter_results:
        r0 = iter_results[0]
        out.append("## Per EM iteration (same start, tol=0)")
        out.append("")
        out.append(
            f"fastgmm max_iter={r0['fast_iter']}, scikit-learn max_iter={r0['sk_iter']}, "
            f"{args.repeats} alternating pairs; times are medians, speed-up = median of "
            "per-pair sklearn/fastgmm. *t/iter* = fit time / n_iter (includes each "
            "system's fixed per-fit cost); *net* = (t(max_iter=m) - t(max_iter=1)) / "
            "(m - 1), the cost of one more iteration (from median times). *best* = "
            "sklearn's fastest t/iter / fastgmm's fastest: other processes only add "
            "time, so on a busy machine this is the least disturbed estimate. "
            "*JIT* = fastgmm's warm-up fit "
            "(compile or cache load), excluded from all times. *|Δll|* = largest "
            "difference of the two lower-bound trajectories over the common iterations. "
            "*others' CPU* = cores used by other processes during the kept runs (median "
            f"over groups; a group above {Timer.QUIET} cores is redone up to "
            f"{args.max_retries} times per case)."
        )
        out.append("")
        rows = []
        for r in iter_results:
            rows.append(
                (
                    r["case"],
                    f"{r['n']:,}×{r['d']}, K={r['K']}",
                    r["dtype"],
                    r["cov"],
                    fmt_ms(r["fast_s"]),
                    fmt_ms(r["sk_s"]),
                    f"**{r['ratio']:.1f}×** ({r['ratio_min']:.1f}–{r['ratio_max']:.1f})",
                    f"{r['best_ratio']:.1f}×",
                    fmt_ms(r["fast_net_s"]),
                    fmt_ms(r["sk_net_s"]),
                    "n/a" if np.isnan(r["net_ratio"]) else f"{r['net_ratio']:.1f}×",
                    f"{r['warm_s']:.2f} ({r['warm_how']})",
                    f"{r['delta_ll']:.1e}",
                    busy(r),
                )
            )
        out += md_table(
            [
                "case",
                "n×d, K",
                "dtype",
                "cov",
                "fastgmm ms (t/iter)",
                "sklearn ms (t/iter)",
                "speed-up (min–max)",
                "speed-up (best)",
                "fastgmm ms (net)",
                "sklearn ms (net)",
                "speed-up (net)",
                "JIT s",
                "|Δll|",
                "others' CPU",
            ],
            rows,
        )
        out.append("")
        out.append("## fastgmm against the roofline (per iteration)")
        out.append("")
        out.append(
            "compute bound = FLOPs / GEMM rate + (n·K exp + n log) × numpy exp time / "
            f"{threads} threads; memory bound = n·d·itemsize (one read of X) / read "
            "bandwidth. FLOPs per point-component pair: full 2d²+9d+8, tied 6d+8 "
            "(+ d(d+1) per point), diag and spherical 10d+8 (see work_per_iter). "
            "*fastgmm ms* = best net time, (min t(m) − min t(1)) / (m − 1); limits are "
            "the best of several measurements during the run. *zero r* = share of "
            "(point, component) pairs whose responsibility is exactly 0; for full "
            "covariance with d ≥ 16 fastgmm skips their scatter (d²+2d FLOPs each), so "
            "*of compute roof* counts the dense work (the bound on any exact dense "
            "implementation) and *work done* only the FLOPs fastgmm executes."
        )
        out.append("")
        rows = []
        for r in iter_results:
            rows.append(
                (
                    r["case"],
                    f"{r['flops'] / 1e9:.2f}",
                    f"{r['bytes'] / 1e6:.1f}",
                    fmt_ms(r["roof_s"]),
                    f"{r['gflops']:.1f}",
                    fmt_ms(r["t_compute"]),
                    f"{100 * r['frac_compute']:.0f} %",
                    f"{100 * r.get('zero_frac', 0.0):.0f} %",
                    f"{100 * r.get('frac_compute_done', r['frac_compute']):.0f} %",
                    fmt_ms(r["t_memory"]),
                    f"{100 * r['frac_memory']:.1f} %",
                )
            )
        out += md_table(
            [
                "case",
                "GFLOP/iter",
                "MB/iter",
                "fastgmm ms",
                "GFLOP/s",
                "compute bound ms",
                "of compute roof",
                "zero r",
                "of compute roof (work done)",
                "memory bound ms",
                "of memory roof",
            ],
            rows,
        )
        out.append("")
    if fit_result:
        r = fit_result
        out.append(
            "## Whole fit, default settings (init_params='kmeans'), random_state=0"
        )
        out.append("")
        out += md_table(
            [
                "n×d, K, cov",
                "fastgmm s",
                "sklearn s",
                "speed-up (min–max)",
                "speed-up (best)",
                "n_iter fastgmm / sklearn",
                "lower_bound fastgmm / sklearn",
                "converged",
                "others' CPU",
            ],
            [
                (
                    f"{r['n']:,}×{r['d']}, K={r['K']}, full",
                    f"{r['fast_s']:.2f}",
                    f"{r['sk_s']:.2f}",
                    f"**{r['ratio']:.1f}×** ({r['ratio_min']:.1f}–{r['ratio_max']:.1f})",
                    f"{r['best_ratio']:.1f}×",
                    f"{r['fast_n_iter']} / {r['sk_n_iter']}",
                    f"{r['fast_lb']:.6f} / {r['sk_lb']:.6f}",
                    f"{r['fast_converged']} / {r['sk_converged']}",
                    busy(r),
                )
            ],
        )
        out.append("")
        out.append(
            f"{args.fit_repeats} alternating pairs, medians; *best* = ratio of the "
            "fastest fits. One untimed full-size fastgmm fit ran first (JIT). "
            "The two k-means "
            "initialisations differ (different random streams), so n_iter may differ."
        )
        out.append("")
    if mem_result:
        f, s = mem_result["fastgmm"], mem_result["sklearn"]
        input_mb = mem_result["input_bytes"] / 2**20
        extra = {
            k: (v["peak_kb"] - v["rss_before_kb"]) / 1024
            for k, v in mem_result.items()
            if k != "input_bytes"
        }
        out.append("## Peak memory of the whole fit (fresh process each)")
        out.append("")
        rows = []
        for name, v in (("fastgmm", f), ("scikit-learn", s)):
            key = "fastgmm" if name == "fastgmm" else "sklearn"
            rows.append(
                (
                    name,
                    f"{v['rss_data_kb'] / 1024:.0f}",
                    f"{v['rss_before_kb'] / 1024:.0f}",
                    f"{v['peak_kb'] / 1024:.0f}",
                    f"{extra[key]:.1f}",
                    f"{extra[key] / input_mb:.2f}×",
                    f"{v['seconds']:.1f}",
                )
            )
        out += md_table(
            [
                "system",
                "RSS after load MB",
                "RSS before fit MB",
                "peak RSS MB",
                "extra MB",
                "extra / input",
                "fit s",
            ],
            rows,
        )
        out.append("")
        ratio = (
            extra["sklearn"] / extra["fastgmm"]
            if extra["fastgmm"] > 0
            else float("inf")
        )
        how = (
            "VmHWM reset via /proc/self/clear_refs"
            if f["reset"] and s["reset"]
            else ("ru_maxrss (not resettable: includes the import/JIT peak)")
        )
        out.append(
            f"Input X: {input_mb:.1f} MB. extra = peak RSS during fit − RSS just before "
            "fit (after loading X, importing and a one-iteration warm-up fit of the "
            f"same size); {how}. "
            f"scikit-learn / fastgmm extra memory: **{ratio:.1f}×**."
        )
        out.append("")
    out.append(
        f"Total run time {elapsed / 60:.1f} min; load average at end "
        + " ".join(f"{v:.2f}" for v in os.getloadavg())
        + "."
    )
    return out


# ----------------------------------------------------------------------------- main
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="n / 10 and fewer repeats")
    p.add_argument(
        "--cases",
        nargs="+",
        default=["*"],
        metavar="PATTERN",
        help="case ids or glob patterns: "
        + ", ".join([*ITER_CASES, *OTHER_CASES])
        + " (default: all)",
    )
    p.add_argument(
        "--repeats", type=int, help="alternating pairs per case (5; quick 2)"
    )
    p.add_argument("--fit-repeats", type=int, help="pairs of whole fits (3; quick 1)")
    p.add_argument("--fast-iter", type=int, default=5, help="fastgmm max_iter (5)")
    p.add_argument("--sk-iter", type=int, help="scikit-learn max_iter (3; quick 2)")
    p.add_argument(
        "--cooldown",
        type=float,
        help="sleep before each timed fit, s (0.25; quick 0.1)",
    )
    p.add_argument(
        "--max-wait",
        type=float,
        help="wait for a quiet machine at most this long, s (60; quick 0: no wait)",
    )
    p.add_argument(
        "--max-retries",
        type=int,
        help="redo disturbed groups at most this often per case (2; quick 0)",
    )
    p.add_argument(
        "--out", help="also write the markdown here (and raw numbers as .json)"
    )
    p.add_argument("--_memory-child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.fit_repeats is None:
        args.fit_repeats = 1 if args.quick else 3
    if args.sk_iter is None:
        args.sk_iter = 2 if args.quick else 3
    if args.max_wait is None:
        args.max_wait = 0.0 if args.quick else 60.0
    if args.max_retries is None:
        args.max_retries = 0 if args.quick else 2
    if args.cooldown is None:
        args.cooldown = 0.1 if args.quick else 0.25
    if args.fast_iter < 2 or args.sk_iter < 2:
        p.error("--fast-iter and --sk-iter must be >= 2 (the net time needs two runs)")
    return args


def selected(patterns, case):
    return any(fnmatch.fnmatchcase(case, pat) for pat in patterns)


def main(argv=None):
    args = parse_args(argv)
    if args._memory_child:
        system, path, K = args._memory_child
        memory_child(system, path, int(K))
        return
    began = time.perf_counter()
    load_at_start = os.getloadavg()
    scale = 10 if args.quick else 1

    import numba

    threads = numba.get_num_threads()
    say("measuring machine limits ...")
    timer = Timer(args.cooldown, args.max_wait)
    timer.quiet()
    limits = measure_limits(args.quick)

    def refresh_limits():
        """Measure again; keep the best value of each limit (a busy machine lowers them)."""
        timer.quiet()
        for key, value in measure_limits(args.quick).items():
            better = min if key == "exp_s" else max
            limits[key] = better(limits[key], value)

    machine = None

    datasets = {}

    def dataset(name):
        if name not in datasets:
            n, _, _ = DATASETS[name]
            datasets[name] = make_dataset(name, n // scale)
        return datasets[name]

    iter_results = []
    for case, (name, dtype, cov_type) in ITER_CASES.items():
        if not selected(args.cases, case):
            continue
        say(f"{case} ...")
        K = DATASETS[name][2]
        iter_results.append(
            run_iter_case(
                case, dataset(name), K, dtype, cov_type, args, timer, limits, threads
            )
        )
        if machine is None:  # after the first parallel call: threading layer known
            machine = machine_rows(load_at_start)
        if not args.quick:
            refresh_limits()

    fit_result = None
    if selected(args.cases, "fit"):
        say("fit (whole, default settings) ...")
        fit_result = run_whole_fit(dataset("pixel"), DATASETS["pixel"][2], args, timer)
    if machine is None:
        machine = machine_rows(load_at_start)

    mem_result = None
    if selected(args.cases, "memory"):
        X = dataset("pixel")
        mem_result = run_memory(X, DATASETS["pixel"][2])
        mem_result["input_bytes"] = X.nbytes

    say("measuring machine limits again (the best values are used) ...")
    refresh_limits()
    for r in iter_results:  # roofline against the best limits seen
        r.update(
            roofline(
                r["cov"],
                r["n"],
                r["d"],
                r["K"],
                np.dtype(r["dtype"]).itemsize,
                r["roof_s"],
                limits,
                threads,
                r.get("zero_frac", 0.0),
            )
        )

    lines = report(
        args,
        machine,
        limits,
        threads,
        iter_results,
        fit_result,
        mem_result,
        time.perf_counter() - began,
    )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        raw = {
            "argv": sys.argv[1:],
            "machine": dict(machine),
            "limits": limits,
            "iter": iter_results,
            "fit": fit_result,
            "memory": mem_result,
        }
        out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=str))
        say(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
