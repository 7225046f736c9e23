"""The guaranteed namespace subset on MLX, with NumPy / Array API semantics.

``mlx.core`` follows the Array API only in part (array-api-compat does not wrap it), so this module
maps the standard names onto it and bridges the gaps:

* ``asarray`` keeps a NumPy array's float64 (``mx.array`` alone would make it float32);
* ``var`` / ``std`` take ``correction``, ``cumulative_sum`` takes ``axis=None`` for 1-D input,
  ``concat`` takes ``axis=None`` (flatten first), ``atan2`` and ``pow`` are ``arctan2`` and ``power``;
* linear algebra runs on the CPU stream (MLX implements it there only), ``vector_norm`` and
  ``matrix_norm`` are ``mx.linalg.norm``, and the tuple results are the shared named tuples;
* the non-standard extras (``softplus``, ``relu``, ``log_softmax``...) are built from MLX's own ops.

Creation functions accept the Array API's ``device=`` and ignore it: an MLX array lives in one
unified memory that the CPU and the GPU both read, and carries no device. (MLX's own ``stream=``
chooses which device *runs* an operation, not where its result lives.)

Default dtypes stay MLX's: ``zeros(3)`` and ``asarray(1.5)`` are float32, ``arange(3)`` is int32.
This module imports MLX, so it is only imported once an MLX array has been seen.

Example:
    >>> import mlx.core as mx
    >>> from unigrad._namespace import namespace
    >>> xp = namespace(mx.array([1.0, 2.0, 3.0]))
    >>> xp.name, xp.var(xp.asarray([1.0, 2.0, 3.0]), correction=1).item()
    ('mlx', 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import mlx.core as mx
import numpy as np

from unigrad._namespace import EighResult, QRResult, SlogdetResult

Axis = int | Sequence[int] | None

#: MLX implements its linear algebra on the CPU only (any device can read the result: unified memory).
_LINALG_STREAM = mx.cpu

DTYPES = {
    "float16": mx.float16,
    "bfloat16": mx.bfloat16,
    "float32": mx.float32,
    "float64": mx.float64,
    "int32": mx.int32,
    "int64": mx.int64,
    "bool": mx.bool_,
    "complex64": mx.complex64,  # MLX has no complex128
}

# -- creation ----------------------------------------------------------------------------------
# ``device=`` is accepted for the Array API's signatures and unused: one unified memory (above).


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    if isinstance(obj, mx.array):
        return obj if dtype is None or obj.dtype == dtype else obj.astype(dtype)
    if dtype is None and isinstance(obj, np.ndarray | np.generic):
        from unigrad.backends._mlx import DTYPES as ALL_DTYPES

        dtype = ALL_DTYPES.get(np.asarray(obj).dtype.name)  # float64 stays float64
    return mx.array(obj) if dtype is None else mx.array(obj, dtype=dtype)


def _shape(shape: int | Sequence[int]) -> list[int]:
    return [shape] if isinstance(shape, int) else list(shape)


def zeros(shape: int | Sequence[int], *, dtype: Any = None, device: Any = None) -> Any:
    return mx.zeros(_shape(shape), dtype=dtype or mx.float32)


def ones(shape: int | Sequence[int], *, dtype: Any = None, device: Any = None) -> Any:
    return mx.ones(_shape(shape), dtype=dtype or mx.float32)


def zeros_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    return mx.zeros_like(x) if dtype is None else mx.zeros(x.shape, dtype=dtype)


def ones_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    return mx.ones_like(x) if dtype is None else mx.ones(x.shape, dtype=dtype)


def full(shape: int | Sequence[int], fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
    return mx.full(_shape(shape), fill_value) if dtype is None else mx.full(_shape(shape), fill_value, dtype)


def eye(n_rows: int, n_cols: int | None = None, /, *, dtype: Any = None, device: Any = None) -> Any:
    return mx.eye(n_rows, n_cols, dtype=dtype or mx.float32)


def arange(start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None) -> Any:
    if stop is None:
        start, stop = 0, start
    result = mx.arange(start, stop, step)
    return result if dtype is None else result.astype(dtype)


def astype(x: Any, dtype: Any, /) -> Any:
    return x.astype(dtype)


# -- elementwise -------------------------------------------------------------------------------


def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:
    return mx.clip(x, min, max)


# -- reductions --------------------------------------------------------------------------------


def var(x: Any, /, *, axis: Axis = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    return mx.var(x, axis=axis, keepdims=keepdims, ddof=int(correction))


def std(x: Any, /, *, axis: Axis = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    return mx.std(x, axis=axis, keepdims=keepdims, ddof=int(correction))


def cumulative_sum(x: Any, /, *, axis: int | None = None) -> Any:
    if axis is None:
        if x.ndim != 1:
            raise ValueError("cumulative_sum needs axis= for arrays of more than one dimension")
        axis = 0
    return mx.cumsum(x, axis=axis)


# -- manipulation ------------------------------------------------------------------------------


def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    if axis is None:
        return mx.concatenate([mx.reshape(a, (-1,)) for a in arrays], axis=0)
    return mx.concatenate(list(arrays), axis=axis)


def take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    return mx.take(x, indices if isinstance(indices, mx.array) else mx.array(indices), axis=axis)


def flip(x: Any, /, *, axis: Axis = None) -> Any:
    axes = range(x.ndim) if axis is None else [axis] if isinstance(axis, int) else axis
    index = [slice(None)] * x.ndim
    for a in axes:
        index[a % x.ndim] = slice(None, None, -1)
    return x[tuple(index)]


# -- linear algebra ----------------------------------------------------------------------------


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    return mx.sum(x1 * x2, axis=axis)


def tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    return mx.tensordot(x1, x2, axes=axes)


def solve(x1: Any, x2: Any, /) -> Any:
    # mx.linalg.solve broadcasts no batch dimensions: broadcast them first, as the standard does.
    vector = x2.ndim == 1  # the Array API rule: only a 1-D right-hand side is a vector
    rhs = mx.expand_dims(x2, -1) if vector else x2
    batch = tuple(np.broadcast_shapes(tuple(x1.shape[:-2]), tuple(rhs.shape[:-2])))
    matrix = mx.broadcast_to(x1, (*batch, *x1.shape[-2:]))
    rhs = mx.broadcast_to(rhs, (*batch, *rhs.shape[-2:]))
    solution = mx.linalg.solve(matrix, rhs, stream=_LINALG_STREAM)
    return mx.squeeze(solution, -1) if vector else solution


def inv(x: Any, /) -> Any:
    return mx.linalg.inv(x, stream=_LINALG_STREAM)


def det(x: Any, /) -> Any:
    return mx.linalg.det(x, stream=_LINALG_STREAM)


def slogdet(x: Any, /) -> SlogdetResult:
    return SlogdetResult(*mx.linalg.slogdet(x, stream=_LINALG_STREAM))


def cholesky(x: Any, /, *, upper: bool = False) -> Any:
    return mx.linalg.cholesky(x, upper=upper, stream=_LINALG_STREAM)


def eigh(x: Any, /) -> EighResult:
    return EighResult(*mx.linalg.eigh(x, stream=_LINALG_STREAM))


def qr(x: Any, /, *, mode: str = "reduced") -> QRResult:
    if mode != "reduced":
        raise ValueError(f"qr: MLX computes mode='reduced' only, got mode={mode!r}")
    return QRResult(*mx.linalg.qr(x, stream=_LINALG_STREAM))


def vector_norm(x: Any, /, *, axis: Axis = None, keepdims: bool = False, ord: float = 2) -> Any:
    if axis is None:
        x, axis = mx.reshape(x, (-1,)), 0
    if isinstance(axis, int):
        return mx.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)
    # Several axes: move them to the end and flatten them into one.
    axes = [a % x.ndim for a in axis]
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = mx.transpose(x, kept + axes)
    flat = mx.reshape(moved, (*(x.shape[a] for a in kept), -1))
    result = mx.linalg.norm(flat, ord=ord, axis=-1)
    if keepdims:
        result = mx.reshape(result, tuple(1 if a in axes else x.shape[a] for a in range(x.ndim)))
    return result


def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
    return mx.linalg.norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims, stream=_LINALG_STREAM)


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

# -- extras (names outside the standard) -------------------------------------------------------


def logsumexp(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    return mx.logsumexp(x, axis=axis, keepdims=keepdims)


def softplus(x: Any) -> Any:
    return mx.logaddexp(x, mx.zeros_like(x))


def relu(x: Any) -> Any:
    return mx.maximum(x, mx.zeros_like(x))


def log_softmax(x: Any, axis: int = -1) -> Any:
    return x - mx.logsumexp(x, axis=axis, keepdims=True)


def softmax(x: Any, axis: int = -1) -> Any:
    return mx.softmax(x, axis=axis, precise=True)


# Standard names MLX spells as the standard does, with the same semantics (these shadow the
# builtins abs, sum, max, min and pow in this module on purpose).
abs = mx.abs
exp = mx.exp
log = mx.log
log1p = mx.log1p
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
maximum = mx.maximum
minimum = mx.minimum
where = mx.where
floor = mx.floor
isfinite = mx.isfinite
logaddexp = mx.logaddexp
sum = mx.sum
mean = mx.mean
prod = mx.prod
max = mx.max
min = mx.min
reshape = mx.reshape
expand_dims = mx.expand_dims
squeeze = mx.squeeze
stack = mx.stack
broadcast_to = mx.broadcast_to
matmul = mx.matmul
matrix_transpose = mx.matrix_transpose
permute_dims = mx.permute_dims
sigmoid = mx.sigmoid
erf = mx.erf
rsqrt = mx.rsqrt
einsum = mx.einsum
atan = mx.arctan
atan2 = mx.arctan2
pow = mx.power


def real(x: Any, /) -> Any:
    return mx.real(x) if x.dtype == mx.complex64 else x  # of a real array: the array, as NumPy


def imag(x: Any, /) -> Any:
    return mx.imag(x) if x.dtype == mx.complex64 else mx.zeros_like(x)  # NumPy's imag of a real array


def conj(x: Any, /) -> Any:
    return mx.conj(x) if x.dtype == mx.complex64 else x
