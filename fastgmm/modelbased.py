"""What a fit with mclust's noise component or conjugate prior takes from the data.

:func:`model_based_setup` reads an estimator's ``noise``, ``noise_volume`` and
``prior`` parameters and the training data, and returns the prior
(:mod:`fastgmm.model.prior`) and the noise component's initial weight and density
(:mod:`fastgmm.model.noise`) that :class:`fastgmm.engine.em.ModelBased` fits with.
"""

from dataclasses import dataclass
from numbers import Real

import numpy as np

#: initial share of the noise component for ``noise=True``
DEFAULT_NOISE_SHARE = 0.1


@dataclass(frozen=True)
class Setup:
    """Prior, noise component (initial weight, log density) and the mask of points
    that start as noise (or None)."""

    prior: object
    noise: object
    noise_mask: object


def noise_is_on(noise):
    """Whether an estimator's ``noise`` parameter asks for a noise component."""
    return not (isinstance(noise, (bool, np.bool_)) and not noise)


def _noise_share(noise, n_samples, sample_weight):
    """(initial share, mask or None) of the ``noise`` parameter."""
    if isinstance(noise, (bool, np.bool_)):
        return DEFAULT_NOISE_SHARE, None
    if isinstance(noise, Real):
        return float(noise), None
    mask = np.asarray(noise)
    if mask.dtype != bool or mask.shape != (n_samples,):
        raise ValueError(
            "noise must be a bool, a share in (0, 1) or a boolean mask of shape "
            f"(n_samples,) = ({n_samples},), got an array of dtype {mask.dtype} and "
            f"shape {mask.shape}"
        )
    w = np.ones(n_samples) if sample_weight is None else sample_weight
    share = float(w[mask].sum() / w.sum())
    if not 0.0 < share < 1.0:
        raise ValueError(
            "The noise mask must mark some but not all points (of positive weight) "
            "as noise."
        )
    return share, mask


def model_based_setup(estimator, X, sample_weight):
    """The :class:`Setup` of a fit of ``estimator`` on ``X``.

    Raises
    ------
    ValueError
        Data streamed from blocks (noise and prior need the data in memory), invalid
        data (scikit-learn's messages), a bad noise mask, prior settings or volume.
    """
    from sklearn.utils import check_array
    from sklearn.utils.validation import _check_sample_weight

    from .engine.sources import is_source
    from .model import covariance
    from .model.noise import Noise, region
    from .model.prior import default_prior

    if is_source(X):
        raise ValueError(
            "noise and prior need the data in memory (an array), not streamed blocks."
        )
    X = check_array(
        X, dtype=[np.float64, np.float32], ensure_min_samples=2, estimator=estimator
    )
    if sample_weight is not None:
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
    model = covariance.get(estimator.covariance_type)
    prior = None
    if estimator.prior not in (None, False):
        prior = default_prior(
            X, estimator.n_components, model, estimator.prior, sample_weight
        )
    noise, mask = None, None
    if noise_is_on(estimator.noise):
        share, mask = _noise_share(estimator.noise, X.shape[0], sample_weight)
        volume = estimator.noise_volume
        if isinstance(volume, str):
            rows = X if sample_weight is None else X[sample_weight > 0]
            log_volume = region(rows, volume).log_volume
        else:
            log_volume = float(np.log(volume))
        noise = Noise(share, -log_volume)
    return Setup(prior, noise, mask)
