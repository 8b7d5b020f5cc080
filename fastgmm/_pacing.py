"""Thread pacing of EM iterations under load: :func:`pacing`.

When other processes hold cores, EM iterations may run on fewer threads: a
parallel pass ends only when its last thread does, and a thread that shares a core
with a busy process waits a scheduler time slice (milliseconds) for it, which can
make two threads slower than one. :class:`LoadMeter` measures the cores other
processes use (``/proc/stat``); :class:`Pacer` times iterations at each thread
count and runs them at the fastest. Results do not depend on the thread count
(fixed chunk order), so pacing changes only the time.
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
#: times within this fraction of the fastest count as a tie, won by more threads
TIE = 0.05
#: a count tried again and found slower than the chosen one by more than this
#: fraction keeps its time twice as long as before (up to :data:`VALID_MAX`): under a
#: steady load the trials, each an iteration at the slower count, grow rare
SLOWER = 0.2
#: seconds a slower count's time stays valid at most
VALID_MAX = 40.0
#: cores by which the load must change for a slower count to be tried again at once
LOAD_SHIFT = 0.5


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


class LoadMeter:
    """Cores used by *other* processes: the machine's CPU time (``/proc/stat``, in
    1/100 s ticks) minus this process's, over the wall time between two readings.

    :meth:`tick` is called at every EM iteration and reads the counters only once
    :data:`LOAD_WINDOW` has passed since the last reading (about 25 us a reading);
    a window longer than :data:`LOAD_STALE` (the process did other things between
    fits) starts afresh. ``others`` is None until a window is complete, or where
    ``/proc/stat`` is missing (then no pacing).
    """

    def __init__(self, machine=None, own=time.process_time, clock=time.perf_counter):
        self.machine = machine or (lambda: _machine_busy_seconds())
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
        if wall > LOAD_STALE:
            self.others = None
            return
        self.others = max(0.0, (machine - last[1] - (self._last[2] - last[2])) / wall)


class Pacer:
    """The thread count of each EM iteration, at most ``n_threads``.

    On a machine whose other processes use fewer than :data:`BUSY_CORES` cores
    every iteration runs on ``n_threads``. Otherwise the iterations are timed at
    each count tried, and run at the fastest one whose time is recent
    (:meth:`_recent`); the next count down from it (and up, towards ``n_threads``)
    is tried for one iteration whenever it has no recent time. A time is recent for
    :data:`TIME_VALID` seconds; each trial that finds its count still slower by
    more than :data:`SLOWER` doubles that count's validity (up to
    :data:`VALID_MAX`), until the load changes by :data:`LOAD_SHIFT` cores or a
    trial finds the count competitive. While the load is unknown (the first
    :data:`LOAD_WINDOW` of a fit after a pause) the last choice is kept if its
    times are recent, else all threads are used. Results do not depend on the
    thread count, so only the time changes.
    """

    def __init__(self, n_threads, meter=None, clock=time.perf_counter):
        self.n_threads, self.clock = n_threads, clock
        self.meter = LoadMeter(clock=clock) if meter is None else meter
        self.times = {}  # thread count -> [(when, seconds)], newest last
        self.valid = {}  # thread count -> (seconds its times stay recent, load then)
        self._previous = None  # the count of the last recorded iteration
        self._trial = None  # (count tried, count chosen) of the current iteration

    def _recent(self, count, now):
        """The time of ``count`` threads: the median of its last (up to 3) times
        still valid, or None. Under a busy process the times of a count come
        in two modes (the other process on or off the core): the least of them
        chose two threads for their lucky iterations while one thread was faster
        on average, and the median does not."""
        valid = self.valid.get(count, (TIME_VALID, None))[0]
        kept = sorted(s for w, s in self.times.get(count, []) if now - w <= valid)
        if not kept:
            return None
        half = len(kept) // 2
        return kept[half] if len(kept) % 2 else 0.5 * (kept[half - 1] + kept[half])

    def next_count(self):
        """Threads for the next iteration."""
        self._trial = None
        others = self.meter.others
        if self.n_threads <= 1 or others is not None and others < BUSY_CORES:
            return self.n_threads
        self._forget_on_load_shift(others)
        now = self.clock()
        recent = {c: self._recent(c, now) for c in range(1, self.n_threads + 1)}
        timed = [c for c, t in recent.items() if t is not None]
        if not timed:
            return self.n_threads
        fastest = min(recent[c] for c in timed)
        best = max(c for c in timed if recent[c] <= fastest * (1 + TIE))
        if others is None:  # the load is not known yet: no trial
            return best
        for trial in (best - 1, best + 1):
            if 1 <= trial <= self.n_threads and recent[trial] is None:
                self._trial = (trial, best)
                return trial
        return best

    def _forget_on_load_shift(self, others):
        """Back to :data:`TIME_VALID` for counts whose validity was lengthened
        under a load that has since changed by :data:`LOAD_SHIFT` cores or more."""
        if others is None:
            return
        for count, (_, load) in list(self.valid.items()):
            if load is not None and abs(others - load) >= LOAD_SHIFT:
                del self.valid[count]

    def record(self, count, seconds):
        """Keep the time of an iteration at ``count`` threads, unless it is the
        first after a change of count and the count has a recent time: that one
        also pays the change (caches, threads waking up), which would count
        against going back to a count that was faster."""
        now = self.clock()
        first = count != self._previous
        self._previous = count
        if first and self._recent(count, now) is not None:
            return
        kept = self.times.setdefault(count, [])
        kept.append((now, seconds))
        del kept[:-3]
        if self._trial is not None and self._trial[0] == count:
            self._after_trial(count, self._trial[1], now)

    def _after_trial(self, count, chosen, now):
        """Lengthen the validity of a tried count found slower than the chosen
        one, or reset it."""
        tried, against = self._recent(count, now), self._recent(chosen, now)
        if tried is None or against is None or tried <= against * (1 + SLOWER):
            self.valid.pop(count, None)
            return
        valid = self.valid.get(count, (TIME_VALID, None))[0]
        self.valid[count] = (min(2 * valid, VALID_MAX), self.meter.others)

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


def pacing(work="em"):
    """This Python thread's :class:`Pacer` for the current thread count and a kind
    of ``work`` ("em": EM iterations; "kmeans": Lloyd passes), whose iterations
    take comparable times. Kept between fits, so the iterations of consecutive
    fits are timed together."""
    import numba

    n_threads = numba.get_num_threads()
    pacers = getattr(_pacers, "by_key", None)
    if pacers is None:
        pacers = _pacers.by_key = {}
    key = (work, n_threads)
    if key not in pacers:
        pacers[key] = Pacer(n_threads)
    return pacers[key]
