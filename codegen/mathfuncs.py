"""Vectorizable float32 exp, log, tanh, sigmoid and erf written as LLVM IR (polynomials).

LLVM's exp/log intrinsics become scalar libm calls without a vector math library; these straight-line
versions let the loop vectorizer handle transcendental functions. Accuracy is within a few ulp of libm;
NaN and infinities behave as in NumPy. float64 keeps the libm routines.
"""

from __future__ import annotations

import llvmlite.ir as ir

F32 = ir.FloatType()
I32 = ir.IntType(32)


def _c(v: float):
    return ir.Constant(F32, v)


def poly(k, x, coeffs: list):
    """Horner evaluation of coeffs[0]*x^n + ... + coeffs[n] in x's floating type (float32 or float64)."""
    b = k.b
    acc = ir.Constant(x.type, coeffs[0])
    for c in coeffs[1:]:
        acc = k.flags(b.fadd(k.flags(b.fmul(acc, x)), ir.Constant(x.type, c)))
    return acc


def estrin(k, x, coeffs: list):
    """coeffs[0]*x^n + ... + coeffs[n] by Estrin's scheme: pairs a + b*x, then pairs of those in x^2, x^4, ...
    (the same terms as Horner's summed as a tree, a few FMAs deep instead of n: a long polynomial at the end of a
    dependency chain no longer holds up the vector loop; its rounding differs from Horner's)."""
    b = k.b
    terms = [ir.Constant(x.type, c) for c in reversed(coeffs)]  # lowest degree first
    power = x
    while len(terms) > 1:
        pairs = [k.flags(b.fadd(k.flags(b.fmul(hi, power)), lo)) for lo, hi in zip(terms[::2], terms[1::2])]
        terms = pairs + terms[len(pairs) * 2 :]
        if len(terms) > 1:
            power = k.flags(b.fmul(power, power))
    return terms[0]


def is_nan(b, x):
    return b.fcmp_unordered("uno", x, x)


_EXP_HI, _EXP_LO = 88.72283935546875, -87.33654022216797  # exp overflows above, underflows to 0 below


def _exp_reduced(k, xc):
    """(m, n) with exp(xc) = m * 2^n, m near 1 and n an integer-valued float, for a clamped argument xc."""
    b = k.b
    n = k.intrinsic("floor", "float32", [k.flags(b.fadd(k.flags(b.fmul(xc, _c(1.44269504088896341))), _c(0.5)))])
    r = k.flags(b.fsub(xc, k.flags(b.fmul(n, _c(0.693359375)))))
    r = k.flags(b.fsub(r, k.flags(b.fmul(n, _c(-2.12194440e-4)))))
    z = k.flags(b.fmul(r, r))
    p = poly(
        k, r, [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1]
    )
    return k.flags(b.fadd(k.flags(b.fadd(k.flags(b.fmul(p, z)), r)), _c(1.0))), n


def _pow2(b, e):
    """2^e as a float32, for an i32 e in [-126, 127]."""
    return b.bitcast(b.shl(b.add(e, ir.Constant(I32, 127)), ir.Constant(I32, 23)), F32)


def exp_f32(k, x):
    b = k.b
    hi, lo = _EXP_HI, _EXP_LO
    xc = k.intrinsic("minnum", "float32", [k.intrinsic("maxnum", "float32", [x, _c(lo)]), _c(hi)])
    y, n = _exp_reduced(k, xc)
    e = b.fptosi(n, I32)
    # 2^e as two factors, so that e = 128 (x near the overflow threshold) does not overflow the scale itself
    e1 = b.ashr(e, ir.Constant(I32, 1))
    for part in (e1, b.sub(e, e1)):
        y = k.flags(b.fmul(y, _pow2(b, part)))
    y = b.select(b.fcmp_ordered(">", x, _c(hi)), _c(float("inf")), y)
    y = b.select(b.fcmp_ordered("<", x, _c(lo)), _c(0.0), y)
    return b.select(is_nan(b, x), x, y)


def log_f32(k, x):
    b = k.b
    bits = b.bitcast(x, I32)
    e = b.sub(b.lshr(bits, ir.Constant(I32, 23)), ir.Constant(I32, 126))
    m = b.bitcast(b.or_(b.and_(bits, ir.Constant(I32, 0x807FFFFF)), ir.Constant(I32, 0x3F000000)), F32)  # [0.5, 1)
    small = b.fcmp_ordered("<", m, _c(0.707106781186547524))
    e = b.select(small, b.sub(e, ir.Constant(I32, 1)), e)
    m = b.select(small, k.flags(b.fsub(k.flags(b.fadd(m, m)), _c(1.0))), k.flags(b.fsub(m, _c(1.0))))
    ef = b.sitofp(e, F32)
    z = k.flags(b.fmul(m, m))
    p = poly(
        k,
        m,
        [
            7.0376836292e-2,
            -1.1514610310e-1,
            1.1676998740e-1,
            -1.2420140846e-1,
            1.4249322787e-1,
            -1.6668057665e-1,
            2.0000714765e-1,
            -2.4999993993e-1,
            3.3333331174e-1,
        ],
    )
    y = k.flags(b.fmul(k.flags(b.fmul(p, m)), z))
    y = k.flags(b.fadd(y, k.flags(b.fmul(ef, _c(-2.12194440e-4)))))
    y = k.flags(b.fadd(y, k.flags(b.fmul(z, _c(-0.5)))))
    y = k.flags(b.fadd(k.flags(b.fadd(m, y)), k.flags(b.fmul(ef, _c(0.693359375)))))
    tiny = b.fcmp_ordered("<", x, _c(1.17549435e-38))  # zero, subnormal or negative: fall back to libm
    special = b.or_(tiny, b.or_(is_nan(b, x), b.fcmp_ordered("==", x, _c(float("inf")))))
    return b.select(special, _log_special(k, x), y)


def _log_special(k, x):
    """log at 0 (-inf), negative (NaN), +inf (inf), NaN (NaN), subnormals (scaled by 2^24)."""
    b = k.b
    scaled = b.fmul(x, _c(16777216.0))
    bits = b.bitcast(scaled, I32)
    e = b.sitofp(b.sub(b.lshr(bits, ir.Constant(I32, 23)), ir.Constant(I32, 127 + 24)), F32)
    m = b.bitcast(b.or_(b.and_(bits, ir.Constant(I32, 0x807FFFFF)), ir.Constant(I32, 0x3F800000)), F32)  # [1, 2)
    # log(m) for m in [1, 2) by the same polynomial route via log(m) = log_f32 of a normal number
    approx = b.fadd(b.fmul(e, _c(0.693147180559945)), _ln_1_2(k, m))
    y = b.select(b.fcmp_ordered(">", x, _c(0.0)), approx, _c(float("-inf")))
    y = b.select(b.fcmp_ordered("<", x, _c(0.0)), _c(float("nan")), y)
    y = b.select(b.fcmp_ordered("==", x, _c(float("inf"))), x, y)
    return b.select(is_nan(b, x), x, y)


def _ln_1_2(k, m):
    """log(m) for m in [1, 2): log((1+t)/(1-t)) series with t = (m-1)/(m+1)."""
    b = k.b
    t = b.fdiv(b.fsub(m, _c(1.0)), b.fadd(m, _c(1.0)))
    t2 = b.fmul(t, t)
    p = poly(k, t2, [2.0 / 11, 2.0 / 9, 2.0 / 7, 2.0 / 5, 2.0 / 3, 2.0])
    return b.fmul(p, t)


def _exp_nonpositive(k, z):
    """exp(z) for z <= 0 (or NaN, whose result callers replace): exp_f32 without its overflow path, so 2^n is one
    factor (n >= -126 after the clamp at the underflow threshold)."""
    b = k.b
    y, n = _exp_reduced(k, k.intrinsic("maxnum", "float32", [z, _c(_EXP_LO)]))
    y = k.flags(b.fmul(y, _pow2(b, b.fptosi(n, I32))))
    return b.select(b.fcmp_ordered("<", z, _c(_EXP_LO)), _c(0.0), y)


def tanh_f32(k, x):
    """tanh: an odd polynomial below |x| = 0.625, else (1 - e) / (1 + e) with e = exp(-2|x|) <= 0.29 (no
    cancellation, no overflow), signed as x."""
    b = k.b
    ax = k.intrinsic("fabs", "float32", [x])
    z = k.flags(b.fmul(x, x))
    small = poly(k, z, [-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1])
    small = k.flags(b.fadd(k.flags(b.fmul(k.flags(b.fmul(small, z)), x)), x))
    e = _exp_nonpositive(k, k.flags(b.fmul(ax, _c(-2.0))))
    big = k.flags(b.fdiv(k.flags(b.fsub(_c(1.0), e)), k.flags(b.fadd(_c(1.0), e))))
    big = k.intrinsic("copysign", "float32", [big, x])
    y = b.select(b.fcmp_ordered("<", ax, _c(0.625)), small, big)
    return b.select(is_nan(b, x), x, y)


def sigmoid_f32(k, x):
    """1 / (1 + e) for x >= 0 and e / (1 + e) below, with e = exp(-|x|) <= 1: no overflow path."""
    b = k.b
    e = _exp_nonpositive(k, b.fneg(k.intrinsic("fabs", "float32", [x])))
    r = k.flags(b.fdiv(_c(1.0), k.flags(b.fadd(_c(1.0), e))))
    y = b.select(b.fcmp_ordered(">=", x, _c(0.0)), r, k.flags(b.fmul(e, r)))
    return b.select(is_nan(b, x), x, y)


# erf: |x| < 1: x * P(x^2); 1 <= |x| < 4: 1 - exp(-x^2) * Q(1/x) / x (Q fits erfc(x) exp(x^2) x); beyond, +-1.
# Least-squares fits of the relative error on Chebyshev nodes (graphnn's own); within 2.5 ulp in float32.
_ERF_SMALL = [
    1.0557105269981548e-06,
    -1.3896332347940188e-05,
    0.00011954430374316871,
    -0.0008542455616407096,
    0.005223774816840887,
    -0.026866130530834198,
    0.11283791065216064,
    -0.37612637877464294,
    1.128379225730896,
]
_ERFC_SCALED = [
    0.015022655948996544,
    -0.0816674530506134,
    0.1344967484474182,
    0.12112272530794144,
    -0.884753406047821,
    1.7325129508972168,
    -1.8824270963668823,
    1.1409245729446411,
    -0.17431366443634033,
    -0.2552036643028259,
    -0.0024170642718672752,
    0.5642862915992737,
]


def erf_f32(k, x):
    b = k.b
    ax = k.intrinsic("minnum", "float32", [k.intrinsic("fabs", "float32", [x]), _c(4.0)])
    z = k.flags(b.fmul(ax, ax))
    small = k.flags(b.fmul(ax, poly(k, z, _ERF_SMALL)))
    u = b.fdiv(_c(1.0), ax)  # (exact division; ax >= 1 where it is used)
    m, n = _exp_reduced(k, b.fneg(z))  # exp(-z), -16 <= -z <= 0: no overflow or underflow to guard
    e = k.flags(b.fmul(m, _pow2(b, b.fptosi(n, I32))))
    tail = k.flags(b.fmul(e, k.flags(b.fmul(estrin(k, u, _ERFC_SCALED), u))))
    big = k.flags(b.fsub(_c(1.0), tail))
    y = b.select(b.fcmp_ordered("<", ax, _c(1.0)), small, big)
    y = k.intrinsic("copysign", "float32", [y, x])
    return b.select(is_nan(b, x), x, y)


FAST32 = {"exp": exp_f32, "log": log_f32, "tanh": tanh_f32, "sigmoid": sigmoid_f32, "erf": erf_f32}
