"""A plain NumPy/SciPy oracle of every fastgmm kernel (stumpy's ``naive.py`` idea).

Everything here is written for clarity, not speed: whole (n, K) arrays, float64
throughout, scikit-learn's shapes and formulas. Parameters are given as means and
precision-Cholesky factors, exactly as ``sklearn.mixture.GaussianMixture`` stores them:

    full       prec_chol (K, d, d)  upper-triangular U_k with precision_k = U_k U_k'
    tied       prec_chol (d, d)
    diag       prec_chol (K, d)     1 / sqrt(variance_kj)
    spherical  prec_chol (K,)       1 / sqrt(variance_k)
"""

import numpy as np
from scipy import linalg
from scipy.special import logsumexp

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
#: every covariance model fastgmm has (scikit-learn's four and mclust's EEI, EII)
MODELS = (*COVARIANCE_TYPES, "EEI", "EII")
#: models with one covariance shared by all components
SHARED = ("tied", "EEI", "EII")


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _as_full(prec_chol, covariance_type, n_components, n_features):
    """Precision-Cholesky factors of any type as (K, d, d) upper-triangular matrices."""
    pc = _f64(prec_chol)
    if covariance_type == "full":
        return pc
    if covariance_type == "tied":
        return np.repeat(pc[None], n_components, axis=0)
    if covariance_type == "spherical":
        pc = np.repeat(pc[:, None], n_features, axis=1)
    elif covariance_type == "EEI":  # one diagonal for all
        pc = np.repeat(pc[None], n_components, axis=0)
    elif covariance_type == "EII":  # one scalar for all
        pc = np.full((n_components, n_features), float(pc))
    return np.stack([np.diag(p) for p in pc])


def log_gaussian_prob(X, means, prec_chol, covariance_type):
    """log N(x_i | mu_k, Sigma_k), shape (n, K), by the precision-Cholesky formula

    log N = sum_j log U_jj - d/2 log(2 pi) - 1/2 || (x - mu) U ||^2.
    """
    X, means = _f64(X), _f64(means)
    n_components, n_features = means.shape
    U = _as_full(prec_chol, covariance_type, n_components, n_features)
    out = np.empty((X.shape[0], n_components))
    for k in range(n_components):
        y = (X - means[k]) @ U[k]
        log_det = np.sum(np.log(np.diag(U[k])))
        out[:, k] = (
            log_det - 0.5 * n_features * np.log(2 * np.pi) - 0.5 * np.sum(y * y, 1)
        )
    return out


def covariances_from_prec_chol(prec_chol, covariance_type, n_components, n_features):
    """Full (K, d, d) covariance matrices implied by precision-Cholesky factors."""
    U = _as_full(prec_chol, covariance_type, n_components, n_features)
    return np.stack([np.linalg.inv(u @ u.T) for u in U])


def weighted_log_prob(X, weights, means, prec_chol, covariance_type):
    """log w_k + log N(x_i | k), shape (n, K)."""
    with np.errstate(divide="ignore"):
        log_w = np.log(_f64(weights))
    return log_gaussian_prob(X, means, prec_chol, covariance_type) + log_w


def e_step(X, weights, means, prec_chol, covariance_type):
    """(log p(x_i) of shape (n,), responsibilities of shape (n, K)) by logsumexp."""
    wlp = weighted_log_prob(X, weights, means, prec_chol, covariance_type)
    log_norm = logsumexp(wlp, axis=1)
    with np.errstate(invalid="ignore"):
        resp = np.exp(wlp - log_norm[:, None])
    return log_norm, resp


def n_parameters(covariance_type, n_components, n_features):
    """Free parameters (mclust's ``nMclustParams`` / scikit-learn's ``_n_parameters``)."""
    k, d = n_components, n_features
    cov = {
        "full": k * d * (d + 1) / 2, "tied": d * (d + 1) / 2, "diag": k * d,
        "spherical": k, "EEI": d, "EII": 1,
    }[covariance_type]  # fmt: skip
    return int(cov + k * d + k - 1)


def sufficient_stats(X, resp, sample_weight, ref, covariance_type):
    """Weighted statistics about a reference point per component, in em_pass's layout.

    nk (K,) = sum_i w_i r_ik; s1 (K, d) = sum_i w_i r_ik (x_i - ref_k);
    s2 = sum_i w_i r_ik (x_i - ref_k)(x_i - ref_k)' as (K, d, d) for full,
    its diagonal as (K, 1, d) for diag/spherical, and a (K, 1, d) zero array for tied.
    """
    X, resp, ref = _f64(X), _f64(resp), _f64(ref)
    n, d = X.shape
    w = np.ones(n) if sample_weight is None else _f64(sample_weight)
    wr = resp * w[:, None]
    n_components = resp.shape[1]
    nk = wr.sum(axis=0)
    s1 = np.empty((n_components, d))
    full = covariance_type == "full"
    s2 = np.zeros((n_components, d if full else 1, d))
    for k in range(n_components):
        diff = X - ref[k]
        s1[k] = wr[:, k] @ diff
        if full:
            s2[k] = (wr[:, k] * diff.T) @ diff
        elif covariance_type != "tied":
            s2[k, 0] = wr[:, k] @ diff**2
    return nk, s1, s2


def m_step(X, resp, reg_covar, covariance_type, sample_weight=None):
    """scikit-learn's M-step with sample weights: (weights, means, covariances).

    nk gets 10 * eps added (as in ``_estimate_gaussian_parameters``), weights are
    nk / sum(nk), reg_covar is added to the diagonal. Scatter is taken about the new
    means (the stable form of scikit-learn's E[xx'] - mu mu' formulas).
    """
    X, resp = _f64(X), _f64(resp)
    n, d = X.shape
    w = np.ones(n) if sample_weight is None else _f64(sample_weight)
    wr = resp * w[:, None]
    nk = wr.sum(axis=0) + 10 * np.finfo(np.float64).eps
    means = (wr.T @ X) / nk[:, None]
    scatter = np.stack(
        [(wr[:, k] * (X - means[k]).T) @ (X - means[k]) for k in range(len(nk))]
    )
    if covariance_type == "full":
        cov = scatter / nk[:, None, None] + reg_covar * np.eye(d)
    elif covariance_type == "tied":
        cov = scatter.sum(axis=0) / nk.sum() + reg_covar * np.eye(d)
    elif covariance_type in ("EEI", "EII"):  # mclust: diag(W) / n, tr(W) / (n d)
        pooled = np.diagonal(scatter.sum(axis=0)) / nk.sum() + reg_covar
        cov = pooled if covariance_type == "EEI" else np.array(pooled.mean())
    else:
        diag = np.diagonal(scatter, axis1=1, axis2=2) / nk[:, None] + reg_covar
        cov = diag if covariance_type == "diag" else diag.mean(axis=1)
    return nk / nk.sum(), means, cov


def precision_cholesky(covariances, covariance_type):
    """scikit-learn's ``_compute_precision_cholesky`` (upper factor of the precision)."""
    cov = _f64(covariances)
    if covariance_type in ("diag", "spherical", "EEI", "EII"):
        return 1.0 / np.sqrt(cov)
    mats = cov if covariance_type == "full" else cov[None]
    d = mats.shape[-1]
    out = np.stack(
        [
            linalg.solve_triangular(
                linalg.cholesky(c, lower=True), np.eye(d), lower=True
            ).T
            for c in mats
        ]
    )
    return out if covariance_type == "full" else out[0]


def em_iteration(
    X, weights, means, prec_chol, covariance_type, reg_covar, sample_weight=None
):
    """One EM iteration as scikit-learn runs it.

    Returns (lower_bound, weights, means, covariances, prec_chol): the lower bound is the
    (weighted) mean log-likelihood of the *entering* parameters; the rest are the new ones.
    """
    log_norm, resp = e_step(X, weights, means, prec_chol, covariance_type)
    w = np.ones(len(log_norm)) if sample_weight is None else _f64(sample_weight)
    lower_bound = float(np.sum(w * log_norm) / np.sum(w))
    new_w, new_means, new_cov = m_step(
        X, resp, reg_covar, covariance_type, sample_weight
    )
    return (
        lower_bound,
        new_w,
        new_means,
        new_cov,
        precision_cholesky(new_cov, covariance_type),
    )


def random_params(rng, n_components, n_features, covariance_type, scale=1.0):
    """Random well-conditioned parameters (weights, means, covariances, prec_chol)."""
    weights = rng.uniform(0.5, 1.5, n_components)
    weights /= weights.sum()
    means = rng.normal(scale=2.0 * scale, size=(n_components, n_features))
    if covariance_type == "full":
        A = rng.normal(size=(n_components, n_features, n_features))
        cov = scale**2 * (
            A @ A.transpose(0, 2, 1) / n_features + 0.5 * np.eye(n_features)
        )
    elif covariance_type == "tied":
        A = rng.normal(size=(n_features, n_features))
        cov = scale**2 * (A @ A.T / n_features + 0.5 * np.eye(n_features))
    elif covariance_type == "diag":
        cov = scale**2 * rng.uniform(0.3, 2.0, (n_components, n_features))
    elif covariance_type == "EEI":
        cov = scale**2 * rng.uniform(0.3, 2.0, n_features)
    elif covariance_type == "EII":
        cov = np.array(scale**2 * rng.uniform(0.3, 2.0))
    else:
        cov = scale**2 * rng.uniform(0.3, 2.0, n_components)
    return weights, means, cov, precision_cholesky(cov, covariance_type)


def sample_mixture(rng, n_samples, weights, means, covariances, covariance_type):
    """Draw n_samples points (float64) from a mixture given in scikit-learn shapes."""
    n_components, d = means.shape
    full = covariances_from_prec_chol(
        precision_cholesky(covariances, covariance_type),
        covariance_type,
        n_components,
        d,
    )
    labels = rng.choice(n_components, size=n_samples, p=weights)
    X = np.empty((n_samples, d))
    for k in range(n_components):
        idx = labels == k
        X[idx] = rng.multivariate_normal(means[k], full[k], size=int(idx.sum()))
    return X
