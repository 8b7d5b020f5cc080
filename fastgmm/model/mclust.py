"""mclust's covariance models as M-steps on scatter matrices.

mclust writes every covariance as ``Sigma_k = lambda_k D_k A_k D_k'``: a volume
``lambda_k`` (a number), a shape ``A_k`` (diagonal, determinant 1) and an orientation
``D_k`` (orthogonal). Its three letters say, for volume, shape and orientation in
that order, whether the part is Equal for all components, Variable, or (orientation
only) the Identity. Each function here is the M-step of one model: from the
per-component scatter about the new means ``W_k = sum_i r_ik (x_i - mu_k)(x_i -
mu_k)'`` and the counts ``n_k = sum_i r_ik`` it returns the covariances that maximise
``-sum_k [n_k log det Sigma_k + tr(W_k Sigma_k^-1)]`` over the model's family.

Input forms: models with a diagonal or scalar covariance (``*II``, ``*I``) take the
diagonals of the scatters, shape (K, d); the others take (K, d, d). Counts are (K,).
The output has the shape of the model's record in :mod:`fastgmm.model.covariance`.

Closed forms (Celeux & Govaert 1995, "Gaussian parsimonious clustering models"):
EII, VII, EEI, VVI, EVI, EEE, EEV, EVV, VVV. Iterative ones (their section 3 and
Browne & McNicholas 2014, "Estimating common principal components in high
dimensions", for the orientation):

- VEI, VEV: volumes and a common shape by alternating closed-form updates;
- VEE: volumes and a common ``C = D A D'`` by alternating updates;
- EVE, VVE: a common orientation ``D`` by the two majorisation-minimisation steps
  of Browne & McNicholas (MM1 with the largest eigenvalue of each ``W_k``, MM2 with
  the largest of each inverse shape), then the shapes (and volumes) in closed form.

Inner iterations start as mclust's M-steps do (unit shapes, identity orientation;
VEV from EEV's shape), or, given ``previous`` covariances of the same model, from
their volumes, shapes and orientation: a generalised EM step that never decreases
the objective, as mclust's EM, which carries them from one iteration to the next.
They stop, as mclust's ``emControl()$tol[2]``, when the largest relative change
(of the parameters for VEI, VEV; of the objective for VEE, EVE, VVE) falls to
:data:`INNER_TOL`, or after :data:`INNER_MAX_ITER` iterations.

One deliberate difference from mclust 6: in VVE the orientation steps use each
component's full diagonal ``lambda_k A_k``, which is the M-step of the likelihood;
mclust's uses the unit-determinant ``A_k`` alone, whose fixed point is not the
maximiser when volumes differ (``tests/model/test_mclust.py`` shows the gap).
"""

import numpy as np

#: relative change at which the inner iterations stop (mclust's sqrt(eps))
INNER_TOL = float(np.sqrt(np.finfo(np.float64).eps))
#: most inner iterations per M-step
INNER_MAX_ITER = 1000

#: generic weights to find the axes common to several covariances (see _common_axes)
_AXIS_WEIGHTS = np.sqrt(np.arange(2.0, 200.0))


# ------------------------------------------------------------------ helpers
def _log_root_det_diag(diags):
    """log det(diag)^(1/d) of each row of (K, d) positive diagonals."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(diags).mean(axis=-1)


def _log_root_det(mats):
    """log det(M)^(1/d) of symmetric positive definite (..., d, d) matrices
    (-inf or nan when one is not positive definite)."""
    sign, logdet = np.linalg.slogdet(mats)
    with np.errstate(invalid="ignore"):
        return np.where(sign > 0, logdet, -np.inf) / mats.shape[-1]


def _unit_det(diags):
    """Positive diagonals scaled to determinant 1 along the last axis."""
    return diags / np.exp(_log_root_det_diag(diags))[..., None]


def _eig_desc(mats):
    """Eigenvalues (K, d) in decreasing order and eigenvectors (K, d, d) as columns."""
    values, vectors = np.linalg.eigh(mats)
    return values[..., ::-1], vectors[..., ::-1]


def _compose(scale, axes, shapes):
    """scale_k * D_k diag(shape_k) D_k' for broadcastable scale (K,), axes (K|1, d, d),
    shapes (K|1, d); symmetrised."""
    cov = (axes * shapes[..., None, :]) @ np.swapaxes(axes, -1, -2)
    cov = np.asarray(scale)[..., None, None] * cov
    return (cov + np.swapaxes(cov, -1, -2)) / 2


def _rel_change(old, new):
    """mclust's convergence measure: max |old - new| / (1 + |new|)."""
    return float(np.max(np.abs(old - new) / (1.0 + np.abs(new))))


def _common_axes(cov):
    """Orthogonal D (d, d) that diagonalises every covariance of a model with a
    common orientation, from the eigenvectors of a generic combination of them."""
    k = cov.shape[0]
    weights = _AXIS_WEIGHTS[np.arange(k) % _AXIS_WEIGHTS.shape[0]]
    traces = np.trace(cov, axis1=1, axis2=2)
    _, axes = np.linalg.eigh(np.einsum("k,kij->ij", weights / traces, cov))
    return axes


def _axis_diagonals(axes, scatter):
    """diag(D' W_k D) of every component, shape (K, d)."""
    return np.einsum("ij,kil,lj->kj", axes, scatter, axes)


# -------------------------------------------------------------- closed forms
def eii(scatter, counts, previous=None):
    """EII: lambda I, lambda = sum_k tr W_k / (d n)."""
    return np.asarray(scatter.sum() / (scatter.shape[1] * counts.sum()))


def vii(scatter, counts, previous=None):
    """VII (spherical): lambda_k = tr W_k / (d n_k)."""
    return scatter.sum(axis=1) / (scatter.shape[1] * counts)


def eei(scatter, counts, previous=None):
    """EEI: diag(W) / n with W the pooled scatter."""
    return scatter.sum(axis=0) / counts.sum()


def vvi(scatter, counts, previous=None):
    """VVI (diag): diag(W_k) / n_k."""
    return scatter / counts[:, None]


def evi(scatter, counts, previous=None):
    """EVI: A_k = diag(W_k) / det(diag W_k)^(1/d), lambda = sum_k det(diag W_k)^(1/d) / n."""
    roots = np.exp(_log_root_det_diag(scatter))
    return (roots.sum() / counts.sum()) * (scatter / roots[:, None])


def eee(scatter, counts, previous=None):
    """EEE (tied): W / n with W the pooled scatter."""
    cov = scatter.sum(axis=0) / counts.sum()
    return (cov + cov.T) / 2


def vvv(scatter, counts, previous=None):
    """VVV (full): W_k / n_k."""
    cov = scatter / counts[:, None, None]
    return (cov + np.swapaxes(cov, -1, -2)) / 2


def evv(scatter, counts, previous=None):
    """EVV: C_k = W_k / det(W_k)^(1/d), lambda = sum_k det(W_k)^(1/d) / n."""
    roots = np.exp(_log_root_det(scatter))
    cov = (roots.sum() / counts.sum()) * (scatter / roots[:, None, None])
    return (cov + np.swapaxes(cov, -1, -2)) / 2


def eev(scatter, counts, previous=None):
    """EEV: W_k = L_k Omega_k L_k' (eigenvalues decreasing); A = sum_k Omega_k scaled to
    determinant 1, lambda = det(sum_k Omega_k)^(1/d) / n, D_k = L_k."""
    omega, axes = _eig_desc(scatter)
    total = omega.sum(axis=0)
    root = float(np.exp(_log_root_det_diag(total)))
    return _compose(root / counts.sum(), axes, total / root)


# ---------------------------------------------------------------- iterative
def _volumes_and_shape(diags, counts, shape, scale):
    """Alternate lambda_k = sum_j diags_kj / a_j / (d n_k) and a ~ sum_k diags_k /
    lambda_k (determinant 1) from ``shape`` (VEI on diag(W_k), VEV on eigenvalues)."""
    d = diags.shape[1]
    for _ in range(INNER_MAX_ITER):
        new_scale = (diags / shape).sum(axis=1) / (d * counts)
        new_shape = _unit_det((diags / new_scale[:, None]).sum(axis=0))
        if not (np.all(np.isfinite(new_scale)) and np.all(np.isfinite(new_shape))):
            return new_scale, new_shape
        change = max(_rel_change(scale, new_scale), _rel_change(shape, new_shape))
        scale, shape = new_scale, new_shape
        if change <= INNER_TOL:
            break
    return scale, shape


def vei(scatter, counts, previous=None):
    """VEI: lambda_k A with a common diagonal shape A (iterative)."""
    k, d = scatter.shape
    if previous is None:
        scale, shape = np.ones(k), np.ones(d)
    else:
        scale = np.exp(_log_root_det_diag(previous))
        shape = _unit_det((previous / scale[:, None]).sum(axis=0))
    scale, shape = _volumes_and_shape(scatter, counts, shape, scale)
    return scale[:, None] * shape


def vev(scatter, counts, previous=None):
    """VEV: lambda_k L_k A L_k' with L_k the eigenvectors of W_k and a common shape A
    (iterative on the eigenvalues; starts from EEV's shape, as mclust)."""
    omega, axes = _eig_desc(scatter)
    if previous is None:
        shape = _unit_det(omega.sum(axis=0))
        scale = np.ones(scatter.shape[0])
    else:
        prev_values = np.linalg.eigvalsh(previous)[:, ::-1]
        scale = np.exp(_log_root_det_diag(prev_values))
        shape = _unit_det((prev_values / scale[:, None]).sum(axis=0))
    scale, shape = _volumes_and_shape(omega, counts, shape, scale)
    return _compose(scale, axes, shape[None])


def vee(scatter, counts, previous=None):
    """VEE: lambda_k C with a common C of determinant 1 (iterative): C ~ sum_k W_k /
    lambda_k, lambda_k = tr(W_k C^-1) / (d n_k); stops on the objective
    d sum_k n_k (1 + log lambda_k)."""
    k, d = scatter.shape[0], scatter.shape[1]
    scale = np.ones(k) if previous is None else np.exp(_log_root_det(previous))
    target_prev, common = np.inf, np.eye(d)
    for _ in range(INNER_MAX_ITER):
        common = (scatter / scale[:, None, None]).sum(axis=0)
        common = common / np.exp(_log_root_det(common))
        common = (common + common.T) / 2
        if not np.all(np.isfinite(common)):
            break
        scale = np.einsum("kij,ji->k", scatter, np.linalg.inv(common)) / (d * counts)
        with np.errstate(divide="ignore", invalid="ignore"):
            target = d * counts.sum() + d * float((counts * np.log(scale)).sum())
        change = abs(target - target_prev) / (1.0 + abs(target))
        target_prev = target
        if not change > INNER_TOL:  # also stops on nan
            break
    return scale[:, None, None] * common


def _mm_axes(axes, scatter, inv_shapes, top_eig):
    """One MM1 + MM2 step of Browne & McNicholas for min_D sum_k tr(W_k D S_k D'),
    S_k = diag(inv_shapes_k); returns the new orthogonal D."""
    # MM1: F = sum_k S_k D' (W_k - w_k I), w_k the largest eigenvalue of W_k
    scaled = inv_shapes[:, :, None] * axes.T[None]
    f = (scaled @ scatter - top_eig[:, None, None] * scaled).sum(axis=0)
    p, _, rt = np.linalg.svd(f)
    axes = (p @ rt).T
    # MM2: F = sum_k W_k D (S_k - s_k I), s_k the largest entry of S_k
    wd = scatter @ axes
    f = (wd * inv_shapes[:, None, :] - inv_shapes.max(axis=1)[:, None, None] * wd).sum(
        axis=0
    )
    p, _, rt = np.linalg.svd(f)
    return p @ rt


def _common_orientation(scatter, counts, previous, volumes):
    """(D, per-component diagonals B_k = diag(D' W_k D), and their scaled shapes) of
    EVE (``volumes`` False: shapes of determinant 1) or VVE (True: B_k / n_k)."""
    k, d = scatter.shape[0], scatter.shape[1]
    top_eig = np.linalg.eigvalsh(scatter)[:, -1]
    if previous is None:
        axes, shapes = np.eye(d), np.ones((k, d))
    else:
        axes = _common_axes(previous)
        shapes = _axis_diagonals(axes, previous)
        shapes = shapes if volumes else _unit_det(shapes)
    target_prev = np.inf
    for _ in range(INNER_MAX_ITER):
        with np.errstate(divide="ignore", invalid="ignore"):
            axes = _mm_axes(axes, scatter, 1.0 / shapes, top_eig)
        diags = _axis_diagonals(axes, scatter)
        with np.errstate(divide="ignore", invalid="ignore"):
            if volumes:
                shapes = diags / counts[:, None]
                target = float((counts * np.log(shapes).sum(axis=1)).sum())
            else:
                shapes = _unit_det(diags)
                target = float((diags / shapes).sum())
        change = abs(target - target_prev) / (1.0 + abs(target))
        target_prev = target
        if not change > INNER_TOL:  # also stops on nan
            break
    return axes, diags, shapes


def eve(scatter, counts, previous=None):
    """EVE: lambda D A_k D' with a common volume and orientation (MM iterations)."""
    axes, diags, shapes = _common_orientation(scatter, counts, previous, False)
    scale = (diags / shapes).sum() / (scatter.shape[1] * counts.sum())
    return _compose(scale, axes[None], shapes)


def vve(scatter, counts, previous=None):
    """VVE: lambda_k D A_k D' with a common orientation (MM iterations on the full
    diagonals lambda_k A_k = diag(D' W_k D) / n_k)."""
    axes, _, shapes = _common_orientation(scatter, counts, previous, True)
    return _compose(1.0, axes[None], shapes)
