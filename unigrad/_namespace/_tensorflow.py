"""The guaranteed namespace on TensorFlow, with NumPy / Array API semantics: creation, and the whole.

array-api-compat does not cover TensorFlow, so the shim implements the standard names on top of
``tf``, ``tf.math``, ``tf.linalg`` and ``tf.signal``, one module per job: this one (creation and the
assembly), ``_tensorflow_elementwise``, ``_tensorflow_reductions`` (reductions, scans, sorting,
searching), ``_tensorflow_manipulation``, ``_tensorflow_linalg``, ``_tensorflow_fft``, and
``_tensorflow_base`` (what they share). It never switches on TensorFlow's global NumPy behaviour
(``tf.experimental.numpy.experimental_enable_numpy_behavior``): raw tensors keep TensorFlow's own
rules, only these functions follow NumPy's. Where TensorFlow differs, the functions bridge the gap:

* functions of several arrays promote mixed floating dtypes (float32 with float64 gives float64)
  and treat Python scalars as having the array's dtype, as the Array API does;
* ``matmul`` accepts vector operands and broadcasts batch dimensions, ``linalg.solve`` takes a
  vector or a matrix right-hand side and broadcasts batch dimensions;
* ``var`` / ``std`` take ``correction`` (default 0), ``take`` / ``take_along_axis`` count negative
  indices from the end, ``where`` broadcasts, ``clip`` takes either bound or both; ``tile``,
  ``roll``, ``repeat``, ``sort`` and ``cumulative_prod`` follow NumPy (the latter with a correct
  gradient at zeros, where TensorFlow's own is wrong); the ``fft`` functions take ``n`` / ``s``,
  any ``axis`` / ``axes`` and ``norm``.

Creation functions take the Array API's ``device=`` (a device string such as ``x.device`` or
``'/GPU:1'``) and create under ``tf.device``; without one, ``asarray`` of a tensor and
``zeros_like`` / ``ones_like`` / ``full_like`` keep their argument's device (TensorFlow alone would
use its default device), the others use TensorFlow's placement (``tf.device`` blocks included).

Default dtypes stay TensorFlow's: ``zeros(3)``, ``asarray(1.5)`` and ``linspace(0, 1, 5)`` are
float32, ``arange(3)`` and ``full(2, 1)`` are int32. These modules import TensorFlow, so they are
only imported once a TensorFlow array has been seen. Functions are named as in the standard, so
``abs``, ``sum``, ``max``, ``min``, ``round``, ``all``, ``any`` and ``pow`` shadow the builtins in
the shim's modules.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from unigrad._namespace import _tensorflow_elementwise as elementwise
from unigrad._namespace import _tensorflow_fft as fourier
from unigrad._namespace import _tensorflow_linalg as linear_algebra
from unigrad._namespace import _tensorflow_manipulation as manipulation
from unigrad._namespace import _tensorflow_reductions as reductions
from unigrad._namespace._names import gather
from unigrad._namespace._tensorflow_base import ARRAY_TYPES, device_of, placed, shape_of, tensor


def functions(skip: Collection[str] = ()) -> dict[str, Callable[..., Any]]:
    """Every guaranteed function on TensorFlow but those in ``skip`` (the extras, built elsewhere)."""
    core = [sys.modules[__name__], elementwise, reductions, manipulation, linear_algebra]
    return gather({"": core, "linalg": [linear_algebra], "fft": [fourier.FUNCTIONS]}, skip=skip)


DTYPES: dict[str, Any] = {
    "float16": tf.float16,
    "bfloat16": tf.bfloat16,
    "float32": tf.float32,
    "float64": tf.float64,
    "complex64": tf.complex64,
    "complex128": tf.complex128,
    "int32": tf.int32,
    "int64": tf.int64,
    "bool": tf.bool,
}


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
