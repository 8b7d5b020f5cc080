#!/usr/bin/env python
"""Start-up of the ``fastgmm`` command line: wall time and modules imported.

Usage::

    python benchmarks/bench_startup.py [--repeats 7] [--rows 200]
        [--out benchmarks/results/startup.md]

Every command runs in a fresh interpreter, ``--repeats`` times, the commands in turn
(A B C ... A B C ...), so that load on a shared machine hits them alike; the table
gives the median and the range of the wall times, the median ratio to the bare
interpreter (``python -c pass``, run in the same rounds), and the number of modules
each command imports (``python -X importtime``) with whether scikit-learn is among
them. ``predict`` scores a small CSV with a model fitted once beforehand, with the
JIT cache warm (one untimed run first): what a user scoring a small file pays.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    return env


def _run(argv, env):
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def _modules(argv, env):
    """(modules imported, whether scikit-learn is one) of a command."""
    run = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]], env=env, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    names = [
        line.rsplit("|", 1)[1].strip()
        for line in run.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]
    return len(names) - 1, "sklearn" in names  # minus the header line


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    env, py = _env(), sys.executable
    work = Path(tempfile.mkdtemp(prefix="fastgmm-startup-"))
    data, model = work / "small.csv", work / "small.fgmm"
    rows = "\n".join(f"{i % 7 * 0.5},{(i * 37) % 11 * 0.3}" for i in range(args.rows))
    data.write_text("a,b\n" + rows + "\n")
    fastgmm = [py, "-m", "fastgmm"]
    subprocess.run([*fastgmm, "fit", str(data), "-k", "2", "-o", str(model), "-q"],
                   env=env, check=True)  # fmt: skip
    commands = {
        "python -c pass": [py, "-c", "pass"],
        "fastgmm --help": [*fastgmm, "--help"],
        "fastgmm predict --help": [*fastgmm, "predict", "--help"],
        "fastgmm fit --help": [*fastgmm, "fit", "--help"],
        f"fastgmm predict ({args.rows} rows)": [
            *fastgmm, "predict", str(model), str(data), "-o", str(work / "out.csv"),
        ],
    }  # fmt: skip
    _run(commands[f"fastgmm predict ({args.rows} rows)"], env)  # warm the JIT cache
    times = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, cmd in commands.items():
            times[name].append(_run(cmd, env))
    floor = times["python -c pass"]
    lines = [
        "| command | median s | min-max s | / bare python | modules | sklearn |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, cmd in commands.items():
        t = times[name]
        ratio = statistics.median(a / b for a, b in zip(t, floor))
        n, sk = _modules(cmd, env)
        lines.append(
            f"| {name} | {statistics.median(t):.3f} | {min(t):.3f}-{max(t):.3f} | "
            f"{ratio:.2f} | {n} | {'yes' if sk else 'no'} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
