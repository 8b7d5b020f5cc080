"""Model-based clustering as R's mclust does it: ``fastgmm.mclust(X)``.

:func:`mclust` fits every (number of components G, covariance model) candidate with
:func:`fastgmm.select` and returns :class:`MclustResult`: the BIC table in mclust's
layout (rows G, columns models, mclust's sign: higher is better, NaN where a
candidate was not fitted), the best model and its classification, uncertainty and
noise flags. The R calls it mirrors::

    R (mclust 6)                                   fastgmm
    mod <- Mclust(X)                               res = fastgmm.mclust(X)
    mclustBIC(X)                                   res.bic  (res.format_table())
    summary(mod)                                   print(res.summary())
    mod$classification, mod$uncertainty           res.classification, res.uncertainty
    Mclust(X, G = 1:5, modelNames = c("VVV"))      fastgmm.mclust(X, range(1, 6), ["VVV"])
    Mclust(X, prior = priorControl())              fastgmm.mclust(X, prior=True)
    Mclust(X, initialization = list(noise = m))    fastgmm.mclust(X, noise=m)

Labels are 0-based (mclust's are 1-based) and noise points are labelled -1 (mclust:
0). See ``docs/model-based-clustering.md``.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np

#: mclust's models in mclust's order (``mclust.options("emModelNames")``)
MODEL_NAMES = (
    "EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE",
    "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV",
)  # fmt: skip
#: the models mclust keeps when there are no more points than features
DIAGONAL_MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI")


@dataclass
class MclustResult:
    """Outcome of :func:`mclust`.

    Attributes
    ----------
    G : list of int
        The numbers of components tried (rows of the tables; 0 = noise only).
    models : list of str
        mclust's names of the covariance models tried (columns).
    bic : ndarray of shape (len(G), len(models))
        mclust's BIC, ``2 log L - p log n`` (higher is better; NaN: not fitted).
    icl : ndarray of shape (len(G), len(models))
        mclust's ICL in the same layout and sign.
    best_G, best_model : int, str
        The candidate with the highest BIC.
    model_ : GaussianMixture or None
        The best fitted model (None when the best is the noise-only model).
    classification : ndarray of shape (n_samples,)
        0-based component of each point, -1 for noise.
    uncertainty : ndarray of shape (n_samples,)
        ``1 - max_k z_ik`` (mclust's ``uncertainty``).
    z : ndarray of shape (n_samples, G [+ 1])
        The responsibilities (a last column for the noise).
    noise : ndarray of shape (n_samples,), bool
        Points classified as noise.
    loglik, n_parameters : float, int
        Of the best model.
    selection : SelectionResult
        The underlying :func:`fastgmm.select` result (every fitted candidate).
    """

    G: list
    models: list
    bic: np.ndarray
    icl: np.ndarray
    best_G: int
    best_model: str
    model_: object
    classification: np.ndarray
    uncertainty: np.ndarray
    z: np.ndarray
    noise: np.ndarray
    loglik: float
    n_parameters: int
    n_samples: int
    selection: object = field(default=None, repr=False)

    def format_table(self, which="bic"):
        """The BIC (or ICL) table as text, in mclust's layout."""
        table = self.bic if which == "bic" else self.icl
        head = ["G", *self.models]
        rows = [[str(g), *(_num(v) for v in row)] for g, row in zip(self.G, table)]
        widths = [max(len(r[j]) for r in [head, *rows]) for j in range(len(head))]
        lines = [
            "  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [head, *rows]
        ]
        return "\n".join(
            [f"{which.upper()} (mclust's sign: higher is better):", *lines]
        )

    def top(self, n=3):
        """The ``n`` best (model, G, BIC) by BIC, best first (summary(mclustBIC))."""
        flat = [
            (self.models[j], self.G[i], float(self.bic[i, j]))
            for i in range(len(self.G))
            for j in range(len(self.models))
            if np.isfinite(self.bic[i, j])
        ]
        return sorted(flat, key=lambda t: -t[2])[:n]

    def summary(self):
        """A text summary in the manner of mclust's ``summary(Mclust(...))``."""
        from .model import covariance

        desc = "noise only"
        if self.best_G > 0:
            desc = covariance.get(self.best_model).description
        noise = (
            " and a noise component" if self.noise.any() or self._has_noise() else ""
        )
        sizes = np.bincount(self.classification + 1, minlength=self.best_G + 1)
        lines = [
            "Gaussian finite mixture model fitted by EM algorithm (fastgmm)",
            f"Mclust {self.best_model} ({desc}) model with {self.best_G} "
            f"components{noise}:",
            "",
            f"  log-likelihood {self.loglik:.3f}   n {self.n_samples}   "
            f"df {self.n_parameters}   BIC {self._best_bic():.3f}   "
            f"ICL {self._best('icl'):.3f}",
            "",
            "Clustering table (0-based; -1 = noise):",
            "  " + "  ".join(f"{k - 1}: {c}" for k, c in enumerate(sizes) if c or k),
            "",
            "Top 3 models based on the BIC criterion:",
            *(f"  {m},{g}  {b:.3f}" for m, g, b in self.top(3)),
        ]
        return "\n".join(lines)

    def _has_noise(self):
        return self.z.shape[1] > self.best_G

    def _best(self, which):
        table = self.bic if which == "bic" else self.icl
        return float(
            table[self.G.index(self.best_G), self.models.index(self.best_model)]
        )

    def _best_bic(self):
        return self._best("bic")

    def to_pandas(self, which="bic"):
        """The table as a ``pandas.DataFrame`` (rows G, columns models)."""
        import pandas as pd

        table = self.bic if which == "bic" else self.icl
        return pd.DataFrame(
            table, index=pd.Index(self.G, name="G"), columns=self.models
        )

    def __str__(self):
        return self.format_table() + "\n\n" + self.summary()


def _num(v):
    return "NA" if not np.isfinite(v) else f"{v:.3f}"


def _check_models(models, n_samples, n_features):
    from .model import covariance

    if models is None:
        models = MODEL_NAMES if n_samples > n_features else DIAGONAL_MODELS
    if isinstance(models, str):
        models = (models,)
    names = [covariance.get(m).mclust for m in models]  # ValueError for unknown
    return list(dict.fromkeys(names))


def _check_G(G, noise_on, n_samples):
    """Sorted distinct G values; 0 (the noise-only model) only with noise."""
    from .selection.grid import k_values

    zero = False
    if isinstance(G, (int, np.integer)) and not isinstance(G, bool) and G == 0:
        zero, G = True, []
    elif not isinstance(G, (str, int, np.integer)):
        G = list(G)
        zero, G = 0 in G, [g for g in G if isinstance(g, bool) or g != 0]
    if zero and not noise_on:
        raise ValueError("G = 0 (the noise-only model) needs noise.")
    rest = k_values(G, name="G", n_samples=n_samples) if G != [] or not zero else []
    return ([0] if zero else []) + rest


def mclust(
    X,
    G=range(1, 10),
    models=None,
    *,
    noise=False,
    noise_volume="hypvol",
    prior=None,
    random_state=None,
    sample_weight=None,
    **options,
):
    """mclust's ``Mclust``: choose the number of components and covariance model by
    BIC, and classify the points.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    G : int or iterable of int, default=range(1, 10)
        Numbers of components (mclust's ``G = 1:9``); 0 (with ``noise``) adds
        mclust's noise-only model.
    models : sequence of str, optional
        mclust's names (or scikit-learn's for the four it has). Default: all 14
        (mclust's ``emModelNames``), or the six diagonal ones when n_samples <=
        n_features, as mclust.
    noise, noise_volume, prior
        mclust's noise component (``initialization = list(noise = ...)``, ``Vinv``)
        and conjugate prior (``priorControl()``), as for
        :class:`fastgmm.GaussianMixture`.
    random_state : int, RandomState instance or None
    sample_weight : array-like of shape (n_samples,), optional
    **options
        Passed to :func:`fastgmm.select` (``n_init``, ``init_params``, ``tol``,
        ``max_iter``, ``reg_covar``, ``n_jobs``, ...); its defaults apply otherwise.

    Returns
    -------
    MclustResult
    """
    from .exceptions import DegenerateComponentWarning
    from .modelbased import noise_is_on
    from .selection import select

    Xa = np.asarray(X) if not hasattr(X, "iloc") else X
    n, d = np.shape(Xa)[0], (np.shape(Xa)[1] if np.ndim(Xa) == 2 else 1)
    names = _check_models(models, n, d)
    values = _check_G(G, noise_is_on(noise), n)
    fitted = [g for g in values if g > 0]
    shared = dict(noise=noise, noise_volume=noise_volume, prior=prior)
    sel = None
    exclude = options.get("degenerate", "exclude") == "exclude"
    if fitted:
        with warnings.catch_warnings():
            if 0 in values and exclude:  # the noise-only model is never degenerate
                warnings.simplefilter("ignore", DegenerateComponentWarning)
            sel = select(
                X, fitted, names, "bic", random_state=random_state,
                sample_weight=sample_weight, **shared, **options,
            )  # fmt: skip
    bic, icl = _tables(sel, values, names, exclude and 0 in values)
    noise_only = None
    if 0 in values:
        noise_only = _noise_only(X, sample_weight, noise_volume)
        bic[0] = icl[0] = 2.0 * noise_only - np.log(_total_weight(X, sample_weight))
    return _result(X, values, names, bic, icl, sel, noise_only)


def _tables(sel, values, names, drop_degenerate=False):
    """(BIC, ICL) in mclust's layout and sign from select's rows (NaN elsewhere;
    NaN for degenerate rows too with ``drop_degenerate``: select keeps them when
    every candidate it fitted is degenerate, but the noise-only model is not)."""
    bic = np.full((len(values), len(names)), np.nan)
    icl = np.full_like(bic, np.nan)
    for row in [] if sel is None else sel.table:
        if drop_degenerate and row["degenerate"]:
            continue
        i = values.index(row["n_components"])
        j = names.index(_mclust_name(row["covariance_type"]))
        bic[i, j], icl[i, j] = -row["bic"], -row["icl"]
    return bic, icl


def _total_weight(X, sample_weight):
    if sample_weight is None:
        return float(np.shape(X)[0])
    return float(np.sum(np.asarray(sample_weight, dtype=np.float64)))


def _mclust_name(name):
    from .model import covariance

    return covariance.get(name).mclust


def _noise_only(X, sample_weight, noise_volume):
    """The log-likelihood of mclust's G = 0 model: every point noise,
    log L = sum_i w_i log(1 / V); it has one parameter (the volume), so
    BIC = 2 log L - log n (ICL the same)."""
    from sklearn.utils import check_array

    from .model.noise import region

    X = check_array(X, dtype=[np.float64, np.float32])
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
    if isinstance(noise_volume, str):
        log_volume = region(X[w > 0], noise_volume).log_volume
    else:
        log_volume = float(np.log(noise_volume))
    return -log_volume * float(w.sum())


def _result(X, values, names, bic, icl, sel, noise_only):
    """The MclustResult of the best candidate (highest BIC, first of ties);
    ``noise_only``: the log-likelihood of the G = 0 model (None if not tried)."""
    from sklearn.utils import check_array

    masked = np.where(np.isfinite(bic), bic, -np.inf)
    if not np.isfinite(masked).any():
        raise ValueError("No candidate could be fitted (every BIC is NA).")
    i, j = np.unravel_index(int(np.argmax(masked)), bic.shape)
    best_G, best_model = values[i], names[j]
    Xc = check_array(X, dtype=[np.float64, np.float32])
    n = Xc.shape[0]
    if best_G == 0:
        z = np.ones((n, 1))
        labels = np.full(n, -1)
        model, loglik, p = None, noise_only, 1
    else:
        row = next(
            r for r in sel.table
            if r["n_components"] == best_G and _mclust_name(r["covariance_type"]) == best_model
        )  # fmt: skip
        model = sel.models[sel.table.index(row)]
        z = model.predict_proba(X).astype(np.float64)
        labels = model.predict(X)
        loglik, p = row["log_likelihood"], row["n_parameters"]
    return MclustResult(
        list(values), list(names), bic, icl, best_G, best_model, model, labels,
        1.0 - z.max(axis=1), z, labels == -1, float(loglik), int(p), n, sel,
    )  # fmt: skip
