"""Where a command writes, checked before it does any work.

A command lists its inputs and then each output with the option that named it
(:class:`Outputs`). Every output is checked at once: its folder exists, it is not a
directory, its extension names a format the option writes (the format is then
chosen by the extension, never guessed), it is not one of the inputs (fastgmm never
overwrites its inputs), and no two outputs are the same file. Files are then
written atomically (:func:`fastgmm.io.atomic.atomic_write`): a failure leaves no
partial file.
"""

import os

from ..io.atomic import atomic_write, check_folder  # noqa: F401 (re-exported)

#: formats by extension, per kind of output
TABLE = {".csv": "csv", ".tsv": "tsv", ".npz": "npz"}
ARRAY = {".csv": "csv", ".tsv": "tsv", ".npy": "npy"}
TEXT_TABLE = {".csv": "csv", ".tsv": "tsv"}
PLOT = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
LABEL_MAP = {
    ".npy": "npy", ".csv": "csv", ".png": "png", ".tif": "tiff", ".tiff": "tiff",
}  # fmt: skip
#: extensions a model file must not have (they name another format)
NOT_A_MODEL = (
    ".csv", ".tsv", ".txt", ".npy", ".npz", ".parquet", ".pq", ".json", ".png",
    ".jpg", ".jpeg", ".tif", ".tiff", ".pdf", ".svg",
)  # fmt: skip


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def extension(path):
    """The lower-case extension of ``path`` (``""`` if none)."""
    return os.path.splitext(str(path))[1].lower()


def _format(where, ext, formats):
    """The format ``formats`` gives ``ext``; None for a model file (formats None)."""
    if formats is None:
        if ext in NOT_A_MODEL:
            raise ValueError(
                f"{where}: a model file cannot be {ext} (that names another format); "
                "use .fgmm"
            )
        return None
    if ext not in formats:
        raise ValueError(
            f"{where}: unknown extension {ext or '(none)'!r}; use {' or '.join(formats)}"
        )
    return formats[ext]


class Outputs:
    """The inputs and outputs of one command, checked together.

    Parameters
    ----------
    **inputs : str or None
        Input files by what they are (``DATA="x.csv"``, ``MODEL="m.fgmm"``); None
        is ignored.
    """

    def __init__(self, **inputs):
        self.inputs = {what: p for what, p in inputs.items() if p is not None}
        self.outputs = {}

    def add(self, option, path, formats=None):
        """Check one output; return its format (the value ``formats`` gives its
        extension), or None for a model file (``formats=None``)."""
        where = f"{option} {path}"
        if not str(path).strip():
            raise ValueError(f"{option}: the file name is empty")
        if os.path.isdir(path):
            raise IsADirectoryError(f"{where}: is a directory")
        for what, source in self.inputs.items():
            if _same_file(path, source):
                raise ValueError(
                    f"{where}: is the input {what}; fastgmm never overwrites its "
                    "inputs (choose another file)"
                )
        for other, target in self.outputs.items():
            if _same_file(path, target):
                raise ValueError(f"{where}: also given to {other}")
        fmt = _format(where, extension(path), formats)
        try:
            check_folder(path)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{option} {exc}") from None
        self.outputs[option] = str(path)
        return fmt

    def add_model(self, option, path):
        """Check a model output and its sidecar ``MODEL.meta.json``."""
        from .tables import sidecar_path

        self.add(option, path)
        self.add(f"{option} (its sidecar)", sidecar_path(path), {".json": "json"})
