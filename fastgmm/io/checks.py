"""What a model file may declare, and the checks of every value it holds.

:func:`check_meta` checks ``meta.json`` (types of every field, the format, the
estimator, the number of components and features, the covariance model);
:func:`array_specs` says which ``.npy`` members the file must and may hold and their
exact shapes and dtypes, so that their sizes are known before anything is inflated;
:func:`check_values` checks the arrays' values against the covariance-model table
(:mod:`fastgmm.model.covariance`): finite numbers, weights that sum to one, valid
Cholesky factors, symmetric positive (semi)definite covariances and precisions, and
covariances, precisions and factors that agree with each other to the rounding
their dtype allows. Every failure raises :class:`ModelFileError`.
"""

import math
from dataclasses import dataclass

import numpy as np

from .errors import ModelFileError

FORMAT = "fastgmm-model"
#: 2: ``lower_bounds_`` is an array member (1 kept it in meta.json)
FORMAT_VERSION = 2
_FITTED_ARRAYS = (
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
)
#: constructor parameters that are arrays (stored as members); a Bayesian mixture's
#: ``covariance_prior`` may also be a number (spherical), kept in ``params``
_INIT_ARRAYS = (
    "weights_init",
    "means_init",
    "precisions_init",
    "mean_prior",
    "covariance_prior",
)
_SCALAR_OK = ("covariance_prior",)
#: longest feature name kept in a model file (characters)
MAX_NAME = 4096
_FLOATS = ("f4", "f8")
_SHAPES = {
    "weights_": lambda k, d, m: (k,),
    "means_": lambda k, d, m: (k, d),
    "covariances_": lambda k, d, m: m.shape(k, d),
    "precisions_": lambda k, d, m: m.shape(k, d),
    "precisions_cholesky_": lambda k, d, m: m.shape(k, d),
    "weights_init": lambda k, d, m: (k,),
    "means_init": lambda k, d, m: (k, d),
    "precisions_init": lambda k, d, m: m.shape(k, d),
    "mean_prior": lambda k, d, m: (d,),
    "covariance_prior": lambda k, d, m: m.shape(1, d)[0 if m.shared else 1 :],
}


def _fail(message):
    raise ModelFileError(message)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_bound(v):
    """A lower bound: a number, not NaN, not +inf (-inf: max_iter=0)."""
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    return number and not math.isnan(v) and v != math.inf


@dataclass(frozen=True)
class Meta:
    """A checked meta.json: the numbers every shape follows, and the raw parts."""

    version: int
    estimator: str
    params: dict
    fitted: dict
    checksums: dict
    model: object  # the CovarianceModel record
    n_components: int
    n_features: int


def _check_format(meta):
    if not isinstance(meta, dict):
        _fail("meta.json is not a JSON object")
    if meta.get("format") != FORMAT:
        _fail(f"not a fastgmm model file (format {meta.get('format')!r})")
    version = meta.get("format_version")
    if not _is_int(version) or version < 1:
        _fail(f"invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        from .. import __version__

        _fail(
            f"model file format version {version} is newer than this fastgmm "
            f"({__version__}) reads (version {FORMAT_VERSION}); upgrade fastgmm."
        )
    return version


def _check_params(params):
    from ..model import covariance

    if not isinstance(params, dict):
        _fail("meta.json: 'params' is not an object")
    for key, value in params.items():
        if value is not None and not isinstance(value, (bool, int, float, str)):
            _fail(f"meta.json: parameter {key!r} holds a {type(value).__name__}")
        scalar = key in _SCALAR_OK and isinstance(value, (int, float))
        if key in _INIT_ARRAYS and value is not None and not scalar:
            _fail(f"meta.json: parameter {key!r} must be an array member")
    k = params.get("n_components")
    if not _is_int(k) or k < 1:
        _fail(f"meta.json: n_components must be an integer >= 1, got {k!r}")
    try:
        model = covariance.get(params.get("covariance_type"))
    except ValueError as exc:
        _fail(f"meta.json: {exc}")
    return k, model


def _check_fitted(fitted, version):
    if not isinstance(fitted, dict):
        _fail("meta.json: 'fitted' is not an object")
    rules = {
        "converged_": (lambda v: isinstance(v, bool), "true or false"),
        "n_iter_": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
        "lower_bound_": (_is_bound, "a number (not NaN or +inf)"),
        "n_features_in_": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    }
    if version == 1:
        rules["lower_bounds_"] = (
            lambda v: isinstance(v, list) and all(_is_bound(b) for b in v),
            "a list of numbers (not NaN or +inf)",
        )
    for key, (ok, what) in rules.items():
        if key not in fitted:
            _fail(f"meta.json: 'fitted' has no {key}")
        if not ok(fitted[key]):
            _fail(f"meta.json: {key} must be {what}, got {fitted[key]!r}")


def _check_checksums(checksums):
    if not isinstance(checksums, dict):
        _fail("meta.json: 'arrays' is not an object")
    for name, digest in checksums.items():
        ok = isinstance(digest, str) and len(digest) == 64
        if not ok or any(c not in "0123456789abcdef" for c in digest):
            _fail(f"meta.json: the checksum of {name} is not a SHA-256 hex digest")


def check_meta(meta, estimators):
    """Check every field of a parsed meta.json; return a :class:`Meta`.

    ``estimators`` are the estimator names a file may give (``"estimator"``; files
    written before the key existed hold a ``GaussianMixture``).
    """
    version = _check_format(meta)
    estimator = meta.get("estimator", "GaussianMixture")
    if not isinstance(estimator, str) or estimator not in estimators:
        _fail(f"unknown estimator {estimator!r}")
    k, model = _check_params(meta.get("params"))
    _check_fitted(meta.get("fitted"), version)
    _check_checksums(meta.get("arrays"))
    d = meta["fitted"]["n_features_in_"]
    return Meta(
        version, estimator, meta["params"], meta["fitted"], meta["arrays"], model, k, d
    )


# ----------------------------------------------------------------------- arrays
@dataclass(frozen=True)
class Spec:
    """What one array member must be: ``shape`` (None: any 1-D length) and dtype
    kinds (``f4``/``f8`` floats, ``U`` text of at most :data:`MAX_NAME` chars)."""

    shape: object
    kinds: tuple
    required: bool

    def check(self, name, dtype, shape):
        kind = "U" if dtype.kind == "U" else f"{dtype.kind}{dtype.itemsize}"
        if kind not in self.kinds or dtype.hasobject or dtype.names is not None:
            _fail(f"{name} has dtype {dtype}, expected {' or '.join(self.kinds)}")
        if kind == "U" and dtype.itemsize > 4 * MAX_NAME:
            _fail(f"{name} holds names longer than {MAX_NAME} characters")
        want = self.shape
        if want is None and len(shape) != 1 or want is not None and shape != want:
            _fail(f"{name} has shape {shape}, expected {want or '(n,)'}")


def array_specs(meta, extra=None):
    """{member name: Spec} of every array a file of ``meta`` must or may hold.

    ``extra`` maps further fitted arrays of an estimator to shape functions
    ``(K, d, model, params) -> shape``.
    """
    k, d, model = meta.n_components, meta.n_features, meta.model
    specs = {n: Spec(_SHAPES[n](k, d, model), _FLOATS, True) for n in _FITTED_ARRAYS}
    for name, shape_of in (extra or {}).items():
        specs[name] = Spec(shape_of(k, d, model, meta.params), _FLOATS, True)
    for name in _INIT_ARRAYS:
        specs[name] = Spec(_SHAPES[name](k, d, model), ("f8",), False)
    specs["feature_names_in_"] = Spec((d,), ("U",), False)
    if meta.version >= 2:
        specs["lower_bounds_"] = Spec(None, ("f8",), True)
    unknown = sorted(set(meta.checksums) - set(specs))
    if unknown:
        _fail(f"meta.json lists unknown arrays {unknown}")
    missing = [n for n, s in specs.items() if s.required and n not in meta.checksums]
    if missing:
        _fail(f"missing arrays {missing}")
    return {n: s for n, s in specs.items() if n in meta.checksums}


# ----------------------------------------------------------------------- values
def _tolerance(arrays, d):
    """Relative rounding allowed in products of d terms of the coarsest dtype."""
    eps = max(np.finfo(a.dtype).eps for a in arrays)
    return 16.0 * (d + 2) * eps


def _check_weights(w, name):
    eps = np.finfo(w.dtype).eps
    atol = max(1e-6 if w.dtype == np.float32 else 1e-8, 8 * (w.size + 1) * eps)
    total = float(np.sum(w, dtype=np.float64))
    if np.any(w < 0) or np.any(w > 1) or abs(total - 1.0) > atol:
        _fail(f"{name} are not a probability vector (sum {total!r})")


def _stack(a, d):
    return np.asarray(a, dtype=np.float64).reshape(-1, d, d)


def _check_psd(A, shift, name):
    """Every A_k + shift_k I has a Cholesky factor: no eigenvalue below -shift_k
    (Cholesky is ~100x cheaper than eigenvalues, and free of BLAS threads)."""
    if np.any(shift <= 0):
        _fail(f"{name} has a zero matrix")
    d = A.shape[-1]
    try:
        np.linalg.cholesky(
            (A + A.transpose(0, 2, 1)) / 2 + shift[:, None, None] * np.eye(d)
        )
    except np.linalg.LinAlgError:
        _fail(f"{name} is not positive semidefinite")


def _check_dense(cov, prec, chol, d):
    """Dense forms: U upper triangular with a positive diagonal, P and S symmetric
    PSD, P = U U' and U' S U = I to the rounding of their dtypes."""
    tol = _tolerance((cov, prec, chol), d)
    U, P, S = _stack(chol, d), _stack(prec, d), _stack(cov, d)
    diag = np.diagonal(U, axis1=1, axis2=2)
    if np.any(np.tril(U, -1) != 0) or np.any(diag <= 0):
        _fail("precisions_cholesky_ is not an upper-triangular factor with a "
              "positive diagonal")  # fmt: skip
    for name, A in (("covariances_", S), ("precisions_", P)):
        norm = np.linalg.norm(A, axis=(1, 2))  # Frobenius, >= the largest eigenvalue
        if np.any(np.abs(A - A.transpose(0, 2, 1)).max(axis=(1, 2)) > tol * norm):
            _fail(f"{name} is not symmetric")
        _check_psd(A, tol * norm, name)
    u2 = np.sum(U * U, axis=(1, 2))  # ||U||_F^2 per component
    if np.any(np.linalg.norm(P - U @ U.transpose(0, 2, 1), axis=(1, 2)) > tol * u2):
        _fail("precisions_ disagree with precisions_cholesky_")
    residual = U.transpose(0, 2, 1) @ S @ U - np.eye(d)
    bound = tol * u2 * np.linalg.norm(S, axis=(1, 2))
    if np.any(np.linalg.norm(residual, axis=(1, 2)) > bound):
        _fail("covariances_ disagree with precisions_cholesky_")


def _check_positive(cov, prec, chol):
    """Diagonal and scalar forms: positive, P = U^2 and S U^2 = 1 (rounding)."""
    tol = _tolerance((cov, prec, chol), 1)
    U, P, S = (np.asarray(a, dtype=np.float64) for a in (chol, prec, cov))
    for name, a in (("precisions_cholesky_", U), ("precisions_", P), ("covariances_", S)):  # fmt: skip
        if np.any(a <= 0):
            _fail(f"{name} has values <= 0")
    if np.any(np.abs(P - U * U) > tol * P):
        _fail("precisions_ disagree with precisions_cholesky_")
    if np.any(np.abs(S * U * U - 1.0) > tol):
        _fail("covariances_ disagree with precisions_cholesky_")


def check_values(arrays, meta):
    """Check the values of the arrays of a file (see the module docstring)."""
    for name, a in arrays.items():
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            if name != "lower_bounds_" or not all(_is_bound(v) for v in a.tolist()):
                _fail(f"{name} has non-finite values")
    _check_weights(arrays["weights_"], "weights_")
    cov, prec, chol = (arrays[n] for n in _FITTED_ARRAYS[2:])
    if meta.model.form == "dense":
        _check_dense(cov, prec, chol, meta.n_features)
    else:
        _check_positive(cov, prec, chol)
    if "weights_init" in arrays:
        _check_weights(arrays["weights_init"], "weights_init")
    if "precisions_init" in arrays:
        try:
            meta.model.check_precisions(arrays["precisions_init"], "precisions_init")
        except (ValueError, np.linalg.LinAlgError) as exc:
            _fail(f"precisions_init: {exc}")
