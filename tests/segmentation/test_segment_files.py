"""``segment`` on awkward input: one colour, a float K, 16-bit PNGs, decompression
bombs, and outputs checked before the work (``fastgmm segment``)."""

import struct
import sys
import tracemalloc
import zlib

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from fastgmm.cli import main
from fastgmm.segmentation import segment

Image = pytest.importorskip("PIL.Image")


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("FASTGMM_DEBUG", raising=False)


def fails(capsys, argv, *words, status=1):
    assert main([str(a) for a in argv]) == status
    err = capsys.readouterr().err.strip().splitlines()[-1]
    for word in words:
        assert word in err, err
    return err


# ---------------------------------------------------------------------- one colour
@pytest.mark.parametrize(
    "image",
    [
        np.full((12, 9, 3), (200, 30, 90), np.uint8),
        np.full((12, 9), 77, np.uint8),
        np.full((12, 9), 4000, np.uint16),
        np.full((12, 9, 3), 0.25, np.float32),
    ],
    ids=["rgb8", "grey8", "grey16", "float"],
)
def test_one_colour_image_with_one_segment(image):
    labels, recoloured, model = segment(image, 1, return_image=True, return_model=True)
    assert labels.shape == image.shape[:2] and not labels.any()
    np.testing.assert_array_equal(recoloured, image)
    pixels = image.reshape(image.shape[0] * image.shape[1], -1).astype(np.float64)
    scale = {np.uint8: 255.0, np.uint16: 65535.0}.get(image.dtype.type, 1.0)
    reference = SkGaussianMixture(1).fit(pixels / scale)
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-12)
    np.testing.assert_allclose(
        model.covariances_, reference.covariances_, rtol=1e-9, atol=1e-15
    )
    assert model.lower_bound_ == pytest.approx(reference.lower_bound_, rel=1e-9)


def test_one_colour_k_range_and_ignore():
    image = np.full((10, 10, 3), 50, np.uint8)
    assert not segment(image, range(1, 4)).any()  # only K=1 can be fitted
    image[:3] = 250
    ignore = np.zeros((10, 10), bool)
    ignore[:3] = True
    labels = segment(image, 1, ignore=ignore)
    assert (labels[:3] == 1).all() and not labels[3:].any()
    with pytest.raises(ValueError, match="1 distinct colours"):
        segment(np.full((4, 4, 3), 9, np.uint8), 2)


@pytest.mark.parametrize("k", [2.0, None, [2.5]])
def test_k_must_be_integers(k):
    image = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    with pytest.raises(TypeError, match="n_components must"):
        segment(image, k)
    with pytest.raises(ValueError, match="n_components must be a number like 5"):
        segment(image, "two")


# ----------------------------------------------------------------- 16-bit images
def test_16_bit_rgb_png_is_read_and_written_at_16_bits(tmp_path, capsys):
    codecs = pytest.importorskip("imagecodecs")
    from fastgmm.cli.images import read_image, write_image

    gen = np.random.default_rng(0)
    image = np.zeros((30, 40, 3), np.uint16)
    image[:15] = (1000, 30000, 65000)
    image[15:] = (65000, 2000, 300)
    image += gen.integers(0, 200, image.shape, dtype=np.uint16)  # 16-bit detail
    (tmp_path / "in.png").write_bytes(codecs.png_encode(image))
    assert Image.open(tmp_path / "in.png").mode == "RGB"  # Pillow: 8 bits only
    got = read_image(str(tmp_path / "in.png"))
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, image)
    argv = ["segment", tmp_path / "in.png", "-k", 2, "-o", tmp_path / "out.png"]
    assert main([*map(str, argv), "--labels", str(tmp_path / "lab.png"), "-q"]) == 0
    out = read_image(str(tmp_path / "out.png"))
    assert out.dtype == np.uint16 and len(np.unique(out.reshape(-1, 3), axis=0)) == 2
    np.testing.assert_allclose(out[0, 0], image[:15].reshape(-1, 3).mean(0), atol=1)
    labels = read_image(str(tmp_path / "lab.png"))
    assert labels.shape == (30, 40) and set(np.unique(labels)) == {0, 1}
    write_image(str(tmp_path / "w.png"), image[..., 0])
    np.testing.assert_array_equal(read_image(str(tmp_path / "w.png")), image[..., 0])


# ----------------------------------------------------------- decompression bombs
def _png(width, height, depth=8, colour=2, data=b""):
    def chunk(kind, body):
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(data))
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


@pytest.mark.parametrize("depth", [8, 16])
def test_a_bomb_is_refused_before_decoding(tmp_path, capsys, depth):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png(50_000, 50_000, depth, data=b"\0" * (1 << 20)))
    limit = Image.MAX_IMAGE_PIXELS
    tracemalloc.start()
    fails(
        capsys,
        ["segment", bomb, "-k", 2, "-o", tmp_path / "o.png"],
        "declares 50000 x 50000 = 2,500,000,000 pixels",
        "--max-pixels 2500000000",
    )
    assert tracemalloc.get_traced_memory()[1] < 64 << 20  # nothing decoded
    tracemalloc.stop()
    assert Image.MAX_IMAGE_PIXELS == limit  # Pillow's own guard is left in place
    assert not (tmp_path / "o.png").exists()


def test_max_pixels_is_an_explicit_opt_in(tmp_path, capsys):
    image = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "in.png")
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "in.tif", image)
    for name in ("in.png", "in.tif"):
        base = ["segment", tmp_path / name, "-k", 2, "--labels", tmp_path / "l.npy"]
        fails(
            capsys, [*base, "--max-pixels", 1999], "2,000 pixels", "--max-pixels 2000"
        )
        assert main([str(a) for a in [*base, "--max-pixels", 2000, "-q"]]) == 0
        assert main([str(a) for a in [*base, "--max-pixels", 0, "-q"]]) == 0  # none
    fails(
        capsys,
        ["segment", "x.png", "-k", 2, "--max-pixels", -1],
        "--max-pixels",
        status=2,
    )


# ------------------------------------------------------------------------ outputs
def test_outputs_are_checked_before_segmenting(tmp_path, capsys, monkeypatch):
    image = np.random.default_rng(0).integers(0, 255, (20, 20, 3), dtype=np.uint8)
    source = tmp_path / "in.png"
    Image.fromarray(image).save(source)
    import fastgmm.segmentation

    def no_work(*args, **kwargs):
        raise AssertionError("segmented before checking the outputs")

    monkeypatch.setattr(fastgmm.segmentation, "segment", no_work)
    base = ["segment", source, "-k", 2]
    fails(capsys, [*base, "-o", tmp_path / "missing" / "o.png"], "does not exist")
    fails(capsys, [*base, "-o", tmp_path / "o.xyz"], "-o", "unknown extension '.xyz'")
    fails(
        capsys, [*base, "--labels", tmp_path / "l.txt"], "--labels", "unknown extension"
    )
    fails(capsys, [*base, "-o", source], "is the input IN")
    fails(
        capsys,
        [*base, "-o", tmp_path / "a.png", "--labels", tmp_path / "a.png"],
        "also given to -o",
    )
    fails(
        capsys,
        [*base, "-k", "65536", "--labels", tmp_path / "l.png"],
        "too many labels",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]
    monkeypatch.undo()
    argv = [*base, "--labels", tmp_path / "lab.csv", "-o", tmp_path / "o.jpg", "-q"]
    assert main([str(a) for a in argv]) == 0
    labels = np.loadtxt(tmp_path / "lab.csv", delimiter=",", dtype=int)
    assert labels.shape == (20, 20) and not (tmp_path / "lab.csv.npy").exists()
    assert Image.open(tmp_path / "o.jpg").format == "JPEG"


def test_segment_without_pillow_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    fails(
        capsys,
        ["segment", tmp_path / "x.png", "-k", 2, "-o", "y.png"],
        'pip install "fastgmm[image]"',
    )
