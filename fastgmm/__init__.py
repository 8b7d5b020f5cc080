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
    "mclust",
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
    "mclust": ".clustering",
    "save": ".io.persist",
    "select": ".selection",
    "segment": ".segmentation",
    "warmup": "._warmup",
}


#: public submodules, imported on first access (``fastgmm.inspection.summary``)
_SUBMODULES = (
    "bayesian",
    "dask",
    "exceptions",
    "inspection",
    "mixture",
    "plotting",
    "scaling",
    "segmentation",
    "selection",
)


def __getattr__(name):
    from importlib import import_module

    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    if name in _SUBMODULES:
        return import_module("." + name, __name__)
    raise AttributeError(f"module 'fastgmm' has no attribute {name!r}")


def __dir__():
    """The public names (loaded on first use) beside the module's own: what
    ``dir(fastgmm)`` and tab completion in IPython/Jupyter offer."""
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES) | set(__all__))
