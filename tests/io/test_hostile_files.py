"""A corpus of hostile model files: every one gives ModelFileError, none a crash, a
hang, another exception, or more memory than a small multiple of the model.

Checksums are recomputed after each edit ("re-signed"): anyone can, so the values
themselves must be checked.
"""

import hashlib
import io
import json
import os
import struct
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

import fastgmm
from fastgmm import GaussianMixture
from fastgmm.io import archive, persist
from fastgmm.io.persist import ModelFileError


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Fitted models of every covariance form, saved; {cov_type: (model, path)}."""
    d = tmp_path_factory.mktemp("hostile")
    gen = np.random.default_rng(3)
    X = np.vstack([gen.normal(size=(150, 3)), gen.normal(size=(150, 3)) + 4])
    out = {}
    for cov in ("full", "tied", "diag", "spherical", "EEI", "EII"):
        model = GaussianMixture(2, covariance_type=cov, random_state=0).fit(X)
        model.save(d / f"{cov}.fgmm")
        out[cov] = (model, d / f"{cov}.fgmm")
    return out


def members(path):
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def write(path, parts, resign=True, method=zipfile.ZIP_DEFLATED):
    """A zip of ``parts``; with ``resign`` the checksums in meta.json are redone."""
    parts = dict(parts)
    if resign and "meta.json" in parts:
        meta = json.loads(parts["meta.json"])
        for name in meta["arrays"]:
            if name + ".npy" in parts:
                digest = hashlib.sha256(parts[name + ".npy"]).hexdigest()
                meta["arrays"][name] = digest
        parts["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name, blob in parts.items():
            zf.writestr(name, blob)
    return path


def npy(array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def edit_meta(parts, fn):
    meta = json.loads(parts["meta.json"])
    fn(meta)
    return {**parts, "meta.json": json.dumps(meta).encode()}


def arrays_equal(a, b):
    names = ("weights_", "means_", "covariances_", "precisions_cholesky_")
    return all(np.array_equal(getattr(a, n), getattr(b, n)) for n in names)


def refused(path, *words, **kwargs):
    with pytest.raises(ModelFileError) as info:
        fastgmm.load(path, **kwargs)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message, message
    return message


# ------------------------------------------------------------------ corrupted bytes
def test_every_truncation(models, tmp_path):
    _, path = models["full"]
    blob = path.read_bytes()
    for cut in range(0, len(blob), max(1, len(blob) // 150)):
        (tmp_path / "t").write_bytes(blob[:cut])
        refused(tmp_path / "t")


def test_bit_flips(models, tmp_path):
    """One flipped bit anywhere: ModelFileError, or (a field nobody reads, such as a
    timestamp) the same model; never another exception."""
    model, path = models["full"]
    blob = bytearray(path.read_bytes())
    gen = np.random.default_rng(0)
    outcomes = {"refused": 0, "same": 0}
    for pos in gen.choice(len(blob), 400, replace=False):
        bad = bytearray(blob)
        bad[pos] ^= 1 << int(gen.integers(8))
        (tmp_path / "f").write_bytes(bad)
        try:
            loaded = fastgmm.load(tmp_path / "f")
        except ModelFileError:
            outcomes["refused"] += 1
            continue
        assert arrays_equal(loaded, model), pos
        outcomes["same"] += 1
    assert outcomes["refused"] > 300, outcomes


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x89PNG\r\n" * 100, bytes(range(256)) * 40, b"PK\x03\x04" * 9],
)
def test_not_model_files(tmp_path, blob):
    (tmp_path / "x").write_bytes(blob)
    refused(tmp_path / "x", "not a readable fastgmm model file")


def test_other_zip_files(tmp_path):
    (tmp_path / "empty").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    refused(tmp_path / "empty", "meta.json is missing")
    write(tmp_path / "a", {"hello.txt": b"hi"}, resign=False)
    refused(tmp_path / "a", "meta.json is missing")
    write(tmp_path / "b", {"meta.json": b"[1, 2]"}, resign=False)
    refused(tmp_path / "b", "not a JSON object")
    write(tmp_path / "c", {"meta.json": b"\xff\xfe\x00garbage"}, resign=False)
    refused(tmp_path / "c", "not valid JSON")


def test_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "fifo")  # opening it for reading would block forever
    refused(tmp_path / "fifo", "not a regular file")
    if os.path.exists("/dev/zero"):
        with pytest.raises(ModelFileError, match="not a regular file"):
            fastgmm.load("/dev/zero")
    with pytest.raises(IsADirectoryError):
        fastgmm.load(tmp_path)


# ---------------------------------------------------------------------------- bombs
def _peak(fn):
    tracemalloc.start()
    try:
        try:
            fn()
        except ModelFileError:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_zip_bomb_member_is_refused_before_inflating(models, tmp_path):
    _, path = models["full"]
    parts = members(path)
    zeros = b"\0" * (200 << 20)  # 200 MiB of zeros deflate to ~200 KiB
    bomb = write(tmp_path / "bomb", {**parts, "covariances_.npy": zeros})
    assert bomb.stat().st_size < 1 << 20
    peak = _peak(lambda: fastgmm.load(bomb))
    refused(bomb, "covariances_")
    assert peak < 8 << 20, peak
    spaces = {**parts, "meta.json": b" " * (50 << 20)}
    meta_bomb = write(tmp_path / "meta", spaces, resign=False)
    peak = _peak(lambda: fastgmm.load(meta_bomb))
    refused(meta_bomb, "meta.json declares")
    assert peak < 4 << 20, peak


def _central_entry(blob, name):
    """Offset of the central-directory entry of ``name`` in a zip's bytes."""
    at = 0
    while True:
        at = blob.index(b"PK\x01\x02", at + 1)
        n = struct.unpack_from("<H", blob, at + 28)[0]
        if blob[at + 46 : at + 46 + n] == name.encode():
            return at


def test_lying_declared_size_stops_inflating_at_it(models, tmp_path):
    """The directory declares the size the shape needs; the member inflates to far
    more: inflating stops at the declared size and the CRC check refuses it."""
    model, path = models["full"]
    parts = members(path)
    honest = len(parts["covariances_.npy"])
    data = parts["covariances_.npy"] + b"\0" * (200 << 20)
    blob = bytearray(
        write(tmp_path / "lie", {**parts, "covariances_.npy": data}).read_bytes()
    )
    at = _central_entry(bytes(blob), "covariances_.npy")
    struct.pack_into("<L", blob, at + 24, honest)  # uncompressed size
    (tmp_path / "lie").write_bytes(blob)
    peak = _peak(lambda: fastgmm.load(tmp_path / "lie"))
    refused(tmp_path / "lie")
    assert peak < 8 << 20, peak


def test_deep_json_nesting(models, tmp_path):
    _, path = models["full"]
    deep = b"[" * 200_000 + b"]" * 200_000
    write(tmp_path / "deep", {**members(path), "meta.json": deep}, resign=False)
    refused(tmp_path / "deep", "meta.json is not valid JSON")
    nested = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    write(tmp_path / "deep2", {**members(path), "meta.json": nested}, resign=False)
    refused(tmp_path / "deep2", "meta.json is not valid JSON")


def test_huge_declared_shapes_allocate_nothing(models, tmp_path):
    _, path = models["diag"]
    parts = members(path)

    def huge_k(meta):
        meta["params"]["n_components"] = 10**12

    write(tmp_path / "k", edit_meta(parts, huge_k))
    peak = _peak(lambda: fastgmm.load(tmp_path / "k"))
    refused(tmp_path / "k", "weights_ has shape (2,), expected (1000000000000,)")
    assert peak < 4 << 20
    # a .npy header declaring 10**12 weights in a meta declaring as many
    header = npy(np.zeros(2))[:128].replace(b"(2,)", b"(1000000000000,)")
    write(tmp_path / "h", {**edit_meta(parts, huge_k), "weights_.npy": header})
    peak = _peak(lambda: fastgmm.load(tmp_path / "h"))
    refused(tmp_path / "h", "weights_: the zip directory declares")
    assert peak < 4 << 20


def test_max_bytes(models):
    model, path = models["full"]
    refused(path, "max_bytes=100", max_bytes=100)
    assert arrays_equal(fastgmm.load(path, max_bytes=1 << 20), model)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_load_memory_is_a_small_multiple_of_the_model(tmp_path):
    gen = np.random.default_rng(1)
    X = gen.normal(size=(3000, 40))
    model = GaussianMixture(16, max_iter=2, random_state=0).fit(X)
    model.save(tmp_path / "m")
    size = sum(getattr(model, n).nbytes for n in persist._FITTED_ARRAYS)
    fastgmm.load(tmp_path / "m")  # imports outside the measurement
    peak = _peak(lambda: fastgmm.load(tmp_path / "m"))
    assert peak < 3 * size, (peak, size)


# ------------------------------------------------------------------- zip structure
def test_directory_with_too_many_members(models, tmp_path):
    _, path = models["full"]
    parts = members(path)
    extra = {f"junk{i}": b"" for i in range(archive.MAX_MEMBERS)}
    write(tmp_path / "many", {**parts, **extra}, resign=False)
    refused(tmp_path / "many", "zip directory declares")


def test_zip64_records_declaring_huge_directories(models, tmp_path):
    """A zip64 end record (before its locator, or where the locator points) that
    declares a million members is refused before zipfile reads the directory."""
    _, path = models["full"]
    blob = path.read_bytes()
    body, eocd = blob[:-22], blob[-22:]
    record = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 10**6, 10**6, 10**9, 0
    )
    for where in ("before", "elsewhere"):
        if where == "before":
            at, data = len(body), body + record
        else:  # the record at the start of the junk, the locator pointing to it
            at, data = len(body), body + record + b"\0" * 56
        locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, at, 1)
        (tmp_path / where).write_bytes(data + locator + eocd)
        refused(tmp_path / where, "zip directory declares 1000000 members")


def test_unexpected_or_duplicate_members(models, tmp_path):
    _, path = models["full"]
    parts = members(path)
    write(tmp_path / "u", {**parts, "evil.py": b"print(1)"}, resign=False)
    refused(tmp_path / "u", "unexpected members ['evil.py']")
    with zipfile.ZipFile(tmp_path / "dup", "w") as zf:
        for name, blob in parts.items():
            zf.writestr(name, blob)
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("means_.npy", parts["means_.npy"])
    refused(tmp_path / "dup", "names a member twice")


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "words"),
    [
        (10, "<H", 99, "compression method 99"),
        (10, "<H", zipfile.ZIP_BZIP2, "compression method 12"),
        (8, "<H", 0x1, "encrypted"),
    ],
)
def test_patched_directory_fields(models, tmp_path, offset, fmt, value, words):
    _, path = models["full"]
    blob = bytearray(path.read_bytes())
    at = _central_entry(bytes(blob), "means_.npy")
    struct.pack_into(fmt, blob, at + offset, value)
    (tmp_path / "p").write_bytes(blob)
    refused(tmp_path / "p", words)


# --------------------------------------------------------------------------- arrays
@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.zeros((2, 3), np.int64), "dtype int64"),
        (np.zeros((2, 3), np.complex128), "dtype complex128"),
        (np.zeros((2, 3), np.float16), "dtype float16"),
        (np.array([["a"] * 3] * 2), "dtype <U1"),
        (np.zeros(2, [("x", "f8"), ("y", "f8"), ("z", "f8")]), "dtype"),
        (np.array([[None] * 3] * 2, dtype=object), "dtype object"),
        (np.zeros((3, 2)), "shape (3, 2), expected (2, 3)"),
        (np.zeros(6), "shape (6,)"),
    ],
)
def test_wrong_arrays(models, tmp_path, array, words):
    _, path = models["full"]
    write(tmp_path / "w", {**members(path), "means_.npy": npy(array)})
    refused(tmp_path / "w", "means_", words)


def test_npy_header_attacks(models, tmp_path):
    _, path = models["full"]
    parts = members(path)
    long_header = b"\x93NUMPY\x01\x00" + struct.pack("<H", 60000) + b" " * 60000
    write(tmp_path / "long", {**parts, "means_.npy": long_header})
    refused(tmp_path / "long", "means_ is not a readable .npy array")
    nested = b"{'descr': " + b"(" * 300 + b"'<f8'" + b")" * 300 + b"}"
    nested = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(nested)) + nested
    write(tmp_path / "nest", {**parts, "means_.npy": nested})
    refused(tmp_path / "nest", "means_ is not a readable .npy array")
    short = parts["means_.npy"][:-8]
    write(tmp_path / "short", {**parts, "means_.npy": short})
    refused(tmp_path / "short", "means_: the zip directory declares")


def test_other_byte_order_and_fortran_order_load_the_same(models, tmp_path):
    model, path = models["full"]
    parts = members(path)
    parts["means_.npy"] = npy(model.means_.astype(">f8"))
    parts["covariances_.npy"] = npy(np.asfortranarray(model.covariances_))
    loaded = fastgmm.load(write(tmp_path / "o", parts))
    assert arrays_equal(loaded, model)
    assert loaded.means_.dtype == np.float64 and loaded.covariances_.flags.c_contiguous


# --------------------------------------------------------------------------- values
def _edit_array(parts, name, fn):
    array = np.load(io.BytesIO(parts[name + ".npy"]))
    return {**parts, name + ".npy": npy(fn(array))}


VALUE_CASES = [
    ("full", "covariances_", lambda a: -a, "covariances_ is not positive semidefinite"),
    ("full", "covariances_", lambda a: a * 2, "covariances_ disagree"),
    ("full", "covariances_", lambda a: a + np.triu(np.ones(3), 1), "not symmetric"),
    ("full", "precisions_", lambda a: a @ a, "precisions_ disagree"),
    ("full", "precisions_", lambda a: a - 10 * np.eye(3) * a.max(), "precisions_ is not positive"),
    ("full", "precisions_cholesky_", lambda a: a.transpose(0, 2, 1), "upper-triangular"),
    ("full", "precisions_cholesky_", lambda a: -a, "positive diagonal"),
    ("tied", "covariances_", lambda a: a * 1.01, "covariances_ disagree"),
    ("diag", "covariances_", lambda a: -a, "covariances_ has values <= 0"),
    ("diag", "precisions_", lambda a: a * 3, "precisions_ disagree"),
    ("spherical", "precisions_cholesky_", lambda a: a * 0, "precisions_cholesky_ has values <= 0"),
    ("EII", "covariances_", lambda a: a * 1.5, "covariances_ disagree"),
    ("full", "weights_", lambda a: a * 2, "weights_ are not a probability vector"),
    ("full", "weights_", lambda a: a * [-1, 3], "weights_ are not a probability vector"),
    ("full", "means_", lambda a: a * np.nan, "means_ has non-finite values"),
    ("full", "covariances_", lambda a: a * np.inf, "covariances_ has non-finite"),
    ("full", "lower_bounds_", lambda a: a * np.nan, "lower_bounds_ has non-finite"),
    ("full", "lower_bounds_", lambda a: a.astype(np.float32), "lower_bounds_ has dtype float32"),
]  # fmt: skip


@pytest.mark.parametrize(("cov", "name", "fn", "words"), VALUE_CASES)
def test_invalid_values(models, tmp_path, cov, name, fn, words):
    _, path = models[cov]
    write(tmp_path / "v", _edit_array(members(path), name, fn))
    refused(tmp_path / "v", words)


def _set(keys, value):
    def fn(meta):
        target = meta
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return fn


META_CASES = [
    (("fitted", "lower_bound_"), float("nan"), "lower_bound_ must be a number"),
    (("fitted", "lower_bound_"), float("inf"), "lower_bound_ must be a number"),
    (("fitted", "lower_bound_"), "high", "lower_bound_ must be a number"),
    (("fitted", "n_iter_"), float("inf"), "n_iter_ must be an integer >= 0"),
    (("fitted", "n_iter_"), -1, "n_iter_ must be an integer >= 0"),
    (("fitted", "n_iter_"), 2.5, "n_iter_ must be an integer >= 0"),
    (("fitted", "n_iter_"), True, "n_iter_ must be an integer >= 0"),
    (("fitted", "converged_"), "yes", "converged_ must be true or false"),
    (("fitted", "n_features_in_"), "3", "n_features_in_ must be an integer"),
    (("fitted", "n_features_in_"), 4, "means_ has shape (2, 3), expected (2, 4)"),
    (("fitted",), [], "'fitted' is not an object"),
    (("params",), [["n_components", 2]], "'params' is not an object"),
    (("params", "n_components"), "2", "n_components must be an integer >= 1"),
    (("params", "n_components"), 0, "n_components must be an integer >= 1"),
    (("params", "covariance_type"), "banded", "covariance_type must be one of"),
    (("params", "tol"), {"$gt": 1}, "parameter 'tol' holds a dict"),
    (("params", "tol"), "abc", "invalid model parameters"),
    (("params", "unknown"), 1, "invalid model parameters"),
    (("params", "means_init"), 1.0, "must be an array member"),
    (("estimator",), "os.system", "unknown estimator"),
    (("estimator",), ["GaussianMixture"], "unknown estimator"),
    (("format_version",), 1.5, "invalid format_version"),
    (("format_version",), 0, "invalid format_version"),
    (("arrays", "means_"), "not-a-digest", "checksum of means_ is not"),
    (("arrays", "evil"), "0" * 64, "unknown arrays ['evil']"),
    (("arrays",), {}, "missing arrays"),
]


@pytest.mark.parametrize(("keys", "value", "words"), META_CASES)
def test_invalid_metadata(models, tmp_path, keys, value, words):
    _, path = models["full"]
    parts = edit_meta(members(path), _set(keys, value))
    write(tmp_path / "m", parts, resign=keys[0] != "arrays")
    refused(tmp_path / "m", words)


def test_checksums_still_checked(models, tmp_path):
    _, path = models["full"]
    parts = _edit_array(members(path), "means_", lambda a: a + 1)
    write(tmp_path / "c", parts, resign=False)
    refused(tmp_path / "c", "checksum mismatch for means_")


def test_feature_names_and_init_arrays_are_checked(tmp_path):
    gen = np.random.default_rng(2)
    X = gen.normal(size=(200, 2))
    model = GaussianMixture(2, means_init=[[0, 0], [1, 1]], random_state=0).fit(X)
    model.feature_names_in_ = np.array(["a", "b"], dtype=object)
    model.save(tmp_path / "m")
    parts = members(tmp_path / "m")
    cases = [
        ({"feature_names_in_.npy": npy(np.array(["a", "b", "c"]))}, "shape (3,)"),
        ({"feature_names_in_.npy": npy(np.array([1.0, 2.0]))}, "dtype float64"),
        ({"feature_names_in_.npy": npy(np.array(["x" * 5000] * 2))}, "longer than"),
        ({"means_init.npy": npy(np.zeros((3, 2)))}, "means_init has shape (3, 2)"),
        ({"weights_init.npy": npy(np.array([0.9, 0.9]))}, "weights_init are not"),
        ({"precisions_init.npy": npy(-np.stack([np.eye(2)] * 2))}, "precisions_init"),
    ]
    for extra, words in cases:
        edited = dict(parts, **extra)
        meta = json.loads(edited["meta.json"])
        for name in extra:
            meta["arrays"][name[:-4]] = "0" * 64
        edited["meta.json"] = json.dumps(meta).encode()
        write(tmp_path / "x", edited)
        refused(tmp_path / "x", words)


def test_version_1_files_still_load(models, tmp_path):
    model, path = models["diag"]
    parts = members(path)
    bounds = parts.pop("lower_bounds_.npy")

    def v1(meta):
        meta["format_version"] = 1
        meta["fitted"]["lower_bounds_"] = np.load(io.BytesIO(bounds)).tolist()
        del meta["arrays"]["lower_bounds_"]

    loaded = fastgmm.load(write(tmp_path / "v1", edit_meta(parts, v1)))
    assert arrays_equal(loaded, model) and loaded.lower_bounds_ == model.lower_bounds_
    bad = edit_meta(parts, lambda m: (v1(m), m["fitted"]["lower_bounds_"].append("x")))
    refused(write(tmp_path / "v1b", bad), "lower_bounds_ must be a list of numbers")


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical", "EEI", "EII"])
def test_float32_ill_conditioned_models_round_trip(tmp_path, cov):
    """Stored float32 covariances of an ill-conditioned fit are PSD and consistent
    only to float32 rounding: they load (the checks allow that rounding)."""
    gen = np.random.default_rng(5)
    X = (gen.normal(size=(400, 4)) * [1e3, 1.0, 1e-2, 30.0]).astype(np.float32)
    model = GaussianMixture(3, covariance_type=cov, random_state=0).fit(X)
    model.save(tmp_path / "m")
    assert arrays_equal(fastgmm.load(tmp_path / "m"), model)


# ----------------------------------------------------------------------------- save
def test_failed_save_leaves_the_old_file(models, tmp_path, monkeypatch):
    model, path = models["full"]
    target = tmp_path / "model.fgmm"
    target.write_bytes(path.read_bytes())
    calls = []

    def failing(self, name, data, *args, **kwargs):
        calls.append(name)
        if len(calls) == 3:
            raise OSError("disk full")
        return original(self, name, data, *args, **kwargs)

    original = zipfile.ZipFile.writestr
    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing)
    other, _ = models["diag"]
    with pytest.raises(OSError, match="disk full"):
        other.save(target)
    monkeypatch.undo()
    assert target.read_bytes() == path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.fgmm"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.save(tmp_path / "missing" / "m.fgmm")


def test_redundant_members_are_stored_not_deflated(tmp_path):
    """Identity-like matrices would deflate ~1000:1; they are stored, so no member
    of a file fastgmm writes inflates by more than STORE_RATIO."""
    model = GaussianMixture(1, random_state=0).fit(
        np.random.default_rng(0).normal(size=(50, 2))
    )
    d = 200
    model.means_ = np.zeros((1, d))
    eye = np.eye(d)[None]
    model.covariances_, model.precisions_, model.precisions_cholesky_ = eye, eye, eye
    model.n_features_in_ = d
    model.save(tmp_path / "eye")
    with zipfile.ZipFile(tmp_path / "eye") as zf:
        for info in zf.infolist():
            assert info.file_size <= persist.STORE_RATIO * max(info.compress_size, 1)
    assert arrays_equal(fastgmm.load(tmp_path / "eye"), model)
    assert len(zlib.compress(eye.tobytes())) * persist.STORE_RATIO < eye.nbytes
