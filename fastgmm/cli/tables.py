"""Writing tables and arrays for the command line, and the model's sidecar.

Tables are CSV (``.csv``), tab-separated (``.tsv``) or NumPy archives (``.npz``);
single arrays CSV, TSV or ``.npy``; every file is written atomically (see
:mod:`fastgmm.cli.outputs`). Text values are quoted as CSV requires.

The sidecar ``MODEL.meta.json`` keeps what the model file does not: the data columns,
the standardisation (``--scale``) and the outlier threshold. It records the SHA-256
of the model file, so a sidecar never silently applies to another model, and every
value it holds is checked when it is read.
"""

import hashlib
import json
import math
import os

import numpy as np

from ..io.atomic import atomic_write

SIDECAR_FORMAT = "fastgmm-cli-sidecar"
SIDECAR_VERSION = 1
#: bytes a sidecar may take (names of a million columns)
MAX_SIDECAR = 64 << 20
_DELIMITERS = {"csv": ",", "tsv": "\t"}


# ----------------------------------------------------------------------- output
def _quoted(values, delimiter):
    """Text values as CSV cells: quoted (with doubled quotes) where needed."""
    out = np.asarray(values).astype(str)
    special = np.zeros(out.shape, dtype=bool)
    for char in (delimiter, '"', "\n", "\r"):
        special |= np.char.find(out, char) >= 0
    out = out.astype(object)
    out[special] = ['"' + v.replace('"', '""') + '"' for v in out[special]]
    return out


def write_columns(fh, columns, header=True, fmt="%.10g", delimiter=","):
    """Write named 1-D/2-D columns as delimited rows (ints as integers, text quoted).

    Parameters
    ----------
    fh : text file
    columns : list of (name, ndarray)
        A 2-D array contributes ``name0, name1, ...`` columns; text (str or object)
        columns are written as they are, quoted where needed.
    header : bool, default=True
    fmt : str
        printf format of float columns.
    delimiter : str, default=","
    """
    names, blocks, fmts = [], [], []
    for name, a in columns:
        a = np.asarray(a)
        a2 = a[:, None] if a.ndim == 1 else a
        names += [name] if a.ndim == 1 else [f"{name}{j}" for j in range(a.shape[1])]
        if a.dtype.kind in "USO":
            fmts += ["%s"] * a2.shape[1]
            blocks.append(np.stack([_quoted(c, delimiter) for c in a2.T], axis=1))
        else:
            is_int = np.issubdtype(a.dtype, np.integer) or a.dtype == bool
            fmts += ["%d" if is_int else fmt] * a2.shape[1]
            blocks.append(a2.astype(np.float64))
    if header:
        fh.write(delimiter.join(_quoted(names, delimiter)) + "\n")
    if any(b.dtype == object for b in blocks):
        blocks = [b.astype(object) for b in blocks]
    np.savetxt(fh, np.hstack(blocks), fmt=fmts, delimiter=delimiter)


def write_table(path, fmt, columns):
    """Write named columns to ``path`` as ``csv``, ``tsv`` or ``npz``, atomically."""
    if fmt == "npz":
        arrays = {name: np.asarray(a) for name, a in columns}
        with atomic_write(path, "wb") as fh:
            np.savez(fh, **arrays)
        return
    with atomic_write(path, "w", newline="") as fh:
        write_columns(fh, columns, delimiter=_DELIMITERS[fmt])


def save_array(path, fmt, array, name):
    """Write one array to ``path`` as ``npy``, or ``csv``/``tsv`` with a header."""
    if fmt == "npy":
        with atomic_write(path, "wb") as fh:
            np.save(fh, np.asarray(array))
        return
    write_table(path, fmt, [(name, array)])


# ---------------------------------------------------------------------- sidecar
def sidecar_path(model_path):
    """``MODEL.meta.json``."""
    return f"{model_path}.meta.json"


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_sidecar(model_path, info):
    """Write ``info`` (JSON-ready dict) beside ``model_path``, bound to its hash."""
    meta = {"format": SIDECAR_FORMAT, "format_version": SIDECAR_VERSION}
    meta["model_sha256"] = _sha256(model_path)
    meta.update(info)
    with atomic_write(sidecar_path(model_path), "w") as fh:
        json.dump(meta, fh, indent=1)


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def _check_sidecar(meta, path, n_features):
    """Every value of a sidecar: types, ranges and the model's number of features."""
    from ..scaling import Standardizer

    def bad(key, what):
        raise ValueError(f"{path}: {key!r} must be {what}, got {meta.get(key)!r}")

    names = meta.get("columns")
    if names is not None and not (
        isinstance(names, list)
        and all(isinstance(n, str) for n in names)
        and len(names) == n_features
    ):
        bad("columns", f"a list of {n_features} names")
    if not isinstance(meta.get("column_spec"), (str, type(None))):
        bad("column_spec", "text")
    if meta.get("scaler") is not None:
        try:
            scaler = Standardizer.from_dict(meta["scaler"])
        except (TypeError, ValueError, AttributeError):
            scaler = None
        if scaler is None or scaler.n_features_in_ != n_features:
            bad("scaler", f"a mean and a positive scale for {n_features} features")
    threshold = meta.get("outlier_threshold")
    if threshold is not None and not (_number(threshold) and threshold != math.inf):
        bad("outlier_threshold", "a number")
    percentile = meta.get("outlier_percentile")
    if percentile is not None and not (_number(percentile) and 0 <= percentile <= 100):
        bad("outlier_percentile", "a number in [0, 100]")


def load_sidecar(model_path, n_features):
    """The checked sidecar of ``model_path`` as a dict, or None when there is none.

    Parameters
    ----------
    model_path : str
    n_features : int
        The model's number of features (the columns and scaler must match it).
    """
    path = sidecar_path(model_path)
    if not os.path.exists(path):
        return None
    try:
        if not os.path.isfile(path):  # a FIFO or device would block or never end
            raise ValueError("not a regular file")
        if os.path.getsize(path) > MAX_SIDECAR:
            raise ValueError(f"larger than {MAX_SIDECAR >> 20} MiB")
        with open(path, "rb") as fh:
            meta = json.loads(fh.read())
    except (OSError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: unreadable sidecar ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{path}: not a fastgmm sidecar file")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > SIDECAR_VERSION:
        raise ValueError(
            f"{path}: sidecar format version {version!r} is newer than this fastgmm "
            "reads; upgrade fastgmm"
        )
    if meta.get("model_sha256") != _sha256(model_path):
        raise ValueError(
            f"{path}: belongs to another model (the model file changed after it was "
            "written); refit or delete it"
        )
    _check_sidecar(meta, path, n_features)
    return meta
