"""The EM engine: data and data sources, the one fit driver, initialisation, online
EM, the variational family, the one chunked scorer and progress reporting.

Knows nothing of estimators: :mod:`fastgmm.mixture` and :mod:`fastgmm.bayesian` call
it.
"""
