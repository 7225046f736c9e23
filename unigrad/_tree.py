"""The pytree boundary: every flatten and unflatten in unigrad goes through here (optree).

unigrad registers its own optree namespace so that plain :mod:`dataclasses` instances are treated as
nodes (their fields are children) without touching the global registry other libraries share.

Example:
    >>> from unigrad._tree import flatten, leaf_paths
    >>> leaves, treedef = flatten({"w": 1.0, "b": [2.0, None]})
    >>> leaves
    [2.0, 1.0]
    >>> leaf_paths({"w": 1.0, "b": [2.0, None]})
    ["params['b'][0]", "params['w']"]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import optree

NAMESPACE = "unigrad"

_registered_dataclasses: set[type] = set()


def _register_dataclass(cls: type) -> None:
    """Make a plain dataclass a pytree node in unigrad's namespace (fields become children)."""
    field_names = tuple(field.name for field in dataclasses.fields(cls))

    def flatten_dataclass(obj: Any) -> tuple[tuple[Any, ...], None, tuple[str, ...]]:
        return tuple(getattr(obj, name) for name in field_names), None, field_names

    def unflatten_dataclass(_: None, children: Any) -> Any:
        # Rebuild without calling __init__/__post_init__: the structure is copied, not re-validated,
        # and frozen dataclasses work too.
        obj = object.__new__(cls)
        for name, value in zip(field_names, children, strict=True):
            object.__setattr__(obj, name, value)
        return obj

    optree.register_pytree_node(
        cls,
        flatten_dataclass,
        unflatten_dataclass,
        path_entry_type=optree.GetAttrEntry,
        namespace=NAMESPACE,
    )
    _registered_dataclasses.add(cls)


def _is_unregistered_dataclass(leaf: Any) -> bool:
    return (
        dataclasses.is_dataclass(leaf)
        and not isinstance(leaf, type)
        and type(leaf) not in _registered_dataclasses
        and optree.register_pytree_node.get(type(leaf), namespace=NAMESPACE) is None
    )


def flatten(tree: Any) -> tuple[list[Any], optree.PyTreeSpec]:
    """Flatten ``tree`` into leaves and a treedef; ``None`` is structure, not a leaf."""
    leaves, treedef = optree.tree_flatten(tree, none_is_leaf=False, namespace=NAMESPACE)
    return leaves, treedef


def register_dataclass_leaves(leaves: list[Any]) -> bool:
    """Register the dataclass types found among ``leaves``; return whether any was new.

    Called only on the slow path (a leaf no backend recognised), so the hot path pays nothing.
    """
    found = False
    for leaf in leaves:
        if _is_unregistered_dataclass(leaf):
            _register_dataclass(type(leaf))
            found = True
    return found


def leaf_paths(tree: Any, root: str = "params") -> list[str]:
    """Human-readable paths of the leaves of ``tree``, in flatten order (e.g. ``params['w'][0]``)."""
    accessors = optree.tree_accessors(tree, none_is_leaf=False, namespace=NAMESPACE)
    return [accessor.codify(root) for accessor in accessors]


def tree_map(fn: Callable[[Any], Any], tree: Any) -> Any:
    """Apply ``fn`` to every leaf of ``tree`` (unigrad's namespace, ``None`` kept as structure)."""
    return optree.tree_map(fn, tree, none_is_leaf=False, namespace=NAMESPACE)
