"""Model selection: fit a grid of K x covariance types in one sweep and pick the best.

:func:`select` fits every candidate ``(n_components, covariance_type)`` and scores it
by BIC, AIC and ICL. Each candidate is the model ``GaussianMixture(n_components=K,
covariance_type=cov, random_state=seed, ...).fit(X)`` would give with the same
settings (the same EM path, tested), but the sweep shares the work that does not
depend on the candidate:

- ``X`` is validated and converted once;
- the total-scatter pass (``fastgmm.engine.data.make_data``) runs once per distinct
  chunk layout, not once per candidate (tied needs its own full scatter);
- the starts do not depend on the covariance type: k-means, or the partitions
  short-EM chooses from (k-means, hc trees, random rows), are made once per
  ``(K, restart)`` and seed every covariance type; one hc tree serves every K when
  the data has at most 2000 rows;
- the separate ``bic``, ``aic`` and ``predict_proba`` passes are replaced by one
  chunked scoring pass per candidate;
- the JIT is warm after the first candidate.

Honest selection (where the defaults differ from the estimator's, see
:func:`select`): EM runs to a tight tolerance (1e-5 per sample), starts are robust
(short-EM), and degenerate fits -- a component collapsed onto a subspace kept finite
only by ``reg_covar``, or repaired -- are flagged and excluded (mclust's NA). Small
data are fitted K by K in parallel threads, with results bitwise those of a serial
sweep. The table is also available in mclust's layout (:meth:`SelectionResult.
mclust_table`).

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

#: select's defaults where they differ from GaussianMixture's (see select)
SELECT_TOL = 1e-5
SELECT_MAX_ITER = 1000
SELECT_INIT = "short-em"

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
    "degenerate",
    "fit_time",
)
DEGENERATE = ("exclude", "keep")
PARALLEL = ("auto", "candidates", "kernels")


@dataclass
class SelectionResult:
    """Outcome of :func:`select`.

    Attributes
    ----------
    table : list of dict
        One row per candidate, in sweep order (K ascending, then covariance types as
        given), with the keys of :data:`COLUMNS`. ``fit_time`` (seconds) includes an
        equal share of the starts the covariance types of one K share.
        ``degenerate`` says why a fit is degenerate ("collapsed": a component's
        variance in some direction is at most 2 x reg_covar; "repaired": its final
        covariances needed fastgmm's repair), or is "". With
        ``degenerate="exclude"`` such rows have NaN (mclust's NA) for BIC, AIC and
        ICL and are never ``best_``.
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
            "degenerate",
            "time s",
        ]
        cells = [head]
        for i, r in enumerate(self.table):
            mark = "*" if i == self.best_index_ else " "
            nums = [
                f"{r[c]:.2f}" if np.isfinite(r[c]) else "NA"
                for c in ("bic", "aic", "icl", "log_likelihood")
            ]
            cells.append(
                [
                    f"{mark}{r['n_components']}",
                    r["covariance_type"],
                    *nums,
                    str(r["n_parameters"]),
                    "yes" if r["converged"] else "NO",
                    str(r["n_iter"]),
                    r["degenerate"] or "-",
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

    def mclust_table(self, criterion="bic"):
        """The criterion in mclust's layout and sign: rows K, columns models (mclust's
        names), ``2 log L - penalty`` (higher is better), NA where excluded or not
        fitted. See :class:`fastgmm.selection.tables.MclustTable`."""
        from .tables import MclustTable

        return MclustTable.from_rows(self.table, criterion)


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
    from ..engine.init import METHODS

    if init_params not in METHODS:
        raise ValueError(f"init_params must be one of {METHODS}, got {init_params!r}")
    return cov_types


def _check_options(degenerate, parallel):
    if degenerate not in DEGENERATE:
        raise ValueError(f"degenerate must be one of {DEGENERATE}, got {degenerate!r}")
    if parallel not in PARALLEL:
        raise ValueError(f"parallel must be one of {PARALLEL}, got {parallel!r}")


def _seeds(random_state, ks):
    """One integer seed per K: the given int, or drawn from the given generator."""
    from sklearn.utils import check_random_state

    if isinstance(random_state, (int, np.integer)) and not isinstance(
        random_state, bool
    ):
        return {k: int(random_state) for k in ks}
    rs = check_random_state(random_state)
    return {k: int(rs.randint(np.iinfo(np.int32).max)) for k in ks}


def _validate(X, sample_weight, settings, cov_types):
    """(X, sample_weight, fitted feature attributes) validated as ``fit`` does."""
    from sklearn.utils.validation import _check_sample_weight, validate_data

    from ..engine.gselect import check_top_components
    from ..mixture import GaussianMixture

    proto = GaussianMixture(**settings)
    proto._validate_params()
    for cov in cov_types:
        check_top_components(settings["top_components"], cov, proto._model_based(), X)
    X = validate_data(
        proto, X, dtype=[np.float64, np.float32], ensure_min_samples=2, order="C"
    )
    if sample_weight is not None:
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        X, sample_weight = _present_rows(X, sample_weight, settings)
    names = {
        k: getattr(proto, k)
        for k in ("n_features_in_", "feature_names_in_")
        if hasattr(proto, k)
    }
    return X, sample_weight, names


def _present_rows(X, sample_weight, settings):
    """(X, weights) without the rows of weight 0, as GaussianMixture.fit drops them
    (a far row of weight 0 changes nothing), a noise mask with them; the weights
    are not rescaled (n in the criteria is their sum)."""
    from ..engine.data import present_rows

    keep = sample_weight > 0
    if keep.all():
        return X, sample_weight
    noise = settings["noise"]
    if np.ndim(noise) == 1 and len(noise) == len(keep):
        settings["noise"] = np.asarray(noise)[keep]
    return present_rows(X, sample_weight, scale=False)


def select(
    X,
    k_range=range(1, 11),
    covariance_types=("full",),
    criterion="bic",
    *,
    n_init=1,
    init_params=SELECT_INIT,
    random_state=None,
    sample_weight=None,
    tol=SELECT_TOL,
    reg_covar=1e-6,
    max_iter=SELECT_MAX_ITER,
    n_jobs=None,
    on_degenerate="recover",
    noise=False,
    noise_volume="hypvol",
    prior=None,
    degenerate="exclude",
    parallel="auto",
    monitor=None,
    top_components=None,
):
    """Fit every (K, covariance type) candidate and choose the best by a criterion.

    Defaults differ from :class:`fastgmm.GaussianMixture`'s (which keeps
    scikit-learn's) where a model choice depends on them: a tighter ``tol``, a
    higher ``max_iter``, the ``"short-em"`` start, and degenerate fits excluded.

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
    n_init, reg_covar, n_jobs, on_degenerate
        As for :class:`fastgmm.GaussianMixture`, applied to every candidate.
    init_params : str, default="short-em"
        Any of GaussianMixture's; the default, short-EM among scikit-learn's k-means
        start, mclust's hc and further starts, reaches better optima than one
        k-means on higher-dimensional data (see ``fastgmm.engine.starts``).
    tol : float, default=1e-5
        EM stops when the mean log-likelihood per sample changes by less. Criteria
        compare total log-likelihoods, and models are told apart by a few units of
        BIC: scikit-learn's 1e-3 per sample leaves up to 0.001 n per iteration on
        the table (on Old Faithful that was 28 BIC units and a different model).
        The estimator keeps scikit-learn's 1e-3.
    max_iter : int, default=1000
        EM iterations per candidate (and restart); the tighter ``tol`` needs more
        than scikit-learn's 100. Unconverged candidates show in the table.
    random_state : int, RandomState instance or None, default=None
        An int seeds every K alike: candidate (K, cov) then equals
        ``GaussianMixture(K, covariance_type=cov, random_state=that int, ...).fit(X)``
        with the same settings. Otherwise one seed per K is drawn; each model's
        ``random_state`` holds it.
    sample_weight : array-like of shape (n_samples,), optional
        The criteria then use the weighted log-likelihood and n = sum of weights.
    noise, noise_volume, prior
        mclust's noise component and conjugate prior, as for
        :class:`fastgmm.GaussianMixture`, for every candidate (the prior's scale
        follows each K, as mclust's ``defaultPrior``).
    degenerate : {"exclude", "keep"}, default="exclude"
        Degenerate fits (see :class:`SelectionResult`) are flagged in the table's
        ``degenerate`` column either way; "exclude" also gives them NaN criteria
        (mclust's NA) and never chooses them, unless every candidate is degenerate
        (then the best of them is chosen with a DegenerateComponentWarning).
    parallel : {"auto", "candidates", "kernels"}, default="auto"
        "candidates": fit the K values concurrently in threads, each on one kernel
        thread; "kernels": one candidate at a time, every kernel on ``n_jobs``
        threads; "auto": candidates for small data (fewer than 10**6 values).
        Results are bitwise the same either way.
    monitor : Monitor, optional
        Progress hooks (see :class:`Monitor`); with parallel candidates the run
        hooks of different K are called from their threads, one at a time, and
        interleave.
    top_components : int or None, default=None
        Top-C component selection (Kaldi's gselect) for every candidate, as for
        :class:`fastgmm.GaussianMixture`: an explicit approximation for diagonal
        models with many components, off by default. Every covariance type must
        then be of the diagonal kind, without noise or prior.

    Returns
    -------
    SelectionResult
        ``.table`` (rows with the keys of :data:`COLUMNS`), ``.models``, ``.best_``,
        ``.mclust_table()``.
    """
    from .grid import k_values
    from .sweep import sweep

    t0 = time.perf_counter()
    settings = {
        "tol": tol, "reg_covar": reg_covar, "max_iter": max_iter, "n_init": n_init,
        "init_params": init_params, "n_jobs": n_jobs, "on_degenerate": on_degenerate,
        "noise": noise, "noise_volume": noise_volume, "prior": prior,
        "top_components": top_components,
    }  # fmt: skip
    cov_types = _check_choices(covariance_types, criterion, init_params)
    _check_options(degenerate, parallel)
    X, sample_weight, names = _validate(X, sample_weight, settings, cov_types)
    ks = k_values(k_range, name="k_range", n_samples=X.shape[0])
    seeds = _seeds(random_state, ks)
    monitor = Monitor() if monitor is None else monitor
    rows, models = sweep(
        X, sample_weight, ks, cov_types, settings, seeds, names, monitor, parallel
    )
    best = _choose(rows, criterion, degenerate)
    result = SelectionResult(rows, models, criterion, best, time.perf_counter() - t0)
    if not result.best_.converged_ and max_iter > 0:
        _warn_unconverged(rows[best])
    return result


def _choose(rows, criterion, degenerate):
    """Row of the lowest criterion among the eligible rows; NaN criteria for the
    excluded degenerate rows (unless every row is degenerate: then a warning)."""
    from ..exceptions import DegenerateComponentWarning

    scores = np.array([row[criterion] for row in rows], dtype=float)
    flagged = np.array([bool(row["degenerate"]) for row in rows])
    finite = np.isfinite(scores)
    eligible = finite & ~flagged if degenerate == "exclude" else finite
    if eligible.any():
        if degenerate == "exclude":
            for row in (r for r, f in zip(rows, flagged) if f):
                row.update(bic=np.nan, aic=np.nan, icl=np.nan)
        return int(np.argmin(np.where(eligible, scores, np.inf)))
    best = int(np.argmin(np.where(finite, scores, np.inf)))
    warnings.warn(
        "Every candidate is degenerate (a component collapsed onto a subspace kept "
        f"finite only by reg_covar, or repaired); chose the best of them, K="
        f"{rows[best]['n_components']}, {rows[best]['covariance_type']!r}. Raise "
        "reg_covar, use fewer components or a constrained covariance model.",
        DegenerateComponentWarning,
        stacklevel=3,
    )
    return best


def _warn_unconverged(row):
    from sklearn.exceptions import ConvergenceWarning

    warnings.warn(
        f"The best candidate (K={row['n_components']}, {row['covariance_type']}) did "
        "not converge. Try different init parameters, or increase max_iter, tol, or "
        "check for degenerate data.",
        ConvergenceWarning,
        stacklevel=3,
    )
