"""Reading a fitted mixture: confidence, entropy, outliers and a plain-text summary.

Every function takes a fitted model (``fastgmm.GaussianMixture``, or scikit-learn's
``GaussianMixture``: only the fitted attributes are read) and scores ``X`` in chunks
of ``chunk_size`` rows through fastgmm's kernels, so memory stays bounded by
``chunk_size x n_components`` floats however large ``X`` is.

Definitions, with ``r_ik = p(k | x_i)`` the responsibilities (``predict_proba``):

- confidence: ``max_k r_ik`` (between ``1 / K`` and 1);
- entropy: ``-sum_k r_ik log r_ik`` in nats (0 for a certain point, at most ``log K``);
- log-density: ``log p(x_i)`` (``score_samples``); an outlier is a point whose
  log-density is below a threshold taken as a low percentile of the training scores;
- noise: with a noise component (``GaussianMixture(noise=...)``, mclust's), a point
  whose most probable component is the noise (label -1); the responsibilities
  then have a last column for the noise.
"""

import numpy as np

#: rows scored at a time: bounds the responsibilities buffer to CHUNK_ROWS x K floats
CHUNK_ROWS = 1_000_000


def model_params(model):
    """The fitted parameters of ``model`` as float64 Params (see
    :func:`fastgmm.model.params.from_fitted`, which this is).

    Parameters
    ----------
    model : GaussianMixture
        A fitted fastgmm or scikit-learn Gaussian mixture.

    Returns
    -------
    fastgmm.model.params.Params
    """
    from .model.params import from_fitted

    return from_fitted(model)


def _check_X(model, X):
    from sklearn.utils.validation import validate_data

    return validate_data(
        model, X, reset=False, dtype=[np.float64, np.float32], order="C"
    )


def score_chunks(model, X, *, proba=False, chunk_size=CHUNK_ROWS):
    """Score ``X`` chunk by chunk in one pass per chunk.

    Parameters
    ----------
    model : GaussianMixture
        A fitted fastgmm or scikit-learn Gaussian mixture.
    X : array-like of shape (n_samples, n_features)
    proba : bool, default=False
        Also yield the responsibilities.
    chunk_size : int, default=CHUNK_ROWS
        Rows per chunk.

    Yields
    ------
    start : int
        Index of the first row of the chunk.
    out : dict of ndarray
        ``labels`` (int64, -1 for noise), ``log_density``, ``confidence``,
        ``entropy`` (float64), ``noise`` (bool), each of shape (chunk_rows,), and
        with ``proba`` the responsibilities ``proba`` of shape (chunk_rows,
        n_components, + 1 with a noise component) in the dtype of ``X``.
    """
    from .engine.score import score_chunks as chunks_of

    X = _check_X(model, X)
    chunks = chunks_of(
        X, model_params(model), chunk_size, getattr(model, "n_jobs", None),
        lse=True, resp=True, labels=True,
    )  # fmt: skip
    n_gauss = np.shape(model.means_)[0]
    for start, (lse, resp, labels) in chunks:
        out = {
            "labels": np.where(labels == n_gauss, -1, labels),
            "log_density": lse.astype(np.float64),
            "confidence": _confidence(resp, labels),
            "entropy": _entropy(resp),
            "noise": labels == n_gauss,
        }
        if proba:
            out["proba"] = resp
        yield start, out


def _confidence(resp, labels):
    """max_k resp[i, k] as float64, read at the kernel's labels (the argmax)."""
    return resp[np.arange(labels.shape[0]), labels].astype(np.float64)


def _entropy(resp):
    from scipy.special import entr

    return entr(resp.astype(np.float64)).sum(axis=1)


def _collect(model, X, name, chunk_size):
    parts = [out[name] for _, out in score_chunks(model, X, chunk_size=chunk_size)]
    return np.concatenate(parts) if parts else np.empty(0)


def confidence(model, X, *, chunk_size=CHUNK_ROWS):
    """Largest responsibility of each point, ``max_k p(k | x)``.

    Parameters
    ----------
    model : GaussianMixture
        A fitted fastgmm or scikit-learn Gaussian mixture.
    X : array-like of shape (n_samples, n_features)
    chunk_size : int, default=CHUNK_ROWS
        Rows scored at a time.

    Returns
    -------
    ndarray of shape (n_samples,), float64
        In ``[1 / n_components, 1]``.
    """
    return _collect(model, X, "confidence", chunk_size)


def entropy(model, X, *, chunk_size=CHUNK_ROWS):
    """Classification entropy of each point, ``-sum_k r_k log r_k`` (nats).

    Parameters
    ----------
    model : GaussianMixture
        A fitted fastgmm or scikit-learn Gaussian mixture.
    X : array-like of shape (n_samples, n_features)
    chunk_size : int, default=CHUNK_ROWS
        Rows scored at a time.

    Returns
    -------
    ndarray of shape (n_samples,), float64
        0 for a point certainly in one component, at most ``log(n_components)``.
    """
    return _collect(model, X, "entropy", chunk_size)


def low_confidence(model, X, threshold=0.9, *, chunk_size=CHUNK_ROWS):
    """Indices of the points whose confidence is below ``threshold``.

    Parameters
    ----------
    model : GaussianMixture
        A fitted fastgmm or scikit-learn Gaussian mixture.
    X : array-like of shape (n_samples, n_features)
    threshold : float, default=0.9
        A point is uncertain when its largest responsibility is below this.
    chunk_size : int, default=CHUNK_ROWS
        Rows scored at a time.

    Returns
    -------
    ndarray of shape (n_uncertain,), int64
        Row indices into ``X``, increasing.
    """
    threshold = _threshold(threshold, "threshold")
    return np.flatnonzero(confidence(model, X, chunk_size=chunk_size) < threshold)


def is_noise(model, X, *, chunk_size=CHUNK_ROWS):
    """Flag the points most probably from the model's noise component.

    Parameters
    ----------
    model : GaussianMixture
        A fitted mixture; without a noise component nothing is noise.
    X : array-like of shape (n_samples, n_features)
    chunk_size : int, default=CHUNK_ROWS
        Rows scored at a time.

    Returns
    -------
    ndarray of shape (n_samples,), bool
        Where ``model.predict(X) == -1``.
    """
    return _collect(model, X, "noise", chunk_size).astype(bool)


def fit_outlier_threshold(model, X, percentile=1.0, *, chunk_size=CHUNK_ROWS):
    """Log-density threshold below which a point counts as an outlier.

    Parameters
    ----------
    model : GaussianMixture
        A fitted fastgmm or scikit-learn Gaussian mixture.
    X : array-like of shape (n_samples, n_features)
        Usually the training data.
    percentile : float, default=1.0
        Percentage (0-100) of ``X`` that falls below the threshold.
    chunk_size : int, default=CHUNK_ROWS
        Rows scored at a time.

    Returns
    -------
    float
        The ``percentile``-th percentile of ``log p(x)`` over ``X``.
    """
    if not 0.0 <= float(percentile) <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile!r}")
    scores = _collect(model, X, "log_density", chunk_size)
    return float(np.percentile(scores, percentile))


def is_outlier(model, X, threshold, *, chunk_size=CHUNK_ROWS):
    """Flag the points whose log-density is below ``threshold``.

    Parameters
    ----------
    model : GaussianMixture
        A fitted fastgmm or scikit-learn Gaussian mixture.
    X : array-like of shape (n_samples, n_features)
    threshold : float
        From :func:`fit_outlier_threshold`.
    chunk_size : int, default=CHUNK_ROWS
        Rows scored at a time.

    Returns
    -------
    ndarray of shape (n_samples,), bool
    """
    threshold = _threshold(threshold, "threshold")
    return _collect(model, X, "log_density", chunk_size) < threshold


def _threshold(value, name):
    """``value`` as a float; a NaN threshold (every comparison False: nothing
    flagged) is refused."""
    value = float(value)
    if np.isnan(value):
        raise ValueError(f"{name} must be a number, got nan")
    return value


def _feature_names(model, feature_names, d):
    if feature_names is not None:
        names = [str(n) for n in feature_names]
        if len(names) != d:
            raise ValueError(f"got {len(names)} feature names for {d} features")
        return names
    if hasattr(model, "feature_names_in_"):
        return [str(n) for n in model.feature_names_in_]
    return [f"x{j}" for j in range(d)]


def full_covariances(model):
    """The covariance of every component as a (K, d, d) float64 array."""
    from .model import covariance

    k, d = np.shape(model.means_)
    return covariance.get(model.covariance_type).full(model.covariances_, k, d)


def component_stds(model):
    """Standard deviation of every feature in every component, shape (K, d)."""
    return np.sqrt(np.diagonal(full_covariances(model), axis1=1, axis2=2))


def _table(header, rows):
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[j]) for r in cells) for j in range(len(header))]
    return [
        "  ".join(
            c.ljust(w) if j == 0 else c.rjust(w)
            for j, (c, w) in enumerate(zip(r, widths))
        ).rstrip()
        for r in cells
    ]


def summary(
    model, X=None, *, scaler=None, feature_names=None, threshold=0.9, max_features=8
):
    """A plain-text description of a fitted mixture that a person can read.

    Parameters
    ----------
    model : GaussianMixture
        A fitted fastgmm or scikit-learn Gaussian mixture.
    X : array-like of shape (n_samples, n_features), optional
        Data in the model's units; adds component sizes (hard labels), mean
        confidence, the share of points below ``threshold``, BIC and AIC.
    scaler : object with ``mean_`` and ``scale_``, optional
        The standardisation applied before fitting (``fastgmm.scaling.Standardizer``
        or scikit-learn's ``StandardScaler``): means and standard deviations are
        then shown in the original units, ``x * scale_ + mean_``.
    feature_names : sequence of str, optional
        Defaults to ``model.feature_names_in_`` or ``x0, x1, ...``.
    threshold : float, default=0.9
        Confidence below which a point is counted as uncertain.
    max_features : int, default=8
        Feature columns shown in the means / std tables.

    Returns
    -------
    str
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model)
    means, stds = np.asarray(model.means_, dtype=np.float64), component_stds(model)
    if scaler is not None:
        means = means * np.asarray(scaler.scale_) + np.asarray(scaler.mean_)
        stds = stds * np.asarray(scaler.scale_)
    k, d = means.shape
    shown = _feature_names(model, feature_names, d)[:max_features]
    lines = _header_lines(model)
    head, cols = ["component", "weight"], [[f"{w:.4f}"] for w in model.weights_]
    if X is not None:
        lines += _data_lines(model, X, threshold, head, cols)
    units = "original units (scaler undone)" if scaler is not None else "model units"
    more = f"  (+{d - len(shown)} more features)" if d > len(shown) else ""
    fmt = lambda row: [f"{v:.4g}" for v in row[: len(shown)]]
    rows = [[str(c), *cols[c], *fmt(means[c])] for c in range(k)]
    lines += ["", f"means, in {units}:{more}", *_table(head + shown, rows)]
    rows = [[str(c), *fmt(stds[c])] for c in range(k)]
    lines += ["", f"standard deviations, in {units}:"]
    return "\n".join(lines + _table(["component", *shown], rows))


def _header_lines(model):
    k, d = np.shape(model.means_)
    state = "converged" if model.converged_ else "did NOT converge"
    kind = model.covariance_type
    fit = f"after {model.n_iter_} iterations; lower bound {model.lower_bound_:.6g}"
    if _is_variational(model):  # BayesianGaussianMixture
        prior = model.weight_concentration_prior_type.replace("_", " ")
        return [
            f"Bayesian Gaussian mixture ({prior} prior): {k} components "
            f"({model.n_effective_components_} effective), covariance_type={kind!r}, "
            f"{d} features",
            f"variational EM {state} {fit} (evidence lower bound, total)",
        ]
    lines = [
        f"Gaussian mixture: {k} components, covariance_type={kind!r}, {d} features",
        f"EM {state} {fit} (mean log-likelihood per point)",
    ]
    if getattr(model, "noise_weight_", None) is not None:
        lines.append(
            f"plus a uniform noise component: weight {model.noise_weight_:.4f}, "
            f"density {model.noise_density_:.4g} (1 / hypervolume)"
        )
    return lines


def _is_variational(model):
    return hasattr(model, "n_effective_components_")


def _data_lines(model, X, threshold, head, cols):
    """Sizes and confidence per component (appended to cols), and the overall lines."""
    k = len(cols)
    counts, conf_sum = np.zeros(k, np.int64), np.zeros(k)
    n, n_low, log_lik, n_noise = 0, 0, 0.0, 0
    for _, out in score_chunks(model, X):
        labels, conf = out["labels"], out["confidence"]
        n_noise += int(out["noise"].sum())
        gauss = ~out["noise"]
        counts += np.bincount(labels[gauss], minlength=k)
        conf_sum += np.bincount(labels[gauss], weights=conf[gauss], minlength=k)
        n, n_low = n + labels.size, n_low + int(np.sum(conf < threshold))
        log_lik += float(out["log_density"].sum())
    head += ["size", "share", "mean conf"]
    for c in range(k):
        share = counts[c] / max(n, 1)
        mean_conf = conf_sum[c] / counts[c] if counts[c] else float("nan")
        cols[c] += [str(counts[c]), f"{100 * share:.1f}%", f"{mean_conf:.3f}"]
    from .model import covariance, criteria

    p = covariance.n_parameters(model.covariance_type, k, np.shape(model.means_)[1])
    p += 2 if getattr(model, "noise_weight_", None) is not None else 0
    bic, aic = criteria.bic(log_lik, p, n), criteria.aic(log_lik, p)
    fit_line = (
        f"on {n} points: log-likelihood {log_lik:.6g}, BIC {bic:.6g}, "
        f"AIC {aic:.6g} ({p} parameters)"
    )
    if _is_variational(model):  # its score is not a likelihood: no BIC / AIC
        fit_line = f"on {n} points: total score {log_lik:.6g}"
    low = (
        f"{n_low} points ({100 * n_low / max(n, 1):.1f}%) have confidence < {threshold}"
    )
    lines = [fit_line, low]
    if getattr(model, "noise_weight_", None) is not None:
        lines.append(f"{n_noise} points ({100 * n_noise / max(n, 1):.1f}%) are noise")
    return lines
