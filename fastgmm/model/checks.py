"""Validation of user-given starting parameters, with scikit-learn's messages."""

import numpy as np

from . import covariance


def _as_float_array(value, ndim_ok):
    from sklearn.utils import check_array

    return check_array(
        value, dtype=[np.float64, np.float32], ensure_2d=False, allow_nd=ndim_ok
    )


def check_shape(param, shape, name):
    if param.shape != shape:
        raise ValueError(
            "The parameter '%s' should have the shape of %s, but got %s"
            % (name, shape, param.shape)
        )


def check_weights(weights, n_components):
    weights = _as_float_array(weights, False)
    check_shape(weights, (n_components,), "weights")
    if np.any(weights < 0.0) or np.any(weights > 1.0):
        raise ValueError(
            "The parameter 'weights' should be in the range [0, 1], but got max value "
            "%.5f, min value %.5f" % (np.min(weights), np.max(weights))
        )
    atol = 1e-6 if weights.dtype == np.float32 else 1e-8
    if not np.allclose(abs(1.0 - np.sum(weights)), 0.0, atol=atol):
        raise ValueError(
            "The parameter 'weights' should be normalized, but got sum(weights) = %.5f"
            % np.sum(weights)
        )
    return weights


def check_means(means, n_components, n_features):
    means = _as_float_array(means, False)
    check_shape(means, (n_components, n_features), "means")
    return means


def check_precisions(precisions, covariance_type, n_components, n_features):
    """User-given precisions of a covariance model: shape and values checked by its
    record in :mod:`fastgmm.model.covariance`, with scikit-learn's messages."""
    model = covariance.get(covariance_type)
    shape = model.shape(n_components, n_features)
    if shape == ():
        precisions = np.asarray(precisions, dtype=np.float64)
    else:
        precisions = _as_float_array(precisions, len(shape) > 2)
    check_shape(precisions, shape, "%s precision" % covariance_type)
    model.check_precisions(precisions, covariance_type)
    return precisions


def check_user_init(est, n_features):
    """(weights_init, means_init, precisions_init), each validated or None."""
    k = est.n_components
    return (
        None if est.weights_init is None else check_weights(est.weights_init, k),
        None if est.means_init is None else check_means(est.means_init, k, n_features),
        None
        if est.precisions_init is None
        else check_precisions(est.precisions_init, est.covariance_type, k, n_features),
    )
