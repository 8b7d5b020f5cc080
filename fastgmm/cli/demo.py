"""The built-in demo: worked examples that GMM users know, and a large fit.

Run it with ``fastgmm demo``, ``python -m fastgmm demo`` or
``fastgmm.cli.demo.run_demo()``. The worked examples, for reading a model, are
``heights`` (two overlapping synthetic height populations, 1-D, K=2), ``iris``
(``sklearn.datasets.load_iris``, K=3) and ``rfm`` (synthetic recency/frequency/monetary
customers with four segments, ``log1p``-transformed and standardised with numpy, K=4).
Each report shows the fit against the truth, the BIC-chosen K over K=1..6, the share
of low-confidence points and the fit time. Then ``pixels`` (:mod:`fastgmm.cli.demo_image`):
a million pixels, where fastgmm is for, fitted beside scikit-learn from the same start
(unless ``compare=False``), and a picture.

Heavy imports (fastgmm's kernels, Numba, scikit-learn, SciPy) happen inside the
functions, so importing this module is cheap.
"""

import sys
import time
import warnings

import numpy as np

#: candidate numbers of components for the BIC sweep
K_RANGE = range(1, 7)
#: a point is "low-confidence" when its largest responsibility is below this
CONFIDENCE = 0.9
#: each timed fit is repeated this many times and the best time is kept
REPEAT = 3

#: RFM segments: name, share, recency gamma (shape, scale) in days,
#: frequency 1 + negative binomial (size, mean), order value lognormal (mu, sigma)
RFM_SEGMENTS = (
    ("champions", 0.15, (2, 4), (5, 24), (4.4, 0.40)),
    ("loyal", 0.25, (3, 10), (4, 9), (4.0, 0.40)),
    ("at-risk", 0.25, (6, 25), (4, 5), (4.0, 0.45)),
    ("lost", 0.35, (8, 50), (2, 1.2), (3.4, 0.50)),
)


def _table(say, header, rows, specs):
    """Print an aligned table: first column left-aligned, the others right-aligned.

    Parameters
    ----------
    say : callable
        Prints one line.
    header : str
        Comma-separated column titles.
    rows : list of sequence
        Cell values, formatted with the matching entry of ``specs``.
    specs : str
        Space-separated format specs, one per column (``s`` for strings).
    """
    cells = [header.split(",")]
    cells += [[format(v, f) for v, f in zip(r, specs.split())] for r in rows]
    widths = [max(len(r[j]) for r in cells) for j in range(len(cells[0]))]
    for r in cells:
        parts = [r[0].ljust(widths[0])]
        parts += [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        say("  " + "  ".join(parts).rstrip())


def _fit(cls, X, params, caught, repeat=1):
    """Fit ``cls(**params)`` on ``X`` ``repeat`` times; return it and the best time.

    Warnings raised by the fits are appended to ``caught`` instead of being shown.
    """
    best = np.inf
    for _ in range(repeat):
        model = cls(**params)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            model.fit(X)
            best = min(best, time.perf_counter() - t0)
        caught.extend(w)
    return model, best


def _evaluate(X, params):
    """Fit one example with fastgmm and collect the diagnostics.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The data.
    params : dict
        Constructor parameters.

    Returns
    -------
    model : fastgmm.mixture.GaussianMixture
        The fitted model.
    res : dict
        The plain numbers: ``bic_k``, ``low_conf``, ``time``, ``lower_bound``; plus
        ``warnings``, the sorted names of the warning classes the fits raised.
    """
    from fastgmm.mixture import GaussianMixture

    caught, bics = [], []
    for k in K_RANGE:  # also warms up the JIT before the timed fits
        gm, _ = _fit(GaussianMixture, X, {**params, "n_components": k}, caught)
        bics.append(gm.bic(X))
    model, seconds = _fit(GaussianMixture, X, params, caught, REPEAT)
    proba = model.predict_proba(X)
    res = {
        "bic_k": K_RANGE[int(np.argmin(bics))],
        "low_conf": float(np.mean(proba.max(axis=1) < CONFIDENCE)),
        "time": seconds,
        "lower_bound": float(model.lower_bound_),
    }
    res["warnings"] = sorted({type(w.message).__name__ for w in caught})
    return model, res


def _report(say, res, bic_note=None):
    """Print the BIC choice, confidence, timing and lower-bound lines of an example."""
    say(
        f"  BIC-chosen K (K={K_RANGE[0]}..{K_RANGE[-1]}): {res['bic_k']}      "
        f"low-confidence points (max proba < {CONFIDENCE}): "
        f"{100 * res['low_conf']:.1f}%"
    )
    if bic_note:
        say(f"  ({bic_note})")
    say(
        f"  fit time (best of {REPEAT}): {1e3 * res['time']:.1f} ms      "
        f"lower_bound_ {res['lower_bound']:.6f}"
    )
    if res["warnings"]:
        say(f"  note: the fits raised {', '.join(res['warnings'])}")


def _match(truth, labels, k):
    """Return ``order`` with ``order[c]`` the component that best matches class ``c``.

    Uses the assignment that maximises the agreement of the contingency table.
    """
    from scipy.optimize import linear_sum_assignment

    table = np.zeros((k, k))
    np.add.at(table, (truth, labels), 1)
    return linear_sum_assignment(-table)[1]


def _heights(seed, say):
    """Two overlapping height populations (cm), 1-D, K=2."""
    truth = (("women", 2000, 162.0, 6.5), ("men", 2000, 176.0, 7.0))
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(m, s, n) for _, n, m, s in truth])
    y = np.repeat(np.arange(len(truth)), [n for _, n, _, _ in truth])
    params = {"n_components": 2, "covariance_type": "full", "random_state": seed}
    say(f"== heights: {len(x)} adult heights in cm (2000 women, 2000 men), 1-D, K=2 ==")
    gm, res = _evaluate(x[:, None], params)
    order = _match(y, gm.predict(x[:, None]), 2)
    means, weights = gm.means_[order, 0], gm.weights_[order]
    stds = np.sqrt(gm.covariances_[order, 0, 0])
    rows = [
        (name, means[i], stds[i], weights[i], "|", m, s, n / len(x))
        for i, (name, n, m, s) in enumerate(truth)
    ]
    header = "component,mean,std,weight,|,true mean,true std,true weight"
    _table(say, header, rows, "s .1f .1f .3f s .1f .1f .3f")
    _report(say, res)
    res.update(means=means.tolist(), stds=stds.tolist(), weights=weights.tolist())
    return {**res, "true_means": [t[2] for t in truth]}


def _iris(seed, say):
    """Fisher's iris data, K=3, full covariance, scored against the species."""
    from sklearn.datasets import load_iris
    from sklearn.metrics import adjusted_rand_score

    data = load_iris()
    X, y = data.data, data.target
    params = {"n_components": 3, "covariance_type": "full", "random_state": seed}
    say(f"== iris: {len(X)} flowers x 4 measurements (cm), K=3, full covariance ==")
    gm, res = _evaluate(X, params)
    labels = gm.predict(X)
    order = _match(y, labels, 3)
    rows = [
        (f"{c} {name}", gm.weights_[c], *gm.means_[c])
        for name, c in zip(data.target_names, order)
    ]
    header = ",".join(["component", "weight"] + data.feature_names)
    _table(say, header.replace(" (cm)", ""), rows, "s .3f .2f .2f .2f .2f")
    res["ari"] = float(adjusted_rand_score(y, labels))
    say(f"  adjusted Rand index vs species: {res['ari']:.3f}")
    _report(say, res)
    return res


def make_rfm(n=5000, seed=0):
    """Generate a synthetic RFM customer table with four segments.

    Parameters
    ----------
    n : int, default=5000
        Number of customers.
    seed : int, default=0
        Seed of the random generator.

    Returns
    -------
    X : ndarray of shape (n, 3)
        Recency (days since the last order), frequency (number of orders) and
        monetary value (total spend, $): right-skewed, as real RFM data are.
    y : ndarray of shape (n,)
        Segment index into :data:`RFM_SEGMENTS`.
    """
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, [s[1] for s in RFM_SEGMENTS])
    parts = []
    for c, (_, _, gamma, negbin, lognorm) in zip(counts, RFM_SEGMENTS):
        recency = np.ceil(rng.gamma(*gamma, c))
        size, mean = negbin
        frequency = 1.0 + rng.negative_binomial(size, size / (size + mean), c)
        monetary = np.round(frequency * rng.lognormal(*lognorm, c), 2)
        parts.append(np.column_stack([recency, frequency, monetary]))
    return np.concatenate(parts), np.repeat(np.arange(len(counts)), counts)


def _rfm(seed, say):
    """Synthetic RFM customers, log1p + standardised, K=4, shown in original units."""
    from sklearn.metrics import adjusted_rand_score

    raw, y = make_rfm(seed=seed)
    logged = np.log1p(raw)
    centre, scale = logged.mean(axis=0), logged.std(axis=0)
    X = (logged - centre) / scale
    params = {"n_components": 4, "covariance_type": "full", "random_state": seed}
    say(
        f"== rfm: {len(raw)} synthetic customers (recency days, orders, spend $), K=4 =="
    )
    say("  features: log1p, then standardised with numpy, (x - mean) / std;")
    say("  component medians are mapped back to days, orders and $")
    gm, res = _evaluate(X, params)
    labels = gm.predict(X)
    order = _match(y, labels, 4)
    medians = np.expm1(gm.means_ * scale + centre)
    rows = [
        (f"{c} {seg[0]}", gm.weights_[c], *medians[c], "|", np.mean(y == i))
        + tuple(np.median(raw[y == i], axis=0))
        for i, (c, seg) in enumerate(zip(order, RFM_SEGMENTS))
    ]
    header = "component,weight,recency,freq,monetary,|,true share,recency,freq,monetary"
    _table(say, header, rows, "s .3f .0f .1f .0f s .3f .0f .1f .0f")
    res["ari"] = float(adjusted_rand_score(y, labels))
    say(f"  adjusted Rand index vs true segments: {res['ari']:.3f}")
    note = "frequency is a count: the BIC spends extra components on its point masses"
    _report(say, res, note if res["bic_k"] > 4 else None)
    return {**res, "medians": medians[order].tolist()}


def run_demo(out=None, compare=True, seed=0, picture="fastgmm-demo.png", status=None):
    """Fit the worked examples and the large case; print a plain-text report.

    Parameters
    ----------
    out : file-like or callable, optional
        Where to write the report (default: ``sys.stdout``); a callable is called
        with each line.
    compare : bool, default=True
        Fit the large case with ``sklearn.mixture.GaussianMixture`` too, from the
        same starting parameters, and report both times and lower bounds.
    seed : int, default=0
        Seed of the synthetic data and ``random_state`` of every fit.
    picture : str or None, default="fastgmm-demo.png"
        Where to write the picture of the large case (needs matplotlib); None: none.
    status : callable, optional
        Called with a description of each long step, and None after it.

    Returns
    -------
    dict
        Per example (``"heights"``, ``"iris"``, ``"rfm"``, ``"pixels"``) a dict of
        the numbers in the report: ``bic_k``, ``low_conf``, ``time``, ``lower_bound``,
        ``means``/``stds``/``weights``/``true_means`` for heights, ``ari`` for iris,
        rfm and pixels; for pixels ``n_iter`` and, with ``compare``, ``sk_time``,
        ``fast_times``, ``speedup``, ``sk_lower_bound``, ``agree``, and ``picture``
        (its path, or None when matplotlib is missing).
    """
    from .demo_image import prepare, run_pixels

    if callable(out):

        def say(line=""):
            out(line)

    else:
        stream = sys.stdout if out is None else out

        def say(line=""):
            print(line, file=stream, flush=True)

    status = status if status is not None else (lambda text: None)
    say(
        f"fastgmm demo (seed={seed}): three worked examples for reading a model, "
        "then a million pixels."
    )
    from fastgmm._jit import is_cached
    from fastgmm._warmup import compile_kernels, kmeans_kernels
    from fastgmm.kernels.passes import mixture_pass

    if not all(is_cached(k) for k in (mixture_pass, *kmeans_kernels())):
        say(
            "First run: compiling fastgmm's kernels (a minute or more, longer on a "
            "busy machine; cached afterwards; `fastgmm warmup` does it ahead)."
        )
    prepared = []

    def meanwhile():  # while the second process compiles, on a first run
        status("importing scikit-learn, painting a photograph")
        prepared.append(prepare(seed, compare=compare))

    # two processes at once on a first run; the demo's data are all float64
    compile_kernels(status=status, dtypes=("float64",), meanwhile=meanwhile)
    photo = prepared[0]
    results = {}
    for name, example in (("heights", _heights), ("iris", _iris), ("rfm", _rfm)):
        say()
        status(f"fitting the {name} example")
        results[name] = example(seed, say)
        status(None)
    say()
    results["pixels"] = run_pixels(say, status, compare, seed, picture, photo=photo)
    return results
