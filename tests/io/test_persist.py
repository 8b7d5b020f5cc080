"""Safe persistence: fastgmm.save / fastgmm.load, and pickle / joblib."""

import hashlib
import io
import json
import pickle
import zipfile

import joblib
import numpy as np
import pytest

import fastgmm
from fastgmm import GaussianMixture
from fastgmm.io.persist import FORMAT_VERSION, ModelFileError

COV_TYPES = ["full", "tied", "diag", "spherical"]


def _fit(rng, cov_type="full", dtype=np.float64):
    X = np.vstack([rng.normal(size=(150, 3)), rng.normal(size=(150, 3)) + 4])
    return GaussianMixture(2, covariance_type=cov_type, random_state=0).fit(
        X.astype(dtype)
    ), X


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _write(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)


@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_roundtrip_predicts_exactly(rng, tmp_path, cov_type, dtype):
    model, X = _fit(rng, cov_type, dtype)
    path = tmp_path / "model.fgmm"
    model.save(path)
    loaded = fastgmm.load(path)
    assert loaded.get_params() == model.get_params()
    for name in (
        "weights_",
        "means_",
        "covariances_",
        "precisions_",
        "precisions_cholesky_",
    ):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
        assert getattr(loaded, name).dtype == dtype
    assert (loaded.converged_, loaded.n_iter_, loaded.lower_bound_) == (
        model.converged_,
        model.n_iter_,
        model.lower_bound_,
    )
    Xd = X.astype(dtype)
    np.testing.assert_array_equal(loaded.predict_proba(Xd), model.predict_proba(Xd))
    np.testing.assert_array_equal(loaded.score_samples(Xd), model.score_samples(Xd))
    np.testing.assert_array_equal(
        GaussianMixture.load(path).predict(Xd), model.predict(Xd)
    )


def test_feature_names_and_init_arrays_kept(rng, tmp_path):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(rng.normal(size=(100, 2)), columns=["height", "weight"])
    means = np.array([[0.0, 0.0], [1.0, 1.0]])
    model = GaussianMixture(2, means_init=means, random_state=0).fit(X)
    model.save(tmp_path / "m")
    loaded = fastgmm.load(tmp_path / "m")
    assert list(loaded.feature_names_in_) == ["height", "weight"]
    np.testing.assert_array_equal(loaded.means_init, means)


def test_unfitted_model_cannot_be_saved(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        GaussianMixture().save(tmp_path / "m")


def test_truncated_file(rng, tmp_path):
    model, _ = _fit(rng)
    model.save(tmp_path / "m")
    blob = (tmp_path / "m").read_bytes()
    (tmp_path / "t").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupted"):
        fastgmm.load(tmp_path / "t")


def test_not_a_model_file(tmp_path):
    (tmp_path / "x").write_text("hello")
    with pytest.raises(ModelFileError, match="not a readable fastgmm model"):
        fastgmm.load(tmp_path / "x")
    _write(tmp_path / "z", {"meta.json": json.dumps({"format": "other"})})
    with pytest.raises(ModelFileError, match="not a fastgmm model file"):
        fastgmm.load(tmp_path / "z")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastgmm.load(tmp_path / "nope")


def test_tampered_array_fails_checksum(rng, tmp_path):
    model, _ = _fit(rng)
    model.save(tmp_path / "m")
    members = _members(tmp_path / "m")
    buf = io.BytesIO()
    np.save(buf, model.means_ + 1.0)
    members["means_.npy"] = buf.getvalue()
    _write(tmp_path / "bad", members)
    with pytest.raises(ModelFileError, match="checksum mismatch for means_"):
        fastgmm.load(tmp_path / "bad")


def test_newer_format_version_refused(rng, tmp_path):
    model, _ = _fit(rng)
    model.save(tmp_path / "m")
    members = _members(tmp_path / "m")
    meta = json.loads(members["meta.json"])
    meta["format_version"] = FORMAT_VERSION + 1
    members["meta.json"] = json.dumps(meta).encode()
    _write(tmp_path / "new", members)
    with pytest.raises(ModelFileError, match="newer than this fastgmm"):
        fastgmm.load(tmp_path / "new")


class _Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('code ran')",))


def test_pickled_payload_is_never_executed(rng, tmp_path):
    """An object array (pickle inside .npy) with a valid checksum is refused unread."""
    model, _ = _fit(rng)
    model.save(tmp_path / "m")
    members = _members(tmp_path / "m")
    buf = io.BytesIO()
    np.save(buf, np.array([_Boom()], dtype=object), allow_pickle=True)
    members["means_.npy"] = buf.getvalue()
    meta = json.loads(members["meta.json"])
    meta["arrays"]["means_"] = hashlib.sha256(members["means_.npy"]).hexdigest()
    members["meta.json"] = json.dumps(meta).encode()
    _write(tmp_path / "evil", members)
    with pytest.raises(ModelFileError, match="means_ has dtype object"):
        fastgmm.load(tmp_path / "evil")


def test_invalid_values_refused(rng, tmp_path):
    model, _ = _fit(rng)
    model.weights_ = model.weights_ * 2  # no longer a probability vector
    model.save(tmp_path / "m")
    with pytest.raises(ModelFileError, match="weights_"):
        fastgmm.load(tmp_path / "m")


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_pickle_and_joblib(rng, tmp_path, dump):
    model, X = _fit(rng)
    if dump == "pickle":
        loaded = pickle.loads(pickle.dumps(model))
    else:
        joblib.dump(model, tmp_path / "m.joblib")
        loaded = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
