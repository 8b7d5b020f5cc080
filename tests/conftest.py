"""Shared fixtures: seeded generators only (never the global RNG)."""

import numpy as np
import pytest
from hypothesis import settings

#: the default: small and reproducible; ``--hypothesis-profile=thorough`` for a search
settings.register_profile("fastgmm", max_examples=20, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile("fastgmm")


@pytest.fixture
def rng():
    """A fresh, seeded generator for each test."""
    return np.random.default_rng(20240611)


@pytest.fixture
def blobs():
    """Three well-separated 2-D Gaussian blobs (300 points, float64)."""
    gen = np.random.default_rng(7)
    centres = np.array([[0.0, 0.0], [6.0, 1.0], [2.0, 7.0]])
    X = np.vstack([c + gen.normal(size=(100, 2)) * [1.0, 0.6] for c in centres])
    return X[gen.permutation(len(X))]


@pytest.fixture
def no_serial_cutoff(monkeypatch):
    """Kernels run on the threads asked for whatever the problem size (the serial
    cut-off of ``fastgmm._runtime.threads`` off): thread-count tests on small data
    then compare real parallel runs (and EM iterations do not move to fewer threads
    when other processes are busy: ``fastgmm._pacing.pacing`` off)."""
    monkeypatch.setattr("fastgmm._runtime.SERIAL_WORK", 0)
    monkeypatch.setattr("fastgmm._pacing.BUSY_CORES", float("inf"))
