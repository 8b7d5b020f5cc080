"""pomegranate's GeneralMixtureModel (PyTorch) as a peers.py worker:
``python pomegranate_worker.py THREADS``. It starts from the given parameters
(distributions with means and covariances set are not re-initialised) and runs m
EM iterations (``tol`` -inf, no inertia), in the data's dtype."""

import sys

import torch
from pomegranate.distributions import Normal
from pomegranate.gmm import GeneralMixtureModel
from worker import serve


def fit(X, w, mu, cov, kind, m):
    dists = [
        Normal(torch.from_numpy(mu[k]), torch.from_numpy(cov[k]), covariance_type=kind)
        for k in range(len(w))
    ]
    model = GeneralMixtureModel(
        dists, priors=torch.from_numpy(w), max_iter=m, tol=-float("inf")
    )
    model.fit(torch.from_numpy(X))
    means = torch.stack([d.means for d in model.distributions]).numpy()
    covs = torch.stack([d.covs for d in model.distributions]).numpy()
    return m, model.priors.numpy(), means, covs


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[1]))
    serve(fit)
