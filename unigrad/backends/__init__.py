"""Backend registry: which backends exist, which are installed, and which one owns a leaf.

Recognising a leaf never imports a framework: a leaf can only be a ``torch.Tensor`` if ``torch`` is
already in ``sys.modules``, so only imported frameworks are consulted. An adapter module (which does
import its framework) is loaded the first time its backend is used.

Example:
    >>> import numpy as np
    >>> from unigrad.backends import backend_name_of
    >>> backend_name_of(np.zeros(2))
    'numpy'
    >>> backend_name_of("text") is None
    True
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Hashable
from types import ModuleType
from typing import Any

from unigrad._errors import BackendNotInstalledError, UnknownBackendError
from unigrad.backends._base import COMPLEX_DTYPES, FLOAT_DTYPES, Adapter, listed
from unigrad.backends._gpu_memory import before_import

__all__ = [
    "BACKENDS",
    "COMPLEX_DTYPES",
    "FLOAT_DTYPES",
    "Adapter",
    "BackendInfo",
    "backend_name_of",
    "canonical_name",
    "framework_backends",
    "get_adapter",
    "installed_backends",
    "is_installed",
    "listed",
]


class BackendInfo:
    """What unigrad knows about a backend before importing it.

    Attributes:
        name: the backend's name (``"torch"``).
        module: the module whose presence means the framework is installed (``"mlx.core"``).
        extra: unigrad's pip extra that installs it (``""`` for NumPy).
        adapter_module: unigrad's adapter module, imported at the backend's first use.
        array_types: the framework module -> its array types.
        distributions: PyPI distributions that may provide the framework, in lookup order
            (default: ``(module,)``).
    """

    # A plain class: making a dataclass costs about 1 ms of ``import unigrad`` (measured).
    __slots__ = ("adapter_module", "array_types", "distributions", "extra", "module", "name")

    def __init__(
        self,
        name: str,
        module: str,
        extra: str,
        adapter_module: str,
        array_types: Callable[[ModuleType], tuple[type, ...]],
        distributions: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.module = module
        self.extra = extra
        self.adapter_module = adapter_module
        self.array_types = array_types
        self.distributions = distributions

    def __repr__(self) -> str:
        return f"BackendInfo({self.name!r}, module={self.module!r}, extra={self.extra!r})"

    @property
    def distribution_names(self) -> tuple[str, ...]:
        """Where to read the framework's installed version (``importlib.metadata``)."""
        return self.distributions or (self.module.partition(".")[0],)


BACKENDS: dict[str, BackendInfo] = {
    info.name: info
    for info in (
        BackendInfo("torch", "torch", "torch", "unigrad.backends._torch", lambda torch: (torch.Tensor,)),
        BackendInfo(
            "tensorflow",
            "tensorflow",
            "tensorflow",
            "unigrad.backends._tensorflow",
            lambda tf: (tf.Tensor, tf.Variable, *keras_tensorflow_variable_types()),
            ("tensorflow", "tensorflow-cpu"),
        ),
        BackendInfo("jax", "jax", "jax", "unigrad.backends._jax", lambda jax: (jax.Array,)),
        # mlx.core, not mlx: `mlx` is a namespace package that `pip install mlx-cpu` alone provides
        # without the importable core.
        BackendInfo("mlx", "mlx.core", "mlx", "unigrad.backends._mlx", lambda core: (core.array,)),
        BackendInfo("numpy", "numpy", "", "unigrad.backends._numpy", lambda np: (np.ndarray, np.generic)),
    )
}

_ALIASES = {"tf": "tensorflow", "pytorch": "torch", "np": "numpy"}


_keras_types: tuple[type, ...] | None = None

#: Array type -> a cheaper function naming an array's dtype than reading ``.dtype``, registered by an
#: adapter whose arrays compute ``.dtype`` in Python (TensorFlow's ``EagerTensor.dtype`` is a property
#: costing about 0.2 µs; its ``_datatype_enum()`` a C method). Calls key their remembered plan by the
#: leaves' types and these names (``unigrad._dispatch``), so each must tell dtypes of its type apart.
DTYPE_KEYS: dict[type, Callable[[Any], Hashable]] = {}
#: Array type -> a cheaper function naming an array's dtype and shape together, for the cache of
#: losses found valid (``unigrad._loss``): TensorFlow's ``.shape`` builds a ``TensorShape`` in Python
#: and hashes it in Python too; ``_shape_tuple()`` is a C method.
LOSS_KEYS: dict[type, Callable[[Any], Hashable]] = {}


def keras_tensorflow_variable_types() -> tuple[type, ...]:
    """``(keras.Variable,)`` when Keras 3 is loaded with its TensorFlow backend, else ``()``.

    Keras 3 variables (``model.trainable_variables``) wrap a ``tf.Variable`` without being one; they
    are TensorFlow params here. Never imports Keras.
    """
    global _keras_types
    if _keras_types is not None:
        return _keras_types
    keras = sys.modules.get("keras")
    if keras is None:
        return ()  # not loaded yet: ask again next time
    variable = getattr(keras, "Variable", None)  # Keras 2 (tf.keras) has none: its are tf.Variables
    # Keras's backend is fixed once it is imported, so the answer is too.
    _keras_types = (variable,) if variable is not None and keras.backend.backend() == "tensorflow" else ()
    return _keras_types


_adapters: dict[str, Adapter] = {}
_owner_by_type: dict[type, str | None] = {}


def canonical_name(name: str) -> str:
    """The registry name for ``name`` (aliases ``tf``, ``pytorch``, ``np`` accepted).

    Raises:
        UnknownBackendError: ``name`` is not a backend unigrad knows.
    """
    if not isinstance(name, str):
        raise UnknownBackendError(
            f"backend must be a string such as {', '.join(repr(n) for n in BACKENDS)}, "
            f"got {type(name).__name__} {name!r}"
        )
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in BACKENDS:
        known = ", ".join(repr(n) for n in BACKENDS)
        raise UnknownBackendError(f"unknown backend {name!r}: choose one of {known}")
    return key


def get_adapter(name: str) -> Adapter:
    """The adapter for backend ``name``, importing its framework on first use.

    Raises:
        UnknownBackendError: ``name`` is not a backend unigrad knows.
        BackendNotInstalledError: the framework cannot be imported.
    """
    adapter = _adapters.get(name) if type(name) is str else None  # the per-leaf lookup of every call
    if adapter is not None:
        return adapter
    key = canonical_name(name)
    adapter = _adapters.get(key)
    if adapter is None:
        info = BACKENDS[key]
        if not module_available(info.module):
            raise BackendNotInstalledError(
                f"backend {key!r} needs the '{info.distribution_names[0]}' package, which is not "
                f"installed: pip install 'unigrad[{info.extra}]'"
            )
        before_import(info.module)  # JAX/TF imported here share the GPU (torch may hold the params)
        try:
            module = importlib.import_module(info.adapter_module)
        except ImportError as err:
            raise BackendNotInstalledError(
                f"backend {key!r} is installed but failed to import ({err}); "
                f"reinstall it with pip install 'unigrad[{info.extra}]'"
            ) from err
        adapter = module.ADAPTER
        _adapters[key] = adapter
    return adapter


def backend_name_of(leaf: Any) -> str | None:
    """The backend that owns ``leaf``, or ``None`` if it is no framework's array. Never imports."""
    leaf_type = type(leaf)
    try:
        return _owner_by_type[leaf_type]
    except KeyError:
        pass
    owner = None
    for info in BACKENDS.values():
        module = sys.modules.get(info.module)
        # isinstance, not issubclass: JAX tracers are jax.Arrays only through __instancecheck__.
        # The answer still depends on the type alone, so caching it per type is sound.
        if module is not None and isinstance(leaf, info.array_types(module)):
            owner = info.name
            break
    # Safe to cache: a type belongs to a framework that was already imported when it was created.
    _owner_by_type[leaf_type] = owner
    return owner


def module_available(module: str) -> bool:
    """Whether ``module`` (dotted names too) can be imported, without importing it.

    For a dotted name only its (light) parent packages are imported, and a missing parent means
    ``False`` rather than ``find_spec``'s ``ModuleNotFoundError``.
    """
    import importlib.util  # here, not at the top: ~0.3 ms of ``import unigrad``, for a rare call

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def framework_backends() -> list[str]:
    """Names of every differentiating backend unigrad knows, installed or not (not ``'numpy'``)."""
    return [name for name in BACKENDS if name != "numpy"]


# What an adapter's UnsupportedTransformError names as the alternatives (unigrad.backends._base
# cannot import this registry, which imports it).
Adapter.framework_names = tuple(framework_backends())


def is_installed(name: str) -> bool:
    """Whether backend ``name``'s framework is installed (without importing it)."""
    return module_available(BACKENDS[canonical_name(name)].module)


def installed_backends() -> list[str]:
    """Names of the differentiating backends whose framework is installed (without importing them)."""
    return [info.name for info in BACKENDS.values() if info.name != "numpy" and module_available(info.module)]
