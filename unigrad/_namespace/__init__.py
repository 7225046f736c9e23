"""A backend-neutral array namespace: write a loss once, run it on PyTorch, TensorFlow, JAX, MLX and NumPy.

``namespace(x)`` returns the :class:`Namespace` of the framework that owns ``x``: the differentiable
part of the Array API standard (2024.12: core, ``linalg`` and ``fft`` extensions) plus a few helpers,
with NumPy semantics on every backend. PyTorch, JAX and NumPy are served by array-api-compat (with
corrections, ``_extras``); TensorFlow and MLX, which it does not cover, by shims of our own
(``_tensorflow*.py``, ``_mlx*.py``). Functions outside the subset are refused, so a loss that runs on
one backend runs on all of them. See ``docs/namespace.md`` for the table of names, their semantics
and their status per backend.

What other modules (the conformance case table, the fuzzer) may rely on, kept stable:

* ``GUARANTEED``: every function name, ``linalg.*`` and ``fft.*`` dotted (``xp.linalg.solve``);
* ``NOT_DIFFERENTIABLE``: the guaranteed names with no gradient anywhere (creation functions,
  comparisons, logical functions, ``argmax``...); every other name differentiates on every backend
  except for
* the declared gaps: ``unsupported(backend) -> {name: reason}``, ``gap_for(backend, name,
  **arguments) -> Gap | None`` for one call (``ord=2``, ``n=-1``, ``shape=...``), and ``GAPS``, the
  table itself (``unigrad._namespace._gaps``);
* ``EXTRAS`` (names outside the standard), ``DTYPE_NAMES``, and the named tuples ``SlogdetResult``,
  ``EighResult``, ``QRResult``, ``SVDResult``.

Creation functions (``asarray``, ``zeros``, ``eye``, ``linspace``...) put new arrays on the device of
the array the namespace was made for (``unigrad._namespace._devices``): one cached namespace per
backend and device. ``namespace("torch")`` asks for a backend by name.

Importing this module imports no framework and nothing of array-api-compat; a backend's namespace
is built (and cached) the first time one of its arrays is seen.

Example:
    >>> import numpy as np
    >>> from unigrad._namespace import namespace, unsupported
    >>> xp = namespace(np.ones(3))
    >>> xp.name, float(xp.var(xp.asarray([1.0, 2.0, 3.0])))
    ('numpy', 0.6666666666666666)
    >>> float(xp.fft.irfft(xp.fft.rfft(xp.asarray([1.0, 2.0, 3.0, 4.0])))[1])
    2.0
    >>> unsupported("mlx")["linalg.inv"]
    'MLX 0.32 has no VJP for Inverse'
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from unigrad import _tree
from unigrad._errors import InvalidParamsError, UnknownBackendError
from unigrad._namespace._devices import DEVICE_ATTRIBUTE, device_key, pin, placement, requested
from unigrad._namespace._gaps import GAPS, Gap, gap_for, unsupported
from unigrad._namespace._names import (
    DTYPE_NAMES,
    EXTENSIONS,
    EXTRAS,
    GUARANTEED,
    NOT_DIFFERENTIABLE,
    EighResult,
    QRResult,
    SlogdetResult,
    SVDResult,
)
from unigrad.backends import BACKENDS, backend_name_of, canonical_name, get_adapter

__all__ = [
    "DTYPE_NAMES",
    "EXTRAS",
    "GAPS",
    "GUARANTEED",
    "NOT_DIFFERENTIABLE",
    "EighResult",
    "Gap",
    "Namespace",
    "QRResult",
    "SVDResult",
    "SlogdetResult",
    "gap_for",
    "namespace",
    "unsupported",
]

_DOCS_HINT = (
    "the guaranteed names are listed in docs/namespace.md (and in "
    "`from unigrad._namespace import GUARANTEED`); call the framework directly for anything else"
)


class _Functions:
    """Attributes for the guaranteed functions; any other name is refused with a pointer to the list."""

    _prefix = ""

    def __init__(self, name: str, functions: Mapping[str, Callable[..., Any]]) -> None:
        self.name = name
        # Instance attributes, so a guaranteed lookup costs a dict hit and __getattr__ only runs
        # for names outside the subset.
        self.__dict__.update(functions)

    def __getattr__(self, attr: str) -> Any:
        backend = self.__dict__.get("name", "?")
        raise AttributeError(
            f"{self._prefix + attr!r} is not in the guaranteed subset of unigrad's array namespace "
            f"(backend {backend!r}), so a loss using it would not run on every backend; {_DOCS_HINT}"
        )

    def __dir__(self) -> list[str]:
        return sorted(key for key in self.__dict__ if not key.startswith("_"))


class _Extension(_Functions):
    """The functions of one of the standard's extensions: ``xp.linalg``, ``xp.fft``."""

    def __init__(self, name: str, extension: str, functions: Mapping[str, Callable[..., Any]]) -> None:
        super().__init__(name, functions)
        self._prefix = f"{extension}."

    def __repr__(self) -> str:
        return f"<unigrad namespace {self.name!r}.{self._prefix[:-1]}>"


class Namespace(_Functions):
    """The guaranteed array functions of one backend, with NumPy / Array API semantics.

    Get one with :func:`namespace`. Attributes: every name in ``GUARANTEED`` (``linalg.solve`` as
    ``xp.linalg.solve``, ``fft.rfft`` as ``xp.fft.rfft``), the dtypes in ``DTYPE_NAMES`` (the
    framework's own dtype objects, e.g. ``torch.float32``), ``name``, the backend (``'torch'``,
    ``'tensorflow'``, ``'jax'``, ``'mlx'`` or ``'numpy'``), and ``device``, where the creation
    functions (``asarray``, ``zeros``, ``eye``, ``linspace``...) put new arrays when no ``device=`` is
    given (``None``: where the framework puts them by default). Any other attribute raises
    ``AttributeError``.
    """

    name: str
    device: Any
    linalg: Any
    fft: Any

    def __init__(
        self,
        name: str,
        functions: Mapping[str, Callable[..., Any]],
        dtypes: Mapping[str, Any],
        device: Any = None,
    ) -> None:
        top = {key: fn for key, fn in functions.items() if "." not in key}
        super().__init__(name, {**top, **dtypes})
        self.device = device
        for extension in EXTENSIONS:
            prefix = f"{extension}."
            members = {
                key.removeprefix(prefix): fn for key, fn in functions.items() if key.startswith(prefix)
            }
            setattr(self, extension, _Extension(name, extension, members))
        # What a namespace pinned to another device is made of.
        self._functions, self._dtypes = dict(functions), dict(dtypes)

    def _on_device(self, device: Any) -> Namespace:
        """This backend's namespace with creation functions that default to ``device``."""
        placed = pin(self._functions, device, lambda obj: _owner(obj) == self.name)
        return Namespace(self.name, {**self._functions, **placed}, self._dtypes, device)

    def __getattr__(self, attr: str) -> Any:
        if attr in DTYPE_NAMES:
            backend = self.__dict__.get("name", "?")
            hint = " (install ml_dtypes for NumPy's bfloat16)" if backend == "numpy" else ""
            raise AttributeError(f"dtype {attr!r} is not available on backend {backend!r}{hint}")
        return super().__getattr__(attr)

    def __repr__(self) -> str:
        where = "" if self.device is None else f" on {self.device}"
        return f"<unigrad namespace {self.name!r}{where}: {len(GUARANTEED)} guaranteed functions>"


# backend -> its namespace that leaves placement to the framework
_namespaces: dict[str, Namespace] = {}
# (backend, device) -> the namespace pinned to that device
_pinned: dict[tuple[str, Any], Namespace] = {}
# backend -> device key of a leaf (_devices.device_key) -> its namespace, pinned or not
_by_device: dict[str, dict[Any, Namespace]] = {}
# array type -> (the attribute holding its device key, None where the type has no concrete device,
# such as JAX tracers; that backend's _by_device): what namespace(array) looks up, a dict hit a step
_routes: dict[type, tuple[str | None, dict[Any, Namespace]]] = {}
# leaf type -> backend, or "" for types that are never arrays (containers, numbers...). Caching the
# negative answers too means a warm cache is never missed, so torch.compile's guards on this lookup
# stay valid (a miss reads sys.modules, whose length Dynamo would then guard on).
_owner_by_type: dict[type, str] = {}


def _owner(leaf: Any) -> str | None:
    """The backend of ``leaf`` (JAX tracers included), or ``None``. Never imports a framework."""
    owner = _owner_by_type.get(type(leaf))
    if owner is not None:
        return owner or None
    owner = backend_name_of(leaf)
    if owner is None:
        # JAX tracers are jax.Array instances only through isinstance (not issubclass), so a
        # type-based check misses them; test instances against the imported frameworks too.
        for info in BACKENDS.values():
            module = sys.modules.get(info.module)
            if module is not None and isinstance(leaf, info.array_types(module)):
                owner = info.name
                break
    if owner is not None:
        _owner_by_type[type(leaf)] = owner
    elif not type(leaf).__module__.startswith("jax"):  # a JAX tracer type may hold arrays or not
        _owner_by_type[type(leaf)] = ""
    return owner


def _first_array_leaf(tree: Any) -> tuple[Any, str]:
    leaves, _ = _tree.flatten(tree)
    if _tree.register_container_leaves(leaves):
        leaves, _ = _tree.flatten(tree)
    for leaf in leaves:
        owner = _owner(leaf)
        if owner is not None:
            return leaf, owner
    if not leaves:
        found = f"got {tree!r:.60}, which holds no leaves"
    elif len(leaves) == 1 and leaves[0] is tree:
        found = f"got {type(tree).__name__} {tree!r:.60}"
    else:
        kinds = sorted({type(leaf).__name__ for leaf in leaves})
        found = f"got a {type(tree).__name__} whose {len(leaves)} leaves hold no array (leaf types: {kinds})"
    raise InvalidParamsError(
        f"namespace(x) needs an array of PyTorch, TensorFlow, JAX, MLX or NumPy, or a pytree holding "
        f"one; {found}. Python numbers and lists are not arrays: pass the params (or convert with "
        f"np.asarray), or a backend's name such as namespace('torch'), so the namespace knows which "
        f"framework to use"
    )


def _build(owner: str, leaf: Any) -> Namespace:
    from unigrad._namespace._assembly import functions_and_dtypes

    return Namespace(owner, *functions_and_dtypes(owner, leaf))


def _unpinned(owner: str, leaf: Any = None) -> Namespace:
    found = _namespaces.get(owner)
    if found is None:
        found = _namespaces.setdefault(owner, _build(owner, leaf))
    return found


def _on_device(owner: str, device: Any, leaf: Any = None) -> Namespace:
    """The namespace of ``owner`` pinned to ``device`` (a device ``requested`` or ``placement`` gave)."""
    if device is None:
        return _unpinned(owner, leaf)
    found = _pinned.get((owner, device))
    if found is None:
        found = _pinned.setdefault((owner, device), _unpinned(owner, leaf)._on_device(device))
    return found


def _following(x: Any, device: Any) -> Namespace:
    """``namespace(x, device=device)`` by the general path, remembering what it decided."""
    owner = _owner(x)
    if owner is None:
        if isinstance(x, str):
            return _by_name(x, device)
        leaf, _ = _first_array_leaf(x)
        return namespace(leaf, device=device)
    if device is not None:
        return _on_device(owner, requested(owner, device), x)
    key = device_key(owner, x)
    by_key = _by_device.setdefault(owner, {})
    found = by_key.get(key)
    if found is None:
        found = by_key.setdefault(key, _on_device(owner, placement(owner, key), x))
    attribute = DEVICE_ATTRIBUTE.get(owner)
    if key is None or getattr(x, attribute, None) == key:
        # Not for a type whose key is read indirectly (Keras variables): the general path reads it.
        _routes[type(x)] = (None if key is None else attribute, by_key)
    return found


class _NeitherArrayNorBackendError(UnknownBackendError, InvalidParamsError):
    """A string given to ``namespace`` that names no backend: it is no array either, so both apply."""


def _by_name(name: str, device: Any) -> Namespace:
    try:
        owner = canonical_name(name)
    except UnknownBackendError as err:
        raise _NeitherArrayNorBackendError(
            f"{err}. namespace(x) needs an array of PyTorch, TensorFlow, JAX, MLX or NumPy, a pytree "
            f"holding one, or a backend's name"
        ) from None
    get_adapter(owner)  # BackendNotInstalledError; imports the framework, which was asked for
    return _on_device(owner, None if device is None else requested(owner, device))


def namespace(x: Any, *, device: Any = None) -> Namespace:
    """The guaranteed array functions for the framework of ``x``, with NumPy semantics.

    Call it inside a loss function to write the loss once for every backend: the first array leaf
    of ``x`` decides the framework (tracers inside ``jax.grad``, tensors that require grad and
    tensors inside a ``tf.GradientTape`` included), and the namespace's functions differentiate
    through :func:`unigrad.grad` on that framework. Operators on the arrays themselves (``+``,
    ``@``, ``.sum()``) keep each framework's own rules; use the namespace's functions instead.

    New arrays follow that leaf's device: ``xp.eye(n)``, ``xp.zeros(...)``, ``xp.asarray([...])``
    go where the leaf lives (a CUDA tensor's namespace creates on that GPU). A leaf on the
    framework's default device (PyTorch's CPU, TensorFlow's ``CPU:0``, ``jax.devices()[0]``), a JAX
    tracer or a symbolic TensorFlow tensor leaves placement to the framework. MLX (unified memory)
    and NumPy have one memory. An explicit ``device=`` on a creation function always wins.

    Args:
        x: an array of PyTorch, TensorFlow, JAX, MLX or NumPy, or any pytree (dict, list,
            dataclass...) holding at least one; the first array leaf decides the backend. Or a
            backend's name (``'torch'``, ``'tensorflow'`` / ``'tf'``, ``'jax'``, ``'mlx'``,
            ``'numpy'``), which imports that framework and gives its namespace on the framework's
            default device.
        device: where creation functions put new arrays instead, as the framework names devices:
            a ``torch.device`` or string (``"cuda:1"``, ``"meta"``), a TensorFlow device string
            (``"/GPU:1"``), a ``jax.Device``; NumPy takes ``"cpu"`` only and MLX any of its
            devices, which share one memory.

    Returns:
        The backend's :class:`Namespace`: one cached object per backend and device.

    Raises:
        InvalidParamsError: ``x`` holds no array of a known framework (a ``TypeError``).
        UnknownBackendError: ``x`` is a string that names no backend (a ``ValueError``, and an
            ``InvalidParamsError`` too, since it is no array either).
        BackendNotInstalledError: ``x`` names a backend whose framework is not installed.
        ValueError: ``device`` is not a device of the framework (``TypeError`` for a wrong type).

    Example:
        >>> import numpy as np
        >>> from unigrad._namespace import namespace
        >>> def loss(p, d):
        ...     xp = namespace(p)
        ...     return xp.mean((xp.matmul(d["X"], p["w"]) - d["y"]) ** 2)
        >>> params = {"w": np.array([1.0, 2.0])}
        >>> data = {"X": np.eye(2), "y": np.array([0.0, 0.0])}
        >>> float(loss(params, data))
        2.5
        >>> namespace(params).name
        'numpy'
        >>> namespace("np") is namespace(params, device="cpu") is namespace(params)
        True

        With PyTorch, ``namespace(torch.zeros(2, device="cuda")).eye(3)`` is on the GPU, and
        ``namespace("torch", device="meta").zeros(3).device`` is ``device(type='meta')``.
    """
    route = _routes.get(type(x))
    if route is not None and device is None:
        attribute, by_key = route
        found = by_key.get(None if attribute is None else getattr(x, attribute))
        if found is not None:
            return found
    return _following(x, device)
