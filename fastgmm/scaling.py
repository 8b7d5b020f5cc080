"""Standardisation of features, ``(x - mean_) / scale_``, kept with a fitted model.

Scaling decides what a Gaussian mixture finds: the covariance model, the k-means
start and the BIC all depend on the units of the features. :class:`Standardizer`
is a minimal, dependency-free version of scikit-learn's ``StandardScaler`` (the same
``mean_`` / ``scale_`` attributes, population standard deviation, constant features
get scale 1) that round-trips through JSON, so the command line can save it beside
the model and ``fastgmm predict`` can apply it.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Standardizer:
    """Per-feature affine map ``z = (x - mean_) / scale_``.

    Parameters
    ----------
    mean_ : ndarray of shape (n_features,)
    scale_ : ndarray of shape (n_features,)
        Positive.
    """

    mean_: np.ndarray
    scale_: np.ndarray

    def __post_init__(self):
        mean = np.asarray(self.mean_, dtype=np.float64).reshape(-1)
        scale = np.asarray(self.scale_, dtype=np.float64).reshape(-1)
        if mean.shape != scale.shape:
            raise ValueError(
                f"mean_ {mean.shape} and scale_ {scale.shape} differ in shape"
            )
        if not (
            np.all(np.isfinite(mean))
            and np.all(np.isfinite(scale))
            and np.all(scale > 0)
        ):
            raise ValueError("mean_ must be finite and scale_ finite and positive")
        object.__setattr__(self, "mean_", mean)
        object.__setattr__(self, "scale_", scale)

    @classmethod
    def fit(cls, X, sample_weight=None):
        """Weighted mean and population standard deviation of each column of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        Standardizer
            Constant columns get ``scale_ = 1`` (they are only centred).
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"expected a non-empty 2-D array, got shape {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinity")
        # each column divided by a power of two near its largest |x| (exact): data
        # of any finite scale, 1e300 too, has its squares in range; the same bits
        _, exponent = np.frexp(np.max(np.abs(X), axis=0))
        Z = np.ldexp(X, -exponent)
        mean = np.average(Z, axis=0, weights=sample_weight)
        var = np.average((Z - mean) ** 2, axis=0, weights=sample_weight)
        mean, scale = np.ldexp(mean, exponent), np.ldexp(np.sqrt(var), exponent)
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        return cls(mean, np.where(scale > tiny, scale, 1.0))

    @property
    def n_features_in_(self):
        """Number of features."""
        return self.mean_.shape[0]

    def _check(self, X):
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has shape {X.shape}, but the scaler was fitted on "
                f"{self.n_features_in_} features"
            )
        return X

    def transform(self, X):
        """``(X - mean_) / scale_``, in the dtype of X when floating (float64 otherwise)."""
        X = self._check(X)
        dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        return ((X - self.mean_) / self.scale_).astype(dtype, copy=False)

    def inverse_transform(self, Z):
        """``Z * scale_ + mean_``: back to the original units."""
        Z = self._check(Z)
        dtype = Z.dtype if Z.dtype in (np.float32, np.float64) else np.float64
        return (Z * self.scale_ + self.mean_).astype(dtype, copy=False)

    def to_dict(self):
        """JSON-ready ``{"mean": [...], "scale": [...]}`` (floats round-trip exactly)."""
        return {"mean": self.mean_.tolist(), "scale": self.scale_.tolist()}

    @classmethod
    def from_dict(cls, data):
        """Inverse of :meth:`to_dict`; raises ValueError on malformed input."""
        try:
            return cls(
                np.asarray(data["mean"], float), np.asarray(data["scale"], float)
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"invalid scaler data: {exc}") from None
