"""The one home of fastgmm's Numba policy.

Every kernel in the package is decorated with :func:`kernel`; nothing is compiled at
import time (no eager signatures), compiled code is cached on disk, and the fastmath
set is the *safe* one: FMA contraction and re-association (so reductions vectorise),
never the no-NaN / no-inf assumptions that break a logsumexp meeting ``-inf``.
Kernel inputs (data, weights, parameters) are typed read-only: one specialisation
per dtype, and a kernel that writes an input does not compile.

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


def kernel(fn=None, *, parallel=False, strict=False, inputs=""):
    """Decorate a Numba kernel with the project policy (lazy, cached, safe fastmath).

    ``error_model="numpy"``: a float division by zero gives inf/NaN as in NumPy instead
    of raising, so divisions carry no hidden branch and their loops vectorise (inputs
    are validated before any kernel runs).

    ``strict=True`` allows only FMA contraction: for code that relies on exact
    IEEE rounding, which re-association would optimise away.

    ``inputs`` names the array arguments a kernel called from Python only reads
    (``"X sw const"``). They reach it as read-only views (:func:`kernel_input`)
    whatever the caller passes, so there is one compiled specialisation per dtype,
    and a kernel that writes one of them fails to compile. Kernels called only from
    other kernels receive their callers' types.
    """
    import inspect

    import numba

    def wrap(f):
        names = tuple(inputs.split())
        params = list(inspect.signature(f).parameters)
        unknown = set(names) - set(params)
        if unknown:
            raise ValueError(f"{f.__name__} has no argument(s) {sorted(unknown)}")
        positions = tuple(params.index(name) for name in names)
        if numba.config.DISABLE_JIT:
            return _python_entry(f, positions, names) if names else f
        options = {
            "nopython": True,
            "boundscheck": None,
            "parallel": parallel,
            "fastmath": STRICT_FASTMATH if strict else FASTMATH,
            "nogil": True,
            "error_model": "numpy",
        }
        cls = _dispatcher_classes()[1 if names or parallel else 0]
        disp = cls(py_func=f, locals={}, targetoptions=options)
        if names:
            disp.input_positions, disp.input_names = positions, frozenset(names)
        if parallel:  # its serial twin, for processes that cannot run threads
            disp.serial_options = {**options, "parallel": False}
        if CACHE and cache_dir() is not None:
            disp.enable_caching()
        return disp

    return wrap if fn is None else wrap(fn)


def _read_only(a):
    """A read-only view of ndarray ``a`` (``a`` itself if it already is one)."""
    if type(a) is np.ndarray and not a.flags.writeable:
        return a
    if not isinstance(a, np.ndarray):
        return a
    view = a.view(np.ndarray)
    view.flags.writeable = False
    return view


def _convert(positions, names, args, kwargs):
    """(args, kwargs) with the inputs at ``positions`` / ``names`` read-only."""
    args = list(args)
    n_args = len(args)
    for i in positions:
        if i < n_args:
            args[i] = _read_only(args[i])
    for name in names.intersection(kwargs) if kwargs else ():
        kwargs[name] = _read_only(kwargs[name])
    return args, kwargs


def _python_entry(f, positions, names):
    """With NUMBA_DISABLE_JIT: the Python function, its inputs made read-only."""
    names = frozenset(names)

    @functools.wraps(f)
    def call(*args, **kwargs):
        args, kwargs = _convert(positions, names, args, kwargs)
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
        """A kernel dispatcher that passes its declared inputs read-only.

        A parallel one runs its serial twin (the same source compiled without
        ``parallel``, cached apart) in a process whose threading layer cannot start
        threads: a fork of a process that used GNU OpenMP (see
        :func:`fastgmm._runtime.threads_unsafe`).
        """

        input_positions = ()
        input_names = frozenset()
        serial_options = None

        def __call__(self, *args, **kwargs):
            args, kwargs = _convert(
                self.input_positions, self.input_names, args, kwargs
            )
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
