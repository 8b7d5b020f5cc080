#!/usr/bin/env python
"""fastgmm against the other CPU Gaussian-mixture libraries, side by side.

Usage::

    python benchmarks/peers.py [--cases PATTERN ...] [--repeats 5] [--busy]
                               [--daal-python PATH] [--out FILE]

Per EM iteration, every system starts from the same parameters (a short
scikit-learn fit on a 20k-row subsample), runs with no convergence test for m and
for 1 iterations, alternating between systems (fastgmm, peer, fastgmm, peer, ...);
the net time of one iteration is (t(m) - t(1)) / (m - 1) per pair, and the ratio is
the median over pairs of peer net / fastgmm net (> 1: fastgmm faster). The final
parameters of every system are scored by one function (fastgmm's
``score``): *|Δ mean ll|* is the largest difference from fastgmm's, a check that the
peer computed the same EM (all systems run with ``reg_covar=0``, since the peers do
not regularise the same way). JIT compile is excluded (every system runs each case
once before timing).

Peers:

- scikit-learn (always; same process);
- Python peers in worker processes of their own Pythons (``benchmarks/peers_src/
  *_worker.py``; a peer whose module does not import there is left out, with the
  option to pass said): Intel oneDAL through ``daal4py`` (``em_gmm``; ``--daal-python``:
  daal4py pins its own NumPy and scikit-learn versions, so it is easiest in a virtual
  environment of its own), pomegranate's ``GeneralMixtureModel`` and torchgmm's EM
  module (PyTorch; ``--torch-python``) and gmmx's ``EMFitter`` (JAX; ``--jax-python``;
  float32 only: its float64 rows say so). Each starts from the given parameters and
  runs the given number of iterations with no convergence test; each worker times
  its own fit calls, and runs every new shape and iteration count once untimed first
  (JAX compiles per shape and count). A peer that raises on a case is reported as
  failing it, with its error. See benchmarks/README.md for the installs.

- Armadillo's ``gmm_diag`` / ``gmm_full`` (C++, OpenMP; full and diagonal), when g++
  and Armadillo's headers are installed (Debian: ``apt-get install
  libarmadillo-dev``): ``benchmarks/peers_src/armadillo_em.cpp`` is compiled into the
  run's temporary folder and run as a worker process that times its own calls.

mlpack is not run: its Python binding starts EM only from its own k-means or from a
model object it trained itself, not from given parameters; benchmarks/README.md lists
the figures measured for it by hand.

``--busy`` starts a process that spins on one core for the whole run (the case of a
machine shared with another busy process) and adds fastgmm on one thread and fastgmm
with its thread pacing off (every EM iteration on all threads) as peers, so the table
shows whether two threads are still faster than one and what the pacing gives.
"""

import argparse
import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare import (  # noqa: E402
    TICK,
    cpu_ticks,
    make_dataset,
    md_table,
    say,
    start_params,
)

#: case id -> (dataset, n, d, K, dtype, covariance type)
CASES = {
    "px64-full": ("pixel", 1_000_000, 3, 8, np.float64, "full"),
    "px64-diag": ("pixel", 1_000_000, 3, 8, np.float64, "diag"),
    "px32-full": ("pixel", 1_000_000, 3, 8, np.float32, "full"),
    "px32-diag": ("pixel", 1_000_000, 3, 8, np.float32, "diag"),
    "mid-full": ("blobs", 200_000, 16, 16, np.float64, "full"),
    "mid-diag": ("blobs", 200_000, 16, 16, np.float64, "diag"),
    "d64-full": ("blobs", 50_000, 64, 16, np.float64, "full"),
    "ubm-diag": ("blobs", 200_000, 40, 256, np.float64, "diag"),
    "ubm32-diag": ("blobs", 200_000, 40, 256, np.float32, "diag"),
}


def dataset(kind, n, d, K):
    if kind == "pixel":
        return make_dataset("pixel", n)
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0 if K <= 16 else 1.5, size=(K, d))
    labels = rng.integers(0, K, n)
    scale = rng.uniform(0.5, 1.5, size=(K, d))
    return np.ascontiguousarray(
        centres[labels] + rng.normal(size=(n, d)) * scale[labels]
    )


# -------------------------------------------------------------------------- systems
class InProcess:
    """A system fitted in this process: run(m) -> (seconds, weights, means, covs)."""

    def __init__(self, name, cls, **extra):
        self.name, self.cls, self.extra = name, cls, extra

    def prepare(self, X, cov, start):
        self.X, self.cov, self.start = X, cov, start

    def run(self, m):
        est = self.cls(
            n_components=len(self.start["weights_init"]),
            covariance_type=self.cov, tol=0.0, max_iter=m, reg_covar=0.0,
            **self.start, **self.extra,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            est.fit(self.X)
            seconds = time.perf_counter() - t0
        return seconds, est.n_iter_, est.weights_, est.means_, est.covariances_

    def close(self):
        pass


class Unpaced(InProcess):
    """fastgmm with its EM iterations kept on every thread whatever the load
    (``fastgmm._pacing.pacing`` off): the pacer's A/B under ``--busy``."""

    def run(self, m):
        from fastgmm import _pacing

        saved = _pacing.BUSY_CORES
        _pacing.BUSY_CORES = float("inf")
        try:
            return super().run(m)
        finally:
            _pacing.BUSY_CORES = saved


class Worker:
    """A peer in a worker process of another Python (its own virtual environment):
    ``benchmarks/peers_src/<script>`` answering jobs on stdin (peers_src/worker.py
    says how). Data and starting parameters reach it through .npy files; it times
    its own fit calls."""

    def __init__(self, name, script, python, n_threads, tmp):
        self.name, self.tmp = name, tmp
        self.out = os.path.join(tmp, script.replace(".py", "-"))
        self.proc = subprocess.Popen(
            [python, str(ROOT / "benchmarks" / "peers_src" / script), str(n_threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def prepare(self, X, cov, start):
        self.cov = cov
        self.files = {"X": os.path.join(self.tmp, "X.npy")}
        np.save(self.files["X"], X)
        for key, value in (
            ("w", start["weights_init"]),
            ("mu", start["means_init"]),
            ("cov", covariances_of(start["precisions_init"], cov)),
        ):
            self.files[key] = os.path.join(self.tmp, f"{key}.npy")
            np.save(self.files[key], np.asarray(value, X.dtype))

    def run(self, m):
        job = dict(self.files, kind=self.cov, m=m, out=self.out)
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} worker died")
        reply = json.loads(line)
        if "error" in reply:
            raise PeerFailed(reply["error"])
        w, mu, cov = (np.load(self.out + k + ".npy") for k in ("w", "mu", "cov"))
        return reply["seconds"], reply["iters"], w, mu, cov

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


class PeerFailed(Exception):
    """A peer could not run a case (its own error, reported in the table)."""


#: Python peers run as workers: (name, worker script, module to probe, option)
WORKERS = [
    ("oneDAL (daal4py)", "daal_worker.py", "daal4py", "daal_python"),
    ("pomegranate", "pomegranate_worker.py", "pomegranate", "torch_python"),
    ("torchgmm", "torchgmm_worker.py", "torchgmm", "torch_python"),
    ("gmmx (JAX)", "gmmx_worker.py", "gmmx", "jax_python"),
]


class Armadillo:
    """Armadillo's gmm_diag / gmm_full (C++, OpenMP): benchmarks/peers_src/
    armadillo_em.cpp, compiled here with g++ when Armadillo's headers are installed
    (Debian: ``apt-get install libarmadillo-dev``), run as a worker process that
    times its own ``learn`` calls (no k-means, ``var_floor`` 0)."""

    name = "Armadillo"
    SOURCE = ROOT / "benchmarks" / "peers_src" / "armadillo_em.cpp"

    @classmethod
    def build(cls, tmp):
        """Path of the compiled worker, or None (with the reason said)."""
        exe = os.path.join(tmp, "armadillo_em")
        cmd = ["g++", "-O3", "-march=native", "-fopenmp", "-std=c++17",
               str(cls.SOURCE), "-o", exe, "-larmadillo"]  # fmt: skip
        try:
            done = subprocess.run(cmd, capture_output=True, text=True)
        except FileNotFoundError:
            say("g++ not found: Armadillo left out")
            return None
        if done.returncode != 0:
            say("Armadillo not built (libarmadillo-dev installed?): left out")
            return None
        return exe

    def __init__(self, exe, n_threads, tmp):
        self.exe, self.n_threads, self.proc = exe, n_threads, None
        self.tmp = os.path.join(tmp, "arma")
        os.makedirs(self.tmp, exist_ok=True)

    def prepare(self, X, cov, start):
        self.close()
        self.dtype, self.shape, self.cov = X.dtype, X.shape, cov
        K = len(start["weights_init"])
        covs = covariances_of(start["precisions_init"], cov)
        for key, value in (
            ("X", X), ("w", start["weights_init"]), ("mu", start["means_init"]),
            ("cov", covs),
        ):  # fmt: skip
            np.ascontiguousarray(value, X.dtype).tofile(
                os.path.join(self.tmp, key + ".bin")
            )
        fp = "float" if X.dtype == np.float32 else "double"
        # passive: its OpenMP threads sleep between calls instead of spinning on the
        # cores the other systems are being timed on
        env = dict(
            os.environ, OMP_NUM_THREADS=str(self.n_threads), OMP_WAIT_POLICY="PASSIVE"
        )
        args = [self.exe, self.tmp, fp, cov, *map(str, (*X.shape, K))]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.K = K

    def run(self, m):
        self.proc.stdin.write(f"{m}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the Armadillo worker died")
        n, d = self.shape
        read = lambda k: np.fromfile(os.path.join(self.tmp, f"out-{k}.bin"), self.dtype)  # noqa: E731
        w, mu = read("w"), read("mu").reshape(self.K, d)
        cov = read("cov").reshape((self.K, d, d) if self.cov == "full" else (self.K, d))
        # learn() does not say how many iterations it ran (it stops early only when
        # the mean log-likelihood stops changing at all): counted as m
        return float(line), m, w, mu, cov

    def close(self):
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
            self.proc = None


def covariances_of(precisions, cov):
    return np.linalg.inv(precisions) if cov == "full" else 1.0 / precisions


def mean_ll(X, cov, w, mu, covs):
    """Mean log-likelihood of parameters (fastgmm's scorer, float64)."""
    from fastgmm import GaussianMixture

    gm = GaussianMixture(len(w), covariance_type=cov)
    prec = covariances_of(np.asarray(covs, np.float64), cov)
    gm.weights_, gm.means_ = np.asarray(w, np.float64), np.asarray(mu, np.float64)
    gm.covariances_ = np.asarray(covs, np.float64)
    gm.precisions_ = prec
    gm.precisions_cholesky_ = (
        np.linalg.cholesky(prec).transpose(0, 2, 1) if cov == "full" else np.sqrt(prec)
    )
    gm.converged_, gm.n_iter_, gm.lower_bound_ = True, 1, 0.0
    gm.lower_bounds_, gm.n_features_in_ = [], X.shape[1]
    return float(gm.score(np.asarray(X, np.float64)))


# ------------------------------------------------------------------------ measuring
def run_case(case, systems, args):
    kind, n, d, K, dtype, cov = CASES[case]
    n //= args.scale
    X64 = dataset(kind, n, d, K)
    start = start_params(X64, K, cov, dtype)
    X = np.ascontiguousarray(X64, dtype=dtype)
    failed = {}
    for s in systems:
        s.prepare(X, cov, start)
        try:
            s.run(2)  # compile / load / warm every system
        except PeerFailed as exc:
            failed[s.name] = str(exc)
    systems = [s for s in systems if s.name not in failed]
    m = args.iters
    net = {s.name: [] for s in systems}
    iters = {}
    finals = {}
    a0, t0 = cpu_ticks(), time.perf_counter()
    for _ in range(args.repeats):
        for s in systems:
            time.sleep(args.cooldown)
            tm, im, *params = s.run(m)
            time.sleep(args.cooldown)
            t1, i1, *_ = s.run(1)
            # per iteration the system actually ran: oneDAL stops before m once the
            # log-likelihood no longer changes (accuracyThreshold=0 still stops there)
            net[s.name].append((tm - t1) / (im - i1) if im > i1 else np.nan)
            iters[s.name] = im
            finals[s.name] = params
    b0, wall = cpu_ticks(), time.perf_counter() - t0
    others = None
    if a0 and b0:
        others = ((b0[0] - a0[0]) - (b0[1] - a0[1])) / TICK / wall
    fast = np.array(net["fastgmm"])
    ll_fast = mean_ll(X64, cov, *finals["fastgmm"])
    rows = []
    for s in systems:
        times = np.array(net[s.name])
        ll = mean_ll(X64, cov, *finals[s.name])
        rows.append(
            {
                "case": case, "n": n, "d": d, "K": K, "dtype": np.dtype(dtype).name,
                "cov": cov, "system": s.name, "net_s": float(np.median(times)),
                "ratio": float(np.median(times / fast)),
                "ratio_min": float(np.min(times / fast)),
                "ratio_max": float(np.max(times / fast)),
                "dll": abs(ll - ll_fast), "ll": ll, "others": others,
                "iters": int(iters[s.name]),
            }
        )  # fmt: skip
        say(f"  {case} {s.name}: {rows[-1]['net_s'] * 1e3:.1f} ms/iter, "
            f"x{rows[-1]['ratio']:.2f}, |dll| {rows[-1]['dll']:.1e}")  # fmt: skip
    for name, error in failed.items():
        rows.append(
            {"case": case, "n": n, "d": d, "K": K, "dtype": np.dtype(dtype).name,
             "cov": cov, "system": name, "failed": error, "others": others}
        )  # fmt: skip
        say(f"  {case} {name}: fails ({error})")
    return rows


def _measured(r):
    """The per-iteration, ratio, iterations and |Δ mean ll| cells of a row."""
    if "failed" in r:
        return "fails", r["failed"].replace("|", "/"), "-", "-"
    return (
        f"{r['net_s'] * 1e3:.1f} ms",
        f"{r['ratio']:.2f}× ({r['ratio_min']:.2f}–{r['ratio_max']:.2f})",
        str(r["iters"]), f"{r['dll']:.1e}",
    )  # fmt: skip


def blas_line():
    """The BLAS libraries of this process and the kernels they run: OpenBLAS picks
    them from the CPU when it loads, unless OPENBLAS_CORETYPE names a core (some
    machine images pin an older core; the GEMMs of the d >= 16 and large-K cases
    run about twice as fast with the AVX-512 kernels where the CPU has them)."""
    import scipy.linalg.cython_blas  # noqa: F401 (the BLAS fastgmm's kernels call)
    from threadpoolctl import threadpool_info

    libs = [
        f"{Path(p.get('filepath', '')).name} {p.get('version')}: "
        f"{p.get('architecture')} kernels"
        for p in threadpool_info()
        if p.get("user_api") == "blas"
    ]
    core = os.environ.get("OPENBLAS_CORETYPE")
    return (
        f"BLAS in this process (fastgmm, scikit-learn): {'; '.join(libs) or 'none'}; "
        + (f"OPENBLAS_CORETYPE={core}." if core else "OPENBLAS_CORETYPE unset.")
    )


def report(rows, args, load):
    out = [f"# fastgmm and its peers per EM iteration ({load})", ""]
    out.append(
        f"Same start, no convergence test, net time of one iteration = (t({args.iters})"
        " - t(1)) / (iterations run - 1) (*iters*: oneDAL stops before "
        f"{args.iters} once the log-likelihood no longer changes); medians over "
        f"{args.repeats} alternating "
        "rounds; *vs fastgmm* = median of per-round peer / fastgmm (> 1: fastgmm "
        "faster), min-max in brackets; *|Δ mean ll|* = difference of the final "
        "parameters' mean log-likelihood from fastgmm's; *others* = cores used by "
        "other processes (a spinner included) meanwhile."
    )
    out += ["", blas_line(), ""]
    out += md_table(
        ["case", "system", "per iter", "vs fastgmm", "iters", "|Δ mean ll|", "others"],
        [
            (
                f"{r['case']} ({r['n']:,}×{r['d']}, K={r['K']}, {r['dtype']})",
                r["system"], *_measured(r),
                "-" if r["others"] is None else f"{r['others']:.2f}",
            )
            for r in rows
        ],
    )  # fmt: skip
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", default=["*"], metavar="PATTERN",
                   help="case ids or globs: " + ", ".join(CASES))  # fmt: skip
    p.add_argument("--repeats", type=int, default=5, help="alternating rounds (5)")
    p.add_argument("--iters", type=int, default=4, help="m, iterations per run (4)")
    p.add_argument("--scale", type=int, default=1, help="divide every n by this")
    p.add_argument("--cooldown", type=float, default=0.2, help="sleep before runs, s")
    p.add_argument("--busy", action="store_true", help="hold one core with a spinner")
    p.add_argument("--threads", type=int, default=2, help="threads of every system")
    p.add_argument("--no-sklearn", action="store_true", help="leave scikit-learn out")
    p.add_argument("--daal-python", help="a Python with daal4py (default: this one)")
    p.add_argument("--torch-python", help="a Python with pomegranate and/or torchgmm")
    p.add_argument("--jax-python", help="a Python with gmmx (JAX)")
    p.add_argument("--no-armadillo", action="store_true", help="leave Armadillo out")
    p.add_argument("--out", help="also write the markdown (and .json) here")
    return p.parse_args(argv)


def make_systems(args, tmp):
    from sklearn.mixture import GaussianMixture as Sk

    from fastgmm import GaussianMixture as Fast

    systems = [InProcess("fastgmm", Fast, n_jobs=args.threads)]
    if args.busy:
        systems.append(InProcess("fastgmm, 1 thread", Fast, n_jobs=1))
        unpaced = f"fastgmm, {args.threads} threads unpaced"
        systems.append(Unpaced(unpaced, Fast, n_jobs=args.threads))
    if not args.no_sklearn:
        systems.append(InProcess("scikit-learn", Sk))
    for name, script, module, option in WORKERS:
        python = getattr(args, option) or sys.executable
        try:
            probe = subprocess.run(
                [python, "-c", f"import {module}"], capture_output=True
            ).returncode
        except OSError as exc:  # not a Python we can run (a wrong --daal-python)
            say(f"{python}: {exc.strerror}")
            probe = 1
        if probe == 0:
            systems.append(Worker(name, script, python, args.threads, tmp))
        else:
            flag = "--" + option.replace("_", "-")
            say(f"{module} not found (pass {flag}): {name} left out")
    exe = None if args.no_armadillo else Armadillo.build(tmp)
    if exe is not None:
        systems.append(Armadillo(exe, args.threads, tmp))
    return systems


def main(argv=None):
    args = parse_args(argv)
    spinner = None
    if args.busy:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            systems = make_systems(args, tmp)
            for case in CASES:
                if any(fnmatch.fnmatchcase(case, p) for p in args.cases):
                    say(f"{case} ...")
                    rows += run_case(case, systems, args)
            for s in systems:
                s.close()
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    load = "one core held by a spinning process" if args.busy else "no spinner"
    text = "\n".join(report(rows, args, load)) + "\n"
    print(text, end="")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        out.with_suffix(".json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
