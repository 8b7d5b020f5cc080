"""Dask support (optional extra ``dask``): see :mod:`fastgmm.engine.dask`.

``GaussianMixture.fit`` accepts a 2-D ``dask.array.Array``; ``predict``,
``predict_proba`` and ``score_samples`` on one return lazy dask arrays.
"""

from .engine.dask import DaskSource, is_dask_array, lazy_score, sample_indices

__all__ = ["DaskSource", "is_dask_array", "lazy_score", "sample_indices"]
