"""The MLX shim's reductions, scans, sorting, searching and manipulation (NumPy semantics).

Bridged here: ``var`` / ``std`` take ``correction``; the scans take ``axis=None`` for 1-D input and
``include_initial``, and ``cumulative_prod`` is shifted multiplications, whose second derivative is
right at zeros (``mx.cumprod``'s is NaN there); ``diff`` takes ``prepend`` / ``append``; ``concat``
takes ``axis=None``; ``repeat`` takes an array of repeats (read on the host: MLX needs the result's
size); ``moveaxis`` several axes; ``sort`` / ``argsort`` ``descending`` (stable: equal elements keep
their order); ``argmax`` / ``argmin`` / ``argsort`` return int64 (MLX's are uint32, on which
negative arithmetic wraps); ``take`` / ``take_along_axis`` stop the gradient at their indices (MLX
would try to differentiate an index computed from the input, e.g. by ``argsort``, and fail);
``meshgrid`` and ``broadcast_arrays`` return lists, as the standard says. Names shadow the builtins
``sum``, ``max``, ``min``, ``all`` and ``any`` in this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mlx.core as mx
import numpy as np

Axis = int | Sequence[int] | None

sum = mx.sum
mean = mx.mean
prod = mx.prod
max = mx.max
min = mx.min
all = mx.all
any = mx.any
reshape = mx.reshape
expand_dims = mx.expand_dims
squeeze = mx.squeeze
stack = mx.stack
unstack = mx.unstack
broadcast_to = mx.broadcast_to
matrix_transpose = mx.matrix_transpose
permute_dims = mx.permute_dims
roll = mx.roll
tile = mx.tile


def var(x: Any, /, *, axis: Axis = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    return mx.var(x, axis=axis, keepdims=keepdims, ddof=int(correction))


def std(x: Any, /, *, axis: Axis = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    return mx.std(x, axis=axis, keepdims=keepdims, ddof=int(correction))


# -- scans -----------------------------------------------------------------------------------------


def _scan(scan: Any, identity: int, name: str) -> Any:
    def scanned(
        x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False
    ) -> Any:
        if axis is None:
            if x.ndim != 1:
                raise ValueError(f"{name} needs axis= for arrays of more than one dimension")
            axis = 0
        result = scan(x if dtype is None else x.astype(dtype), axis)
        if not include_initial:
            return result
        shape = list(result.shape)
        shape[axis] = 1
        return mx.concatenate([mx.full(shape, identity, result.dtype), result], axis=axis)

    scanned.__name__ = name
    return scanned


def _prefix_product(x: Any, axis: int) -> Any:
    """The running product by log2(n) shifted multiplications (Hillis and Steele's scan): its
    derivatives of every order are products too (mx.cumprod's second derivative is NaN at zeros)."""
    if not mx.issubdtype(x.dtype, mx.floating):
        return mx.cumprod(x, axis=axis)
    x = mx.moveaxis(x, axis, -1)
    size, shift = x.shape[-1], 1
    while shift < size:
        x = x * mx.concatenate([mx.ones_like(x[..., :shift]), x[..., :-shift]], axis=-1)
        shift *= 2
    return mx.moveaxis(x, -1, axis)


cumulative_sum = _scan(mx.cumsum, 0, "cumulative_sum")
cumulative_prod = _scan(_prefix_product, 1, "cumulative_prod")


def diff(x: Any, /, *, axis: int = -1, n: int = 1, prepend: Any = None, append: Any = None) -> Any:
    parts = [part for part in (prepend, x, append) if part is not None]
    if len(parts) > 1:
        x = mx.concatenate(parts, axis=axis)
    return mx.diff(x, n, axis)


# -- searching and sorting -------------------------------------------------------------------------


def _index(indices: Any) -> Any:
    return mx.stop_gradient(indices.astype(mx.int64))


def argmax(x: Any, /, *, axis: int | None = None, keepdims: bool = False) -> Any:
    return _index(mx.argmax(x, axis=axis, keepdims=keepdims))


def argmin(x: Any, /, *, axis: int | None = None, keepdims: bool = False) -> Any:
    return _index(mx.argmin(x, axis=axis, keepdims=keepdims))


def argsort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    # MLX's argsort is stable; ascending on -x keeps equal elements in their order, as the standard
    # asks of a stable descending sort.
    return _index(mx.argsort(-x if descending else x, axis=axis))


def sort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    if not descending:
        return mx.sort(x, axis=axis)
    return mx.take_along_axis(x, argsort(x, axis=axis, descending=True), axis=axis)


# -- manipulation ----------------------------------------------------------------------------------


def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    if axis is None:
        return mx.concatenate([mx.reshape(a, (-1,)) for a in arrays], axis=0)
    return mx.concatenate(list(arrays), axis=axis)


def _indices(indices: Any) -> Any:
    return mx.stop_gradient(indices if isinstance(indices, mx.array) else mx.array(indices))


def take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    return mx.take(x, _indices(indices), axis=axis)


def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Any:
    return mx.take_along_axis(x, _indices(indices), axis=axis)


def flip(x: Any, /, *, axis: Axis = None) -> Any:
    axes = range(x.ndim) if axis is None else [axis] if isinstance(axis, int) else axis
    index = [slice(None)] * x.ndim
    for a in axes:
        index[a % x.ndim] = slice(None, None, -1)
    return x[tuple(index)]


def moveaxis(x: Any, source: int | Sequence[int], destination: int | Sequence[int], /) -> Any:
    sources = [a % x.ndim for a in ([source] if isinstance(source, int) else source)]
    destinations = [a % x.ndim for a in ([destination] if isinstance(destination, int) else destination)]
    if len(sources) != len(destinations):
        raise ValueError(f"moveaxis: {source!r} and {destination!r} name different numbers of axes")
    order = [a for a in range(x.ndim) if a not in sources]
    for to, moved in sorted(zip(destinations, sources, strict=True)):
        order.insert(to, moved)
    return mx.transpose(x, order)


def repeat(x: Any, repeats: Any, /, *, axis: int | None = None) -> Any:
    if isinstance(repeats, int):
        return mx.repeat(x, repeats, axis=axis)
    if axis is None:
        x, axis = mx.reshape(x, (-1,)), 0
    counts = np.asarray(repeats)  # the result's size depends on the values: read them on the host
    picks = np.repeat(np.arange(x.shape[axis]), counts)
    return mx.take(x, mx.array(picks), axis=axis)


def broadcast_arrays(*arrays: Any) -> list[Any]:
    return list(mx.broadcast_arrays(*arrays))


def meshgrid(*arrays: Any, indexing: str = "xy") -> list[Any]:
    return list(mx.meshgrid(*arrays, indexing=indexing))


def tril(x: Any, /, *, k: int = 0) -> Any:
    return mx.tril(x, k)


def triu(x: Any, /, *, k: int = 0) -> Any:
    return mx.triu(x, k)
