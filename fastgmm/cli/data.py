"""Reading DATA for the command line: CSV/TSV text, ``.npy`` and Parquet.

Text is UTF-8 CSV/TSV (or whitespace-separated), with a header row detected when
the first row is not all numbers; quoted fields may hold delimiters and line
breaks. Without ``--columns`` the columns whose first data row is not a number (ids,
names, categories) are skipped, and the caller is told which. ``.npy`` files hold a
1-D or 2-D array of booleans, integers or floats; Parquet (``.parquet``/``.pq``)
needs the ``parquet`` extra.

Every problem raises ``FileNotFoundError``, ``IsADirectoryError`` or ``ValueError``
with a one-line message naming the file and, where there is one, the column and
line: binary files and other formats named ``.csv``, UTF-16 or other non-UTF-8
text, lines too long to be a table, FIFOs and devices, complex or time values,
missing values, ranges of columns beyond the data.
"""

import csv
import itertools
import os
import re
import stat
from dataclasses import dataclass, field

import numpy as np

PARQUET = (".parquet", ".pq")
#: longest text line read (a line longer than this is not a table row)
MAX_LINE = 16 << 20
#: bytes read to recognise a binary file or an encoding
SNIFF = 64 << 10
#: other formats recognised by their first bytes when named like text
_MAGIC = (
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx file or a fastgmm model?)"),
    (b"\x93NUMPY", "a NumPy array (name it .npy)"),
    (b"PAR1", "a Parquet file (name it .parquet)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF", "a PDF document"),
)
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


class ColumnError(ValueError):
    """A --columns entry names no column of the data."""


#: ``keep=`` value: keep the text columns (ids, names) as read
KEEP_TEXT = "<text columns>"


@dataclass
class Table:
    """DATA as read: the numeric matrix and what else the caller may need.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features), float64, C-contiguous, finite
    names : list of str
        The names of the columns of X.
    text : list of str
        Columns whose first data value is not a number (skipped unless chosen).
    kept : list of (str, ndarray)
        The columns asked for with ``keep``, as read (text or numbers).
    """

    X: np.ndarray
    names: list
    text: list = field(default_factory=list)
    kept: list = field(default_factory=list)


def check_file(path, what="DATA"):
    """Raise unless ``path`` is an existing regular file (not a FIFO or device,
    which could block or never end)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{path}: is a directory, not a {what} file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        raise ValueError(
            f"{path}: is {kind}, not a regular file; {what} must be a file"
        )


def select_columns(spec, names, option="--columns"):
    """Indices into ``names`` chosen by ``spec``.

    Parameters
    ----------
    spec : str or None
        Comma-separated column names, 0-based indices or index ranges ``i-j``
        (inclusive; bounds checked before the range is expanded); None selects
        every column.
    names : list of str
    option : str
        The option's name in messages.

    Returns
    -------
    list of int
    """
    if spec is None:
        return list(range(len(names)))
    chosen, n = [], len(names)
    for token in (t.strip() for t in str(spec).split(",")):
        if token in names:
            chosen.append(names.index(token))
        elif re.fullmatch(r"\d+(-\d+)?", token):
            lo, _, hi = token.partition("-")
            lo, hi = int(lo), int(hi or lo)
            if hi < lo:
                raise ColumnError(
                    f"{option}: the range {token} is reversed (write {hi}-{lo})"
                )
            if hi >= n:
                raise ColumnError(
                    f"{option}: column index {hi} out of range: the data have {n} "
                    f"columns (0-{n - 1})"
                )
            chosen.extend(range(lo, hi + 1))
        else:
            raise ColumnError(
                f"{option}: no column named {token!r} (columns: {', '.join(names)})"
            )
    if not chosen:
        raise ColumnError(f"{option}: no columns chosen by {spec!r}")
    return chosen


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


# -------------------------------------------------------------------------- text
def _sniff(path):
    """Refuse binary files, other formats and encodings other than UTF-8."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF)
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            raise ValueError(f"{path}: is {encoding} text; save it as UTF-8")
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise ValueError(f"{path}: is {what}, not CSV text")
    if b"\0" in head:
        at = head.index(b"\0")
        raise ValueError(
            f"{path}: is a binary file, not CSV text (a NUL byte at offset {at}); "
            "UTF-16 text must be saved as UTF-8"
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not a character cut by the 64 KiB read
            line = head[: exc.start].count(b"\n") + 1
            raise ValueError(
                f"{path}: is not UTF-8 text (byte 0x{head[exc.start]:02x} on line "
                f"{line}); save it as UTF-8"
            ) from None


def _lines(fh, path):
    """(number, line) of every line, refusing lines longer than MAX_LINE."""
    for number in itertools.count(1):
        line = fh.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE:
            raise ValueError(
                f"{path}: line {number} is longer than {MAX_LINE >> 20} MiB "
                "(not a text table?)"
            )
        yield number, line


def _delimiter(path, first_line, delimiter):
    if delimiter is not None:
        return "\t" if delimiter in ("\\t", "tab") else delimiter
    if path.lower().endswith((".tsv", ".tab")):
        return "\t"
    for cand in (",", "\t", ";"):
        if cand in first_line:
            return cand
    return None  # whitespace


def _records(path, delim):
    """(last physical line number, cells) of every record that is not blank or a
    ``#`` comment; quoted fields may span lines."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        numbered = _lines(fh, path)
        if delim is None:
            for number, line in numbered:
                cells = line.split()
                if cells and not cells[0].startswith("#"):
                    yield number, cells
            return
        last = [0]

        def lines():
            for number, line in numbered:
                last[0] = number
                yield line

        for cells in csv.reader(lines(), delimiter=delim):
            if (
                cells
                and any(c.strip() for c in cells)
                and not cells[0].lstrip().startswith("#")
            ):
                yield last[0], cells


def _first_record_text(path):
    """The text of the first record that is not blank or a comment (its lines
    joined while a quoted field is open, at most 20 of them)."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        lines = _lines(fh, path)
        for _, line in lines:
            if line.strip() and not line.lstrip().startswith("#"):
                for _, more in itertools.islice(lines, 20):
                    if line.count('"') % 2 == 0:
                        break
                    line += more
                return line
    raise ValueError(f"{path}: the file is empty")


def _head(path, header, delimiter):
    """(delimiter, names, header lines to skip, first data record or None)."""
    delim = _delimiter(path, _first_record_text(path), delimiter)
    records = _records(path, delim)
    end, fields = next(records, (0, None))
    if fields is None:  # e.g. only empty fields
        raise ValueError(f"{path}: no data rows")
    fields = [f.strip() for f in fields]
    if header is None:
        header = not all(_is_number(f) for f in fields if f)
    if not header:
        return delim, [f"x{j}" for j in range(len(fields))], 0, fields
    data = next(records, (0, None))[1]
    return delim, [" ".join(f.split()) for f in fields], end, data


def _diagnose(path, delim, skip, idx, names):
    """A message naming the first cell that is not a number (None if none found)."""
    for number, cells in _records(path, delim):
        if number <= skip:
            continue
        if len(cells) <= max(idx):
            return (
                f"{path}: line {number} has {len(cells)} fields, expected at least "
                f"{max(idx) + 1}"
            )
        for j in idx:
            cell = cells[j].strip()
            if not _is_number(cell):
                what = (
                    "is empty (missing values are not supported)"
                    if not cell
                    else f"holds {cell!r}"
                )
                return (
                    f"{path}: column {names[j]!r} is not numeric: line {number} {what}"
                )
    return None


def _keep_index(keep, names, text):
    if keep is None:
        return []
    if keep is KEEP_TEXT:
        return [names.index(n) for n in text]
    return select_columns(keep, names, "--keep")


def _loadtxt(path, delim, skip, idx, dtype):
    return np.loadtxt(
        path, delimiter=delim, skiprows=skip, usecols=idx, ndmin=2, dtype=dtype,
        encoding="utf-8-sig", quotechar='"', comments="#",
    )  # fmt: skip


def _read_text(path, columns, header, delimiter, keep):
    _sniff(path)
    delim, names, skip, first = _head(path, header, delimiter)
    if first is None:
        raise ValueError(f"{path}: no data rows")
    text = [
        names[j]
        for j, cell in enumerate(first[: len(names)])
        if cell.strip() and not _is_number(cell.strip())
    ]
    if columns is None:
        idx = [j for j, name in enumerate(names) if name not in text]
        if not idx:
            raise ValueError(
                f"{path}: no numeric columns (the first data row holds {first})"
            )
    else:
        idx = select_columns(columns, names)
    try:
        X = _loadtxt(path, delim, skip, idx, np.float64)
    except ValueError as exc:
        message = _diagnose(path, delim, skip, idx, names) or f"{path}: {exc}"
        raise ValueError(f"{message} (choose the columns with --columns)") from None
    kept = []
    kidx = _keep_index(keep, names, text)
    if kidx:
        values = _loadtxt(path, delim, skip, kidx, str)
        kept = [(names[j], values[:, i]) for i, j in enumerate(kidx)]
    return Table(X, [names[j] for j in idx], text, kept)


# ------------------------------------------------------------------ npy, Parquet
def _read_npy(path, columns, keep):
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(X, np.ndarray) or X.ndim not in (1, 2):
        raise ValueError(
            f"{path}: expected a 1-D or 2-D array, got shape {np.shape(X)}"
        )
    kind = X.dtype.kind
    if kind == "c":
        raise ValueError(
            f"{path}: holds complex numbers ({X.dtype}); fastgmm fits real data: "
            "save the real and imaginary parts as separate columns"
        )
    if kind in "mM":
        raise ValueError(
            f"{path}: holds {X.dtype} values; convert them to numbers (for example "
            "seconds) first"
        )
    if kind not in "biuf" or X.dtype.names is not None:
        raise ValueError(f"{path}: the array is not numeric (dtype {X.dtype})")
    X = X[:, None] if X.ndim == 1 else X
    names = [f"x{j}" for j in range(X.shape[1])]
    idx = select_columns(columns, names)
    kept = [(names[j], np.asarray(X[:, j])) for j in _keep_index(keep, names, [])]
    return Table(
        np.array(X[:, idx], dtype=np.float64), [names[i] for i in idx], [], kept
    )


def _read_parquet(path, columns, keep):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
        import pyarrow.types as pat
    except ImportError:
        raise ImportError(
            f'{path}: reading Parquet needs pyarrow: pip install "fastgmm[parquet]"'
        ) from None
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable Parquet file ({exc})") from None
    names = [str(n) for n in table.column_names]
    numeric = (pat.is_integer, pat.is_floating, pat.is_boolean)
    text = [
        n for n, c in zip(names, table.columns) if not any(t(c.type) for t in numeric)
    ]
    idx = (
        select_columns(columns, names)
        if columns
        else [j for j, n in enumerate(names) if n not in text]
    )
    if not idx:
        raise ValueError(f"{path}: no numeric columns")
    cols = []
    for i in idx:
        col = table.column(i)
        if names[i] in text:
            raise ValueError(
                f"{path}: column {names[i]!r} is not numeric (type {col.type})"
            )
        if col.null_count:
            raise ValueError(
                f"{path}: column {names[i]!r} has {col.null_count} missing values "
                "(not supported)"
            )
        cols.append(col.to_numpy().astype(np.float64))
    kept = []
    for j in _keep_index(keep, names, text):
        kept.append((names[j], np.asarray(table.column(j).to_pylist(), dtype=object)))
    return Table(np.column_stack(cols), [names[i] for i in idx], text, kept)


def read_data(path, columns=None, header=None, delimiter=None, keep=None):
    """Read DATA: a float64 (n_samples, n_features) array and its column names.

    Parameters
    ----------
    path : str
        ``.npy``, ``.parquet``/``.pq``, or delimited UTF-8 text (CSV, TSV,
        whitespace).
    columns : str, optional
        See :func:`select_columns`. Default: every numeric column (text columns
        are skipped, and listed in :attr:`Table.text`).
    header : bool, optional
        Text files: whether the first row holds names (default: detected).
    delimiter : str, optional
        Text files: default by extension (``.tsv`` tab), else the first of ``,``
        tab ``;`` found in the first row, else whitespace.
    keep : str, optional
        Columns to return as read (any type) in :attr:`Table.kept`, chosen as
        ``columns`` are; :data:`KEEP_TEXT` keeps the text columns.

    Returns
    -------
    Table
    """
    check_file(path)
    lower = path.lower()
    reader = (
        (lambda: _read_npy(path, columns, keep))
        if lower.endswith(".npy")
        else (lambda: _read_parquet(path, columns, keep))
        if lower.endswith(PARQUET)
        else (lambda: _read_text(path, columns, header, delimiter, keep))
    )
    table = reader()
    table.X = np.ascontiguousarray(table.X, dtype=np.float64)
    if table.X.shape[0] == 0:
        raise ValueError(f"{path}: no data rows")
    bad = ~np.isfinite(table.X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"{path}: column {table.names[col]!r} has a missing or infinite value "
            f"(data row {row + 1})"
        )
    return table
