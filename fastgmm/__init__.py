"""fastgmm: fast Gaussian Mixture Models on the CPU.

A drop-in for :class:`sklearn.mixture.GaussianMixture` whose EM runs in fused,
Numba-parallel kernels. Importing this package compiles nothing and does not import
scikit-learn or Numba; they load on first use.
"""

__version__ = "0.1.0"
__all__ = ["GaussianMixture", "load", "save", "threads", "warmup", "__version__"]


def __getattr__(name):
    if name == "GaussianMixture":
        from .mixture import GaussianMixture

        return GaussianMixture
    if name == "threads":
        from ._jit import threads

        return threads
    if name in ("load", "save"):
        from . import _persist

        return getattr(_persist, name)
    if name == "warmup":
        from ._warmup import warmup

        return warmup
    raise AttributeError(f"module 'fastgmm' has no attribute {name!r}")
