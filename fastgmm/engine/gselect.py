"""EM with top-C component selection (Kaldi's gselect), an explicit approximation
for diagonal models with many components (``GaussianMixture(top_components=C)``).

A :class:`Selection` runs the iterations of one EM run (:func:`fastgmm.engine.em.run_em`
asks it for each step). An iteration is either

- a *selection pass*: the exact pass (every component), which also records each
  row's C best components (an (n, C) int32 array, the only memory that grows with
  the number of rows); its bound is the exact mean log-likelihood; or
- a *restricted pass*: each row's E-step over its C recorded components only
  (:mod:`fastgmm.kernels.gselect`); its bound is a lower bound of the exact one.

The first iteration is a selection pass, then every ``REFRESH``-th, and the last
one allowed by ``max_iter``. ``tol`` compares bounds of the same kind (a restricted
bound is below the exact one, so a change across kinds is not EM's progress): a
restricted iteration with the one before it, a selection pass after restricted
ones with the previous selection pass. When either meets ``tol`` (the restricted
iterations have reached their fixed point, or a cycle of them), every later
iteration is a selection pass (:meth:`Selection.finish`): exact EM, which converges
as usual, when a selection pass after another meets ``tol``. So ``lower_bound_``,
``converged_`` and the fitted parameters are those of exact EM at convergence, and
a C too small for the data costs exact iterations, not a wrong convergence.
"""

import math

import numpy as np

from .._jit import kernel_array
from .._pacing import pacing
from ..kernels import DIAG
from ..kernels.diaggemm import TRUNCATE_LOG
from ..kernels.gselect import restricted_pass, select_pass
from ..model import covariance
from .sources import is_source

#: a selection pass every REFRESH iterations. benchmarks/gselect.py (200k x 40,
#: K=256, C=10, float32, near an optimum): 162 / 85 / 57 / 41 ms per iteration
#: refreshing every 2 / 5 / 10 / no iterations, all within 1e-8 of the exact fit's
#: mean log-likelihood; from a poor start (random rows, tol=1e-4) C=10 fits took
#: 21 / 26 / 47 iterations, 1.8 / 1.7 / 3.9 s refreshing every 5 / 10 / never
#: (a stale selection leaves a long exact finish)
REFRESH = 5


def check_top_components(top, covariance_type, model_based, X):
    """ValueError where ``top_components`` does not apply (``top`` not None with a
    covariance model not of the diagonal kind, noise or prior (``model_based``),
    or streamed data ``X``)."""
    if top is None:
        return
    if covariance.get(covariance_type).kind != DIAG:
        raise ValueError(
            "top_components needs a diagonal covariance model (diag, spherical or "
            f"mclust's diagonal ones), got covariance_type={covariance_type!r}."
        )
    if model_based:
        raise ValueError("top_components supports neither noise nor prior.")
    if is_source(X):
        raise ValueError(
            "top_components supports in-memory training data only (not streamed, "
            "memory-mapped or Dask data)."
        )


class Selection:
    """The selection state and schedule of one EM run with top-C selection.

    Parameters
    ----------
    data : Data
        In-memory training data (streamed data are refused).
    n_components : int
    top : int
        C, the components kept per row (at most ``n_components``).
    """

    def __init__(self, data, n_components, top):
        if data.source is not None:
            raise ValueError(
                "top_components supports in-memory training data only (not "
                "streamed, memory-mapped or Dask data)."
            )
        shape = (data.n_rows, min(int(top), n_components))
        self.sel = np.full(shape, -1, np.int32)  # no selection yet
        self.final = False  # every iteration from now on is a selection pass
        self.age = 0  # iterations since the last selection pass
        self.kinds = (True, True)  # (previous, last) iteration exact
        self.exact_change = math.inf  # between the last two selection passes
        self.exact_bound = -math.inf

    @classmethod
    def of(cls, data, family, n_components):
        """The Selection of ``family`` (its ``top_components``), or None."""
        top = getattr(family, "top_components", None)
        if top is None:
            return None
        if family.model.kind != DIAG:
            raise ValueError(
                "top_components needs a diagonal covariance model (diag, spherical "
                f"or mclust's diagonal ones), got {family.model.name!r}."
            )
        return cls(data, n_components, top)

    def finish(self):
        """Make every later iteration a selection pass."""
        self.final = True

    def done(self, change, tol):
        """Whether EM has converged after the last :meth:`step` (``change``: its
        bound minus the previous iteration's); switches to exact iterations when the
        restricted ones have converged (module docstring)."""
        previous, last = self.kinds
        if previous and last:
            return abs(change) < tol
        if last:  # a selection pass after restricted iterations
            met = abs(self.exact_change) < tol
        else:  # restricted: only after another (not after an exact bound)
            met = not previous and abs(change) < tol
        if met:
            self.finish()
        return False

    def step(self, data, params, family, last=False):
        """One EM iteration: (bound of ``params``, next params); ``last``: the last
        iteration allowed (then a selection pass)."""
        params.check(data.n_features)  # the kernels do not check bounds
        inputs = family.inputs(params)
        ref = kernel_array(params.means)
        X, sw = data.X, data.sample_weight
        exact = self.final or last or self.age == 0 or self.age >= REFRESH
        # each kind of pass has its own pacer (its iterations take comparable times)
        with pacing("em" if exact else "gselect").iteration():
            if exact:
                args = (*inputs.astuple(), ref, data.chunk, self.sel)
                ll, nk, s1, s2 = select_pass(X, sw, *args)
            else:
                n_components = inputs.const.shape[0]
                loc_x = kernel_array(inputs.loc, X.dtype)
                prec_x = kernel_array(inputs.prec[:, 0, :], X.dtype)
                cut = TRUNCATE_LOG + math.log(n_components)
                cut = cut if X.dtype == np.float32 else math.inf
                args = (self.sel, inputs.const, loc_x, prec_x, ref, cut, data.chunk)
                ll, nk, s1, s2 = restricted_pass(X, sw, *args)
            stats = (nk, s1, s2)
            bound = family.bound(ll, stats, params, data)
            params = family.update(stats, ref, data, previous=params)
        self.age = 1 if exact else self.age + 1
        self.kinds = (self.kinds[1], exact)
        if exact:
            self.exact_change = bound - self.exact_bound
            self.exact_bound = bound
        return bound, params
