"""Make the pictures of docs/model-based-clustering.md.

    python docs/model_based_figures.py          # writes docs/images/mclust_*.png

Needs matplotlib (``pip install "fastgmm[plot]"``). Takes a minute or two: the
iris sweep fits 9 x 14 candidates.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402

import fastgmm  # noqa: E402
from fastgmm.datasets import load_faithful  # noqa: E402

OUT = Path(__file__).resolve().parent / "images"
MARKERS = "os^v<>DphH*xX+"


def bic_curves(res, title, path):
    """mclust's plot(mclustBIC): one line per model, BIC (higher is better) by G."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for j, name in enumerate(res.models):
        ax.plot(
            res.G,
            res.bic[:, j],
            marker=MARKERS[j % len(MARKERS)],
            ms=4,
            lw=1,
            label=name,
        )
    best = res.bic[res.G.index(res.best_G), res.models.index(res.best_model)]
    ax.annotate(
        f"best: {res.best_model}, G={res.best_G}",
        (res.best_G, best), xytext=(10, -25), textcoords="offset points",
        arrowprops={"arrowstyle": "->"},
    )  # fmt: skip
    ax.set_xlabel("number of components G")
    ax.set_ylabel("BIC (mclust's sign: higher is better)")
    ax.set_title(title)
    ax.legend(ncol=2, fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def noise_picture(X, res, path):
    fig, ax = plt.subplots(figsize=(6, 4.5))
    labels = res.classification
    for k in range(res.best_G):
        ax.scatter(*X[labels == k].T, s=10, label=f"component {k}")
    ax.scatter(*X[labels == -1].T, s=14, marker="x", c="k", label="noise (-1)")
    ax.set_xlabel("eruptions (min)")
    ax.set_ylabel("waiting (min)")
    ax.set_title(
        f"Old Faithful + uniform noise: {res.best_model}, G={res.best_G} + noise"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    OUT.mkdir(exist_ok=True)
    iris = fastgmm.mclust(load_iris().data, random_state=0)
    print(iris)
    bic_curves(iris, "iris: mclust's 14 models", OUT / "mclust_bic_iris.png")
    faithful = load_faithful()
    rng = np.random.default_rng(0)
    lo, hi = faithful.min(axis=0), faithful.max(axis=0)
    X = np.vstack(
        [faithful, rng.uniform(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo), (100, 2))]
    )
    noisy = fastgmm.mclust(
        X, range(0, 6), ["EII", "VII", "EEE", "VVV"], noise=True, random_state=0
    )
    print(noisy)
    noise_picture(X, noisy, OUT / "mclust_faithful_noise.png")


if __name__ == "__main__":
    main()
