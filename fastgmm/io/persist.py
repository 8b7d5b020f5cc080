"""Safe persistence: a versioned, non-pickle model file.

Format (``.npz``-style zip archive, ``FORMAT_VERSION`` 1):

``meta.json``
    ``{"format": "fastgmm-model", "format_version": 1, "fastgmm_version": ...,
    "params": {constructor parameters that are JSON scalars}, "fitted": {converged_,
    n_iter_, lower_bound_, lower_bounds_, n_features_in_}, "arrays": {name: sha256}}``
``<name>.npy``
    one member per array (weights_, means_, covariances_, precisions_,
    precisions_cholesky_, and
    feature_names_in_ / the *_init arrays when present), written and read with
    ``allow_pickle=False``.

Loading never executes code: arrays are read with ``allow_pickle=False`` and every
value is validated (format and version, checksums, shapes, dtypes, finiteness,
normalised weights, positive Cholesky diagonals) before a model is built.
"""

import hashlib
import io
import json
import math
import zipfile

import numpy as np

FORMAT = "fastgmm-model"
FORMAT_VERSION = 1
_FITTED_ARRAYS = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
)
_INIT_ARRAYS = ("weights_init", "means_init", "precisions_init")

#: estimator classes a model file may name ("estimator" in meta.json; files written
#: before the key existed hold a GaussianMixture), imported on load by name so that
#: this module never imports an estimator
ESTIMATORS = {"GaussianMixture": "fastgmm.mixture:GaussianMixture"}


def _estimator_name(model):
    for cls in type(model).__mro__:
        if cls.__name__ in ESTIMATORS:
            return cls.__name__
    raise TypeError(f"cannot save a {type(model).__name__}: not a fastgmm estimator")


def _estimator_class(name, path):
    from importlib import import_module

    if name not in ESTIMATORS:
        raise ModelFileError(f"{path}: unknown estimator {name!r}")
    module, _, attr = ESTIMATORS[name].partition(":")
    return getattr(import_module(module), attr)


class ModelFileError(ValueError):
    """A model file is unreadable, corrupted, tampered with or from a newer format."""


def _array_bytes(array):
    buf = io.BytesIO()
    array = np.asarray(array)  # 0-d arrays stay 0-d (np.ascontiguousarray would not)
    if not array.flags.c_contiguous:
        array = array.copy(order="C")
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def save(model, path):
    """Write a fitted GaussianMixture to ``path`` (see the module docstring)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model)
    if getattr(model, "noise_weight_", None) is not None:
        raise ValueError(
            "Models with a noise component cannot be saved in the model file format "
            "yet; pickle or joblib keep them."
        )
    arrays = {name: getattr(model, name) for name in _FITTED_ARRAYS}
    if hasattr(model, "feature_names_in_"):
        arrays["feature_names_in_"] = np.asarray(model.feature_names_in_, dtype=str)
    params = {}
    for key, value in model.get_params().items():
        if key in _INIT_ARRAYS:
            if value is not None:
                arrays[key] = np.asarray(value, dtype=np.float64)
        elif value is None or isinstance(value, (bool, int, float, str)):
            params[key] = value
        elif isinstance(value, np.integer):
            params[key] = int(value)
    blobs = {name: _array_bytes(a) for name, a in arrays.items()}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fastgmm_version": _version(),
        "estimator": _estimator_name(model),
        "params": params,
        "fitted": {
            "converged_": bool(model.converged_),
            "n_iter_": int(model.n_iter_),
            "lower_bound_": float(model.lower_bound_),
            "lower_bounds_": [float(v) for v in model.lower_bounds_],
            "n_features_in_": int(model.n_features_in_),
        },
        "arrays": {name: hashlib.sha256(b).hexdigest() for name, b in blobs.items()},
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("meta.json", json.dumps(meta, indent=1, allow_nan=True))
        for name, blob in blobs.items():
            zf.writestr(name + ".npy", blob)


def _version():
    from .. import __version__

    return __version__


def _read(path):
    try:
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read("meta.json"))
            if not isinstance(meta, dict):
                raise ModelFileError(f"{path}: meta.json is not an object")
            blobs = {}
            for name in meta.get("arrays", {}):
                blobs[name] = zf.read(name + ".npy")
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(
            f"{path}: not a readable fastgmm model file (truncated or corrupted): {exc}"
        ) from None
    return meta, blobs


def _check_header(meta, path):
    if meta.get("format") != FORMAT:
        raise ModelFileError(
            f"{path}: not a fastgmm model file (format {meta.get('format')!r})"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model file format version {version} is newer than this fastgmm "
            f"({_version()}) reads (version {FORMAT_VERSION}); upgrade fastgmm."
        )


def _decode_arrays(meta, blobs, path):
    arrays = {}
    for name, blob in blobs.items():
        if hashlib.sha256(blob).hexdigest() != meta["arrays"][name]:
            raise ModelFileError(
                f"{path}: checksum mismatch for {name} (corrupted or tampered)"
            )
        try:
            arrays[name] = np.lib.format.read_array(
                io.BytesIO(blob), allow_pickle=False
            )
        except ValueError as exc:
            raise ModelFileError(f"{path}: cannot read array {name}: {exc}") from None
    missing = [n for n in _FITTED_ARRAYS if n not in arrays]
    if missing:
        raise ModelFileError(f"{path}: missing arrays {missing}")
    return arrays


def _check_model(model, path):
    """Shapes, dtypes and values of the fitted arrays, against the parameters."""
    from ..model import covariance

    k, d = model.n_components, model.n_features_in_
    cov_model = covariance.get(model.covariance_type)
    shape = cov_model.shape(k, d)
    expected = {
        "weights_": (k,), "means_": (k, d), "covariances_": shape,
        "precisions_": shape, "precisions_cholesky_": shape,
    }  # fmt: skip
    for name, want in expected.items():
        a = getattr(model, name)
        if a.dtype not in (np.float32, np.float64) or a.shape != want:
            raise ModelFileError(
                f"{path}: {name} has dtype {a.dtype} and shape {a.shape}, "
                f"expected float and {want}"
            )
        if not np.all(np.isfinite(a)):
            raise ModelFileError(f"{path}: {name} has non-finite values")
    w = model.weights_
    if np.any(w < 0) or not math.isclose(float(w.sum()), 1.0, abs_tol=1e-5):
        raise ModelFileError(f"{path}: weights_ are not a probability vector")
    pc = model.precisions_cholesky_
    if cov_model.form == "dense":
        pc = np.diagonal(pc, axis1=-2, axis2=-1)
    if np.any(pc <= 0):
        raise ModelFileError(
            f"{path}: precisions_cholesky_ is not a valid Cholesky factor"
        )


def load(path):
    """Read a model written by :func:`save`; raises ModelFileError on any problem."""
    meta, blobs = _read(path)
    _check_header(meta, path)
    arrays = _decode_arrays(meta, blobs, path)
    cls = _estimator_class(meta.get("estimator", "GaussianMixture"), path)
    try:
        params = dict(meta["params"])
        params.update({n: arrays[n] for n in _INIT_ARRAYS if n in arrays})
        model = cls(**params)
        model._validate_params()
        fitted = meta["fitted"]
        for name in (
            "converged_",
            "n_iter_",
            "lower_bound_",
            "lower_bounds_",
            "n_features_in_",
        ):
            setattr(model, name, fitted[name])
    except ModelFileError:
        raise
    except Exception as exc:  # wrong keys or types in meta.json
        raise ModelFileError(f"{path}: invalid model metadata: {exc}") from None
    for name in _FITTED_ARRAYS:
        setattr(model, name, arrays[name])
    if "feature_names_in_" in arrays:
        model.feature_names_in_ = arrays["feature_names_in_"].astype(object)
    _check_model(model, path)
    return model
