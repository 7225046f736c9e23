"""The TensorFlow shim's manipulation and indexing functions, and the triangles (NumPy semantics).

Beyond TensorFlow's own functions: ``take`` and ``take_along_axis`` count negative indices from the
end (``take_along_axis`` broadcasts, as NumPy's); ``tile`` takes fewer or more repetitions than
axes; ``roll`` flattens for ``axis=None``; ``moveaxis`` takes several axes; ``unstack`` returns a
tuple and ``meshgrid`` / ``broadcast_arrays`` lists, as the standard says; ``tril`` / ``triu`` take
any diagonal offset ``k``; ``concat`` and ``stack`` promote their arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from unigrad._namespace._tensorflow_base import Axis, axes_of, moved_to_last, promote, restored, tensor


def reshape(x: Any, /, shape: Sequence[int]) -> Any:
    return tf.reshape(x, shape)


def permute_dims(x: Any, /, axes: Sequence[int]) -> Any:
    return tf.transpose(x, perm=list(axes))


def matrix_transpose(x: Any, /) -> Any:
    return tf.linalg.matrix_transpose(x)


def moveaxis(x: Any, source: int | Sequence[int], destination: int | Sequence[int], /) -> Any:
    x = tensor(x)
    rank = x.shape.rank
    sources = [a % rank for a in ([source] if isinstance(source, int) else source)]
    destinations = [a % rank for a in ([destination] if isinstance(destination, int) else destination)]
    if len(sources) != len(destinations):
        raise ValueError(f"moveaxis: {source!r} and {destination!r} name different numbers of axes")
    order = [a for a in range(rank) if a not in sources]
    for to, moved in sorted(zip(destinations, sources, strict=True)):
        order.insert(to, moved)
    return tf.transpose(x, order)


def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    arrays = promote(*arrays)
    if axis is None:
        arrays, axis = [tf.reshape(array, [-1]) for array in arrays], 0
    return tf.concat(arrays, axis=axis)


def stack(arrays: Sequence[Any], /, *, axis: int = 0) -> Any:
    return tf.stack(promote(*arrays), axis=axis)


def unstack(x: Any, /, *, axis: int = 0) -> tuple[Any, ...]:
    return tuple(tf.unstack(x, axis=axis))


def _from_end(indices: Any, size: Any) -> Any:
    return tf.where(indices < 0, indices + tf.cast(size, indices.dtype), indices)


def take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    x = tensor(x)
    if axis is None:
        x, axis = tf.reshape(x, [-1]), 0
    indices = tensor(indices)
    return tf.gather(x, _from_end(indices, tf.shape(x)[axis]), axis=axis)


def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Any:
    x, indices = tensor(x), tensor(indices)
    moved, back = moved_to_last(x, axis)
    picks, _ = moved_to_last(indices, axis)
    # NumPy broadcasts the other axes of x and indices against each other; tf.gather does not.
    batch = tf.broadcast_dynamic_shape(tf.shape(moved)[:-1], tf.shape(picks)[:-1])
    moved = tf.broadcast_to(moved, tf.concat([batch, tf.shape(moved)[-1:]], axis=0))
    picks = tf.broadcast_to(picks, tf.concat([batch, tf.shape(picks)[-1:]], axis=0))
    picks = _from_end(picks, tf.shape(moved)[-1])
    return restored(tf.gather(moved, picks, batch_dims=x.shape.rank - 1), back)


def expand_dims(x: Any, /, *, axis: int = 0) -> Any:
    return tf.expand_dims(x, axis)


def squeeze(x: Any, /, axis: int | Sequence[int]) -> Any:
    return tf.squeeze(x, axis=axes_of(axis))


def flip(x: Any, /, *, axis: Axis = None) -> Any:
    x = tensor(x)
    axes = axes_of(axis)
    if axes is None:
        axes = list(range(x.shape.rank))
    return tf.reverse(x, [axes] if isinstance(axes, int) else axes)


def roll(x: Any, /, shift: int | Sequence[int], *, axis: Axis = None) -> Any:
    x = tensor(x)
    if axis is None:  # roll the flattened array, then restore the shape
        return tf.reshape(tf.roll(tf.reshape(x, [-1]), shift, axis=0), tf.shape(x))
    if isinstance(shift, int) and not isinstance(axis, int):
        shift = [shift] * len(axis)
    return tf.roll(x, shift if isinstance(shift, int) else list(shift), axis=axes_of(axis))


def repeat(x: Any, repeats: Any, /, *, axis: int | None = None) -> Any:
    return tf.repeat(x, repeats, axis=axis)  # axis=None flattens first, as NumPy


def tile(x: Any, repetitions: Sequence[int], /) -> Any:
    x = tensor(x)
    repetitions, rank = list(repetitions), x.shape.rank
    if len(repetitions) > rank:  # new leading axes of length 1, as NumPy
        x = tf.reshape(x, tf.concat([[1] * (len(repetitions) - rank), tf.shape(x)], axis=0))
    repetitions = [1] * (rank - len(repetitions)) + repetitions
    return tf.tile(x, repetitions)


def broadcast_to(x: Any, /, shape: Sequence[int]) -> Any:
    return tf.broadcast_to(x, shape)


def broadcast_arrays(*arrays: Any) -> list[Any]:
    arrays = [tensor(array) for array in arrays]
    shape = tf.shape(arrays[0])
    for array in arrays[1:]:
        shape = tf.broadcast_dynamic_shape(shape, tf.shape(array))
    return [tf.broadcast_to(array, shape) for array in arrays]


def meshgrid(*arrays: Any, indexing: str = "xy") -> list[Any]:
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    return list(tf.meshgrid(*arrays, indexing=indexing))


def _triangle(x: Any, keep: Any) -> Any:
    x = tensor(x)
    shape = tf.shape(x)
    rows = tf.range(shape[-2])[:, None]
    cols = tf.range(shape[-1])[None, :]
    return tf.where(keep(cols - rows), x, tf.zeros_like(x))


def tril(x: Any, /, *, k: int = 0) -> Any:
    return _triangle(x, lambda offset: offset <= k)


def triu(x: Any, /, *, k: int = 0) -> Any:
    return _triangle(x, lambda offset: offset >= k)
