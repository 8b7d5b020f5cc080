#!/usr/bin/env python
"""fastgmm.segment on a real photo upscaled to 16 and 100 megapixels, against scikit-learn.

Usage::

    python benchmarks/bench_segment.py [--photo astronaut] [--sizes 16,100]
        [--k 8] [--repeats 3] [--sample-size 1000000] [--no-sklearn]
        [--out benchmarks/results/segment.md]

The photo (scikit-image's, 8-bit RGB) is upscaled with Pillow's bicubic filter, which
creates new in-between colours as a scanner would (astronaut: 113k distinct colours at
0.26 MP, 906k at 16 MP, 1.45M at 100 MP). Every job runs in a fresh subprocess that
first warms the JIT on a small crop (loading the on-disk cache), reads its resident
set, loads the image, resets the peak (``/proc/self/clear_refs``) and then times one
call. Jobs (K components, full covariances, random_state=0, default tol):

fastgmm
    ``segment(image, K)``: exact fit on the distinct colours weighted by their
    counts, then every pixel through the colour look-up table.
fastgmm-sampled
    ``segment(image, K, exact=False, sample_size=S)``: the fit on a seeded sample of
    S pixels, then every pixel through the look-up table.
sklearn
    ``sklearn.mixture.GaussianMixture(K)`` fitted on the *same* S pixels as
    fastgmm-sampled (built untimed), then ``predict`` on all pixels in chunks of
    2**20 pixels, each converted to float64 features. This is the "same job" the
    speed-up is measured against (16 MP only: at 100 MP it takes too long).
fastgmm-lab, fastgmm-xy
    Lab colour space (exact), and ``xy=0.5`` (sampled fit, chunked prediction).

Reported per job: the medians over repeats of the fit time (colour counting or
sampling, plus EM), the predict time (labelling every pixel), their throughput in
image megapixels per second, the CPU time, the EM iterations, and the peak resident
set of the process (interpreter and libraries included) also as a multiple of the
uint8 image's size. Runs alternate between the jobs (A B C A B C ...); the speed-up
is the median of per-round ratios sklearn / fastgmm-sampled (and / fastgmm).
Results also go to ``--out`` (benchmarks/results/ is not tracked by git).

``--omp-passive`` runs the jobs with ``OMP_WAIT_POLICY=PASSIVE``. Numba's OpenMP
threads (and scikit-learn's) spin while they wait at the end of a parallel region;
on a shared, oversubscribed machine the spinning threads steal the cores the
working threads need, and 2-thread EM iterations were measured 5-100x slower than
1-thread ones (0.9-16 s instead of 0.08 s at 1.45M points); passive waiting keeps
them at 0.09 s. On a quiet machine the default is at least as fast.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOBS_16 = ("fastgmm", "fastgmm-sampled", "sklearn", "fastgmm-lab", "fastgmm-xy")
JOBS_100 = ("fastgmm", "fastgmm-sampled")
SK_CHUNK = 1 << 20


def say(*args):
    print(*args, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------- images
def make_image(photo, megapixels, path):
    """Upscale a scikit-image photo (bicubic) to ~megapixels and save it as .npy."""
    import numpy as np
    import skimage.data
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    small = getattr(skimage.data, photo)()[..., :3]
    h, w = small.shape[:2]
    scale = (megapixels * 1e6 / (h * w)) ** 0.5
    size = (round(w * scale), round(h * scale))
    big = np.asarray(Image.fromarray(small).resize(size, Image.BICUBIC))
    np.save(path, big)
    return big.shape


# -------------------------------------------------------------------------- child
def _rss_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _cpu():
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _sample_like_fastgmm(image, size, seed=0):
    """The pixels fastgmm-sampled fits on, as float64 rows, in NumPy only.

    fastgmm draws ``default_rng(seed).multinomial(size, counts / counts.sum())``
    over the distinct colours in key order (r << 16 | g << 8 | b); so does this.
    """
    import numpy as np

    px = image.reshape(-1, 3)
    keys = (px[:, 0].astype(np.int64) << 16) | (px[:, 1].astype(np.int64) << 8)
    keys |= px[:, 2]
    counts = np.bincount(keys, minlength=1 << 24)
    del keys
    colours = np.flatnonzero(counts)
    weight = counts[colours].astype(np.float64)
    drawn = np.random.default_rng(seed).multinomial(size, weight / weight.sum())
    keep = np.flatnonzero(drawn)
    shifts = np.array([16, 8, 0])
    rows = ((colours[keep, None] >> shifts) & 255).astype(np.float64) / 255.0
    return np.repeat(rows, drawn[keep], axis=0)


def _run_sklearn(image, k, sample):
    import numpy as np
    from sklearn.mixture import GaussianMixture

    t0 = time.perf_counter()
    gm = GaussianMixture(k, random_state=0).fit(sample)
    t_fit = time.perf_counter()
    px = image.reshape(-1, 3)
    labels = np.empty(len(px), np.uint8)
    for start in range(0, len(px), SK_CHUNK):
        X = px[start : start + SK_CHUNK].astype(np.float64) / 255.0
        labels[start : start + SK_CHUNK] = gm.predict(X)
    t_end = time.perf_counter()
    return t_fit - t0, t_end - t_fit, gm.n_iter_


def _run_fastgmm(image, k, options):
    import fastgmm.segmentation as seg

    marks = {}

    def progress(fraction, message):
        if message == "labelling pixels":
            marks.setdefault("fit_end", time.perf_counter())

    t0 = time.perf_counter()
    _, model = seg.segment(image, k, progress=progress, return_model=True, **options)
    t_end = time.perf_counter()
    return marks["fit_end"] - t0, t_end - marks["fit_end"], model.n_iter_


def child(job, path, k, sample_size):
    """Run one job on the image at ``path``; print a JSON line."""
    import warnings

    import numpy as np

    warnings.simplefilter("ignore")
    options = {
        "fastgmm": {},
        "fastgmm-sampled": {"exact": False, "sample_size": sample_size},
        "fastgmm-lab": {"colour_space": "lab"},
        "fastgmm-xy": {"xy": 0.5, "sample_size": sample_size},
    }.get(job)
    tiny = np.ascontiguousarray(np.load(path, mmap_mode="r")[:64, :64])
    t0 = time.perf_counter()
    if job == "sklearn":
        from sklearn.mixture import GaussianMixture

        GaussianMixture(k, max_iter=2).fit(tiny.reshape(-1, 3) / 255.0)
    else:  # load (or compile) the kernels
        import fastgmm.segmentation as seg

        seg.segment(tiny, k, max_iter=2, **options)
    warm = time.perf_counter() - t0
    rss_runtime = _rss_kb("VmRSS:") * 1024
    image = np.load(path)
    sample = _sample_like_fastgmm(image, sample_size) if job == "sklearn" else None
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    cpu0 = _cpu()
    if job == "sklearn":
        fit, predict, n_iter = _run_sklearn(image, k, sample)
    else:
        fit, predict, n_iter = _run_fastgmm(image, k, options)
    row = {
        "job": job,
        "megapixels": image.shape[0] * image.shape[1] / 1e6,
        "image_bytes": image.nbytes,
        "fit": fit,
        "predict": predict,
        "cpu": _cpu() - cpu0,
        "n_iter": int(n_iter),
        "peak_bytes": _rss_kb("VmHWM:") * 1024,
        "runtime_bytes": rss_runtime,
        "warmup": warm,
    }
    print(json.dumps(row))


# ------------------------------------------------------------------------- parent
def run_child(job, path, args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    if args.omp_passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    cmd = [sys.executable, __file__, "--_child", job, str(path), str(args.k)]
    cmd += ["--sample-size", str(args.sample_size)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{job} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(rows, key):
    return statistics.median(r[key] for r in rows)


def table(results, sizes):
    """Markdown table of the medians (and the best total) of each job."""
    head = (
        "| image | job | fit s | predict s | total s (best) | fit MP/s | predict MP/s "
        "| CPU s | EM iter | peak RSS MB | peak / image | sklearn time / this |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for mp in sizes:
        by_job = results[mp]
        sk = by_job.get("sklearn")
        for job, rows in by_job.items():
            fit, pred = median(rows, "fit"), median(rows, "predict")
            best = min(r["fit"] + r["predict"] for r in rows)
            mpix = rows[0]["megapixels"]
            ratio = ""
            if sk and job in ("fastgmm", "fastgmm-sampled"):  # the same job
                ratio = statistics.median(
                    (a["fit"] + a["predict"]) / (b["fit"] + b["predict"])
                    for a, b in zip(sk, rows)
                )
                ratio = f"{ratio:.0f}x"
            peak = median(rows, "peak_bytes")
            lines.append(
                f"| {mpix:.1f} MP | {job} | {fit:.2f} | {pred:.2f} "
                f"| {fit + pred:.2f} ({best:.2f}) | {mpix / fit:.1f} | {mpix / pred:.0f} "
                f"| {median(rows, 'cpu'):.1f} | {median(rows, 'n_iter'):.0f} "
                f"| {peak / 2**20:.0f} | {peak / rows[0]['image_bytes']:.2f} | {ratio} |"
            )
    return "\n".join(lines)


def environment():
    import numba
    import numpy as np
    import sklearn

    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}, numba "
        f"{numba.__version__}, scikit-learn {sklearn.__version__}, fastgmm {sha}+"
        f" (working tree); load average at start {os.getloadavg()[0]:.1f}"
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--photo", default="astronaut")
    p.add_argument("--sizes", default="16,100")
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sample-size", type=int, default=1_000_000)
    p.add_argument("--no-sklearn", action="store_true")
    p.add_argument("--jobs", help="comma-separated subset of the jobs")
    p.add_argument(
        "--omp-passive",
        action="store_true",
        help="run the jobs with OMP_WAIT_POLICY=PASSIVE (see the module docstring)",
    )
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/segment.md"))
    p.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._child:
        job, path, k = args._child
        return child(job, path, int(k), args.sample_size)
    sizes = [float(s) for s in args.sizes.split(",")]
    results, env = {}, environment()
    with tempfile.TemporaryDirectory() as tmp:
        for mp in sizes:
            path = Path(tmp) / f"{args.photo}_{mp:g}mp.npy"
            say(
                f"image: {args.photo} upscaled to {mp:g} MP ->",
                make_image(args.photo, mp, path),
            )
            jobs = JOBS_16 if mp <= 20 else JOBS_100
            if args.no_sklearn:
                jobs = tuple(j for j in jobs if j != "sklearn")
            if args.jobs:
                jobs = tuple(j for j in jobs if j in args.jobs.split(","))
            results[mp] = {job: [] for job in jobs}
            for r in range(args.repeats):
                for job in jobs:
                    t0 = time.perf_counter()
                    row = run_child(job, path, args)
                    results[mp][job].append(row)
                    say(
                        f"  round {r + 1} {job}: fit {row['fit']:.2f}s predict "
                        f"{row['predict']:.2f}s peak {row['peak_bytes'] / 2**20:.0f} MB "
                        f"({time.perf_counter() - t0:.0f}s with start-up)"
                    )
            path.unlink()
    report = [
        f"# fastgmm.segment benchmark: {args.photo}, K={args.k}, full covariances",
        "",
        env,
        (
            f"Medians of {args.repeats} rounds (best total in brackets); sample S = "
            f"{args.sample_size:,} pixels; load average at the end "
            f"{os.getloadavg()[0]:.1f}."
        ),
        "",
        table(results, sizes),
        "",
    ]
    if args.omp_passive:
        report.insert(3, "Jobs run with OMP_WAIT_POLICY=PASSIVE.")
    text = "\n".join(report)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(
        json.dumps({str(k): v for k, v in results.items()})
    )
    say(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
