"""torchgmm's Gaussian mixture (PyTorch Lightning; formerly PyCave) as a peers.py
worker: ``python torchgmm_worker.py THREADS``. Its estimator has no way to start from
given weights and covariances, so the worker builds its model with the starting
parameters and runs its EM module (``GaussianMixtureLightningModule``, the one the
estimator's fit runs after its initialisation) for m epochs of full-batch EM, as the
estimator would, with no convergence test and no regularisation."""

import logging
import sys
import warnings

import pytorch_lightning as pl
import torch
from torchgmm.base.data import DataLoader, collate_tensor, dataset_from_tensors
from torchgmm.bayes.core.normal import cholesky_precision
from torchgmm.bayes.gmm.lightning_module import GaussianMixtureLightningModule
from torchgmm.bayes.gmm.model import GaussianMixtureModel, GaussianMixtureModelConfig
from worker import serve


def fit(X, w, mu, cov, kind, m):
    K, d = mu.shape
    model = GaussianMixtureModel(GaussianMixtureModelConfig(K, d, kind))
    dtype = torch.float64 if X.dtype.itemsize == 8 else torch.float32
    model = model.to(dtype)
    with torch.no_grad():
        model.component_probs.copy_(torch.from_numpy(w))
        model.means.copy_(torch.from_numpy(mu))
        model.precisions_cholesky.copy_(cholesky_precision(torch.from_numpy(cov), kind))
    data = torch.from_numpy(X)
    loader = DataLoader(
        dataset_from_tensors(data), batch_size=len(data), collate_fn=collate_tensor
    )
    module = GaussianMixtureLightningModule(
        model, convergence_tolerance=0.0, covariance_regularization=0.0
    )
    trainer = pl.Trainer(
        max_epochs=m, accelerator="cpu", devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, precision=64 if dtype == torch.float64 else 32,
    )  # fmt: skip
    trainer.fit(module, loader)
    covs = model.covariances.detach().numpy()
    return m, model.component_probs.numpy(), model.means.numpy(), covs


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(int(sys.argv[1]))
    serve(fit)
