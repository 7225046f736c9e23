"""What the launcher and its workers share: the loss by import name, NumPy copies, batch sizes.

:mod:`unigrad.distributed._launch` names the loss with :func:`importable_name` and writes NumPy
copies of the params and the batch (:func:`numpy_tree`) into the job file;
:mod:`unigrad.distributed._worker` imports the loss back with :func:`resolve`. Both count examples
with :func:`len_of`.

Example:
    >>> import numpy as np
    >>> from unigrad.distributed._job import importable_name, len_of, resolve
    >>> importable_name(len_of)
    'unigrad.distributed._job:len_of'
    >>> resolve("unigrad.distributed._job:len_of") is len_of
    True
    >>> len_of({"x": np.zeros((5, 2)), "scale": 2.0})
    5
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from unigrad import _tree
from unigrad._errors import NotImportableError
from unigrad.backends import backend_name_of, get_adapter


def importable_name(fn: Callable[..., Any] | str) -> str:
    """``'module:qualname'`` under which worker processes can import ``fn`` (strings pass through).

    Raises:
        NotImportableError: ``fn`` is a lambda, a closure or a method of a local class, lives in
            ``__main__``, or its module does not give it back under that name.
    """
    if isinstance(fn, str):
        resolve(fn)
        return fn
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    what = f"{qualname or type(fn).__name__} from module {module!r}"
    fix = (
        "workers are separate processes that import the loss function by name: define it at the top "
        "level of an importable module (not in __main__, not a lambda or a closure), or pass its name "
        "as 'package.module:function'"
    )
    if not module or not qualname or "<" in qualname or module == "__main__":
        raise NotImportableError(f"example_loss_fn {what} cannot be imported by worker processes; {fix}")
    name = f"{module}:{qualname}"
    try:
        found = resolve(name)
    except NotImportableError:
        found = None
    if found is not fn:
        raise NotImportableError(f"example_loss_fn {what} is not what {name!r} imports; {fix}")
    return name


def resolve(name: str) -> Callable[..., Any]:
    """The function named ``'module:qualname'``.

    Raises:
        NotImportableError: the module cannot be imported, or it has no such attribute.
    """
    module_name, _, qualname = name.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError) as err:
        raise NotImportableError(
            f"cannot import the loss {name!r} ({type(err).__name__}: {err}); give it as "
            f"'package.module:function' importable from this environment"
        ) from err
    return target


def numpy_tree(tree: Any) -> Any:
    """``tree`` with every framework array replaced by a NumPy copy; other leaves unchanged."""

    def convert(leaf: Any) -> Any:
        owner = backend_name_of(leaf)
        return leaf if owner is None else np.asarray(get_adapter(owner).to_numpy(leaf))

    return _tree.tree_map(convert, tree)


def len_of(batch: Any) -> int:
    """The number of examples in ``batch`` (axis 0 of its first array leaf)."""
    return next(leaf.shape[0] for leaf in _tree.flatten(batch)[0] if hasattr(leaf, "shape"))
