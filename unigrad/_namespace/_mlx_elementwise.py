"""The MLX shim's elementwise functions, comparisons and logical functions (NumPy semantics).

Most are MLX's own under the standard's name (``atan`` is ``mx.arctan``, ``pow`` ``mx.power``).
Built here: ``copysign``, ``hypot`` (no overflow for large inputs) and ``signbit`` (negative zero
and NaN signs included), which MLX lacks; ``real`` / ``imag`` / ``conj`` of a real array, as NumPy's.
MLX's ``round`` halves to even and its ``remainder`` takes the divisor's sign, as NumPy's. Names
shadow the builtins ``abs``, ``pow`` and ``round`` in this module.
"""

from __future__ import annotations

import math
from typing import Any

import mlx.core as mx

abs = mx.abs
acos = mx.arccos
acosh = mx.arccosh
asin = mx.arcsin
asinh = mx.arcsinh
atan = mx.arctan
atanh = mx.arctanh
atan2 = mx.arctan2
exp = mx.exp
log = mx.log
log1p = mx.log1p
log2 = mx.log2
log10 = mx.log10
expm1 = mx.expm1
sqrt = mx.sqrt
sin = mx.sin
cos = mx.cos
tan = mx.tan
tanh = mx.tanh
sinh = mx.sinh
cosh = mx.cosh
square = mx.square
sign = mx.sign
negative = mx.negative
positive = mx.positive
reciprocal = mx.reciprocal
add = mx.add
subtract = mx.subtract
multiply = mx.multiply
divide = mx.divide
remainder = mx.remainder
pow = mx.power
maximum = mx.maximum
minimum = mx.minimum
where = mx.where
floor = mx.floor
ceil = mx.ceil
round = mx.round
trunc = mx.trunc
logaddexp = mx.logaddexp
equal = mx.equal
not_equal = mx.not_equal
less = mx.less
less_equal = mx.less_equal
greater = mx.greater
greater_equal = mx.greater_equal
logical_and = mx.logical_and
logical_or = mx.logical_or
logical_not = mx.logical_not
logical_xor = mx.logical_xor
isfinite = mx.isfinite
isinf = mx.isinf
isnan = mx.isnan


def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:
    return mx.clip(x, min, max)


def hypot(x1: Any, x2: Any, /) -> Any:
    # sqrt(x1² + x2²) overflows from 1e154 in float64; scaled by the larger magnitude it does not.
    # The result does not depend on the scale, so neither does its gradient (ties included).
    scale = mx.maximum(mx.abs(x1), mx.abs(x2))
    safe = mx.where(scale > 0, scale, mx.ones_like(scale))
    result = scale * mx.sqrt(mx.square(x1 / safe) + mx.square(x2 / safe))
    return mx.where(mx.isinf(x1) | mx.isinf(x2), math.inf, result)  # hypot(inf, nan) is inf


def signbit(x: Any, /) -> Any:
    x = mx.array(x)
    if not mx.issubdtype(x.dtype, mx.floating):
        return x < 0
    # The sign bit itself: set for -0.0 and for a negative NaN, which x < 0 misses. (No gradient
    # flows into a boolean, and MLX has no VJP for view: stop it before.)
    bits = {2: mx.int16, 4: mx.int32, 8: mx.int64}[x.dtype.size]
    return mx.view(mx.stop_gradient(x), bits) < 0


def copysign(x1: Any, x2: Any, /) -> Any:
    magnitude = mx.abs(x1)
    return mx.where(signbit(x2), -magnitude, magnitude)


def real(x: Any, /) -> Any:
    return mx.real(x) if x.dtype == mx.complex64 else x  # of a real array: the array, as NumPy


def imag(x: Any, /) -> Any:
    return mx.imag(x) if x.dtype == mx.complex64 else mx.zeros_like(x)  # NumPy's imag of a real array


def conj(x: Any, /) -> Any:
    return mx.conj(x) if x.dtype == mx.complex64 else x
