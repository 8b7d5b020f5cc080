"""Information criteria, lower is better (scikit-learn's sign convention)::

    BIC = -2 log L + p log n
    AIC = -2 log L + 2 p
    ICL = BIC + 2 sum_i -log(max_k r_ik)

``log L`` is the (weighted) log-likelihood, ``p`` the number of free parameters
(:func:`fastgmm.model.covariance.n_parameters`), ``n`` the number of points (the
total weight with sample weights). ICL follows R's mclust (``icl()`` with the hard
MAP classification); ``penalty`` is ``sum_i -log(max_k r_ik)``.
"""

import math


def bic(log_likelihood, n_parameters, n):
    """Bayesian information criterion."""
    return -2.0 * log_likelihood + n_parameters * math.log(n)


def aic(log_likelihood, n_parameters):
    """Akaike information criterion."""
    return -2.0 * log_likelihood + 2.0 * n_parameters


def icl(log_likelihood, n_parameters, n, penalty):
    """Integrated completed likelihood (mclust's form, lower is better)."""
    return bic(log_likelihood, n_parameters, n) + 2.0 * penalty
