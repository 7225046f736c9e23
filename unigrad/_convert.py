"""The public conversion API: pytrees of arrays moved between frameworks and NumPy.

For libraries whose own state is NumPy (a solver's current point, say) and whose users write the
cost in their framework: evaluate the cost alone with ``ug.to_backend`` / ``ug.to_numpy`` around it,
and its derivatives with ``ug.grad(..., backend=)`` and friends, which convert the same way.

Both functions map over the array leaves of a pytree (any framework's arrays; other leaves such as
numbers and strings are passed through), keep each array's dtype, and share memory where the two
frameworks allow it (DLPack or the array interface; see ``docs/api.md`` for which directions do).

Example:
    >>> import numpy as np, unigrad as ug
    >>> tree = ug.to_backend({"w": np.ones(2), "steps": 3}, "torch")
    >>> tree["w"], tree["steps"]
    (tensor([1., 1.], dtype=torch.float64), 3)
    >>> ug.to_numpy(tree)["w"]
    array([1., 1.])
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

import numpy as np

from unigrad import _tree
from unigrad._dispatch import describe_leaf
from unigrad._errors import ConversionError, PrecisionError
from unigrad.backends import Adapter, backend_name_of, get_adapter

PyTree = TypeVar("PyTree")


def to_backend(tree: PyTree, backend: str, *, device: Any = None) -> PyTree:
    """``tree`` with every array leaf (NumPy or any framework's) as an array of ``backend``.

    Each array keeps its dtype and, where the frameworks allow, its memory (no copy): NumPy to
    PyTorch always; NumPy to TensorFlow for 64-byte-aligned arrays; DLPack between frameworks on the
    same device. JAX arrays are immutable and are always copied from NumPy. 64-bit leaves going to
    JAX while its x64 mode is off are created in float64/int64 (under a scoped, thread-local
    ``jax.enable_x64(True)``, as ``ug.grad(..., backend="jax")`` does); to compute on them with your
    own JAX code, run it under :func:`precision_scope` (``with ug.precision_scope("jax"):``), or
    let ``ug.grad`` and the transforms convert.

    Args:
        tree: a pytree (dicts, lists, tuples, dataclasses, registered nodes; ``None`` is structure).
            Leaves that are no framework's array (numbers, strings, objects) are passed through.
        backend: ``'torch'``, ``'tensorflow'`` (``'tf'``), ``'jax'`` or ``'numpy'``.
        device: where converted leaves are placed: a device of the framework or a string
            (``'cuda:0'``, ``'gpu'``, ``'cpu:1'``); ``None``, the framework's default device
            (``torch.get_default_device()`` for PyTorch).

    Returns:
        A tree of the same structure; leaves already of ``backend`` are returned as they are (on
        their own device).

    Raises:
        UnknownBackendError, BackendNotInstalledError: ``backend`` is unknown or not installed.
        ConversionError: the framework refused a leaf (e.g. a dtype it has no equivalent for); the
            message names the leaf's path, dtype and both frameworks.
        PrecisionError: the leaf's dtype could not be kept (a device without 64-bit support).
        InvalidDeviceError: ``device`` is not a device of ``backend`` here.

    Example:
        >>> import numpy as np, unigrad as ug
        >>> x = np.arange(3.0)
        >>> t = ug.to_backend(x, "torch")
        >>> t
        tensor([0., 1., 2.], dtype=torch.float64)
        >>> t[0] = 5.0  # shares x's memory
        >>> x
        array([5., 1., 2.])
    """
    target = get_adapter(backend)
    place = target.placer(device)
    leaves, treedef = _tree.flatten(tree, "tree")
    owners = [backend_name_of(leaf) for leaf in leaves]
    scoped = target.scoped_dtypes
    wide = bool(scoped) and any(
        owner is not None and owner != target.name and get_adapter(owner).dtype_name(leaf) in scoped
        for leaf, owner in zip(leaves, owners, strict=True)
    )
    converted = []
    with target.precision_scope() if wide else nullcontext():
        for index, (leaf, owner) in enumerate(zip(leaves, owners, strict=True)):
            if owner is None or owner == target.name:
                converted.append(leaf)
                continue
            origin = get_adapter(owner)
            converted.append(_converted(tree, index, leaf, origin, target, _into(target, origin, place)))
    return treedef.unflatten(converted)


def precision_scope(backend: str) -> AbstractContextManager[Any]:
    """The context in which ``backend`` keeps the 64-bit dtypes that :func:`to_backend` gave its
    arrays, for code of your own that computes on them outside unigrad's calls.

    On JAX with its x64 mode off, ``ug.to_backend(float64_numpy, "jax")`` is float64, but JAX's own
    functions called outside any scope would mix it with float32 (``lax.complex requires arguments
    to have the same dtypes``). Inside this context (``jax.enable_x64(True)``: this thread only,
    restored on exit) they compute in float64, as unigrad's calls do. Other backends keep every
    dtype anyway: their context does nothing.

    Example:
        >>> import numpy as np, unigrad as ug
        >>> with ug.precision_scope("torch"):
        ...     str(ug.to_backend(np.ones(2), "torch").dtype)
        'torch.float64'
    """
    return get_adapter(backend).precision_scope()


def to_numpy(tree: PyTree) -> PyTree:
    """``tree`` with every framework array leaf as a NumPy array of the same dtype, on the host.

    Detached from any autodiff graph. Shares memory where the framework allows (PyTorch CPU tensors;
    JAX CPU arrays, as read-only views); copies otherwise (TensorFlow, accelerator memory).
    bfloat16 becomes ``ml_dtypes.bfloat16`` (NumPy has none of its own).

    Args:
        tree: a pytree whose leaves may be any framework's arrays; other leaves are passed through.

    Returns:
        A tree of the same structure with NumPy arrays for array leaves.

    Raises:
        ConversionError: a leaf could not be read as NumPy; the message names its path and dtype.

    Example:
        >>> import torch, unigrad as ug
        >>> ug.to_numpy({"w": torch.ones(2, requires_grad=True), "name": "layer1"})
        {'w': array([1., 1.], dtype=float32), 'name': 'layer1'}
    """
    leaves, treedef = _tree.flatten(tree, "tree")
    numpy = get_adapter("numpy")
    converted = []
    for index, leaf in enumerate(leaves):
        owner = backend_name_of(leaf)
        if owner is None or owner == "numpy":
            converted.append(leaf)
            continue
        origin = get_adapter(owner)
        converted.append(_converted(tree, index, leaf, origin, numpy, _reader(origin)))
    return treedef.unflatten(converted)


def _into(target: Adapter, origin: Adapter, place: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    if target.name == "numpy":
        return _reader(origin)
    if place is not None:
        return lambda leaf: place(target.from_foreign(leaf, origin))
    return lambda leaf: target.from_foreign(leaf, origin)


def _reader(origin: Adapter) -> Callable[[Any], Any]:
    # Always an ndarray (a 0-d one for a scalar): TensorFlow's .numpy() gives NumPy scalars there.
    return lambda leaf: np.asarray(origin.to_numpy(leaf))


def _converted(
    tree: Any, index: int, leaf: Any, origin: Adapter, target: Adapter, convert: Callable[[Any], Any]
) -> Any:
    """``convert(leaf)``, checked to have kept the dtype; errors name the leaf's path in ``tree``."""
    try:
        result = convert(leaf)
    except Exception as err:  # whatever the framework refused: say which leaf it was
        path = _tree.leaf_paths(tree, "tree")[index]
        raise ConversionError(
            f"{path} is {describe_leaf(leaf, origin.name)}, which {target.name} could not take "
            f"({type(err).__name__}: "
            f"{str(err)[:200]}): cast it to a dtype both frameworks have (float32, float64, int64)"
        ) from err
    wanted, got = origin.dtype_name(leaf), target.dtype_name(result)
    if wanted != got:
        path = _tree.leaf_paths(tree, "tree")[index]
        raise PrecisionError(
            f"{path} is a {origin.name} array of dtype {wanted}, but {target.name} made a {got} array "
            f"of it (on {target.device_of(result)}): cast it to {got} first, or use a device or "
            f"backend that has {wanted}"
        )
    return result
