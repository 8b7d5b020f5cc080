"""The one parser of "which numbers of components": ``k_values``.

Used by :func:`fastgmm.select` (``k_range``), :func:`fastgmm.segment`
(``n_components``) and the command line (``-k``, ``--k-range``). Accepts an int, an
iterable of ints, or text such as ``"5"``, ``"2-8"``, ``"2,4,8"`` or ``"1-3,8"``.
Bounds are checked *before* a range is expanded, so ``"1-999999999"`` fails at once
instead of building a list of a billion numbers.
"""

from numbers import Integral

#: the most candidate values one spec may name (a sweep over more is never meant)
MAX_VALUES = 10_000


def _error(name, spec, why):
    return ValueError(f"{name} must {why}, got {spec!r}")


def _parse_text(text, name):
    """Sorted distinct ints of ``"5"``, ``"2-8"``, ``"2,4,8"`` (parts combined)."""
    parts = [p for p in str(text).replace(" ", "").split(",")]
    spans = []
    for part in parts:
        lo, dash, hi = part.partition("-")
        try:
            lo, hi = int(lo), int(hi if dash else lo)
        except ValueError:
            raise _error(
                name, text, "be a number like 5, a range like 2-8 or a list like 2,4,8"
            ) from None
        if hi < lo:
            raise _error(name, text, f"give ranges low-high, but {lo}-{hi} is empty")
        spans.append((lo, hi))
    return spans


def _spans(spec, name):
    """(low, high) spans of an int, an iterable of ints or a text spec."""
    if isinstance(spec, str):
        return _parse_text(spec, name)
    if isinstance(spec, Integral) and not isinstance(spec, bool):
        return [(int(spec), int(spec))]
    if isinstance(spec, range) and spec.step == 1:
        return [(spec.start, spec.stop - 1)] if len(spec) else []
    try:
        values = list(spec)
    except TypeError:
        raise TypeError(
            f"{name} must be an int or an iterable of ints, got {spec!r}"
        ) from None
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, Integral):
            raise TypeError(f"{name} must hold integers, got {v!r}")
        out.append((int(v), int(v)))
    return out


def k_values(spec, *, name="k_range", n_samples=None):
    """Sorted distinct numbers of components named by ``spec``.

    Parameters
    ----------
    spec : int, iterable of int, or str
        ``5``, ``range(1, 11)``, ``[2, 4, 8]``, ``"2-8"``, ``"2,4,8"``, ``"1-3,8"``.
    name : str, default="k_range"
        The parameter's name as the user typed it, used in error messages.
    n_samples : int, optional
        When given, every value must be at most this (scikit-learn's message).

    Returns
    -------
    list of int

    Raises
    ------
    ValueError
        Empty, below 1, above ``n_samples``, a reversed range, more than
        :data:`MAX_VALUES` values, or unparsable text.
    TypeError
        Not an int, an iterable of ints or a str.
    """
    spans = _spans(spec, name)
    if not spans:
        raise _error(name, spec, "name at least one number of components")
    low = min(lo for lo, _ in spans)
    high = max(hi for _, hi in spans)
    if low < 1:
        raise _error(name, spec, "hold integers >= 1")
    if n_samples is not None and high > n_samples:
        raise ValueError(
            "Expected n_samples >= n_components "
            f"but got n_components = {high}, n_samples = {n_samples}"
        )
    if sum(hi - lo + 1 for lo, hi in spans) > MAX_VALUES:
        raise _error(name, spec, f"name at most {MAX_VALUES} values")
    return sorted({k for lo, hi in spans for k in range(lo, hi + 1)})
