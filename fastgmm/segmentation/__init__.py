"""Image segmentation: a Gaussian mixture over the colours (and positions) of pixels.

:func:`segment` fits a :class:`fastgmm.GaussianMixture` to the pixels of an image
and labels every pixel with its most probable component.

How it stays exact, fast and small
----------------------------------
* **Integer images without coordinate features** (8-bit with 1 to 3 channels, 16-bit
  grey): the pixels are counted per distinct colour (one pass, one table of
  ``2**24`` counters for RGB) and the mixture is fitted to the distinct colours with
  their counts as ``sample_weight``. Weighted EM on distinct values is the same EM as
  on all the pixels: every sum over pixels is the same sum regrouped by colour.
  Each distinct colour is then labelled once and every pixel is mapped through a
  look-up table in one parallel pass: no float copy of the image, O(pixels).
* **Otherwise** (float or 16-bit colour images, ``xy > 0``, or ``exact=False``) the fit
  runs on a seeded random sample of ``sample_size`` pixels, and every pixel is then
  predicted in chunks of :data:`CHUNK_PIXELS` whose float32 features are built and
  scored one chunk at a time.

Either way the memory beyond the outputs is one chunk (or one look-up table): nothing
of size pixels x components is ever allocated.
"""

from dataclasses import dataclass
from numbers import Integral

import numpy as np

from ..kernels import pixels as kern
from .pixels import FROM_SPACE, features, prepare, unpack

__all__ = ["segment"]

#: pixels per chunk of feature building and scoring (~20 MiB of work arrays at K=8)
CHUNK_PIXELS = 1 << 18
#: pixels per band of the look-up pass (the progress granularity)
BAND_PIXELS = 1 << 24


# ------------------------------------------------------------------------------- fit
@dataclass(frozen=True)
class _FitSet:
    """What the mixture is fitted on: X (m, F) float64 with weights (or None)."""

    X: np.ndarray
    weight: object
    exact: bool
    what: str  # for the progress message


def _sample(im, size, rng):
    """Flat indices of ``size`` distinct pixels not ignored, sorted (all if fewer)."""
    n_valid = im.n_valid
    if n_valid <= size:
        return (
            np.arange(im.px.shape[0])
            if im.ignore.size == 0
            else np.flatnonzero(~im.ignore)
        )
    ranks = np.sort(rng.choice(n_valid, size, replace=False))
    if im.ignore.size == 0:
        return ranks
    index = np.empty(size, dtype=np.int64)
    kern.valid_positions(im.ignore, ranks, index)
    return index


def _draw(X, weight, size, rng):
    """A with-replacement sample of ``size`` pixels of a weighted set, as counts."""
    drawn = rng.multinomial(size, weight / weight.sum())
    keep = np.flatnonzero(drawn)
    what = f"a sample of {size:,} pixels"
    return _FitSet(X[keep], drawn[keep].astype(np.float64), False, what)


def _fit_set(im, colours, exact, sample_size, rng):
    """The fit set: distinct colours with counts (exact), or a pixel sample.

    ``colours`` is (features, counts) of every distinct colour of a look-up-table
    image, else None. A sample of a look-up-table image is drawn as multinomial
    counts over its distinct colours: a with-replacement sample of pixels.
    """
    if colours is not None:
        X, counts = colours
        if exact or counts.sum() <= sample_size:
            weight = counts.astype(np.float64)
            return _FitSet(X, weight, True, f"{len(X):,} distinct colours")
        return _draw(X, counts.astype(np.float64), sample_size, rng)
    index = _sample(im, sample_size, rng)
    X = features(im.px[index], index, im, np.float64)
    if im.px.dtype.kind == "f" and not np.isfinite(X).all():
        raise ValueError("image has NaN or infinite values; pass ignore= to skip them")
    exact = len(index) == im.n_valid
    what = f"{'all' if exact else 'a sample of'} {len(index):,} pixels"
    return _FitSet(X, None, exact, what)


def _fit(fit_set, n_components, options):
    """A fitted GaussianMixture with ``n_components`` on the fit set."""
    from ..mixture import GaussianMixture

    n_points = fit_set.X.shape[0]
    if n_points < n_components:
        raise ValueError(
            f"n_components={n_components} exceeds the number of points the mixture "
            f"is fitted on: {fit_set.what}"
        )
    X, weight = fit_set.X, fit_set.weight
    if n_points == 1:  # one distinct colour: two half-weight copies, the same EM
        X = np.repeat(X, 2, axis=0)
        weight = np.repeat((np.ones(1) if weight is None else weight) / 2, 2)
    return GaussianMixture(n_components, **options).fit(X, sample_weight=weight)


def _bic(model, fit_set):
    """BIC of a model on a (weighted) fit set: -2 log L + n_params log n."""
    from ..model import criteria

    log_p = model.score_samples(fit_set.X)
    weight = np.ones(len(log_p)) if fit_set.weight is None else fit_set.weight
    n_pixels = float(weight.sum())
    return criteria.bic(float(weight @ log_p), model._n_parameters(), n_pixels)


def _choose_k(candidates, fit_set, options, sample_size, rng):
    """(K with the lowest BIC on at most ``sample_size`` pixels, its model when it
    was fitted on the whole fit set, else None)."""
    scored = fit_set
    if fit_set.weight is not None and fit_set.weight.sum() > sample_size:
        scored = _draw(fit_set.X, fit_set.weight, sample_size, rng)
    usable = [k for k in candidates if k <= scored.X.shape[0]] or candidates[:1]
    models = {k: _fit(scored, k, options) for k in usable}
    best = min(usable, key=lambda k: _bic(models[k], scored))
    return best, models[best] if scored is fit_set else None


# --------------------------------------------------------------------------- predict
def _params(model):
    """The fitted model as the float64 Params the scorer takes."""
    from ..model.params import from_fitted

    return from_fitted(model)


def _score_rows(X, params, want_conf):
    """(labels (m,) int64, confidence (m,) float32 or None) of feature rows X."""
    from ..engine.score import score

    if not want_conf:
        return score(X, params, labels=True)[0], None
    resp, labels = score(X, params, resp=True, labels=True)
    return labels, resp.max(axis=1).astype(np.float32)


def _predict_lut(im, keys, X, model, out, report):
    """Label every pixel through look-up tables indexed by colour; fills ``out``."""
    params, want_conf = _params(model), out["confidence"] is not None
    lab_k, conf_k = [], []
    for start in range(0, len(X), CHUNK_PIXELS):
        labels, conf = _score_rows(X[start : start + CHUNK_PIXELS], params, want_conf)
        lab_k.append(labels)
        conf_k.append(conf)
    n_pixels, n_bands = im.px.shape[0], 2 if want_conf else 1
    targets = [("labels", np.concatenate(lab_k), model.n_components)]
    if want_conf:
        targets.append(("confidence", np.concatenate(conf_k), 0.0))
    for band, (name, per_colour, fill) in enumerate(targets):
        lut = np.zeros(1 << (im.bits * im.px.shape[1]), dtype=out[name].dtype)
        lut[keys] = per_colour
        for start in range(0, n_pixels, BAND_PIXELS):
            stop = min(n_pixels, start + BAND_PIXELS)
            ign = im.ignore[start:stop] if im.ignore.size else im.ignore
            kern.apply_lut(
                im.px[start:stop], ign, im.bits, lut, fill, out[name][start:stop]
            )
            report((band + stop / n_pixels) / n_bands)
        del lut


def _predict_chunks(im, model, out, report):
    """Label every pixel chunk by chunk (features built per chunk); fills ``out``."""
    params, conf_out = _params(model), out["confidence"]
    n_pixels, is_float = im.px.shape[0], im.px.dtype.kind == "f"
    for start in range(0, n_pixels, CHUNK_PIXELS):
        stop = min(n_pixels, start + CHUNK_PIXELS)
        index = np.arange(start, stop) if im.xy else None
        X = features(im.px[start:stop], index, im, np.float32)
        ign = im.ignore[start:stop] if im.ignore.size else None
        if is_float:
            bad = ~np.isfinite(X).all(axis=1)
            if (bad if ign is None else bad & ~ign).any():
                raise ValueError(
                    "image has NaN or infinite values; pass ignore= to skip them"
                )
        labels, conf = _score_rows(X, params, conf_out is not None)
        if ign is not None:
            labels[ign] = model.n_components
        out["labels"][start:stop] = labels
        if conf_out is not None:
            conf_out[start:stop] = np.where(ign, 0.0, conf) if ign is not None else conf
        report(stop / n_pixels)


def _palette(model, im):
    """(K, C) colour of each component's mean, in the image's dtype and range."""
    means = np.asarray(model.means_, np.float64)[:, : im.px.shape[1]]
    values = FROM_SPACE[im.space](means) * im.scale
    if im.px.dtype.kind == "f":
        return values.astype(im.px.dtype)
    return np.clip(np.rint(values), 0, im.scale).astype(im.px.dtype)


def _recolour(im, model, labels):
    """The image with each pixel painted with its component's mean colour."""
    palette = _palette(model, im)
    out = np.empty_like(im.px)
    kern.paint(labels, palette, im.px, out)
    return out.reshape(im.shape)


# -------------------------------------------------------------------------- pipeline
def _random(random_state):
    """(numpy Generator for sampling, random_state for GaussianMixture)."""
    if random_state is None or isinstance(random_state, Integral):
        return np.random.default_rng(random_state), random_state
    from sklearn.utils import check_random_state

    state = check_random_state(random_state)
    return np.random.default_rng(state.randint(2**31 - 1)), state


def _fit_model(im, candidates, exact, sample_size, rng, options, report):
    """(fitted GaussianMixture, distinct keys and their features or None)."""
    report(0.0, "counting colours" if im.bits else "sampling pixels")
    keys, colours = None, None
    if im.bits:
        keys, counts = kern.count_colours(im.px, im.ignore, im.bits)
        colours = (features(unpack(keys, im), None, im, np.float64), counts)
    fit_set = _fit_set(im, colours, exact, sample_size, rng)
    k, model = candidates[0], None
    if len(candidates) > 1:
        report(0.05, f"choosing K in {candidates[0]}..{candidates[-1]} by BIC")
        k, model = _choose_k(candidates, fit_set, options, sample_size, rng)
    exactly = " (exact)" if fit_set.exact else ""
    report(0.1, f"fitting K={k} on {fit_set.what}{exactly}")
    if model is None:
        model = _fit(fit_set, k, options)
    return model, keys, None if colours is None else colours[0]


def _label(im, model, keys, colour_features, want_conf, report):
    """{"labels": (n,) smallest unsigned dtype, "confidence": (n,) float32 or None}."""
    k = model.n_components
    dtype = np.min_scalar_type(k if im.ignore.size else k - 1)
    out = {"labels": np.empty(im.px.shape[0], dtype=dtype), "confidence": None}
    if want_conf:
        out["confidence"] = np.empty(im.px.shape[0], dtype=np.float32)

    def labelling(fraction):
        report(0.6 + 0.4 * fraction, "labelling pixels")

    labelling(0.0)
    if im.bits:
        _predict_lut(im, keys, colour_features, model, out, labelling)
    else:
        _predict_chunks(im, model, out, labelling)
    return out


def segment(
    image,
    n_components,
    *,
    colour_space="rgb",
    xy=0.0,
    ignore=None,
    covariance_type="full",
    exact=True,
    sample_size=1_000_000,
    random_state=0,
    n_jobs=None,
    return_confidence=False,
    return_image=False,
    return_model=False,
    progress=None,
    **gmm_params,
):
    """Segment an image with a Gaussian mixture over its pixel colours (and positions).

    Parameters
    ----------
    image : ndarray of shape (H, W, C) or (H, W)
        uint8, uint16 or float pixels (floats in [0, 1] as in scikit-image; for
        ``colour_space="rgb"`` any range works). Drop an alpha channel first (pass
        ``ignore=alpha == 0`` to skip transparent pixels).
    n_components : int or iterable of int
        The number of segments K, or candidates (e.g. ``range(2, 9)``) of which the
        one with the lowest BIC on a sample of ``sample_size`` pixels is fitted.
    colour_space : {"rgb", "lab", "hsv"}, default="rgb"
        Features of a pixel: its channels scaled to [0, 1]; CIE Lab (D65); or HSV (hue
        is circular but modelled as linear). Lab and HSV need 3 channels.
    xy : float, default=0
        Weight of the pixel coordinates, added as features (x, y) * xy * E / max(H, W)
        with E the colour space's extent (1 for rgb and hsv, 100 for Lab): with
        ``xy=1`` the image's longer side spans as much as the whole colour range.
        Larger values give more compact, spatially coherent segments.
    ignore : ndarray of bool, shape (H, W), optional
        Pixels to leave out: not fitted, labelled K, confidence 0, and kept in their
        own colour in the recoloured image.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
    exact : bool, default=True
        For 8-bit images with up to 3 channels and 16-bit grey images without ``xy``:
        fit on the distinct colours with their pixel counts as sample weights, which
        is exactly the fit on every pixel. Otherwise (or with ``exact=False``) fit on
        a random sample of ``sample_size`` pixels seeded by ``random_state``: drawn
        without replacement, or for 8-bit images as multinomial counts over the
        distinct colours (with replacement); the whole image when it is smaller.
    sample_size : int, default=1_000_000
        Pixels in a sampled fit, and in the sample that scores candidate K by BIC.
    random_state : int, RandomState or None, default=0
        Seed of the sampling and of the mixture's initialisation.
    n_jobs : int or None
        Threads, in scikit-learn's spelling (None: Numba's current setting).
    return_confidence, return_image, return_model : bool, default=False
        Also return the confidence, the recoloured image, the fitted model.
    progress : callable, optional
        Called as ``progress(fraction, message)`` as the work advances.
    **gmm_params
        Passed to :class:`fastgmm.GaussianMixture` (``tol``, ``max_iter``,
        ``n_init``, ``init_params``, ``reg_covar``, ``means_init``, ...).

    Returns
    -------
    labels : ndarray of shape (H, W)
        The component of each pixel (ignored pixels: K), in the smallest unsigned
        integer dtype that holds the labels (uint8 for K <= 256 without ``ignore``).
    confidence : ndarray of shape (H, W), float32
        If ``return_confidence``: the responsibility of the chosen component.
    recoloured : ndarray, the shape and dtype of ``image``
        If ``return_image``: each pixel painted with its component's mean colour.
    model : fastgmm.GaussianMixture
        If ``return_model``: the fitted mixture (features as described above).

    Notes
    -----
    Memory beyond the image and the outputs: for 8-bit images one table of
    ``2**(8 C)`` entries at a time (64 MiB for RGB) and ~60 bytes per distinct
    colour; otherwise the sample and one chunk of :data:`CHUNK_PIXELS` pixels. Never
    pixels x components, never a float copy of the image.

    Examples
    --------
    >>> import skimage.data
    >>> labels, recoloured = segment(skimage.data.coffee(), 6, return_image=True)
    >>> labels.dtype, labels.shape, recoloured.shape
    (dtype('uint8'), (400, 600), (400, 600, 3))
    """
    from .._runtime import threads
    from ..selection.grid import k_values

    candidates = k_values(n_components, name="n_components")
    if int(sample_size) < 1:
        raise ValueError(f"sample_size must be >= 1, got {sample_size!r}")
    im = prepare(image, ignore, colour_space, xy)
    rng, gmm_state = _random(random_state)
    options = dict(gmm_params, covariance_type=covariance_type)
    options.update(random_state=gmm_state, n_jobs=n_jobs)
    report = progress or (lambda fraction, message: None)
    with threads(n_jobs):
        model, keys, colour_features = _fit_model(
            im, candidates, exact, int(sample_size), rng, options, report
        )
        out = _label(im, model, keys, colour_features, return_confidence, report)
        results = [out["labels"].reshape(im.shape[:2])]
        if return_confidence:
            results.append(out["confidence"].reshape(im.shape[:2]))
        if return_image:
            results.append(_recolour(im, model, out["labels"]))
    if return_model:
        results.append(model)
    report(1.0, "done")
    return results[0] if len(results) == 1 else tuple(results)
