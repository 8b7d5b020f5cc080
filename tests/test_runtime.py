"""Threads at run time: the serial cut-off for small problems (fastgmm._runtime) and the pacing of EM iterations under load (fastgmm._pacing)."""

import contextlib

import numba
import numpy as np
import pytest

import fastgmm.engine.em
import fastgmm.engine.init
import fastgmm.engine.score
from fastgmm import GaussianMixture, _pacing, _runtime
from fastgmm._runtime import SERIAL_WORK, pass_work, threads
from fastgmm.engine.data import fit_work

two_threads = pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads"
)


def test_pass_work_grows_with_every_dimension():
    base = pass_work(1000, 3, 4, False)
    assert base == 1000 * 4 * (3 + 8)
    assert pass_work(1000, 3, 4, True) == base + 1000 * 4 * 6
    assert pass_work(2000, 3, 4, False) == 2 * base
    assert pass_work(1000, 3, 8, False) == 2 * base
    assert pass_work(1000, 4, 4, False) > base


@two_threads
def test_threads_run_serially_below_the_cutoff():
    with threads(2, work=SERIAL_WORK - 1):
        assert numba.get_num_threads() == 1
    with threads(2, work=SERIAL_WORK):
        assert numba.get_num_threads() == 2
    with threads(2):  # no work given: no cut-off
        assert numba.get_num_threads() == 2
    with threads(-1, work=0):
        assert numba.get_num_threads() == 1


def test_invalid_n_jobs_is_refused_below_the_cutoff():
    with pytest.raises(ValueError, match="n_jobs == 0"):
        with threads(0, work=1):
            pass


def test_fit_work_reads_the_shape_without_converting():
    X = np.zeros((150, 4))
    assert fit_work(X, 3, "full") == pass_work(150, 4, 3, True)
    assert fit_work(X, 3, "diag") == pass_work(150, 4, 3, False)
    assert fit_work(X, 3, "tied") == pass_work(150, 4, 3, True)
    assert fit_work(X.tolist(), 3, "spherical") == pass_work(150, 4, 3, False)
    assert fit_work(lambda: iter([X]), 3, "full") is None  # a callable: unknown
    assert fit_work(np.zeros(5), 3, "full") is None  # not 2-D: validation says so
    assert fit_work([], 3, "full") is None


def _record_threads(monkeypatch, module, name):
    """Wrap ``module.name`` to record numba.get_num_threads() at each call."""
    seen, original = [], getattr(module, name)

    def recorded(*args, **kwargs):
        seen.append(numba.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, recorded)
    return seen


@two_threads
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_small_fit_and_scoring_run_on_one_thread(monkeypatch, covariance_type):
    """Iris-sized data: every EM pass and every scoring call of fit, predict,
    predict_proba, score_samples and bic runs serially, even with n_jobs=2."""
    X = np.random.default_rng(0).normal(size=(150, 4))
    em = _record_threads(monkeypatch, fastgmm.engine.em, "block_em")
    scored = _record_threads(monkeypatch, fastgmm.engine.score, "score_pass")
    gm = GaussianMixture(3, covariance_type=covariance_type, n_jobs=2, random_state=0)
    gm.fit(X)
    gm.predict(X), gm.predict_proba(X), gm.score_samples(X), gm.bic(X)
    gm.partial_fit(X)
    assert em and set(em) == {1}
    assert len(scored) == 4 and set(scored) == {1}


@two_threads
def test_fits_above_the_cutoff_use_the_threads_asked_for(monkeypatch):
    X = np.random.default_rng(0).normal(size=(150, 4))
    monkeypatch.setattr(_runtime, "SERIAL_WORK", fit_work(X, 3, "full"))  # not below
    monkeypatch.setattr(_pacing, "BUSY_CORES", float("inf"))  # a busy machine too
    em = _record_threads(monkeypatch, fastgmm.engine.em, "block_em")
    scored = _record_threads(monkeypatch, fastgmm.engine.score, "score_pass")
    gm = GaussianMixture(3, n_jobs=2, random_state=0, max_iter=3).fit(X)
    gm.predict(X)
    assert em and set(em) == {2}
    assert scored == [2]


@two_threads
def test_select_sweep_on_small_data_runs_on_one_thread(monkeypatch):
    from fastgmm import select

    X = np.random.default_rng(0).normal(size=(150, 4))
    em = _record_threads(monkeypatch, fastgmm.engine.em, "block_em")
    select(X, range(1, 4), ("full", "diag"), random_state=0, n_jobs=2)
    assert em and set(em) == {1}


# ------------------------------------------------------------------ pacing under load
class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class _Load:
    """A LoadMeter stand-in: others' cores as given."""

    def __init__(self, others):
        self.others = others

    def tick(self):
        pass


def _warm(pacer):
    """A pacer past the first iteration of its problem (never kept: it pays for
    the first calls)."""
    pacer.record(pacer.n_threads, 1.0)
    assert not pacer.times
    return pacer


def test_pacer_does_not_keep_the_first_iteration_of_a_problem():
    """Its time includes loading kernels and touching pages (259 ms against
    6.5 ms next at 200k x 16 diag): kept, it made one thread look faster."""
    clock = _Clock()
    pacer = _pacing.Pacer(2, _Load(1.0), clock)
    assert _run(pacer, clock, {1: 0.010, 2: 0.006}, 1) == [2]
    assert pacer._recent(2, clock.now) is None
    assert _run(pacer, clock, {1: 0.010, 2: 0.006}, 4) == [2, 1, 2, 2]


def _run(pacer, clock, seconds_at, n):
    """n iterations: (thread counts used); an iteration at c threads takes
    seconds_at[c]."""
    used = []
    for _ in range(n):
        count = pacer.next_count()
        used.append(count)
        clock.now += seconds_at[count]
        pacer.record(count, seconds_at[count])
    return used


@pytest.mark.parametrize("others", [None, 0.0, 0.3])
def test_pacer_keeps_every_thread_on_a_quiet_machine(others):
    """Nothing else running (or unknown): every iteration on all threads, even
    where fewer would be faster (no trial iteration is spent)."""
    clock = _Clock()
    pacer = _warm(_pacing.Pacer(4, _Load(others), clock))
    assert _run(pacer, clock, {1: 0.01, 2: 0.01, 3: 0.01, 4: 0.05}, 10) == [4] * 10


def test_pacer_moves_to_fewer_threads_when_they_are_faster_under_load():
    clock = _Clock()
    pacer = _warm(_pacing.Pacer(2, _Load(1.0), clock))
    used = _run(pacer, clock, {1: 0.012, 2: 0.020}, 12)
    assert used[:3] == [2, 1, 1]  # one iteration timed at each count, then the faster
    assert used[3:] == [1] * 9


def test_pacer_stays_with_all_threads_when_they_are_faster_or_tied_under_load():
    clock = _Clock()
    pacer = _warm(_pacing.Pacer(2, _Load(1.0), clock))
    assert _run(pacer, clock, {1: 0.020, 2: 0.012}, 8) == [2, 1] + [2] * 6
    pacer = _warm(_pacing.Pacer(2, _Load(1.0), clock))
    tie = {1: 0.0100, 2: 0.0104}  # within TIE: more threads win
    assert _run(pacer, clock, tie, 5) == [2, 1, 2, 2, 2]


def test_pacer_steps_down_more_than_one_thread_and_times_again_later():
    clock = _Clock()
    pacer = _warm(_pacing.Pacer(4, _Load(2.0), clock))
    seconds = {1: 0.030, 2: 0.010, 3: 0.020, 4: 0.040}
    used = _run(pacer, clock, seconds, 6)
    assert used == [4, 3, 2, 1, 2, 2]
    clock.now += _pacing.TIME_VALID + 1  # the times are stale: each count again
    used = _run(pacer, clock, seconds, 6)
    assert used[0] == 4 and sorted(used[:4]) == [1, 2, 3, 4] and used[4:] == [2, 2]


def test_pacer_judges_a_count_by_its_median_time():
    """Two threads beside a busy process: one lucky iteration in three. The least
    time would keep them; the median goes to the thread that is faster on average."""
    clock = _Clock()
    pacer = _warm(_pacing.Pacer(2, _Load(1.0), clock))
    for seconds in (0.008, 0.020, 0.020):
        pacer.record(2, seconds)
    pacer.record(1, 0.011)
    assert pacer._recent(2, clock.now) == 0.020
    assert pacer.next_count() == 1


def test_pacer_skips_the_first_iteration_after_a_change_of_count():
    clock = _Clock()
    pacer = _warm(_pacing.Pacer(2, _Load(1.0), clock))
    pacer.record(2, 0.012)
    pacer.record(1, 0.015)  # a count's first time is kept
    pacer.record(2, 0.030)  # back to two threads: the change's cost, not kept
    assert pacer._recent(1, clock.now) == 0.015
    assert pacer._recent(2, clock.now) == 0.012
    assert pacer.next_count() == 2


def test_pacer_returns_to_every_thread_when_the_load_goes():
    clock = _Clock()
    load = _Load(1.0)
    pacer = _warm(_pacing.Pacer(2, load, clock))
    assert _run(pacer, clock, {1: 0.01, 2: 0.02}, 4) == [2, 1, 1, 1]
    load.others = 0.1
    assert _run(pacer, clock, {1: 0.01, 2: 0.02}, 2) == [2, 2]


def _trial_gaps(pacer, clock, seconds_at, until):
    """Seconds between the iterations run at the slower count (seconds_at's
    largest) from now until ``until``."""
    slow = max(seconds_at, key=seconds_at.get)
    at = []
    while clock.now < until:
        if pacer.next_count() == slow:
            at.append(clock.now)
        count = pacer.next_count()
        clock.now += seconds_at[count]
        pacer.record(count, seconds_at[count])
    return np.diff(at)


def test_pacer_tries_a_slower_count_less_often_while_the_load_stays():
    """A process holding a core for minutes: each trial of two threads that finds
    them slower again doubles the time to the next (5, 5, 10, 20, 40 s at most;
    plus an iteration or two)."""
    clock = _Clock()
    pacer = _warm(_pacing.Pacer(2, _Load(1.0), clock))
    seconds = {1: 0.25, 2: 0.5}
    gaps = _trial_gaps(pacer, clock, seconds, clock.now + 160)
    valid, cap = _pacing.TIME_VALID, _pacing.TIME_VALID_MAX
    expected = [valid, valid, 2 * valid, 4 * valid, cap]
    assert len(gaps) >= 5
    assert np.allclose(gaps[:5], expected, atol=1.0), gaps
    assert np.all(gaps[4:] <= cap + 1.0)


def test_pacer_tries_again_at_time_valid_once_the_load_has_gone():
    clock, load = _Clock(), _Load(1.0)
    pacer = _warm(_pacing.Pacer(2, load, clock))
    seconds = {1: 0.25, 2: 0.5}
    assert len(_trial_gaps(pacer, clock, seconds, clock.now + 60)) >= 3  # backed off
    load.others = 0.1  # quiet: every thread, and the back-off forgotten
    assert _run(pacer, clock, seconds, 3) == [2, 2, 2]
    load.others = 1.0
    clock.now += _pacing.TIME_VALID_MAX  # both counts' times stale
    gaps = _trial_gaps(pacer, clock, seconds, clock.now + 12)
    assert len(gaps) and abs(gaps[0] - _pacing.TIME_VALID) < 1.0, gaps


def test_pacer_keeps_trying_at_time_valid_a_count_that_is_not_slower():
    """Tied (within TIE) or faster at its trial: no back-off."""
    clock = _Clock()
    pacer = _warm(_pacing.Pacer(2, _Load(1.0), clock))
    pacer.record(2, 0.50)
    pacer.record(1, 0.49)  # a tie: two threads are run, one is tried again later
    assert pacer.valid == {} and pacer.next_count() == 2
    clock.now += _pacing.TIME_VALID + 1
    pacer.record(2, 0.50)
    pacer.record(1, 0.80)  # a trial (no recent time), slower
    assert pacer.valid == {1: _pacing.TIME_VALID}


@contextlib.contextmanager
def _spinning():
    """Another process spinning on a core for the body (started 0.3 s before)."""
    import subprocess
    import sys
    import time

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # started
        yield
    finally:
        spinner.kill()
        spinner.wait()


def _meter_after_pause(window_others, runnable, own_share):
    """A LoadMeter's reading over a 0.5 s window in which others used
    ``window_others`` cores and this process ``own_share`` of one core, with
    ``runnable`` threads runnable at the end."""
    clock, machine, own = _Clock(), [50.0], [3.0]
    meter = _pacing.LoadMeter(
        lambda: machine[0], lambda: own[0], clock, runnable=lambda: runnable
    )
    meter.tick()
    clock.now += 0.5
    own[0] += 0.5 * own_share
    machine[0] += 0.5 * (window_others + own_share)
    meter.tick()
    return meter.others


def test_load_meter_after_a_pause_counts_only_what_is_runnable_now():
    """peers.py's 0.2 s pause after oneDAL's run on both cores: the window says
    1.5 cores busy, but oneDAL has finished (nothing runnable): not busy. A
    spinner is runnable at every instant and stays counted."""
    assert _meter_after_pause(1.5, 0, 0.02) == 0.0
    assert _meter_after_pause(1.5, 1, 0.02) == pytest.approx(1.0)
    assert _meter_after_pause(0.9, 3, 0.02) == pytest.approx(0.9)  # a cap only
    assert _meter_after_pause(0.9, None, 0.02) == pytest.approx(0.9)  # unknown
    # inside a fit (this process busy), /proc/loadavg would count its own
    # spinning threads: not consulted
    assert _meter_after_pause(1.5, 0, 1.0) == pytest.approx(1.5)


@pytest.mark.skipif(
    _pacing._runnable_others() is None, reason="no /proc/loadavg (not Linux)"
)
def test_runnable_others_sees_a_spinning_process():
    with _spinning():
        seen = [_pacing._runnable_others() for _ in range(5)]
    assert min(seen) >= 1


def test_load_meter_reads_once_per_window_and_subtracts_its_own_cpu():
    clock, machine, own, reads = _Clock(), [50.0], [3.0], []

    def read():
        reads.append(clock.now)
        return machine[0]

    meter = _pacing.LoadMeter(read, lambda: own[0], clock, runnable=lambda: None)
    meter.tick()
    for _ in range(4):  # iterations of 30 ms: this process 2 cores, others 1.5
        clock.now += 0.03
        machine[0] += 0.03 * 3.5
        own[0] += 0.03 * 2
        meter.tick()
    assert len(reads) == 2  # at the start and once LOAD_WINDOW (0.1 s) had passed
    assert meter.others == pytest.approx(1.5)
    clock.now += 0.12  # others alone for 0.12 s: 1 core
    machine[0] += 0.12
    meter.tick()
    assert meter.others == pytest.approx(1.0)
    clock.now += _pacing.LOAD_STALE + 1  # a long pause: measured afresh
    meter.tick()
    assert meter.others is None
    meter.runnable = lambda: 1  # ... or, after a pause, by what is runnable now
    clock.now += _pacing.LOAD_STALE + 1
    meter.tick()
    assert meter.others == 1.0


def test_load_meter_is_silent_without_proc_stat():
    clock = _Clock()
    meter = _pacing.LoadMeter(lambda: None, lambda: 0.0, clock)
    meter.tick()
    clock.now += 1.0
    meter.tick()
    assert meter.others is None


def test_pacer_on_one_thread_does_nothing_but_the_body():
    calls = []
    meter = _pacing.LoadMeter(lambda: calls.append(1), lambda: 0.0, _Clock())
    pacer = _pacing.Pacer(1, meter, _Clock())
    with pacer.iteration() as count:
        pass
    assert count == 1 and calls == [] and pacer.times == {}


@pytest.mark.skipif(
    _pacing._machine_busy_seconds() is None, reason="no /proc/stat (not Linux)"
)
def test_load_meter_sees_a_spinning_process():
    import time

    with _spinning():
        meter = _pacing.LoadMeter()
        meter.tick()
        time.sleep(max(0.3, _pacing.LOAD_WINDOW))
        meter.tick()
    assert meter.others is not None and meter.others >= 0.3


@two_threads
def test_em_under_load_runs_on_the_faster_count_with_the_same_result(monkeypatch):
    """Forced 'busy machine' (every iteration measured): EM and the k-means start
    time both thread counts and the fit equals the one on two threads bit for
    bit."""
    X = np.random.default_rng(0).normal(size=(2000, 3))
    monkeypatch.setattr(_runtime, "SERIAL_WORK", 0)
    kwargs = dict(n_components=3, n_jobs=2, random_state=0, max_iter=12, tol=0)
    monkeypatch.setattr(_pacing, "BUSY_CORES", float("inf"))
    steady = _record_threads(monkeypatch, fastgmm.engine.em, "block_em")
    reference = GaussianMixture(**kwargs).fit(X)
    assert set(steady) == {2}
    monkeypatch.setattr(_pacing, "BUSY_CORES", -1.0)
    monkeypatch.setattr(_pacing, "LOAD_WINDOW", 0.0)
    monkeypatch.setattr(_pacing, "_pacers", __import__("threading").local())
    monkeypatch.setattr(_pacing, "_machine_busy_seconds", lambda: 0.0)
    paced = _record_threads(monkeypatch, fastgmm.engine.em, "block_em")
    lloyd = _record_threads(monkeypatch, fastgmm.engine.init, "lloyd_run")
    gm = GaussianMixture(**kwargs).fit(X)
    assert set(paced) == {1, 2}
    assert len(lloyd) >= 3 and set(lloyd) == {1, 2}  # k-means is paced too
    np.testing.assert_array_equal(gm.means_, reference.means_)
    np.testing.assert_array_equal(gm.covariances_, reference.covariances_)
    assert gm.lower_bound_ == reference.lower_bound_


def test_pacing_keeps_times_per_problem_shape():
    one = _pacing.pacing("em", (1000, 3, 2, "full"))
    assert _pacing.pacing("em", (1000, 3, 2, "full")) is one
    assert _pacing.pacing("em", (200_000, 16, 16, "diag")) is not one


def test_em_fits_of_different_shapes_are_paced_apart(monkeypatch):
    """A series alternating two problems (a benchmark, a sweep): each has its own
    times, so the iterations of the larger never judge the thread counts of the
    smaller."""
    shapes = []

    def recording(work, shape=None):
        shapes.append(shape)
        return _pacing.pacing(work, shape)

    monkeypatch.setattr(fastgmm.engine.em, "pacing", recording)
    rng = np.random.default_rng(0)
    for n in (300, 500):
        GaussianMixture(2, max_iter=2, tol=0, random_state=0).fit(
            rng.normal(size=(n, 3))
        )
    assert shapes == [(300, 2, 3, "full"), (500, 2, 3, "full")]
