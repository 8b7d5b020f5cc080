"""The fit / predict / select / sample / bench subcommands, run as a person would.

The main flows run ``python -m fastgmm`` in a subprocess on small files; variations
run in-process through :func:`fastgmm.cli.main`, which is the same code.
"""

import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fastgmm
from fastgmm.cli import bench as _bench
from fastgmm.cli import main
from fastgmm.cli.data import read_data as _read_data
from fastgmm.cli.progress import CLIMonitor, Progress
from fastgmm.scaling import Standardizer

ROOT = Path(importlib.util.find_spec("fastgmm").origin).parent.parent


def read_data(path, **kwargs):
    """(X, names) of DATA."""
    table = _read_data(path, **kwargs)
    return table.X, table.names


def run_cli(*args, cwd):
    """``python -m fastgmm *args`` in a subprocess (stdout/stderr not a terminal)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    env.pop("FASTGMM_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "fastgmm", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
        check=False,
    )


def assert_one_line_error(run, *words):
    assert run.returncode == 1, run
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("fastgmm: error:")
    for word in words:
        assert word in lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Three 2-D clusters in different units, written as CSV (with a text column),
    headerless CSV, TSV and .npy; plus the fitted model from ``fastgmm fit``."""
    d = tmp_path_factory.mktemp("cli")
    gen = np.random.default_rng(4)
    centres = np.array([[0.0, 0.0], [4.0, 1.0], [1.0, 5.0]])
    X = np.vstack([c + gen.normal(size=(60, 2)) for c in centres]) * [1.0, 250.0]
    rows = [
        f'{i},{float(a)!r},{float(b)!r},"Town {i % 4}"\n' for i, (a, b) in enumerate(X)
    ]
    (d / "data.csv").write_text("id,height,price,city\n" + "".join(rows))
    np.savetxt(d / "plain.csv", X, delimiter=",")
    np.savetxt(d / "data.tsv", X, delimiter="\t", header="height\tprice", comments="")
    np.save(d / "data.npy", X)
    run = run_cli(
        "fit",
        "data.csv",
        "-k",
        3,
        "--columns",
        "height,price",
        "--scale",
        "-o",
        "model.fgmm",
        "--labels",
        "labels.csv",
        "--proba",
        "proba.npy",
        cwd=d,
    )
    return d, X, run


def test_fit_writes_model_sidecar_and_outputs(files):
    d, X, run = files
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # no progress line when stderr is not a terminal
    model = fastgmm.load(d / "model.fgmm")
    side = json.loads((d / "model.fgmm.meta.json").read_text())
    assert (
        side["columns"] == ["height", "price"] and side["column_spec"] == "height,price"
    )
    scaler = Standardizer.from_dict(side["scaler"])
    np.testing.assert_allclose(scaler.mean_, X.mean(axis=0))
    Z = scaler.transform(X)
    labels = np.loadtxt(d / "labels.csv", skiprows=1, dtype=int)
    np.testing.assert_array_equal(labels, model.predict(Z))
    np.testing.assert_allclose(np.load(d / "proba.npy"), model.predict_proba(Z))
    np.testing.assert_allclose(
        side["outlier_threshold"], np.percentile(model.score_samples(Z), 1)
    )
    assert "wrote model.fgmm" in run.stdout and "original units" in run.stdout
    assert "price" in run.stdout and "3 components" in run.stdout


def test_fit_top_components(files):
    """--top-components reaches the fit: the saved model is the estimator's top-C
    fit with the command's settings (seed 0)."""
    d, X, _ = files
    out = d / "top.fgmm"
    argv = ["fit", str(d / "data.npy"), "-k", "3", "--covariance-type", "diag"]
    assert main([*argv, "--top-components", "1", "-o", str(out), "-q"]) == 0
    model = fastgmm.load(out)
    cold = fastgmm.GaussianMixture(
        3, covariance_type="diag", top_components=1, random_state=0
    ).fit(X)
    assert model.top_components == 1
    np.testing.assert_array_equal(model.means_, cold.means_)
    assert model.lower_bound_ == cold.lower_bound_


def test_predict_csv_to_stdout(files):
    d, X, _ = files
    run = run_cli("predict", "model.fgmm", "data.csv", cwd=d)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    # the text column (city) is kept, first; the numeric id is not a text column
    assert lines[0] == "city,label,log_density,outlier,confidence,p0,p1,p2"
    assert [line.split(",")[0] for line in lines[1:4]] == ["Town 0", "Town 1", "Town 2"]
    table = np.loadtxt([line.split(",", 1)[1] for line in lines[1:]], delimiter=",")
    assert table.shape == (len(X), 7)
    model = fastgmm.load(d / "model.fgmm")
    side = json.loads((d / "model.fgmm.meta.json").read_text())
    Z = Standardizer.from_dict(side["scaler"]).transform(X)
    np.testing.assert_array_equal(table[:, 0], model.predict(Z))
    np.testing.assert_allclose(table[:, 1], model.score_samples(Z), rtol=1e-8)
    np.testing.assert_array_equal(table[:, 2], table[:, 1] < side["outlier_threshold"])
    np.testing.assert_allclose(table[:, 4:].sum(axis=1), 1.0, rtol=1e-8)
    np.testing.assert_allclose(table[:, 3], table[:, 4:].max(axis=1))


def test_predict_npy_npz_and_chunks(files, capsys):
    d, X, _ = files
    out = d / "pred.npz"
    assert (
        main(
            [
                "predict",
                str(d / "model.fgmm"),
                str(d / "data.npy"),
                "-o",
                str(out),
                "--chunk-size",
                "7",
            ]
        )
        == 0
    )
    z = np.load(out)
    assert sorted(z.files) == ["confidence", "label", "log_density", "outlier", "p"]
    assert z["p"].shape == (len(X), 3) and z["label"].dtype == np.int64
    assert (
        main(["predict", str(d / "model.fgmm"), str(d / "data.npy"), "--no-proba"]) == 0
    )
    text = capsys.readouterr().out.splitlines()
    assert text[0] == "label,log_density,outlier,confidence"
    np.testing.assert_array_equal(np.loadtxt(text[1:], delimiter=",")[:, 0], z["label"])


def test_predict_threshold_option(files, capsys):
    d, _, _ = files
    assert (
        main(
            [
                "predict",
                str(d / "model.fgmm"),
                str(d / "data.csv"),
                "--no-proba",
                "--threshold",
                "1e9",
                "--keep",
                "none",
                "-q",
            ]
        )
        == 0
    )
    table = np.loadtxt(capsys.readouterr().out.splitlines()[1:], delimiter=",")
    assert table[:, 2].all()


def test_select_prints_table_and_saves_curve(files):
    d, _, _ = files
    run = run_cli(
        "select",
        "plain.csv",
        "--k-range",
        "1-4",
        "--covariance-types",
        "full,diag",
        "--scale",
        "--plot",
        "curve.png",
        "--table",
        "t.csv",
        "-o",
        "best.fgmm",
        cwd=d,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split()[:5] == ["K", "covariance", "BIC", "AIC", "ICL"]
    assert sum(line.lstrip().startswith("*") for line in lines) == 1
    assert "best by BIC: K=3" in run.stdout
    assert (d / "curve.png").stat().st_size > 10_000
    rows = (d / "t.csv").read_text().splitlines()
    assert (
        rows[0].startswith("n_components,covariance_type,bic,aic,icl")
        and len(rows) == 9
    )
    assert fastgmm.load(d / "best.fgmm").n_components == 3


def test_select_without_matplotlib(files, monkeypatch, capsys, tmp_path):
    d, _, _ = files
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    monkeypatch.chdir(tmp_path)
    argv = ["select", str(d / "plain.csv"), "--k-range", "2-3", "-q"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "matplotlib is not installed" in err and not list(tmp_path.iterdir())
    assert main([*argv, "--plot", "c.png"]) == 1
    assert "--plot needs matplotlib" in capsys.readouterr().err


def test_sample_in_original_units(files, capsys):
    d, X, _ = files
    run = run_cli(
        "sample", "model.fgmm", "-n", 2000, "--seed", 1, "--with-labels", cwd=d
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "height,price,component"
    table = np.loadtxt(lines[1:], delimiter=",")
    assert table.shape == (2000, 3)
    np.testing.assert_allclose(
        table[:, :2].mean(axis=0), X.mean(axis=0), rtol=0.1, atol=0.2
    )
    assert set(np.unique(table[:, 2])) <= {0, 1, 2}
    argv = [
        "sample",
        str(d / "model.fgmm"),
        "-n",
        "2000",
        "--seed",
        "1",
        "--with-labels",
    ]
    assert main(argv) == 0
    assert capsys.readouterr().out == run.stdout  # seeded
    assert (
        main(["sample", str(d / "model.fgmm"), "-n", "5", "-o", str(d / "s.npy")]) == 0
    )
    assert np.load(d / "s.npy").shape == (5, 2)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["fit", "missing.csv", "-k", "2", "-o", "m.fgmm"],
            ["missing.csv", "no such file"],
        ),
        (
            ["fit", "data.csv", "-k", "2", "--columns", "price,city", "-o", "m.fgmm"],
            ["column 'city'", "not numeric", "line 2", "--columns"],
        ),
        (
            ["predict", "data.csv", "plain.csv"],
            ["ModelFileError", "not a readable fastgmm model"],
        ),
        (
            ["fit", "data.npy", "-k", "2", "--top-components", "1", "-o", "t.fgmm"],
            ["top_components needs a diagonal covariance model", "'full'"],
        ),
        (
            ["fit", "data.npy", "-k", "2", "--top-components", "1", "--bayesian"]
            + ["-o", "t.fgmm"],
            ["--top-components", "--bayesian"],
        ),
        (
            ["predict", "newer.fgmm", "plain.csv"],
            ["ModelFileError", "newer", "upgrade"],
        ),
    ],
)
def test_errors_are_one_line(files, args, words):
    d, _, _ = files
    if not (d / "newer.fgmm").exists():
        _write_newer_model(d / "model.fgmm", d / "newer.fgmm")
    run = run_cli(*args, cwd=d)
    assert_one_line_error(run, *words)
    assert run.stdout == ""


def _write_newer_model(src, dst):
    """A copy of a model file claiming a future format version."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            blob = zin.read(item.filename)
            if item.filename == "meta.json":
                meta = json.loads(blob)
                meta["format_version"] = 99
                blob = json.dumps(meta).encode()
            zout.writestr(item, blob)


def test_errors_in_process(files, capsys, monkeypatch):
    d, _, _ = files
    monkeypatch.delenv("FASTGMM_DEBUG", raising=False)
    cases = [
        (
            [
                "predict",
                str(d / "model.fgmm"),
                str(d / "data.csv"),
                "--columns",
                "price",
            ],
            "fitted on height, price",
        ),
        (
            ["fit", str(d / "plain.csv"), "-k", "2", "--columns", "nope", "-o", "x"],
            "no column named 'nope'",
        ),
        (
            ["select", str(d / "plain.csv"), "--covariance-types", "full,banded"],
            "banded",
        ),
        (["fit", str(d), "-k", "2", "-o", "x"], "is a directory"),
    ]
    for argv, words in cases:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert (
            err.startswith("fastgmm: error:") and words in err and err.count("\n") == 1
        )


def test_sidecar_must_match_model(files, tmp_path, capsys):
    d, _, _ = files
    (tmp_path / "m.fgmm").write_bytes((d / "best.fgmm").read_bytes())
    (tmp_path / "m.fgmm.meta.json").write_text((d / "model.fgmm.meta.json").read_text())
    assert main(["predict", str(tmp_path / "m.fgmm"), str(d / "plain.csv")]) == 1
    assert "belongs to another model" in capsys.readouterr().err


def test_readers(files):
    d, X, _ = files
    for name in ("plain.csv", "data.tsv", "data.npy"):
        got, _ = read_data(str(d / name))
        np.testing.assert_allclose(got, X, rtol=1e-15)
    assert read_data(str(d / "data.tsv"))[1] == ["height", "price"]
    assert read_data(str(d / "plain.csv"))[1] == ["x0", "x1"]
    got, names = read_data(str(d / "data.csv"), columns="price,1")
    assert names == ["price", "height"]
    np.testing.assert_allclose(got, X[:, ::-1])
    got, names = read_data(str(d / "data.csv"), columns="0-2", header=True)
    assert names == ["id", "height", "price"]


def test_parquet(files):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    d, X, _ = files
    table = pa.table({"height": X[:, 0], "price": X[:, 1], "city": ["a"] * len(X)})
    pq.write_table(table, d / "data.parquet")
    got, _ = read_data(str(d / "data.parquet"), columns="height,price")
    np.testing.assert_allclose(got, X)
    assert (
        main(
            [
                "fit",
                str(d / "data.parquet"),
                "-k",
                "3",
                "--columns",
                "height,price",
                "-o",
                str(d / "pq.fgmm"),
                "-q",
            ]
        )
        == 0
    )
    table = _read_data(str(d / "data.parquet"))  # the text column is skipped
    assert table.names == ["height", "price"] and table.text == ["city"]
    with pytest.raises(ValueError, match="column 'city' is not numeric"):
        read_data(str(d / "data.parquet"), columns="city")


def test_missing_values_are_reported(tmp_path):
    (tmp_path / "gap.csv").write_text("a,b\n1,2\n3,\n")
    with pytest.raises(ValueError, match="column 'b' is not numeric: line 3 is empty"):
        read_data(str(tmp_path / "gap.csv"))
    (tmp_path / "nan.csv").write_text("a,b\n1,2\n3,nan\n")
    with pytest.raises(ValueError, match="column 'b' has a missing"):
        read_data(str(tmp_path / "nan.csv"))


def test_quiet_and_verbose(files, capsys):
    d, _, _ = files
    argv = ["fit", str(d / "plain.csv"), "-k", "3", "-o", str(d / "q.fgmm")]
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert main([*argv, "--verbose"]) == 0
    out = capsys.readouterr()
    bounds = [line for line in out.err.splitlines() if "lower bound" in line]
    model = fastgmm.load(d / "q.fgmm")
    assert len(bounds) == model.n_iter_
    assert bounds[-1].endswith(f"{model.lower_bound_:.10g}")


def test_progress_line_on_a_terminal(files):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    _, X, _ = files
    screen = Terminal()
    progress = Progress(screen, min_interval=0.0)
    from fastgmm.selection import select

    select(X, [1, 2, 3], ("full", "diag"), monitor=CLIMonitor("select", progress))
    progress.clear()
    text = screen.getvalue()
    assert "select [" in text and "6/6" in text and "K=3 diag" in text
    assert "iteration" in text and text.endswith("\r")
    quiet = Terminal()
    Progress(quiet, enabled=False).show("hidden", force=True)
    assert quiet.getvalue() == ""


@pytest.mark.slow
def test_bench_builtin(files):
    d, _, _ = files
    run = run_cli("bench", "--builtin", "--n", 3000, "-k", 3, "--repeats", 1, cwd=d)
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| covariance | fastgmm s | sklearn s | speed-up")
    assert [r.split("|")[1].strip() for r in rows[1:]] == list(_bench.sklearn_models())


def test_bench_uses_compare_script(tmp_path, monkeypatch, capsys):
    script = tmp_path / "compare.py"
    script.write_text("def main(argv):\n    print('compare.py called with', argv)\n")
    monkeypatch.setattr(_bench, "compare_script", lambda: script)
    assert main(["bench"]) == 0
    assert "compare.py called with ['--quick']" in capsys.readouterr().out
    assert main(["bench", "--full"]) == 0
    assert "called with []" in capsys.readouterr().out


def test_help_lists_the_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("fit", "predict", "select", "sample", "bench", "demo"):
        assert name in out


def test_help_imports_no_numpy():
    """The new subcommands keep ``fastgmm --help`` light."""
    code = (
        "import sys; from fastgmm.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('numpy', 'numba', 'sklearn') if m in sys.modules))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert run.stdout.strip() == "[]"


def _subcommands(parser):
    """The ``{name: parser}`` of a parser's subcommands."""
    import argparse

    (action,) = [
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ]
    return action.choices


def test_registry_is_the_command_list():
    """Every registered module has ``register`` and ``run``, names one command after
    its file, and ``build_parser()`` lists exactly the registry's commands, in order."""
    import argparse

    from fastgmm.cli import build_parser
    from fastgmm.cli.commands import COMMANDS

    names = []
    for module in COMMANDS:
        assert callable(module.register) and callable(module.run), module.__name__
        sub = argparse.ArgumentParser().add_subparsers()
        module.register(sub)
        ((name, parser),) = sub.choices.items()
        assert name == module.__name__.rpartition(".")[2]
        assert parser.get_default("run") is module.run
        names.append(name)
    assert list(_subcommands(build_parser())) == names
    assert names[:2] == ["demo", "warmup"] and names[-1] == "segment"


def test_covariance_type_choices_are_the_model_table():
    from fastgmm.cli import build_parser
    from fastgmm.cli.args import cov_list
    from fastgmm.model.covariance import names

    commands = _subcommands(build_parser())
    for command in ("fit", "segment"):
        (option,) = [
            a
            for a in commands[command]._actions
            if "--covariance-type" in a.option_strings
        ]
        assert list(option.choices) == names()
        assert all(name in option.choices for name in names())
        assert "banded" not in option.choices
    assert cov_list(",".join(names())) == names()  # select's --covariance-types


def test_k_lists_share_one_parser(files, capsys, monkeypatch):
    """``-k`` (segment) and ``--k-range`` (select): selection.grid.k_values, whose
    errors name the option as typed; one segment K is an int, several a list."""
    from fastgmm.cli import build_parser

    d, _, _ = files
    monkeypatch.delenv("FASTGMM_DEBUG", raising=False)
    parse = build_parser().parse_args
    assert parse(["segment", "in.png", "-k", "5"]).k == 5
    assert parse(["segment", "in.png", "-k", "2,4"]).k == [2, 4]
    assert parse(["segment", "in.png", "-k", "1-3,8"]).k == [1, 2, 3, 8]
    assert main(["segment", "in.png", "-k", "0-2", "-o", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "argument -k: -k must" in err and err.count("\n") == 1
    assert main(["select", str(d / "plain.csv"), "--k-range", "0-3", "-q"]) == 2
    err = capsys.readouterr().err
    assert "--k-range must" in err and "'0-3'" in err and err.count("\n") == 1


def test_bench_finds_the_checkout_compare_script():
    """From a source checkout, ``fastgmm bench`` runs benchmarks/compare.py."""
    from pathlib import Path

    import fastgmm

    checkout = Path(fastgmm.__file__).resolve().parents[1]
    expected = checkout / "benchmarks" / "compare.py"
    if not expected.is_file():
        pytest.skip("not a source checkout")
    assert _bench.compare_script() == expected


@pytest.mark.parametrize("bayesian", [False, True], ids=["gmm", "bayesian"])
def test_em_options_reach_the_estimator(files, tmp_path, bayesian):
    """Every EM option of ``fit`` arrives under scikit-learn's name (``--seed`` as
    random_state; ``--tol`` as tol_per_sample for a Bayesian mixture)."""
    d, _, _ = files
    out = tmp_path / "m.fgmm"
    options = ["--seed", "7", "--max-iter", "55", "--n-init", "2", "--tol", "1e-5"]
    options += ["--reg-covar", "1e-4", "--init-params", "random", "--n-jobs", "1"]
    extra = ["--bayesian"] if bayesian else []
    assert (
        main(
            [
                "fit",
                str(d / "data.npy"),
                "-k",
                "2",
                "-o",
                str(out),
                "--quiet",
                *options,
                *extra,
            ]
        )
        == 0
    )
    model = fastgmm.load(out)
    assert (model.random_state, model.max_iter, model.n_init) == (7, 55, 2)
    assert (model.reg_covar, model.init_params, model.n_jobs) == (1e-4, "random", 1)
    assert (model.tol_per_sample if bayesian else model.tol) == 1e-5
