"""Tests of the built-in demo (fastgmm.cli.demo) and the command line (fastgmm.cli)."""

import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastgmm.cli import main
from fastgmm.cli.demo import run_demo

#: the directory holding the ``fastgmm`` package, put on the subprocesses' path
ROOT = Path(importlib.util.find_spec("fastgmm").origin).parent.parent
NUMBER = re.compile(r"-?\d+\.\d+")


def _run_cli(*args, timeout=900):
    """Run ``python -m fastgmm *args`` in a subprocess; return the completed run."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    env.pop("FASTGMM_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "fastgmm", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


@pytest.fixture(scope="module")
def demo():
    """Run the demo in-process once, without scikit-learn: (report text, results)."""
    out = io.StringIO()
    results = run_demo(out=out, compare=False, seed=0, picture=None)
    return out.getvalue(), results


def test_help_subprocess():
    run = _run_cli("--help", timeout=120)
    assert run.returncode == 0, run.stderr
    for word in ("usage: fastgmm", "demo", "warmup"):
        assert word in run.stdout
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["warmup", "-h"]])
def test_help_in_process(argv, capsys):
    assert main(argv) == 0
    assert "usage: fastgmm" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv", [["frobnicate"], [], ["demo", "--seed", "x"], ["demo", "--bogus"]]
)
def test_usage_error_in_process(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastgmm") and "error:" in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_subcommand_subprocess():
    run = _run_cli("frobnicate", timeout=120)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "error" in lines[0] and "frobnicate" in lines[0]
    assert run.stdout == ""


def test_failing_command_is_one_line(monkeypatch, capsys):
    import fastgmm.cli.demo

    def boom(**kwargs):
        raise ValueError("bad\ninput")

    monkeypatch.delenv("FASTGMM_DEBUG", raising=False)
    monkeypatch.setattr(fastgmm.cli.demo, "run_demo", boom)
    assert main(["demo", "--no-compare"]) == 1
    err = capsys.readouterr().err
    assert err == "fastgmm: error: ValueError: bad input\n"


@pytest.mark.slow
def test_demo_subprocess(tmp_path):
    run = _run_cli("demo", "--no-compare", "--seed", "0", "--no-picture")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    text = run.stdout
    for name in ("heights", "iris", "rfm", "pixels"):
        assert f"== {name}:" in text
    assert len(re.findall(r"BIC-chosen K \(K=1\.\.6\): \d", text)) == 3
    assert len(NUMBER.findall(text)) > 30
    assert "scikit-learn" not in text.split("== pixels:")[1]  # no comparison
    assert "picture" not in text
    assert len(text.splitlines()) <= 60
    assert run.stderr == ""  # not a terminal: no status line


@pytest.mark.slow
def test_demo_subprocess_compares_and_draws(tmp_path):
    """The whole demo as a new user runs it, with scikit-learn and the picture."""
    pytest.importorskip("matplotlib")
    picture = tmp_path / "demo.png"
    run = _run_cli("demo", "--picture", str(picture))
    assert run.returncode == 0, run.stderr
    text = run.stdout.split("== pixels:")[1]
    speedup = float(re.search(r"speed-up (\d+\.\d)x", text).group(1))
    assert speedup > 1.0  # fastgmm is faster on a million pixels, loaded or not
    diff = float(re.search(r"\|lower-bound difference\| (\S+);", text).group(1))
    assert diff < 1e-9
    assert "labels agree on 100.000% of pixels" in text
    assert f"picture: {picture}" in text and picture.stat().st_size > 10_000


@pytest.mark.slow
def test_run_demo_heights(demo):
    text, results = demo
    heights = results["heights"]
    for got, want in zip(heights["means"], heights["true_means"], strict=True):
        assert abs(got - want) < 2.0
    assert heights["true_means"] == [162.0, 176.0]
    assert all(0.35 < w < 0.65 for w in heights["weights"])
    assert all(5.0 < s < 8.5 for s in heights["stds"])
    assert heights["bic_k"] == 2
    assert "== heights:" in text


@pytest.mark.slow
def test_run_demo_iris_and_rfm(demo):
    text, results = demo
    assert results["iris"]["ari"] > 0.7
    assert re.search(r"adjusted Rand index vs species: 0\.\d{3}", text)
    assert results["rfm"]["ari"] > 0.5
    assert "champions" in text and "lost" in text
    for name in ("heights", "iris", "rfm"):
        res = results[name]
        assert res["bic_k"] in range(1, 7)
        assert 0.0 <= res["low_conf"] <= 1.0
        assert res["time"] > 0
    assert "sk_time" not in results["pixels"] and "picture" not in results["pixels"]
    assert results["pixels"]["ari"] > 0.95  # the eight painted regions, recovered


# ------------------------------------------------------------- the million pixels
def test_make_photo_is_seeded_and_has_every_region():
    from fastgmm.cli.demo_image import REGIONS, make_photo

    image, regions = make_photo(120, seed=3)
    again, _ = make_photo(120, seed=3)
    assert image.shape == (120, 120, 3) and image.dtype == np.uint8
    assert regions.shape == (120, 120)
    assert set(np.unique(regions)) == set(range(len(REGIONS)))
    np.testing.assert_array_equal(image, again)
    assert not np.array_equal(image, make_photo(120, seed=4)[0])


def test_side_by_side_follows_scikit_learns_em_path():
    """From the same start, the same EM iterations: equal lower bounds and labels."""
    from fastgmm.cli.demo_image import ITERATIONS, _start, make_photo, side_by_side

    image, _ = make_photo(200, seed=0)
    X = image.reshape(-1, 3) / 255.0
    steps = []
    res = side_by_side(X, _start(X, 8, 0), 8, 0, steps.append)
    assert res["lower_bound"] == pytest.approx(res["sk_lower_bound"], rel=1e-12)
    assert res["agree"] == 1.0
    assert len(res["fast_times"]) == 2 and min(res["fast_times"]) > 0
    mean_fast = sum(res["fast_times"]) / 2
    assert res["speedup"] == pytest.approx(res["sk_time"] / mean_fast)
    assert any(f"{ITERATIONS} EM iterations" in s for s in steps if s)


def test_side_by_side_report_says_what_was_measured():
    from fastgmm.cli.demo_image import _report_side_by_side

    lines = []
    res = {
        "fast_times": [0.011, 0.013],
        "sk_time": 0.6,
        "lower_bound": 4.290687822289,
        "sk_lower_bound": 4.290687822291,
        "agree": 1.0,
        "speedup": 50.0,
    }
    _report_side_by_side(lines.append, res)
    text = "\n".join(lines)
    assert "speed-up 50.0x" in text and "0.011 s, 0.013 s" in text
    assert "|lower-bound difference| 2.0e-12" in text
    assert "same start" in text and "tol=0" in text


def test_run_pixels_small_with_and_without_matplotlib(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from fastgmm.cli.demo_image import run_pixels

    lines, steps = [], []
    picture = tmp_path / "p.png"
    res = run_pixels(lines.append, steps.append, False, 0, str(picture), size=150)
    assert res["picture"] == str(picture) and picture.stat().st_size > 1000
    assert steps[-1] is None  # the status line is cleared at the end
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # "not installed"
    lines = []
    res = run_pixels(lines.append, steps.append, False, 0, str(tmp_path / "q.png"), 150)
    assert res["picture"] is None and not (tmp_path / "q.png").exists()
    assert any("skipped" in line and "fastgmm[plot]" in line for line in lines)


def test_demo_options(monkeypatch):
    import fastgmm.cli.demo

    seen = {}
    monkeypatch.setattr(fastgmm.cli.demo, "run_demo", lambda **kw: seen.update(kw))
    assert main(["demo", "--no-compare", "--no-picture", "--seed", "3"]) == 0
    assert seen["compare"] is False and seen["picture"] is None and seen["seed"] == 3
    assert main(["demo", "--picture", "x.png"]) == 0
    assert seen["picture"] == "x.png" and seen["compare"] is True
    assert main(["demo"]) == 0 and seen["picture"] == "fastgmm-demo.png"


@pytest.mark.parametrize("cached", [True, False])
def test_demo_says_first_run_compiles_only_when_it_does(monkeypatch, cached):
    import fastgmm._jit
    import fastgmm._warmup
    import fastgmm.cli.demo as demo
    import fastgmm.cli.demo_image

    monkeypatch.setattr(fastgmm._jit, "is_cached", lambda kernel: cached)

    def compile_kernels(status, dtypes, meanwhile):
        meanwhile()
        return 0

    monkeypatch.setattr(fastgmm._warmup, "compile_kernels", compile_kernels)
    for name in ("_heights", "_iris", "_rfm"):
        monkeypatch.setattr(demo, name, lambda seed, say: {})
    monkeypatch.setattr(fastgmm.cli.demo_image, "run_pixels", lambda *a, **kw: {})
    monkeypatch.setattr(fastgmm.cli.demo_image, "prepare", lambda *a, **kw: None)
    lines = []
    run_demo(out=lines.append, compare=False, picture=None)
    compiling = [line for line in lines if line.startswith("First run: compiling")]
    assert len(compiling) == (0 if cached else 1)


def test_run_demo_prepares_while_the_second_process_compiles(monkeypatch):
    """The imports and the photograph come from prepare(), run by compile_kernels
    between this process's compiles and waiting for the second process; run_pixels
    gets the photograph."""
    import fastgmm._warmup
    import fastgmm.cli.demo as demo
    import fastgmm.cli.demo_image

    order, seen = [], {}

    def prepare(seed, compare):
        order.append("prepare")
        return ("image", seed)

    def compile_kernels(status, dtypes, meanwhile):
        assert dtypes == ("float64",)
        order.append("compile here")
        meanwhile()
        order.append("wait for the second process")
        return 2

    monkeypatch.setattr(fastgmm.cli.demo_image, "prepare", prepare)
    monkeypatch.setattr(fastgmm._warmup, "compile_kernels", compile_kernels)
    for name in ("_heights", "_iris", "_rfm"):
        monkeypatch.setattr(demo, name, lambda seed, say: {})
    monkeypatch.setattr(
        fastgmm.cli.demo_image, "run_pixels", lambda *a, **kw: seen.update(kw) or {}
    )
    run_demo(out=[].append, compare=False, picture=None, seed=5)
    assert seen["photo"] == ("image", 5)
    assert order == ["compile here", "prepare", "wait for the second process"]


def test_prepare_paints_the_photograph():
    from fastgmm.cli.demo_image import make_photo, prepare

    image, regions = prepare(3, size=40, compare=False)
    want, want_regions = make_photo(40, seed=3)
    np.testing.assert_array_equal(image, want)
    np.testing.assert_array_equal(regions, want_regions)


def test_side_by_side_takes_scikit_learns_labels_from_its_timed_fit(monkeypatch):
    """scikit-learn's fit is its fit_predict: the labels come with the timed fit,
    no second pass of scikit-learn over the pixels (predict) afterwards."""
    import sklearn.mixture

    from fastgmm.cli.demo_image import _start, make_photo, side_by_side

    def no_predict(self, X):
        raise AssertionError("scikit-learn's predict called")

    monkeypatch.setattr(sklearn.mixture.GaussianMixture, "predict", no_predict)
    image, _ = make_photo(200, seed=0)
    X = image.reshape(-1, 3) / 255.0
    res = side_by_side(X, _start(X, 8, 0), 8, 0, lambda text: None)
    assert res["agree"] == 1.0
    assert res["lower_bound"] == pytest.approx(res["sk_lower_bound"], rel=1e-12)
