"""The extra pytrees of a transformation, checked against what they pair with; its outputs, checked.

``jvp``'s tangents and ``hvp``'s vector must be like the params, ``vjp``'s cotangent like the
output: :func:`matching` flattens such a tree, checks its structure and every leaf's shape and
dtype (errors name both leaves' paths), and converts its leaves to the computing framework;
``per_example_grads``' batch arrays must share a leading axis (:func:`check_batch`).
:class:`FlatOutputs` flattens what ``fn`` returns and refuses anything but floating arrays.

Example:
    >>> import numpy as np, unigrad as ug
    >>> from unigrad._dispatch import plan_call
    >>> from unigrad._matching import like_params
    >>> params = {"w": np.zeros(2), "b": np.zeros(())}
    >>> plan = plan_call(params, "numpy")
    >>> like_params({"w": np.ones(2), "b": np.ones(())}, "vector", params, plan)
    [array(1.), array([1., 1.])]
    >>> try:
    ...     like_params({"w": np.ones(3), "b": np.ones(())}, "vector", params, plan)
    ... except ug.StructureMismatchError as err:
    ...     print(err)
    vector['w'] has shape (3,) but params['w'] has shape (2,): they must match
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unigrad import _tree
from unigrad._complex import complex_output_error
from unigrad._dispatch import CallPlan, _flatten_tree, to_backend
from unigrad._errors import DtypeMismatchError, InvalidOutputError, StructureMismatchError
from unigrad.backends import FLOAT_DTYPES, Adapter, backend_name_of, get_adapter


class FlatOutputs:
    """``call`` with its output flattened to a list of floating arrays; remembers the structure."""

    def __init__(self, call: Callable[[list[Any]], Any], adapter: Adapter, name: str) -> None:
        self.call, self.adapter, self.name = call, adapter, name
        self.treedef: Any = None

    def __call__(self, leaves: list[Any]) -> list[Any]:
        out = self.call(leaves)
        out_leaves, self.treedef = _tree.flatten(out, "output")
        adapter = self.adapter
        for index, leaf in enumerate(out_leaves):
            if not adapter.is_array(leaf) or adapter.dtype_name(leaf) not in FLOAT_DTYPES:
                path = _tree.leaf_paths(out, root="output")[index]
                found = getattr(leaf, "dtype", type(leaf).__name__)
                if adapter.is_array(leaf) and adapter.dtype_name(leaf).startswith("complex"):
                    raise complex_output_error(self.name, path, adapter.dtype_name(leaf), adapter.name)
                raise InvalidOutputError(
                    f"{self.name}: fn's {path} is {found} on backend {adapter.name!r}; fn must return a "
                    f"{adapter.name} floating array or a pytree of them (cast integer outputs, and move "
                    f"non-array values out of the output)"
                )
        if not out_leaves:
            raise InvalidOutputError(f"{self.name}: fn returned {out!r:.60}, which holds no array")
        return out_leaves


def describe_structure_mismatch(tree: Any, root: str, like: Any, like_root: str) -> str:
    """How ``tree``'s structure differs from ``like``'s: the leaves it lacks or adds (three of each)."""
    paths = {path.removeprefix(root) for path in _tree.leaf_paths(tree, root)}
    like_paths = {path.removeprefix(like_root) for path in _tree.leaf_paths(like, like_root)}
    missing = sorted(like_paths - paths)
    extra = sorted(paths - like_paths)
    parts = []
    if missing:
        parts.append(f"it lacks {', '.join(root + p for p in missing[:3])}")
    if extra:
        parts.append(f"it has {', '.join(root + p for p in extra[:3])}, which {like_root} does not")
    if not parts:
        parts.append(f"its containers differ: {_tree.flatten(tree)[1]} vs {_tree.flatten(like)[1]}")
    return "; ".join(parts)


def matching(
    tree: Any,
    root: str,
    like_tree: Any,
    like_treedef: Any,
    like_leaves: list[Any],
    like_adapters: list[Adapter],
    like_root: str,
    adapter: Adapter,
    place: Callable[[Any], Any] | None = None,
) -> list[Any]:
    """The leaves of ``tree`` in ``adapter``'s framework, checked leaf by leaf against ``like_leaves``.

    Raises:
        StructureMismatchError: another structure, or a leaf of another shape.
        DtypeMismatchError: a leaf that is not an array, or has another dtype.
    """
    if len(like_leaves) == 1 and like_tree is like_leaves[0] and type(tree) is type(like_tree):
        # A bare array like a bare array param (a solver's point and direction): one leaf each,
        # nothing to flatten or compare structurally.
        leaves = [tree]
    else:
        leaves, treedef = _flatten_tree(tree, root)
        if treedef != like_treedef:
            detail = describe_structure_mismatch(tree, root, like_tree, like_root)
            raise StructureMismatchError(
                f"{root} must have the structure of {like_root} (one array per leaf, same containers): "
                f"{detail}"
            )

    def paths_at(index: int) -> tuple[str, str]:  # only on the error path: paths cost a tree walk
        return _tree.leaf_paths(tree, root)[index], _tree.leaf_paths(like_tree, like_root)[index]

    converted = []
    for index, (leaf, like, like_adapter) in enumerate(zip(leaves, like_leaves, like_adapters, strict=True)):
        if type(leaf) is type(like) and leaf.shape == like.shape and leaf.dtype == like.dtype:
            # The common case (a vector of the params' own kind): the framework's own comparisons,
            # several us cheaper per leaf than the normalised shapes and dtype names below.
            own = like_adapter is adapter
            converted.append(adapter.prepare_data_leaf(leaf) if own else to_backend(adapter, leaf, place))
            continue
        owner = backend_name_of(leaf)
        if owner is None:
            path, like_path = paths_at(index)
            raise DtypeMismatchError(
                f"{path} is a {type(leaf).__name__}, not an array: pass an array of the shape and dtype "
                f"of {like_path}"
            )
        origin = get_adapter(owner)
        shape, want_shape = origin.shape(leaf), like_adapter.shape(like)
        if shape != want_shape:
            path, like_path = paths_at(index)
            raise StructureMismatchError(
                f"{path} has shape {shape} but {like_path} has shape {want_shape}: they must match"
            )
        dtype, want_dtype = origin.dtype_name(leaf), like_adapter.dtype_name(like)
        if dtype != want_dtype:
            path, like_path = paths_at(index)
            raise DtypeMismatchError(
                f"{path} has dtype {dtype} but {like_path} has dtype {want_dtype}: cast it to {want_dtype}"
            )
        converted.append(to_backend(adapter, leaf, place))
    return converted


def like_params(tree: Any, root: str, params: Any, plan: CallPlan) -> list[Any]:
    """:func:`matching` against the planned ``params``: tangents, a vector, in the plan's framework."""
    origins = plan.origins or [plan.adapter] * len(plan.originals)
    return matching(
        tree, root, params, plan.treedef, plan.originals, origins, "params", plan.adapter, plan.place
    )


def check_batch(batch: Any, leaves: list[Any], positions: list[int]) -> None:
    """Check that ``batch``'s array leaves (at ``positions`` of its ``leaves``) share a leading axis.

    Raises:
        StructureMismatchError: no array, a scalar array, or two arrays of different batch sizes.
    """
    if not positions:
        raise StructureMismatchError(
            f"batch holds no array (got {batch!r:.60}); pass arrays whose leading axis is the batch axis"
        )
    sizes = {}
    for index in positions:
        shape = get_adapter(backend_name_of(leaves[index]) or "numpy").shape(leaves[index])
        if not shape:
            path = _tree.leaf_paths(batch, "batch")[index]
            raise StructureMismatchError(
                f"{path} is a scalar array, with no leading batch axis: give it one, or close over "
                f"it in loss_fn if it is the same for every example"
            )
        sizes[index] = shape[0]
    first = positions[0]
    for index in positions[1:]:
        if sizes[index] != sizes[first]:
            paths = _tree.leaf_paths(batch, "batch")
            raise StructureMismatchError(
                f"batch arrays disagree on the batch size: {paths[first]} has {sizes[first]} examples "
                f"(leading axis) but {paths[index]} has {sizes[index]}; every array in batch needs the "
                f"same leading axis"
            )
