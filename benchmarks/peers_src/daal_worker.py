"""oneDAL's em_gmm (daal4py) as a peers.py worker: ``python daal_worker.py THREADS``."""

import sys

import daal4py
import numpy as np
from worker import serve


def fit(X, w, mu, cov, kind, m):
    storage = "full" if kind == "full" else "diagonal"
    algo = daal4py.em_gmm(
        nComponents=len(w), maxIterations=m, accuracyThreshold=0.0,
        covarianceStorage=storage,
        fptype="float" if X.dtype == np.float32 else "double",
    )  # fmt: skip
    covs = [c if storage == "full" else c[None, :] for c in cov]
    r = algo.compute(X, w[None, :], mu, covs)
    covs = np.array([np.squeeze(c) for c in r.covariances])
    # oneDAL stops before m once the log-likelihood stops changing, even with
    # accuracyThreshold=0: its own count is reported
    return int(r.nIterations[0, 0]), np.ravel(r.weights), r.means, covs


if __name__ == "__main__":
    daal4py.daalinit(int(sys.argv[1]))
    serve(fit)
