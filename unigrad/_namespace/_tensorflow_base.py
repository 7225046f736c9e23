"""What every module of the TensorFlow shim shares: conversion, NumPy's dtype promotion, axes, devices.

TensorFlow does not promote (float32 with float64 is an error) and treats a Python scalar as its own
dtype; the Array API promotes arrays as NumPy does and gives a scalar the array's dtype. ``promote``
bridges that for every function of two or more arrays. This module imports TensorFlow.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

Axis = int | Sequence[int] | None

ARRAY_TYPES = (tf.Tensor, tf.Variable)
SCALAR_TYPES = (bool, int, float)


def tensor(x: Any) -> Any:
    """``x`` as a tensor (a variable's value, a NumPy array or a nested list converted)."""
    return x if isinstance(x, ARRAY_TYPES) else tf.convert_to_tensor(x)


def _result_dtype(dtypes: set[Any]) -> Any:
    try:
        return tf.as_dtype(np.result_type(*(dtype.as_numpy_dtype for dtype in dtypes)))
    except (TypeError, ValueError):  # e.g. bfloat16 with float16: no NumPy rule; float32 holds both
        widest = builtins.max(dtypes, key=lambda dtype: dtype.size)
        return widest if widest.size > 2 else tf.float32


def promote(*values: Any) -> list[Any]:
    """Tensors of one common dtype: arrays promote as in NumPy, Python scalars take the arrays' dtype.

    A float scalar with integer arrays gives TensorFlow's default float (float32), as PyTorch gives
    its default float; booleans with an int scalar give TensorFlow's default int (int32).
    """
    arrays = [tensor(v) for v in values if not isinstance(v, SCALAR_TYPES)]
    if not arrays:
        return [tf.convert_to_tensor(v) for v in values]
    dtypes = {array.dtype.base_dtype for array in arrays}
    dtype = dtypes.pop() if len(dtypes) == 1 else _result_dtype(dtypes)
    scalars = [v for v in values if isinstance(v, SCALAR_TYPES)]
    if not (dtype.is_floating or dtype.is_complex) and any(isinstance(v, float) for v in scalars):
        dtype = tf.float32
    elif dtype == tf.bool and any(not isinstance(v, bool) for v in scalars):
        dtype = tf.int32
    result = []
    for value in values:
        if isinstance(value, SCALAR_TYPES):
            result.append(tf.constant(value, dtype=dtype))
        else:
            value = tensor(value)
            result.append(value if value.dtype == dtype else tf.cast(value, dtype))
    return result


def axes_of(axis: Axis) -> int | list[int] | None:
    """An ``axis=`` argument as TensorFlow's reductions take it."""
    if axis is None or isinstance(axis, int):
        return axis
    return list(axis)


def shape_of(shape: int | Sequence[int]) -> Any:
    """A ``shape=`` argument as TensorFlow takes it: an int is a 1-D shape; a tuple, a TensorShape
    (``None`` dims inside ``tf.function``) or a tensor as is."""
    if isinstance(shape, int):
        return [shape]
    return list(shape) if isinstance(shape, (tuple, list)) else shape


def require_floating(x: Any, name: str) -> Any:
    x = tensor(x)
    if not x.dtype.is_floating:
        raise TypeError(
            f"{name} needs a floating array, got dtype {x.dtype.name} (TensorFlow would silently use "
            f"integer arithmetic); cast first with xp.astype(x, xp.float32)"
        )
    return x


def moved_to_last(x: Any, axis: int) -> tuple[Any, list[int] | None]:
    """``x`` with ``axis`` moved last (TensorFlow's scans and transforms work on the innermost
    axis), and the permutation that puts it back (``None``: it already was last)."""
    rank = x.shape.rank
    axis %= rank
    if axis == rank - 1:
        return x, None
    perm = [a for a in range(rank) if a != axis] + [axis]
    return tf.transpose(x, perm), [perm.index(a) for a in range(rank)]


def restored(x: Any, back: list[int] | None) -> Any:
    """Undoes :func:`moved_to_last`."""
    return x if back is None else tf.transpose(x, back)


def placed(device: Any) -> Any:
    """Ops run on ``device`` (a name or a tf.DeviceSpec); TensorFlow's own placement when it is empty."""
    return tf.device(device) if device else contextlib.nullcontext()


def device_of(x: Any) -> str:
    return getattr(x, "device", "")  # '' for a symbolic tensor: placed when the graph runs
