"""Criteria tables in mclust's layout: rows K, columns models, mclust's sign.

mclust reports ``BIC = 2 log L - p log n`` and ``ICL = BIC - 2 sum_i -log max_k
z_ik`` (higher is better): the negatives of fastgmm's (scikit-learn's) values. Its
``summary(mclustBIC(X))`` prints::

    Bayesian Information Criterion (BIC):
            EII       VII       EEI ...
    1 -1804.081 -1804.081 -1522.137 ...

    Top 3 models based on the BIC criterion:
        EEE,3     VVV,2     EEE,4
    -2314.386 -2322.192 -2325.733

:meth:`MclustTable.format` prints the same, with ``NA`` where a fit was excluded
(degenerate) or not made.
"""

from dataclasses import dataclass

import numpy as np

TITLES = {
    "bic": "Bayesian Information Criterion (BIC):",
    "icl": "Integrated Complete-data Likelihood (ICL) criterion:",
    "aic": "Akaike Information Criterion (AIC):",
}


@dataclass(frozen=True)
class MclustTable:
    """A criterion as mclust shows it.

    Attributes
    ----------
    criterion : {"bic", "icl", "aic"}
    ks : list of int
        Row labels (numbers of components).
    models : list of str
        Column labels: mclust's model names, in the order of the sweep.
    values : ndarray of shape (len(ks), len(models))
        ``-`` fastgmm's criterion (higher is better); NaN is mclust's NA.
    """

    criterion: str
    ks: list
    models: list
    values: np.ndarray

    @classmethod
    def from_rows(cls, rows, criterion="bic"):
        """From :attr:`SelectionResult.table` rows."""
        from ..model import covariance

        if criterion not in TITLES:
            raise ValueError(f"criterion must be one of {tuple(TITLES)}")
        ks = sorted({row["n_components"] for row in rows})
        models = []
        for row in rows:
            name = covariance.get(row["covariance_type"]).mclust
            if name not in models:
                models.append(name)
        values = np.full((len(ks), len(models)), np.nan)
        for row in rows:
            i = ks.index(row["n_components"])
            j = models.index(covariance.get(row["covariance_type"]).mclust)
            values[i, j] = -float(row[criterion])
        return cls(criterion, ks, models, values)

    def top(self, n=3):
        """The ``n`` best (model, K, value), best first (NA never)."""
        cells = [
            (self.models[j], self.ks[i], float(self.values[i, j]))
            for i in range(len(self.ks))
            for j in range(len(self.models))
            if np.isfinite(self.values[i, j])
        ]
        return sorted(cells, key=lambda c: -c[2])[:n]

    def to_pandas(self):
        """The table as a ``pandas.DataFrame`` (index K, columns models)."""
        import pandas as pd

        return pd.DataFrame(self.values, index=self.ks, columns=self.models)

    def format(self, top=3):
        """The table and its top models as R's ``summary`` prints them."""
        cells = [[""] + self.models]
        for k, row in zip(self.ks, self.values):
            cells.append(
                [str(k)] + [f"{v:.3f}" if np.isfinite(v) else "NA" for v in row]
            )
        widths = [max(len(r[j]) for r in cells) for j in range(len(cells[0]))]
        lines = [TITLES[self.criterion]]
        lines += [" ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
        best = self.top(top)
        if best:
            names = [f"{m},{k}" for m, k, _ in best]
            values = [f"{v:.3f}" for _, _, v in best]
            width = max(len(x) for x in names + values)
            lines += [
                "",
                f"Top {len(best)} models based on the {self.criterion.upper()} "
                "criterion:",
                " ".join(x.rjust(width) for x in names),
                " ".join(x.rjust(width) for x in values),
            ]
        return "\n".join(lines)

    def __str__(self):
        return self.format()
