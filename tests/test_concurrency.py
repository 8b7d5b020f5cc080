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
