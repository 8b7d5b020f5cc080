"""Safe persistence: a versioned, non-pickle model file.

Format (zip archive, ``FORMAT_VERSION`` 2):

``meta.json`` (at most :data:`MAX_META` bytes)
    ``{"format": "fastgmm-model", "format_version": 2, "fastgmm_version": ...,
    "estimator": "GaussianMixture", "params": {constructor parameters that are JSON
    scalars}, "fitted": {converged_, n_iter_, lower_bound_, n_features_in_},
    "arrays": {name: sha256 of the member}}``
``<name>.npy``
    one member per array: weights_, means_, covariances_, precisions_,
    precisions_cholesky_, lower_bounds_, feature_names_in_ / the *_init arrays when
    present, and an estimator's further fitted state (:data:`ESTIMATOR_ARRAYS`: a
    Bayesian mixture's posterior and priors). (Version 1 kept ``lower_bounds_`` in
    ``fitted``; it is still read.)

Loading never executes code and never trusts a size: the zip directory, meta.json,
each ``.npy`` header and each member's declared size are checked before anything
is inflated, members are inflated in bounded chunks, and every value is validated
(:mod:`fastgmm.io.checks`) before a model is built. Every malformed file raises
:class:`ModelFileError`. Files are written atomically (a temporary file in the same
folder, then renamed), so a failed save leaves no partial file.
"""

import hashlib
import io
import json
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from . import archive
from .atomic import atomic_write
from .checks import (
    _FITTED_ARRAYS,
    _INIT_ARRAYS,
    FORMAT,
    FORMAT_VERSION,
    array_specs,
    check_meta,
    check_values,
)
from .errors import ModelFileError

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "load", "read", "save"]

#: bytes meta.json may take (a real one takes about 1 KiB)
MAX_META = 1 << 20
#: members whose deflated size would be below 1/STORE_RATIO of their size are
#: stored uncompressed (identity-like matrices): no member inflates by more
STORE_RATIO = 100

#: estimator classes a model file may name ("estimator" in meta.json; files written
#: before the key existed hold a GaussianMixture), imported on load by name so that
#: this module never imports an estimator
ESTIMATORS = {
    "GaussianMixture": "fastgmm.mixture:GaussianMixture",
    "BayesianGaussianMixture": "fastgmm.bayesian:BayesianGaussianMixture",
}


def _concentration_shape(k, d, m, params):
    dp = params.get("weight_concentration_prior_type") == "dirichlet_process"
    return (2, k) if dp else (k,)


#: further fitted arrays of an estimator: name -> shape of (K, d, covariance model,
#: the file's constructor parameters); restored by the estimator's
#: ``_set_extra_state`` when it has one (which checks their values)
ESTIMATOR_ARRAYS = {
    "GaussianMixture": {},
    "BayesianGaussianMixture": {
        "weight_concentration_": _concentration_shape,
        "mean_precision_": lambda k, d, m, p: (k,),
        "degrees_of_freedom_": lambda k, d, m, p: () if m.shared else (k,),
        "weight_concentration_prior_": lambda k, d, m, p: (),
        "mean_precision_prior_": lambda k, d, m, p: (),
        "mean_prior_": lambda k, d, m, p: (d,),
        "degrees_of_freedom_prior_": lambda k, d, m, p: (),
        "covariance_prior_": lambda k, d, m, p: m.shape(1, d)[0 if m.shared else 1 :],
    },
}


def _estimator_name(model):
    for cls in type(model).__mro__:
        if cls.__name__ in ESTIMATORS:
            return cls.__name__
    raise TypeError(f"cannot save a {type(model).__name__}: not a fastgmm estimator")


def _estimator_class(name):
    from importlib import import_module

    module, _, attr = ESTIMATORS[name].partition(":")
    return getattr(import_module(module), attr)


# --------------------------------------------------------------------------- save
def _array_bytes(array):
    buf = io.BytesIO()
    array = np.asarray(array)  # 0-d arrays stay 0-d (np.ascontiguousarray would not)
    if not array.flags.c_contiguous:
        array = array.copy(order="C")
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def _arrays_of(model, name):
    arrays = {n: getattr(model, n) for n in _FITTED_ARRAYS}
    arrays.update({n: getattr(model, n) for n in ESTIMATOR_ARRAYS.get(name, {})})
    arrays["lower_bounds_"] = np.asarray(model.lower_bounds_, dtype=np.float64)
    if hasattr(model, "feature_names_in_"):
        arrays["feature_names_in_"] = np.asarray(model.feature_names_in_, dtype=str)
    return arrays


def save(model, path):
    """Write a fitted estimator to ``path`` (see the module docstring).

    The file is written to a temporary file in the same folder and renamed over
    ``path`` when complete.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model)
    if getattr(model, "noise_weight_", None) is not None:
        raise ValueError(
            "Models with a noise component cannot be saved in the model file format "
            "yet; pickle or joblib keep them."
        )
    if isinstance(getattr(model, "prior", None), dict):
        raise ValueError(
            "Models fitted with prior settings (a dict) cannot be saved in the model "
            "file format yet (prior=True can); pickle or joblib keep them."
        )
    name = _estimator_name(model)
    arrays = _arrays_of(model, name)
    params = {}
    for key, value in model.get_params().items():
        if key in _INIT_ARRAYS and not isinstance(value, (int, float)):
            if value is not None:
                arrays[key] = np.asarray(value, dtype=np.float64)
        elif value is None or isinstance(value, (bool, int, float, str)):
            params[key] = value
        elif isinstance(value, np.integer):
            params[key] = int(value)
    blobs = {n: _array_bytes(a) for n, a in arrays.items()}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fastgmm_version": _version(),
        "estimator": name,
        "params": params,
        "fitted": {
            "converged_": bool(model.converged_),
            "n_iter_": int(model.n_iter_),
            "lower_bound_": float(model.lower_bound_),
            "n_features_in_": int(model.n_features_in_),
        },
        "arrays": {n: hashlib.sha256(b).hexdigest() for n, b in blobs.items()},
    }
    with atomic_write(path, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
        zf.writestr(
            "meta.json",
            json.dumps(meta, indent=1, allow_nan=True),
            compress_type=zipfile.ZIP_DEFLATED,
        )
        for n, blob in blobs.items():
            packed = len(zlib.compress(blob, 1)) * STORE_RATIO >= len(blob)
            method = zipfile.ZIP_DEFLATED if packed else zipfile.ZIP_STORED
            zf.writestr(n + ".npy", blob, compress_type=method)


def _version():
    from .. import __version__

    return __version__


# --------------------------------------------------------------------------- read
@dataclass(frozen=True)
class ModelFile:
    """A model file whose every field and value was checked (see :func:`read`).

    Attributes
    ----------
    meta : fastgmm.io.checks.Meta
        The checked meta.json: estimator, params, fitted scalars, the covariance
        model, n_components, n_features.
    arrays : dict of ndarray
        Every array member, by attribute name.
    """

    meta: object
    arrays: dict

    def params(self):
        """The fitted parameters as float64 :class:`fastgmm.model.params.Params`."""
        from ..model.params import Params

        f64 = lambda name: np.asarray(self.arrays[name], dtype=np.float64)  # noqa: E731
        return Params(
            self.meta.model,
            f64("weights_"),
            f64("means_"),
            f64("covariances_"),
            f64("precisions_cholesky_"),
        )


def _read_meta(zf):
    blob, _ = archive.read_member(zf, "meta.json", MAX_META)
    try:
        meta = json.loads(blob)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, nesting
        raise ModelFileError(f"meta.json is not valid JSON: {exc}") from None
    return check_meta(meta, ESTIMATORS)


def _read_arrays(zf, meta, max_bytes):
    """Each array member, its header and declared size checked before inflating."""
    specs = array_specs(meta, ESTIMATOR_ARRAYS.get(meta.estimator))
    unexpected = sorted(
        set(zf.namelist()) - {"meta.json", *(n + ".npy" for n in specs)}
    )
    if unexpected:
        raise ModelFileError(f"unexpected members {unexpected}")
    budget = [max_bytes]

    def accept(name, dtype, shape):
        specs[name].check(name, dtype, shape)
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if budget[0] is not None:
            if nbytes > budget[0]:
                raise ModelFileError(f"the arrays need more than max_bytes={max_bytes}")
            budget[0] -= nbytes

    arrays = {}
    for name in specs:
        array, digest = archive.read_npy(zf, name, accept)
        if digest != meta.checksums[name]:
            raise ModelFileError(
                f"checksum mismatch for {name} (corrupted or tampered)"
            )
        arrays[name] = array
    return arrays, meta


def read(path, *, max_bytes=None):
    """Read and check a model file without building an estimator.

    Parameters
    ----------
    path : str or path-like
    max_bytes : int, optional
        Refuse a file whose arrays would take more than this many bytes (checked
        from the declared shapes, before anything is inflated). By default a file
        can make ``read`` allocate about twice the size of the model it declares
        (plus up to :data:`MAX_META` for meta.json), never more.

    Returns
    -------
    ModelFile

    Raises
    ------
    ModelFileError
        Any malformed, corrupted, tampered, inconsistent or newer-format file.
    FileNotFoundError, IsADirectoryError, PermissionError
        When ``path`` cannot be opened at all.
    """
    try:
        with archive.open_archive(path) as zf:
            arrays, meta = _read_arrays(zf, _read_meta(zf), max_bytes)
        check_values(arrays, meta)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise  # the path, not its content
    except (*archive.MALFORMED, OSError) as exc:  # e.g. EINVAL: a seek before 0
        what = type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
        raise ModelFileError(
            f"{path}: not a readable fastgmm model file (truncated or corrupted): "
            f"{what}"
        ) from None
    return ModelFile(meta, arrays)


def _build(model_file, path):
    """The estimator of a checked file; its own parameter validation applies."""
    meta, arrays = model_file.meta, model_file.arrays
    cls = _estimator_class(meta.estimator)
    params = dict(meta.params)
    params.update({n: arrays[n] for n in _INIT_ARRAYS if n in arrays})
    try:
        model = cls(**params)
        model._validate_params()
    except (TypeError, ValueError) as exc:  # unknown key, or a wrong type or value
        raise ModelFileError(f"{path}: invalid model parameters: {exc}") from None
    for name in ("converged_", "n_iter_", "lower_bound_", "n_features_in_"):
        setattr(model, name, meta.fitted[name])
    bounds = arrays.get("lower_bounds_", meta.fitted.get("lower_bounds_"))
    model.lower_bounds_ = [float(v) for v in np.asarray(bounds, dtype=np.float64)]
    for name in _FITTED_ARRAYS:
        setattr(model, name, arrays[name])
    if "feature_names_in_" in arrays:
        model.feature_names_in_ = arrays["feature_names_in_"].astype(object)
    extra = ESTIMATOR_ARRAYS.get(meta.estimator, {})
    if not hasattr(model, "_set_extra_state"):
        for name in extra:
            setattr(model, name, arrays[name])
    else:
        try:
            model._set_extra_state({n: arrays[n] for n in extra})
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: invalid fitted state: {exc}") from None
    forget = getattr(model, "_forget_derived", None)
    if forget is not None:  # (kept between method calls: see fastgmm._derived)
        forget()
    return model


def load(path, *, max_bytes=None):
    """Read a model written by :func:`save`, validating every field and value.

    Parameters
    ----------
    path : str or path-like
    max_bytes : int, optional
        Refuse a file whose arrays would take more than this many bytes (see
        :func:`read`); useful for files from untrusted sources.

    Returns
    -------
    GaussianMixture
        A fitted estimator.

    Raises
    ------
    ModelFileError
        Any malformed, corrupted, tampered, inconsistent or newer-format file
        (a subclass of ValueError).
    """
    return _build(read(path, max_bytes=max_bytes), path)
