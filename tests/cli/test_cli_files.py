"""The command line's files: hostile or awkward DATA, outputs checked before the
work and written atomically, inputs never overwritten, real CSVs with id columns,
messages in the user's own option names, install hints.

Everything runs in-process through :func:`fastgmm.cli.main` (the same code as the
``fastgmm`` command), except the start-up checks, which need a fresh interpreter.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import fastgmm
from fastgmm.cli import main
from fastgmm.cli.data import read_data, select_columns
from fastgmm.cli.tables import sidecar_path

ROOT = Path(importlib.util.find_spec("fastgmm").origin).parent.parent


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("FASTGMM_DEBUG", raising=False)


def fails(capsys, argv, *words, status=1):
    """Run ``fastgmm argv``: it fails with one line on stderr holding ``words``."""
    assert main([str(a) for a in argv]) == status
    lines = capsys.readouterr().err.splitlines()
    assert all(line.startswith("fastgmm: note: ") for line in lines[:-1]), lines
    err = lines[-1]
    assert err.startswith("fastgmm"), err
    for word in words:
        assert word in err, err
    return err


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """customers.csv: a text id, a numeric id, two features, a quoted text column
    holding commas; and a model fitted on it with --scale."""
    d = tmp_path_factory.mktemp("shop")
    gen = np.random.default_rng(8)
    X = np.vstack([gen.normal(size=(40, 2)), gen.normal(size=(40, 2)) + 5])
    rows = [
        f'C{i:03d},{i},{float(a)!r},{float(b)!r},"Smith, {i}"\n'
        for i, (a, b) in enumerate(X)
    ]
    (d / "customers.csv").write_text(
        "customer,number,spend,visits,name\n" + "".join(rows)
    )
    argv = ["fit", str(d / "customers.csv"), "-k", "2", "-o", str(d / "m.fgmm"), "-q"]
    assert main(argv) == 0
    return d, X


# ------------------------------------------------------------ real CSVs (item 7)
def test_text_columns_are_skipped_with_a_note(shop, capsys):
    d, X = shop
    argv = ["fit", d / "customers.csv", "-k", 2, "-o", d / "note.fgmm", "-q"]
    assert main([str(a) for a in argv]) == 0
    err = capsys.readouterr().err
    assert err == (
        "fastgmm: note: skipped the non-numeric columns 'customer', 'name' of DATA "
        "(choose columns with --columns)\n"
    )
    side = json.loads(Path(sidecar_path(d / "note.fgmm")).read_text())
    assert side["columns"] == ["number", "spend", "visits"]


def test_predict_keeps_text_columns_then_chosen_ones(shop, capsys):
    d, X = shop
    argv = ["fit", d / "customers.csv", "--columns", "spend,visits", "-k", 2, "--scale"]
    assert main([str(a) for a in [*argv, "-o", d / "kept.fgmm", "-q"]]) == 0
    capsys.readouterr()
    assert main(["predict", str(d / "kept.fgmm"), str(d / "customers.csv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "customer,name,label,log_density,outlier,confidence,p0,p1"
    assert lines[1].startswith('C000,"Smith, 0",')  # quoted again on output
    model = fastgmm.load(d / "kept.fgmm")
    labels = [int(line.rsplit('",', 1)[1].split(",")[0]) for line in lines[1:]]
    side = json.loads(Path(sidecar_path(d / "kept.fgmm")).read_text())
    Z = (X - side["scaler"]["mean"]) / side["scaler"]["scale"]
    np.testing.assert_array_equal(labels, model.predict(Z))
    assert (
        main(
            [
                "predict",
                str(d / "kept.fgmm"),
                str(d / "customers.csv"),
                "--keep",
                "number",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines()[1].startswith("0,")
    out = d / "pred.npz"
    assert (
        main(
            ["predict", str(d / "kept.fgmm"), str(d / "customers.csv"), "-o", str(out)]
        )
        == 0
    )
    z = np.load(out)
    assert z["customer"][0] == "C000" and z["name"][3] == "Smith, 3"
    assert z["customer"].dtype.kind == "U" and z["label"].shape == (80,)
    tsv = d / "pred.tsv"
    assert (
        main(
            [
                "predict",
                str(d / "kept.fgmm"),
                str(d / "customers.csv"),
                "-o",
                str(tsv),
                "--keep",
                "none",
            ]
        )
        == 0
    )
    assert (
        tsv.read_text().splitlines()[0]
        == "label\tlog_density\toutlier\tconfidence\tp0\tp1"
    )


def test_labels_are_written_where_and_as_the_user_said(shop, capsys, tmp_path):
    d, _ = shop
    base = [
        "fit",
        str(d / "customers.csv"),
        "--columns",
        "spend,visits",
        "-k",
        "2",
        "-q",
    ]
    argv = [
        *base,
        "-o",
        str(tmp_path / "m.fgmm"),
        "--labels",
        str(tmp_path / "lab.csv"),
        "--proba",
        str(tmp_path / "p.tsv"),
    ]
    assert main(argv) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "lab.csv", "m.fgmm", "m.fgmm.meta.json", "p.tsv",
    ]  # fmt: skip
    assert (tmp_path / "lab.csv").read_text().splitlines()[0] == "label"
    assert (tmp_path / "p.tsv").read_text().splitlines()[0] == "p0\tp1"
    fails(
        capsys,
        [*base, "-o", tmp_path / "n.fgmm", "--labels", tmp_path / "lab.txt"],
        "--labels",
        "unknown extension '.txt'",
        ".csv or .tsv or .npy",
    )
    assert not (tmp_path / "n.fgmm").exists()  # checked before the fit


def test_option_names_as_typed(shop, capsys):
    d, _ = shop
    data = d / "customers.csv"
    fails(
        capsys,
        ["fit", data, "-k", 0, "-o", "x.fgmm"],
        "argument -k/--n-components: must be an integer >= 1, got '0'",
        status=2,
    )
    fails(
        capsys,
        ["fit", data, "-k", 81, "-o", d / "x.fgmm", "-q"],
        "-k: K=81 exceeds the 80 rows",
    )
    fails(
        capsys,
        ["select", data, "--k-range", "10-1"],
        "argument --k-range: the range 10-1 is reversed (write 1-10)",
        status=2,
    )
    fails(
        capsys,
        ["select", data, "--k-range", "1-999999999"],
        "--k-range must name at most 10000 values",
        status=2,
    )
    fails(
        capsys,
        ["select", data, "--k-range", "2-90", "--no-plot", "-q"],
        "--k-range: K=90 exceeds the 80 rows",
    )
    fails(
        capsys,
        ["fit", data, "-k", 2, "-o", "x", "--tol", "nan"],
        "argument --tol: must be a number >= 0",
        status=2,
    )
    fails(
        capsys,
        ["fit", data, "-k", 2, "-o", "x", "--n-jobs", "0"],
        "argument --n-jobs",
        status=2,
    )
    fails(
        capsys,
        ["predict", "m", data, "--outlier-percentile", "101"],
        "argument --outlier-percentile: must be a number in [0, 100]",
        status=2,
    )
    fails(
        capsys,
        ["sample", "m", "-n", "0"],
        "argument -n/--n-samples: must be an integer >= 1",
        status=2,
    )


def test_predict_help_offers_no_em_options(capsys):
    assert main(["predict", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--keep" in text and "--verbose" not in text and "EM" not in text


# --------------------------------------------------------- bounded input (item 2)
def test_column_ranges_are_bounded_before_expansion():
    names = ["a", "b", "c"]
    assert select_columns("0-1,c", names) == [0, 1, 2]
    tracemalloc.start()
    with pytest.raises(
        ValueError,
        match="--columns: column index 999999999 out of range: the data have 3 columns",
    ):
        select_columns("0-999999999", names)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20  # a list of a billion indices was never built
    with pytest.raises(ValueError, match="the range 2-1 is reversed"):
        select_columns("2-1", names)


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.ones((5, 2), np.complex128), "holds complex numbers"),
        (np.arange(10).astype("m8[s]").reshape(5, 2), "holds timedelta64[s] values"),
        (np.arange(10).astype("M8[D]").reshape(5, 2), "holds datetime64[D] values"),
        (np.zeros(5, [("a", "f8"), ("b", "f8")]), "not numeric"),
        (np.array([["a", "b"]] * 5), "not numeric (dtype <U1)"),
        (np.zeros((2, 2, 2)), "1-D or 2-D"),
    ],
)
def test_npy_that_is_not_real_numbers_is_refused(tmp_path, capsys, array, words):
    np.save(tmp_path / "x.npy", array)
    fails(
        capsys, ["fit", tmp_path / "x.npy", "-k", 1, "-o", tmp_path / "m.fgmm"], words
    )
    assert not (tmp_path / "m.fgmm").exists()


def test_npy_truncated_and_object(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((1000, 3)))
    blob = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(blob[:2000])
    with pytest.raises(ValueError, match="t.npy: not a readable .npy array"):
        read_data(str(tmp_path / "t.npy"))
    np.save(tmp_path / "o.npy", np.array([[object()]], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a readable .npy array"):
        read_data(str(tmp_path / "o.npy"))


def test_devices_fifos_and_endless_lines(tmp_path, capsys):
    if os.path.exists("/dev/zero"):  # refused from its type: nothing is read
        fails(
            capsys,
            ["fit", "/dev/zero", "-k", 2, "-o", tmp_path / "m"],
            "/dev/zero: is a device",
            "not a regular file",
        )
    os.mkfifo(tmp_path / "pipe.csv")  # reading it would block
    fails(
        capsys,
        ["fit", tmp_path / "pipe.csv", "-k", 2, "-o", tmp_path / "m"],
        "is a FIFO",
    )
    with open(tmp_path / "long.csv", "w") as fh:
        fh.write("1," * (9 << 20))  # one 18 MiB line
    with pytest.raises(ValueError, match="line 1 is longer than 16 MiB"):
        read_data(str(tmp_path / "long.csv"))


# ------------------------------------------------------------ text input (item 3)
@pytest.mark.parametrize(
    ("content", "words"),
    [
        (
            b"a,b\n1,2\n\x00\x01\x02\x03",
            "is a binary file, not CSV text (a NUL byte at offset 8)",
        ),
        ("a,b\n1,2\n3,4\n".encode("utf-16"), "is UTF-16 text; save it as UTF-8"),
        ("a,b\n1,2\n".encode("utf-16-le"), "NUL byte"),
        ("a,b\n1,2\n".encode("utf-32"), "is UTF-32 text"),
        (
            "prix,qualit\u00e9\n1,2\n".encode("latin-1"),
            "is not UTF-8 text (byte 0xe9 on line 1)",
        ),
        (b"\x93NUMPY\x01\x00" + b" " * 100, "is a NumPy array (name it .npy)"),
        (b"PK\x03\x04" + b"\0" * 100, "is a zip archive (an Excel .xlsx file"),
        (b"", "the file is empty"),
        (b"# only a comment\n\n", "the file is empty"),
        (b"a,b\n", "no data rows"),
        (b",,\n,,\n", "no data rows"),
        (b"name,city\nann,paris\n", "no numeric columns"),
    ],
)
def test_text_errors_name_the_file_and_the_problem(tmp_path, content, words):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        read_data(str(path))
    assert str(path) in str(info.value) and words in str(info.value)


def test_mutated_csv_files_give_value_errors(tmp_path):
    """Random byte edits of a CSV with quotes, line breaks and text: a table or a
    ValueError, never another exception."""
    from fastgmm.cli.data import KEEP_TEXT

    base = b'id,x,"y z",note\n1,2.5,3,"a, b"\n2,3.5,4,"c\nd"\n3,1e3,-2,plain\n'
    gen = np.random.default_rng(0)
    outcomes = {"table": 0, "refused": 0}
    for i in range(300):
        blob = bytearray(base)
        for _ in range(int(gen.integers(1, 6))):
            pos = int(gen.integers(len(blob)))
            blob[pos : pos + int(gen.integers(2))] = bytes([int(gen.integers(256))])
        path = tmp_path / f"f{i}.csv"
        path.write_bytes(blob)
        for kwargs in ({}, {"keep": KEEP_TEXT}, {"columns": "0-1"}):
            try:
                read_data(str(path), **kwargs)
                outcomes["table"] += 1
            except ValueError:
                outcomes["refused"] += 1
    assert min(outcomes.values()) > 50, outcomes


def test_quoted_fields_with_line_breaks(tmp_path):
    (tmp_path / "q.csv").write_text('"first\nname","b"\n1,2\n3,"4"\n')
    table = read_data(str(tmp_path / "q.csv"))
    assert table.names == ["first name", "b"]
    np.testing.assert_array_equal(table.X, [[1, 2], [3, 4]])
    (tmp_path / "r.csv").write_text('id,note,x\n1,"two\nlines",5\n2,plain,7\n')
    table = read_data(str(tmp_path / "r.csv"), keep="note")
    np.testing.assert_array_equal(table.X, [[1, 5], [2, 7]])
    assert table.text == ["note"] and list(table.kept[0][1]) == ["two\nlines", "plain"]


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("outlier_threshold", "abc", "'outlier_threshold' must be a number, got 'abc'"),
        ("outlier_threshold", float("nan"), "'outlier_threshold' must be a number"),
        (
            "outlier_percentile",
            250,
            "'outlier_percentile' must be a number in [0, 100]",
        ),
        ("columns", "height", "'columns' must be a list of 2 names"),
        ("columns", ["a", "b", "c"], "'columns' must be a list of 2 names"),
        ("column_spec", 3, "'column_spec' must be text"),
        (
            "scaler",
            {"mean": [0, 0], "scale": [1, -1]},
            "'scaler' must be a mean and a positive scale",
        ),
        (
            "scaler",
            {"mean": [0], "scale": [1]},
            "'scaler' must be a mean and a positive scale for 2",
        ),
        ("scaler", [1, 2], "'scaler' must be"),
    ],
)
def test_malformed_sidecar_values(tmp_path, capsys, key, value, words):
    X = np.random.default_rng(0).normal(size=(60, 2))
    np.savetxt(tmp_path / "d.csv", X, delimiter=",", header="a,b", comments="")
    assert (
        main(
            [
                "fit",
                str(tmp_path / "d.csv"),
                "-k",
                "2",
                "-o",
                str(tmp_path / "m.fgmm"),
                "-q",
            ]
        )
        == 0
    )
    side = Path(sidecar_path(tmp_path / "m.fgmm"))
    meta = json.loads(side.read_text())
    meta[key] = value
    side.write_text(json.dumps(meta))
    fails(
        capsys,
        ["predict", tmp_path / "m.fgmm", tmp_path / "d.csv"],
        "m.fgmm.meta.json",
        words,
    )


# ------------------------------------------------------- outputs (item 4, item 7)
def test_inputs_are_never_overwritten(shop, capsys, tmp_path):
    d, _ = shop
    data = tmp_path / "data.csv"
    data.write_bytes((d / "customers.csv").read_bytes())
    before = data.read_bytes()
    fails(
        capsys,
        ["fit", data, "-k", 2, "-o", data],
        "-o",
        "is the input DATA",
        "never overwrites",
    )
    assert data.read_bytes() == before
    model = tmp_path / "m.fgmm"
    assert main(["fit", str(data), "-k", "2", "-o", str(model), "-q"]) == 0
    capsys.readouterr()
    saved = model.read_bytes()
    fails(capsys, ["predict", model, data, "-o", model], "is the input MODEL")
    fails(
        capsys,
        ["predict", model, data, "-o", sidecar_path(model)],
        "is the input MODEL's sidecar",
    )
    fails(capsys, ["predict", model, data, "-o", data], "is the input DATA")
    link = tmp_path / "alias.csv"
    link.symlink_to(data)
    fails(
        capsys,
        ["fit", data, "-k", 2, "-o", "other.fgmm", "--labels", link],
        "is the input DATA",
    )
    fails(
        capsys,
        ["sample", model, "-o", sidecar_path(model)],
        "is the input MODEL's sidecar",
    )
    assert model.read_bytes() == saved and data.read_bytes() == before
    fails(
        capsys,
        [
            "fit",
            data,
            "-k",
            2,
            "-o",
            tmp_path / "n.fgmm",
            "--labels",
            tmp_path / "x.csv",
            "--proba",
            tmp_path / "x.csv",
        ],
        "--proba",
        "also given to --labels",
    )
    fails(
        capsys,
        ["fit", data, "-k", 2, "-o", tmp_path / "n.csv"],
        "a model file cannot be .csv",
    )
    fails(
        capsys,
        [
            "select",
            data,
            "-o",
            tmp_path / "n.fgmm",
            "--table",
            tmp_path / "n.fgmm.meta.json",
        ],
        "also given to -o (its sidecar)",
    )


def test_outputs_are_checked_before_the_work(shop, capsys, tmp_path, monkeypatch):
    d, _ = shop
    import fastgmm.selection as selection

    def no_fit(*args, **kwargs):
        raise AssertionError("the fit ran before the outputs were checked")

    monkeypatch.setattr(selection, "select", no_fit)
    data = d / "customers.csv"
    missing = tmp_path / "missing"
    fails(
        capsys,
        ["fit", data, "-k", 2, "-o", missing / "m.fgmm"],
        "the folder",
        "does not exist",
    )
    fails(
        capsys,
        [
            "fit",
            data,
            "-k",
            2,
            "-o",
            tmp_path / "m.fgmm",
            "--labels",
            missing / "l.csv",
        ],
        "--labels",
        "does not exist",
    )
    fails(
        capsys,
        ["select", data, "--plot", tmp_path / "c.gif"],
        "--plot",
        "unknown extension '.gif'",
    )
    fails(
        capsys,
        ["select", data, "--table", tmp_path / "t.json", "--no-plot"],
        "--table",
        "unknown extension",
    )
    fails(capsys, ["fit", data, "-k", 2, "-o", tmp_path], "is a directory")
    fails(capsys, ["fit", data, "-k", 2, "-o", ""], "-o: the file name is empty")
    assert list(tmp_path.iterdir()) == []


def test_outputs_through_links_and_special_files(shop, capsys, tmp_path):
    d, _ = shop
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    (tmp_path / "link.csv").symlink_to(target)
    argv = ["predict", d / "m.fgmm", d / "customers.csv", "-o", tmp_path / "link.csv"]
    assert main([str(a) for a in argv]) == 0
    assert (tmp_path / "link.csv").is_symlink()  # written through, the link kept
    assert target.read_text().startswith("customer,name,label")
    os.mkfifo(tmp_path / "m.fgmm.meta.json")  # a sidecar that would block
    (tmp_path / "m.fgmm").write_bytes((d / "m.fgmm").read_bytes())
    fails(
        capsys,
        ["predict", tmp_path / "m.fgmm", d / "customers.csv"],
        "unreadable sidecar (not a regular file)",
    )


def test_a_failed_write_leaves_no_partial_file(shop, capsys, tmp_path, monkeypatch):
    d, _ = shop
    import fastgmm.cli.tables as tables

    out = tmp_path / "scores.csv"
    out.write_text("previous content\n")
    real, calls = tables.write_columns, []

    def fail_on_third_chunk(fh, columns, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(fh, columns, **kwargs)

    monkeypatch.setattr(tables, "write_columns", fail_on_third_chunk)
    args = ["predict", d / "m.fgmm", d / "customers.csv", "-o", out, "--chunk-size", 10]
    fails(capsys, args, "disk full")
    assert out.read_text() == "previous content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]


# --------------------------------------------------------- install hints (item 8)
def test_install_hints_name_the_extra(tmp_path, capsys, monkeypatch):
    (tmp_path / "in.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    fails(
        capsys,
        ["segment", tmp_path / "in.png", "-k", 2, "-o", tmp_path / "o.png"],
        'pip install "fastgmm[image]"',
    )
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    (tmp_path / "d.parquet").write_bytes(b"PAR1")
    with pytest.raises(ImportError, match=r'pip install "fastgmm\[parquet\]"'):
        read_data(str(tmp_path / "d.parquet"))


# ------------------------------------------------------------- start-up (item 6)
def _fresh(code):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env,
        timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_predict_imports_neither_sklearn_nor_scipy_stats(shop):
    d, _ = shop
    code = (
        "import sys; from fastgmm.cli import main; "
        f"main(['predict', {str(d / 'm.fgmm')!r}, {str(d / 'customers.csv')!r}, "
        "'-o', '-', '--no-proba']); "
        "print(sorted(m for m in ('sklearn', 'scipy.stats', 'pandas') if m in sys.modules), "
        "file=sys.stderr)"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    assert run.stderr.strip().endswith("[]"), run.stderr
    assert run.stdout.splitlines()[0].startswith("customer,name,label")


def test_subcommand_help_imports_no_numpy():
    """(fit and segment list the covariance models of the table, which needs NumPy)"""
    out = _fresh(
        "import sys, contextlib, io\n"
        "from fastgmm.cli import main\n"
        "for cmd in ('predict', 'select', 'sample', 'bench'):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        main([cmd, '--help'])\n"
        "print(sorted(m for m in ('numpy', 'numba', 'sklearn') if m in sys.modules))"
    )
    assert out.strip() == "[]"
