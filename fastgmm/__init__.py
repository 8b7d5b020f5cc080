"""fastgmm: fast Gaussian Mixture Models on the CPU.

A drop-in for :class:`sklearn.mixture.GaussianMixture` (and
:class:`~sklearn.mixture.BayesianGaussianMixture`) whose EM runs in fused,
Numba-parallel kernels. Importing this package compiles nothing and does not import
scikit-learn or Numba; they load on first use.
"""

__version__ = "0.1.0"
__all__ = [
    "BayesianGaussianMixture",
    "GaussianMixture",
    "load",
    "save",
    "segment",
    "select",
    "threads",
    "warmup",
    "__version__",
]


#: public name -> module that defines it (imported on first access)
_LAZY = {
    "BayesianGaussianMixture": ".bayesian",
    "GaussianMixture": ".mixture",
    "threads": "._runtime",
    "load": ".io.persist",
    "save": ".io.persist",
    "select": ".selection",
    "segment": ".segmentation",
    "warmup": "._warmup",
}


def __getattr__(name):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'fastgmm' has no attribute {name!r}")
