"""The pytree boundary: every flatten and unflatten in unigrad goes through here (optree).

unigrad registers its own optree namespace so that containers optree does not know are nodes there,
without touching the global registry other libraries share: types registered with JAX
(``jax.tree_util.register_pytree_node``: Equinox modules, Flax structs, your own classes) are
flattened exactly as JAX flattens them, and plain :mod:`dataclasses` instances by their fields.

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
import sys
from collections.abc import Callable
from operator import itemgetter
from typing import Any

import optree

from unigrad._errors import CyclicTreeError

NAMESPACE = "unigrad"

_registered_types: set[type] = set()
# Leaf types known to be neither dataclasses nor JAX pytree nodes (arrays, numbers...): nothing to
# register for them.
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
    _registered_types.add(cls)


def _is_jax_node(leaf: Any) -> bool:
    """Whether JAX is loaded and flattens ``leaf`` as a container (a registered pytree node)."""
    jax = sys.modules.get("jax")
    if jax is None or isinstance(leaf, jax.Array):
        return False
    # Flattened one level (every child a leaf): a leaf comes back as itself, alone. (JAX's own
    # flatten_one_level is public only from JAX 0.10.2; this works on every JAX unigrad supports.)
    children, _ = jax.tree_util.tree_flatten(leaf, is_leaf=lambda child: child is not leaf)
    return not (len(children) == 1 and children[0] is leaf)


def _register_jax_node(cls: type, sample: Any) -> None:
    """Make a type registered with JAX a node here too, flattened by JAX's own registration.

    The node data is JAX's treedef of the node one level deep (its children as leaves), so
    unflattening is JAX's unflattening and static fields (Equinox's ``field(static=True)``, a Flax
    struct's ``pytree_node=False``) stay in the structure, as under ``jax.grad``. Error messages name
    children by attribute (``params.w``) when JAX knows them by attribute, by position otherwise.
    """
    import jax

    one_level = jax.tree_util.tree_flatten_with_path(sample, is_leaf=lambda child: child is not sample)[0]
    keys = [path[0] for path, _ in one_level]
    names = tuple(key.name for key in keys if isinstance(key, jax.tree_util.GetAttrKey))
    by_name = len(names) == len(keys) > 0

    def flatten_one_level(obj: Any) -> tuple[list[Any], Any, Any]:
        children, one_level = jax.tree_util.tree_flatten(obj, is_leaf=lambda child: child is not obj)
        entries = names if by_name and len(children) == len(names) else range(len(children))
        return children, one_level, entries

    def unflatten_one_level(one_level: Any, children: Any) -> Any:
        return jax.tree_util.tree_unflatten(one_level, list(children))

    optree.register_pytree_node(
        cls,
        flatten_one_level,  # type: ignore[arg-type]
        unflatten_one_level,
        path_entry_type=optree.GetAttrEntry if by_name else optree.SequenceEntry,
        namespace=NAMESPACE,
    )
    _registered_types.add(cls)


def _is_unregistered(leaf: Any) -> bool:
    return (
        not isinstance(leaf, type)
        and type(leaf) not in _registered_types
        and optree.register_pytree_node.get(type(leaf), namespace=NAMESPACE) is None
    )


def flatten(tree: Any, root: str = "params") -> tuple[list[Any], optree.PyTreeSpec]:
    """Flatten ``tree`` into leaves and a treedef; ``None`` is structure, not a leaf.

    Raises:
        CyclicTreeError: a container in ``tree`` holds itself; the message names the path (from
            ``root``, the argument's name) of the reference closing the cycle.
    """
    try:
        leaves, treedef = optree.tree_flatten(tree, none_is_leaf=False, namespace=NAMESPACE)
    except RecursionError:
        # Looked for only here, once optree has given up: normal calls pay nothing for the check.
        path = cycle_path(tree, root)
        if path is None:
            raise  # deep, not cyclic: optree's own message says so
        raise CyclicTreeError(
            f"{path} is {root} itself or a container holding it: {root} contains itself, so it has "
            f"no finite list of leaves to differentiate or pass on; give a tree without cycles "
            f"(remove the back-reference at {path}, or pass a copy of the containers without it)"
        ) from None
    return leaves, treedef


def cycle_path(tree: Any, root: str = "params") -> str | None:
    """The path of the first reference in ``tree`` to a container enclosing it, or ``None`` if acyclic.

    A depth-first walk, one level of optree's flattening at a time, that keeps the containers on the
    current path and those already finished: one visit per container even when subtrees are shared.
    Only called once a flatten has failed (see :func:`flatten`).

    Example:
        >>> params = [1.0, {"w": 2.0}]
        >>> params[1]["self"] = params
        >>> cycle_path(params)
        "params[1]['self']"
        >>> cycle_path([1.0, 2.0]) is None
        True
    """
    open_ids: set[int] = set()  # containers on the current path: meeting one again closes a cycle
    # Finished containers by id, kept alive so that no child made on the fly by a custom flatten
    # function can reuse a finished id.
    finished: dict[int, Any] = {}
    # (node, accessor of its path, whether it is being left rather than entered)
    stack: list[tuple[Any, optree.PyTreeAccessor, bool]] = [(tree, optree.PyTreeAccessor(), False)]
    while stack:
        node, accessor, leaving = stack.pop()
        node_id = id(node)
        if leaving:
            open_ids.discard(node_id)
            finished[node_id] = node
            continue
        if node_id in open_ids:
            return accessor.codify(root)
        if node_id in finished:
            continue
        children = _children_with_accessors(node)
        if not children:
            continue
        open_ids.add(node_id)
        stack.append((node, accessor, True))
        for child, child_accessor in reversed(children):
            stack.append((child, optree.PyTreeAccessor((*accessor, *child_accessor)), False))
    return None


def _children_with_accessors(node: Any) -> list[tuple[Any, optree.PyTreeAccessor]]:
    """``node``'s children (one level down) with their one-step accessors; ``[]`` for a leaf."""
    if node is None or not _is_node(node):
        return []
    # Everything below the node itself is a leaf here, so a child that is the node is not entered.
    entered = [False]

    def is_leaf(_: Any) -> bool:
        was_entered = entered[0]
        entered[0] = True
        return was_entered

    accessors, children, _ = optree.tree_flatten_with_accessor(
        node, is_leaf, none_is_leaf=False, namespace=NAMESPACE
    )
    return list(zip(children, accessors, strict=True))


def _is_node(node: Any) -> bool:
    try:
        optree.tree_flatten_one_level(node, none_is_leaf=False, namespace=NAMESPACE)
    except ValueError:  # optree's answer for a leaf
        return False
    return True


def register_container_leaves(leaves: list[Any]) -> bool:
    """Register the container types found among ``leaves`` (JAX pytree nodes first, then dataclasses);
    return whether any was new, in which case the tree must be flattened again.

    Looks at one leaf per distinct type, so a call pays per type, not per leaf.
    """
    # Whether a leaf is an unregistered container depends on its type alone: once a type is seen to
    # be plain it is skipped with one set operation (a type registered with JAX after that is not
    # picked up).
    if _plain_types.issuperset(map(type, leaves)):
        return False
    found = False
    for leaf_type, leaf in dict(zip(map(type, leaves), leaves, strict=True)).items():
        if not _is_unregistered(leaf):
            continue
        if _is_jax_node(leaf):  # before the dataclass check: Equinox modules are dataclasses too
            _register_jax_node(leaf_type, leaf)
            found = True
        elif dataclasses.is_dataclass(leaf_type):
            _register_dataclass(leaf_type)
            found = True
        else:
            _plain_types.add(leaf_type)
    return found


def leaf_paths(tree: Any, root: str = "params") -> list[str]:
    """Human-readable paths of the leaves of ``tree``, in flatten order (e.g. ``params['w'][0]``)."""
    accessors = optree.tree_accessors(tree, none_is_leaf=False, namespace=NAMESPACE)
    return [accessor.codify(root) for accessor in accessors]


def tree_map(fn: Callable[[Any], Any], tree: Any) -> Any:
    """Apply ``fn`` to every leaf of ``tree`` (unigrad's namespace, ``None`` kept as structure)."""
    return optree.tree_map(fn, tree, none_is_leaf=False, namespace=NAMESPACE)


def rebuilder(treedef: optree.PyTreeSpec) -> Callable[[list[Any]], Any]:
    """The cheapest function rebuilding ``treedef``'s tree from its leaves: ``treedef.unflatten``'s result.

    A list, tuple or dict holding leaves only (the commonest params) is rebuilt by its own
    constructor: in a real call, with the caches cold after the framework ran, optree's unflatten
    costs about 4.5 µs and ``dict(zip(...))`` about 2 (measured on the 2-core machine). A dict comes
    back in its original insertion order, as from optree. Any other tree: ``treedef.unflatten``.

    Example:
        >>> leaves, treedef = flatten({"w": 1.0, "b": 2.0})
        >>> rebuilder(treedef)([20.0, 10.0])
        {'w': 10.0, 'b': 20.0}
    """
    kind = treedef.type
    if treedef.num_nodes != treedef.num_leaves + 1 or kind not in (list, tuple, dict):
        return treedef.unflatten  # deeper, a None child, another container, or a bare leaf
    if kind is not dict:
        return kind  # type: ignore[no-any-return]
    # Unflattening the leaf positions gives the dict's own key order and where each value is.
    positions = treedef.unflatten(list(range(treedef.num_leaves)))
    keys = tuple(positions)
    order = tuple(positions.values())
    if order == tuple(range(len(order))):
        return lambda leaves: dict(zip(keys, leaves, strict=True))
    in_dict_order = itemgetter(*order)  # two keys at least: one or none are always in order
    return lambda leaves: dict(zip(keys, in_dict_order(leaves), strict=True))


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
