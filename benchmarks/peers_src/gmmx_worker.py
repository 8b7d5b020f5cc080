"""gmmx's EMFitter (JAX, CPU) as a peers.py worker: ``python gmmx_worker.py THREADS``
(JAX uses the machine's cores). It starts from the given parameters and runs m
iterations (``tol`` -1: never converged). gmmx computes in float32 only: float64
cases are reported as failures rather than silently run in float32."""

import jax.numpy as jnp
import numpy as np
from gmmx import EMFitter, GaussianMixtureModelJax
from worker import serve


def fit(X, w, mu, cov, kind, m):
    if X.dtype != np.float32:
        raise ValueError("gmmx computes in float32 only")
    gmm = GaussianMixtureModelJax.from_squeezed(
        means=jnp.asarray(mu), covariances=jnp.asarray(cov), weights=jnp.asarray(w),
        covariance_type=kind,
    )  # fmt: skip
    result = EMFitter(max_iter=m, tol=-1.0, reg_covar=0.0).fit(jnp.asarray(X), gmm)
    out = result.gmm
    return (
        int(result.n_iter), np.ravel(out.weights_numpy), out.means_numpy,
        out.covariances.values_numpy,
    )  # fmt: skip


if __name__ == "__main__":
    serve(fit)
