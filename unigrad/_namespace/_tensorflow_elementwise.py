"""The TensorFlow shim's elementwise functions, comparisons and logical functions (NumPy semantics).

Functions of two arrays promote them first (``promote``: NumPy's rules, Python scalars taking the
array's dtype). Beyond ``tf.math``: ``copysign``, ``hypot`` (no overflow for large inputs) and
``signbit`` (negative zero and NaN signs included) are built here, ``trunc``, ``ceil``, ``round``
and ``floor`` pass integer arrays through as NumPy does, ``round`` halves to even (NumPy's and
TensorFlow's rule), ``remainder`` takes the divisor's sign, and ``logaddexp`` has the exact
derivative at ties. Each function shadows the builtin of its name (``abs``, ``pow``, ``round``)
in this module.
"""

from __future__ import annotations

import math
from typing import Any

import tensorflow as tf

from unigrad._namespace._tensorflow_base import promote, tensor

abs = tf.math.abs
acos = tf.math.acos
acosh = tf.math.acosh
asin = tf.math.asin
asinh = tf.math.asinh
atan = tf.math.atan
atanh = tf.math.atanh
exp = tf.math.exp
log = tf.math.log
log1p = tf.math.log1p
expm1 = tf.math.expm1
sqrt = tf.math.sqrt
sin = tf.math.sin
cos = tf.math.cos
tan = tf.math.tan
tanh = tf.math.tanh
sinh = tf.math.sinh
cosh = tf.math.cosh
square = tf.math.square
sign = tf.math.sign
negative = tf.math.negative
reciprocal = tf.math.reciprocal
real = tf.math.real  # of a real tensor: the tensor itself, as NumPy
conj = tf.math.conj


def positive(x: Any, /) -> Any:
    return tf.identity(x)


def imag(x: Any, /) -> Any:
    x = tensor(x)
    return tf.math.imag(x) if x.dtype.is_complex else tf.zeros_like(x)  # NumPy's imag of a real array


def _log_base(x: Any, base: float) -> Any:
    x = tensor(x)
    return tf.math.log(x) / tf.constant(math.log(base), dtype=x.dtype)


def log2(x: Any, /) -> Any:
    return _log_base(x, 2.0)


def log10(x: Any, /) -> Any:
    return _log_base(x, 10.0)


def add(x1: Any, x2: Any, /) -> Any:
    return tf.math.add(*promote(x1, x2))


def subtract(x1: Any, x2: Any, /) -> Any:
    return tf.math.subtract(*promote(x1, x2))


def multiply(x1: Any, x2: Any, /) -> Any:
    return tf.math.multiply(*promote(x1, x2))


def divide(x1: Any, x2: Any, /) -> Any:
    return tf.math.truediv(*promote(x1, x2))


def remainder(x1: Any, x2: Any, /) -> Any:
    return tf.math.floormod(*promote(x1, x2))  # the divisor's sign, as NumPy and Python's %


def atan2(x1: Any, x2: Any, /) -> Any:
    return tf.math.atan2(*promote(x1, x2))


def pow(x1: Any, x2: Any, /) -> Any:
    return tf.math.pow(*promote(x1, x2))


def maximum(x1: Any, x2: Any, /) -> Any:
    return tf.math.maximum(*promote(x1, x2))


def minimum(x1: Any, x2: Any, /) -> Any:
    return tf.math.minimum(*promote(x1, x2))


def hypot(x1: Any, x2: Any, /) -> Any:
    x1, x2 = promote(x1, x2)
    # sqrt(x1² + x2²) overflows from 1e154 in float64; scaled by the larger magnitude it does not.
    # The result does not depend on the scale, so neither does its gradient (ties included).
    scale = tf.math.maximum(tf.math.abs(x1), tf.math.abs(x2))
    safe = tf.where(scale > 0, scale, tf.ones_like(scale))
    result = scale * tf.math.sqrt(tf.math.square(x1 / safe) + tf.math.square(x2 / safe))
    infinite = tf.math.is_inf(x1) | tf.math.is_inf(x2)  # hypot(inf, nan) is inf, as in NumPy
    return tf.where(infinite, tf.constant(math.inf, dtype=result.dtype), result)


def signbit(x: Any, /) -> Any:
    x = tensor(x)
    if not x.dtype.is_floating:
        return x < 0 if x.dtype.is_integer and not x.dtype.is_unsigned else tf.zeros_like(x, tf.bool)
    # The sign bit itself: set for -0.0 and for a negative NaN, which x < 0 misses.
    bits = {2: tf.int16, 4: tf.int32, 8: tf.int64}[x.dtype.size]
    return tf.bitcast(x, bits) < 0


def copysign(x1: Any, x2: Any, /) -> Any:
    x1, x2 = promote(x1, x2)
    return tf.where(signbit(x2), -tf.math.abs(x1), tf.math.abs(x1))


def where(condition: Any, x1: Any, x2: Any, /) -> Any:
    return tf.where(tf.cast(condition, tf.bool), *promote(x1, x2))


def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:
    x = tensor(x)
    if min is not None:
        x = tf.math.maximum(x, tf.cast(min, x.dtype))
    if max is not None:
        x = tf.math.minimum(x, tf.cast(max, x.dtype))
    return x


def _integral(function: Any) -> Any:
    """A rounding function of floats that passes integer arrays through, as NumPy's does."""

    def rounded(x: Any, /) -> Any:
        x = tensor(x)
        return function(x) if x.dtype.is_floating else x

    rounded.__name__ = function.__name__
    return rounded


floor = _integral(tf.math.floor)
ceil = _integral(tf.math.ceil)
round = _integral(tf.math.round)  # half to even, as NumPy


def _trunc(x: Any) -> Any:
    return tf.where(x < 0, tf.math.ceil(x), tf.math.floor(x))


trunc = _integral(_trunc)


def logaddexp(x1: Any, x2: Any, /) -> Any:
    x1, x2 = promote(x1, x2)
    # Each branch only exponentiates a non-positive number, so the branch where() discards never
    # overflows (no NaN gradients), and at ties the gradient is 1/2 to each argument (the true
    # derivative; tnp.logaddexp gives 1 and 0). Equal infinities take a difference of 0, not NaN.
    first = x1 >= x2
    diff = tf.where((x1 == x2) & tf.math.is_inf(x1), tf.zeros_like(x1), x2 - x1)
    from_first = x1 + tf.math.log1p(tf.math.exp(tf.where(first, diff, tf.zeros_like(diff))))
    from_second = x2 + tf.math.log1p(tf.math.exp(tf.where(first, tf.zeros_like(diff), -diff)))
    return tf.where(first, from_first, from_second)


# -- predicates: boolean results --------------------------------------------------------------


def _compare(function: Any) -> Any:
    def compare(x1: Any, x2: Any, /) -> Any:
        return function(*promote(x1, x2))

    compare.__name__ = function.__name__
    return compare


equal = _compare(tf.math.equal)
not_equal = _compare(tf.math.not_equal)
less = _compare(tf.math.less)
less_equal = _compare(tf.math.less_equal)
greater = _compare(tf.math.greater)
greater_equal = _compare(tf.math.greater_equal)


def _boolean(x: Any) -> Any:
    x = tensor(x)
    return x if x.dtype == tf.bool else tf.cast(x, tf.bool)


def logical_and(x1: Any, x2: Any, /) -> Any:
    return tf.math.logical_and(_boolean(x1), _boolean(x2))


def logical_or(x1: Any, x2: Any, /) -> Any:
    return tf.math.logical_or(_boolean(x1), _boolean(x2))


def logical_xor(x1: Any, x2: Any, /) -> Any:
    return tf.math.logical_xor(_boolean(x1), _boolean(x2))


def logical_not(x: Any, /) -> Any:
    return tf.math.logical_not(_boolean(x))


def _float_test(function: Any, integers: bool) -> Any:
    """A test of float values; integer arrays (always finite, never NaN) give ``integers``."""

    def test(x: Any, /) -> Any:
        x = tensor(x)
        if x.dtype.is_floating:
            return function(x)
        return tf.fill(tf.shape(x), integers)

    test.__name__ = function.__name__
    return test


isfinite = _float_test(tf.math.is_finite, True)
isinf = _float_test(tf.math.is_inf, False)
isnan = _float_test(tf.math.is_nan, False)
