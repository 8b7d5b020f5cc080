"""Files for the command line: reading DATA, writing tables, the model's sidecar.

DATA is CSV/TSV (header or not; the header is detected when the first row is not
all numbers), ``.npy`` (a 2-D numeric array) or Parquet (``.parquet``/``.pq``, needs
pyarrow). Columns are chosen by name or 0-based index. Problems raise
``FileNotFoundError`` or ``ValueError`` with a one-line message naming the file,
the column and the line.

The sidecar ``MODEL.meta.json`` keeps what the model file does not: the data columns,
the standardisation (``--scale``) and the outlier threshold. It records the SHA-256
of the model file, so a sidecar never silently applies to another model.
"""

import csv
import hashlib
import json
import os
import re

import numpy as np

SIDECAR_FORMAT = "fastgmm-cli-sidecar"
SIDECAR_VERSION = 1
PARQUET = (".parquet", ".pq")


class ColumnError(ValueError):
    """A --columns entry names no column of the data."""


def _check_file(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a directory, not a data file")


def select_columns(spec, names):
    """Indices into ``names`` chosen by ``spec``.

    Parameters
    ----------
    spec : str or None
        Comma-separated column names, 0-based indices or index ranges ``i-j``
        (inclusive); None selects every column.
    names : list of str

    Returns
    -------
    list of int
    """
    if spec is None:
        return list(range(len(names)))
    chosen = []
    for token in (t.strip() for t in str(spec).split(",")):
        if token in names:
            chosen.append(names.index(token))
        elif re.fullmatch(r"\d+", token):
            chosen.append(int(token))
        elif re.fullmatch(r"\d+-\d+", token):
            lo, hi = map(int, token.split("-"))
            chosen.extend(range(lo, hi + 1))
        else:
            raise ColumnError(
                f"no column named {token!r} (columns: {', '.join(names)})"
            )
    bad = [i for i in chosen if i >= len(names)]
    if bad or not chosen:
        raise ColumnError(
            f"column index {bad[0] if bad else spec!r} out of range: the data have {len(names)} columns"
        )
    return chosen


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _delimiter(path, first_line, delimiter):
    if delimiter is not None:
        return "\t" if delimiter in ("\\t", "tab") else delimiter
    if path.lower().endswith((".tsv", ".tab")):
        return "\t"
    for cand in (",", "\t", ";"):
        if cand in first_line:
            return cand
    return None  # whitespace


def _split(line, delim):
    if delim is None:
        return line.split()
    return next(csv.reader([line], delimiter=delim))


def _first_line(path):
    """The first line that is neither blank nor a ``#`` comment, and its number."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip() and not line.lstrip().startswith("#"):
                return line.rstrip("\r\n"), lineno
    raise ValueError(f"{path}: the file is empty")


def _read_text(path, columns, header, delimiter):
    first, first_no = _first_line(path)
    delim = _delimiter(path, first, delimiter)
    fields = [f.strip() for f in _split(first, delim)]
    if header is None:
        header = not all(_is_number(f) for f in fields if f)
    names = fields if header else [f"x{j}" for j in range(len(fields))]
    idx = select_columns(columns, names)
    try:
        X = np.loadtxt(
            path,
            delimiter=delim,
            skiprows=first_no if header else 0,
            usecols=idx,
            ndmin=2,
            dtype=np.float64,
            encoding="utf-8-sig",
            quotechar='"',
        )
    except ValueError as exc:
        skip = first_no if header else 0
        raise ValueError(
            _diagnose(path, delim, skip, idx, names) or f"{path}: {exc}"
        ) from None
    return X, [names[i] for i in idx]


def _diagnose(path, delim, skip, idx, names):
    """A message naming the first cell that is not a number (None if none found)."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, 1):
            if lineno <= skip or not line.strip() or line.lstrip().startswith("#"):
                continue
            cells = _split(line.rstrip("\r\n"), delim)
            if len(cells) <= max(idx):
                return f"{path}: line {lineno} has {len(cells)} fields, expected at least {max(idx) + 1}"
            for j in idx:
                if not _is_number(cells[j].strip()):
                    what = (
                        "is empty (missing values are not supported)"
                        if not cells[j].strip()
                        else f"holds {cells[j].strip()!r}"
                    )
                    return f"{path}: column {names[j]!r} is not numeric: line {lineno} {what}"
    return None


def _read_npy(path, columns):
    try:
        X = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.dtype.names is not None:
        raise ValueError(f"{path}: expected a 2-D array, got shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise ValueError(f"{path}: the array is not numeric (dtype {X.dtype})")
    names = [f"x{j}" for j in range(X.shape[1])]
    idx = select_columns(columns, names)
    return X[:, idx], [names[i] for i in idx]


def _read_parquet(path, columns):
    try:
        import pyarrow.parquet as pq
        import pyarrow.types as pat
    except ImportError:
        raise ImportError(
            f"{path}: reading Parquet needs pyarrow (pip install pyarrow)"
        ) from None
    table = pq.read_table(path)
    names = [str(n) for n in table.column_names]
    idx = select_columns(columns, names)
    cols = []
    for i in idx:
        col = table.column(i)
        if not (
            pat.is_integer(col.type)
            or pat.is_floating(col.type)
            or pat.is_boolean(col.type)
        ):
            raise ValueError(
                f"{path}: column {names[i]!r} is not numeric (type {col.type})"
            )
        if col.null_count:
            raise ValueError(
                f"{path}: column {names[i]!r} has {col.null_count} missing values (not supported)"
            )
        cols.append(col.to_numpy().astype(np.float64))
    return np.column_stack(cols), [names[i] for i in idx]


def read_data(path, columns=None, header=None, delimiter=None):
    """Read DATA as a float64 (n_samples, n_features) array and its column names.

    Parameters
    ----------
    path : str
        ``.npy``, ``.parquet``/``.pq``, or delimited text (CSV, TSV, whitespace).
    columns : str, optional
        See :func:`select_columns`.
    header : bool, optional
        Text files: whether the first row holds names (default: detected).
    delimiter : str, optional
        Text files: default by extension (``.tsv`` tab), else the first of ``,``
        tab ``;`` found in the first row, else whitespace.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64, C-contiguous
    names : list of str
    """
    _check_file(path)
    lower = path.lower()
    if lower.endswith(".npy"):
        X, names = _read_npy(path, columns)
    elif lower.endswith(PARQUET):
        X, names = _read_parquet(path, columns)
    else:
        X, names = _read_text(path, columns, header, delimiter)
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.shape[0] == 0:
        raise ValueError(f"{path}: no data rows")
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"{path}: column {names[col]!r} has a missing or infinite value (data row {row + 1})"
        )
    return X, names


# ----------------------------------------------------------------------- output
def write_columns(fh, columns, header=True, fmt="%.10g"):
    """Write named 1-D/2-D columns as CSV rows (ints as integers).

    Parameters
    ----------
    fh : text file
    columns : list of (name, ndarray)
        A 2-D array contributes ``name0, name1, ...`` columns.
    header : bool, default=True
    fmt : str
        printf format of float columns.
    """
    names, arrays, fmts = [], [], []
    for name, a in columns:
        a = np.asarray(a)
        a2 = a[:, None] if a.ndim == 1 else a
        names += [name] if a.ndim == 1 else [f"{name}{j}" for j in range(a.shape[1])]
        is_int = np.issubdtype(a.dtype, np.integer) or a.dtype == bool
        fmts += ["%d" if is_int else fmt] * a2.shape[1]
        arrays.append(a2.astype(np.float64))
    if header:
        fh.write(",".join(names) + "\n")
    np.savetxt(fh, np.hstack(arrays), fmt=fmts, delimiter=",")


def save_array(path, array, name):
    """Write one array to ``.npy`` or, for any other name, CSV with a header."""
    if str(path).lower().endswith(".npy"):
        np.save(path, np.asarray(array))
        return
    with open(path, "w", newline="") as fh:
        write_columns(fh, [(name, array)])


# ---------------------------------------------------------------------- sidecar
def sidecar_path(model_path):
    """``MODEL.meta.json``."""
    return f"{model_path}.meta.json"


def _sha256(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def save_sidecar(model_path, info):
    """Write ``info`` (JSON-ready dict) beside ``model_path``, bound to its hash."""
    meta = {"format": SIDECAR_FORMAT, "format_version": SIDECAR_VERSION}
    meta["model_sha256"] = _sha256(model_path)
    meta.update(info)
    with open(sidecar_path(model_path), "w") as fh:
        json.dump(meta, fh, indent=1)


def load_sidecar(model_path):
    """The sidecar of ``model_path`` as a dict, or None when there is none."""
    path = sidecar_path(model_path)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as fh:
            meta = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable sidecar ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{path}: not a fastgmm sidecar file")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > SIDECAR_VERSION:
        raise ValueError(
            f"{path}: sidecar format version {version!r} is newer than this fastgmm reads; upgrade fastgmm"
        )
    if meta.get("model_sha256") != _sha256(model_path):
        raise ValueError(
            f"{path}: belongs to another model (the model file changed after it was written); refit or delete it"
        )
    return meta
