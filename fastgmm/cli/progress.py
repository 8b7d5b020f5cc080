"""Progress display for the command line: one status line redrawn in place.

:class:`Progress` draws only when enabled, i.e. when its stream is a terminal and
``--quiet`` was not given; piped or redirected output never receives progress lines.
:class:`CLIMonitor` turns :class:`fastgmm.engine.report.Monitor` events (EM iterations,
restarts, candidates of a sweep) into that line and, with ``verbose``, prints the
lower bound of every EM iteration when each run ends. :class:`Bar` is the
percentage bar of ``fastgmm segment``.
"""

import shutil
import sys
import time

from ..engine.report import Monitor


def bar(done, total, width=20):
    """``[#####.....]`` for ``done`` of ``total``."""
    filled = 0 if total <= 0 else min(width, int(width * done / total))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def is_terminal(stream):
    """Whether ``stream`` is a terminal (a status line is drawn only there)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """A status line on ``stream``, redrawn at most every ``min_interval`` seconds.

    Parameters
    ----------
    stream : file-like, optional
        Default ``sys.stderr``.
    enabled : bool, optional
        Default: whether ``stream`` is a terminal.
    min_interval : float, default=0.1
        Seconds between redraws (``show(..., force=True)`` draws anyway).
    """

    def __init__(self, stream=None, enabled=None, min_interval=0.1):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = is_terminal(self.stream) if enabled is None else enabled
        self.min_interval = min_interval
        self._last, self._width, self._t0 = -1e300, 0, time.perf_counter()

    @property
    def elapsed(self):
        """Seconds since the display was created."""
        return time.perf_counter() - self._t0

    def show(self, text, force=False):
        """Redraw the line with ``text`` (truncated to the terminal width)."""
        now = time.perf_counter()
        if not self.enabled or (not force and now - self._last < self.min_interval):
            return
        self._last = now
        cols = shutil.get_terminal_size((100, 20)).columns - 1
        text = f"{text}  {self.elapsed:.1f}s"[:cols]
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def clear(self):
        """Erase the line (before printing something else, or at the end)."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def println(self, line, stream=None):
        """Print a full line without mixing it into the status line."""
        self.clear()
        print(line, file=self.stream if stream is None else stream, flush=True)


class CLIMonitor(Monitor):
    """Progress and ``--verbose`` output for :func:`fastgmm.selection.select`.

    Parameters
    ----------
    label : str
        Start of the status line (the subcommand).
    progress : Progress
    verbose : bool, default=False
        Print each EM run's per-iteration lower bounds (on the progress stream).
    """

    def __init__(self, label, progress, verbose=False):
        self.label, self.progress, self.verbose = label, progress, verbose
        self.n_candidates = self.n_init = self.max_iter = self.done = 0
        self.run = ""

    def start(self, n_candidates, n_init, max_iter):
        """Remember the sweep's size."""
        self.n_candidates, self.n_init, self.max_iter = n_candidates, n_init, max_iter

    def _line(self, status):
        head = self.label
        if self.n_candidates > 1:
            head += (
                f" {bar(self.done, self.n_candidates)} {self.done}/{self.n_candidates}"
            )
        return f"{head}  {self.run}{status}"

    def run_start(self, n_components, covariance_type, init):
        """A restart begins."""
        self.run = f"K={n_components} {covariance_type}"
        if self.n_init > 1:
            self.run += f" restart {init + 1}/{self.n_init}"
        self.progress.show(self._line(""), force=True)

    def iteration(self, n_iter, change):
        """An EM iteration ended."""
        delta = "" if n_iter == 1 else f"  change {change:+.2e}"
        self.progress.show(self._line(f"  iteration {n_iter}/{self.max_iter}{delta}"))

    def run_end(self, n_components, covariance_type, init, result):
        """With ``verbose``, print the run's lower bounds."""
        if not self.verbose:
            return
        name = f"K={n_components} {covariance_type} restart {init + 1}"
        for i, lb in enumerate(result.lower_bounds, 1):
            self.progress.println(f"{name}: iteration {i:3d}  lower bound {lb:.10g}")
        state = "converged" if result.converged else "did not converge"
        self.progress.println(f"{name}: {state} after {result.n_iter} iterations")

    def candidate_end(self, row):
        """A candidate is scored."""
        self.done += 1
        self.progress.show(self._line(""), force=True)


class Bar:
    """A one-line progress bar on stderr: ``[#####.....]  50%  message  1.2s``.

    Draws nothing unless ``enabled`` (the command enables it when stderr is a
    terminal and ``--quiet`` is not given); redraws at most every 0.1 s.
    """

    def __init__(self, enabled, stream=None, width=24):
        self.stream = sys.stderr if stream is None else stream
        self.enabled, self.width = enabled, width
        self.t0, self.last, self.shown = time.perf_counter(), -1.0, 0

    def __call__(self, fraction, message):
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.1 and fraction < 1.0):
            return
        self.last = now
        filled = round(self.width * min(max(fraction, 0.0), 1.0))
        line = "[" + "#" * filled + "." * (self.width - filled) + "]"
        line = f"{line} {100 * fraction:3.0f}%  {message}  {now - self.t0:.1f}s"
        self.stream.write("\r" + line.ljust(self.shown))
        self.stream.flush()
        self.shown = len(line)

    def close(self):
        """Erase the bar."""
        if self.enabled and self.shown:
            self.stream.write("\r" + " " * self.shown + "\r")
            self.stream.flush()
