#!/usr/bin/env python
"""The cold ``fastgmm demo``: wall time, what compiles when, the longest silence.

Usage::

    python benchmarks/cold_demo.py [--runs 3] [--root PATH] [--out FILE]
        [-- demo --no-picture]

Each run makes an empty ``FASTGMM_CACHE_DIR`` and runs ``python -m fastgmm demo
--no-picture`` (or the command after ``--``) in a fresh interpreter with stderr on a
pseudo-terminal, as a user at a terminal sees it (the status line is drawn), and
stdout on a pipe. It reports the wall time, the longest silence (no byte on either
stream), the longest gap between two report lines on stdout, and a timeline of
every process the command starts: when it started and ended, when it first imported
Numba, SciPy, scikit-learn, and each kernel compile (start, end, seconds, from the
``fastgmm`` logger), by process, with the CPU time the process had used by then (on a
busy machine a steadier measure of work than the wall time). The timeline comes from a ``sitecustomize`` module
the script puts first on ``PYTHONPATH`` (children inherit it): it only adds a
logging handler and an import hook, so the command runs unchanged.

Cold times depend on the load (the compiler runs on one core per process): the
load average is printed with each run.
"""

import argparse
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TRACER = r"""
import os, sys, time
_path = os.environ.get("COLD_DEMO_TRACE")
if _path:
    _t0 = float(os.environ["COLD_DEMO_T0"])
    _fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _note(text):
        line = f"{time.time() - _t0:.3f}\t{os.getpid()}\t{time.process_time():.2f}"
        os.write(_fd, f"{line}\t{text}\n".encode())

    _note("process start: " + " ".join(sys.argv)[:80])
    _seen = set()

    class _Watch:
        WATCH = ("numba", "scipy", "sklearn", "matplotlib", "fastgmm.kernels.passes")

        def find_spec(self, name, path=None, target=None):
            if name in self.WATCH and name not in _seen:
                _seen.add(name)
                _note("import " + name)
            return None

    sys.meta_path.insert(0, _Watch())
    import atexit, logging

    class _Handler(logging.Handler):
        def emit(self, record):
            _note(record.getMessage().split(" (first use")[0])

    _log = logging.getLogger("fastgmm")
    _log.setLevel(logging.INFO)
    _log.addHandler(_Handler())
    atexit.register(lambda: _note("process end"))
"""


def _read_streams(proc, out_fd, err_fd):
    """[(time, stream, bytes)] of everything the process writes, until it exits."""
    chunks, fds = [], {out_fd: "out", err_fd: "err"}
    while fds:
        ready, _, _ = select.select(list(fds), [], [], 0.05)
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the pty's slave side closed
                data = b""
            if data:
                chunks.append((time.perf_counter(), fds[fd], data))
            else:
                del fds[fd]
        if proc.poll() is not None and not ready:
            break
    return chunks


def run_once(root, command):
    """One cold run: (wall seconds, chunks, trace lines, stdout text)."""
    with tempfile.TemporaryDirectory(prefix="fastgmm-cold-") as work:
        work = Path(work)
        (work / "trace").mkdir()
        (work / "trace" / "sitecustomize.py").write_text(TRACER)
        (work / "cache").mkdir()
        env = dict(os.environ)
        env.pop("FASTGMM_CACHE", None)
        env["PYTHONPATH"] = os.pathsep.join([str(work / "trace"), str(root)])
        env["FASTGMM_CACHE_DIR"] = str(work / "cache")
        env["COLD_DEMO_TRACE"] = str(work / "events.tsv")
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave the checkout as it is
        env["COLUMNS"] = "120"
        master, slave = pty.openpty()
        out_r, out_w = os.pipe()
        t0 = time.time()
        env["COLD_DEMO_T0"] = repr(t0)
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastgmm", *command],
            env=env,
            cwd=work,
            stdout=out_w,
            stderr=slave,
            stdin=subprocess.DEVNULL,
        )
        os.close(slave), os.close(out_w)
        chunks = _read_streams(proc, out_r, master)
        proc.wait()
        wall = time.perf_counter() - start
        os.close(master), os.close(out_r)
        if proc.returncode != 0:
            err = b"".join(c for _, s, c in chunks if s == "err").decode(
                errors="replace"
            )
            raise RuntimeError(f"exit {proc.returncode}: {err[-2000:]}")
        trace = (work / "events.tsv").read_text().splitlines()
    text = b"".join(c for _, s, c in chunks if s == "out").decode()
    return wall, [(t - start, s, c) for t, s, c in chunks], trace, text


def silences(chunks, wall):
    """(longest silence on both streams, where; longest gap between stdout lines)."""
    times = [0.0] + [t for t, _, _ in chunks] + [wall]
    gaps = [(b - a, a) for a, b in zip(times, times[1:])]
    longest = max(gaps)
    lines = [0.0] + [t for t, s, c in chunks if s == "out" and b"\n" in c] + [wall]
    out_gap = max((b - a, a) for a, b in zip(lines, lines[1:]))
    return longest, out_gap


def timeline(trace):
    """The trace as rows 'time  process  CPU time  event', processes named main,
    child 1, ..."""
    names, rows = {}, []
    for line in trace:
        t, pid, cpu, text = line.split("\t", 3)
        if pid not in names:
            names[pid] = "main" if not names else f"child {len(names)}"
        rows.append(f"  {float(t):7.2f} s  {names[pid]:8} {float(cpu):6.2f} s  {text}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--root", default=str(ROOT), help="a fastgmm checkout")
    parser.add_argument("--out", help="also write the report to this file")
    parser.add_argument("--show-output", action="store_true", help="print stdout")
    parser.add_argument("command", nargs="*", default=["demo", "--no-picture"])
    args = parser.parse_args(argv)
    report, walls = [], []
    for i in range(args.runs):
        load = os.getloadavg()[0]
        wall, chunks, trace, text = run_once(args.root, args.command)
        walls.append(wall)
        (gap, at), (out_gap, out_at) = silences(chunks, wall)
        report += [
            f"run {i + 1}: fastgmm {' '.join(args.command)}: {wall:.1f} s wall "
            f"(load {load:.2f} before, {os.getloadavg()[0]:.2f} after, "
            f"{os.cpu_count()} cores)",
            f"  longest silence (stdout + terminal stderr): {gap:.2f} s at {at:.1f} s;"
            f" longest gap between report lines: {out_gap:.1f} s at {out_at:.1f} s",
            *timeline(trace),
        ]
        if args.show_output:
            report.append(text)
        print("\n".join(report[-(len(trace) + 2) :]), flush=True)
    summary = (
        f"cold demo wall: median {statistics.median(walls):.1f} s over {len(walls)} "
        f"runs ({', '.join(f'{w:.1f}' for w in walls)})"
    )
    print(summary)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(report + [summary]) + "\n")


if __name__ == "__main__":
    main()
