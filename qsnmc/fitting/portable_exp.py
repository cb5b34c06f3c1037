"""``exp`` from NumPy's elementwise arithmetic alone: the same bits on every CPU, NumPy code path and C library.

``np.exp`` rounds differently from one CPU to the next: with AVX-512, NumPy evaluates float64
``exp`` with a vectorised polynomial of its own; without, it calls the C library's ``exp``,
and glibc itself picks an FMA or an SSE2 build of it by the CPU (they differ in the last bit
of about 0.06 % of arguments). A fit whose discrete choices follow an exp (the DDF's free run
turns a last-bit change of one RBF activation into other spike times, hence other chosen maps)
needs the same bits everywhere: ``qsnmc.portable_exp``.
:func:`exp` evaluates fdlibm's algorithm (Sun's ``e_exp.c``: reduction by ``k ln 2``, a
rational approximation; within 1 ulp of glibc's) with NumPy ufuncs only.
Each ufunc is one correctly rounded IEEE operation per element (+, -, *, /, rint, integer
shifts), so its result does not depend on the SIMD width, and no two of them fuse into a
multiply-add.
"""
from __future__ import annotations

import numpy as np

#: ln 2 in two parts: the leading 32 bits (``k * LN2_HI`` is exact for ``|k| < 2**21``) and the rest
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e00
#: fdlibm's coefficients: ``r (e^r + 1) / (e^r - 1) ~ 2 + P1 r^2 + P2 r^4 + ... + P5 r^10`` for |r| < ln2 / 2
P1, P2, P3, P4, P5 = (1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05,
                      -1.65339022054652515390e-06, 4.13813679705723846039e-08)
#: arguments below give 0 (exp(-707) ~ 9e-308: results stay normal, never subnormal), above give inf
LOWEST, HIGHEST = -707.0, 709.0
#: ``1.5 * 2**52 + 1023``: added to an integral float k in [-1022, 1023], its low mantissa bits hold k + 1023
POW2_MAGIC = 6755399441056767.0
#: elements per block: the block's temporaries stay in the CPU cache
BLOCK = 8192
#: the constants as 0-d arrays
_C = {name.lower(): np.array(value) for name, value in (
    ("LOWEST", LOWEST), ("HIGHEST", HIGHEST), ("INV_LN2", INV_LN2), ("LN2_HI", LN2_HI), ("LN2_LO", LN2_LO),
    ("P1", P1), ("P2", P2), ("P3", P3), ("P4", P4), ("P5", P5), ("ONE", 1.0), ("TWO", 2.0), ("POW2_MAGIC", POW2_MAGIC))}


def exp(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``e**x`` element by element (float64, within 1 ulp; ``x < -707`` gives 0, ``x > 709`` inf).

    ``out`` (C-contiguous float64, shaped like ``x``; may be ``x`` itself) receives the result.
    """
    x = np.asarray(x, dtype=np.float64)
    if out is None:
        out = np.empty(x.shape)
    if not out.flags.c_contiguous or out.shape != x.shape or out.dtype != np.float64:
        raise ValueError("out must be a C-contiguous float64 array shaped like x")
    src, dst = np.ravel(x), out.reshape(-1)  # a view of out; src a view of x when contiguous, else a copy
    if src.size == 0:
        return out
    if src.size <= BLOCK:
        _exp_block(src, dst)
        return out
    for a in range(0, src.size, BLOCK):
        _exp_block(src[a : a + BLOCK], dst[a : a + BLOCK])
    return out


def _exp_block(x: np.ndarray, out: np.ndarray) -> None:
    """fdlibm's ``exp`` of a 1-D block into ``out`` (which may be ``x``), one ufunc per IEEE operation
    (constants as 0-d arrays, which NumPy takes faster than Python floats: the free run's blocks are small)."""
    extreme = not (LOWEST <= np.minimum.reduce(x) and np.maximum.reduce(x) <= HIGHEST)  # also when NaN
    if extreme:  # before out (perhaps x) is written
        under, over = x < LOWEST, x > HIGHEST
    r = np.maximum(x, _C["lowest"])
    np.minimum(r, _C["highest"], out=r)
    k = np.multiply(r, _C["inv_ln2"])
    np.rint(k, out=k)  # x = k ln2 + r, |r| <= ln2 / 2
    hi = np.multiply(k, _C["ln2_hi"])
    np.subtract(r, hi, out=hi)  # x - k ln2_hi: exact
    lo = np.multiply(k, _C["ln2_lo"])
    np.subtract(hi, lo, out=r)
    t = np.multiply(r, r)
    c = np.multiply(t, _C["p5"])
    for p in _C["p4"], _C["p3"], _C["p2"], _C["p1"]:  # c = t (P1 + t (P2 + t (P3 + t (P4 + t P5))))
        np.add(c, p, out=c)
        np.multiply(c, t, out=c)
    np.subtract(r, c, out=c)
    np.multiply(r, c, out=r)
    np.subtract(_C["two"], c, out=c)
    np.divide(r, c, out=r)
    np.subtract(lo, r, out=lo)
    np.subtract(lo, hi, out=lo)
    np.subtract(_C["one"], lo, out=out)  # e^r = 1 - ((lo - r c / (2 - c)) - hi)
    np.multiply(out, _pow2(k), out=out)
    if extreme:
        out[under] = 0.0
        out[over] = np.inf


def _pow2(k: np.ndarray) -> np.ndarray:
    """``2.0**k`` for integral float ``k`` in [-1022, 1023] (overwritten), exact: ``k + 1023`` goes into the exponent
    bits by adding ``1.5 * 2**52`` (which puts it into the low mantissa bits) and shifting them up."""
    np.add(k, _C["pow2_magic"], out=k)
    bits = k.view(np.int64)
    np.left_shift(bits, 52, out=bits)
    return k
