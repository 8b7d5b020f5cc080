"""Tests of the built-in demo (fastgmm.cli.demo) and the command line (fastgmm.cli)."""

import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

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
    results = run_demo(out=out, compare=False, seed=0)
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
def test_demo_subprocess():
    run = _run_cli("demo", "--no-compare", "--seed", "0")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    text = run.stdout
    for name in ("heights", "iris", "rfm"):
        assert f"== {name}:" in text
    assert len(re.findall(r"BIC-chosen K \(K=1\.\.6\): \d", text)) == 3
    assert len(NUMBER.findall(text)) > 30
    assert "sklearn" not in text  # no comparison columns
    assert len(text.splitlines()) <= 60


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
    for res in results.values():
        assert res["bic_k"] in range(1, 7)
        assert 0.0 <= res["low_conf"] <= 1.0
        assert res["time"] > 0 and "sk_time" not in res
