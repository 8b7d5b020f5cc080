"""Threads at run time: the serial cut-off for small problems (fastgmm._runtime)."""

import numba
import numpy as np
import pytest

import fastgmm.engine.em
import fastgmm.engine.score
from fastgmm import GaussianMixture, _runtime
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
