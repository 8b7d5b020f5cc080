"""Processes and signals (issue 12): forked workers, Ctrl-C during a fit.

Slow tier: these run subprocesses, and a forked child compiles the serial twins of
the parallel kernels on first use (cached afterwards). Every wait has a timeout, so
a regression fails instead of hanging.
"""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastgmm
from fastgmm import GaussianMixture

pytestmark = pytest.mark.slow

ROOT = Path(fastgmm.__file__).resolve().parent.parent
#: seconds a forked child may take, its first call compiling the serial kernels
CHILD_TIMEOUT = 600


def _fit_in_worker(seed):
    gen = np.random.default_rng(seed)
    X = np.vstack([gen.normal(size=(3000, 3)), gen.normal(size=(3000, 3)) + 3])
    gm = GaussianMixture(3, random_state=seed).fit(X)
    return gm.means_, gm.score_samples(X[:100]), gm.predict(X)


def test_fork_pool_after_fitting_in_the_parent():
    """After fastgmm ran on OpenMP threads here, forked workers calling fastgmm
    finish (GNU OpenMP cannot run in a fork: they run serial kernels) and agree
    bitwise with the parent."""
    expected = [_fit_in_worker(seed) for seed in (0, 1)]  # threads started here
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(2)
    try:
        results = pool.map_async(_fit_in_worker, (0, 1)).get(timeout=CHILD_TIMEOUT)
    finally:
        pool.terminate()
        pool.join()
    for got, want in zip(results, expected):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_serial_twins_equal_the_parallel_kernels(monkeypatch):
    """In a process flagged as a fork of an OpenMP process every parallel kernel
    runs its serial twin: the same results, bitwise."""
    from fastgmm import _runtime

    gen = np.random.default_rng(5)
    X = gen.normal(size=(5000, 4)) + 2 * (gen.random((5000, 1)) < 0.3)
    sw = gen.uniform(0.5, 2.0, 5000)
    fits = []
    for flag in (False, True):
        monkeypatch.setattr(_runtime, "_FORKED_FROM_OPENMP", [flag])
        assert _runtime.threads_unsafe() is flag
        gm = GaussianMixture(2, covariance_type="full", random_state=0)
        gm.fit(X, sample_weight=sw)
        fits.append((gm.means_, gm.covariances_, gm.predict_proba(X)))
    for a, b in zip(*fits):
        np.testing.assert_array_equal(a, b)


_INTERRUPTED_FIT = """
import time, warnings
import numpy as np
from fastgmm import GaussianMixture

warnings.simplefilter("ignore")
X = np.random.default_rng(0).normal(size=(2_000_000, 4))
start = dict(means_init=X[:8], weights_init=np.full(8, 1 / 8), tol=0)
gm = GaussianMixture(8, max_iter=3, **start).fit(X[:5000])
before = {k: np.copy(v) for k, v in vars(gm).items() if k.endswith("_")}
gm.max_iter = 10_000
print("fitting", flush=True)
try:
    gm.fit(X)
except KeyboardInterrupt:
    print("interrupted", time.time(), flush=True)
    after = {k: v for k, v in vars(gm).items() if k.endswith("_")}
    same = after.keys() == before.keys() and all(
        np.array_equal(after[k], v) for k, v in before.items()
    )
    print("unchanged", same, flush=True)
"""


def _python(code, *args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    env.pop("FASTGMM_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, *code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("delay", [1.5, 3.0])
def test_ctrl_c_during_fit(delay):
    """SIGINT mid-fit: a KeyboardInterrupt (not a SystemError), within about one
    pass over the data, and the estimator keeps its previous fit."""
    proc = _python(["-c", _INTERRUPTED_FIT])
    try:
        assert proc.stdout.readline().strip() == "fitting", proc.stderr.read()
        time.sleep(delay)  # inside EM (a pass over 2M x 4 takes ~0.1 s)
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert "interrupted" in lines, err
    assert float(lines["interrupted"]) - sent < 5.0
    assert lines["unchanged"] == "True"
    assert "SystemError" not in err


def test_cli_exits_130_on_ctrl_c(tmp_path):
    """The command line reports an interrupted fit and exits with status 130."""
    X = np.random.default_rng(0).normal(size=(1_000_000, 4))
    np.save(tmp_path / "big.npy", X)
    args = ["fit", str(tmp_path / "big.npy"), "-k", "8", "--max-iter", "100000"]
    args += ["--tol", "0", "--init-params", "random", "-o", str(tmp_path / "m.fgmm")]
    proc = _python(["-m", "fastgmm"], *args)
    try:
        time.sleep(8)  # start-up, loading the kernels, then EM
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "SystemError" not in err
    assert not (tmp_path / "m.fgmm").exists()


def test_fork_while_another_thread_holds_the_blas_lock():
    """A lock held by another thread at the fork stays held in the child: the child
    starts the BLAS pin's lock afresh, so its fastgmm calls do not deadlock."""
    from fastgmm import _runtime

    X = np.random.default_rng(0).normal(size=(500, 2))
    with _runtime._blas_lock:  # as if another thread were entering threads()
        pid = os.fork()
        if pid == 0:  # the child: exit 0 only if a fit and a prediction finish
            code = 1
            try:
                GaussianMixture(2, random_state=0).fit(X).predict(X)
                code = 0
            finally:
                os._exit(code)
    deadline = time.time() + CHILD_TIMEOUT
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child deadlocked")
    assert os.waitstatus_to_exitcode(status) == 0
