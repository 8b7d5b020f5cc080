"""Every Numba kernel of fastgmm, and nothing else.

Kernels take arrays and scalars and write into outputs their caller allocated; they
import only the JIT policy (:mod:`fastgmm._jit`) and each other. See
``docs/architecture.md``.
"""

#: density kinds, the kernels' only notion of a covariance model (see
#: :mod:`fastgmm.kernels.logdensity`): defined here so that importing them loads no Numba
FULL, TIED, DIAG = 0, 1, 2
