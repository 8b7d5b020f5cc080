"""Online (stochastic) EM for data arriving as a stream of chunks (Cappé & Moulines, 2009).

The state is the running average of normalised sufficient statistics about a fixed
centre c (the first chunk's weighted mean):

    S_t = (1 - gamma_t) S_{t-1} + gamma_t s(chunk_t; theta_{t-1}),   gamma_t = t^(-decay)

with s(.) the per-unit-weight statistics of the chunk under the current parameters
(computed by the same fused kernel as batch EM), and theta_t = M-step(S_t). With
0.5 < decay <= 1 the recursion converges to a stationary point of the likelihood on
a stationary stream; it is an approximation of the batch fit, not equal to it.

After a batch fit the stream continues from the fitted model
(:func:`state_from_params`): S_0 is the statistics the fitted parameters imply (the
M-step of S_0 gives them back), and the fit counts as t_0 = round(n_fit / n_chunk)
steps (at least 1), as if its n_fit rows had arrived in chunks of the first
chunk's size; the next step size is then (t_0 + 1)^(-decay) instead of 1.
"""

from dataclasses import dataclass

import numpy as np

from ..kernels import DIAG
from .data import make_data
from .em import params_from_stats, pass_stats


@dataclass(frozen=True)
class OnlineState:
    t: int
    centre: np.ndarray  # (d,)
    nk: np.ndarray  # (K,)   per unit weight
    s1: np.ndarray  # (K, d) about centre
    s2: np.ndarray  # (K, p, d) about centre (p = d for full/tied, 1 otherwise)
    tied: object  # (d, d) total scatter about centre per unit weight, tied only


def _about_centre(nk, s1, s2, ref, centre, full):
    """Move statistics taken about ref (K, d) to be about the point ``centre``."""
    delta = ref - centre
    s1c = s1 + nk[:, None] * delta
    if full:
        s2 = np.tril(s2) + np.tril(s2, -1).transpose(0, 2, 1)
        cross = s1[:, :, None] * delta[:, None, :]
        s2c = s2 + cross + cross.transpose(0, 2, 1)
        s2c += nk[:, None, None] * delta[:, :, None] * delta[:, None, :]
    else:
        s2c = s2 + (2 * s1 * delta + nk[:, None] * delta**2)[:, None, :]
    return s1c, s2c


def chunk_statistics(X, sample_weight, params, family, centre):
    """(mean loglik, nk, s1, s2, tied scatter) of a chunk per unit weight, about centre."""
    n_components = params.means.shape[0]
    data = make_data(  # the chunk's statistics are taken about the model's means
        X, sample_weight, n_components, family.model, variances=False,
        anchors=params.means,
    )  # fmt: skip
    ll, (nk, s1, s2), ref = pass_stats(data, params, family)
    full = family.model.kind != DIAG
    s1c, s2c = _about_centre(nk, s1, s2, ref, centre, full)
    w = data.total_weight
    tied = None
    if data.tied_total is not None:
        mean, scatter = data.tied_total
        tied = (scatter + w * np.outer(mean - centre, mean - centre)) / w
    return ll / w, nk / w, s1c / w, s2c / w, tied


def online_step(state, X, sample_weight, params, family, decay):
    """One stochastic-EM update: (new state, new Params, chunk mean log-likelihood)."""
    if state is None:
        centre = np.average(np.asarray(X, np.float64), axis=0, weights=sample_weight)
        state = OnlineState(0, centre, None, None, None, None)
    ll, nk, s1, s2, tied = chunk_statistics(
        X, sample_weight, params, family, state.centre
    )
    t = state.t + 1
    gamma = 1.0 if state.nk is None else t ** (-decay)
    blend = lambda old, new: new if old is None else (1 - gamma) * old + gamma * new  # noqa: E731
    state = OnlineState(
        t,
        state.centre,
        blend(state.nk, nk),
        blend(state.s1, s1),
        blend(state.s2, s2),
        None if tied is None else blend(state.tied, tied),
    )
    return state, m_step(state, family), ll


def state_from_params(params, family, n_fit, n_chunk):
    """The online state a batch fit hands over (see the module docstring).

    Per unit weight about the mixture mean c: nk = weights, s1 = w_k (mu_k - c), s2
    the within-component scatter (covariance minus reg_covar) plus w_k (mu_k - c)^2
    terms; for dense shared models the total scatter. ``n_fit`` is the number of
    rows of the batch fit (None if unknown: it then counts as one step).
    """
    model, reg = family.model, family.reg_covar
    weights, means = params.weights, params.means
    k, d = means.shape
    centre = weights @ means
    delta = means - centre
    cov = params.covariances
    if cov is None:
        cov = model.covariances_from_prec_chol(params.prec_chol)
    cov = model.full(cov, k, d)
    cov[:, np.arange(d), np.arange(d)] -= reg
    between = weights[:, None, None] * delta[:, :, None] * delta[:, None, :]
    tied = None
    if model.kind == DIAG:
        var = np.diagonal(cov, 0, 1, 2)
        s2 = (weights[:, None] * (var + delta**2))[:, None, :]
    elif model.shared:  # dense shared: the M-step reads the total scatter
        s2, tied = between, cov[0] + between.sum(axis=0)
    else:
        s2 = weights[:, None, None] * cov + between
    t0 = 1 if not n_fit else max(1, round(n_fit / max(n_chunk, 1)))
    return OnlineState(t0, centre, weights.copy(), weights[:, None] * delta, s2, tied)


def _jitter(state):
    """1e-6 x the mean feature variance implied by the running statistics."""
    second = (
        state.s2[:, 0, :] if state.s2.shape[1] == 1 else np.diagonal(state.s2, 0, 1, 2)
    )
    total = state.nk.sum()
    var = second.sum(axis=0) / total - (state.s1.sum(axis=0) / total) ** 2
    scale = float(np.mean(var))
    return 1e-6 * scale if scale > 0 else 1e-6


def m_step(state, family):
    """Params from the running statistics (the batch M-step, per unit weight)."""
    n_components = state.nk.shape[0]
    ref = np.broadcast_to(state.centre, (n_components, state.centre.shape[0]))
    tied_total = None if state.tied is None else (state.centre, state.tied)
    stats = (state.nk, state.s1, state.s2)
    return params_from_stats(stats, ref, family, tied_total, _jitter(state))
