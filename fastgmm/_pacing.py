"""Thread pacing of EM iterations under load: :func:`pacing`.

When other processes hold cores, EM iterations may run on fewer threads: a
parallel pass ends only when its last thread does, and a thread that shares a core
with a busy process waits a scheduler time slice (milliseconds) for it, which can
make two threads slower than one. :class:`LoadMeter` measures the cores other
processes use (``/proc/stat``, and ``/proc/loadavg`` after a pause);
:class:`Pacer` times iterations at each thread count and runs them at the
fastest. Results do not depend on the thread count (fixed chunk order), so pacing
changes only the time.
"""

import os
import threading
import time
from contextlib import contextmanager

#: cores used by other processes (measured over :data:`LOAD_WINDOW` of EM iterations)
#: from which EM iterations are timed at fewer threads too
BUSY_CORES = 0.5
#: seconds over which other processes' CPU use is measured (at least)
LOAD_WINDOW = 0.1
#: a longer window (a pause between fits) is not used: the load is measured afresh
LOAD_STALE = 1.0
#: seconds an iteration time stays valid: older ones are measured again
TIME_VALID = 5.0
#: the longest validity of a count found slower again and again under a load that
#: has not gone (each such trial doubles it, from TIME_VALID)
TIME_VALID_MAX = 40.0
#: times within this fraction of the fastest count as a tie, won by more threads
TIE = 0.05
#: pacers (problem shapes) kept per Python thread before they start afresh
MAX_PACERS = 64


#: clock ticks per second of /proc/stat
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_busy_seconds():
    """CPU seconds all processes have used since boot (Linux ``/proc/stat``), or None
    where it cannot be read."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()
        ticks = [int(v) for v in fields[1:9]]  # user .. steal (guests are in user)
    except (OSError, ValueError):
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICKS  # minus idle and iowait


def _runnable_others():
    """Threads other than the reader that are runnable right now (Linux
    ``/proc/loadavg``'s fourth field, all processes), or None where it cannot be
    read."""
    try:
        with open("/proc/loadavg", "rb") as f:
            running = f.read().split()[3].split(b"/")[0]
        return max(0, int(running) - 1)
    except (OSError, ValueError, IndexError):
        return None


class LoadMeter:
    """Cores used by *other* processes: the machine's CPU time (``/proc/stat``, in
    1/100 s ticks) minus this process's, over the wall time between two readings.

    :meth:`tick` is called at every EM iteration and reads the counters only once
    :data:`LOAD_WINDOW` has passed since the last reading (about 25 us a reading).
    ``others`` is None until a window is complete, or where ``/proc/stat`` is
    missing (then no pacing).

    A window this process spent mostly idle (a pause between fits) says what
    others used *then*: a peer that has just finished counts as busy. So after a
    pause the threads runnable right now (``runnable``, ``/proc/loadavg``) cap
    the reading (a process that holds a core is runnable at every instant), and
    stand for it where the window is longer than :data:`LOAD_STALE`. Inside a fit
    they are not read: this process's own spinning threads would count too.
    """

    def __init__(
        self, machine=None, own=time.process_time, clock=time.perf_counter,
        runnable=None,
    ):  # fmt: skip
        self.machine = machine or (lambda: _machine_busy_seconds())
        self.runnable = runnable or (lambda: _runnable_others())
        self.own, self.clock = own, clock
        self.others, self._last = None, None

    def tick(self):
        now = self.clock()
        last = self._last
        if last is not None and now - last[0] < LOAD_WINDOW:
            return
        machine = self.machine()
        if machine is None:
            return
        self._last = (now, machine, self.own())
        if last is None:
            return
        wall = now - last[0]
        own = self._last[2] - last[2]
        others = None
        if wall <= LOAD_STALE:
            others = max(0.0, (machine - last[1] - own) / wall)
        if own < 0.5 * wall:  # mostly a pause of this process
            runnable = self.runnable()
            if runnable is not None:
                others = runnable if others is None else min(others, runnable)
        self.others = None if others is None else float(others)


class Pacer:
    """The thread count of each EM iteration, at most ``n_threads``.

    On a machine whose other processes use fewer than :data:`BUSY_CORES` cores
    (or where that is unknown) every iteration runs on ``n_threads``. Otherwise the
    iterations are timed at each count tried, and run at the fastest one whose time
    is recent (:meth:`_recent`); the next count down from it (and up, towards
    ``n_threads``) is tried for one iteration whenever it has no recent time
    (:data:`TIME_VALID`). A count that such a trial finds slower again keeps its
    time twice as long each time (up to :data:`TIME_VALID_MAX`) while the machine
    stays busy: under a process that holds a core for minutes, a trial of two
    threads every 5 s cost a tenth of the time one thread saved. The first reading
    of a quiet machine ends that. Results do not depend on the thread count, so
    only the time changes. One pacer serves one problem (see :func:`pacing`).
    """

    def __init__(self, n_threads, meter=None, clock=time.perf_counter):
        self.n_threads, self.clock = n_threads, clock
        self.meter = LoadMeter(clock=clock) if meter is None else meter
        self.times = {}  # thread count -> [(when, seconds)], newest last
        self.valid = {}  # thread count -> seconds its times stay valid (backed off)
        self._previous = None  # the count of the last recorded iteration

    def _recent(self, count, now):
        """The time of ``count`` threads: the median of its last (up to 3) times
        within TIME_VALID, or None. Under a busy process the times of a count come
        in two modes (the other process on or off the core): the least of them
        chose two threads for their lucky iterations while one thread was faster
        on average, and the median does not."""
        valid = self.valid.get(count, TIME_VALID)
        kept = sorted(s for w, s in self.times.get(count, []) if now - w <= valid)
        if not kept:
            return None
        half = len(kept) // 2
        return kept[half] if len(kept) % 2 else 0.5 * (kept[half - 1] + kept[half])

    def next_count(self):
        """Threads for the next iteration."""
        others = self.meter.others
        if self.n_threads <= 1 or others is None or others < BUSY_CORES:
            if self.valid:
                self.valid.clear()  # the load went: trials at TIME_VALID again
            return self.n_threads
        now = self.clock()
        recent = {c: self._recent(c, now) for c in range(1, self.n_threads + 1)}
        timed = [c for c, t in recent.items() if t is not None]
        if not timed:
            return self.n_threads
        fastest = min(recent[c] for c in timed)
        best = max(c for c in timed if recent[c] <= fastest * (1 + TIE))
        for trial in (best - 1, best + 1):
            if 1 <= trial <= self.n_threads and recent[trial] is None:
                return trial
        return best

    def record(self, count, seconds):
        """Keep the time of an iteration at ``count`` threads, unless it is the
        first after a change of count and the count has a recent time: that one
        also pays the change (caches, threads waking up), which would count
        against going back to a count that was faster. The very first iteration
        of a problem is not kept either: it pays for the first calls (kernels
        loaded from the disk cache, pages touched), 259 ms against 6.5 ms for
        the next at 200k x 16, K=16 diag, and made one thread look faster."""
        now = self.clock()
        first = count != self._previous
        previous, self._previous = self._previous, count
        if previous is None or first and self._recent(count, now) is not None:
            return
        trial = self._recent(count, now) is None
        kept = self.times.setdefault(count, [])
        kept.append((now, seconds))
        del kept[:-3]
        if trial:
            self._back_off(count, seconds, now)

    def _back_off(self, count, seconds, now):
        """After a trial of ``count``: found slower than another count's recent
        time (beyond :data:`TIE`), its time stays valid for TIME_VALID the first
        time and twice as long at each trial after (see the class docstring);
        found as fast, for TIME_VALID."""
        rivals = [self._recent(c, now) for c in self.times if c != count]
        rivals = [t for t in rivals if t is not None]
        if rivals and seconds > min(rivals) * (1 + TIE):
            backed = self.valid.get(count)
            self.valid[count] = (
                TIME_VALID if backed is None else min(2 * backed, TIME_VALID_MAX)
            )
        else:
            self.valid.pop(count, None)

    @contextmanager
    def iteration(self):
        """Run one EM iteration (the body) on :meth:`next_count` threads, timed.
        On one thread: nothing but the body."""
        if self.n_threads <= 1:
            yield 1
            return
        import numba

        self.meter.tick()
        count = self.next_count()
        if count != self.n_threads:
            numba.set_num_threads(count)
        start = self.clock()
        try:
            yield count
        finally:
            elapsed = self.clock() - start
            if count != self.n_threads:
                numba.set_num_threads(self.n_threads)
        self.record(count, elapsed)


_pacers = threading.local()


def pacing(work="em", shape=None):
    """This Python thread's :class:`Pacer` for the current thread count, a kind of
    ``work`` ("em": EM iterations; "kmeans": Lloyd passes) and a problem ``shape``
    (any hashable, e.g. rows, components, features and covariance model), whose
    iterations take comparable times. Kept between fits, so the iterations of
    consecutive fits of one problem are timed together; a fit of another problem
    (another shape) has its own times: with one set for all, a 20 ms iteration on
    two threads of one problem made one thread look faster on the next."""
    import numba

    n_threads = numba.get_num_threads()
    pacers = getattr(_pacers, "by_key", None)
    if pacers is None:
        pacers = _pacers.by_key = {}
    key = (work, n_threads, shape)
    if key not in pacers:
        if len(pacers) >= MAX_PACERS:
            pacers.clear()
        pacers[key] = Pacer(n_threads)
    return pacers[key]
