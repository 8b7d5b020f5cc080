"""Model selection (fastgmm.selection): the sweep equals cold fits, criteria, sharing."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import fastgmm.engine.init
import fastgmm.engine.starts
from fastgmm.inspection import entropy
from fastgmm.mixture import GaussianMixture
from fastgmm.selection import (
    COLUMNS,
    SELECT_INIT,
    SELECT_MAX_ITER,
    SELECT_TOL,
    Monitor,
    select,
)

ALL_COV = ("full", "tied", "diag", "spherical")
#: select's settings where they differ from the estimator's defaults
SELECT = {"init_params": SELECT_INIT, "tol": SELECT_TOL, "max_iter": SELECT_MAX_ITER}


@pytest.fixture(scope="module")
def X():
    """Four 3-D clusters, 480 points."""
    gen = np.random.default_rng(11)
    centres = gen.normal(scale=3.0, size=(4, 3))
    return np.vstack([c + gen.normal(size=(120, 3)) for c in centres])


@pytest.fixture(scope="module")
def sweep(X):
    return select(X, range(1, 5), ALL_COV, random_state=3)


def _cold(X, row, **kw):
    """The estimator with select's settings (``kw`` overrides them)."""
    return GaussianMixture(
        row["n_components"], covariance_type=row["covariance_type"], **{**SELECT, **kw}
    ).fit(X)


def test_table_layout(sweep):
    assert len(sweep.table) == len(sweep.models) == 4 * len(ALL_COV)
    assert [tuple(r) for r in sweep.table] == [COLUMNS] * len(sweep.table)
    assert [(r["n_components"], r["covariance_type"]) for r in sweep.table] == [
        (k, c) for k in range(1, 5) for c in ALL_COV
    ]
    assert all(r["fit_time"] > 0 for r in sweep.table)
    # K values fitted concurrently (small data): each K's time within the wall time
    per_k = {}
    for r in sweep.table:
        per_k[r["n_components"]] = per_k.get(r["n_components"], 0) + r["fit_time"]
    assert max(per_k.values()) <= sweep.total_time
    assert sweep.column("n_components").tolist() == [
        r["n_components"] for r in sweep.table
    ]


def test_candidates_equal_cold_fits(X, sweep):
    """Each candidate is exactly the model GaussianMixture.fit gives (same seed)."""
    for row, model in zip(sweep.table, sweep.models, strict=True):
        cold = _cold(X, row, random_state=3)
        exact = np.testing.assert_array_equal
        check = (
            exact if row["covariance_type"] != "tied" else np.testing.assert_allclose
        )
        check(model.means_, cold.means_)
        check(model.covariances_, cold.covariances_)
        check(model.weights_, cold.weights_)
        assert model.n_iter_ == cold.n_iter_ and model.converged_ == cold.converged_
        assert model.random_state == 3
        np.testing.assert_allclose(row["bic"], cold.bic(X), rtol=1e-12)
        np.testing.assert_allclose(row["aic"], cold.aic(X), rtol=1e-12)
        ll = cold.score_samples(X).sum()
        np.testing.assert_allclose(row["log_likelihood"], ll, rtol=1e-12)
        assert row["n_parameters"] == cold._n_parameters()


@pytest.mark.parametrize(
    "init_params", ["kmeans", "random", "k-means++", "hc", "short-em"]
)
def test_restarts_equal_cold_fits(X, init_params):
    res = select(
        X, [2, 3], ("full", "diag"), n_init=2, init_params=init_params, random_state=5
    )
    for row, model in zip(res.table, res.models, strict=True):
        cold = _cold(X, row, random_state=5, n_init=2, init_params=init_params)
        np.testing.assert_array_equal(model.means_, cold.means_)
        assert model.lower_bound_ == cold.lower_bound_


def test_icl_is_mclust_definition(X, sweep):
    """ICL = BIC + 2 sum_i -log max_k r_ik; equal to BIC for K=1; below entropy-ICL."""
    for row, model in zip(sweep.table, sweep.models, strict=True):
        proba = model.predict_proba(X)
        icl = row["bic"] - 2 * np.log(proba.max(axis=1)).sum()
        np.testing.assert_allclose(row["icl"], icl, rtol=1e-10)
        assert row["icl"] >= row["bic"]
        assert row["icl"] <= row["bic"] + 2 * entropy(model, X).sum() + 1e-6
        if row["n_components"] == 1:
            assert row["icl"] == row["bic"]


@pytest.mark.parametrize("criterion", ["bic", "aic", "icl"])
def test_best_is_lowest(X, criterion):
    res = select(X, range(1, 6), ("full", "diag"), criterion, random_state=0)
    values = res.column(criterion)
    assert res.best_index_ == int(np.argmin(values))
    assert res.best_ is res.models[res.best_index_]
    assert res.best_params_ == {
        "n_components": res.table[res.best_index_]["n_components"],
        "covariance_type": res.table[res.best_index_]["covariance_type"],
    }
    if criterion == "bic":
        assert res.best_params_["n_components"] == 4  # the four true clusters


def test_kmeans_runs_once_per_k_and_restart(X, monkeypatch):
    calls = []
    real = fastgmm.engine.init.kmeans

    def counting(data, n_components, random_state):
        calls.append(n_components)
        return real(data, n_components, random_state)

    monkeypatch.setattr(fastgmm.engine.init, "kmeans", counting)
    select(X, [2, 3], ALL_COV, n_init=2, init_params="kmeans", random_state=0)
    assert sorted(calls) == [2, 2, 3, 3]  # not once per covariance type
    calls.clear()
    select(X, [2, 3], ALL_COV, n_init=2, random_state=0)  # short-EM: N_KMEANS each
    n = fastgmm.engine.starts.N_KMEANS
    assert sorted(calls) == [2] * 2 * n + [3] * 2 * n


def test_integer_weights_equal_repeated_rows(X):
    w = np.random.default_rng(0).integers(1, 4, size=len(X))
    weighted = select(X, [1, 2, 3], ("diag",), sample_weight=w, random_state=0)
    repeated = select(np.repeat(X, w, axis=0), [1], ("diag",), random_state=0)
    for key in ("bic", "aic", "icl", "log_likelihood"):
        np.testing.assert_allclose(
            weighted.table[0][key], repeated.table[0][key], rtol=1e-9
        )


def test_random_state_draws_one_seed_per_k(X):
    res = select(X, [1, 2], ("spherical",), random_state=np.random.RandomState(0))
    seeds = [m.random_state for m in res.models]
    assert all(isinstance(s, int) for s in seeds)
    again = GaussianMixture(
        2, covariance_type="spherical", random_state=seeds[1], **SELECT
    ).fit(X)
    np.testing.assert_array_equal(again.means_, res.models[1].means_)


def test_float32_and_feature_names(X):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X.astype(np.float32), columns=["a", "b", "c"])
    res = select(frame, [2], ("full",), random_state=0)
    model = res.best_
    assert model.means_.dtype == np.float32
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    assert model.predict(frame).shape == (len(X),)
    assert res.to_pandas().shape == (1, len(COLUMNS))


def test_monitor_sees_every_run(X):
    class Recorder(Monitor):
        def __init__(self):
            self.events = []

        def start(self, n_candidates, n_init, max_iter):
            self.events.append(("start", n_candidates, n_init, max_iter))

        def run_start(self, n_components, covariance_type, init):
            self.events.append(("run", n_components, covariance_type, init))

        def iteration(self, n_iter, change):
            self.events.append(("iter", n_iter))

        def candidate_end(self, row):
            self.events.append(("done", row["n_components"], row["covariance_type"]))

    rec = Recorder()
    res = select(
        X, [1, 2], ("full", "diag"), n_init=2, random_state=0, monitor=rec,
        parallel="kernels",
    )  # fmt: skip
    kinds = [e[0] for e in rec.events]
    assert rec.events[0] == ("start", 4, 2, SELECT_MAX_ITER)
    assert kinds.count("run") == 8 and kinds.count("done") == 4
    assert kinds.count("iter") >= sum(r["n_iter"] for r in res.table)


def test_monitor_with_parallel_candidates_sees_the_serial_runs(X):
    class Recorder(Monitor):
        def __init__(self):
            self.events = []

        def run_start(self, n_components, covariance_type, init):
            self.events.append(("run", n_components, covariance_type, init))

        def iteration(self, n_iter, change):
            self.events.append(("iter", n_iter))

        def run_end(self, n_components, covariance_type, init, result):
            self.events.append(("end", n_components, covariance_type, init))

    recorded = {}
    for parallel in ("kernels", "candidates"):
        rec = Recorder()
        select(
            X, [1, 2, 3], ("full",), n_init=2, random_state=0, monitor=rec,
            n_jobs=2, parallel=parallel,
        )  # fmt: skip
        recorded[parallel] = sorted(rec.events, key=repr)
    assert recorded["candidates"] == recorded["kernels"]
    assert sum(e[0] == "run" for e in recorded["candidates"]) == 6


def test_format_marks_best(sweep):
    text = sweep.format()
    assert str(sweep) == text
    lines = text.splitlines()
    assert len(lines) == 2 + len(sweep.table)
    assert sum(line.lstrip().startswith("*") for line in lines[1:-1]) == 1
    assert lines[-1].startswith("best by BIC: K=")


def test_convergence_warning_for_unconverged_best(X):
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        res = select(X, [3], ("full",), max_iter=1, random_state=0)
    assert res.table[0]["converged"] is False


def test_max_iter_zero_returns_the_start(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = select(X, [2], ("diag",), max_iter=0, random_state=0)
    assert res.table[0]["n_iter"] == 0 and np.isfinite(res.table[0]["bic"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"criterion": "hqc"}, "criterion"),
        ({"covariance_types": ("full", "banded")}, "covariance_types"),
        ({"k_range": []}, "k_range"),
        ({"k_range": [0, 1]}, "k_range"),
        ({"k_range": [2, 500]}, "n_samples >= n_components"),
        ({"init_params": "magic"}, "init_params"),
        ({"tol": -1.0}, "tol"),
        ({"degenerate": "drop"}, "degenerate"),
        ({"parallel": "processes"}, "parallel"),
        ({"covariance_types": ("diag", "full"), "top_components": 1}, "diagonal"),
        ({"covariance_types": "diag", "top_components": 0}, "top_components"),
        ({"covariance_types": "diag", "top_components": 1, "noise": True}, "noise"),
    ],
)
def test_invalid_arguments(X, kwargs, match):
    with pytest.raises(ValueError, match=match):
        select(X, **{"k_range": [1, 2], **kwargs})


def test_single_int_and_string_cov_type(X):
    res = select(X, 2, "diag", random_state=0)
    assert [(r["n_components"], r["covariance_type"]) for r in res.table] == [
        (2, "diag")
    ]


def test_top_components_reach_every_candidate():
    """select(top_components=C) fits each candidate as GaussianMixture(top_components=C)
    does; on overlapping clusters a top-1 E-step ends elsewhere than the exact one."""
    gen = np.random.default_rng(5)
    X = np.vstack([c + gen.normal(size=(150, 4)) for c in (0.0, 1.0, 2.0, 3.0)])
    kw = {"random_state": 2}
    res = select(X, [3, 4], ("diag", "spherical"), top_components=1, **kw)
    exact = select(X, [3, 4], ("diag", "spherical"), **kw)
    moved = 0
    for row, model, other in zip(res.table, res.models, exact.models, strict=True):
        cold = _cold(X, row, top_components=1, **kw)
        assert model.top_components == 1
        np.testing.assert_array_equal(model.means_, cold.means_)
        assert model.lower_bound_ == cold.lower_bound_
        moved += not np.array_equal(model.means_, other.means_)
    assert moved > 0
