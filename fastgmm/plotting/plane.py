"""The plane of a 2-D picture of a mixture (pure NumPy; used by fastgmm.plotting).

A plane is a basis (d, 2) and a centre (d,): points map to ``(x - centre) @ basis``
and every Gaussian component maps exactly to a 2-D Gaussian with mean
``(mean - centre) @ basis`` and covariance ``basis' cov basis``.
"""

import numpy as np

from ..inspection import full_covariances


def _mixture_moments(model):
    w = np.asarray(model.weights_, dtype=np.float64)
    means = np.asarray(model.means_, dtype=np.float64)
    centre = w @ means
    diff = means - centre
    total = np.einsum("k,kij->ij", w, full_covariances(model)) + (w * diff.T) @ diff
    return centre, total


def feature_names_of(model, X=None, feature_names=None):
    """The features' names: ``feature_names`` if given, else the model's
    ``feature_names_in_``, else the columns of a DataFrame ``X``, else x0, x1, ..."""
    d = np.shape(model.means_)[1]
    if feature_names is not None:
        names = [str(n) for n in feature_names]
        if len(names) != d:
            raise ValueError(f"feature_names has {len(names)} names for {d} features")
        return names
    for names in (
        getattr(model, "feature_names_in_", None),
        getattr(X, "columns", None),
    ):
        if names is not None and len(names) == d:
            return [str(n) for n in names]
    return [f"x{j}" for j in range(d)]


def projection(model, X=None, features=None, feature_names=None):
    """Plane of a 2-D picture: ``(basis (d, 2), centre (d,), axis labels)``.

    ``features=(i, j)`` picks two features; ``"pca"`` (the default when there are
    more than two features) the first two principal components of ``X``, or of the
    fitted mixture's covariance when ``X`` is None. Points map to ``(x - centre) @ basis``.
    Axis labels name the features (see feature_names_of).
    """
    d = np.shape(model.means_)[1]
    names = feature_names_of(model, X, feature_names)
    if d < 2:
        raise ValueError("a density picture needs at least 2 features")
    if features is None:
        features = (0, 1) if d == 2 else "pca"
    if isinstance(features, str):
        if features != "pca":
            raise ValueError(
                f"features must be a pair of indices or 'pca', got {features!r}"
            )
        if X is None:
            centre, cov = _mixture_moments(model)
        else:
            Xf = np.asarray(X, dtype=np.float64)
            centre, cov = Xf.mean(axis=0), np.cov(Xf, rowvar=False)
        values, vectors = np.linalg.eigh(cov)
        order = np.argsort(values)[::-1][:2]
        share = values[order] / values.sum()
        labels = [
            f"PC{i + 1} ({100 * s:.0f}% of variance)" for i, s in enumerate(share)
        ]
        return vectors[:, order], centre, labels
    i, j = (int(f) for f in features)
    if not (0 <= i < d and 0 <= j < d and i != j):
        raise ValueError(
            f"features must be two different indices below {d}, got {features!r}"
        )
    basis = np.zeros((d, 2))
    basis[i, 0] = basis[j, 1] = 1.0
    return basis, np.zeros(d), [names[i], names[j]]


def projected_params(model, basis, centre):
    """The mixture on the plane: full-covariance Params in 2-D."""
    from ..model import covariance
    from ..model.params import Params

    means = (np.asarray(model.means_, dtype=np.float64) - centre) @ basis
    covs = np.einsum("da,kde,eb->kab", basis, full_covariances(model), basis)
    weights = np.asarray(model.weights_, dtype=np.float64)
    full = covariance.get("full")
    return Params(full, weights, means, covs, full.prec_chol(covs))


def grid_log_density(params, bounds, n_grid):
    """(xx, yy, log p) on an ``n_grid`` x ``n_grid`` grid over ``bounds``."""
    from ..engine.score import score

    xs = np.linspace(*bounds[0], n_grid)
    ys = np.linspace(*bounds[1], n_grid)
    xx, yy = np.meshgrid(xs, ys)
    grid = np.ascontiguousarray(np.column_stack([xx.ravel(), yy.ravel()]))
    (log_p,) = score(grid, params, lse=True)
    return xx, yy, log_p.reshape(xx.shape)


def limits(points, params):
    """Plot bounds holding the points and 3 sd around every component mean."""
    spread = np.sqrt(np.diagonal(params.covariances, axis1=1, axis2=2))
    lo = (params.means - 3 * spread).min(axis=0)
    hi = (params.means + 3 * spread).max(axis=0)
    if points is not None and len(points):
        lo = np.minimum(lo, points.min(axis=0))
        hi = np.maximum(hi, points.max(axis=0))
    pad = 0.05 * (hi - lo)
    return [(lo[a] - pad[a], hi[a] + pad[a]) for a in range(2)]
