"""Training data as the engine sees it: validated rows (or a block source), their
weights, and what is computed from them once per fit.

:func:`make_data` wraps in-memory arrays or a block source (see
:mod:`fastgmm.engine.sources`) and runs the data pass that fits need first: the total
weight, the feature variances (to scale repairs of degenerate components, and
k-means' tolerance) and, for a dense shared covariance (tied / EEE), the total
scatter its M-step uses. In-memory data of unit weights needs it only for the
variances, and makes it when they are first asked for (:class:`LazyVariances`): a
fit from a given start that repairs nothing reads the data in its EM passes only.
Every later pass goes through :meth:`Data.map_sum`, the seam behind which the
execution engines (in memory, blocks from disk, Dask) live.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .._jit import chunk_rows, kernel_array, kernel_input
from .._runtime import blas_idle, pass_work
from ..kernels import DIAG, FULL, TIED
from ..kernels.kmeans import label_stats
from ..model import covariance
from .dask import DaskSource
from .sources import DEFAULT_BLOCK_ROWS, block_source, is_dask_array


@dataclass(frozen=True)
class Data:
    """Validated training data and what is precomputed from it once per fit.

    In memory, X (n, d) is float32/float64 C-contiguous and ``sample_weight`` (n,)
    float64 or (0,) for unit weights. For streamed or distributed data X is None and
    ``source`` delivers the blocks (see :mod:`fastgmm.engine.sources`).
    """

    X: object
    sample_weight: np.ndarray
    total_weight: float
    chunk: int
    variances: object  # (d,) weighted variance of each feature, or a LazyVariances
    tied_total: object = None  # (centre, scatter) for dense shared covariances
    source: object = None
    value_range: object = None  # (min, max) of in-memory float64 X (check_spread)

    def map_sum(self, fn, *args):
        """sum over blocks of fn(X_block, sw_block, *args): tuples added element-wise,
        in block order (so results do not depend on scheduling)."""
        if self.source is None:
            return fn(self.X, self.sample_weight, *args)
        return self.source.map_sum(fn, *args)

    @property
    def n_rows(self):
        """Number of rows (of positive weight, for in-memory data)."""
        return self.X.shape[0] if self.source is None else self.source.n_rows

    @property
    def n_features(self):
        if isinstance(self.variances, LazyVariances):
            return self.X.shape[1]
        return self.variances.shape[0]

    @property
    def feature_var(self):
        """(d,) weighted variance of each feature (of lazy variances: one pass over
        the data on first use)."""
        var = self.variances
        return var if isinstance(var, np.ndarray) else var.get(self)

    @property
    def dtype(self):
        """dtype of the data (float32 or float64)."""
        return self.X.dtype if self.source is None else np.dtype(self.source.dtype)

    @cached_property
    def jitter(self):
        """First diagonal increment used to repair a degenerate covariance (read
        by every M-step: computed once)."""
        scale = float(np.mean(self.feature_var))
        return 1e-6 * scale if scale > 0 and np.isfinite(scale) else 1e-6


class LazyVariances:
    """The feature variances of in-memory data of unit weights, computed by one
    pass over the data when first asked for (a repair's jitter, k-means'
    tolerance): a fit from a given start that repairs nothing makes no pass beyond
    its EM iterations. Shared by the copies of a Data (``dataclasses.replace``);
    the same values as the eager pass of :func:`make_data`."""

    def __init__(self):
        self.value = None

    def get(self, data):
        if self.value is None:
            total, _, scatter = _total_scatter(data, data.X[0], DIAG)
            self.value = scatter / total
        return self.value


def make_data(
    X, sample_weight, n_components, model, source=None, variances=True, anchors=None
):
    """Wrap validated X and weights (or a block ``source`` with X=None) and
    precompute, for dense shared models, the total scatter; the feature variances
    come from the same pass, or for in-memory data of unit weights from a pass on
    first use (:class:`LazyVariances`).

    ``variances=False`` skips that data pass unless the model needs it (feature_var
    is then zero): for callers that never repair a covariance from it. ``anchors``
    (m, d): points the statistics are also taken about (an online step's current
    means), included in the spread check (:func:`check_spread`).
    """
    shared_dense = covariance.get(model).kind == TIED
    d = source.n_features if source is not None else X.shape[1]
    span = check_spread(X, sample_weight, anchors) if source is None else None
    X = kernel_input(X)
    chunk = chunk_rows(d, n_components)
    sw = kernel_array(np.empty(0) if sample_weight is None else sample_weight)
    data = Data(X, sw, 0.0, chunk, np.zeros(d), None, source)
    if not shared_dense and source is None and (not variances or not sw.shape[0]):
        total = float(sw.sum()) if sw.shape[0] else float(X.shape[0])
        if not total > 0:
            raise ValueError("The total sample weight must be positive.")
        var = LazyVariances() if variances else np.zeros(d)
        return Data(X, sw, total, chunk, var, None, source, span)
    kind = FULL if shared_dense else DIAG
    ref = source.first_row() if source is not None else np.asarray(X[0], np.float64)
    total, centre, scatter = _total_scatter(data, ref, kind)
    if not np.isfinite(scatter).all():  # a source's rows, read for the first time
        raise ValueError(_SPREAD_MESSAGE.format(what="the data's"))
    feature_var = (np.diag(scatter) if kind == FULL else scatter) / total
    tied = (centre, scatter) if shared_dense else None
    return Data(X, sw, total, chunk, feature_var, tied, source, span)


#: float64 statistics (sums of squared deviations over rows and features) must stay
#: below this: the largest float64 with a margin for the passes' other sums
SPREAD_LIMIT = np.finfo(np.float64).max / 16
_SPREAD_MESSAGE = (
    "X's values are too spread out for float64: {what} squared deviations summed "
    "over the rows overflow (scikit-learn fails on such data too). Scale the data "
    "first, e.g. with sklearn.preprocessing.MaxAbsScaler (StandardScaler overflows "
    "too) or the command line's --scale."
)


def check_spread(X, sample_weight=None, anchors=None, value_range=None):
    """ValueError when the squared deviations of in-memory float64 rows ``X``,
    summed over rows and features, would overflow float64 (spreads beyond about
    1e150): EM's statistics would be inf and its fit garbage. One pass for the
    range of all values; only data that fails it pays a pass per feature (over the
    rows of positive weight), to decide and name the feature. float32 data cannot
    overflow float64 sums.

    ``anchors`` (m, d): the means EM starts from (a warm start's, ``means_init``, a
    fitted model's for ``partial_fit``). Statistics are taken about them, but a
    component far from a point gets no responsibility for it unless every one is
    far: the data must be within range of the nearest anchor (one of them).

    Returns (min, max) of X (None for float32 or empty X); ``value_range``: what an
    earlier call returned for this X (then X is not read again unless the check
    fails)."""
    if X.dtype != np.float64 or X.size == 0:
        return None
    n, d = X.shape
    anchors = X[:0] if anchors is None else np.asarray(anchors, dtype=np.float64)
    if value_range is None:
        value_range = float(X.min()), float(X.max())
    low, high = value_range
    if anchors.shape[0]:
        high, low = max(high, float(anchors.max())), min(low, float(anchors.min()))
    spread = high - low  # (Python floats: inf on overflow, no warning, no errstate)
    if n * d * spread * spread < SPREAD_LIMIT:
        return value_range
    with np.errstate(over="ignore", invalid="ignore"):
        if sample_weight is not None:
            X = X[np.asarray(sample_weight) > 0]
        if X.shape[0] == 0:
            return value_range  # (refused as a total weight of zero)
        high, low = X.max(axis=0), X.min(axis=0)
        ranges = high - low
        if anchors.shape[0]:  # the ranges about the nearest anchor
            about = np.maximum(high, anchors) - np.minimum(low, anchors)  # (m, d)
            ranges = about[np.argmin(np.sum(about * about, axis=1))]
        if X.shape[0] * float(np.sum(ranges * ranges)) < SPREAD_LIMIT:
            return value_range
    j = int(np.argmax(ranges))
    model = " (with the nearest mean EM starts from)" if anchors.shape[0] else ""
    raise ValueError(
        _SPREAD_MESSAGE.format(
            what=f"feature {j} spans {ranges[j]:.3g}{model}, and its"
        )
    )


def block_scatter(X, sw, kind, ref, chunk):
    """(total weight, s1, s2) of a block about ``ref`` (1, d): one label_stats pass."""
    nk, s1, s2 = label_stats(X, sw, np.empty(0, np.int8), 1, kind, ref, chunk)
    return nk[0], s1[0], s2[0]


def _total_scatter(data, ref, kind):
    """(total weight, centre, scatter about it) with the weighted mean as centre:
    the full (d, d) scatter for FULL, its diagonal for DIAG."""
    ref = kernel_array(np.reshape(ref, (1, -1)))
    total, s1, s2 = data.map_sum(block_scatter, kind, ref, data.chunk)
    if not total > 0:
        raise ValueError("The total sample weight must be positive.")
    delta = s1 / total
    if kind == DIAG:
        return total, ref[0] + delta, s2[0] - s1 * delta
    s2 = np.tril(s2) + np.tril(s2, -1).T
    return total, ref[0] + delta, s2 - np.outer(s1, delta)


def present_rows(X, sample_weight, scale=True):
    """(X, weights) without the rows of zero weight, the weights scaled by a power of
    two so that the largest is in [1, 2) (``scale=False``: not scaled, for models
    whose weights are counts, such as a Bayesian mixture's prior strength).

    A zero weight is an absent row: it is dropped, whatever its values (a row at
    1e160 of weight 0 cannot overflow anything). Scaling by a power of two is exact,
    so the fit does not depend on the scale of the weights (c * w gives the fit of w
    up to the rounding of c * w) and no sum overflows or loses precision to
    scikit-learn's absolute 10 * eps added to the component weights. Unit weights
    are left as they are.
    """
    keep = sample_weight > 0
    if not keep.all():
        X, sample_weight = X[keep], sample_weight[keep]
    if sample_weight.shape[0] == 0:
        raise ValueError("The total sample weight must be positive.")
    _, exponent = np.frexp(sample_weight.max())
    if scale and exponent != 1:
        sample_weight = np.ldexp(sample_weight, 1 - exponent)
    return X, sample_weight


def fit_work(X, n_components, model):
    """Estimated work of one EM pass over ``X`` (see :func:`fastgmm._runtime.pass_work`)
    from its shape, for the serial cut-off of ``threads(work=...)``; None when the
    shape is not known before reading the data (callables, generators)."""
    try:
        shape = X.shape if hasattr(X, "shape") else (len(X), len(X[0]))
        n_rows, n_features = (int(v) for v in shape)
    except (TypeError, ValueError, IndexError, KeyError):  # not 2-D, unknown sizes
        return None
    dense = covariance.get(model).form == "dense"
    return pass_work(n_rows, n_features, int(n_components), dense)


def pins_blas(X, work):
    """Whether a fit of ``X`` of this ``work`` (:func:`fit_work`) pins BLAS to one
    thread: not when it is small and narrow (:func:`fastgmm._runtime.blas_idle`),
    or when the width of X is not known yet."""
    d = X.shape[1] if getattr(X, "ndim", 0) == 2 else None
    return d is None or not blas_idle(work, d)


def check_n_samples(n_samples, n_components):
    """scikit-learn's error when there are fewer samples than components."""
    if n_samples < n_components:
        raise ValueError(
            "Expected n_samples >= n_components "
            f"but got n_components = {n_components}, n_samples = {n_samples}"
        )


def streamed_data(X, sample_weight, n_components, model, random_state, init_rows):
    """(data for EM, data for the initialisation) of a block source.

    EM streams every block; the initialisation runs on a seeded sample of about
    ``init_rows`` rows gathered in memory (``init_rows=0``: nothing to initialise,
    no sample pass).
    """
    source = as_source(X, sample_weight)
    data = make_data(None, None, n_components, model, source=source)
    check_n_samples(source.n_rows, n_components)
    if not init_rows:
        return data, data
    sample, weights = source.sample(init_rows, random_state)
    check_n_samples(sample.shape[0], n_components)
    return data, make_data(sample, weights, n_components, model)


def as_source(X, sample_weight=None, block_rows=DEFAULT_BLOCK_ROWS):
    """The execution engine that streams ``X``: a
    :class:`~fastgmm.engine.dask.DaskSource` for a dask array, else a
    :class:`~fastgmm.engine.sources.BlockSource` (a memmap, an h5py/zarr array or a
    callable; sample weights only for a dask array: other sources yield (rows,
    weights) pairs)."""
    if is_dask_array(X):
        return DaskSource(X, sample_weight)
    return block_source(X, sample_weight, block_rows)
