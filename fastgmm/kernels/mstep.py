"""Kernel: the closed-form M-step of a mixture in one call.

scikit-learn's four covariance models and mclust's EEI, EII turn the statistics of a
pass (nk, s1, s2 about ``ref``) into weights, means, covariances and
precision-Cholesky factors by a few small array operations each. On small data their
NumPy calls (a microsecond or more each on arrays of a few numbers) cost more than the
pass itself; this kernel does them all at once, with the same formulas in the same
order as :mod:`fastgmm.model.covariance` (equal to rounding). It reports failure
(a covariance not positive definite or not finite) instead of raising: the caller
then takes the NumPy path, which raises or repairs as usual.
"""

import numpy as np

from .._jit import kernel
from .cholesky import prec_chol_stack

#: the forms of :class:`fastgmm.model.covariance.CovarianceModel`, as kernel codes
DENSE, DIAGONAL, SCALAR = 0, 1, 2

EPS10 = 10 * np.finfo(np.float64).eps


@kernel(inputs="nk_raw s1 s2 ref centre total")
def closed_m_step(
    nk_raw, s1, s2, ref, reg, form, shared, centre, total, weights, means, cov, prec,
    terms,
):  # fmt: skip
    """M-step of one closed-form model; returns -1, or k >= 0 when a covariance
    (k: its component, 0 for a shared one) is not positive definite or not finite
    (the outputs are then partly written).

    nk_raw (K,), s1 (K, d), s2 (K, p, d) (p = d, lower triangles, for DENSE, else 1)
    about ref (K, d); ``form`` DENSE / DIAGONAL / SCALAR, ``shared`` one covariance
    for all; centre (d,) and total (d, d): the data's total scatter (dense shared).
    Writes weights (K,), means (K, d), and the covariances and their factors (cov,
    prec) as (m, p, q): m = 1 if shared else K; (p, q) = (d, d) DENSE, (1, d)
    DIAGONAL, (1, 1) SCALAR. On success also the E-step inputs of the new
    parameters, terms = (const, loc, kprec) of ``density_terms`` (the same code:
    equal to its call from Python bit for bit), which saves a call per iteration.
    """
    k_count, d = s1.shape
    nk = np.empty(k_count)
    delta = np.empty((k_count, d))
    nk_sum = 0.0
    for k in range(k_count):
        nk[k] = nk_raw[k] + EPS10
        nk_sum += nk[k]
        for j in range(d):
            delta[k, j] = s1[k, j] / nk[k]
            means[k, j] = ref[k, j] + delta[k, j]
    for k in range(k_count):
        weights[k] = nk[k] / nk_sum
    if form == DENSE:
        if shared:
            _dense_shared(nk_raw, means, centre, total, nk_sum, reg, cov[0])
        else:
            _dense(nk_raw, nk, s1, s2, delta, reg, cov)
        failed = prec_chol_stack(cov, prec)
        if failed >= 0:
            return failed
    else:
        _diagonal(nk_raw, nk, s1, s2, delta, nk_sum, reg, form == SCALAR, shared, cov)
        for k in range(cov.shape[0]):
            for j in range(cov.shape[2]):
                v = cov[k, 0, j]
                if not (np.isfinite(v) and v > 0.0):
                    return k
                prec[k, 0, j] = 1.0 / np.sqrt(v)
    const, loc, kprec = terms
    density_terms(weights, means, prec, form == DENSE, shared, const, loc, kprec)
    return -1


@kernel(strict=True, inputs="weights means prec")
def density_terms(weights, means, prec, dense, shared, const, loc, kprec):
    """The density kernels' inputs of a closed-form model (those of
    ``model.params.density_inputs``) from weights (K,), means (K, d) and factors
    prec (m, p, q) as ``closed_m_step`` writes them: const[k] = log w_k +
    log det U_k - d/2 log(2 pi); loc = means (times U for a shared dense factor);
    kprec (K or 1, p, d) = prec, the shared one and a scalar broadcast."""
    k_count, d = means.shape
    half_log_2pi = 0.5 * d * np.log(2 * np.pi)
    for k in range(k_count):
        m = 0 if shared else k
        log_det = 0.0
        for j in range(d):
            log_det += np.log(prec[m, j, j] if dense else prec[m, 0, j % prec.shape[2]])
        const[k] = np.log(weights[k]) + log_det - half_log_2pi
        for j in range(d):
            if dense and shared:
                v = 0.0
                for i in range(d):
                    v += means[k, i] * prec[0, i, j]
                loc[k, j] = v
            else:
                loc[k, j] = means[k, j]
    for k in range(kprec.shape[0]):
        m = 0 if shared else k
        for i in range(kprec.shape[1]):
            for j in range(d):
                kprec[k, i, j] = prec[m, i, j % prec.shape[2]]


@kernel
def _diagonal(nk_raw, nk, s1, s2, delta, nk_sum, reg, scalar, shared, cov):
    """Diagonal (VVI, EEI) or scalar (VII, EII: the mean variance) covariances."""
    k_count, d = s1.shape
    pooled = np.zeros(d)
    for k in range(k_count):
        total = 0.0
        for j in range(d):
            v = s2[k, 0, j] - 2 * s1[k, j] * delta[k, j] + nk_raw[k] * delta[k, j] ** 2
            if shared:
                pooled[j] += v
            else:
                v = v / nk[k] + reg
                total += v
                if not scalar:
                    cov[k, 0, j] = v
        if scalar and not shared:
            cov[k, 0, 0] = total / d
    if shared:
        total = 0.0
        for j in range(d):
            v = pooled[j] / nk_sum + reg
            total += v
            if not scalar:
                cov[0, 0, j] = v
        if scalar:
            cov[0, 0, 0] = total / d


@kernel
def _dense(nk_raw, nk, s1, s2, delta, reg, mats):
    """Per-component scatter about the new means / nk_k + reg (VVV)."""
    k_count, d = s1.shape
    for k in range(k_count):
        for i in range(d):
            for j in range(d):
                s2_ij = s2[k, i, j] if j <= i else s2[k, j, i]
                v = s2_ij - s1[k, i] * delta[k, j] - s1[k, j] * delta[k, i]
                v += nk_raw[k] * delta[k, i] * delta[k, j]
                mats[k, i, j] = v / nk[k]
            mats[k, i, i] += reg


@kernel
def _dense_shared(nk_raw, means, centre, total, nk_sum, reg, out):
    """Pooled scatter / n + reg (EEE): total scatter - between-component scatter."""
    k_count, d = means.shape
    for i in range(d):
        for j in range(d):
            between = 0.0
            for k in range(k_count):
                between += (
                    nk_raw[k] * (means[k, i] - centre[i]) * (means[k, j] - centre[j])
                )
            out[i, j] = (total[i, j] - between) / nk_sum
    for i in range(d):
        for j in range(i):
            out[i, j] = out[j, i] = (out[i, j] + out[j, i]) / 2
        out[i, i] += reg
