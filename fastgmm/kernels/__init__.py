"""Every Numba kernel of fastgmm, and nothing else.

Kernels take arrays and scalars and write into outputs their caller allocated; they
import only the JIT policy (:mod:`fastgmm._jit`) and each other. See
``docs/architecture.md``.
"""
