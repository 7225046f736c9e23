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

import collections
import dataclasses
from collections.abc import Callable
from typing import Any

import optree

NAMESPACE = "unigrad"

_registered_dataclasses: set[type] = set()
# Leaf types known not to be dataclasses (arrays, numbers...): nothing to register for them.
_plain_types: set[type] = set()


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

    Looks at one leaf per distinct type, so a call pays per type, not per leaf.
    """
    # Whether a leaf is an unregistered dataclass depends on its type alone, and a type that is not
    # a dataclass never becomes one: once seen, such types are skipped with one set operation.
    if _plain_types.issuperset(map(type, leaves)):
        return False
    found = False
    for leaf_type, leaf in dict(zip(map(type, leaves), leaves, strict=True)).items():
        if _is_unregistered_dataclass(leaf):
            _register_dataclass(leaf_type)
            found = True
        elif not dataclasses.is_dataclass(leaf_type):
            _plain_types.add(leaf_type)
    return found


def leaf_paths(tree: Any, root: str = "params") -> list[str]:
    """Human-readable paths of the leaves of ``tree``, in flatten order (e.g. ``params['w'][0]``)."""
    accessors = optree.tree_accessors(tree, none_is_leaf=False, namespace=NAMESPACE)
    return [accessor.codify(root) for accessor in accessors]


def tree_map(fn: Callable[[Any], Any], tree: Any) -> Any:
    """Apply ``fn`` to every leaf of ``tree`` (unigrad's namespace, ``None`` kept as structure)."""
    return optree.tree_map(fn, tree, none_is_leaf=False, namespace=NAMESPACE)


def unflattener(treedef: optree.PyTreeSpec) -> Callable[[list[Any]], Any]:
    """A pure-Python function rebuilding ``treedef``'s tree from its leaves.

    Same result as ``treedef.unflatten`` (dicts come back in sorted key order, as under ``jax.jit``),
    but made of plain Python constructors, so that ``torch.compile`` can trace it: Dynamo can step
    into neither optree's C++ ``unflatten`` nor (reliably) its registered unflatten functions.

    Example:
        >>> leaves, treedef = flatten({"b": [1, 2], "a": 3})
        >>> unflattener(treedef)([10, 20, 30])
        {'a': 10, 'b': [20, 30]}
    """

    def leaf(index: int) -> Callable[[list[Any]], Any]:
        return lambda leaves: leaves[index]

    def node(
        node_type: type, node_data: Any, children: list[Callable[[list[Any]], Any]]
    ) -> Callable[[list[Any]], Any]:
        build = _node_builder(node_type, node_data)
        return lambda leaves: build([child(leaves) for child in children])

    return treedef.walk(list(range(treedef.num_leaves)), node, leaf)


def _node_builder(node_type: type, node_data: Any) -> Callable[[list[Any]], Any]:
    """How to make a ``node_type`` node from its children, given optree's node data for it."""
    if node_type is dict or node_type is collections.OrderedDict:
        return lambda children: node_type(zip(node_data, children, strict=True))
    if node_type is collections.defaultdict:
        factory, keys = node_data
        return lambda children: collections.defaultdict(factory, zip(keys, children, strict=True))
    if node_type is list or node_type is tuple:
        return node_type
    if node_type is type(None):
        return lambda children: None
    if node_type is collections.deque:
        return lambda children: collections.deque(children, maxlen=node_data)
    if optree.is_namedtuple_class(node_type):
        return lambda children: node_type(*children)
    if optree.is_structseq_class(node_type):
        return node_type
    entry = optree.register_pytree_node.get(node_type, namespace=NAMESPACE)
    assert entry is not None, f"{node_type} is a pytree node without a registration"
    unflatten = entry.unflatten_func
    return lambda children: unflatten(node_data, children)
