"""Vectorisable exp (non-positive arguments, <= 1 ulp) and log.

exp(x) = 2^n exp(r), n = round(x / ln 2) by the 1.5 * 2^52 shift trick, r = x - n ln 2
(Cody-Waite split), exp(r) by a degree-11 minimax polynomial on |r| <= ln2/2 (relative
error 5e-18, Horner form: its last step r * p + 1 is one FMA, so the result is within
1 ulp), and 2^n made from the shifted float's bits (a bit cast, not a memory pass).
libm's scalar exp call blocks SIMD; this loop runs 4 lanes wide on AVX2, 8 on AVX-512, and
:func:`exp_shifted_sum` fuses the subtraction of the block maximum and the sum the
logsumexp needs into the same loop. Compiled strict: re-association would remove
the rounding the shift trick relies on.

log(x) is musl's (fdlibm's) branch-free algorithm (< 1 ulp): x = 2^k m with m in
[sqrt(2)/2, sqrt(2)) by integer arithmetic on the bits, then
log(m) = f - f^2/2 + s (f^2/2 + R(s^2)), f = m - 1, s = f / (2 + f), R a degree-7
minimax polynomial in s^2; ~4x faster than libm's scalar call here.

:func:`exp2_32_shifted_sum` is the float32 base-2 twin of :func:`exp_shifted_sum`
(8 lanes on AVX2, 16 on AVX-512), for callers that scale their arguments by log2(e)
beforehand (kernels/lowd32.py folds it into its constants and factors): n = round(x)
by the 1.5 * 2^23 shift, r = x - n exactly (no ln 2 split), 2^r by a degree-6
minimax polynomial on |r| <= 1/2 (max error 0.94 float32 ulps, tested against NumPy
over [-FLOOR2_32, 0]), and 2^n added to the result's exponent bits (no multiply);
arguments at or below -FLOOR2_32 give 0 (the result stays a normal float32: no
subnormal arithmetic).
"""

import numpy as np
from numba import config, types
from numba.extending import intrinsic

from .._jit import kernel

LOG2E = 1.4426950408889634
LN2_HI = 6.93145751953125e-1
LN2_LO = 1.42860682030941723212e-6
SHIFT = 6755399441055744.0  # 1.5 * 2**52
#: arguments below -FLOOR give exactly 0 (e^-500 ~ 7e-218: below any sum's resolution;
#: avoids slow subnormal arithmetic downstream)
FLOOR = 500.0
#: exp(r) ~ 1 + r + r^2/2 + r^3 (E3 + r E4 + ... + r^8 E11) on |r| <= ln2/2: the
#: minimax (Lawson-weighted least squares, 50 digits) relative-error fit
E3 = 0.16666666666666433
E4 = 0.04166666666660399
E5 = 0.00833333333349992
E6 = 0.001388888892677915
E7 = 0.00019841269466422179
E8 = 2.4801508706206532e-05
E9 = 2.7557640742676906e-06
E10 = 2.762517664637984e-07
E11 = 2.497839807797408e-08


@intrinsic
def _bits(typingctx, x):
    """The bits of a float64 as an int64 (a register bit cast)."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(x), codegen


@intrinsic
def _from_bits(typingctx, i):
    """The float64 whose bits are the int64 ``i`` (a register bit cast)."""
    if i != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(i), codegen


if config.DISABLE_JIT:  # intrinsics exist only in compiled code

    def _bits(x):
        return int(np.float64(x).view(np.int64))

    def _from_bits(i):
        return float(np.int64(i).view(np.float64))


@kernel(strict=True)
def exp_shifted_sum(row, mx, nb, s):
    """row[b] <- exp(row[b] - mx[b]) and s[b] += row[b] for b < nb, for row <= mx
    (<= 1 ulp; a difference below -FLOOR, -inf included, gives 0; NaN gives an
    unspecified number, which callers replace)."""
    for b in range(nb):
        x = max(row[b] - mx[b], -FLOOR - 10.0)  # keeps 2^n normal; -inf -> finite
        nf = x * LOG2E + SHIFT
        n = nf - SHIFT
        r = x - n * LN2_HI - n * LN2_LO
        p = E11
        p = p * r + E10
        p = p * r + E9
        p = p * r + E8
        p = p * r + E7
        p = p * r + E6
        p = p * r + E5
        p = p * r + E4
        p = p * r + E3
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        # the low bits of nf hold n: 2^n is the float of biased exponent n + 1023
        e = p * _from_bits((_bits(nf) + 1023) << 52)
        e = e if x > -FLOOR else 0.0
        row[b] = e
        s[b] += e


#: float32 constants (typed float32 in the kernels: a float64 constant would promote
#: the whole expression to float64)
SHIFT32 = np.float32(12582912.0)  # 1.5 * 2**23
#: float32 arguments at or below -FLOOR2_32 give 0: 2^-125 ~ 2.4e-38 keeps every
#: result (p * 2^n, p >= 2^-1/2) a normal float32 (smallest 1.2e-38)
FLOOR2_32 = np.float32(125.0)
_ZERO32 = np.float32(0.0)
_ONE32 = np.float32(1.0)
#: 2^r ~ 1 + r (Q0 + r Q1 + ... + r^5 Q5) on |r| <= 1/2: the relative-error minimax
#: (Lawson-weighted least squares; 2e-9 before rounding to float32)
Q0 = np.float32(0.6931471824645996)
Q1 = np.float32(0.24022647738456726)
Q2 = np.float32(0.055503323674201965)
Q3 = np.float32(0.00961843691766262)
Q4 = np.float32(0.0013398875016719103)
Q5 = np.float32(0.00015353361959569156)


@intrinsic
def _times_pow2_32(typingctx, p, nf):
    """p * 2^n as a float32 from nf = 1.5 * 2^23 + n: the low bits of nf's int32 bits
    hold n, so bits(p) + (bits(nf) << 23) (wrapping) adds n to p's biased exponent;
    exact while the result is a normal float32."""
    if p != types.float32 or nf != types.float32:
        return None

    def codegen(context, builder, signature, args):
        from llvmlite import ir

        i32 = ir.IntType(32)
        p_bits = builder.bitcast(args[0], i32)
        n_bits = builder.shl(builder.bitcast(args[1], i32), ir.Constant(i32, 23))
        return builder.bitcast(builder.add(p_bits, n_bits), ir.FloatType())

    return types.float32(p, nf), codegen


if config.DISABLE_JIT:

    def _times_pow2_32(p, nf):
        n_bits = (int(np.float32(nf).view(np.int32)) << 23) & 0xFFFFFFFF
        bits = (int(np.float32(p).view(np.uint32)) + n_bits) & 0xFFFFFFFF
        return np.array([bits], np.uint32).view(np.float32)[0]


@kernel(strict=True)
def exp2_32_shifted_sum(row, mx, nb, s):
    """row[b] <- 2^(row[b] - mx[b]) and s[b] += row[b] for b < nb, all float32, for
    row <= mx (< 1 float32 ulp; a difference at or below -FLOOR2_32, -inf included,
    gives 0, and so does NaN)."""
    for b in range(nb):
        # no clamp: an argument at or below -FLOOR2_32, -inf or NaN makes garbage
        # of n and of the exponent, which the select below replaces with 0
        x = row[b] - mx[b]
        nf = x + SHIFT32
        r = x - (nf - SHIFT32)  # exact: n = round(x), |r| <= 1/2
        p = Q5
        p = p * r + Q4
        p = p * r + Q3
        p = p * r + Q2
        p = p * r + Q1
        p = p * r + Q0
        p = p * r + _ONE32
        e = _times_pow2_32(p, nf)
        e = e if x > -FLOOR2_32 else _ZERO32
        row[b] = e
        s[b] += e


LN2_HI_LOG = 6.93147180369123816490e-01
LN2_LO_LOG = 1.90821492927058770002e-10
LG1 = 6.666666666666735130e-01
LG2 = 3.999999999940941908e-01
LG3 = 2.857142874366239149e-01
LG4 = 2.222219843214978396e-01
LG5 = 1.818357216161805012e-01
LG6 = 1.531383769920937332e-01
LG7 = 1.479819860511658591e-01
#: 0x3ff00000 - 0x3fe6a09e, the high-word offset that centres m on 1, and its inverse
_OFFSET = (0x3FF00000 - 0x3FE6A09E) << 32
_SQRT_HALF_HI = 0x3FE6A09E << 32
_MANT_HI = 0x000FFFFF << 32
_LOW = 0xFFFFFFFF
TWO52 = 4503599627370496.0
_TWO52_BITS = 0x4330000000000000


#: the largest finite float64
HUGE = 1.7976931348623157e308
TINY = 2.2250738585072014e-308  # the smallest normal float64


@kernel(strict=True)
def log_pos(x, nb, out, scratch):
    """out[b] <- log(x[b]) for b < nb (<= 1 ulp) for positive normal finite x;
    +inf gives +inf and anything else (0, subnormal, negative, NaN) NaN.

    ``scratch`` is a float64 buffer at least nb long; x is not modified.
    """
    xi = x.view(np.int64)
    si = scratch.view(np.int64)
    oi = out.view(np.int64)
    for b in range(nb):
        bits = xi[b]
        ix = bits + _OFFSET
        si[b] = (ix & _MANT_HI) + _SQRT_HALF_HI | (bits & _LOW)
        # the biased exponent as the float 2^52 + e (AVX2 has no int64 -> double)
        oi[b] = ((ix >> 52) & 0x7FF) | _TWO52_BITS
    for b in range(nb):
        f = scratch[b] - 1.0
        hfsq = 0.5 * f * f
        s = f / (2.0 + f)
        z = s * s
        w = z * z
        t1 = w * (LG2 + w * (LG4 + w * LG6))
        t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)))
        dk = out[b] - (TWO52 + 1023.0)  # k
        r = s * (hfsq + t1 + t2) + dk * LN2_LO_LOG - hfsq + f + dk * LN2_HI_LOG
        v = x[b]
        out[b] = r if (v >= TINY and v <= HUGE) else (v if v > HUGE else np.nan)
