"""Tests of fastgmm.segment on scikit-image's bundled photos, and of ``fastgmm segment``.

The photos are downscaled by striding (real 8-bit colours, ~10-30k pixels each) so
that the all-pixel reference fits stay fast.
"""

import importlib.util
import io
import os
import subprocess
import sys
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

skimage_data = pytest.importorskip("skimage.data")
skimage_color = pytest.importorskip("skimage.color")

from fastgmm import segmentation as seg_module
from fastgmm.mixture import GaussianMixture
from fastgmm.segmentation import pixels as _pixels
from fastgmm.segmentation import segment

ROOT = Path(importlib.util.find_spec("fastgmm").origin).parent.parent
#: the short fits (max_iter=1, 2) need not converge; the comparisons assert n_iter_
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: photo name -> stride of the downscaling
PHOTOS = {
    "astronaut": 4,
    "coffee": 4,
    "chelsea": 3,
    "rocket": 4,
    "immunohistochemistry": 4,
    "retina": 10,
}


def photo(name):
    stride = PHOTOS[name]
    return np.ascontiguousarray(getattr(skimage_data, name)()[::stride, ::stride, :3])


def pixels(image, space="rgb"):
    """All pixels of an 8-bit image as float64 features, the reference's input."""
    X = image.reshape(-1, image.shape[-1]).astype(np.float64) / 255.0
    return _pixels.TO_SPACE[space](X)


def start_of(X, k):
    """Shared starting parameters: a short fit on a subsample (any start will do)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(k, max_iter=2, random_state=0).fit(X[::7])
    return {
        "weights_init": gm.weights_,
        "means_init": gm.means_,
        "precisions_init": gm.precisions_,
    }


# ------------------------------------------------------------------- the core claim
@pytest.mark.parametrize("name", list(PHOTOS))
def test_distinct_colour_fit_is_the_all_pixel_fit(name):
    image = photo(name)
    X = pixels(image)
    start = start_of(X, 5)
    labels, model = segment(image, 5, return_model=True, tol=1e-5, **start)
    full = GaussianMixture(5, tol=1e-5, **start).fit(X)
    assert model.n_iter_ == full.n_iter_
    assert model.lower_bound_ == pytest.approx(full.lower_bound_, rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(model.means_, full.means_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.covariances_, full.covariances_, atol=1e-9)
    np.testing.assert_allclose(model.weights_, full.weights_, atol=1e-10)
    assert labels.dtype == np.uint8 and labels.shape == image.shape[:2]
    agree = np.mean(labels.ravel() == full.predict(X))
    assert agree >= 1 - 1e-4


@pytest.mark.parametrize(
    "name, space", [("astronaut", "rgb"), ("coffee", "rgb"), ("chelsea", "lab")]
)
def test_labels_agree_with_sklearn_from_the_same_start(name, space):
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    image = photo(name)
    X = pixels(image, space)
    start = start_of(X, 6)
    labels, model = segment(
        image, 6, colour_space=space, return_model=True, tol=1e-4, **start
    )
    ref = SkGaussianMixture(6, tol=1e-4, **start).fit(X)
    assert model.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-7)
    assert np.mean(labels.ravel() == ref.predict(X)) >= 0.999


# ------------------------------------------------------------------ colour spaces
@pytest.fixture
def colours():
    gen = np.random.default_rng(3)
    grid = np.stack(np.meshgrid(*[np.linspace(0, 1, 9)] * 3), -1).reshape(-1, 3)
    return np.vstack([grid, gen.random((2000, 3)), np.eye(3), np.zeros((1, 3))])


def test_lab_matches_skimage(colours):
    expected = skimage_color.rgb2lab(colours[None])[0]
    np.testing.assert_allclose(_pixels.rgb_to_lab(colours), expected, atol=1e-9)
    lab32 = _pixels.rgb_to_lab(colours.astype(np.float32))
    assert lab32.dtype == np.float32
    np.testing.assert_allclose(lab32, expected, atol=2e-3)
    back = _pixels.lab_to_rgb(expected)
    np.testing.assert_allclose(
        back, skimage_color.lab2rgb(expected[None])[0], atol=1e-9
    )
    np.testing.assert_allclose(back, colours, atol=1e-6)


def test_hsv_matches_skimage(colours):
    expected = skimage_color.rgb2hsv(colours[None])[0]
    np.testing.assert_allclose(_pixels.rgb_to_hsv(colours), expected, atol=1e-12)
    back = _pixels.hsv_to_rgb(expected)
    np.testing.assert_allclose(
        back, skimage_color.hsv2rgb(expected[None])[0], atol=1e-12
    )
    np.testing.assert_allclose(back, colours, atol=1e-12)


# ----------------------------------------------------------- the two predict paths
def test_float_image_path_equals_the_lookup_path(monkeypatch):
    image = photo("coffee")
    start = start_of(pixels(image), 4)
    lut_labels, lut_conf, lut_model = segment(
        image, 4, return_confidence=True, return_model=True, **start
    )
    monkeypatch.setattr(seg_module, "CHUNK_PIXELS", 1000)  # many chunks
    as_float = image.astype(np.float64) / 255.0
    labels, conf, model = segment(
        as_float, 4, return_confidence=True, return_model=True, **start
    )
    assert model.n_iter_ == lut_model.n_iter_
    np.testing.assert_allclose(model.means_, lut_model.means_, atol=1e-9)
    assert np.mean(labels == lut_labels) >= 0.9999
    np.testing.assert_allclose(conf, lut_conf, atol=1e-5)
    X = pixels(image).astype(np.float32)
    np.testing.assert_array_equal(labels.ravel(), model.predict(X))
    np.testing.assert_allclose(conf.ravel(), model.predict_proba(X).max(1), atol=1e-6)


def test_confidence_is_the_max_responsibility():
    image = photo("rocket")
    _, conf, model = segment(image, 3, return_confidence=True, return_model=True)
    proba = model.predict_proba(pixels(image))
    assert conf.dtype == np.float32 and conf.shape == image.shape[:2]
    np.testing.assert_allclose(conf.ravel(), proba.max(1), atol=1e-6)
    assert conf.min() >= 1 / 3 - 1e-6 and conf.max() <= 1 + 1e-6


@pytest.mark.parametrize("space", ["rgb", "lab", "hsv"])
def test_recoloured_image_paints_component_means(space):
    image = photo("chelsea")
    labels, recoloured, model = segment(
        image, 4, colour_space=space, return_image=True, return_model=True
    )
    assert recoloured.dtype == image.dtype and recoloured.shape == image.shape
    palette = _pixels.FROM_SPACE[space](np.asarray(model.means_, np.float64))
    palette = np.rint(palette * 255).astype(np.uint8)
    np.testing.assert_array_equal(recoloured, palette[labels])
    if space != "hsv":  # the mean of a circular hue is not a mean colour
        for k in np.unique(labels):  # and it is close to its pixels' average colour
            average = image[labels == k].mean(axis=0)
            assert np.abs(average - palette[k].astype(float)).max() < 25


# ----------------------------------------------------------------- options, inputs
def test_ignored_pixels_are_not_fitted():
    image = photo("astronaut")
    ignore = np.zeros(image.shape[:2], bool)
    ignore[:40] = True
    ignore[:, -10:] = True
    labels, conf, recoloured, model = segment(
        image,
        4,
        ignore=ignore,
        return_confidence=True,
        return_image=True,
        return_model=True,
    )
    kept = image[~ignore][None]  # the pixels not ignored, as a 1-row image
    _, alone = segment(kept, 4, return_model=True)
    np.testing.assert_array_equal(model.means_, alone.means_)
    assert (labels[ignore] == 4).all() and (labels[~ignore] < 4).all()
    assert (conf[ignore] == 0).all() and (conf[~ignore] > 0).all()
    np.testing.assert_array_equal(recoloured[ignore], image[ignore])


@pytest.mark.parametrize(
    "k, ignore, dtype",
    [
        (3, False, np.uint8),
        (256, False, np.uint8),
        (256, True, np.uint16),
        (257, False, np.uint16),
    ],
)
def test_label_dtype_is_the_smallest_sufficient(k, ignore, dtype):
    image = photo("astronaut")
    mask = np.zeros(image.shape[:2], bool)
    mask[0, 0] = ignore
    labels = segment(
        image,
        k,
        ignore=mask if ignore else None,
        max_iter=1,
        init_params="random_from_data",
    )
    assert labels.dtype == dtype


def test_grey_and_16_bit_images():
    grey = skimage_data.camera()[::4, ::4]
    labels, recoloured = segment(grey, 3, return_image=True)
    assert labels.shape == grey.shape and recoloured.shape == grey.shape
    wide = grey.astype(np.uint16) * 257  # 16-bit grey: still a look-up table
    labels16, model16 = segment(wide, 3, return_model=True)
    _, model8 = segment(grey, 3, return_model=True)
    np.testing.assert_allclose(model16.means_, model8.means_, atol=1e-9)
    np.testing.assert_array_equal(labels16, labels)
    colour16 = photo("coffee").astype(np.uint16) * 257  # sampled path
    labels, recoloured = segment(colour16, 3, return_image=True)
    assert recoloured.dtype == np.uint16 and labels.max() == 2


def test_sampled_fit_is_seeded():
    image = photo("coffee")
    messages = []
    first = segment(
        image,
        3,
        exact=False,
        sample_size=5000,
        progress=lambda f, m: messages.append(m),
    )
    assert any("sample of 5,000 pixels" in m for m in messages)
    np.testing.assert_array_equal(
        first, segment(image, 3, exact=False, sample_size=5000)
    )
    xy_a = segment(image, 3, xy=0.5, sample_size=5000, random_state=1)
    xy_b = segment(image, 3, xy=0.5, sample_size=5000, random_state=1)
    np.testing.assert_array_equal(xy_a, xy_b)


def test_sample_skips_ignored_pixels(rng):
    from fastgmm.kernels import pixels as kern

    ignore = rng.random(10_000) < 0.3
    ranks = np.sort(rng.choice(int((~ignore).sum()), 500, replace=False))
    index = np.empty(500, np.int64)
    kern.valid_positions(ignore, ranks, index)
    np.testing.assert_array_equal(index, np.flatnonzero(~ignore)[ranks])
    image = photo("coffee").astype(np.float32) / 255
    mask = np.zeros(image.shape[:2], bool)
    mask[:, : image.shape[1] // 2] = True  # fit on the right half only
    _, model = segment(image, 3, ignore=mask, sample_size=2000, return_model=True)
    _, right = segment(image[:, image.shape[1] // 2 :], 3, return_model=True)
    order = np.argsort(model.means_[:, 0])
    np.testing.assert_allclose(
        model.means_[order], right.means_[np.argsort(right.means_[:, 0])], atol=0.03
    )


def test_xy_features_give_spatially_coherent_segments():
    gen = np.random.default_rng(0)
    noise = gen.integers(0, 256, size=(60, 80, 3), dtype=np.uint8)  # no colour signal
    halves = np.zeros((60, 80), int)
    halves[:, 40:] = 1
    plain = segment(noise, 2, random_state=0)
    spatial = segment(noise, 2, xy=4.0, random_state=0)

    def split_score(labels):
        agree = np.mean(labels == halves)
        return max(agree, 1 - agree)

    assert split_score(spatial) > 0.95
    assert split_score(plain) < 0.7


def test_k_range_is_chosen_by_bic():
    gen = np.random.default_rng(1)
    centres = np.array([[200, 40, 40], [40, 180, 60], [50, 60, 200]])
    which = gen.integers(0, 3, size=(50, 60))
    image = np.clip(centres[which] + gen.normal(0, 6, (50, 60, 3)), 0, 255)
    image = image.astype(np.uint8)
    labels, model = segment(image, range(1, 6), return_model=True)
    assert model.n_components == 3
    np.testing.assert_array_equal(labels, segment(image, 3))  # the same fit
    _, scored_on_sample = segment(image, [2, 3, 4], sample_size=1000, return_model=True)
    assert scored_on_sample.n_components == 3
    agree = max(np.mean(labels == p[which]) for p in _permutations(3))
    assert agree > 0.99


def _permutations(n):
    import itertools

    return [np.array(p) for p in itertools.permutations(range(n))]


def test_threads_do_not_change_the_result(no_serial_cutoff):
    image = photo("chelsea")
    one = segment(image, 4, n_jobs=1, return_confidence=True)
    two = segment(image, 4, n_jobs=2, return_confidence=True)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_progress_is_monotone_and_ends_at_one():
    seen = []
    segment(photo("chelsea"), 3, progress=lambda f, m: seen.append(f))
    assert seen == sorted(seen) and seen[-1] == 1.0


@pytest.mark.parametrize(
    "image, kwargs, error",
    [
        (np.zeros((4, 4, 3, 2), np.uint8), {}, ValueError),
        (np.zeros((4, 4, 3), bool), {}, TypeError),
        (np.zeros((4, 4), np.uint8), {"colour_space": "lab"}, ValueError),
        (np.zeros((4, 4, 3), np.uint8), {"colour_space": "xyz"}, ValueError),
        (np.zeros((4, 4, 3), np.uint8), {"xy": -1.0}, ValueError),
        (np.zeros((4, 4, 3), np.uint8), {"ignore": np.ones((4, 4), bool)}, ValueError),
        (np.zeros((4, 4, 3), np.uint8), {"ignore": np.ones((3, 4), bool)}, ValueError),
    ],
)
def test_invalid_inputs(image, kwargs, error):
    with pytest.raises(error):
        segment(image, 2, **kwargs)


def test_too_few_colours_and_bad_k():
    two_colours = np.zeros((8, 8, 3), np.uint8)
    two_colours[4:] = 255
    with pytest.raises(ValueError, match="distinct"):
        segment(two_colours, 3)
    for k in (0, [], [0, 2]):
        with pytest.raises(ValueError):
            segment(two_colours, k)


def test_nan_pixels_need_ignore():
    image = photo("chelsea").astype(np.float32) / 255
    image[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        segment(image, 3)
    labels = segment(image, 3, ignore=np.isnan(image).any(axis=2))
    assert labels[3, 5] == 3 and labels.max() == 3


# ------------------------------------------------------------------------ memory
def _traced_peak(fn):
    """Peak bytes of NumPy allocations during ``fn()`` (tracemalloc sees them)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_chunked_prediction_memory_is_bounded(monkeypatch):
    gen = np.random.default_rng(0)
    image = gen.random((1000, 1000, 3), dtype=np.float32)  # 12 MB
    segment(image[:64, :64], 8, max_iter=2)  # compile outside the measurement
    monkeypatch.setattr(seg_module, "CHUNK_PIXELS", 1 << 16)
    peak = _traced_peak(lambda: segment(image, 8, sample_size=20_000, max_iter=5))
    # a float64 copy of the image would be 24 MB, a pixels x K array 32-64 MB
    assert peak < 8e6, peak


def test_lookup_prediction_memory_is_bounded():
    gen = np.random.default_rng(0)
    image = gen.integers(0, 256, (1000, 1000, 3), dtype=np.uint8)  # ~1M colours
    options = {"max_iter": 2, "init_params": "random_from_data"}
    segment(image[:64, :64], 8, return_confidence=True, **options)
    peak = _traced_peak(lambda: segment(image, 8, return_confidence=True, **options))
    # one 2**24 table at a time (64 MiB), then < 80 bytes per distinct colour
    # (features, counts, per-colour outputs); a pixels x K float64 array: 64 MB
    assert peak < 64 * 2**20 + 80e6, peak


# --------------------------------------------------------------------- command line
def test_progress_bar_draws_only_when_enabled():
    from fastgmm.cli.progress import Bar

    out = io.StringIO()
    bar = Bar(enabled=True, stream=out)
    bar(0.5, "labelling pixels")
    bar(1.0, "done")
    bar.close()
    text = out.getvalue()
    assert "[############............]  50%  labelling pixels" in text
    assert text.endswith("\r")
    quiet = io.StringIO()
    Bar(enabled=False, stream=quiet)(0.5, "x")
    assert quiet.getvalue() == ""


def test_cli_writes_image_and_labels(tmp_path):
    iio = pytest.importorskip("imageio.v3")
    image = photo("chelsea")
    rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    rgba[:5, :5, 3] = 0  # transparent pixels are ignored
    source = tmp_path / "in.png"
    iio.imwrite(source, rgba)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastgmm",
            "segment",
            str(source),
            "-k",
            "3",
            "-o",
            str(tmp_path / "out.png"),
            "--labels",
            str(tmp_path / "labels.npy"),
            "--colour-space",
            "lab",
            "--xy",
            "0.5",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # no progress bar when stderr is not a terminal
    assert "K=3" in run.stdout and "segmented in" in run.stdout
    out = iio.imread(tmp_path / "out.png")
    labels = np.load(tmp_path / "labels.npy")
    assert out.shape == rgba.shape and labels.shape == image.shape[:2]
    assert (labels[:5, :5] == 3).all() and labels[5:].max() == 2
    np.testing.assert_array_equal(out[:5, :5], rgba[:5, :5])
    assert len(np.unique(out[5:, 5:, :3].reshape(-1, 3), axis=0)) == 3


def test_cli_image_files(tmp_path):
    from PIL import Image

    from fastgmm.cli.images import read_image, to_eight_bit, write_image

    rgb = photo("chelsea")
    Image.fromarray(rgb).convert("P", colors=16).save(tmp_path / "palette.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(rgb).convert("1").save(tmp_path / "bilevel.png")
    assert read_image(str(tmp_path / "palette.png")).shape == rgb.shape
    assert read_image(str(tmp_path / "cmyk.jpg")).shape == rgb.shape
    assert read_image(str(tmp_path / "bilevel.png")).dtype == np.uint8
    wide = rgb.astype(np.uint16) * 257
    write_image(str(tmp_path / "wide.tif"), wide)
    np.testing.assert_array_equal(read_image(str(tmp_path / "wide.tif")), wide)
    np.testing.assert_array_equal(to_eight_bit(wide), rgb)
    np.testing.assert_array_equal(to_eight_bit(rgb / 255.0), rgb)
    pytest.importorskip("imagecodecs")
    write_image(str(tmp_path / "wide.png"), wide)  # PNG: written at 16 bits
    np.testing.assert_array_equal(read_image(str(tmp_path / "wide.png")), wide)
    write_image(str(tmp_path / "wide.jpg"), wide)  # JPEG: 8 bits
    assert read_image(str(tmp_path / "wide.jpg")).dtype == np.uint8


def test_cli_errors_are_one_line(tmp_path, capsys):
    from fastgmm.cli import main

    assert (
        main(["segment", str(tmp_path / "missing.png"), "-k", "3", "-o", "x.png"]) == 1
    )
    assert main(["segment", "in.png", "-k", "two", "-o", "x.png"]) == 2
    assert main(["segment", "in.png", "-k", "3"]) == 1  # nothing to write
    for line in capsys.readouterr().err.strip().splitlines():
        assert line.startswith("fastgmm")
