"""The closed-form M-step in one kernel call.

For the models whose record is ``closed`` (scikit-learn's four, mclust's EEI and
EII), :func:`closed_params` computes weights, means, covariances and their
precision-Cholesky factors with :func:`fastgmm.kernels.mstep.closed_m_step`, the same
formulas as the records' ``m_step`` and ``prec_chol``, and in the same call the E-step
inputs of the new parameters (kept with them: ``kernel_inputs`` returns them). It returns None when the model
has no such form or a covariance is not positive definite: the caller then takes
:func:`fastgmm.model.covariance.estimate`, which raises or is repaired as usual.
"""

import functools

import numpy as np

from .._jit import kernel_array
from ..kernels import TIED
from ..kernels.mstep import closed_m_step
from .params import FORMS, KernelInputs, Params, factor_layout, with_inputs

_F64 = np.dtype(np.float64)
_NO_TOTAL = (kernel_array(np.zeros(0)), kernel_array(np.zeros((0, 0))))


@functools.lru_cache(maxsize=256)
def _layout(model, k, d):
    """(covariance shape, kernel layout, kernel factor shape) of ``model`` for K, d
    (the same for every iteration of a fit: looked up once)."""
    kernel_shape = factor_layout(model, k, d)
    kprec = (1 if model.kind == TIED else k, kernel_shape[1], d)
    return model.shape(k, d), kernel_shape, kprec


def _f64(a):
    """``a`` when it is already a C-contiguous float64 ndarray (a kernel's or NumPy's
    statistics: the kernel call makes it read-only), else kernel_array(a)."""
    if type(a) is np.ndarray and a.dtype == _F64 and a.flags.c_contiguous:
        return a
    return kernel_array(a)


def closed_params(model, stats, ref, reg_covar, tied_total=None):
    """:class:`Params` of ``model``'s M-step from the statistics (nk, s1, s2) about
    ``ref``, or None (see the module docstring).

    ``tied_total`` = (centre, total scatter) of the data, for dense shared models.
    """
    if not model.closed:
        return None
    nk_raw, s1, s2 = stats
    k, d = s1.shape
    shape, kernel_shape, kprec_shape = _layout(model, k, d)
    weights, means = np.empty(k), np.empty((k, d))
    cov, prec = np.empty(kernel_shape), np.empty(kernel_shape)
    shared = model.shared
    centre, total = tied_total if shared and model.form == "dense" else _NO_TOTAL
    terms = (np.empty(k), np.empty((k, d)), np.empty(kprec_shape))
    failed = closed_m_step(
        _f64(nk_raw), _f64(s1), _f64(s2), _f64(ref), float(reg_covar),
        FORMS[model.form], shared, _f64(centre), _f64(total),
        weights, means, cov, prec, terms,
    )  # fmt: skip
    if failed >= 0:
        return None
    params = Params(model, weights, means, cov.reshape(shape), prec.reshape(shape))
    return with_inputs(params, KernelInputs(model.kind, *terms))
