"""Atomic file writes: a temporary file in the same folder, renamed when complete.

A failure (an exception, Ctrl-C) while writing leaves no partial file and the
previous content of the destination, if any, untouched. A destination that exists
and is not a regular file (``/dev/stdout``, a FIFO) is written directly.
"""

import os
import secrets
import stat
from contextlib import contextmanager


def check_folder(path):
    """Raise FileNotFoundError unless the folder that would hold ``path`` exists."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"{os.fspath(path)}: the folder {folder} does not exist"
        )
    return folder


def _special(path):
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


@contextmanager
def atomic_write(path, mode="wb", **open_kwargs):
    """Open a temporary file beside ``path`` for writing; rename it over ``path``
    when the block ends without an exception, else delete it.

    Parameters
    ----------
    path : str or path-like
    mode : str, default="wb"
        ``"wb"`` or ``"w"`` (text; ``open_kwargs`` such as ``newline`` apply).

    Yields
    ------
    file object
    """
    path = os.fspath(path)
    if os.path.islink(path):  # replace the file the link names, keep the link
        path = os.path.realpath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a directory")
    if _special(path):
        with open(path, mode, **open_kwargs) as fh:
            yield fh
        return
    folder = check_folder(path)
    name = f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp"
    tmp = os.path.join(folder, name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    os.close(os.open(tmp, flags, 0o666))  # a new file; the umask applies
    try:
        with open(tmp, mode, **open_kwargs) as fh:  # fh.name: a path, as writers expect
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
