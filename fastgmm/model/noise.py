"""The noise component: a uniform density over the data's hypervolume (mclust's
``Vinv``), and the region it covers.

A point is drawn from the noise with probability ``noise_weight`` and then has the
constant density ``1 / V``; mclust (Banfield & Raftery 1993) takes ``V`` from the
data: ``hypvol(data)`` is the smaller of the volume of the data's bounding box and
that of the bounding box of its principal-component scores. In the kernels the
noise is one more component with zero precision (its log-density is its constant).
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Noise:
    """The noise component of a mixture: its weight and log density ``-log V``."""

    weight: float
    log_density: float


@dataclass(frozen=True)
class Region:
    """A box ``low <= (x - centre) @ axes <= high`` (axes orthogonal (d, d))."""

    centre: np.ndarray
    axes: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @property
    def log_volume(self):
        with np.errstate(divide="ignore"):
            return float(np.log(self.high - self.low).sum())

    def draw(self, rng, count):
        """``count`` points uniform in the box (``rng``: a RandomState)."""
        u = rng.uniform(size=(count, self.centre.shape[0]))
        return self.centre + (self.low + u * (self.high - self.low)) @ self.axes.T


def _box(X, centre, axes):
    scores = (X - centre) @ axes
    return Region(centre, axes, scores.min(axis=0), scores.max(axis=0))


def region(X, method="hypvol"):
    """The region the noise covers: the data's bounding box (``"box"``) or mclust's
    ``hypvol`` choice (``"hypvol"``: the box or the principal-component box,
    whichever has the smaller volume).

    Parameters
    ----------
    X : ndarray of shape (n, d)
        The points with positive weight.
    method : {"hypvol", "box"}

    Returns
    -------
    Region
    """
    if method not in ("hypvol", "box"):
        raise ValueError(
            f"noise_volume must be 'hypvol', 'box' or a number, got {method!r}"
        )
    X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    box = _box(X, np.zeros(d), np.eye(d))
    if method == "box" or d == 1:
        best = box
    else:
        centre = X.mean(axis=0)
        _, axes = np.linalg.eigh(np.cov(X.T, bias=True).reshape(d, d))
        pca = _box(X, centre, axes[:, ::-1])
        best = pca if pca.log_volume < box.log_volume else box
    if not np.isfinite(best.log_volume):
        raise ValueError(
            "The noise component needs data spread in every feature: the data's "
            "hypervolume is 0 (a constant feature, or points on a hyperplane)."
        )
    return best
