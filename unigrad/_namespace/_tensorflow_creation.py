"""The TensorFlow shim's creation functions (``asarray``, ``zeros``, ``linspace``...) and ``astype``.

They take the Array API's ``device=`` (a device string such as ``x.device`` or ``'/GPU:1'``) and
create under ``tf.device``; without one, ``asarray`` of a tensor and ``zeros_like`` / ``ones_like`` /
``full_like`` keep their argument's device (TensorFlow alone would use its default device), the
others use TensorFlow's placement (``tf.device`` blocks included). Default dtypes stay TensorFlow's:
``zeros(3)``, ``asarray(1.5)`` and ``linspace(0, 1, 5)`` are float32, ``arange(3)`` and
``full(2, 1)`` int32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from unigrad._namespace._tensorflow_base import ARRAY_TYPES, device_of, placed, shape_of, tensor


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    if isinstance(obj, ARRAY_TYPES):
        array = tf.convert_to_tensor(obj)
        cast = dtype is not None and array.dtype != dtype
        if device is None and not cast:
            return array
        # Where the tensor is unless device= says otherwise (TensorFlow would run the op on its
        # default device).
        with placed(device or device_of(array)):
            return tf.cast(array, dtype) if cast else tf.identity(array)
    with placed(device):
        try:
            array = tf.convert_to_tensor(obj, dtype=dtype)
        except (TypeError, ValueError):  # e.g. floats asked for as integers: truncate, as NumPy does
            array = tf.cast(tf.convert_to_tensor(obj), dtype)
        # A converted constant lives in host memory; identity places it on the device (default or
        # given), as the other backends' asarray does.
        return tf.identity(array)


def zeros(shape: int | Sequence[int], *, dtype: Any = None, device: Any = None) -> Any:
    with placed(device):
        return tf.zeros(shape_of(shape), dtype=dtype or tf.float32)


def ones(shape: int | Sequence[int], *, dtype: Any = None, device: Any = None) -> Any:
    with placed(device):
        return tf.ones(shape_of(shape), dtype=dtype or tf.float32)


def zeros_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    with placed(device or device_of(x)):
        return tf.zeros_like(x, dtype=dtype)


def ones_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    with placed(device or device_of(x)):
        return tf.ones_like(x, dtype=dtype)


def full(shape: int | Sequence[int], fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
    with placed(device):
        if isinstance(fill_value, ARRAY_TYPES):
            value = fill_value if dtype is None else tf.cast(fill_value, dtype)
        else:
            value = tf.constant(fill_value, dtype=dtype)
        return tf.fill(shape_of(shape), value)


def full_like(x: Any, /, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
    x = tensor(x)
    with placed(device or device_of(x)):
        return tf.fill(tf.shape(x), tf.constant(fill_value, dtype=dtype or x.dtype))


def eye(
    n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None, device: Any = None
) -> Any:
    n_cols = n_rows if n_cols is None else n_cols
    with placed(device):
        if k == 0:
            return tf.eye(n_rows, n_cols, dtype=dtype or tf.float32)
        rows, cols = np.indices((n_rows, n_cols))
        return tf.constant(cols - rows == k, dtype=dtype or tf.float32)


def arange(start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None) -> Any:
    if stop is None:
        start, stop = 0, start
    with placed(device):
        return tf.range(start, stop, step, dtype=dtype)


def linspace(
    start: float, stop: float, /, num: int, *, dtype: Any = None, device: Any = None, endpoint: bool = True
) -> Any:
    dtype = dtype or tf.float32
    with placed(device):
        if endpoint:
            return tf.linspace(tf.constant(start, dtype), tf.constant(stop, dtype), num)
        return tf.linspace(tf.constant(start, dtype), tf.constant(stop, dtype), num + 1)[:-1]


def astype(x: Any, dtype: Any, /) -> Any:
    return tf.cast(x, dtype)
