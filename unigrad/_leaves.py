"""Flattening a call's params or data into leaves, with the two shapes most calls have made cheap.

A bare array is one leaf, and a flat dict of arrays seen before is rebuilt from its remembered key
order and treedef: both skip optree, whose flatten costs several µs in a real call (caches cold after
the framework ran). Everything else goes through :mod:`unigrad._tree`.

Example:
    >>> import numpy as np
    >>> from unigrad._leaves import flatten_leaves
    >>> leaves, treedef = flatten_leaves({"w": np.ones(2), "b": np.zeros(1)})
    >>> [leaf.shape for leaf in leaves], treedef.num_leaves
    ([(1,), (2,)], 2)
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

import optree

from unigrad import _tree
from unigrad.backends import backend_name_of

# The treedef of a single leaf (the same for every leaf), made on first use.
_leaf_spec: optree.PyTreeSpec | None = None
# A flat dict of arrays (the commonest params): its keys in insertion order -> (a function giving its
# values in optree's key order, its treedef).
_flat_dicts: dict[tuple[Any, ...], tuple[Callable[[dict[Any, Any]], tuple[Any, ...]], optree.PyTreeSpec]] = {}
_FLAT_DICTS_LIMIT = 1024
# Leaf types found to be some framework's arrays (see note_array_types).
_array_types: set[type] = set()


def leaf_spec(leaf: Any) -> optree.PyTreeSpec:
    """The treedef of one leaf (shared by all leaves)."""
    global _leaf_spec
    if _leaf_spec is None:
        _leaf_spec = _tree.flatten(leaf)[1]
    return _leaf_spec


def note_array_types(types: Any) -> None:
    """Remember ``types`` as array types: flat dicts of them are flattened without optree."""
    _array_types.update(types)


def flatten_leaves(tree: Any, root: str = "params") -> tuple[list[Any], optree.PyTreeSpec]:
    """``tree``'s leaves and treedef, registering the container types it meets (dataclasses, JAX
    nodes); bare arrays and flat dicts of arrays seen before skip optree.

    Raises:
        CyclicTreeError: ``tree`` contains itself (its path is named from ``root``).
    """
    if backend_name_of(tree) is not None:
        return [tree], leaf_spec(tree)
    if type(tree) is dict:
        known = _flat_dicts.get(tuple(tree))
        if known is not None:
            values, treedef = known
            leaves = list(values(tree))
            if _array_types.issuperset(map(type, leaves)):
                return leaves, treedef
    leaves, treedef = _tree.flatten(tree, root)
    if _tree.register_container_leaves(leaves):
        leaves, treedef = _tree.flatten(tree, root)
    if type(tree) is dict:
        _remember_flat_dict(tree, treedef)
    return leaves, treedef


def _remember_flat_dict(tree: dict[Any, Any], treedef: optree.PyTreeSpec) -> None:
    # Only when every value is itself an array leaf: {"a": (x,)} has one key and one leaf too, but
    # its value is a container (found by the property test in tests/test_structures.py).
    _array_types.update(type(value) for value in tree.values() if backend_name_of(value) is not None)
    if _array_types.issuperset(map(type, tree.values())):
        if len(_flat_dicts) >= _FLAT_DICTS_LIMIT:  # key sets made on the fly: do not grow forever
            _flat_dicts.clear()
        _flat_dicts[tuple(tree)] = (_values_in_order(list(treedef.entries())), treedef)


def _values_in_order(keys: list[Any]) -> Callable[[dict[Any, Any]], tuple[Any, ...]]:
    """A function giving a dict's values in the order of ``keys``, as a tuple built in C (a list
    comprehension of lookups costs about 3 times as much a leaf)."""
    if len(keys) > 1:
        return itemgetter(*keys)
    if keys:  # itemgetter of one key gives the value itself, and of none cannot be made
        (key,) = keys
        return lambda tree: (tree[key],)
    return lambda tree: ()
