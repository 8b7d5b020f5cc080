"""Every code snippet in README.md and docs/*.md runs as pasted.

The ```python blocks of each file run in order in one fresh Python session (a
subprocess in an empty folder, matplotlib on the Agg backend), as a reader pasting
them one after another would; a block may use what an earlier block of the same
file defined. An HTML comment on the line just before a block's fence marks it:

``<!-- docs-test: slow -->``
    heavy (a million points, a Dask cluster): run in the slow tier only; the fast
    tier runs the file's other blocks.
``<!-- docs-test: skip: REASON -->``
    not runnable here (a remote cluster, your own files); use sparingly.

Every ``fastgmm ...`` command line in a ```bash block is parsed by the real
argument parser (``--help`` level: options and choices exist).
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")
MARK = re.compile(r"^<!--\s*docs-test:\s*(slow|skip)\s*(?::\s*(.*?))?\s*-->\s*$")


def blocks(path, language):
    """(first line number, code, mark, reason) of each ```language block."""
    lines = path.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if FENCE.match(lines[j]))
        if fence.group(1) == language:
            mark = MARK.match(lines[i - 1]) if i > 0 else None
            found.append(
                (
                    i + 2,
                    "\n".join(lines[i + 1 : end]),
                    mark.group(1) if mark else None,
                    mark.group(2) if mark else None,
                )
            )
        i = end + 1
    return found


SESSION = """
import sys
blocks = {blocks!r}
namespace = {{"__name__": "__main__"}}
for line, code in blocks:
    print(f"----- {name} block at line {{line}}", flush=True)
    # pad so that tracebacks give the line numbers of the Markdown file
    exec(compile("\\n" * (line - 1) + code, {name!r}, "exec"), namespace)
"""


def run_session(path, tier, tmp_path):
    """Run the file's blocks of ``tier`` ("fast": unmarked; "slow": unmarked and
    slow) in one subprocess; return the completed run."""
    wanted = {"fast": (None,), "slow": (None, "slow")}[tier]
    code = [
        (line, src) for line, src, mark, _ in blocks(path, "python") if mark in wanted
    ]
    if not code:
        pytest.skip(f"{path.name} has no python blocks for the {tier} tier")
    script = SESSION.format(blocks=code, name=path.name)
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    env.pop("FASTGMM_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


def _check(run):
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-5000:])


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_python_blocks_run_fast_tier(path, tmp_path):
    _check(run_session(path, "fast", tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_python_blocks_run_all(path, tmp_path):
    """Every block not marked skip, the heavy ones included, in one session."""
    if not any(mark == "slow" for _, _, mark, _ in blocks(path, "python")):
        pytest.skip(f"{path.name}: the fast tier runs all its blocks")
    _check(run_session(path, "slow", tmp_path))


def test_skipped_blocks_give_a_reason_and_are_few():
    for path in DOCS:
        marked = [(line, mark, why) for line, _, mark, why in blocks(path, "python")]
        for line, mark, why in marked:
            if mark == "skip":
                assert why, f"{path.name}:{line}: a skipped block needs a reason"
        skipped = sum(mark == "skip" for _, mark, _ in marked)
        assert skipped <= max(1, len(marked) // 4), f"{path.name}: too many skipped"


def _commands(path):
    """The ``fastgmm ...`` command lines of the file's bash blocks, as argv lists."""
    for line, code, _, _ in blocks(path, "bash"):
        for offset, text in enumerate(code.splitlines()):
            for part in text.split("&&"):
                words = shlex.split(part, comments=True)
                if ">" in words:
                    words = words[: words.index(">")]  # output redirection
                if words and words[0] == "fastgmm":
                    yield f"{path.name}:{line + offset}", words[1:]


COMMANDS = [c for path in DOCS for c in _commands(path)]


def test_the_docs_show_the_first_hour_commands():
    shown = {" ".join(argv) for _, argv in COMMANDS}
    assert {"demo", "warmup"} <= shown


@pytest.mark.parametrize("where, argv", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_fastgmm_command_lines_parse(where, argv):
    from fastgmm.cli import build_parser

    args = build_parser().parse_args(argv)  # a usage error exits: the test fails
    assert callable(args.run), where


def test_the_block_reader(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(
        "text\n```python\na = 1\n```\n<!-- docs-test: skip: needs a cluster -->\n"
        "```python\nb = 2\n```\n```bash\nfastgmm demo && fastgmm fit x.csv -k 2 "
        "# fit\nfastgmm predict m x.csv > out.csv\n```\n"
    )
    assert blocks(doc, "python") == [
        (3, "a = 1", None, None),
        (7, "b = 2", "skip", "needs a cluster"),
    ]
    assert [argv for _, argv in _commands(doc)] == [
        ["demo"],
        ["fit", "x.csv", "-k", "2"],
        ["predict", "m", "x.csv"],
    ]


# ------------------------------------------------------------------------- pictures
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+\.png)\)")


def test_every_picture_the_docs_show_exists():
    for path in DOCS:
        for link in IMAGE_LINK.findall(path.read_text()):
            assert (path.parent / link).is_file(), f"{path.name}: {link} is missing"


def test_the_docs_draw_their_plotting_pictures_with_their_own_script(tmp_path):
    """docs/make_images.py draws every picture of fastgmm.plotting that
    docs/usage.md shows (and the docs name the script)."""
    pytest.importorskip("matplotlib")
    import importlib.util

    import matplotlib.image as mpimg

    spec = importlib.util.spec_from_file_location(
        "make_images", ROOT / "docs" / "make_images.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    paths = script.main(tmp_path)
    assert [p.name for p in paths] == [f"{name}.png" for name in script.IMAGES]
    usage = (ROOT / "docs" / "usage.md").read_text()
    assert "python docs/make_images.py" in usage
    for path in paths:
        assert f"images/{path.name}" in usage
        pixels = mpimg.imread(path)
        assert pixels.shape[0] > 200 and pixels[..., :3].std() > 0.05  # not blank
