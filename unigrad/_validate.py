"""The checks a call's params must pass, and the errors that say what is wrong and how to fix it.

Every message names the leaf's path (``params['layer1']['w']``), what it is (framework, type, dtype)
and the backend, and says what to do. Used by :mod:`unigrad._dispatch` when it plans a call.

Example:
    >>> import numpy as np
    >>> from unigrad._validate import describe_leaf
    >>> describe_leaf(np.zeros(2, np.int64), "numpy"), describe_leaf("text", None)
    ('a numpy ndarray of dtype int64', 'a str value')
"""

from __future__ import annotations

import sys
from operator import attrgetter
from typing import Any

from unigrad import _tree
from unigrad._errors import BackendRequiredError, InvalidParamsError, MixedBackendsError, PrecisionError
from unigrad.backends import (
    COMPLEX_DTYPES,
    FLOAT_DTYPES,
    Adapter,
    framework_backends,
    get_adapter,
    listed,
)

# (backend, dtype object) -> NumPy-style dtype name; saves a string conversion per leaf per call.
_dtype_names: dict[tuple[str, Any], str] = {}
_get_dtype = attrgetter("dtype")


def raise_not_an_array(params: Any, leaves: list[Any], owners: list[str | None]) -> None:
    """Raise :class:`InvalidParamsError` for the first leaf of ``params`` that is no array."""
    index = owners.index(None)
    path = _tree.leaf_paths(params)[index]
    raise InvalidParamsError(
        f"{path} is {describe_leaf(leaves[index], None)}, not an array: "
        + (
            model_hint(leaves[index])
            or f"params leaves must be floating arrays of {listed([*framework_backends(), 'numpy'])} "
            "(wrap numbers with np.asarray and pass backend=, or register custom containers with "
            "jax.tree_util or optree)"
        )
    )


def model_hint(leaf: Any) -> str | None:
    """How to pass a framework's model object as params, for the models people pass by mistake."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(leaf, torch.nn.Module):
        return (
            "pass its parameters, dict(model.named_parameters()), as params, and call the model "
            "inside loss_fn with torch.func.functional_call(model, params, (x,))"
        )
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(leaf, keras.layers.Layer):
        return (
            "pass its variables, model.trainable_variables, as params, and inside loss_fn either call "
            "the model (it reads those variables) or, as a pure function, "
            "model.stateless_call(params, model.non_trainable_variables, x)[0]"
        )
    return None


def describe_leaf(leaf: Any, owner: str | None) -> str:
    """``"a torch Tensor of dtype int64"``, ``"a str value"``: what a message says a leaf is."""
    if owner is None:
        dtype = getattr(leaf, "dtype", None)
        return f"a {type(leaf).__qualname__} value" + (f" of dtype {dtype}" if dtype is not None else "")
    return f"a {owner} {type(leaf).__qualname__} of dtype {get_adapter(owner).dtype_name(leaf)}"


def dtype_problem(origin: Adapter, target: Adapter, leaf: Any) -> str | None:
    key = (origin.name, getattr(leaf, "dtype", None))
    name = _dtype_names.get(key)
    if name is None:
        name = origin.dtype_name(leaf)
        if key[1] is not None:
            _dtype_names[key] = name
    if name not in FLOAT_DTYPES and name not in COMPLEX_DTYPES:
        return (
            "only floating parameters (float16, bfloat16, float32, float64) and complex ones "
            "(complex64, complex128) can be differentiated: cast it to a float dtype, or pass it in "
            "data instead of params"
        )
    # Not cached: it can depend on global modes (JAX's x64 flag) that change between calls.
    return target.param_problem(name)


def raise_on_dtype_problem(params: Any, index: int, leaf: Any, origin: Adapter, target: Adapter) -> None:
    problem = dtype_problem(origin, target, leaf)
    if problem is not None:
        path = _tree.leaf_paths(params)[index]
        error = InvalidParamsError if "only floating" in problem else PrecisionError
        raise error(f"{path} is {describe_leaf(leaf, origin.name)} on backend {target.name!r}: {problem}")


def check_native_dtypes(params: Any, leaves: list[Any], adapter: Adapter) -> None:
    """The dtype check of leaves that are all ``adapter``'s arrays, once per distinct dtype.

    Raises for the first leaf (in flatten order) whose dtype has a problem, exactly as checking every
    leaf in turn would.
    """
    for leaf in dict(zip(map(_get_dtype, leaves), leaves, strict=True)).values():
        if dtype_problem(adapter, adapter, leaf) is not None:
            break
    else:
        return
    for index, leaf in enumerate(leaves):
        raise_on_dtype_problem(params, index, leaf, adapter, adapter)


def check_kept_dtypes(
    params: Any, leaves: list[Any], inputs: list[Any], origins: list[Adapter], adapter: Adapter
) -> None:
    """Raise :class:`PrecisionError` for a leaf whose dtype the conversion did not keep (a device
    without 64-bit support, say): the scope could not honour it."""
    for index, (leaf, converted, origin) in enumerate(zip(leaves, inputs, origins, strict=True)):
        wanted, got = origin.dtype_name(leaf), adapter.dtype_name(converted)
        if wanted != got:
            path = _tree.leaf_paths(params)[index]
            raise PrecisionError(
                f"{path} is {describe_leaf(leaf, origin.name)} but backend {adapter.name!r} made a "
                f"{got} array of it on {adapter.device_of(converted)}, even with its 64-bit mode on "
                f"for the call: cast the parameter to {got}, or use a device or backend with {wanted}"
            )


def infer_backend(params: Any, leaves: list[Any], owners: list[str | None]) -> str:
    distinct = list(dict.fromkeys(owners))
    if distinct == ["numpy"]:
        raise BackendRequiredError(
            "params are NumPy arrays, which cannot be differentiated by themselves: pass "
            f"backend={listed(framework_backends(), quoted=True)} (or 'numpy' for the "
            "finite-difference reference); gradients come back as NumPy arrays of the same dtype"
        )
    if len(distinct) > 1:
        paths = _tree.leaf_paths(params)
        examples = ", ".join(
            f"{paths[owners.index(name)]} is {describe_leaf(leaves[owners.index(name)], name)}"
            for name in distinct
        )
        raise MixedBackendsError(
            f"params mix leaves of {len(distinct)} backends ({examples}): convert them to one "
            f"framework, or pass backend= to say which one computes (the others are converted)"
        )
    return str(distinct[0])
