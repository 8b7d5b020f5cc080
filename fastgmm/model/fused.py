"""The closed-form M-step in one kernel call.

For the models whose record is ``closed`` (scikit-learn's four, mclust's EEI and
EII), :func:`closed_params` computes weights, means, covariances and their
precision-Cholesky factors with :func:`fastgmm.kernels.mstep.closed_m_step`, the same
formulas as the records' ``m_step`` and ``prec_chol``, and in the same call the E-step
inputs of the new parameters (kept with them: ``kernel_inputs`` returns them). It returns None when the model
has no such form or a covariance is not positive definite: the caller then takes
:func:`fastgmm.model.covariance.estimate`, which raises or is repaired as usual.
"""

import numpy as np

from .._jit import kernel_array
from ..kernels import TIED
from ..kernels.mstep import closed_m_step
from .params import FORMS, KernelInputs, Params, factor_layout, with_inputs

_NO_TOTAL = (kernel_array(np.zeros(0)), kernel_array(np.zeros((0, 0))))


def closed_params(model, stats, ref, reg_covar, tied_total=None):
    """:class:`Params` of ``model``'s M-step from the statistics (nk, s1, s2) about
    ``ref``, or None (see the module docstring).

    ``tied_total`` = (centre, total scatter) of the data, for dense shared models.
    """
    if not model.closed:
        return None
    nk_raw, s1, s2 = (kernel_array(a) for a in stats)
    k, d = s1.shape
    shape = model.shape(k, d)
    kernel_shape = factor_layout(model, k, d)
    weights, means = np.empty(k), np.empty((k, d))
    cov, prec = np.empty(kernel_shape), np.empty(kernel_shape)
    dense_shared = model.form == "dense" and model.shared
    centre, total = tied_total if dense_shared else _NO_TOTAL
    kind = model.kind
    terms = (
        np.empty(k),
        np.empty((k, d)),
        np.empty((1 if kind == TIED else k, *kernel_shape[1:2], d)),
    )
    failed = closed_m_step(
        nk_raw, s1, s2, kernel_array(ref), float(reg_covar), FORMS[model.form],
        model.shared, kernel_array(centre), kernel_array(total),
        weights, means, cov, prec, terms,
    )  # fmt: skip
    if failed >= 0:
        return None
    params = Params(model, weights, means, cov.reshape(shape), prec.reshape(shape))
    return with_inputs(params, KernelInputs(kind, *terms))
