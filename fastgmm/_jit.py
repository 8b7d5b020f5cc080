"""The one home of fastgmm's Numba policy.

Every kernel in the package is decorated with :func:`kernel`; nothing is compiled at
import time (no eager signatures), compiled code is cached on disk, and the fastmath
set is the *safe* one: FMA contraction and re-association (so reductions vectorise),
never the no-NaN / no-inf assumptions that break a logsumexp meeting ``-inf``.
Kernel inputs (data, weights, parameters) are typed read-only, and the data's dtype
(float32 or float64) is passed as data, not type (:func:`float_pair`): one compiled
specialisation per kernel serves every dtype and covariance model, and a kernel that
writes an input does not compile.

The first call of a kernel compiles it (tens of seconds for the parallel passes) and
writes it to the on-disk cache; later processes load it in well under a second.
Compiles are reported to the ``fastgmm`` logger (INFO) and to callbacks registered
with :func:`watch_compiles` (the command line's progress line, ``warmup``).

Environment variables
---------------------
FASTGMM_CACHE
    ``0`` disables the on-disk JIT cache (default: enabled).
FASTGMM_CACHE_DIR
    Where to cache (a ``jit-<hash>`` folder is made inside). Default: the package's
    ``__pycache__`` when writable, else ``NUMBA_CACHE_DIR/fastgmm`` when that is set,
    else the user cache folder (``~/.cache/fastgmm`` on Linux).

The cache folder is named by a hash of every kernel source file, this file and the
NumPy / Numba / llvmlite versions (:func:`source_hash`), so editing any kernel
invalidates every cached kernel: Numba's own cache checks only the defining file of
each function, and a cached caller would keep the old code of a callee it inlined
from another file. Folders of other hashes are left for the user to delete.
"""

import functools
import logging
import os
import sys

import numpy as np

from . import _runtime

CACHE = os.environ.get("FASTGMM_CACHE", "1") != "0"

#: LLVM fast-math flags that keep inf/NaN semantics. ``reassoc`` lets LLVM vectorise
#: sums; the order is fixed by the code, so results stay bitwise reproducible.
FASTMATH = {"contract", "reassoc", "nsz", "arcp"}

#: points per block: the unit of SIMD work (blocks are transposed to features x points)
BLOCK = 128
#: bytes of partial-sum slots a chunked reduction holds at once: one slot per chunk
#: up to this (one parallel region per pass), else the chunks are reduced in rounds
SLOT_BYTES = 16 * 1024 * 1024


#: for code whose rounding is part of the algorithm (the exp range reduction)
STRICT_FASTMATH = {"contract"}
_FASTMATH_OF = {False: FASTMATH, True: STRICT_FASTMATH, "exact": False}


def kernel(fn=None, *, parallel=False, strict=False, inputs="", floats=""):
    """Decorate a Numba kernel with the project policy (lazy, cached, safe fastmath).

    ``error_model="numpy"``: a float division by zero gives inf/NaN as in NumPy instead
    of raising, so divisions carry no hidden branch and their loops vectorise (inputs
    are validated before any kernel runs).

    ``strict=True`` allows only FMA contraction: for code that relies on exact
    IEEE rounding, which re-association would optimise away; ``strict="exact"``
    not even that: for code reproducing another library's rounding (no FMA).

    ``inputs`` names the array arguments a kernel called from Python only reads
    (``"X sw const"``). They reach it as read-only views (:func:`kernel_input`)
    whatever the caller passes, so there is one compiled specialisation per dtype,
    and a kernel that writes one of them fails to compile. Kernels called only from
    other kernels receive their callers' types.

    ``floats`` names the arguments that are float32 *or* float64 arrays (the data,
    outputs in the data's dtype). Each reaches the kernel as a pair ``(a64, a32)``
    (:func:`float_pair`; read-only when also in ``inputs``), so one specialisation
    serves both dtypes; the kernel reads whichever of the two holds the rows.
    """
    import inspect

    import numba

    def wrap(f):
        read, pairs = tuple(inputs.split()), tuple(floats.split())
        params = list(inspect.signature(f).parameters)
        unknown = (set(read) | set(pairs)) - set(params)
        if unknown:
            raise ValueError(f"{f.__name__} has no argument(s) {sorted(unknown)}")
        names = tuple(dict.fromkeys(read + pairs))
        convert = tuple(
            (params.index(name), name, _converter(name in read, name in pairs))
            for name in names
        )
        if numba.config.DISABLE_JIT:
            return _python_entry(f, convert) if names else f
        _listen()
        options = {
            "nopython": True,
            "boundscheck": None,
            "parallel": parallel,
            "fastmath": _FASTMATH_OF[strict],
            "nogil": True,
            "error_model": "numpy",
        }
        cls = _dispatcher_classes()[1 if names or parallel else 0]
        disp = cls(py_func=f, locals={}, targetoptions=options)
        if names:
            disp.convert = convert
            disp.input_positions = tuple(i for i, name, _ in convert if name in read)
        if parallel:  # its serial twin, for processes that cannot run threads
            disp.serial_options = {**options, "parallel": False}
        if CACHE and cache_dir() is not None:
            disp.enable_caching()
        return disp

    return wrap if fn is None else wrap(fn)


def _read_only(a):
    """A read-only view of ndarray ``a`` (``a`` itself if it already is one)."""
    plain = type(a) is np.ndarray
    if plain and not a.flags.writeable or not isinstance(a, np.ndarray):
        return a
    view = a.view() if plain else a.view(np.ndarray)
    view.setflags(write=False)  # half the time of flags.writeable = False
    return view


_F64, _F32 = np.dtype(np.float64), np.dtype(np.float32)
# dtype: (slot, other dtype); (dtype, shape[1:], read_only): (slot, empty other half)
_PAIR_SLOTS, _PAIRS = {_F64: (0, _F32), _F32: (1, _F64)}, {}


def float_pair(a, read_only=False):
    """``(a64, a32)``: float64 or float32 array ``a`` in the slot of its dtype and an
    empty array (0, *a.shape[1:]) of the other dtype in the other slot.

    Numba types the pair the same way whichever dtype ``a`` has, so a kernel taking
    it compiles once for both; it reads the slot that holds rows. With ``read_only``
    both are read-only views (see kernel_input). Any other dtype is a TypeError.
    """
    plain = type(a) is np.ndarray
    key = (a.dtype, a.shape[1:], read_only) if plain else None
    known = _PAIRS.get(key)  # (one look-up in the common case, ~0.2 us)
    if known is None:
        dtype = getattr(a, "dtype", None)
        slot = _PAIR_SLOTS.get(dtype) if isinstance(a, np.ndarray) else None
        if slot is None:
            got = type(a).__name__ + ("" if dtype is None else f" of dtype {dtype}")
            raise TypeError(
                f"fastgmm kernels take float32 or float64 arrays, got {got}"
            )
        known = (slot[0], np.empty((0, *a.shape[1:]), slot[1]))
        known[1].setflags(write=not read_only)
        if plain and len(_PAIRS) < 256:
            _PAIRS[key] = known
    if read_only:
        a = _read_only(a)
    return (known[1], a) if known[0] else (a, known[1])


def _converter(read, pair):
    read_pair = functools.partial(float_pair, read_only=True)
    return (read_pair if read else float_pair) if pair else _read_only


def _convert(convert, args, kwargs):
    """(args, kwargs) with each argument named in ``convert`` ((position, name,
    function) triples) replaced by function(argument)."""
    args = list(args)
    n_args = len(args)
    for i, name, fn in convert:
        if i < n_args:
            a = args[i]  # (an input read-only already: no call, ~0.1 us)
            done = fn is _read_only and type(a) is np.ndarray and not a.flags.writeable
            args[i] = a if done else fn(a)
        elif kwargs and name in kwargs:
            kwargs[name] = fn(kwargs[name])
    return args, kwargs


def _python_entry(f, convert):
    """With NUMBA_DISABLE_JIT: the Python function, its arguments converted."""

    @functools.wraps(f)
    def call(*args, **kwargs):
        args, kwargs = _convert(convert, args, kwargs)
        return f(*args, **kwargs)

    call.py_func = f
    return call


_CLASSES = []


def _dispatcher_classes():
    """(KernelDispatcher, KernelEntry), made on first use so that importing this
    module does not import Numba."""
    if _CLASSES:
        return _CLASSES
    from numba.core.registry import CPUDispatcher

    class KernelDispatcher(CPUDispatcher):
        """A CPU dispatcher whose on-disk cache lives in :func:`cache_dir`."""

        def enable_caching(self):
            self._cache = _cache_classes()[1](self.py_func)

    class KernelEntry(KernelDispatcher):
        """A kernel dispatcher that passes its declared inputs read-only and its
        float arrays as float pairs (see ``kernel``).

        A parallel one runs its serial twin (the same source compiled without
        ``parallel``, cached apart) in a process whose threading layer cannot start
        threads: a fork of a process that used GNU OpenMP (see
        :func:`fastgmm._runtime.threads_unsafe`); the twin takes the arguments
        already converted.
        """

        convert = ()
        input_positions = ()
        serial_options = None

        def __call__(self, *args, **kwargs):
            args, kwargs = _convert(self.convert, args, kwargs)
            if self.serial_options is not None and _runtime.threads_unsafe():
                return self.serial().__call__(*args, **kwargs)
            return super().__call__(*args, **kwargs)

        def serial(self):
            """The serial twin (made on first use)."""
            twin = self.__dict__.get("_serial")
            if twin is None:
                twin = SerialEntry(
                    py_func=self.py_func, locals={}, targetoptions=self.serial_options
                )
                if CACHE and cache_dir() is not None:
                    twin.enable_caching()
                self._serial = twin
            return twin

    class SerialEntry(KernelEntry):
        """The serial twin of a parallel kernel (cached under ``<name>.serial``)."""

        def enable_caching(self):
            self._cache = _cache_classes()[2](self.py_func)

    for cls in (KernelDispatcher, KernelEntry, SerialEntry):
        cls.__module__, cls.__qualname__ = __name__, cls.__name__
    _CLASSES.extend((KernelDispatcher, KernelEntry, SerialEntry))
    return _CLASSES


def __getattr__(name):
    # pickled dispatchers refer to their class as fastgmm._jit.<name>
    names = ("KernelDispatcher", "KernelEntry", "SerialEntry")
    if name in names:
        return _dispatcher_classes()[names.index(name)]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------- compile notices
_WATCHERS = []


def watch_compiles(callback):
    """Call ``callback(event, name, seconds)`` around each compile of a kernel.

    ``event`` is ``"start"`` or ``"end"`` for a kernel compiled from Python (with
    everything it calls: one notice per entry point, not per helper), ``name`` the
    kernel (``"passes.em_pass"``) and ``seconds`` the compile time so far (0 at the
    start). Loading a kernel from the on-disk cache is not a compile and calls
    nothing. Returns a function that unregisters the callback.
    """
    _WATCHERS.append(callback)

    def unwatch():
        if callback in _WATCHERS:
            _WATCHERS.remove(callback)

    return unwatch


def kernel_name(disp):
    """``"module.function"`` of a kernel within ``fastgmm.kernels``."""
    f = disp.py_func
    return f"{f.__module__.rsplit('.', 1)[-1]}.{f.__qualname__}"


def _notify(event, name, seconds):
    log = logging.getLogger("fastgmm")
    if event == "start":
        log.info("compiling %s (first use; cached afterwards in %s)", name, cache_dir())
    else:
        log.info("compiled %s in %.1f s", name, seconds)
    for callback in list(_WATCHERS):
        callback(event, name, seconds)


@functools.cache
def _listen():
    """Register (once) a listener on Numba's compile events that reports the
    outermost compile of a fastgmm kernel (see watch_compiles)."""
    from time import perf_counter

    from numba.core import event

    class Listener(event.Listener):
        # compiles run one at a time under Numba's global compiler lock
        def __init__(self):
            self.outer = None  # (dispatcher, start time) of the outermost kernel

        def on_start(self, ev):
            disp = ev.data["dispatcher"]
            if self.outer is None and isinstance(disp, _dispatcher_classes()[0]):
                self.outer = (disp, perf_counter())
                _notify("start", kernel_name(disp), 0.0)

        def on_end(self, ev):
            if self.outer is not None and ev.data["dispatcher"] is self.outer[0]:
                disp, start = self.outer
                self.outer = None
                _notify("end", kernel_name(disp), perf_counter() - start)

    event.register("numba:compile", Listener())


# ------------------------------------------------------------------ on-disk cache
_HERE = os.path.dirname(os.path.abspath(__file__))


@functools.cache
def source_hash():
    """sha256 (16 hex digits) of the kernel sources, this file and the versions of
    NumPy, Numba and llvmlite: the name of the cache folder. Computed once."""
    import hashlib

    import llvmlite
    import numba

    digest = hashlib.sha256()
    for version in (np.__version__, numba.__version__, llvmlite.__version__):
        digest.update(version.encode() + b"\0")
    kernels = os.path.join(_HERE, "kernels")
    files = [os.path.join(_HERE, "_jit.py")] + [
        os.path.join(kernels, name)
        for name in sorted(os.listdir(kernels))
        if name.endswith(".py")
    ]
    for path in files:
        with open(path, "rb") as f:
            source = f.read()
        digest.update(os.path.relpath(path, _HERE).encode() + b"\0")
        digest.update(len(source).to_bytes(8, "little") + source)
    return digest.hexdigest()[:16]


def _writable(path):
    try:
        os.makedirs(path, exist_ok=True)
        import tempfile

        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


@functools.cache
def cache_dir():
    """The folder kernels are cached in, ``<root>/jit-<source_hash()>``, or None when
    no candidate root is writable (kernels are then compiled in every process)."""
    folder = "jit-" + source_hash()
    override = os.environ.get("FASTGMM_CACHE_DIR")
    if override:
        roots = [override]
    else:
        import numba
        from numba.misc.appdirs import AppDirs

        roots = [os.path.join(_HERE, "__pycache__")]
        if numba.config.CACHE_DIR:
            roots.append(os.path.join(numba.config.CACHE_DIR, "fastgmm"))
        roots.append(AppDirs(appname="fastgmm", appauthor=False).user_cache_dir)
    for root in roots:
        path = os.path.join(os.path.abspath(root), folder)
        if _writable(path):
            return path
    return None


def _cache_classes():
    """(locator, cache) classes for Numba, made on first use (see cache_dir)."""
    if _CACHE_CLASSES:
        return _CACHE_CLASSES
    from numba.core.caching import (
        CompileResultCacheImpl,
        FunctionCache,
        _CacheLocator,
    )

    class KernelCacheLocator(_CacheLocator):
        """Every kernel in one folder per source hash (see cache_dir)."""

        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno

        def get_cache_path(self):
            return cache_dir()

        def get_source_stamp(self):
            return source_hash()  # the folder already names it

        def get_disambiguator(self):
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func, py_file):
            return cls(py_func, py_file) if cache_dir() is not None else None

    class KernelCacheImpl(CompileResultCacheImpl):
        """Numba's compile-result cache with fastgmm's locator only; files are named
        by module path within the package (kernels.passes.em_pass-<line>...)."""

        def __init__(self, py_func, suffix=""):
            self._lineno = py_func.__code__.co_firstlineno
            self._locator = KernelCacheLocator.from_function(py_func, None)
            if self._locator is None:
                raise RuntimeError(f"no writable cache folder for {py_func!r}")
            module = py_func.__module__.split(".", 1)[-1]
            fullname = f"{module}.{py_func.__qualname__}{suffix}"
            abiflags = getattr(sys, "abiflags", "")
            self._filename_base = self.get_filename_base(fullname, abiflags)

    class KernelCache(FunctionCache):
        _impl_class = KernelCacheImpl

    class SerialCacheImpl(KernelCacheImpl):
        def __init__(self, py_func):
            super().__init__(py_func, suffix=".serial")

    class SerialKernelCache(FunctionCache):
        """The cache of a serial twin (see KernelEntry), in files of its own."""

        _impl_class = SerialCacheImpl

    _CACHE_CLASSES.extend((KernelCacheLocator, KernelCache, SerialKernelCache))
    return _CACHE_CLASSES


_CACHE_CLASSES = []


def is_cached(disp):
    """Whether kernel ``disp`` has compiled code in the on-disk cache (or in this
    process): loading it then takes well under a second, compiling it seconds."""
    if getattr(disp, "overloads", None):
        return True
    cache_file = getattr(getattr(disp, "_cache", None), "_cache_file", None)
    return cache_file is not None and os.path.exists(cache_file._index_path)


def kernel_input(X):
    """X as a read-only view (no copy) when it is an ndarray; anything else unchanged.

    Kernels are compiled for read-only inputs only: Numba types read-only arrays
    separately, and a second compilation for writable ones would cost compile time
    and may vectorise a sum differently (results 1 ulp apart for the same data).
    Entry kernels apply this to their declared inputs themselves (see ``kernel``).
    """
    return _read_only(X)


def kernel_array(a, dtype=np.float64):
    """``a`` as a C-contiguous, read-only ``dtype`` array for a kernel input
    (copied only when the dtype or layout differs; see kernel_input)."""
    return _read_only(np.ascontiguousarray(a, dtype=dtype))


def chunk_rows(n_features, n_components):
    """Rows per partial-sum slot: a deterministic function of the problem shape only.

    The result never depends on the thread count, so chunked reductions give
    bitwise-identical answers for any number of threads.
    """
    # aim for ~256 KiB of per-chunk log-prob work, in whole blocks, 4..64 blocks, and
    # at least 2 K d rows, so that a chunk's K x d x d partial sums (zeroed, added)
    # cost little next to its rows' O(K d^2) work (measured at d=64, K=16: 25 % faster)
    per_row = 8 * (n_components + 2 * n_features)
    blocks = (256 * 1024) // (per_row * BLOCK)
    blocks = max(blocks, -(-2 * n_components * n_features // BLOCK))
    return max(4, min(64, blocks)) * BLOCK
