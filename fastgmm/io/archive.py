"""Bounded reading of a model file: its zip directory, members and ``.npy`` arrays.

Nothing here trusts a size it has not checked. The zip directory is checked (member
count, directory size) before :mod:`zipfile` parses it; a member is inflated only
after its declared size was accepted by the caller, in chunks, never past that size;
an ``.npy`` header is parsed with a length cap and its dtype, shape and data length
checked before any array is built. Every problem raises :class:`ModelFileError`.
"""

import hashlib
import io
import os
import stat
import struct
import zipfile
import zlib
from contextlib import contextmanager

import numpy as np

from .errors import ModelFileError

#: members a model file may hold (meta.json and at most a dozen arrays)
MAX_MEMBERS = 16
#: bytes of the zip central directory of MAX_MEMBERS short names, with headroom
MAX_DIRECTORY = 64 * 1024
#: bytes of an ``.npy`` header (numpy writes ~128; its own reader caps at 10000)
MAX_NPY_HEADER = 4096
#: inflate in chunks of this many bytes
READ_CHUNK = 1 << 20

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record (22 bytes)
_EOCD64_LOCATOR = struct.Struct("<4sLQL")  # 20 bytes, just before the EOCD
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # 56 bytes, just before the locator
#: exceptions of zipfile, zlib, struct and numpy on malformed input
MALFORMED = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    EOFError,
    NotImplementedError,  # unknown compression method
    RuntimeError,  # encrypted member; RecursionError is a RuntimeError
    ValueError,  # includes UnicodeDecodeError
    TypeError,
    KeyError,
    OverflowError,
    SyntaxError,
    MemoryError,
)


def _directory_sizes(fh, size):
    """(members, directory bytes) from the end records, zip64 values included."""
    tail = min(size, _EOCD.size + 0xFFFF)
    fh.seek(size - tail)
    data = fh.read(tail)
    at = data.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(data):
        raise zipfile.BadZipFile("not a zip archive (no end of central directory)")
    _, _, _, _, total, cd_size, _, _ = _EOCD.unpack_from(data, at)
    sizes = [(total, cd_size)]
    end = size - tail + at  # offset of the EOCD in the file
    if end >= _EOCD64_LOCATOR.size + _EOCD64.size:
        fh.seek(end - _EOCD64_LOCATOR.size - _EOCD64.size)
        block = fh.read(_EOCD64.size + _EOCD64_LOCATOR.size)
        locator = _EOCD64_LOCATOR.unpack_from(block, _EOCD64.size)
        if locator[0] == b"PK\x06\x07":
            # the zip64 record before the locator, and the one it points to: a
            # reader may take either, so both are checked
            records = [block[: _EOCD64.size]]
            fh.seek(min(locator[2], size))
            records.append(fh.read(_EOCD64.size))
            for rec in records:
                if len(rec) == _EOCD64.size and rec.startswith(b"PK\x06\x06"):
                    rec = _EOCD64.unpack(rec)
                    sizes.append((rec[7], rec[8]))  # entries total, directory size
    members = max(m for m, _ in sizes)
    directory = max(c for _, c in sizes)
    return members, directory


@contextmanager
def open_archive(path):
    """A :class:`zipfile.ZipFile` of ``path`` once its directory is known to be small
    (a context manager; the file is closed on exit).

    ``FileNotFoundError``, ``IsADirectoryError`` and ``PermissionError`` pass
    through; a FIFO, device or socket is refused (it could block or never end).
    """
    info = os.stat(path)
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"{path}: is a directory, not a model file")
    if not stat.S_ISREG(info.st_mode):
        raise ModelFileError("not a regular file")
    with open(path, "rb") as fh:
        members, directory = _directory_sizes(fh, info.st_size)
        if members > MAX_MEMBERS or directory > MAX_DIRECTORY:
            raise ModelFileError(
                f"the zip directory declares {members} members in {directory} bytes; "
                f"a model file has at most {MAX_MEMBERS}"
            )
        fh.seek(0)
        with zipfile.ZipFile(fh) as zf:
            names = zf.namelist()
            if len(names) != len(set(names)):
                raise ModelFileError("the zip directory names a member twice")
            yield zf


def member_info(zf, name):
    """The directory entry of ``name`` (stored or deflated, not encrypted)."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ModelFileError(f"member {name} is missing") from None
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ModelFileError(
            f"member {name} uses compression method {info.compress_type}"
        )
    if info.flag_bits & 0x1:
        raise ModelFileError(f"member {name} is encrypted")
    return info


def read_member(zf, name, limit):
    """The bytes of member ``name`` and their SHA-256, if it declares <= ``limit``.

    The declared size (zip directory) is checked first; inflating stops at it, and
    the CRC (checked by :mod:`zipfile` at the end) and the length are verified.
    """
    info = member_info(zf, name)
    if info.file_size > limit:
        raise ModelFileError(
            f"member {name} declares {info.file_size} bytes, more than the "
            f"{limit} its declared shape needs"
        )
    buf, digest = bytearray(), hashlib.sha256()
    with zf.open(info) as fh:
        while len(buf) < info.file_size:
            chunk = fh.read(min(READ_CHUNK, info.file_size - len(buf)))
            if not chunk:
                break
            buf += chunk
            digest.update(chunk)
        if len(buf) != info.file_size or fh.read(1):
            raise ModelFileError(f"member {name} is not {info.file_size} bytes long")
    return bytes(buf), digest.hexdigest()


def _read_exactly(fh, view, digest):
    """Fill the memoryview ``view`` from ``fh`` in chunks; False if ``fh`` ends first."""
    done = 0
    while done < len(view):
        chunk = fh.read(min(READ_CHUNK, len(view) - done))
        if not chunk:
            return False
        view[done : done + len(chunk)] = chunk
        digest.update(chunk)
        done += len(chunk)
    return True


def _npy_header(head, name):
    """(dtype, shape, fortran_order, header length) of the first bytes of a .npy."""
    fmt = np.lib.format
    fh = io.BytesIO(head)
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh, MAX_NPY_HEADER)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(fh, MAX_NPY_HEADER)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except MALFORMED as exc:
        raise ModelFileError(f"{name} is not a readable .npy array: {exc}") from None
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ModelFileError(f"{name} has an invalid shape {shape!r}")
    return dtype, tuple(shape), bool(fortran), fh.tell()


def read_npy(zf, name, accept):
    """(array, SHA-256 of the member) of the ``.npy`` member ``name + ".npy"``.

    Only the header is inflated first; ``accept(name, dtype, shape)`` raises
    unless the declared dtype and shape are wanted; the member's declared size
    must then be exactly header + data, and the data are inflated into an array
    of that size (native byte order, C order, writeable).
    """
    info = member_info(zf, name + ".npy")
    digest = hashlib.sha256()
    with zf.open(info) as fh:
        head = fh.read(min(info.file_size, MAX_NPY_HEADER + 16))
        digest.update(head)
        dtype, shape, fortran, offset = _npy_header(head, name)
        accept(name, dtype, shape)
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if info.file_size != offset + nbytes:
            raise ModelFileError(
                f"{name}: the zip directory declares {info.file_size} bytes, its "
                f".npy header {offset + nbytes}"
            )
        data = bytearray(nbytes)
        view = memoryview(data)
        view[: len(head) - offset] = head[offset:]
        if not _read_exactly(fh, view[len(head) - offset :], digest) or fh.read(1):
            raise ModelFileError(f"{name} is not {info.file_size} bytes long")
    array = np.frombuffer(data, dtype=dtype).reshape(
        shape, order="F" if fortran else "C"
    )
    native = dtype.newbyteorder("=")
    if array.flags.c_contiguous and dtype == native:
        return array, digest.hexdigest()  # writeable: it views the bytearray
    return np.array(array, dtype=native, order="C"), digest.hexdigest()
