"""The MLX shim's linear algebra: ``matmul``, ``tensordot``, ``vecdot`` and ``linalg.*``.

MLX implements its decompositions on the CPU only, so they run on the CPU stream (any device reads
the result: unified memory). Bridged here: ``linalg.solve`` broadcasts batch dimensions;
``linalg.svd`` computes reduced factors with ``full_matrices=False`` (MLX's are always full) and
``linalg.pinv`` takes ``rtol`` (MLX's has no cutoff argument), both from ``mx.linalg.svd``;
``linalg.matrix_power`` squares its way to ``n`` (negative ``n`` through ``inv``); the norms are
``mx.linalg.norm``; the tuple results are the shared named tuples. MLX 0.32 has no VJP for Inverse,
Cholesky, Eigh, QRF or SVD: those gaps are declared in ``unigrad._namespace._gaps``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mlx.core as mx
import numpy as np

from unigrad._namespace._names import EighResult, QRResult, SlogdetResult, SVDResult

Axis = int | Sequence[int] | None

#: MLX implements its linear algebra on the CPU only (any device can read the result: unified memory).
_LINALG_STREAM = mx.cpu

matmul = mx.matmul
outer = mx.outer


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


def eigvalsh(x: Any, /) -> Any:
    return mx.linalg.eigvalsh(x, stream=_LINALG_STREAM)


def qr(x: Any, /, *, mode: str = "reduced") -> QRResult:
    if mode != "reduced":
        raise ValueError(f"qr: MLX computes mode='reduced' only, got mode={mode!r}")
    return QRResult(*mx.linalg.qr(x, stream=_LINALG_STREAM))


def svd(x: Any, /, *, full_matrices: bool = True) -> SVDResult:
    u, s, vh = mx.linalg.svd(x, stream=_LINALG_STREAM)  # always the full factors
    if not full_matrices:
        k = s.shape[-1]
        u, vh = u[..., :k], vh[..., :k, :]
    return SVDResult(u, s, vh)


def svdvals(x: Any, /) -> Any:
    return mx.linalg.svd(x, compute_uv=False, stream=_LINALG_STREAM)


def pinv(x: Any, /, *, rtol: Any = None) -> Any:
    u, s, vh = svd(x, full_matrices=False)
    if rtol is None:  # the standard's default: max(M, N) * eps of the dtype
        rtol = max(x.shape[-2:]) * mx.finfo(x.dtype).eps
    cutoff = mx.expand_dims(rtol * mx.max(s, axis=-1), -1)
    inverted = mx.where(s > cutoff, 1 / mx.where(s > cutoff, s, 1), 0)
    return mx.matmul(mx.swapaxes(vh, -1, -2) * mx.expand_dims(inverted, -2), mx.swapaxes(u, -1, -2))


def matrix_power(x: Any, n: int, /) -> Any:
    if n == 0:
        return mx.broadcast_to(mx.eye(x.shape[-1], dtype=x.dtype), x.shape)
    if n < 0:
        x, n = inv(x), -n
    result, base = None, x
    while n:  # by squaring: log2(n) products
        if n & 1:
            result = base if result is None else mx.matmul(result, base)
        n >>= 1
        if n:
            base = mx.matmul(base, base)
    return result


def cross(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    x1, x2 = mx.broadcast_arrays(x1, x2)
    return mx.linalg.cross(x1, x2, axis=axis)


def diagonal(x: Any, /, *, offset: int = 0) -> Any:
    return mx.diagonal(x, offset, -2, -1)


def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    return mx.trace(x, offset, -2, -1, dtype=dtype)


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
