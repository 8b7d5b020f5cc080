"""Model-based agglomerative hierarchical clustering (mclust's ``hc``), for starts.

Starting from single rows, merge the two clusters whose union costs the least
classification likelihood under a Gaussian model (Banfield & Raftery 1993; Fraley
1998), down to one cluster; cutting the tree at K clusters gives a start for EM:

``"EII"`` (one spherical variance shared by all clusters)
    Ward's criterion: scipy's ``ward`` linkage.
``"VVV"`` (a full covariance per cluster)
    mclust's ``hcVVV`` (alpha = beta = 1): a cluster of n rows with scatter W costs
    ``n log(beta (tr W + alpha) / n)`` while n <= p, and
    ``n log(det(W / n) + beta (tr W + alpha) / n)`` once n > p, with alpha the mean
    variance per coordinate of the rows clustered; a merge costs
    ``cost(i u j) - cost(i) - cost(j)``. Equal costs: the first pair found.

Rows are transformed first as mclust's default ``hcUse = "SVD"``: standardised,
projected on their principal axes and scaled by one over the square root of the
singular values (dimensions of zero variance dropped). Above ``SUBSET`` rows
(mclust's ``subset``, 2000) the tree is built on a seeded sample of rows; the start
is then the M-step of the sample's partition and EM runs on all rows, as in mclust.
The work is O(m^2) memory and O(m^2 p) time for m rows (plus determinants of the
larger VVV merges): meant for a few thousand rows.
"""

import numpy as np

#: rows the tree is built on (mclust.options("subset"))
SUBSET = 2000
MODELS = ("VVV", "EII")


def svd_transform(X):
    """mclust's ``hcUse = "SVD"``: standardised rows times V diag(1 / sqrt(s))."""
    X = np.asarray(X, dtype=np.float64)
    sd = X.std(axis=0, ddof=1) if X.shape[0] > 1 else np.zeros(X.shape[1])
    keep = np.isfinite(sd) & (sd > 0)
    Z = (X[:, keep] - X[:, keep].mean(axis=0)) / sd[keep]
    if Z.shape[1] == 0:
        return np.zeros((X.shape[0], 1))
    u, s, _ = np.linalg.svd(Z, full_matrices=False)
    rank = s > s[0] * max(Z.shape) * np.finfo(float).eps
    return u[:, rank] * np.sqrt(s[rank])


def _replay(merges, n, ks):
    """{K: labels (n,) in 0..K-1} after n - K of the merges (pairs (keep, gone))."""
    parent = np.arange(n)

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    out, done = {}, 0
    for k in sorted(set(ks), reverse=True):
        for a, b in merges[done : n - k]:
            parent[root(b)] = root(a)
        done = n - k
        roots = np.array([root(i) for i in range(n)])
        out[k] = np.unique(roots, return_inverse=True)[1]
    return out


def _ward_merges(Z):
    """Ward's merges as (keep, gone) pairs of row representatives."""
    from scipy.cluster.hierarchy import linkage

    n = Z.shape[0]
    rep = list(range(n))
    merges = []
    for a, b, _, _ in linkage(Z, method="ward"):
        ra, rb = rep[int(a)], rep[int(b)]
        merges.append((min(ra, rb), max(ra, rb)))
        rep.append(min(ra, rb))
    return merges


class _VVV:
    """State of mclust's VVV agglomeration: sizes, means, traces, scatters, terms."""

    def __init__(self, Z, beta=1.0):
        n, self.p = Z.shape
        centred = Z - Z.mean(axis=0)
        self.alpha = max(float((centred**2).sum()) / (n * self.p), np.finfo(float).eps)
        self.beta = beta
        self.size = np.ones(n)
        self.mean = Z.copy()
        self.trace = np.zeros(n)
        self.term = np.full(n, np.log(self.alpha * beta))
        self.scatter = {}  # scatter of clusters of more than one row

    def terms(self, size, trace, scatter=None):
        """Cost of clusters of ``size`` rows with these traces; ``scatter`` holds the
        scatters of those with size > p, in order. Vectorised."""
        spread = np.log(self.beta * (trace + self.alpha) / size)
        out = size * spread
        big = size > self.p
        if np.any(big):
            sign, logdet = np.linalg.slogdet(scatter / size[big, None, None])
            regular = (sign > 0) & (trace[big] > 0)
            joint = np.where(regular, np.logaddexp(logdet, spread[big]), spread[big])
            joint = np.where(
                trace[big] > 0, joint, np.log(self.alpha * self.beta / size[big])
            )
            out[big] = size[big] * joint
        return out

    def pair_costs(self, a, others):
        """Merge costs of cluster ``a`` with each of ``others``."""
        na, nc = self.size[a], self.size[others]
        size = na + nc
        factor = na * nc / size
        delta = self.mean[others] - self.mean[a]
        trace = self.trace[a] + self.trace[others] + factor * (delta**2).sum(axis=1)
        scatter, big = None, size > self.p
        if np.any(big):
            zero = np.zeros((self.p, self.p))
            scatter = np.stack([self.scatter.get(c, zero) for c in others[big]])
            scatter += self.scatter.get(a, zero)
            d = delta[big]
            scatter += factor[big, None, None] * d[:, :, None] * d[:, None, :]
        return self.terms(size, trace, scatter) - self.term[a] - self.term[others]

    def merge(self, a, b):
        na, nb = self.size[a], self.size[b]
        size = na + nb
        delta = self.mean[b] - self.mean[a]
        zero = np.zeros((self.p, self.p))
        scatter = self.scatter.pop(a, zero) + self.scatter.pop(b, zero)
        scatter += (na * nb / size) * np.outer(delta, delta)
        self.trace[a] += self.trace[b] + (na * nb / size) * float(delta @ delta)
        self.mean[a] = (na * self.mean[a] + nb * self.mean[b]) / size
        self.size[a] = size
        self.scatter[a] = scatter
        self.term[a] = self.terms(
            np.array([size]), self.trace[a : a + 1], scatter[None]
        )[0]


def _vvv_merges(Z):
    """mclust's VVV merges, down to one cluster, as (keep, gone) pairs."""
    from scipy.spatial.distance import pdist, squareform

    n = Z.shape[0]
    state = _VVV(Z)
    # two single rows i, j: trace ||x_i - x_j||^2 / 2, scatter of rank one
    trace = squareform(pdist(Z, "sqeuclidean")) / 2
    size = np.full(n, 2.0)
    cost = np.empty((n, n))
    for i in range(n):  # row by row: scatters only when p = 1
        scatter = trace[i][:, None, None] if state.p == 1 else None
        cost[i] = state.terms(size, trace[i], scatter) - 2 * state.term[0]
    np.fill_diagonal(cost, np.inf)
    nearest = np.argmin(cost, axis=1)
    best = cost[np.arange(n), nearest]
    active = np.ones(n, bool)
    merges = []
    for _ in range(n - 1):
        i = int(np.argmin(best))
        a, b = sorted((i, int(nearest[i])))
        merges.append((a, b))
        state.merge(a, b)
        active[b] = False
        cost[b], cost[:, b], best[b] = np.inf, np.inf, np.inf
        others = np.flatnonzero(active)
        others = others[others != a]
        if others.size == 0:
            break
        cost[a, others] = cost[others, a] = state.pair_costs(a, others)
        stale = others[(nearest[others] == a) | (nearest[others] == b)]
        fresh = others[(nearest[others] != a) & (nearest[others] != b)]
        closer = fresh[cost[fresh, a] < best[fresh]]
        nearest[closer], best[closer] = a, cost[closer, a]
        for c in (a, *stale):
            nearest[c] = int(np.argmin(cost[c]))
            best[c] = cost[c, nearest[c]]
    return merges


def hc_tree(X, model="VVV"):
    """The merges of the agglomeration of the rows of ``X`` down to one cluster, as
    (kept, merged) row representatives (cut them with :func:`cut_tree`)."""
    if model not in MODELS:
        raise ValueError(f"hc model must be one of {MODELS}, got {model!r}")
    Z = svd_transform(X)
    if Z.shape[0] == 1:
        return []
    return _ward_merges(Z) if model == "EII" else _vvv_merges(Z)


def cut_tree(merges, n, ks):
    """{K: labels (n,) in 0..K-1} after n - K merges (K above n: n clusters)."""
    return _replay(merges, n, [min(int(k), n) for k in ks])


def hc_labels(X, ks, model="VVV"):
    """{K: labels (n,) in 0..K-1} of the agglomeration of the rows of ``X`` (all of
    them: subsample first for large n), for each K in ``ks`` (at most n)."""
    return cut_tree(hc_tree(X, model), X.shape[0], ks)


def sample_rows(n, sample_weight, random_state, size=SUBSET):
    """Rows the tree is built on: all rows of positive weight, or a seeded sample of
    ``size`` of them (drawn in proportion to the weights when given)."""
    rows = (
        np.arange(n)
        if not sample_weight.shape[0]
        else np.flatnonzero(sample_weight > 0)
    )
    if rows.shape[0] <= size:
        return rows
    p = None
    if sample_weight.shape[0]:
        p = sample_weight[rows] / sample_weight[rows].sum()
    return np.sort(random_state.choice(rows, size=size, replace=False, p=p))
