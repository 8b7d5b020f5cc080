"""Warnings and errors of fastgmm beyond scikit-learn's."""


class DegenerateComponentWarning(UserWarning):
    """A component collapsed (singular or empty covariance) and was repaired.

    fastgmm adds a small multiple of the data's variance to the diagonal of the
    affected covariances (10x more per try until they are positive definite) and
    continues; the lower bound stays finite. Pass ``on_degenerate="raise"`` to get
    scikit-learn's ValueError instead.
    """
