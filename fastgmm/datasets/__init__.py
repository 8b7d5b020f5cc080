"""Small data sets for model-based clustering, with nothing downloaded.

- :func:`load_faithful`: R's ``faithful`` (Old Faithful geyser, 272 eruptions:
  duration and waiting time in minutes; Härdle 1991, public domain), shipped as a CSV.
- :func:`make_diabetes_like`: a synthetic stand-in for mclust's ``diabetes`` (Reaven &
  Miller 1979: 145 patients, glucose, insulin and SSPG, three classes), three
  components of different volume, shape and orientation.
- :func:`make_banknote_like`: a synthetic stand-in for mclust's ``banknote`` (Flury &
  Riedwyl 1988: 200 Swiss bank notes, six measurements in mm, genuine and
  counterfeit, the counterfeits in two groups), components that share their
  orientation.

The synthetic sets follow the published class sizes and rounded class means; the
covariances are made up to give the structures described (they are not the data).
Iris is scikit-learn's ``load_iris``.
"""

from importlib import resources

import numpy as np

__all__ = ["load_faithful", "make_banknote_like", "make_diabetes_like"]

FAITHFUL_COLUMNS = ("eruptions", "waiting")
DIABETES_COLUMNS = ("glucose", "insulin", "sspg")
BANKNOTE_COLUMNS = ("Length", "Left", "Right", "Bottom", "Top", "Diagonal")


def load_faithful():
    """Old Faithful: an array of shape (272, 2), columns ``FAITHFUL_COLUMNS``."""
    text = resources.files(__package__).joinpath("faithful.csv").read_text()
    return np.loadtxt(text.splitlines(), delimiter=",", skiprows=1)


def _correlated(rng, sds, corr, size):
    sds = np.asarray(sds, float)
    cov = np.asarray(corr, float) * np.outer(sds, sds)
    return cov, rng.multivariate_normal(np.zeros(len(sds)), cov, size)


def make_diabetes_like(random_state=0):
    """Diabetes-like data: (X of shape (145, 3), labels), labels 0 = normal (76),
    1 = chemical (36), 2 = overt (33); columns ``DIABETES_COLUMNS``.

    Parameters
    ----------
    random_state : int or numpy Generator, default=0
    """
    rng = np.random.default_rng(random_state)
    groups = [  # size, mean, standard deviations, correlations
        (76, [91.2, 350.0, 172.6], [8.0, 37.0, 69.0], [[1, 0.3, 0.1], [0.3, 1, 0.2], [0.1, 0.2, 1]]),
        (36, [99.3, 493.9, 288.0], [9.0, 55.0, 150.0], [[1, 0.7, 0.2], [0.7, 1, 0.3], [0.2, 0.3, 1]]),
        (33, [217.7, 1043.8, 106.0], [73.0, 320.0, 50.0], [[1, 0.95, -0.4], [0.95, 1, -0.4], [-0.4, -0.4, 1]]),
    ]  # fmt: skip
    parts, labels = [], []
    for label, (size, mean, sds, corr) in enumerate(groups):
        _, noise = _correlated(rng, sds, corr, size)
        parts.append(np.asarray(mean) + noise)
        labels.append(np.full(size, label))
    return np.vstack(parts), np.concatenate(labels)


def make_banknote_like(random_state=0):
    """Banknote-like data: (X of shape (200, 6), labels), labels 0 = genuine (100),
    1 and 2 = two groups of counterfeits (85 and 15); columns ``BANKNOTE_COLUMNS``.

    The three groups share their principal axes (one orientation) with different
    spreads along them.

    Parameters
    ----------
    random_state : int or numpy Generator, default=0
    """
    rng = np.random.default_rng(random_state)
    axes = np.linalg.qr(np.random.default_rng(1988).normal(size=(6, 6)))[0]
    groups = [  # size, mean, standard deviations along the common axes
        (100, [214.97, 129.94, 129.72, 8.31, 10.17, 141.52], [0.55, 0.40, 0.35, 0.25, 0.20, 0.15]),
        (85, [214.82, 130.30, 130.19, 10.53, 11.13, 139.45], [0.80, 0.55, 0.30, 0.28, 0.20, 0.18]),
        (15, [214.70, 130.25, 130.10, 11.90, 10.00, 139.60], [0.40, 0.35, 0.30, 0.25, 0.20, 0.15]),
    ]  # fmt: skip
    parts, labels = [], []
    for label, (size, mean, sds) in enumerate(groups):
        z = rng.normal(size=(size, 6)) * np.asarray(sds)
        parts.append(np.asarray(mean) + z @ axes.T)
        labels.append(np.full(size, label))
    return np.vstack(parts), np.concatenate(labels)
