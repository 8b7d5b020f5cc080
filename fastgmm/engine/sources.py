"""Data that do not fit in memory: block sources streamed through the fused kernel.

A source delivers the rows of a data set in blocks, afresh on every pass; EM adds
the per-block sufficient statistics in block order, so a streamed fit equals the
in-memory fit from the same start up to float rounding. Memory is bounded by the
block size, not by the number of rows.

Accepted inputs (see :func:`as_source`):

- ``numpy.memmap``: sliced block by block from the mapped array itself, each block's
  pages dropped from the resident set once it was used (so the resident set stays
  bounded, see :class:`_Pages`);
- array-likes with ``shape`` and slicing that are not numpy arrays (h5py datasets,
  zarr arrays);
- a callable returning a new iterable of blocks at each call; a block is an array
  (rows, n_features) or a pair (rows, sample_weight).
"""

import mmap

import numpy as np

from .._jit import kernel_input

#: rows read per block from memmaps and array-likes
DEFAULT_BLOCK_ROWS = 1 << 18


def is_dask_array(X):
    """Whether ``X`` is a dask array (checked without importing dask)."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "to_delayed")


def is_source(X):
    """Whether ``X`` should be streamed rather than loaded."""
    if isinstance(X, np.memmap) or is_dask_array(X):
        return True
    if isinstance(X, np.ndarray):
        return False
    module = type(X).__module__.split(".")[0]
    # iterators are claimed here only to be refused with a clear error by as_source
    return callable(X) or module in ("h5py", "zarr") or hasattr(X, "__next__")


def _all_finite(a):
    """Whether every value of ``a`` is finite (the O(n) value check of a block)."""
    return bool(np.all(np.isfinite(a)))


def _check_block(X, w, n_features, index=None, values=True):
    """(X float32/float64 C-contiguous, weights float64 or empty) of one block, checked.

    Parameters
    ----------
    X, w : array-like
        The block's rows and its weights (or None for unit weights).
    n_features : int or None
        The expected width; None accepts any width (of at least one feature).
    index : int or None
        Names the block in error messages.
    values : bool, default=True
        Also run the O(n) value checks: finite X, finite non-negative weights. The
        structural checks (numeric dtype, 2-D, width, one weight per row) always run.

    Float blocks already in the right layout are not copied.
    """
    where = "" if index is None else f"block {index}: "
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{where}expected numeric data, got dtype {X.dtype}")
    X = np.ascontiguousarray(X, dtype=X.dtype if X.dtype == np.float32 else np.float64)
    X = kernel_input(X)
    if X.ndim == 2 and X.shape[1] == 0:
        raise ValueError(
            f"{where}Found array with 0 feature(s) (shape={X.shape}) while a minimum "
            "of 1 is required."
        )
    if X.ndim != 2 or (n_features is not None and X.shape[1] != n_features):
        raise ValueError(
            f"{where}expected a 2D block with {n_features} features, got shape "
            f"{X.shape}"
        )
    if values and not _all_finite(X):
        raise ValueError(f"{where}Input X contains NaN or infinity.")
    if w is None:
        return X, np.empty(0)
    w = np.ascontiguousarray(w, dtype=np.float64)
    if w.shape != (X.shape[0],) or (values and (not _all_finite(w) or np.any(w < 0))):
        raise ValueError(
            f"{where}sample weights must be finite, non-negative, one per row"
        )
    return X, w


class BlockSource:
    """Rows in blocks, read afresh at every pass.

    Parameters
    ----------
    blocks : callable
        Returns a new iterable of blocks at each call; a block is an array
        (rows, n_features) or a pair (rows, sample_weight).
    n_features : int or None
        The expected width, or None to take it from the first block.

    Notes
    -----
    Validation runs once per source (a source is made per fit): the first complete
    pass checks every value (finite rows, finite non-negative weights); later passes
    check only the structure (numeric dtype, 2-D, width, one weight per row) and that
    they deliver the same number of rows. The value checks are a full extra read of
    each block, so repeating them would cost a pass per EM iteration.
    """

    def __init__(self, blocks, n_features=None):
        self._blocks = blocks
        self.n_features = n_features
        self.n_rows = None
        self.dtype = None
        self._first = None
        self._validated = False  # a complete pass has checked every value
        self._peek()

    def _peek(self):
        # structure only: the first complete pass checks the values of this block
        for X, _ in self._iter(values=False):
            self._first = np.asarray(X[0], dtype=np.float64)
            self.dtype = X.dtype
            return
        raise ValueError("Found array with 0 sample(s) (the data source is empty).")

    def _iter(self, values=None):
        """Checked (X, weights) blocks, empty ones skipped; ``values=None`` runs the
        value checks until a complete pass has run them."""
        if values is None:
            values = not self._validated
        for index, block in enumerate(self._blocks()):
            X, w = block if isinstance(block, tuple) else (block, None)
            X, w = _check_block(X, w, self.n_features, index, values)
            if X.shape[0] == 0:
                continue
            self.n_features = X.shape[1]
            yield X, w

    def blocks(self):
        """A new iterator over the checked blocks: pairs (X, weights), weights of
        shape (0,) for unit weights. Values are checked until a complete pass of
        ``map_sum`` or ``sample`` has checked them."""
        return self._iter()

    def first_row(self):
        return self._first

    def _check_rows(self, rows):
        """Every pass must deliver the same rows: a callable that returns the same
        (exhausted) iterator, or different data, on each call is an error."""
        if rows == 0 or (self.n_rows is not None and rows != self.n_rows):
            raise ValueError(
                f"The data source yielded {rows} rows on this pass but "
                f"{self.n_rows or 'some'} before: EM reads the data several times, so "
                "the callable must return a new iterable over the same rows at each "
                "call (not the same generator)."
            )
        self.n_rows = rows

    def _pass_done(self, rows, values):
        self._check_rows(rows)
        self._validated = self._validated or values

    def map_sum(self, fn, *args):
        """Sum of fn(X, w, *args) over the blocks, in order (tuples element-wise)."""
        values = not self._validated
        total, rows = None, 0
        for X, w in self._iter(values):
            out = fn(X, w, *args)
            total = out if total is None else tuple(a + b for a, b in zip(total, out))
            rows += X.shape[0]
        self._pass_done(rows, values)
        return total

    def sample(self, n_max, random_state):
        """A seeded Bernoulli sample of about ``n_max`` rows (all rows if fewer),
        with their weights; needs one full pass first (to know the row count)."""
        if self.n_rows is None:
            self.map_sum(lambda X, w: (X.shape[0],))
        p = min(1.0, n_max / self.n_rows)
        values = not self._validated
        xs, ws, weighted, rows = [], [], False, 0
        for X, w in self._iter(values):
            keep = random_state.uniform(size=X.shape[0]) < p if p < 1 else slice(None)
            xs.append(X[keep])
            ws.append(np.ones(X.shape[0])[keep] if w.shape[0] == 0 else w[keep])
            weighted |= w.shape[0] > 0
            rows += X.shape[0]
        self._pass_done(rows, values)
        X = np.ascontiguousarray(np.concatenate(xs))
        return X, (np.concatenate(ws) if weighted else None)


class _Pages:
    """The pages of a memmap's mapping that a block spans: checked against the file's
    size before the block is read, dropped from the resident set after.

    Dropping uses ``madvise(MADV_DONTNEED)``: the process's page-table entries go, the
    file's pages stay in the page cache (a later pass maps them again from there),
    so the resident set holds about one block however many rows are read. Shared
    mappings only (modes ``r``, ``r+``, ``w+``): in a copy-on-write mapping (mode
    ``c``) it would discard the changes made in memory.
    """

    def __init__(self, X):
        self.mapping = X._mmap
        # the mapping starts at X.offset rounded down as numpy does when it maps
        self.file_start = X.offset - X.offset % mmap.ALLOCATIONGRANULARITY
        self.base = np.frombuffer(self.mapping, dtype=np.uint8).ctypes.data
        self.length = len(self.mapping)
        self.filename = X.filename
        self.drop = X.mode != "c" and hasattr(mmap, "MADV_DONTNEED")

    @classmethod
    def of(cls, X):
        """Pages of X's mapping, or None if X has no readable mapping of its own."""
        if getattr(X, "_mmap", None) is None:
            return None
        try:
            return cls(X)
        except (TypeError, ValueError):  # closed or otherwise unreadable mapping
            return None

    def span(self, block):
        """(first, end) byte offsets of ``block`` in the mapping, or None."""
        low, high = _byte_bounds(block)
        first, end = low - self.base, high - self.base
        return (first, end) if 0 <= first <= end <= self.length else None

    def check_file(self, span, rows):
        """Raise if the file is now shorter than the block: reading mapped pages past
        the end of a file kills the process (SIGBUS) instead of raising."""
        try:
            size = self.mapping.size()  # fstat of the mapped file, even if renamed
        except (OSError, ValueError):  # no file descriptor kept: cannot check
            return
        needed = self.file_start + span[1]
        if size < needed:
            raise ValueError(
                f"The memmap's file {self.filename!r} is shorter than the array: "
                f"rows {rows[0]}..{rows[1] - 1} end at byte {needed} but the file has "
                f"{size} bytes (was it truncated after it was mapped?)."
            )

    def release(self, span):
        """Drop the pages of ``span`` from this process's resident set."""
        if not self.drop:
            return
        first = span[0] - span[0] % mmap.PAGESIZE
        end = min(self.length, -(-span[1] // mmap.PAGESIZE) * mmap.PAGESIZE)
        if end > first:
            try:
                self.mapping.madvise(mmap.MADV_DONTNEED, first, end - first)
            except (OSError, ValueError):  # advice refused: pages stay resident
                self.drop = False


def _byte_bounds(a):
    """(low, high) addresses of ``a``'s memory (numpy >= 2 moved the function)."""
    return getattr(np.lib, "array_utils", np).byte_bounds(a)


def _memmap_blocks(X, rows):
    """Blocks of a memmap sliced from the mapped array itself (what the user passed,
    even if the file was since replaced), each checked against the file's size before
    it is read and dropped from the resident set after it was used (see
    :class:`_Pages`)."""
    pages = _Pages.of(X)

    def blocks():
        for start in range(0, X.shape[0], rows):
            stop = min(start + rows, X.shape[0])
            block = np.asarray(X[start:stop])
            span = None if pages is None else pages.span(block)
            if span is not None:
                pages.check_file(span, (start, stop))
            try:
                yield block
            finally:
                if span is not None:
                    pages.release(span)

    return blocks


def _slice_blocks(X, rows):
    def blocks():
        for start in range(0, X.shape[0], rows):
            yield np.asarray(X[start : start + rows])

    return blocks


def block_source(X, sample_weight=None, block_rows=DEFAULT_BLOCK_ROWS):
    """A :class:`BlockSource` for a memmap, an h5py/zarr array or a callable."""
    if sample_weight is not None:
        raise TypeError(
            "sample_weight cannot be given with streamed data: yield "
            "(rows, weights) pairs from the source instead."
        )
    if isinstance(X, np.memmap):
        _require_2d(X)
        return BlockSource(_memmap_blocks(X, block_rows), X.shape[1])
    if hasattr(X, "__next__") and not callable(X):
        raise TypeError(
            f"A {type(X).__name__} can be read only once, but EM reads the data at "
            "every iteration: pass a callable returning a new iterable of blocks "
            "instead, e.g. fit(lambda: read_blocks(path))."
        )
    if callable(X) and not hasattr(X, "shape"):
        return BlockSource(X)
    _require_2d(X)
    return BlockSource(_slice_blocks(X, block_rows), X.shape[1])


def _require_2d(X):
    if len(getattr(X, "shape", ())) != 2:
        raise ValueError(
            f"Expected a 2D array-like, got shape {getattr(X, 'shape', None)}"
        )
