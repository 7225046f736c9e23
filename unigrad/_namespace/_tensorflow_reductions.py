"""The TensorFlow shim's reductions, scans, sorting and searching (NumPy semantics).

Beyond ``tf.math``: ``var`` / ``std`` take ``correction``; ``cumulative_sum`` and
``cumulative_prod`` take ``include_initial``; ``cumulative_prod`` is computed by shifted
multiplications, because the gradient of ``tf.math.cumprod`` is wrong where the input holds a zero
(it gives 0 to the first zero, whose true derivative is the product of the other factors); ``sort``
and ``argsort`` are stable (equal elements keep their order, descending too) and ``sort``'s gradient
follows that order; ``argmax`` / ``argmin`` / ``argsort`` return int64 indices, as NumPy. Each
function shadows the builtin of its name (``sum``, ``max``, ``min``, ``all``, ``any``) in this
module.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from unigrad._namespace._tensorflow_base import (
    Axis,
    axes_of,
    moved_to_last,
    promote,
    require_floating,
    restored,
    tensor,
)


def _countable(x: Any) -> Any:
    x = tensor(x)
    return tf.cast(x, tf.int32) if x.dtype == tf.bool else x


def sum(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> Any:
    return tf.math.reduce_sum(_countable(x), axis=axes_of(axis), keepdims=keepdims)


def prod(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> Any:
    return tf.math.reduce_prod(_countable(x), axis=axes_of(axis), keepdims=keepdims)


def mean(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> Any:
    return tf.math.reduce_mean(require_floating(x, "mean"), axis=axes_of(axis), keepdims=keepdims)


def max(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> Any:
    return tf.math.reduce_max(x, axis=axes_of(axis), keepdims=keepdims)


def min(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> Any:
    return tf.math.reduce_min(x, axis=axes_of(axis), keepdims=keepdims)


def var(x: Any, /, *, axis: Axis = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    x = require_floating(x, "var")
    axes = axes_of(axis)
    centre = tf.math.reduce_mean(x, axis=axes, keepdims=True)
    squares = tf.math.reduce_sum(tf.math.square(x - centre), axis=axes, keepdims=keepdims)
    # Elements per reduction, from the dynamic shapes so that it also works inside tf.function.
    count = tf.cast(tf.size(x), x.dtype) / tf.cast(tf.size(centre), x.dtype)
    return squares / (count - tf.cast(correction, x.dtype))


def std(x: Any, /, *, axis: Axis = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    return tf.math.sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims))


def all(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> Any:
    return tf.math.reduce_all(tf.cast(x, tf.bool), axis=axes_of(axis), keepdims=keepdims)


def any(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> Any:
    return tf.math.reduce_any(tf.cast(x, tf.bool), axis=axes_of(axis), keepdims=keepdims)


# -- scans -----------------------------------------------------------------------------------------


def _scan_axis(x: Any, axis: int | None, name: str) -> int:
    if axis is None:
        if x.shape.rank != 1:
            raise ValueError(
                f"{name} needs axis= for an array of rank {x.shape.rank} (it may only be "
                f"left out for one-dimensional arrays)"
            )
        return 0
    return axis


def _with_initial(result: Any, axis: int, value: float) -> Any:
    """``result`` with ``value`` (the scan's identity) prepended along ``axis``."""
    first = tf.gather(result, [0], axis=axis)
    return tf.concat([tf.fill(tf.shape(first), tf.constant(value, result.dtype)), result], axis=axis)


def cumulative_sum(
    x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False
) -> Any:
    x = _countable(x)
    axis = _scan_axis(x, axis, "cumulative_sum")
    result = tf.math.cumsum(x if dtype is None else tf.cast(x, dtype), axis=axis)
    return _with_initial(result, axis, 0) if include_initial else result


def _prefix_product(x: Any) -> Any:
    """The running product along the last axis, by log2(n) shifted multiplications (Hillis and
    Steele's scan): its derivatives of every order are products too, right where x holds zeros."""
    size, shift = x.shape[-1], 1
    if size is None:  # an unknown length (inside tf.function): TensorFlow's own, right away from 0
        return tf.math.cumprod(x, axis=-1)
    while shift < size:
        x = x * tf.concat([tf.ones_like(x[..., :shift]), x[..., :-shift]], axis=-1)
        shift *= 2
    return x


def cumulative_prod(
    x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False
) -> Any:
    x = _countable(x)
    axis = _scan_axis(x, axis, "cumulative_prod")
    x = x if dtype is None else tf.cast(x, dtype)
    if x.dtype.is_floating:
        moved, back = moved_to_last(x, axis)
        result = restored(_prefix_product(moved), back)
    else:
        result = tf.math.cumprod(x, axis=axis)
    return _with_initial(result, axis, 1) if include_initial else result


def diff(x: Any, /, *, axis: int = -1, n: int = 1, prepend: Any = None, append: Any = None) -> Any:
    x = tensor(x)
    axis %= x.shape.rank
    parts = [part for part in (prepend, x, append) if part is not None]
    if len(parts) > 1:
        x = tf.concat(promote(*parts), axis=axis)
    before = (slice(None),) * axis
    for _ in range(n):
        x = x[(*before, slice(1, None))] - x[(*before, slice(None, -1))]
    return x


# -- searching and sorting -------------------------------------------------------------------------


def _arg_reduce(function: Any) -> Any:
    def arg_reduce(x: Any, /, *, axis: int | None = None, keepdims: bool = False) -> Any:
        x = tensor(x)
        if axis is None:
            index = function(tf.reshape(x, [-1]), axis=0, output_type=tf.int64)
            return tf.reshape(index, [1] * x.shape.rank) if keepdims else index
        index = function(x, axis=axis, output_type=tf.int64)  # the first of equal extremes
        return tf.expand_dims(index, axis) if keepdims else index

    arg_reduce.__name__ = function.__name__.replace("arg_", "arg")
    return arg_reduce


argmax = _arg_reduce(tf.math.argmax)
argmin = _arg_reduce(tf.math.argmin)


def argsort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    direction = "DESCENDING" if descending else "ASCENDING"
    # Always stable (the standard allows it for stable=False), so that sort's gradient is defined.
    order = tf.argsort(tensor(x), axis=axis, direction=direction, stable=True)
    return tf.cast(order, tf.int64)


def sort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    moved, back = moved_to_last(tensor(x), axis)
    order = tf.argsort(moved, axis=-1, direction="DESCENDING" if descending else "ASCENDING", stable=True)
    return restored(tf.gather(moved, order, batch_dims=moved.shape.rank - 1), back)
