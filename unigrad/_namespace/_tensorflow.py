"""The guaranteed namespace subset on TensorFlow, with NumPy / Array API semantics.

array-api-compat does not cover TensorFlow, so this module implements the standard names on top of
``tf``, ``tf.math`` and ``tf.linalg``. It never switches on TensorFlow's global NumPy behaviour
(``tf.experimental.numpy.experimental_enable_numpy_behavior``): raw tensors keep TensorFlow's own
rules, only these functions follow NumPy's. Where TensorFlow differs, the function bridges the gap:

* binary functions promote mixed floating dtypes (float32 with float64 gives float64) and treat
  Python scalars as having the array's dtype, as the Array API does;
* ``matmul`` accepts vector operands (``tf.matmul`` wants rank >= 2) and broadcasts batch dimensions;
* ``linalg.solve`` takes a vector or a matrix right-hand side and broadcasts batch dimensions;
* ``var`` / ``std`` take ``correction`` (default 0), ``take`` counts negative indices from the end,
  ``where`` broadcasts, ``clip`` takes either bound or both.

Creation functions take the Array API's ``device=`` (a device string such as ``x.device`` or
``'/GPU:1'``) and create under ``tf.device``; without one, ``asarray`` of a tensor and
``zeros_like`` / ``ones_like`` keep their argument's device (TensorFlow alone would use its default
device), the others use TensorFlow's placement (``tf.device`` blocks included).

Default dtypes stay TensorFlow's: ``zeros(3)`` and ``asarray(1.5)`` are float32, ``arange(3)`` and
``full(2, 1)`` are int32. This module imports TensorFlow, so it is only imported once a TensorFlow
array has been seen. Functions are named as in the standard, so ``abs``, ``sum``, ``max``, ``min``
and ``pow`` shadow the builtins in this module; ``builtins.max`` is spelled out where the builtin is
meant.
"""

from __future__ import annotations

import builtins
import contextlib
import math
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import tensorflow as tf

from unigrad._namespace import EighResult, QRResult, SlogdetResult

Axis = int | Sequence[int] | None

_ARRAY_TYPES = (tf.Tensor, tf.Variable)
_SCALAR_TYPES = (bool, int, float)

# -- dtype helpers ---------------------------------------------------------------------------


def _tensor(x: Any) -> Any:
    return x if isinstance(x, _ARRAY_TYPES) else tf.convert_to_tensor(x)


def _result_dtype(dtypes: set[Any]) -> Any:
    try:
        return tf.as_dtype(np.result_type(*(dtype.as_numpy_dtype for dtype in dtypes)))
    except (TypeError, ValueError):  # e.g. bfloat16 with float16: no NumPy rule; float32 holds both
        widest = builtins.max(dtypes, key=lambda dtype: dtype.size)
        return widest if widest.size > 2 else tf.float32


def _promote(*values: Any) -> list[Any]:
    """Tensors of one common dtype: arrays promote as in NumPy, Python scalars take the arrays' dtype.

    A float scalar with integer arrays gives TensorFlow's default float (float32), as PyTorch gives
    its default float; booleans with an int scalar give TensorFlow's default int (int32).
    """
    arrays = [_tensor(v) for v in values if not isinstance(v, _SCALAR_TYPES)]
    if not arrays:
        return [tf.convert_to_tensor(v) for v in values]
    dtypes = {array.dtype.base_dtype for array in arrays}
    dtype = dtypes.pop() if len(dtypes) == 1 else _result_dtype(dtypes)
    scalars = [v for v in values if isinstance(v, _SCALAR_TYPES)]
    if not (dtype.is_floating or dtype.is_complex) and any(isinstance(v, float) for v in scalars):
        dtype = tf.float32
    elif dtype == tf.bool and any(not isinstance(v, bool) for v in scalars):
        dtype = tf.int32
    result = []
    for value in values:
        if isinstance(value, _SCALAR_TYPES):
            result.append(tf.constant(value, dtype=dtype))
        else:
            value = _tensor(value)
            result.append(value if value.dtype == dtype else tf.cast(value, dtype))
    return result


def _axes(axis: Axis) -> int | list[int] | None:
    if axis is None or isinstance(axis, int):
        return axis
    return list(axis)


def _shape(shape: int | Sequence[int]) -> Any:
    # An int is a 1-D shape; a tuple, a TensorShape (None dims inside tf.function) or a tensor as is.
    if isinstance(shape, int):
        return [shape]
    return list(shape) if isinstance(shape, (tuple, list)) else shape


def _require_floating(x: Any, name: str) -> Any:
    x = _tensor(x)
    if not x.dtype.is_floating:
        raise TypeError(
            f"{name} needs a floating array, got dtype {x.dtype.name} (TensorFlow would silently use "
            f"integer arithmetic); cast first with xp.astype(x, xp.float32)"
        )
    return x


# -- creation ----------------------------------------------------------------------------------


def _placed(device: Any) -> Any:
    """Ops run on ``device`` (a name or a tf.DeviceSpec); TensorFlow's own placement when it is empty."""
    return tf.device(device) if device else contextlib.nullcontext()


def _device_of(x: Any) -> str:
    return getattr(x, "device", "")  # '' for a symbolic tensor: placed when the graph runs


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    if isinstance(obj, _ARRAY_TYPES):
        array = tf.convert_to_tensor(obj)
        cast = dtype is not None and array.dtype != dtype
        if device is None and not cast:
            return array
        # Where the tensor is unless device= says otherwise (TensorFlow would run the op on its
        # default device).
        with _placed(device or _device_of(array)):
            return tf.cast(array, dtype) if cast else tf.identity(array)
    with _placed(device):
        try:
            array = tf.convert_to_tensor(obj, dtype=dtype)
        except (TypeError, ValueError):  # e.g. floats asked for as integers: truncate, as NumPy does
            array = tf.cast(tf.convert_to_tensor(obj), dtype)
        # A converted constant lives in host memory; identity places it on the device (default or
        # given), as the other backends' asarray does.
        return tf.identity(array)


def zeros(shape: int | Sequence[int], *, dtype: Any = None, device: Any = None) -> Any:
    with _placed(device):
        return tf.zeros(_shape(shape), dtype=dtype or tf.float32)


def ones(shape: int | Sequence[int], *, dtype: Any = None, device: Any = None) -> Any:
    with _placed(device):
        return tf.ones(_shape(shape), dtype=dtype or tf.float32)


def zeros_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    with _placed(device or _device_of(x)):
        return tf.zeros_like(x, dtype=dtype)


def ones_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    with _placed(device or _device_of(x)):
        return tf.ones_like(x, dtype=dtype)


def full(shape: int | Sequence[int], fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
    with _placed(device):
        if isinstance(fill_value, _ARRAY_TYPES):
            value = fill_value if dtype is None else tf.cast(fill_value, dtype)
        else:
            value = tf.constant(fill_value, dtype=dtype)
        return tf.fill(_shape(shape), value)


def eye(n_rows: int, n_cols: int | None = None, /, *, dtype: Any = None, device: Any = None) -> Any:
    with _placed(device):
        return tf.eye(n_rows, n_cols, dtype=dtype or tf.float32)


def arange(start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None) -> Any:
    if stop is None:
        start, stop = 0, start
    with _placed(device):
        return tf.range(start, stop, step, dtype=dtype)


def astype(x: Any, dtype: Any, /) -> Any:
    return tf.cast(x, dtype)


# -- elementwise -------------------------------------------------------------------------------

abs = tf.math.abs
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
atan = tf.math.atan
square = tf.math.square
sign = tf.math.sign
negative = tf.math.negative
real = tf.math.real  # of a real tensor: the tensor itself, as NumPy
conj = tf.math.conj


def imag(x: Any, /) -> Any:
    x = _tensor(x)
    return tf.math.imag(x) if x.dtype.is_complex else tf.zeros_like(x)  # NumPy's imag of a real array


def atan2(x1: Any, x2: Any, /) -> Any:
    return tf.math.atan2(*_promote(x1, x2))


def pow(x1: Any, x2: Any, /) -> Any:
    return tf.math.pow(*_promote(x1, x2))


def maximum(x1: Any, x2: Any, /) -> Any:
    return tf.math.maximum(*_promote(x1, x2))


def minimum(x1: Any, x2: Any, /) -> Any:
    return tf.math.minimum(*_promote(x1, x2))


def where(condition: Any, x1: Any, x2: Any, /) -> Any:
    return tf.where(tf.cast(condition, tf.bool), *_promote(x1, x2))


def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:
    x = _tensor(x)
    if min is not None:
        x = tf.math.maximum(x, tf.cast(min, x.dtype))
    if max is not None:
        x = tf.math.minimum(x, tf.cast(max, x.dtype))
    return x


def floor(x: Any, /) -> Any:
    x = _tensor(x)
    return tf.math.floor(x) if x.dtype.is_floating else x


def isfinite(x: Any, /) -> Any:
    x = _tensor(x)
    if x.dtype.is_floating:
        return tf.math.is_finite(x)
    return tf.ones_like(x, dtype=tf.bool)


def logaddexp(x1: Any, x2: Any, /) -> Any:
    x1, x2 = _promote(x1, x2)
    # Each branch only exponentiates a non-positive number, so the branch where() discards never
    # overflows (no NaN gradients), and at ties the gradient is 1/2 to each argument (the true
    # derivative; tnp.logaddexp gives 1 and 0). Equal infinities take a difference of 0, not NaN.
    first = x1 >= x2
    diff = tf.where((x1 == x2) & tf.math.is_inf(x1), tf.zeros_like(x1), x2 - x1)
    from_first = x1 + tf.math.log1p(tf.math.exp(tf.where(first, diff, tf.zeros_like(diff))))
    from_second = x2 + tf.math.log1p(tf.math.exp(tf.where(first, tf.zeros_like(diff), -diff)))
    return tf.where(first, from_first, from_second)


# -- reductions --------------------------------------------------------------------------------


def _countable(x: Any) -> Any:
    x = _tensor(x)
    return tf.cast(x, tf.int32) if x.dtype == tf.bool else x


def sum(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> Any:
    return tf.math.reduce_sum(_countable(x), axis=_axes(axis), keepdims=keepdims)


def prod(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> Any:
    return tf.math.reduce_prod(_countable(x), axis=_axes(axis), keepdims=keepdims)


def mean(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> Any:
    return tf.math.reduce_mean(_require_floating(x, "mean"), axis=_axes(axis), keepdims=keepdims)


def max(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> Any:
    return tf.math.reduce_max(x, axis=_axes(axis), keepdims=keepdims)


def min(x: Any, /, *, axis: Axis = None, keepdims: bool = False) -> Any:
    return tf.math.reduce_min(x, axis=_axes(axis), keepdims=keepdims)


def var(x: Any, /, *, axis: Axis = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    x = _require_floating(x, "var")
    axes = _axes(axis)
    centre = tf.math.reduce_mean(x, axis=axes, keepdims=True)
    squares = tf.math.reduce_sum(tf.math.square(x - centre), axis=axes, keepdims=keepdims)
    # Elements per reduction, from the dynamic shapes so that it also works inside tf.function.
    count = tf.cast(tf.size(x), x.dtype) / tf.cast(tf.size(centre), x.dtype)
    return squares / (count - tf.cast(correction, x.dtype))


def std(x: Any, /, *, axis: Axis = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    return tf.math.sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims))


def cumulative_sum(x: Any, /, *, axis: int | None = None) -> Any:
    x = _tensor(x)
    if axis is None:
        if x.shape.rank != 1:
            raise ValueError(
                f"cumulative_sum needs axis= for an array of rank {x.shape.rank} (it may only be "
                f"left out for one-dimensional arrays)"
            )
        axis = 0
    return tf.math.cumsum(_countable(x), axis=axis)


# -- manipulation ------------------------------------------------------------------------------


def reshape(x: Any, /, shape: Sequence[int]) -> Any:
    return tf.reshape(x, shape)


def permute_dims(x: Any, /, axes: Sequence[int]) -> Any:
    return tf.transpose(x, perm=list(axes))


def matrix_transpose(x: Any, /) -> Any:
    return tf.linalg.matrix_transpose(x)


def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    arrays = _promote(*arrays)
    if axis is None:
        arrays, axis = [tf.reshape(array, [-1]) for array in arrays], 0
    return tf.concat(arrays, axis=axis)


def stack(arrays: Sequence[Any], /, *, axis: int = 0) -> Any:
    return tf.stack(_promote(*arrays), axis=axis)


def take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    x = _tensor(x)
    if axis is None:
        x, axis = tf.reshape(x, [-1]), 0
    indices = _tensor(indices)
    size = tf.shape(x, out_type=indices.dtype)[axis]
    indices = tf.where(indices < 0, indices + size, indices)
    return tf.gather(x, indices, axis=axis)


def expand_dims(x: Any, /, *, axis: int = 0) -> Any:
    return tf.expand_dims(x, axis)


def squeeze(x: Any, /, axis: int | Sequence[int]) -> Any:
    return tf.squeeze(x, axis=_axes(axis))


def flip(x: Any, /, *, axis: Axis = None) -> Any:
    x = _tensor(x)
    axes = _axes(axis)
    if axes is None:
        axes = list(range(x.shape.rank))
    return tf.reverse(x, [axes] if isinstance(axes, int) else axes)


def broadcast_to(x: Any, /, shape: Sequence[int]) -> Any:
    return tf.broadcast_to(x, shape)


# -- linear algebra ----------------------------------------------------------------------------


def matmul(x1: Any, x2: Any, /) -> Any:
    x1, x2 = _promote(x1, x2)
    rank1, rank2 = x1.shape.rank, x2.shape.rank
    if rank1 == 0 or rank2 == 0:
        raise ValueError("matmul does not take scalars (rank-0 arrays); multiply with * instead")
    if rank1 == 1 and rank2 == 1:
        return tf.tensordot(x1, x2, axes=1)
    # NumPy's rule: a vector operand becomes a matrix for the product and its axis is removed after.
    left = tf.expand_dims(x1, 0) if rank1 == 1 else x1
    right = tf.expand_dims(x2, -1) if rank2 == 1 else x2
    product = tf.linalg.matmul(left, right)
    if rank1 == 1:
        return tf.squeeze(product, axis=-2)
    if rank2 == 1:
        return tf.squeeze(product, axis=-1)
    return product


def tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    return tf.tensordot(*_promote(x1, x2), axes=axes)


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    x1, x2 = _promote(x1, x2)
    size1, size2 = x1.shape[axis], x2.shape[axis]
    if size1 is not None and size2 is not None and size1 != size2:
        raise ValueError(f"vecdot: the vectors along axis {axis} have different lengths {size1} and {size2}")
    return tf.math.reduce_sum(x1 * x2, axis=axis)


def _broadcast_batch(x1: Any, x2: Any) -> tuple[Any, Any]:
    """Both stacks of matrices broadcast to one batch shape (tf.linalg.solve does not broadcast)."""
    if x1.shape[:-2] == x2.shape[:-2] and x1.shape.is_fully_defined() and x2.shape.is_fully_defined():
        return x1, x2
    batch = tf.broadcast_dynamic_shape(tf.shape(x1)[:-2], tf.shape(x2)[:-2])
    x1 = tf.broadcast_to(x1, tf.concat([batch, tf.shape(x1)[-2:]], axis=0))
    x2 = tf.broadcast_to(x2, tf.concat([batch, tf.shape(x2)[-2:]], axis=0))
    return x1, x2


def solve(x1: Any, x2: Any, /) -> Any:
    x1, x2 = _promote(x1, x2)
    vector = x2.shape.rank == 1  # the Array API rule: only a 1-D right-hand side is a vector
    rhs = tf.expand_dims(x2, -1) if vector else x2
    matrix, rhs = _broadcast_batch(x1, rhs)
    solution = tf.linalg.solve(matrix, rhs)
    return tf.squeeze(solution, axis=-1) if vector else solution


def inv(x: Any, /) -> Any:
    return tf.linalg.inv(x)


def det(x: Any, /) -> Any:
    return tf.linalg.det(x)


def slogdet(x: Any, /) -> SlogdetResult:
    sign_, logabsdet = tf.linalg.slogdet(x)
    return SlogdetResult(sign_, logabsdet)


def cholesky(x: Any, /, *, upper: bool = False) -> Any:
    lower = tf.linalg.cholesky(x)
    return tf.linalg.matrix_transpose(lower) if upper else lower


def eigh(x: Any, /) -> EighResult:
    eigenvalues, eigenvectors = tf.linalg.eigh(x)
    return EighResult(eigenvalues, eigenvectors)


def qr(x: Any, /, *, mode: str = "reduced") -> QRResult:
    if mode not in ("reduced", "complete"):
        raise ValueError(f"qr mode must be 'reduced' or 'complete', got {mode!r}")
    q, r = tf.linalg.qr(x, full_matrices=mode == "complete")
    return QRResult(q, r)


def vector_norm(x: Any, /, *, axis: Axis = None, keepdims: bool = False, ord: float = 2) -> Any:
    magnitude = tf.math.abs(_tensor(x))
    axes = _axes(axis)
    if ord == math.inf:
        return tf.math.reduce_max(magnitude, axis=axes, keepdims=keepdims)
    if ord == -math.inf:
        return tf.math.reduce_min(magnitude, axis=axes, keepdims=keepdims)
    if ord == 0:
        nonzero = tf.cast(magnitude != 0, magnitude.dtype)
        return tf.math.reduce_sum(nonzero, axis=axes, keepdims=keepdims)
    if ord == 1:
        return tf.math.reduce_sum(magnitude, axis=axes, keepdims=keepdims)
    if ord == 2:
        return tf.math.sqrt(tf.math.reduce_sum(tf.math.square(magnitude), axis=axes, keepdims=keepdims))
    power = tf.cast(ord, magnitude.dtype)
    total = tf.math.reduce_sum(tf.math.pow(magnitude, power), axis=axes, keepdims=keepdims)
    return tf.math.pow(total, 1 / power)


def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
    x = _tensor(x)
    if ord == "fro":
        norm = tf.math.sqrt(tf.math.reduce_sum(tf.math.square(tf.math.abs(x)), axis=[-2, -1]))
    elif ord in ("nuc", 2, -2):
        singular_values = tf.linalg.svd(x, compute_uv=False)
        reduce = {"nuc": tf.math.reduce_sum, 2: tf.math.reduce_max, -2: tf.math.reduce_min}[ord]
        norm = reduce(singular_values, axis=-1)
    elif ord in (1, -1, math.inf, -math.inf):
        # 1: largest column sum of |x|; inf: largest row sum. Negative orders take the smallest.
        sums = tf.math.reduce_sum(tf.math.abs(x), axis=-2 if ord in (1, -1) else -1)
        norm = (tf.math.reduce_max if ord > 0 else tf.math.reduce_min)(sums, axis=-1)
    else:
        raise ValueError(f"matrix_norm: ord must be 'fro', 'nuc', 1, -1, 2, -2, inf or -inf, got {ord!r}")
    return norm[..., None, None] if keepdims else norm


#: ``linalg.<name>`` lookups, as on the array-api-compat namespaces.
linalg = SimpleNamespace(
    solve=solve,
    inv=inv,
    det=det,
    slogdet=slogdet,
    cholesky=cholesky,
    eigh=eigh,
    qr=qr,
    vector_norm=vector_norm,
    matrix_norm=matrix_norm,
)

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
