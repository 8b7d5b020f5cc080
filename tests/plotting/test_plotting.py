"""Pictures (fastgmm.plotting): the right axes and artists, and PNGs that open.

matplotlib is in the ``test`` extra, so these tests run in CI. Set
``FASTGMM_TEST_PLOTS=DIR`` to keep the PNGs in DIR for a person to look at.
"""

import os
import shutil

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
from matplotlib.collections import PathCollection
from matplotlib.patches import Ellipse, Rectangle

from fastgmm import plotting
from fastgmm.mixture import GaussianMixture
from fastgmm.plotting.plane import grid_log_density
from fastgmm.selection import select


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data3():
    """Three 3-D clusters (300 points)."""
    gen = np.random.default_rng(2)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, -2.0], [1.0, 6.0, 3.0]])
    return np.vstack([c + gen.normal(size=(100, 3)) for c in centres])


@pytest.fixture(scope="module")
def model2(data3):
    return GaussianMixture(3, random_state=0).fit(data3[:, :2])


@pytest.fixture(scope="module")
def model3(data3):
    return GaussianMixture(3, covariance_type="diag", random_state=0).fit(data3)


def _png(fig_or_ax, tmp_path, name):
    """Save, reopen and check the PNG is a real, non-blank picture."""
    path = tmp_path / f"{name}.png"
    plotting.save(fig_or_ax, path)
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert pixels[..., :3].std() > 0.05  # not a blank canvas
    keep = os.environ.get("FASTGMM_TEST_PLOTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(path, os.path.join(keep, path.name))
    return path


def _scatters(ax):
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def test_density_2d(model2, data3, tmp_path):
    X = data3[:, :2]
    ax = plotting.plot_density(model2, X)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x0", "x1")
    ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
    assert len(ellipses) == 3
    np.testing.assert_allclose([tuple(e.center) for e in ellipses], model2.means_)
    points, means = _scatters(ax)
    assert points.get_offsets().shape == (300, 2)
    np.testing.assert_allclose(means.get_offsets(), model2.means_)
    conf = model2.predict_proba(X).max(axis=1)
    sizes = points.get_sizes()
    assert np.all(np.diff(sizes[np.argsort(conf)]) >= -1e-9)  # bigger = more certain
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    weights = [f"{w:.2f}" for w in model2.weights_]
    assert legend == [f"component {c} (weight {w})" for c, w in enumerate(weights)] + [
        "points (colour: label, size: confidence)"
    ]
    # each component's entry has the colour of its ellipse and of its mean marker
    handles = ax.get_legend().legend_handles[:3]
    for handle, ellipse, face in zip(
        handles, ellipses, means.get_facecolors(), strict=True
    ):
        assert matplotlib.colors.same_color(handle.get_color(), ellipse.get_edgecolor())
        assert matplotlib.colors.same_color(handle.get_color(), face)
    assert any(type(c).__name__ == "QuadContourSet" for c in ax.collections)
    _png(ax, tmp_path, "density_2d")


def test_density_legend_without_points_and_for_many_components(data3):
    gm = GaussianMixture(3, random_state=0).fit(data3[:, :2])
    texts = [t.get_text() for t in plotting.plot_density(gm).get_legend().get_texts()]
    assert texts == [f"component {c} (weight {gm.weights_[c]:.2f})" for c in range(3)]
    many = GaussianMixture(14, random_state=0).fit(data3[:, :2])
    legend = plotting.plot_density(many, data3[:, :2]).get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "component means",
        "points (colour: label, size: confidence)",
    ]


def test_density_feature_names_from_a_dataframe(model3, data3):
    """A model fitted on an array, drawn with a DataFrame: its column names."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(data3, columns=["height", "weight", "age"])
    ax = plotting.plot_density(model3, frame, features=(1, 2))
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("weight", "age")
    ax = plotting.plot_density(model3, data3, features=(0, 2))  # no names known
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x0", "x2")
    on_frame = GaussianMixture(3, covariance_type="diag", random_state=0).fit(frame)
    ax = plotting.plot_density(on_frame, features=(2, 0))  # the model's names
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("age", "height")
    fig = plotting.plot_overview(
        model3, data3, features=(0, 1), feature_names=["u", "v", "w"]
    )
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("u", "v")


def test_density_feature_names_of_the_wrong_length(model3):
    with pytest.raises(ValueError, match="feature_names has 2 names for 3 features"):
        plotting.plot_density(model3, features=(0, 1), feature_names=["a", "b"])


def test_density_matches_score_samples(model2):
    """The contoured log-density is the model's own, in 2-D."""
    basis, centre, _ = plotting.projection(model2)
    params = plotting.projected_params(model2, basis, centre)
    xx, yy, log_p = grid_log_density(params, [(-2, 6), (-2, 7)], 15)
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    np.testing.assert_allclose(log_p.ravel(), model2.score_samples(grid), rtol=1e-10)


def test_density_feature_pair_is_the_marginal(model3, data3, tmp_path):
    ax = plotting.plot_density(
        model3, data3, features=(0, 2), feature_names=["a", "b", "c"]
    )
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("a", "c")
    _, means = _scatters(ax)
    np.testing.assert_allclose(means.get_offsets(), model3.means_[:, [0, 2]])
    ellipses = [p for p in ax.patches if isinstance(p, Ellipse)]
    for e, var in zip(ellipses, model3.covariances_[:, [0, 2]], strict=True):
        axes = sorted([e.width, e.height])
        np.testing.assert_allclose(axes, sorted(4 * np.sqrt(var)), rtol=1e-10)
    _png(ax, tmp_path, "density_pair")


def test_density_pca(model3, data3, tmp_path):
    ax = plotting.plot_density(model3, data3, max_points=120)
    assert ax.get_xlabel().startswith("PC1") and ax.get_ylabel().startswith("PC2")
    points, _ = _scatters(ax)
    assert points.get_offsets().shape == (120, 2)  # subsampled
    basis, _, _ = plotting.projection(model3, data3)
    np.testing.assert_allclose(basis.T @ basis, np.eye(2), atol=1e-12)
    _png(ax, tmp_path, "density_pca")
    model_only = plotting.plot_density(model3)  # PCA of the mixture's covariance
    assert len(_scatters(model_only)) == 1  # means only, no points


@pytest.mark.parametrize(
    ("features", "match"), [((0, 0), "different"), ((0, 9), "below"), ("tsne", "pca")]
)
def test_density_bad_features(model3, features, match):
    with pytest.raises(ValueError, match=match):
        plotting.plot_density(model3, features=features)


def test_density_needs_two_features(data3):
    gm = GaussianMixture(2, random_state=0).fit(data3[:, :1])
    with pytest.raises(ValueError, match="at least 2 features"):
        plotting.plot_density(gm)


@pytest.mark.parametrize("cov", ["tied", "spherical"])
def test_density_every_covariance_type(data3, cov):
    gm = GaussianMixture(3, covariance_type=cov, random_state=0).fit(data3)
    ax = plotting.plot_density(gm, data3, features=(0, 1))
    assert len([p for p in ax.patches if isinstance(p, Ellipse)]) == 3


def test_selection_curve(data3, tmp_path):
    result = select(data3, range(1, 6), ("full", "diag"), random_state=0)
    ax = plotting.plot_selection(result)
    lines = [
        ln
        for ln in ax.get_lines()
        if ln.get_label().split()[0] in ("BIC", "AIC", "ICL")
    ]
    assert len(lines) == 3 * 2
    for line in lines:
        np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4, 5])
    best = result.table[result.best_index_]
    star = [ln for ln in ax.get_lines() if ln.get_label() == "best by BIC"]
    assert len(star) == 1
    assert star[0].get_xdata()[0] == best["n_components"] == 3
    assert star[0].get_ydata()[0] == best["bic"]
    vlines = [ln for ln in ax.get_lines() if ln.get_linestyle() == ":"]
    assert vlines and vlines[0].get_xdata()[0] == 3
    assert "K=3" in ax.get_title()
    assert ax.get_xlabel() == "number of components K"
    _png(ax, tmp_path, "selection")
    # the legend names each colour (covariance type) and style (criterion) once
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["full", "diag", "BIC", "AIC", "ICL", "best by BIC"]
    handles = ax.get_legend().legend_handles
    by_label = {ln.get_label(): ln for ln in lines}
    assert handles[0].get_color() == by_label["AIC full"].get_color()
    assert handles[1].get_color() == by_label["ICL diag"].get_color()
    assert handles[3].get_linestyle() == by_label["AIC diag"].get_linestyle()
    only_bic = plotting.plot_selection(result, criteria=("bic",))
    assert len(only_bic.get_lines()) == 2 + 2  # two types, the marker, the vline
    texts = [t.get_text() for t in only_bic.get_legend().get_texts()]
    assert texts == ["full", "diag", "best by BIC"]


def test_confidence_histogram(model3, data3, tmp_path):
    ax = plotting.plot_confidence(model3, data3, threshold=0.8, bins=25)
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 25
    assert sum(b.get_height() for b in bars) == len(data3)
    (line,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert line.get_xdata()[0] == 0.8
    share = np.mean(model3.predict_proba(data3).max(axis=1) < 0.8)
    assert f"{100 * share:.1f}%" in ax.get_legend().get_texts()[0].get_text()
    assert ax.get_xlabel().startswith("confidence")
    _png(ax, tmp_path, "confidence")


def test_sizes(model3, data3, tmp_path):
    ax = plotting.plot_sizes(model3, data3)
    shares, weights = ax.containers[:2]
    counts = np.bincount(model3.predict(data3), minlength=3)
    np.testing.assert_allclose([b.get_height() for b in shares], counts / counts.sum())
    np.testing.assert_allclose([b.get_height() for b in weights], model3.weights_)
    labels = [t.get_text() for t in ax.texts]
    assert labels == [str(c) for c in counts]
    _png(ax, tmp_path, "sizes")
    weights_only = plotting.plot_sizes(model3)
    assert len(weights_only.containers) == 1


def test_overview(model3, data3, tmp_path):
    fig = plotting.plot_overview(model3, data3)
    assert len(fig.axes) == 3
    titles = [a.get_title() for a in fig.axes]
    assert (
        "log-density" in titles[0] and "certain" in titles[1] and "sizes" in titles[2]
    )
    _png(fig, tmp_path, "overview")
