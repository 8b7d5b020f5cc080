"""The one fit driver: restarts, best-of, warm start, ``max_iter=0`` and convergence.

:func:`fit` is what :class:`fastgmm.GaussianMixture`, :func:`fastgmm.select` and
:func:`fastgmm.segment` (through the estimator) run. It returns an immutable
:class:`~fastgmm.engine.em.EMResult`; callers decide what to warn about and set
their attributes once from it.

The rules are scikit-learn's ``BaseMixture.fit_predict``:

- ``n_init`` restarts, each from ``starts(init)``; the run with the highest final
  lower bound wins (the first of ties);
- a warm start runs once from the given parameters and lower bound;
- with ``max_iter == 0`` no EM iteration runs: the result is the last start, with
  lower bound -inf.
"""

import math
from dataclasses import dataclass
from functools import partial

from ..model import covariance
from .em import EMResult, run_em
from .report import Monitor


@dataclass(frozen=True)
class Schedule:
    """When EM stops and how often it restarts."""

    tol: float = 1e-3
    max_iter: int = 100
    n_init: int = 1


def _given(params):
    return params


def _one_run(data, family, schedule, start, lower_bound, monitor):
    """One EM run; ``start`` is a callable (the initial M-step can fail too, with
    the same message as in EM)."""
    try:
        params = start()
        if schedule.max_iter == 0:
            return EMResult(params, -math.inf, [], 0, False)
        return run_em(
            data, params, family, schedule.tol, schedule.max_iter, lower_bound,
            monitor.iteration,
        )  # fmt: skip
    except covariance.IllDefinedCovariance as exc:
        if data.dtype == "float32":
            raise covariance.IllDefinedCovariance(
                f"{exc}{covariance.FLOAT32_HINT}"
            ) from None
        raise


def fit(data, family, schedule, starts, n_components, *, warm=None, monitor=None):
    """Best EM result over the restarts.

    Parameters
    ----------
    data : Data
        The training data (:func:`fastgmm.engine.data.make_data`).
    family : object
        What is fitted (see :mod:`fastgmm.engine.em`), e.g. ``MaximumLikelihood``.
    schedule : Schedule
    starts : callable
        ``starts(init)`` -> starting Params of restart ``init`` (0-based). Called
        once per restart, in order, inside that restart (so a failed start fails
        the fit, as in scikit-learn).
    n_components : int
        For the monitor's messages.
    warm : (Params, float), optional
        Warm start: run once from these parameters and this lower bound.
    monitor : Monitor, optional

    Returns
    -------
    EMResult
    """
    monitor = Monitor() if monitor is None else monitor
    name = family.model.name
    best = None
    for init in range(1 if warm is not None else schedule.n_init):
        monitor.run_start(n_components, name, init)
        if warm is not None:
            start, lower_bound = partial(_given, warm[0]), warm[1]
        else:
            start, lower_bound = partial(starts, init), -math.inf
        result = _one_run(data, family, schedule, start, lower_bound, monitor)
        monitor.run_end(n_components, name, init, result)
        if (
            best is None
            or schedule.max_iter == 0
            or result.lower_bound > best.lower_bound
        ):
            best = result
    return best
