"""Kernels of :func:`fastgmm.segment`: colour histograms and per-pixel table look-ups.

A pixel of an integer image with ``C`` channels of ``bits`` bits each is read as the
key ``v[0] << bits*(C-1) | ... | v[C-1]`` (8-bit RGB: ``r << 16 | g << 8 | b``). Every
kernel takes the pixels as an (n, C) array and an ``ignore`` flag per pixel, or an
empty ``ignore`` when no pixel is ignored. Outputs are allocated by the caller.
"""

import numpy as np
from numba import prange

from .._jit import kernel

#: pixels per parallel task of the look-up kernels
CHUNK = 1 << 16


@kernel
def _key(px, i, bits):
    key = 0
    for c in range(px.shape[1]):
        key = (key << bits) | px[i, c]
    return key


@kernel(inputs="px ignore")
def colour_histogram(px, ignore, bits, hist):
    """hist[key] += 1 for every pixel not ignored; hist (2**(bits*C),) zeroed.

    Serial on purpose: one pass costs ~2.5 ns per pixel here (0.25 s at 100 MP);
    per-thread tables were no faster, as touching each extra 64 MiB table costs
    more than the pass.
    """
    skip = ignore.shape[0] > 0
    for i in range(px.shape[0]):
        if skip and ignore[i]:
            continue
        hist[_key(px, i, bits)] += 1


@kernel(parallel=True, inputs="px ignore lut")
def apply_lut(px, ignore, bits, lut, fill, out):
    """out[i] = lut[key of pixel i], or ``fill`` where ignored; out (n,)."""
    n = px.shape[0]
    skip = ignore.shape[0] > 0
    for c in prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            if skip and ignore[i]:
                out[i] = fill
            else:
                out[i] = lut[_key(px, i, bits)]


@kernel(parallel=True, inputs="labels palette px")
def paint(labels, palette, px, out):
    """out[i] = palette[labels[i]], or px[i] where labels[i] >= len(palette).

    labels (n,), palette (K, C), px and out (n, C) of one dtype.
    """
    n, n_channels = px.shape
    n_colours = palette.shape[0]
    for c in prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            k = labels[i]
            if k < n_colours:
                for j in range(n_channels):
                    out[i, j] = palette[k, j]
            else:
                for j in range(n_channels):
                    out[i, j] = px[i, j]


@kernel(inputs="ignore ranks")
def valid_positions(ignore, ranks, out):
    """out[j] = index of the ranks[j]-th pixel not ignored; ranks sorted, unique."""
    j = 0
    rank = 0
    m = ranks.shape[0]
    for i in range(ignore.shape[0]):
        if j == m:
            break
        if not ignore[i]:
            if ranks[j] == rank:
                out[j] = i
                j += 1
            rank += 1


def count_colours(px, ignore, bits):
    """Distinct keys (int64, sorted) and their counts (int64) of the pixels.

    Holds one table of 2**(bits*C) counters (64 MiB for 8-bit RGB) while counting.
    """
    size = 1 << (bits * px.shape[1])
    dtype = np.uint32 if px.shape[0] < 2**32 else np.uint64
    hist = np.zeros(size, dtype=dtype)
    colour_histogram(px, ignore, bits, hist)
    keys = np.flatnonzero(hist)
    counts = hist[keys].astype(np.int64)
    return keys, counts
