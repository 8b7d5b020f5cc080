"""Compile (or load from the on-disk cache) every kernel once."""

from time import perf_counter


def warmup(verbose=False):
    """Compile fastgmm's kernels for float32 and float64 data and cache them on disk.

    Run once after installing (``fastgmm warmup``); later processes load the compiled
    code from the cache in about a second instead of compiling for tens of seconds.

    Returns
    -------
    seconds : float
        Wall time taken.
    """
    import numpy as np

    from .mixture import GaussianMixture
    from .model.covariance import MODELS

    start = perf_counter()
    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.float32):
        X = rng.normal(size=(64, 2)).astype(dtype)
        for cov_type in (m.name for m in MODELS):
            gm = GaussianMixture(
                2, covariance_type=cov_type, random_state=0, max_iter=2
            )
            gm.fit(X, sample_weight=np.ones(len(X)))
            gm.predict_proba(X)
            gm.score_samples(X)
            if verbose:
                print(f"  {np.dtype(dtype).name:8s} {cov_type:9s} ready")
    return perf_counter() - start
