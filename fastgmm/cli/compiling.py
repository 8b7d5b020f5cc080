"""The command line's notice while kernels compile on first use.

Numba compiles each of fastgmm's kernels the first time it is called (a few seconds
to about fifteen for the largest) and caches it on disk; later runs load it in well
under a second. Without a notice that first run is a silent stall. On a terminal,
:class:`CompileNotice` keeps one status line on stderr, redrawn every quarter of a
second while a kernel compiles (its name, how many are done, the time so far), and
prints a one-line summary at the end. A command may also set a ``status`` (what it
is doing during a long step), drawn the same way whenever no kernel compiles. Piped
or redirected stderr gets nothing (as with :mod:`fastgmm.cli.progress`), nor does
``--quiet``.

Only the standard library is imported at module level; the compile events come
from :func:`fastgmm._jit.watch_compiles`.
"""

import shutil
import sys
import threading
import time

from .progress import is_terminal

SPINNER = "|/-\\"


class CompileNotice:
    """A status line on ``stream`` while fastgmm's kernels compile.

    Parameters
    ----------
    stream : file-like, optional
        Default ``sys.stderr``.
    enabled : bool, optional
        Default: whether ``stream`` is a terminal.
    interval : float, default=0.25
        Seconds between redraws.

    Attributes
    ----------
    label : str
        Shown before the kernel's name (``fastgmm warmup`` puts its step here).
    compiled : list of str
        The kernels compiled so far; ``seconds`` their total compile time.
    show_summary : bool
        Whether to print the one-line summary at the end (default True).
    """

    def __init__(self, stream=None, enabled=None, interval=0.25):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = is_terminal(self.stream) if enabled is None else enabled
        self.interval = interval
        self.label, self.compiled, self.seconds = "", [], 0.0
        self.show_summary = True
        self._status = self._kernel = None
        self._since, self._status_since, self._width, self._ticks = 0.0, 0.0, 0, 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = self._unwatch = None

    def __enter__(self):
        from fastgmm._jit import watch_compiles

        self._unwatch = watch_compiles(self.event)
        return self

    def __exit__(self, *exc):
        self._unwatch()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._kernel = self._status = None
            self._clear()
        if self.enabled and self.show_summary and self.compiled:
            self.stream.write(self.summary() + "\n")
            self.stream.flush()
        return False

    def summary(self):
        """One line: what was compiled, how long it took, where it is cached."""
        from fastgmm._jit import cache_dir

        n = len(self.compiled)
        where = cache_dir()
        cached = (
            f"cached in {where}: later runs load them in about a second"
            if where
            else "not cached (no writable cache folder): set FASTGMM_CACHE_DIR"
        )
        kernels = "kernel" if n == 1 else "kernels"
        return f"fastgmm: compiled {n} {kernels} in {self.seconds:.1f} s ({cached})"

    @property
    def status(self):
        """What the command is doing (drawn while no kernel compiles), or None."""
        return self._status

    @status.setter
    def status(self, text):
        with self._lock:
            self._status, self._status_since = text, time.perf_counter()
            if text is None and self._kernel is None:
                self._clear()
            else:
                self._draw()
        self._start_ticker()

    def event(self, event, name, seconds):
        """A watch_compiles callback: remember the kernel, draw, start the ticker."""
        with self._lock:
            if event == "start":
                self._kernel, self._since = name, time.perf_counter()
                self._draw()
            else:
                self._kernel = None
                self.compiled.append(name)
                self.seconds += seconds
                if self._status is None:
                    self._clear()
                else:
                    self._draw()
        self._start_ticker()

    def line(self):
        """The status text: the kernel compiling now, else the status, else ""."""
        spin = SPINNER[self._ticks % len(SPINNER)]
        now = time.perf_counter()
        if self._kernel is not None:
            done = f", {len(self.compiled)} done" if self.compiled else ""
            head = f"{self.label}: " if self.label else ""
            return (
                f"fastgmm: {head}compiling {self._kernel} "
                f"(first use only, then cached{done}) {spin} {now - self._since:4.1f}s"
            )
        if self._status is not None:
            return f"{self._status} {spin} {now - self._status_since:4.1f}s"
        return ""

    def _start_ticker(self):
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(
                target=self._tick, name="fastgmm-compile-notice", daemon=True
            )
            self._thread.start()

    def _tick(self):
        while not self._stop.wait(self.interval):
            with self._lock:
                if self._kernel is not None or self._status is not None:
                    self._ticks += 1
                    self._draw()

    def _draw(self):
        if not self.enabled:
            return
        # the full width: this line may replace another status line
        cols = shutil.get_terminal_size((100, 20)).columns - 1
        self.stream.write("\r" + self.line()[:cols].ljust(cols))
        self.stream.flush()
        self._width = cols

    def _clear(self):
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def println(self, text="", stream=None):
        """Print a line (default on stdout) without mixing it into the status line."""
        with self._lock:
            self._clear()
            print(text, file=sys.stdout if stream is None else stream, flush=True)
            if self._kernel is not None or self._status is not None:
                self._draw()


def compile_notice(args):
    """The notice for a parsed command line (off with ``--quiet``), also set as
    ``args.compile_notice`` for the command to label."""
    enabled = False if getattr(args, "quiet", False) else None
    args.compile_notice = CompileNotice(enabled=enabled)
    return args.compile_notice
