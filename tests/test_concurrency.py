"""One fitted model used from several Python threads at once."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from fastgmm import GaussianMixture


@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_predict_from_many_threads(rng, cov_type):
    X = np.vstack([rng.normal(size=(3000, 3)), rng.normal(size=(3000, 3)) + 3])
    model = GaussianMixture(3, covariance_type=cov_type, random_state=0).fit(X)
    chunks = [X[i::8] for i in range(8)]
    expected = [(model.predict(c), model.score_samples(c)) for c in chunks]
    blas_before = [lib["num_threads"] for lib in threadpool_info()]

    def work(i):
        c = chunks[i % 8]
        return i % 8, model.predict(c), model.score_samples(c), model.predict_proba(c)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(work, range(48)))
    for i, labels, scores, proba in results:
        np.testing.assert_array_equal(labels, expected[i][0])
        np.testing.assert_array_equal(scores, expected[i][1])
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # the BLAS thread limit fastgmm sets during calls is restored afterwards
    assert [lib["num_threads"] for lib in threadpool_info()] == blas_before


def _blas_threads():
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def test_blas_is_pinned_in_any_thread():
    """threadpoolctl lets only the first thread that set an OpenBLAS limit change it
    again; fastgmm's pin frees that control, so a fit in a worker thread after one
    in the main thread still runs BLAS on one thread."""
    import threading

    from fastgmm._runtime import threads

    if _blas_threads() < 2:
        pytest.skip("BLAS runs on one thread here anyway")
    with threads(1):
        assert _blas_threads() == 1  # the main thread took the control
    seen = []

    def work():
        with threads(1):
            seen.append(_blas_threads())

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert seen == [1]
    assert _blas_threads() >= 2  # restored
