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
#: one covariance model per kernel layout (scikit-learn's four and mclust's EEI, EII)
MODELS = (*COVARIANCE_TYPES, "EEI", "EII")
#: models with one covariance shared by all components
SHARED = ("tied", "EEI", "EII")
#: mclust's other models: per-component covariances laid out as scikit-learn's diag
#: (VEI, EVI) or full (the rest); their M-steps are in the mclust section below
MCLUST_ONLY = ("VEI", "EVI", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV")
#: every covariance model fastgmm has
ALL_MODELS = (*MODELS, *MCLUST_ONLY)
#: mclust's 14 names in mclust's order, and scikit-learn's name for the four it has
MCLUST_NAMES = (
    "EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE",
    "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV",
)  # fmt: skip
SKLEARN_NAME = {"VVV": "full", "EEE": "tied", "VVI": "diag", "VII": "spherical"}
#: the layout (scikit-learn's name) of every model's covariance arrays
LAYOUT = {
    **{m: m for m in MODELS},
    **{m: "diag" if m.endswith("I") else "full" for m in MCLUST_ONLY},
}


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _as_full(prec_chol, covariance_type, n_components, n_features):
    """Precision-Cholesky factors of any type as (K, d, d) upper-triangular matrices."""
    pc = _f64(prec_chol)
    covariance_type = LAYOUT.get(covariance_type, covariance_type)
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


def top_components(X, weights, means, prec_chol, covariance_type, n_top):
    """(n, C) indices of each row's C largest weighted log-densities, largest first
    (ties: the lower index first)."""
    wlp = weighted_log_prob(X, weights, means, prec_chol, covariance_type)
    return np.argsort(-wlp, axis=1, kind="stable")[:, :n_top]


def restricted_e_step(X, weights, means, prec_chol, covariance_type, sel, cut=None):
    """e_step over each row's selected components ``sel`` (n, C) only: (log p of the
    selected terms (n,), responsibilities (n, K), zero off the selection). ``cut``:
    terms below a row's largest selected one by more are dropped too."""
    wlp = weighted_log_prob(X, weights, means, prec_chol, covariance_type)
    rows = np.arange(len(X))[:, None]
    kept = np.full_like(wlp, -np.inf)
    kept[rows, sel] = wlp[rows, sel]
    if cut is not None:
        top = kept.max(axis=1, keepdims=True)
        kept[kept < top - cut] = -np.inf
    log_norm = logsumexp(kept, axis=1)
    return log_norm, np.exp(kept - log_norm[:, None])


def n_parameters(covariance_type, n_components, n_features):
    """Free parameters (mclust's ``nMclustParams`` / scikit-learn's ``_n_parameters``)."""
    k, d = n_components, n_features
    if covariance_type in MCLUST_ONLY:
        return int(n_var_params(covariance_type, k, d) + k * d + k - 1)
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
    covariance_type = LAYOUT.get(covariance_type, covariance_type)
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
    covariance_type = LAYOUT.get(covariance_type, covariance_type)
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
    if covariance_type in MCLUST_ONLY:
        cov = scale**2 * random_mclust_covariances(
            rng, covariance_type, n_components, n_features
        )
        if covariance_type.endswith("I"):
            cov = np.stack([np.diag(c) for c in cov])
    elif covariance_type == "full":
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
    covariance_type = LAYOUT.get(covariance_type, covariance_type)
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


# ------------------------------------------------------------------------------ mclust
# mclust's 14 models, written from the papers: Celeux & Govaert (1995) "Gaussian
# parsimonious clustering models" (Pattern Recognition 28) for the decomposition
# Sigma_k = lambda_k D_k A_k D_k' and the closed forms / alternating updates, and
# Browne & McNicholas (2014) "Estimating common principal components in high
# dimensions" (ADAC 8) for the orientation D common to all components (EVE, VVE).
# The parameter counts are mclust's nVarParams. Independent of fastgmm's code: whole
# arrays, loops over components, iterations run to full convergence.


def n_var_params(name, G, d):
    """mclust's ``nVarParams(modelName, d, G)``, term by term as mclust writes it."""
    return {
        "EII": 1, "VII": G, "EEI": d, "VEI": G + (d - 1), "EVI": 1 + G * (d - 1),
        "VVI": G * d, "EEE": d * (d + 1) / 2, "EVE": 1 + G * (d - 1) + d * (d - 1) / 2,
        "VEE": G + (d - 1) + d * (d - 1) / 2, "VVE": G + G * (d - 1) + d * (d - 1) / 2,
        "EEV": 1 + (d - 1) + G * d * (d - 1) / 2,
        "VEV": G + (d - 1) + G * d * (d - 1) / 2, "EVV": 1 - G + G * d * (d + 1) / 2,
        "VVV": G * d * (d + 1) / 2,
    }[name]  # fmt: skip


def random_orthogonal(rng, d):
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def random_mclust_covariances(rng, name, G, d):
    """(G, d, d) covariances lambda_k D_k A_k D_k' obeying model ``name``'s letters:
    E = one value for all components, V = one per component, I = identity axes."""
    vol, shp, ori = name

    def draw(letter, make):
        if letter == "E":
            one = make()
            return [one] * G
        return [make() for _ in range(G)]

    lambdas = draw(vol, lambda: rng.uniform(0.5, 2.0))
    shapes = draw(shp, lambda: _unit(rng.uniform(0.3, 3.0, d)))
    axes = (
        [np.eye(d)] * G if ori == "I" else draw(ori, lambda: random_orthogonal(rng, d))
    )
    return np.stack([lam * (D * a) @ D.T for lam, a, D in zip(lambdas, shapes, axes)])


def _unit(a):
    """Positive vector(s) scaled to product 1 along the last axis."""
    return a / np.exp(np.mean(np.log(a), axis=-1, keepdims=True))


def scatter_matrices(X, resp, sample_weight=None):
    """(n_k with scikit-learn's 10 eps, means, W_k = sum_i w_i r_ik (x_i - mu_k)(x_i -
    mu_k)' of shape (K, d, d))."""
    X, resp = _f64(X), _f64(resp)
    w = np.ones(len(X)) if sample_weight is None else _f64(sample_weight)
    wr = resp * w[:, None]
    nk = wr.sum(axis=0) + 10 * np.finfo(np.float64).eps
    means = (wr.T @ X) / nk[:, None]
    W = np.zeros((len(nk), X.shape[1], X.shape[1]))
    for k in range(len(nk)):
        diff = X - means[k]
        W[k] = (wr[:, k, None] * diff).T @ diff
    return nk, means, W


def mclust_objective(covariances, W, nk):
    """sum_k n_k log det Sigma_k + tr(W_k Sigma_k^-1): what an M-step minimises."""
    total = 0.0
    for S, Wk, n in zip(covariances, W, nk):
        total += n * np.linalg.slogdet(S)[1] + np.trace(np.linalg.solve(S, Wk))
    return total


def _alternate(update, start, tol=1e-14, max_iter=200_000):
    state = start
    for _ in range(max_iter):
        new = update(state)
        if (
            max(np.max(np.abs(a - b) / (1 + np.abs(b))) for a, b in zip(state, new))
            < tol
        ):
            return new
        state = new
    return state


def _orientation_mm(W, inv_diag, D):
    """One MM1 then one MM2 step (Browne & McNicholas 2014) for min over orthogonal D
    of sum_k tr(W_k D diag(inv_diag_k) D')."""
    F = np.zeros_like(D)
    for Wk, s in zip(W, inv_diag):
        top = np.linalg.eigvalsh(Wk).max()
        F += np.diag(s) @ D.T @ (Wk - top * np.eye(len(D)))
    P, _, Rt = np.linalg.svd(F)
    D = Rt.T @ P.T
    F = np.zeros_like(D)
    for Wk, s in zip(W, inv_diag):
        F += Wk @ D @ (np.diag(s) - s.max() * np.eye(len(D)))
    P, _, Rt = np.linalg.svd(F)
    return P @ Rt


def _start_axes(previous):
    """Axes diagonalising every previous covariance (a generic combination's)."""
    G = len(previous)
    M = sum((1.0 + 0.37 * k) * previous[k] / np.trace(previous[k]) for k in range(G))
    return np.linalg.eigh(M)[1]


def _common_orientation(W, nk, previous, with_volume):
    """EVE (with_volume False: shapes of determinant 1, common volume) or VVE (True:
    diag(D' W_k D) / n_k) by alternating MM steps on D and the closed-form diagonals
    until the objective no longer changes. Returns (G, d, d) covariances."""
    G, d = len(nk), W.shape[1]
    if previous is None:
        D, diags = np.eye(d), np.ones((G, d))
    else:
        D = _start_axes(previous)
        diags = np.stack([np.diag(D.T @ P @ D) for P in previous])
        diags = diags if with_volume else _unit(diags)
    value = np.inf
    for _ in range(200_000):
        D = _orientation_mm(W, 1.0 / diags, D)
        B = np.stack([np.diag(D.T @ Wk @ D) for Wk in W])
        diags = B / nk[:, None] if with_volume else _unit(B)
        lam = 1.0 if with_volume else np.sum(B / diags) / (d * nk.sum())
        cov = np.stack([lam * (D * a) @ D.T for a in diags])
        new_value = mclust_objective(cov, W, nk)
        if abs(new_value - value) <= 1e-15 * (1 + abs(new_value)):
            break
        value = new_value
    return cov


def mclust_covariances(name, W, nk, previous=None):
    """The covariances (G, d, d) maximising the expected complete-data likelihood of
    mclust's model ``name`` given scatters W (G, d, d) and counts nk (G,)."""
    G, d = W.shape[0], W.shape[1]
    n = nk.sum()
    dg = np.stack([np.diag(Wk) for Wk in W])  # (G, d) diagonals
    full = lambda diag: np.stack([np.diag(v) for v in diag])  # noqa: E731
    if name == "EII":
        return np.repeat(np.eye(d)[None] * np.trace(W.sum(0)) / (n * d), G, axis=0)
    if name == "VII":
        return np.stack(
            [np.eye(d) * np.trace(Wk) / (nk_ * d) for Wk, nk_ in zip(W, nk)]
        )
    if name == "EEI":
        return np.repeat(np.diag(np.diag(W.sum(0)) / n)[None], G, axis=0)
    if name == "VVI":
        return full(dg / nk[:, None])
    if name == "EEE":
        return np.repeat((W.sum(0) / n)[None], G, axis=0)
    if name == "VVV":
        return W / nk[:, None, None]
    if name == "EVI":  # lambda B_k: B_k = diag W_k / |diag W_k|^(1/d)
        roots = np.exp(np.log(dg).mean(1))
        return full((roots.sum() / n) * dg / roots[:, None])
    if name == "EVV":  # lambda C_k: C_k = W_k / |W_k|^(1/d)
        roots = np.array([np.linalg.det(Wk) ** (1.0 / d) for Wk in W])
        return (roots.sum() / n) * W / roots[:, None, None]
    if name in ("EEV", "VEV"):  # W_k = L_k Omega_k L_k', decreasing eigenvalues
        vals, vecs = np.linalg.eigh(W)
        omega, L = vals[:, ::-1], vecs[:, :, ::-1]
        if name == "EEV":
            A = omega.sum(0)
            lam = np.full(G, np.prod(A) ** (1.0 / d) / n)
            A = _unit(A)
        else:
            # alternate lambda_k = tr(Omega_k A^-1) / (d n_k), A ~ sum_k Omega_k / lambda_k
            lam, A = _alternate(
                lambda s: (
                    (omega / s[1]).sum(1) / (d * nk),
                    _unit((omega / ((omega / s[1]).sum(1) / (d * nk))[:, None]).sum(0)),
                ),
                (np.ones(G), _unit(omega.sum(0))),
            )
        return np.stack([lam[k] * (L[k] * A) @ L[k].T for k in range(G)])
    if name == "VEI":
        # alternate lambda_k = tr(W_k A^-1) / (d n_k), A ~ sum_k diag W_k / lambda_k
        lam, A = _alternate(
            lambda s: (
                (dg / s[1]).sum(1) / (d * nk),
                _unit((dg / ((dg / s[1]).sum(1) / (d * nk))[:, None]).sum(0)),
            ),
            (np.ones(G), np.ones(d)),
        )
        return full(lam[:, None] * A)
    if name == "VEE":
        # alternate C ~ sum_k W_k / lambda_k (|C| = 1), lambda_k = tr(W_k C^-1)/(d n_k)
        def step(state):
            C = sum(Wk / lam for Wk, lam in zip(W, state[0]))
            C = C / np.linalg.det(C) ** (1.0 / d)
            return np.array(
                [np.trace(np.linalg.solve(C, Wk)) / (d * m) for Wk, m in zip(W, nk)]
            ), C

        start = (
            np.ones(G)
            if previous is None
            else np.array([np.linalg.det(P) ** (1.0 / d) for P in previous])
        )
        lam, C = _alternate(step, step((start, None)))
        return lam[:, None, None] * C
    if name in ("EVE", "VVE"):
        return _common_orientation(W, nk, previous, name == "VVE")
    raise ValueError(name)


def mclust_m_step(X, resp, reg_covar, name, sample_weight=None, previous=None):
    """mclust's M-step of model ``name`` (also scikit-learn's names for VVV, EEE, VVI,
    VII) with fastgmm's reg_covar: n_k * reg_covar added to each scatter's diagonal.
    Returns (weights, means, covariances in fastgmm's shape for the model)."""
    nk, means, W = scatter_matrices(X, resp, sample_weight)
    W = W + (nk * reg_covar)[:, None, None] * np.eye(W.shape[1])
    mc = {v: k for k, v in SKLEARN_NAME.items()}.get(name, name)
    prev = None if previous is None else _as_dense(previous, mc, len(nk), W.shape[1])
    cov = mclust_covariances(mc, W, nk, prev)
    return nk / nk.sum(), means, _from_dense(cov, mc)


def _as_dense(cov, name, G, d):
    cov = _f64(cov)
    if name in ("EII", "VII", "EEI", "VEI", "EVI", "VVI"):
        diag = np.broadcast_to(
            cov[..., None] if cov.ndim < 2 and name[1:] == "II" else cov, (G, d)
        )
        return np.stack([np.diag(v) for v in diag])
    return np.broadcast_to(cov, (G, d, d)).copy()


def _from_dense(cov, name):
    """(G, d, d) covariances in fastgmm's shape for mclust's model ``name``."""
    if name in ("EEE",):
        return cov[0]
    if name in ("EEI", "EII"):
        diag = np.diag(cov[0])
        return diag if name == "EEI" else np.array(diag.mean())
    if name == "VII":
        return np.array([np.diag(c).mean() for c in cov])
    if name in ("VVI", "VEI", "EVI"):
        return np.stack([np.diag(c) for c in cov])
    return cov


def mclust_em_iteration(
    X, weights, means, covariances, name, reg_covar, sample_weight=None
):
    """One EM iteration of mclust's model ``name`` from (weights, means, covariances in
    fastgmm's shape), the M-step started from the entering covariances (as mclust's
    EM carries its inner state). Returns (lower_bound, weights, means, covariances)."""
    prec_chol = precision_cholesky(covariances, name)
    log_norm, resp = e_step(X, weights, means, prec_chol, name)
    w = np.ones(len(log_norm)) if sample_weight is None else _f64(sample_weight)
    bound = float(np.sum(w * log_norm) / np.sum(w))
    new_w, new_means, new_cov = mclust_m_step(
        X, resp, reg_covar, name, sample_weight, previous=covariances
    )
    return bound, new_w, new_means, new_cov


# ------------------------------------------------------------ conjugate prior, noise
def mclust_map_m_step(X, resp, name, shrinkage, prior_mean, dof, scale):
    """mclust's M-step with its conjugate prior (mstepVVVp, mstepEEEp, mstepVVIp,
    mstepEEIp, mstepVIIp, mstepEIIp; Fraley & Raftery 2007, Table 2) for the six
    models where fastgmm's prior is mclust's. ``scale``: a (d, d) matrix for VVV/EEE,
    a number otherwise. Returns (means, covariances (G, d, d))."""
    nk, xbar, W = scatter_matrices(X, resp)
    G, d = xbar.shape
    k = shrinkage
    diff = xbar - prior_mean
    B = np.stack([k * n / (n + k) * np.outer(v, v) for n, v in zip(nk, diff)])
    Wt = W + B  # scatter plus the mean prior's term
    means = (nk[:, None] * xbar + k * prior_mean) / (nk + k)[:, None]
    one = 1.0 if k > 0 else 0.0
    if name == "VVV":
        cov = np.stack(
            [(scale + Wt[g]) / (dof + nk[g] + d + 1 + one) for g in range(G)]
        )
    elif name == "EEE":
        cov = np.repeat(
            ((scale + Wt.sum(0)) / (dof + nk.sum() + d + 1 + G * one))[None], G, 0
        )
    elif name == "VVI":
        cov = np.stack(
            [
                np.diag((scale + np.diag(Wt[g])) / (dof + nk[g] + 2 + one))
                for g in range(G)
            ]
        )
    elif name == "EEI":
        v = (scale + np.diag(Wt.sum(0))) / (dof + nk.sum() + 2 + G * one)
        cov = np.repeat(np.diag(v)[None], G, 0)
    elif name == "VII":
        cov = np.stack(
            [
                np.eye(d) * (scale + np.trace(Wt[g])) / (dof + nk[g] * d + 2 + d * one)
                for g in range(G)
            ]
        )
    elif name == "EII":
        v = (scale + np.trace(Wt.sum(0))) / (dof + nk.sum() * d + 2 + G * d * one)
        cov = np.repeat(np.eye(d)[None] * v, G, 0)
    else:
        raise ValueError(name)
    return means, cov


def log_posterior(name, means, covs, X, resp, shrinkage, prior_mean, dof, scale):
    """Expected complete-data log-likelihood plus the log prior density (up to
    constants) of (means, covariances (G, d, d)) of mclust's model ``name``: each
    mean N(prior_mean, Sigma_k / shrinkage); each covariance inverse-Wishart(dof,
    scale) (dense models), inverse-gamma(dof / 2, scale / 2) per variance (diagonal)
    or for the one variance (spherical); counted once when the model has one
    covariance for all components (EII, EEI, EEE)."""
    X, resp = _f64(X), _f64(resp)
    G, d = means.shape
    total = 0.0
    shared = name in ("EII", "EEI", "EEE")
    for g in range(G):
        S = covs[g]
        Sinv = np.linalg.inv(S)
        logdet = np.linalg.slogdet(S)[1]
        diff = X - means[g]
        quad = np.einsum("ij,jk,ik->i", diff, Sinv, diff)
        total += np.sum(resp[:, g] * (-0.5 * logdet - 0.5 * quad))
        m = means[g] - prior_mean
        total += (
            -0.5 * (logdet - d * np.log(shrinkage)) - 0.5 * shrinkage * m @ Sinv @ m
        )
        if shared and g > 0:
            continue
        if name[2] == "I" and name[1] == "I":  # one variance
            v = S[0, 0]
            total += -(dof + 2) / 2 * np.log(v) - scale / (2 * v)
        elif name[2] == "I":  # a diagonal
            v = np.diag(S)
            total += np.sum(-(dof + 2) / 2 * np.log(v) - scale / (2 * v))
        else:
            total += -(dof + d + 1) / 2 * logdet - 0.5 * np.trace(scale @ Sinv)
    return total


def noise_em_iteration(
    X, weights, means, covariances, name, reg_covar, noise_weight, log_volume
):
    """One EM iteration of a mixture of mclust's model ``name`` plus a uniform noise
    component of density exp(-log_volume): the E-step with a last column of constant
    log-density log(noise_weight) - log_volume, the Gaussian M-step on the first
    columns, weights over all. Returns (bound, weights, means, covariances,
    noise_weight)."""
    layout = LAYOUT.get(name, name)
    prec_chol = precision_cholesky(covariances, name)
    wlp = weighted_log_prob(X, weights, means, prec_chol, layout)
    wlp = np.hstack([wlp, np.full((len(X), 1), np.log(noise_weight) - log_volume)])
    log_norm = logsumexp(wlp, axis=1)
    resp = np.exp(wlp - log_norm[:, None])
    G = means.shape[0]
    _, new_means, new_cov = mclust_m_step(
        X, resp[:, :G], reg_covar, name, previous=covariances
    )
    nk = resp.sum(0)
    nk[:G] += 10 * np.finfo(np.float64).eps
    return (
        float(log_norm.mean()),
        nk[:G] / nk.sum(),
        new_means,
        new_cov,
        nk[G] / nk.sum(),
    )
