"""Kernel: precision-Cholesky factors of a stack of small covariance matrices.

The M-step of a dense covariance model needs, per component, the lower Cholesky
factor L of its covariance and U = inv(L)' (so that U U' = inv(cov)), as
scikit-learn computes them with ``scipy.linalg.cholesky`` and ``solve_triangular``.
For the small matrices of most mixtures SciPy's per-call checks and wrappers cost
far more than the arithmetic (about 15 us per call, two calls per component per
EM iteration); this kernel does the whole stack in one call. The result equals
SciPy's to rounding (the same algorithm; sums in a fixed order).
"""

import numpy as np

from .._jit import kernel


@kernel(inputs="cov")
def prec_chol_stack(cov, out):
    """out[k] = inv(chol(cov[k]))' (upper triangular) for cov (m, d, d) float64.

    Reads the lower triangle of each cov[k]. Returns -1, or the first k whose
    matrix has a non-finite entry or is not positive definite (out is then
    partly written; callers fall back to SciPy, which raises its own error).
    """
    m, d = cov.shape[0], cov.shape[1]
    low = np.zeros((d, d))
    col = np.zeros(d)
    for k in range(m):
        a = cov[k]
        for i in range(d):
            for j in range(i + 1):
                if not np.isfinite(a[i, j]):
                    return k
        for j in range(d):  # Cholesky-Crout, column by column
            s = a[j, j]
            for p in range(j):
                s -= low[j, p] * low[j, p]
            if not s > 0.0:
                return k
            ljj = np.sqrt(s)
            low[j, j] = ljj
            for i in range(j + 1, d):
                t = a[i, j]
                for p in range(j):
                    t -= low[i, p] * low[j, p]
                low[i, j] = t / ljj
        u = out[k]
        for c in range(d):  # column c of inv(L) by forward substitution = row c of U
            for i in range(c):
                u[c, i] = 0.0
            col[c] = 1.0 / low[c, c]
            for i in range(c + 1, d):
                t = 0.0
                for p in range(c, i):
                    t -= low[i, p] * col[p]
                col[i] = t / low[i, i]
            for i in range(c, d):
                u[c, i] = col[i]
    return -1
