#!/usr/bin/env python
"""Draw the pictures of fastgmm.plotting shown in docs/usage.md.

Usage (from the repository root, with the ``plot`` extra installed)::

    python docs/make_images.py [OUT_DIR]      # default: docs/images

Writes ``density.png``, ``density_pca.png``, ``selection.png``, ``confidence.png``
and ``sizes.png``: Fisher's iris data (scikit-learn's copy, as a pandas DataFrame,
so the axes carry the feature names), a sweep of K = 1..6 over the four covariance
types, and the model it chooses. The data and every fit are seeded: running it again
draws the same pictures.
"""

import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: the pictures, as named in docs/usage.md
IMAGES = ("density", "density_pca", "selection", "confidence", "sizes")


def main(out_dir=HERE / "images"):
    """Draw every picture into ``out_dir``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.datasets import load_iris

    from fastgmm import plotting, select

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    iris = load_iris(as_frame=True).data
    iris.columns = [c.replace(" (cm)", "") for c in iris.columns]
    X = iris.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cov_types = ("full", "tied", "diag", "spherical")
        result = select(X, range(1, 7), cov_types, random_state=0)
    model = next(  # three species: the K=3 full-covariance candidate
        m
        for m, row in zip(result.models, result.table)
        if (row["n_components"], row["covariance_type"]) == (3, "full")
    )
    drawings = {
        "density": lambda: plotting.plot_density(model, iris, features=(2, 3)),
        "density_pca": lambda: plotting.plot_density(model, iris),
        "selection": lambda: plotting.plot_selection(result),
        "confidence": lambda: plotting.plot_confidence(model, X, threshold=0.9),
        "sizes": lambda: plotting.plot_sizes(model, X),
    }
    paths = []
    for name in IMAGES:
        ax = drawings[name]()
        paths.append(plotting.save(ax, out_dir / f"{name}.png", dpi=80))
        plt.close(ax.figure)
    return paths


if __name__ == "__main__":
    for path in main(*sys.argv[1:2]):
        print(path)
