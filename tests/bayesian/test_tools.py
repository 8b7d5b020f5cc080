"""BayesianGaussianMixture with fastgmm's tools: model files, inspection, the CLI."""

import json
import zipfile

import numpy as np
import pytest

import fastgmm
from fastgmm import BayesianGaussianMixture, inspection
from fastgmm.io.persist import ModelFileError

from .._same_fit import mixture_data
from .test_bayesian import COV_TYPES, POSTERIOR, PRIORS, quiet


@pytest.fixture
def X(rng):
    return mixture_data(rng, n=1500)


# ---------------------------------------------------------- persistence and tools
@pytest.mark.parametrize("prior_type", PRIORS)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_save_load_round_trip(tmp_path, X, covariance_type, prior_type):
    bgm = quiet(
        BayesianGaussianMixture(
            n_components=3, covariance_type=covariance_type, random_state=0,
            weight_concentration_prior_type=prior_type, mean_prior=X.mean(0) + 1,
            prune_threshold=0.05,
        ).fit,
        X,
    )  # fmt: skip
    bgm.save(tmp_path / "m.fgmm")
    back = fastgmm.load(tmp_path / "m.fgmm")
    assert type(back) is BayesianGaussianMixture
    for name in (*POSTERIOR, "mean_prior_", "covariance_prior_", "lower_bounds_"):
        np.testing.assert_array_equal(getattr(back, name), getattr(bgm, name))
    assert type(back.weight_concentration_) is type(bgm.weight_concentration_)
    np.testing.assert_array_equal(
        np.asarray(back.weight_concentration_), np.asarray(bgm.weight_concentration_)
    )
    assert back.n_effective_components_ == bgm.n_effective_components_
    np.testing.assert_array_equal(back.mean_prior, bgm.mean_prior)
    np.testing.assert_array_equal(back.predict_proba(X), bgm.predict_proba(X))


def _rewrite(path, name, array):
    """Replace one array of a model file, with a matching checksum (no tamper alarm)."""
    import hashlib

    from fastgmm.io.persist import _array_bytes

    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(members["meta.json"])
    blob = _array_bytes(array)
    members[name + ".npy"] = blob
    meta["arrays"][name] = hashlib.sha256(blob).hexdigest()
    members["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)


@pytest.mark.parametrize(
    "name, value",
    [
        ("weight_concentration_", -np.ones((2, 3))),
        ("degrees_of_freedom_", np.ones(3)),
        ("mean_precision_", np.ones(4)),
        ("covariance_prior_", np.full((3, 3), np.nan)),
    ],
)
def test_invalid_posterior_in_a_model_file_is_refused(tmp_path, X, name, value):
    bgm = quiet(BayesianGaussianMixture(n_components=3, random_state=0).fit, X)
    bgm.save(tmp_path / "m.fgmm")
    _rewrite(tmp_path / "m.fgmm", name, value)
    # wrong shapes are refused from the header, non-finite values by the file checks
    with pytest.raises(
        ModelFileError, match="invalid fitted state|has shape|non-finite"
    ):
        fastgmm.load(tmp_path / "m.fgmm")


def test_inspection_reads_a_bayesian_mixture(X):
    bgm = quiet(BayesianGaussianMixture(n_components=5, random_state=0).fit, X)
    text = inspection.summary(bgm, X)
    assert "Bayesian Gaussian mixture" in text
    assert f"({bgm.n_effective_components_} effective)" in text and "BIC" not in text
    conf = inspection.confidence(bgm, X)
    np.testing.assert_allclose(conf, bgm.predict_proba(X).max(axis=1), rtol=1e-12)


def test_cli_fits_a_bayesian_mixture(tmp_path, X, capsys):
    from fastgmm.cli import main

    np.save(tmp_path / "X.npy", X)
    model = tmp_path / "m.fgmm"
    args = ["fit", str(tmp_path / "X.npy"), "-k", "6", "-o", str(model), "--bayesian"]
    assert (
        main([*args, "dirichlet_distribution", "--prune", "0.01", "--tol", "1e-4"]) == 0
    )
    out = capsys.readouterr().out
    bgm = fastgmm.load(model)
    assert isinstance(bgm, BayesianGaussianMixture) and bgm.converged_
    assert bgm.weight_concentration_prior_type == "dirichlet_distribution"
    assert bgm.tol_per_sample == 1e-4 and bgm.prune_threshold == 0.01
    assert f"({bgm.n_effective_components_} effective)" in out
    assert (
        main(
            [
                "predict",
                str(model),
                str(tmp_path / "X.npy"),
                "-o",
                str(tmp_path / "p.csv"),
            ]
        )
        == 0
    )
    assert main([*args, "--prune", "2"]) == 1
    assert main([*args[:-1], "--prune", "0.1"]) == 1  # --prune needs --bayesian
    assert "--prune needs --bayesian" in capsys.readouterr().err
