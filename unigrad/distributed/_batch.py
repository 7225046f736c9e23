"""What every engine shares: the local batch's examples, the per-example loss contract, shard sizes.

Example:
    >>> from unigrad.distributed._batch import uneven_sizes
    >>> uneven_sizes(7, 2), uneven_sizes(8, 2)
    ([4, 3], [5, 3])
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from unigrad import _tree
from unigrad._dispatch import _flatten_tree, to_backend
from unigrad._errors import InvalidAuxError, PerExampleLossError, StructureMismatchError
from unigrad.backends import Adapter, backend_name_of

ExampleLossFn = Callable[[Any, Any], Any]


@dataclass
class LocalBatch:
    """The examples one process holds: array leaves (in the engine's framework) and the rest.

    Attributes:
        arrays: the array leaves, each with the examples along axis 0.
        positions: where each array leaf sits among all the batch's leaves.
        leaves: every leaf; non-array leaves (strings, numbers) go to every shard unchanged.
        rebuild: leaves back into the batch's structure.
        size: the number of examples (the common length of axis 0).
    """

    arrays: list[Any]
    positions: list[int]
    leaves: list[Any]
    rebuild: Callable[[list[Any]], Any]
    size: int
    treedef: Any = None
    original: Any = None  # the batch as passed, when ``arrays`` are all its leaves, unconverted

    def template(self) -> LocalBatch:
        """This batch without its arrays (what a compiled step may keep without holding the data)."""
        positions = set(self.positions)
        leaves = [None if i in positions else leaf for i, leaf in enumerate(self.leaves)]
        return LocalBatch([], self.positions, leaves, self.rebuild, -1, self.treedef)

    def key(self) -> Any:
        """Hashable: the structure and the non-array leaves (which a compiled step bakes in)."""
        if len(self.positions) == len(self.leaves):  # arrays only (the common case)
            return self.treedef, ()
        positions = set(self.positions)
        return self.treedef, tuple(leaf for i, leaf in enumerate(self.leaves) if i not in positions)

    def with_arrays(self, arrays: list[Any]) -> Any:
        """The batch's structure holding ``arrays`` (a shard, or traced values) in place of its own."""
        if arrays is self.arrays and self.original is not None:
            return self.original  # nothing to put back
        leaves = list(self.leaves)
        for position, array in zip(self.positions, arrays, strict=True):
            leaves[position] = array
        return self.rebuild(leaves)


#: Counts travel as ``hi * COUNT_BASE + lo`` so that float32 sums of both parts stay exact
#: (each below 2**24) for up to 2**36 examples in all.
COUNT_BASE = 4096


def count_parts(count: int) -> tuple[float, float]:
    """``count`` as the two parts that travel in a float32 or float64 all-reduce."""
    return float(count // COUNT_BASE), float(count % COUNT_BASE)


def local_batch(batch: Any, adapter: Adapter, keep_numpy: bool = False) -> LocalBatch:
    """Flatten ``batch``, convert its array leaves to ``adapter``'s framework, check they share axis 0.

    ``keep_numpy``: NumPy leaves stay NumPy (an engine that places them on its devices itself, in
    one copy, rather than through the framework's default device).

    Raises:
        StructureMismatchError: no array leaf, a 0-d array leaf, or leaves of different lengths
            along axis 0 (naming the leaf path).
    """
    leaves, treedef = _flatten_tree(batch, "batch")  # a flat dict of arrays seen before skips optree
    positions = [i for i, leaf in enumerate(leaves) if backend_name_of(leaf) is not None]
    if not positions:
        raise StructureMismatchError(
            f"batch holds no array (structure {treedef}); a data-parallel step needs the examples as "
            f"arrays with the example index along axis 0"
        )
    arrays = [
        leaves[i] if keep_numpy and isinstance(leaves[i], np.ndarray) else to_backend(adapter, leaves[i])
        for i in positions
    ]
    sizes = {}
    for position, array in zip(positions, arrays, strict=True):
        shape = adapter.shape(array)
        if not shape:
            path = _tree.leaf_paths(batch, "batch")[position]
            raise StructureMismatchError(
                f"{path} is a 0-d array; every array leaf of the batch holds examples "
                f"along axis 0 (pass constants in the loss function's closure, or as a Python value)"
            )
        sizes.setdefault(shape[0], position)
    if len(sizes) > 1:
        paths = _tree.leaf_paths(batch, "batch")  # named only when there is something to report
        described = ", ".join(f"{paths[position]} has {n}" for n, position in sizes.items())
        raise StructureMismatchError(
            f"the batch's array leaves disagree on the number of examples along axis 0 ({described}); "
            f"every array leaf must hold the same examples"
        )
    unchanged = len(positions) == len(leaves) and all(map(operator.is_, arrays, leaves))
    original = batch if unchanged else None
    return LocalBatch(arrays, positions, leaves, treedef.unflatten, next(iter(sizes)), treedef, original)


def split_output(out: Any, has_aux: bool, backend: str) -> tuple[Any, Any]:
    """``(losses, aux)`` from what ``example_loss_fn`` returned."""
    if not has_aux:
        return out, None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise InvalidAuxError(
            f"has_aux=True but example_loss_fn returned a {type(out).__name__} on backend {backend!r}; "
            f"it must return a pair (per_example_losses, aux)"
        )
    return out[0], out[1]


#: ``(type, dtype)`` of per-example losses that passed the checks (a step repeats them every call)
_passed: set[tuple[type, Any]] = set()


def check_per_example(losses: Any, size: int, adapter: Adapter) -> None:
    """Raise :class:`PerExampleLossError` unless ``losses`` is a floating array of shape ``(size,)``."""
    kind = (type(losses), getattr(losses, "dtype", None))
    if kind in _passed and adapter.shape(losses) == (size,):
        return
    shape = adapter.shape(losses) if adapter.is_array(losses) else None
    if shape == (size,) and adapter.dtype_name(losses).startswith(("float", "bfloat")):
        _passed.add(kind)
        return
    found = f"shape {shape}" if shape is not None else f"a {type(losses).__name__}"
    if shape is not None and shape == (size,):
        found = f"dtype {adapter.dtype_name(losses)}"
    raise PerExampleLossError(
        f"example_loss_fn returned {found} on backend {adapter.name!r} for a shard of {size} examples; "
        f"a data-parallel loss returns one floating loss per example, shape ({size},), and unigrad "
        f"takes the mean over all examples of all shards. Return the per-example losses before any "
        f"reduction (a mean or sum inside the loss would weight shards wrongly: see docs/distributed.md)"
    )


def uneven_sizes(total: int, parts: int) -> list[int]:
    """Shard sizes for ``total`` examples over ``parts`` workers, deliberately unequal.

    The first shard takes one example more than an even split gives it, taken from the last shard,
    so that an implementation that averages per-shard means is caught.

    Raises:
        StructureMismatchError: fewer than ``parts + 1`` examples (no uneven split with every shard
            holding at least one example).
    """
    if parts == 1:
        return [total]
    if total < parts + 1:
        raise StructureMismatchError(
            f"the batch has {total} examples: at least {parts + 1} are needed to split it unevenly over "
            f"{parts} workers with one example or more each"
        )
    sizes = [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
    if sizes[0] == sizes[-1]:
        sizes[0] += 1
        sizes[-1] -= 1
    return sizes
