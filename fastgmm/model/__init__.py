"""Per-model mathematics at the NumPy level: parameters, the covariance-model table,
statistics -> parameters (M-steps), kernel inputs, parameter counts and criteria, and
the variational posterior of a Bayesian mixture (``variational``).

No estimator, no I/O, no data passes: the engine calls these on the statistics the
kernels return.
"""
