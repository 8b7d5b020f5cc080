"""The closed-form M-step in one kernel call.

For the models whose record is ``closed`` (scikit-learn's four, mclust's EEI and
EII), :func:`closed_params` computes weights, means, covariances and their
precision-Cholesky factors with :func:`fastgmm.kernels.mstep.closed_m_step`, the same
formulas as the records' ``m_step`` and ``prec_chol``, and with them the next
E-step's kernel inputs (those of :func:`fastgmm.model.params.kernel_inputs`). It returns None when the model
has no such form or a covariance is not positive definite: the caller then takes
:func:`fastgmm.model.covariance.estimate`, which raises or is repaired as usual.
"""

import numpy as np

from .._jit import kernel_array
from ..kernels.mstep import DENSE, DIAGONAL, SCALAR, closed_m_step
from .params import KernelInputs, Params

_FORMS = {"dense": DENSE, "diag": DIAGONAL, "scalar": SCALAR}
_NO_TOTAL = (np.zeros(0), np.zeros((0, 0)))
#: (p, q) of one covariance in the kernel's (m, p, q) layout
_PLANE = {
    "dense": lambda d: (d, d),
    "diag": lambda d: (1, d),
    "scalar": lambda d: (1, 1),
}


def closed_params(model, stats, ref, reg_covar, tied_total=None):
    """:class:`Params` of ``model``'s M-step from the statistics (nk, s1, s2) about
    ``ref``, their kernel inputs made with them, or None (see the module
    docstring).

    ``tied_total`` = (centre, total scatter) of the data, for dense shared models.
    """
    if not model.closed:
        return None
    nk_raw, s1, s2 = (kernel_array(a) for a in stats)
    k, d = s1.shape
    shape = model.shape(k, d)
    kernel_shape = (1 if model.shared else k, *_PLANE[model.form](d))
    weights, means = np.empty(k), np.empty((k, d))
    cov, prec = np.empty(kernel_shape), np.empty(kernel_shape)
    const, loc = np.empty(k), np.empty((k, d))
    # the kind's layout: prec itself where it is the same (full, tied, diag)
    same = model.form == "dense" or (model.form == "diag" and not model.shared)
    kprec = prec if same else np.empty((k, 1, d))
    dense_shared = model.form == "dense" and model.shared
    centre, total = tied_total if dense_shared else _NO_TOTAL
    failed = closed_m_step(
        nk_raw, s1, s2, kernel_array(ref), float(reg_covar), _FORMS[model.form],
        model.shared, kernel_array(centre), kernel_array(total),
        weights, means, cov, prec, const, loc, kprec,
    )  # fmt: skip
    if failed >= 0:
        return None
    params = Params(model, weights, means, cov.reshape(shape), prec.reshape(shape))
    return params.with_kernel(KernelInputs(model.kind, const, loc, kprec))
