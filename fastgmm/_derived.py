"""What scoring derives from a fitted model's attributes, kept between calls.

Every method of a fitted mixture (``predict``, ``score_samples``, ``bic``, ...)
needs the fitted parameters as checked :class:`~fastgmm.model.params.Params`, with
their kernel inputs (log-determinants, factors of the densities). Deriving them
costs about as much as a small model's whole pass, so a fitted estimator keeps them
(:class:`Derived`) and :func:`derived_params` hands them out again while the
attributes they came from are unchanged: the same objects, with the same contents.
A user may assign ``means_`` or change it in place; the next call then derives them
again, and checks them again.
"""

import numpy as np

#: fitted models with more parameter values than this keep nothing between calls
#: (checking that their arrays are unchanged costs about what deriving from them does)
KEEP_MAX_VALUES = 100_000

_SCALARS = (type(None), int, float, str, np.integer, np.floating)


class Derived:
    """The Params derived from a fitted model's attributes, with what they were
    derived from (see the module docstring).

    Made empty by each fit (the estimators' ``_set_fitted``) and by loading a model
    file, and shared by the snapshots of the estimator. Not pickled or copied: a
    copy starts empty.
    """

    __slots__ = ("entry",)

    def __init__(self):
        self.entry = None  # (scalars, attributes, their contents, Params)

    def __reduce__(self):
        return (Derived, ())


def _contents(values):
    """A comparable copy of each fitted attribute in ``values``: (dtype, shape,
    bytes) of an ndarray, a tuple of those for a tuple of ndarrays (a Dirichlet
    process' ``weight_concentration_``), a float or None as itself. None when one
    is anything else, or they are too large to compare cheaply."""
    size = 0
    for v in values:
        t = type(v)
        if t is np.ndarray:
            size += v.size
        elif t is tuple:
            for a in v:
                if type(a) is not np.ndarray:
                    return None
                size += a.size
        elif v is not None and t is not float:
            return None
    if size > KEEP_MAX_VALUES:
        return None
    return [_content(v) for v in values]


def _content(v):
    t = type(v)
    if t is np.ndarray:
        return (v.dtype, v.shape, v.tobytes())
    if t is tuple:
        return tuple([(a.dtype, a.shape, a.tobytes()) for a in v])
    return v


def derived_params(estimator, make, arrays, scalars):
    """``make()`` (the fitted Params of ``estimator``), or what it returned last time
    when the attributes named by ``arrays`` (ndarrays, tuples of them, floats or
    None) and ``scalars`` are unchanged (see :class:`Derived`)."""
    attrs = estimator.__dict__
    derived = attrs.get("_derived")
    if derived is None:
        return make()
    values = tuple([attrs.get(name) for name in scalars])
    for v in values:
        if not isinstance(v, _SCALARS):
            return make()
    current = [attrs.get(name) for name in arrays]
    entry = derived.entry
    if entry is not None and entry[0] == values:
        same = True
        for a, b in zip(current, entry[1]):
            same = same and a is b
        if same and _contents(current) == entry[2]:
            return entry[3]
    contents = _contents(current)
    params = make()
    if contents is not None:
        derived.entry = (values, current, contents, params)
    return params
