"""The loop every Python peer worker of ``benchmarks/peers.py`` runs.

A worker runs in a Python of its own (the peer's virtual environment) and reads
one JSON job per line on stdin: the .npy files of the data X and the starting
weights ``w``, means ``mu`` and covariances ``cov`` (K x d x d for "full", K x d for
"diag"), the covariance ``kind``, the iteration count ``m`` and an ``out`` prefix. It
fits, saves the final w, mu, cov to ``out`` + "w.npy" etc. and answers one JSON line:
{"seconds": ..., "iters": ...} (its own timing of the fit call alone), or
{"error": "..."} when the peer fails (the table says so).

The first job of every (shape, dtype, kind, m) is run once untimed first, so
compilation (JAX) and first-call set-up are not timed.
"""

import json
import sys
import time
import traceback

import numpy as np


def serve(fit):
    """Answer jobs with ``fit(X, w, mu, cov, kind, m) -> (iters, w, mu, cov)``."""
    seen = set()
    for line in sys.stdin:
        job = json.loads(line)
        X = np.load(job["X"])
        w, mu, cov = (np.load(job[k]) for k in ("w", "mu", "cov"))
        key = (X.shape, X.dtype.str, job["kind"], job["m"])
        try:
            if key not in seen:
                fit(X, w, mu, cov, job["kind"], job["m"])
                seen.add(key)
            t0 = time.perf_counter()
            iters, w1, mu1, cov1 = fit(X, w, mu, cov, job["kind"], job["m"])
            seconds = time.perf_counter() - t0
        except Exception as exc:  # the peer's failure is a result, reported
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            print(json.dumps({"error": last[:200]}), flush=True)
            continue
        for name, value in (("w", w1), ("mu", mu1), ("cov", cov1)):
            np.save(job["out"] + name + ".npy", np.asarray(value))
        print(json.dumps({"seconds": seconds, "iters": int(iters)}), flush=True)
