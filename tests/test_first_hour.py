"""A new user's first hour: tab completion, the compile notice, ``fastgmm warmup``
covering every path, and no silent stretch while kernels compile on a terminal."""

import io
import os
import re
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastgmm
from fastgmm.cli.compiling import CompileNotice

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ tab completion
def test_dir_lists_the_lazy_public_api_without_importing_it():
    code = textwrap.dedent(
        """
        import sys, fastgmm
        names = dir(fastgmm)
        print(" ".join(names))
        print("numba" in sys.modules, "sklearn" in sys.modules)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    names = set(out[0].split())
    assert set(fastgmm.__all__) <= names
    for name in ("GaussianMixture", "select", "segment", "warmup", "threads", "load"):
        assert name in names
    for module in ("inspection", "plotting", "scaling", "exceptions", "selection"):
        assert module in names
    assert out[1] == "False False"  # listing imported nothing heavy


def test_every_public_name_in_dir_resolves():
    for name in dir(fastgmm):
        if not name.startswith("_"):
            assert getattr(fastgmm, name) is not None, name
    assert fastgmm.inspection.summary is not None  # a submodule, on first access
    assert fastgmm.exceptions.DegenerateComponentWarning is not None
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        fastgmm.nonsense  # noqa: B018


# --------------------------------------------------------------- the compile notice
class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_notice_redraws_while_a_kernel_compiles_and_sums_up():
    term = _Terminal()
    with CompileNotice(stream=term, interval=0.02) as notice:
        notice.event("start", "passes.mixture_pass", 0.0)
        time.sleep(0.3)
        notice.event("end", "passes.mixture_pass", 0.3)
    text = term.getvalue()
    draws = text.count("compiling passes.mixture_pass")
    assert draws >= 5  # redrawn while compiling: no silent stretch
    assert "first use only, then cached" in text
    last = text.strip().splitlines()[-1]
    assert last.startswith("fastgmm: compiled 1 kernel in 0.3 s (")


def test_notice_is_silent_when_not_a_terminal_or_nothing_compiles():
    pipe = io.StringIO()  # not a terminal
    with CompileNotice(stream=pipe, interval=0.01) as notice:
        notice.event("start", "kmeans.kmeans_pass", 0.0)
        time.sleep(0.05)
        notice.event("end", "kmeans.kmeans_pass", 0.05)
    assert pipe.getvalue() == "" and notice.compiled == ["kmeans.kmeans_pass"]
    term = _Terminal()
    with CompileNotice(stream=term):
        pass
    assert term.getvalue() == ""


def test_notice_status_line_between_compiles_and_println():
    term = _Terminal()
    with CompileNotice(stream=term, interval=0.02) as notice:
        notice.status = "fastgmm demo: scikit-learn: 3 EM iterations"
        time.sleep(0.15)
        notice.println("a report line", stream=term)
        notice.status = None
    text = term.getvalue()
    assert text.count("scikit-learn: 3 EM iterations") >= 3
    assert "\na report line\n" in text.replace("\r", "\n")
    assert "compiled" not in text  # nothing compiled: no summary


def test_notice_hears_real_compiles(monkeypatch):
    """A kernel compiled inside the notice is reported; one already compiled is not."""
    monkeypatch.setattr("fastgmm._jit.CACHE", False)
    from fastgmm._jit import kernel

    @kernel(inputs="x")
    def total(x):
        return x.sum()

    term = _Terminal()
    with CompileNotice(stream=term, interval=0.05) as notice:
        total(np.ones(3))
        total(np.ones(4))
    assert len(notice.compiled) == 1 and notice.compiled[0].endswith("total")
    assert "fastgmm: compiled 1 kernel in" in term.getvalue()


# ------------------------------------------------------------------------ warmup
def _signatures():
    """{kernel name: set of compiled signatures} of every fastgmm kernel loaded."""
    from fastgmm._jit import KernelDispatcher

    out = {}
    for name, module in list(sys.modules.items()):
        if name.startswith("fastgmm.kernels") and module is not None:
            for attr, obj in vars(module).items():
                if isinstance(obj, KernelDispatcher):
                    out[f"{name}.{attr}"] = set(obj.signatures)
    return out


def _a_default_session():
    """What a user does first: fits (Bayesian ones too), predictions, selection,
    segmentation, for
    float32 and float64 data, every covariance model, weights, many features."""
    from fastgmm import BayesianGaussianMixture, GaussianMixture, segment, select

    rng = np.random.default_rng(7)
    for dtype in (np.float64, np.float32):
        for d in (2, 20, 60):  # small d, a GEMM per block, dsyrk
            X = (rng.normal(size=(700, d)) + (np.arange(700) % 3)[:, None] * 3).astype(
                dtype
            )
            for cov in ("full", "tied", "diag", "spherical", "EEI", "EII"):
                for w in (None, rng.uniform(0.1, 3, len(X))):
                    gm = GaussianMixture(3, covariance_type=cov, random_state=0)
                    gm.fit(X, sample_weight=w)
                    gm.predict(X), gm.predict_proba(X), gm.score_samples(X)
                    gm.score(X), gm.bic(X), gm.sample(5)
        for cov in ("full", "diag"):
            bgm = BayesianGaussianMixture(
                n_components=3, covariance_type=cov, random_state=0
            )
            bgm.fit(X).predict_proba(X)
        for init in ("k-means++", "random", "random_from_data"):
            GaussianMixture(2, init_params=init, random_state=0).fit(X)
        select(X[:, :3], range(1, 4), ("full", "diag"), random_state=0)
        GaussianMixture(2, random_state=0).partial_fit(X)
    image = rng.integers(0, 256, size=(40, 30, 3)).astype(np.uint8)
    segment(image, 3, return_image=True, return_confidence=True)
    segment(image, range(2, 4), colour_space="lab", xy=0.5, ignore=image[..., 1] > 250)


def test_warmup_covers_every_path_a_default_install_uses():
    """After warmup(), a broad first session compiles (or loads) nothing new."""
    from fastgmm._warmup import STEPS

    steps = []
    fastgmm.warmup(progress=lambda *step: steps.append(step))
    n = len(STEPS)
    assert [(s[0], s[1], s[3] is None) for s in steps] == [
        (i, n, before) for i in range(1, n + 1) for before in (True, False)
    ]
    before = _signatures()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _a_default_session()
    after = _signatures()
    new = {k: after[k] - before.get(k, set()) for k in after}
    assert not {k: v for k, v in new.items() if v}, "warmup missed these"


def test_cli_warmup_reports_what_it_did(capsys):
    from fastgmm.cli import main

    assert main(["warmup", "-v"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("fastgmm: warming up the kernels")
    assert "[1/6]" in out and "[6/6]" in out
    assert "fastgmm: kernels ready in" in out.splitlines()[-1]


@pytest.mark.parametrize(
    "dtypes, away", [(("float64",), "mixture"), (("float64", "float32"), "kmeans")]
)
def test_compile_kernels_sends_the_longer_compile_to_the_second_process(
    monkeypatch, dtypes, away
):
    """One dtype: the mixture pass (the longer compile) in the second process, the
    k-means kernels here; two dtypes: the other way round. Here: this process's
    compile, then meanwhile(), then the wait, then the other kernels (loaded)."""
    import fastgmm._jit
    import fastgmm._warmup as warmup

    events = []

    class Child:
        def __init__(self, argv, **kwargs):
            events.append(("spawn", argv[-1]))

        def wait(self):
            events.append(("wait",))

    monkeypatch.setattr(fastgmm._jit, "is_cached", lambda kernel: False)
    monkeypatch.setattr(subprocess, "Popen", Child)
    monkeypatch.setattr(warmup, "_compile_mixture", lambda: events.append("mixture"))
    monkeypatch.setattr(
        warmup, "_compile_kmeans", lambda d: events.append(("kmeans", d))
    )
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    statuses = []
    n = warmup.compile_kernels(
        status=statuses.append,
        dtypes=dtypes,
        meanwhile=lambda: events.append("meanwhile"),
    )
    assert n == 2
    mixture, kmeans = "mixture", ("kmeans", dtypes)
    here, there = (kmeans, mixture) if away == "mixture" else (mixture, kmeans)
    assert events[0][0] == "spawn"
    expected_code = "_compile_mixture()" if away == "mixture" else "_compile_kmeans("
    assert expected_code in events[0][1]
    assert events[1:] == [here, "meanwhile", ("wait",), there]
    assert statuses[0] == f"compiling {warmup.COMPILES[away]} in a second process"
    assert statuses[-1] is None


def test_compile_kernels_stops_the_second_process_when_meanwhile_fails(monkeypatch):
    import fastgmm._jit
    import fastgmm._warmup as warmup

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    monkeypatch.setattr(fastgmm._jit, "is_cached", lambda kernel: False)
    monkeypatch.setattr(subprocess, "Popen", lambda argv, **kwargs: child)
    monkeypatch.setattr(warmup, "_compile_kmeans", lambda dtypes: None)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)

    def meanwhile():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        warmup.compile_kernels(dtypes=("float64",), meanwhile=meanwhile)
    assert child.poll() is not None  # killed and reaped, not left compiling


def test_compile_kernels_calls_meanwhile_when_cached():
    """With the kernels cached (or loaded) there is no second process; meanwhile()
    is still called once."""
    from fastgmm._warmup import compile_kernels

    compile_kernels(dtypes=("float64",))  # compile or load, in this process
    calls = []
    assert compile_kernels(dtypes=("float64",), meanwhile=lambda: calls.append(1)) == 0
    assert calls == [1]


# ----------------------------------------------- a first run in a terminal (slow)
PTY_RUN = """
import os, pty, select, subprocess, sys, time, json
master, slave = pty.openpty()
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdin=slave, stdout=slave, stderr=slave)
os.close(slave)
last, gaps, text = t0, [], b""
while True:
    ready, _, _ = select.select([master], [], [], 0.05)
    if ready:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        now = time.perf_counter()
        gaps.append(now - last)
        last, text = now, text + data
    elif proc.poll() is not None:
        break
proc.wait()
print(json.dumps({"rc": proc.returncode, "gaps": gaps, "total": last - t0,
                  "text": text.decode(errors="replace")}))
"""


@pytest.mark.slow
def test_a_cold_warmup_in_a_terminal_is_never_silent_for_long(tmp_path):
    """``fastgmm warmup`` with an empty cache, on a terminal: the status line is
    redrawn while kernels compile, so no stretch between the first and the last
    output is silent for long (2 s on a quiet machine; 5 s allowed under load)."""
    import json

    env = dict(os.environ, FASTGMM_CACHE_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-c", PTY_RUN, sys.executable, "-m", "fastgmm", "warmup"]
    out = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=1800, check=True
    )
    run = json.loads(out.stdout)
    assert run["rc"] == 0, run["text"][-2000:]
    assert "compiling passes.mixture_pass" in run["text"]
    assert re.search(r"kernels ready in [\d.]+ s: compiled \d+ kernels", run["text"])
    assert max(run["gaps"][1:]) < 5.0, sorted(run["gaps"])[-5:]
