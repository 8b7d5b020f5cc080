"""Model selection: fit a grid of K x covariance types in one sweep and pick the best.

:func:`select` fits every candidate ``(n_components, covariance_type)`` and scores it
by BIC, AIC and ICL. Each candidate is the model ``GaussianMixture(n_components=K,
covariance_type=cov, random_state=seed, ...).fit(X)`` would give (the same EM path,
tested), but the sweep shares the work that does not depend on the candidate:

- ``X`` is validated and converted once;
- the total-scatter pass (``fastgmm._em.make_data``) runs once per distinct chunk
  layout, not once per candidate (tied needs its own full scatter);
- the k-means initialisation does not depend on the covariance type, so it runs once
  per ``(K, restart)`` and its labels seed every covariance type;
- the separate ``bic``, ``aic`` and ``predict_proba`` passes are replaced by one
  chunked scoring pass per candidate;
- the JIT is warm after the first candidate.

Every candidate's kernels already use all cores, so candidates run one after the other.
Measured (``benchmarks/selection_sweep.py``; K = 1..8 x the four covariance types, 32
candidates, medians of alternating runs, see ``docs/usage.md``), the sweep costs
1/4.3 of fitting each candidate cold with ``fastgmm.GaussianMixture`` and scoring it
(fit, bic, aic, predict_proba) on 20 000 x 4 points, 1/1.9 on 200 000 x 4 points
(where EM itself dominates), and 1/11 of the same loop with scikit-learn.

Criteria (lower is better, scikit-learn's sign convention)::

    BIC = -2 log L + p log n
    AIC = -2 log L + 2 p
    ICL = BIC + 2 sum_i -log(max_k r_ik)

``log L`` is the (weighted) log-likelihood, ``p`` the number of free parameters, ``n``
the number of points (the total weight with ``sample_weight``) and ``r_ik`` the
responsibilities. ICL follows R's mclust (``icl()``: ``BIC + 2 sum_i sum_k C_ik log
r_ik`` with ``C`` the hard MAP classification, in mclust's higher-is-better sign);
the entropy form of Biernacki, Celeux & Govaert (2000), ``BIC + 2 sum_i sum_k
-r_ik log r_ik``, is never smaller; compute it with :func:`fastgmm.inspection.entropy`.
"""

import time
import warnings
from dataclasses import dataclass

import numpy as np

from ..engine.report import Monitor

__all__ = ["COLUMNS", "CRITERIA", "Monitor", "SelectionResult", "select"]

CRITERIA = ("bic", "aic", "icl")
COLUMNS = (
    "n_components",
    "covariance_type",
    "bic",
    "aic",
    "icl",
    "log_likelihood",
    "n_parameters",
    "converged",
    "n_iter",
    "fit_time",
)


@dataclass
class SelectionResult:
    """Outcome of :func:`select`.

    Attributes
    ----------
    table : list of dict
        One row per candidate, in sweep order (K ascending, then covariance types as
        given), with the keys of :data:`COLUMNS`. ``fit_time`` (seconds) includes an
        equal share of the k-means the covariance types of one K share.
    models : list of GaussianMixture
        The fitted candidate of each row.
    criterion : str
        The criterion used to choose ``best_``.
    best_index_ : int
        Row of the best candidate (lowest criterion; the first of ties).
    total_time : float
        Wall time of the sweep, seconds.
    """

    table: list
    models: list
    criterion: str
    best_index_: int
    total_time: float = 0.0

    @property
    def best_(self):
        """The fitted model with the lowest criterion."""
        return self.models[self.best_index_]

    @property
    def best_params_(self):
        """``{"n_components": K, "covariance_type": cov}`` of the best candidate."""
        row = self.table[self.best_index_]
        return {k: row[k] for k in ("n_components", "covariance_type")}

    def column(self, name):
        """One column of the table as an array (in row order)."""
        return np.array([row[name] for row in self.table])

    def to_pandas(self):
        """The table as a ``pandas.DataFrame`` (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.table, columns=list(COLUMNS))

    def format(self):
        """The table as aligned text; the best row is marked with ``*``."""
        head = [
            "K",
            "covariance",
            "BIC",
            "AIC",
            "ICL",
            "log-lik",
            "params",
            "conv",
            "iter",
            "time s",
        ]
        cells = [head]
        for i, r in enumerate(self.table):
            mark = "*" if i == self.best_index_ else " "
            nums = [f"{r[c]:.2f}" for c in ("bic", "aic", "icl", "log_likelihood")]
            cells.append(
                [
                    f"{mark}{r['n_components']}",
                    r["covariance_type"],
                    *nums,
                    str(r["n_parameters"]),
                    "yes" if r["converged"] else "NO",
                    str(r["n_iter"]),
                    f"{r['fit_time']:.3f}",
                ]
            )
        widths = [max(len(row[j]) for row in cells) for j in range(len(head))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
        best = self.table[self.best_index_]
        lines.append(
            f"best by {self.criterion.upper()}: K={best['n_components']}, "
            f"covariance_type={best['covariance_type']!r} (marked *)"
        )
        return "\n".join(lines)

    def __str__(self):
        return self.format()


def _check_choices(covariance_types, criterion, init_params):
    from ..model import covariance

    if isinstance(covariance_types, str):
        covariance_types = (covariance_types,)
    names = covariance.names()
    bad = [c for c in covariance_types if c not in names]
    if bad or not covariance_types:
        raise ValueError(
            f"covariance_types must be among {names}, got {covariance_types!r}"
        )
    # one candidate per model, in the first spelling given ("full" or "VVV")
    first = {}
    for c in covariance_types:
        first.setdefault(covariance.get(c).name, c)
    cov_types = list(first.values())
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    if init_params not in ("kmeans", "k-means++", "random", "random_from_data"):
        raise ValueError(f"Unknown init_params {init_params!r}.")
    return cov_types


def _seeds(random_state, ks):
    """One integer seed per K: the given int, or drawn from the given generator."""
    from sklearn.utils import check_random_state

    if isinstance(random_state, (int, np.integer)) and not isinstance(
        random_state, bool
    ):
        return {k: int(random_state) for k in ks}
    rs = check_random_state(random_state)
    return {k: int(rs.randint(np.iinfo(np.int32).max)) for k in ks}


def _validate(X, sample_weight, settings):
    """(X, sample_weight, fitted feature attributes) validated as ``fit`` does."""
    from sklearn.utils.validation import _check_sample_weight, validate_data

    from ..mixture import GaussianMixture

    proto = GaussianMixture(**settings)
    proto._validate_params()
    X = validate_data(
        proto, X, dtype=[np.float64, np.float32], ensure_min_samples=2, order="C"
    )
    if sample_weight is not None:
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
    names = {
        k: getattr(proto, k)
        for k in ("n_features_in_", "feature_names_in_")
        if hasattr(proto, k)
    }
    return X, sample_weight, names


def select(
    X,
    k_range=range(1, 11),
    covariance_types=("full",),
    criterion="bic",
    *,
    n_init=1,
    init_params="kmeans",
    random_state=None,
    sample_weight=None,
    tol=1e-3,
    reg_covar=1e-6,
    max_iter=100,
    n_jobs=None,
    on_degenerate="recover",
    noise=False,
    noise_volume="hypvol",
    prior=None,
    monitor=None,
):
    """Fit every (K, covariance type) candidate and choose the best by a criterion.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    k_range : int or iterable of int, default=range(1, 11)
        Numbers of components to try.
    covariance_types : str or sequence of str, default=("full",)
        Any of "full", "tied", "diag", "spherical" and mclust's 14 names (see
        ``fastgmm.model.covariance.names()``).
    criterion : {"bic", "aic", "icl"}, default="bic"
        Chooses ``best_`` (lowest wins; ties go to the first row, i.e. smaller K).
    n_init, init_params, tol, reg_covar, max_iter, n_jobs, on_degenerate
        As for :class:`fastgmm.GaussianMixture`, applied to every candidate.
    random_state : int, RandomState instance or None, default=None
        An int seeds every K alike: candidate (K, cov) then equals
        ``GaussianMixture(K, covariance_type=cov, random_state=that int).fit(X)``.
        Otherwise one seed per K is drawn; each model's ``random_state`` holds it.
    sample_weight : array-like of shape (n_samples,), optional
        The criteria then use the weighted log-likelihood and n = sum of weights.
    noise, noise_volume, prior
        mclust's noise component and conjugate prior, as for
        :class:`fastgmm.GaussianMixture`, for every candidate (the prior's scale
        follows each K, as mclust's ``defaultPrior``).
    monitor : Monitor, optional
        Progress hooks (see :class:`Monitor`).

    Returns
    -------
    SelectionResult
        ``.table`` (rows with the keys of :data:`COLUMNS`), ``.models``, ``.best_``.
    """
    from .grid import k_values
    from .sweep import sweep

    t0 = time.perf_counter()
    settings = {
        "tol": tol, "reg_covar": reg_covar, "max_iter": max_iter, "n_init": n_init,
        "init_params": init_params, "n_jobs": n_jobs, "on_degenerate": on_degenerate,
        "noise": noise, "noise_volume": noise_volume, "prior": prior,
    }  # fmt: skip
    cov_types = _check_choices(covariance_types, criterion, init_params)
    X, sample_weight, names = _validate(X, sample_weight, settings)
    ks = k_values(k_range, name="k_range", n_samples=X.shape[0])
    seeds = _seeds(random_state, ks)
    monitor = Monitor() if monitor is None else monitor
    rows, models = sweep(
        X, sample_weight, ks, cov_types, settings, seeds, names, monitor
    )
    scores = np.array([row[criterion] for row in rows], dtype=float)
    best = int(np.argmin(np.where(np.isfinite(scores), scores, np.inf)))
    result = SelectionResult(rows, models, criterion, best, time.perf_counter() - t0)
    if not result.best_.converged_ and max_iter > 0:
        _warn_unconverged(rows[best])
    return result


def _warn_unconverged(row):
    from sklearn.exceptions import ConvergenceWarning

    warnings.warn(
        f"The best candidate (K={row['n_components']}, {row['covariance_type']}) did "
        "not converge. Try different init parameters, or increase max_iter, tol, or "
        "check for degenerate data.",
        ConvergenceWarning,
        stacklevel=3,
    )
