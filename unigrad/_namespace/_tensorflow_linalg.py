"""The TensorFlow shim's linear algebra: ``matmul``, ``tensordot``, ``vecdot`` and ``linalg.*``.

Beyond ``tf.linalg``: ``matmul`` accepts vectors (``tf.matmul`` wants rank >= 2) and broadcasts
batch dimensions; ``linalg.solve`` takes a vector or a matrix right-hand side and broadcasts batch
dimensions; ``linalg.svd`` returns ``Vh`` (TensorFlow returns ``V``) in the shared named tuple;
``linalg.pinv``'s default cutoff is the standard's ``max(M, N) * eps`` (TensorFlow's is ten times
that); ``linalg.cross`` broadcasts and takes ``axis``; ``linalg.matrix_power`` takes negative
powers; the norms take every ``ord`` of the standard.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from unigrad._namespace._names import EighResult, QRResult, SlogdetResult, SVDResult
from unigrad._namespace._tensorflow_base import Axis, axes_of, moved_to_last, promote, restored, tensor


def matmul(x1: Any, x2: Any, /) -> Any:
    x1, x2 = promote(x1, x2)
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
    return tf.tensordot(*promote(x1, x2), axes=axes)


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    x1, x2 = promote(x1, x2)
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
    x1, x2 = promote(x1, x2)
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
    sign, logabsdet = tf.linalg.slogdet(x)
    return SlogdetResult(sign, logabsdet)


def cholesky(x: Any, /, *, upper: bool = False) -> Any:
    lower = tf.linalg.cholesky(x)
    return tf.linalg.matrix_transpose(lower) if upper else lower


def eigh(x: Any, /) -> EighResult:
    eigenvalues, eigenvectors = tf.linalg.eigh(x)
    return EighResult(eigenvalues, eigenvectors)


def eigvalsh(x: Any, /) -> Any:
    return tf.linalg.eigvalsh(x)


def qr(x: Any, /, *, mode: str = "reduced") -> QRResult:
    if mode not in ("reduced", "complete"):
        raise ValueError(f"qr mode must be 'reduced' or 'complete', got {mode!r}")
    q, r = tf.linalg.qr(x, full_matrices=mode == "complete")
    return QRResult(q, r)


def svd(x: Any, /, *, full_matrices: bool = True) -> SVDResult:
    s, u, v = tf.linalg.svd(x, full_matrices=full_matrices)
    return SVDResult(u, s, tf.linalg.adjoint(v))


def svdvals(x: Any, /) -> Any:
    return tf.linalg.svd(x, compute_uv=False)


def pinv(x: Any, /, *, rtol: Any = None) -> Any:
    x = tensor(x)
    if rtol is None:
        rows, cols = x.shape[-2], x.shape[-1]
        rtol = max(rows, cols) * np.finfo(x.dtype.as_numpy_dtype).eps
    return tf.linalg.pinv(x, rcond=rtol)


def matrix_power(x: Any, n: int, /) -> Any:
    x = tensor(x)
    if n == 0:
        return tf.broadcast_to(tf.eye(tf.shape(x)[-1], dtype=x.dtype), tf.shape(x))
    if n < 0:
        x, n = tf.linalg.inv(x), -n
    result, base = None, x
    while n:  # by squaring: log2(n) products
        if n & 1:
            result = base if result is None else tf.linalg.matmul(result, base)
        n >>= 1
        if n:
            base = tf.linalg.matmul(base, base)
    return result


def cross(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    x1, x2 = promote(x1, x2)
    shape = tf.broadcast_dynamic_shape(tf.shape(x1), tf.shape(x2))
    x1, back = moved_to_last(tf.broadcast_to(x1, shape), axis)
    x2, _ = moved_to_last(tf.broadcast_to(x2, shape), axis)
    return restored(tf.linalg.cross(x1, x2), back)


def outer(x1: Any, x2: Any, /) -> Any:
    x1, x2 = promote(x1, x2)
    return x1[:, None] * x2[None, :]


def diagonal(x: Any, /, *, offset: int = 0) -> Any:
    return tf.linalg.diag_part(x, k=offset)


def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    total = tf.math.reduce_sum(tf.linalg.diag_part(x, k=offset), axis=-1)
    return total if dtype is None else tf.cast(total, dtype)


def _squared_magnitude(x: Any) -> Any:
    """|x|**2 without abs: TensorFlow's abs has gradient sign(x), 0 at 0, so square(abs(x)) had a
    second derivative of 0 at x = 0 where it is 2 (a wrong Hessian-vector product of the norm)."""
    if x.dtype.is_complex:
        return tf.math.square(tf.math.real(x)) + tf.math.square(tf.math.imag(x))
    return tf.math.square(x)


def vector_norm(x: Any, /, *, axis: Axis = None, keepdims: bool = False, ord: float = 2) -> Any:
    magnitude = tf.math.abs(tensor(x))
    axes = axes_of(axis)
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
        squares = _squared_magnitude(tensor(x))
        return tf.math.sqrt(tf.math.reduce_sum(squares, axis=axes, keepdims=keepdims))
    power = tf.cast(ord, magnitude.dtype)
    total = tf.math.reduce_sum(tf.math.pow(magnitude, power), axis=axes, keepdims=keepdims)
    return tf.math.pow(total, 1 / power)


def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
    x = tensor(x)
    if ord == "fro":
        norm = tf.math.sqrt(tf.math.reduce_sum(_squared_magnitude(x), axis=[-2, -1]))
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
