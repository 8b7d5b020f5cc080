"""Compare fastgmm with the output of docs/mclust_compare.R (run that first).

    python docs/mclust_compare.py data.csv out/

Prints the BIC tables side by side (mclust's sign) with their largest difference,
and for each model the EM path from mclust's start z (the M-step of z, then EM):
the log-likelihood after each iteration in both, and the largest difference.
"""

import sys
from pathlib import Path

import numpy as np

import fastgmm
from fastgmm.model import covariance


def read_csv(path):
    with open(path) as f:
        head = f.readline().strip().split(",")
    data = np.genfromtxt(path, delimiter=",", skip_header=1, missing_values="NA")
    return [h.strip('"') for h in head], np.atleast_2d(data)


def start_from_z(X, z, name):
    """mclust's mstep(modelName, X, z) in fastgmm: weights, means, precisions."""
    nk = z.sum(0)
    means = z.T @ X / nk[:, None]
    s2 = np.stack(
        [(z[:, k, None] * (X - means[k])).T @ (X - means[k]) for k in range(len(nk))]
    )
    model = covariance.get(name)
    if model.form != "dense":
        s2 = np.diagonal(s2, axis1=1, axis2=2)[:, None, :]
    stats = (nk, np.zeros_like(means), s2)
    centre = X.mean(0)
    total = (X - centre).T @ (X - centre)
    w, mu, cov = covariance.estimate(name, stats, means, 0.0, (centre, total))
    return w, mu, np.asarray(model.precisions(model.prec_chol(cov)))  # EII: 0-d


def main(data_csv, out):
    out = Path(out)
    _, X = read_csv(data_csv)
    cols, bic_r = read_csv(out / "bic.csv")
    models = cols[1:]
    res = fastgmm.mclust(X, range(1, 10), models, reg_covar=0.0, tol=1e-8, n_init=3)
    bic_r = bic_r[:, 1:]
    print("mclust BIC:\n", np.round(bic_r, 3))
    print("fastgmm BIC:\n", np.round(res.bic, 3))
    both = np.isfinite(bic_r) & np.isfinite(res.bic)
    print(
        "largest |difference| where both fitted:", np.abs(bic_r - res.bic)[both].max()
    )
    _, z = read_csv(out / "z.csv")
    for name in models:
        _, path = read_csv(out / f"path_{name}.csv")
        w, mu, prec = start_from_z(X, z, name)
        gm = fastgmm.GaussianMixture(
            z.shape[1], covariance_type=name, weights_init=w, means_init=mu,
            precisions_init=prec, reg_covar=0.0, tol=0.0, max_iter=len(path),
        ).fit(X)  # fmt: skip
        # lower_bounds_[t]: log L of the parameters after t + 1 M-steps (the start is
        # the M-step of z), mclust's loglik after itmax = t + 1
        ours = np.asarray(gm.lower_bounds_) * len(X)
        theirs = path[: len(ours), 1]
        print(
            f"{name}: largest |loglik difference| over {len(ours)} iterations "
            f"{np.max(np.abs(ours - theirs)):.3g}"
        )


if __name__ == "__main__":
    main(*sys.argv[1:3])
