"""Quality of the starts: final mean log-likelihood per sample, fastgmm against
scikit-learn, over seeds (medians; no timing).

1. The default start (``init_params="kmeans"``): fastgmm reproduces scikit-learn's
   k-means start, so the fits should agree seed by seed (ARI 1, the same optimum).
2. ``select``'s default start (short-EM) against scikit-learn's default on
   higher-dimensional data (standardised wdbc, full, K=2/3; digits, full, K=10).

    python benchmarks/starts_quality.py [--seeds 10] [--part 1,2]
"""

import argparse
import warnings

import numpy as np
from sklearn import datasets
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture as SKGaussianMixture

from fastgmm import GaussianMixture, select


def _standardised(X):
    return (X - X.mean(0)) / X.std(0)


def _pixels(n=20_000):
    import skimage.data

    P = skimage.data.coffee().reshape(-1, 3).astype(np.float64) / 255.0
    return P[np.random.default_rng(0).choice(len(P), n, replace=False)]


def _blobs(n=100_000, k=8, d=3):
    gen = np.random.default_rng(0)
    centres = gen.normal(scale=4.0, size=(k, d))
    X = centres[gen.integers(0, k, n)] + gen.normal(size=(n, d))
    return X * gen.uniform(0.5, 2.0, d)


DEFAULT_CASES = [
    ("iris", lambda: datasets.load_iris().data, 3),
    ("wine (standardised)", lambda: _standardised(datasets.load_wine().data), 3),
    ("digits", lambda: datasets.load_digits().data, 10),
    ("coffee pixels 20k", _pixels, 5),
    ("blobs 100k x 3", _blobs, 8),
]
GAP_CASES = [
    (
        "wdbc (standardised)",
        lambda: _standardised(datasets.load_breast_cancer().data),
        2,
    ),
    (
        "wdbc (standardised)",
        lambda: _standardised(datasets.load_breast_cancer().data),
        3,
    ),
    ("digits", lambda: datasets.load_digits().data, 10),
]


def default_start(seeds):
    print("1. default start (kmeans), full covariance: final mean log-likelihood")
    print(f"{'data':24s} {'fastgmm':>10s} {'sklearn':>10s} {'median diff':>12s}  ARI=1")
    for name, make, k in DEFAULT_CASES:
        X = make()
        fg, sk, same = [], [], 0
        for seed in seeds:
            a = GaussianMixture(k, random_state=seed).fit(X)
            b = SKGaussianMixture(k, random_state=seed).fit(X)
            fg.append(a.score(X))
            sk.append(b.score(X))
            same += adjusted_rand_score(a.predict(X), b.predict(X)) == 1.0
        diff = np.median(np.subtract(fg, sk))
        print(
            f"{name:24s} {np.median(fg):10.4f} {np.median(sk):10.4f} {diff:12.2e}"
            f"  {same}/{len(seeds)}"
        )


def gap(seeds):
    print("2. select (short-EM start) against scikit-learn's default, full covariance")
    print(f"{'data':24s} {'K':>3s} {'select':>10s} {'sklearn':>10s}  (min-max sklearn)")
    for name, make, k in GAP_CASES:
        X = make()
        fg, sk = [], []
        for seed in seeds:
            res = select(X, [k], "full", random_state=seed, degenerate="keep")
            fg.append(res.table[0]["log_likelihood"] / len(X))
            sk.append(SKGaussianMixture(k, random_state=seed).fit(X).score(X))
        print(
            f"{name:24s} {k:3d} {np.median(fg):10.4f} {np.median(sk):10.4f}"
            f"  ({min(sk):.4f} to {max(sk):.4f}; select {min(fg):.4f} to {max(fg):.4f})"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--part", default="1,2")
    args = parser.parse_args()
    seeds = range(args.seeds)
    warnings.simplefilter("ignore")
    if "1" in args.part.split(","):
        default_start(seeds)
    if "2" in args.part.split(","):
        gap(seeds)


if __name__ == "__main__":
    main()
