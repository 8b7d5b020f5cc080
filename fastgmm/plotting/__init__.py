"""Pictures of a fitted mixture and of a model-selection sweep (matplotlib).

Needs the optional extra ``plot`` (``pip install 'fastgmm[plot]'``); matplotlib is
imported only when a function here is called. Every function draws into ``ax`` (a
new figure when None) and returns the Axes; :func:`save` writes a PNG.

- :func:`plot_density`: log-density contours, component ellipses and means, points
  coloured by label and sized by confidence. For more than two features it shows a
  chosen pair of features (the mixture's exact marginal) or the first two principal
  components (the exact projection of every component onto that plane).
- :func:`plot_selection`: BIC / AIC / ICL against K per covariance type, best marked.
- :func:`plot_confidence`: histogram of the confidence with the threshold.
- :func:`plot_sizes`: share of points per component beside the mixing weights.
- :func:`plot_overview`: the three model plots side by side.
"""

import numpy as np

from ..inspection import score_chunks
from .plane import grid_log_density, limits, projected_params, projection


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "fastgmm.plotting needs matplotlib: pip install 'fastgmm[plot]'"
        ) from None
    return plt


def _axes(ax, figsize=(6.4, 4.8)):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=figsize)
    return ax


def _colors(k):
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if k <= 10 else "tab20" if k <= 20 else "turbo"]
    return [cmap(i if k <= 20 else i / max(k - 1, 1)) for i in range(k)]


def _ellipse(mean, cov2, n_std, color):
    from matplotlib.patches import Ellipse

    values, vectors = np.linalg.eigh(cov2)
    angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
    width, height = 2 * n_std * np.sqrt(np.maximum(values[::-1], 0.0))
    return Ellipse(mean, width, height, angle=angle, fill=False, edgecolor=color, lw=2)


def _sample_rows(n, max_points, random_state):
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, size=max_points, replace=False))


def plot_density(
    model,
    X=None,
    *,
    features=None,
    feature_names=None,
    ax=None,
    n_grid=200,
    n_levels=10,
    n_std=2.0,
    max_points=20_000,
    random_state=0,
):
    """Log-density contours, component ellipses and means; points by label.

    Parameters
    ----------
    model : GaussianMixture
        A fitted fastgmm or scikit-learn Gaussian mixture with at least 2 features.
    X : array-like of shape (n_samples, n_features), optional
        Points to draw: coloured by their label, sized by their confidence (labels
        and confidence use all features). At most ``max_points`` are drawn (a
        seeded random subset).
    features : (int, int) or "pca", optional
        The plane shown when there are more than two features (default "pca").
    feature_names : sequence of str, optional
        Names of all the features, for the axis labels of ``features=(i, j)``.
        Default: the model's ``feature_names_in_``, else the columns of a pandas
        DataFrame ``X``, else ``x0, x1, ...``.
    ax : matplotlib Axes, optional
    n_grid : int, default=200
        Grid points per axis for the contours.
    n_levels : int, default=10
        Contours of the log-density, 1 nat apart, from the peak down.
    n_std : float, default=2.0
        Ellipse radius in standard deviations (2 holds 86% of a 2-D Gaussian).
    max_points, random_state
        Subsampling of the drawn points.

    Returns
    -------
    matplotlib.axes.Axes
        The legend lists each component (colour, mean marker, mixing weight) up to
        12 components, and the points.
    """
    ax = _axes(ax)
    basis, centre, labels = projection(model, X, features, feature_names)
    params = projected_params(model, basis, centre)
    k = params.means.shape[0]
    colors = _colors(k)
    points = None
    if X is not None:
        points = _draw_points(
            ax, model, X, basis, centre, colors, max_points, random_state
        )
    xx, yy, log_p = grid_log_density(params, limits(points, params), n_grid)
    peak = float(np.max(log_p))
    levels = peak - np.arange(n_levels, 0, -1, dtype=float) + 0.5
    ax.contour(xx, yy, log_p, levels=levels, cmap="Greys", linewidths=0.8, alpha=0.8)
    _draw_components(ax, params, n_std, colors)
    ax.set(xlabel=labels[0], ylabel=labels[1])
    ax.set_title(
        f"{k}-component {model.covariance_type} mixture: log-density contours "
        f"(1 nat apart), {n_std:g}-sd ellipses",
        fontsize="medium",
    )
    _component_legend(ax, params.weights, colors, points is not None)
    return ax


#: components listed one by one in the density legend up to this many
MAX_LEGEND_COMPONENTS = 12


def _component_legend(ax, weights, colors, with_points):
    """One entry per component (its colour, mean marker and weight), then the points."""
    from matplotlib.lines import Line2D

    handles = []
    if len(colors) <= MAX_LEGEND_COMPONENTS:
        for c, color in enumerate(colors):
            handles.append(
                Line2D(
                    [], [], color=color, lw=2, marker="X", ms=9,
                    markeredgecolor="black", label=f"component {c} (weight {weights[c]:.2f})",
                )
            )  # fmt: skip
    else:
        handles.append(_handle(ax, "component means"))
    if with_points:
        handles.append(_handle(ax, "points (colour: label, size: confidence)"))
    ax.legend(handles=handles, loc="best", fontsize="small")


def _handle(ax, label):
    """The artist of ``ax`` labelled ``label``."""
    return next(a for a in ax.collections if a.get_label() == label)


def _draw_components(ax, params, n_std, colors):
    for c, color in enumerate(colors):
        ax.add_patch(_ellipse(params.means[c], params.covariances[c], n_std, color))
    ax.scatter(
        *params.means.T,
        marker="X",
        s=140,
        c=colors,
        edgecolors="black",
        linewidths=1.2,
        zorder=5,
        label="component means",
    )


def _draw_points(ax, model, X, basis, centre, colors, max_points, random_state):
    rows = _sample_rows(np.shape(X)[0], max_points, random_state)
    Xs = np.asarray(X)[rows]
    labels, conf = [], []
    for _, out in score_chunks(model, Xs):
        labels.append(out["labels"])
        conf.append(out["confidence"])
    labels, conf = np.concatenate(labels), np.concatenate(conf)
    k = len(colors)
    floor = 1.0 / k
    size = 3 + 22 * np.clip((conf - floor) / max(1 - floor, 1e-12), 0, 1)
    points = (np.asarray(Xs, dtype=np.float64) - centre) @ basis
    ax.scatter(
        points[:, 0],
        points[:, 1],
        s=size,
        c=np.asarray(colors)[labels],
        alpha=0.6,
        linewidths=0,
        label="points (colour: label, size: confidence)",
    )
    return points


def plot_selection(result, *, criteria=("bic", "aic", "icl"), ax=None):
    """Criteria against K for each covariance type, with the chosen model marked.

    Parameters
    ----------
    result : fastgmm.selection.SelectionResult
    criteria : sequence of {"bic", "aic", "icl"}, default all three
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        One line per (criterion, covariance type), coloured by covariance type and
        styled by criterion (the legend lists each colour and style once); a dotted
        vertical line and a star at the best candidate under ``result.criterion``.
    """
    ax = _axes(ax, figsize=(7.2, 4.8))
    cov_types = list(dict.fromkeys(r["covariance_type"] for r in result.table))
    colors = dict(zip(cov_types, _colors(len(cov_types))))
    for crit in criteria:
        for cov in cov_types:
            rows = [r for r in result.table if r["covariance_type"] == cov]
            ax.plot(
                [r["n_components"] for r in rows],
                [r[crit] for r in rows],
                SELECTION_STYLES[crit],
                marker="o",
                ms=4,
                color=colors[cov],
                label=f"{crit.upper()} {cov}",
            )
    best = result.table[result.best_index_]
    ax.axvline(best["n_components"], color="grey", ls=":", lw=1.5)
    (star,) = ax.plot(
        [best["n_components"]],
        [best[result.criterion]],
        marker="*",
        ms=18,
        color="gold",
        markeredgecolor="black",
        ls="none",
        zorder=5,
        label=f"best by {result.criterion.upper()}",
    )
    ax.set_xlabel("number of components K")
    ax.set_ylabel("criterion (lower is better)")
    ax.set_xticks(sorted({r["n_components"] for r in result.table}))
    ax.set_title(
        f"best by {result.criterion.upper()}: K={best['n_components']}, "
        f"{best['covariance_type']}",
        fontsize="medium",
    )
    _selection_legend(ax, colors, criteria, star)
    return ax


#: line style of each criterion in plot_selection
SELECTION_STYLES = {"bic": "-", "aic": "--", "icl": "-."}


def _selection_legend(ax, colors, criteria, star):
    """Colours name the covariance types, line styles the criteria: one entry each
    (not one per line), and the best candidate."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=color, lw=2, marker="o", ms=4, label=cov)
        for cov, color in colors.items()
    ]
    if len(criteria) > 1:
        handles += [
            Line2D([], [], color="black", ls=SELECTION_STYLES[c], label=c.upper())
            for c in criteria
        ]
    handles.append(star)
    ax.legend(
        handles=handles,
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        title="colour: covariance\nline: criterion" if len(criteria) > 1 else None,
        title_fontsize="small",
    )


def plot_confidence(model, X, *, threshold=0.9, bins=40, ax=None):
    """Histogram of the confidence (largest responsibility), threshold marked.

    Parameters
    ----------
    model : GaussianMixture
    X : array-like of shape (n_samples, n_features)
    threshold : float, default=0.9
    bins : int, default=40
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    conf = np.concatenate([o["confidence"] for _, o in score_chunks(model, X)])
    k = np.shape(model.means_)[0]
    ax.hist(conf, bins=bins, range=(1.0 / k, 1.0), color="tab:blue", alpha=0.8)
    below = float(np.mean(conf < threshold))
    ax.axvline(
        threshold,
        color="tab:red",
        ls="--",
        lw=2,
        label=f"threshold {threshold:g}: {100 * below:.1f}% of points below",
    )
    ax.set_yscale("log")
    ax.set_xlabel("confidence (largest responsibility)")
    ax.set_ylabel("points (log scale)")
    ax.set_title("How certain is each point's component?", fontsize="medium")
    ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_sizes(model, X=None, *, ax=None):
    """Share of points per component (hard labels) beside the mixing weights.

    Parameters
    ----------
    model : GaussianMixture
    X : array-like of shape (n_samples, n_features), optional
        Without it only the mixing weights are drawn.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    weights = np.asarray(model.weights_, dtype=np.float64)
    k = weights.shape[0]
    pos = np.arange(k)
    colors = _colors(k)
    if X is None:
        ax.bar(pos, weights, color=colors, label="mixing weight")
    else:
        labels = np.concatenate([o["labels"] for _, o in score_chunks(model, X)])
        counts = np.bincount(labels, minlength=k)
        bars = ax.bar(
            pos - 0.2,
            counts / counts.sum(),
            0.4,
            color=colors,
            label="share of points (hard labels)",
        )
        ax.bar(
            pos + 0.2,
            weights,
            0.4,
            color=colors,
            alpha=0.45,
            hatch="//",
            edgecolor="black",
            label="mixing weight",
        )
        ax.bar_label(bars, labels=[str(c) for c in counts], fontsize="small")
    ax.set_xticks(pos)
    ax.set_xlabel("component")
    ax.set_ylabel("fraction")
    ax.set_title("Cluster sizes and mixing weights", fontsize="medium")
    ax.legend(fontsize="small")
    return ax


def plot_overview(model, X, *, threshold=0.9, features=None, feature_names=None):
    """Density, confidence histogram and sizes side by side; returns the Figure.

    ``features`` and ``feature_names`` are passed to :func:`plot_density`.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.2), constrained_layout=True)
    plot_density(model, X, features=features, feature_names=feature_names, ax=axes[0])
    plot_confidence(model, X, threshold=threshold, ax=axes[1])
    plot_sizes(model, X, ax=axes[2])
    return fig


def save(fig, path, dpi=110):
    """Write ``fig`` (a Figure, or the Figure of an Axes) to ``path`` (PNG etc.)."""
    fig = fig if hasattr(fig, "savefig") else fig.figure
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
