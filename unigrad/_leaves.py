"""Flattening a call's params or data into leaves, with the shapes most calls have made cheap.

A bare array is one leaf, and a flat dict, list or tuple of arrays seen before is read with its
remembered key order and treedef: these skip optree, whose flatten costs about 11 µs in a real call
(caches cold after the framework ran; 1.6 µs warm). :func:`flatten_params` also gives the cheapest
function rebuilding the tree (:func:`unigrad._tree.rebuilder`). Everything else goes through
:mod:`unigrad._tree`.

Example:
    >>> import numpy as np
    >>> from unigrad._leaves import flatten_leaves
    >>> leaves, treedef = flatten_leaves({"w": np.ones(2), "b": np.zeros(1)})
    >>> [leaf.shape for leaf in leaves], treedef.num_leaves
    ([(1,), (2,)], 2)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any

import optree

from unigrad import _tree
from unigrad.backends import backend_name_of

#: The rebuilder of a bare array's params: its one leaf.
only_leaf = itemgetter(0)
# The treedef of a single leaf (the same for every leaf), made on first use.
_leaf_spec: optree.PyTreeSpec | None = None
_Rebuild = Callable[[list[Any]], Any]
_Values = Callable[[dict[Any, Any]], Iterable[Any]]
# A flat dict of arrays (the commonest params): its keys in insertion order -> (a function giving its
# values in optree's key order, its treedef, its rebuilder).
_flat_dicts: dict[tuple[Any, ...], tuple[_Values, optree.PyTreeSpec, _Rebuild]] = {}
# A flat list or tuple of arrays: (its type, its length) -> its treedef.
_flat_sequences: dict[tuple[type, int], optree.PyTreeSpec] = {}
_FLAT_DICTS_LIMIT = 1024
#: Leaf types found to be some framework's arrays (see note_array_types): every type planned as an
#: array is among them, so a type that is not has no remembered route of its own.
ARRAY_TYPES: set[type] = set()


def leaf_spec(leaf: Any) -> optree.PyTreeSpec:
    """The treedef of one leaf (shared by all leaves)."""
    global _leaf_spec
    if _leaf_spec is None:
        _leaf_spec = _tree.flatten(leaf)[1]
    return _leaf_spec


def note_array_types(types: Any) -> None:
    """Remember ``types`` as array types: flat dicts of them are flattened without optree."""
    ARRAY_TYPES.update(types)


def flatten_leaves(tree: Any, root: str = "params") -> tuple[list[Any], optree.PyTreeSpec]:
    """``tree``'s leaves and treedef, registering the container types it meets (dataclasses, JAX
    nodes); bare arrays and flat dicts, lists and tuples of arrays seen before skip optree.

    Raises:
        CyclicTreeError: ``tree`` contains itself (its path is named from ``root``).
    """
    leaves, treedef, _ = flatten_params(tree, root)
    return leaves, treedef


def flatten_params(tree: Any, root: str = "params") -> tuple[list[Any], optree.PyTreeSpec, _Rebuild]:
    """As :func:`flatten_leaves`, with the cheapest function rebuilding ``tree`` from new leaves."""
    kind = type(tree)
    if kind is dict:
        known = _flat_dicts.get(tuple(tree))
        if known is not None:
            values, treedef, rebuild = known
            leaves = list(values(tree))
            if ARRAY_TYPES.issuperset(map(type, leaves)):
                return leaves, treedef, rebuild
    elif kind is list or kind is tuple:
        sequence_def = _flat_sequences.get((kind, len(tree)))
        if sequence_def is not None and ARRAY_TYPES.issuperset(map(type, tree)):
            return list(tree), sequence_def, kind
    elif backend_name_of(tree) is not None:
        return [tree], leaf_spec(tree), only_leaf
    leaves, treedef = _tree.flatten(tree, root)
    if _tree.register_container_leaves(leaves):
        leaves, treedef = _tree.flatten(tree, root)
    if kind is dict or kind is list or kind is tuple:
        return leaves, treedef, _remember_flat(tree, leaves, treedef)
    return leaves, treedef, treedef.unflatten


def known_flat(tree: Any) -> tuple[_Values | None, optree.PyTreeSpec, _Rebuild] | None:
    """How :func:`flatten_params` flattens ``tree`` when it is a flat dict, list or tuple of arrays
    it has met: the function giving its values in optree's order (``None`` when that is the
    container's own order), its treedef and its rebuilder; ``None`` for any other tree."""
    kind = type(tree)
    if kind is dict:
        known = _flat_dicts.get(tuple(tree))
        if known is None:
            return None
        values, treedef, rebuild = known
        return (None if values is dict.values else values), treedef, rebuild
    if kind is list or kind is tuple:
        sequence_def = _flat_sequences.get((kind, len(tree)))
        return None if sequence_def is None else (None, sequence_def, kind)
    return None


def _remember_flat(tree: Any, leaves: list[Any], treedef: optree.PyTreeSpec) -> _Rebuild:
    """Remember ``tree``'s shape when it is a flat dict, list or tuple of arrays; its rebuilder."""
    # Only when every value is itself an array leaf: {"a": (x,)} has one key and one leaf too, but
    # its value is a container (found by the property test in tests/test_structures.py).
    values = list(tree.values()) if type(tree) is dict else tree
    ARRAY_TYPES.update(type(value) for value in values if backend_name_of(value) is not None)
    if not ARRAY_TYPES.issuperset(map(type, values)):
        return treedef.unflatten
    rebuild = _tree.rebuilder(treedef)
    if len(_flat_dicts) + len(_flat_sequences) >= _FLAT_DICTS_LIMIT:  # key sets made on the fly
        _flat_dicts.clear()
        _flat_sequences.clear()
    if type(tree) is dict:
        _flat_dicts[tuple(tree)] = (_values_in_order(list(treedef.entries()), list(tree)), treedef, rebuild)
    else:
        _flat_sequences[(type(tree), len(leaves))] = treedef
    return rebuild


def _values_in_order(keys: list[Any], own_order: list[Any]) -> _Values:
    """A function giving a dict's values in the order of ``keys`` (optree's), built in C: the dict's
    own ``values`` when its keys are in that order already (one key, or sorted), else an
    ``itemgetter`` (a list comprehension of lookups costs about 3 times as much a leaf)."""
    if keys == own_order:
        return dict.values  # type: ignore[return-value]
    return itemgetter(*keys)  # two keys at least: one or none are always in order
