"""A vectorisable exp for non-positive arguments (<= 1 ulp, ~2.5x faster than libm).

exp(x) = 2^n exp(r), n = round(x / ln 2) by the 1.5 * 2^52 shift trick, r = x - n ln 2
(Cody-Waite split), exp(r) by its degree-13 Taylor polynomial (|r| <= ln2/2: truncation
< 1e-18), and 2^n assembled from the exponent bits. libm's scalar exp call blocks SIMD;
this loop runs 4 lanes wide on AVX2. Compiled strict: re-association would remove
the rounding the shift trick relies on.
"""

import numpy as np

from ._jit import kernel

LOG2E = 1.4426950408889634
LN2_HI = 6.93145751953125e-1
LN2_LO = 1.42860682030941723212e-6
SHIFT = 6755399441055744.0  # 1.5 * 2**52
#: arguments below -FLOOR give exactly 0 (e^-500 ~ 7e-218: below any sum's resolution;
#: avoids slow subnormal arithmetic downstream)
FLOOR = 500.0


@kernel(strict=True)
def exp_nonpos_inplace(t, nb, scratch):
    """t[b] <- exp(t[b]) for b < nb, for t <= 0 (t < -FLOOR, -inf included, gives 0).

    ``scratch`` is a float64 buffer at least nb long.
    """
    bits = scratch.view(np.int64)
    for b in range(nb):
        x = max(t[b], -FLOOR - 10.0)
        nf = x * LOG2E + SHIFT
        n = nf - SHIFT
        r = x - n * LN2_HI - n * LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        scratch[b] = nf
        t[b] = p if x > -FLOOR else 0.0
    for b in range(nb):
        bits[b] = (bits[b] + 1023) << 52
    for b in range(nb):
        t[b] *= scratch[b]
