"""unigrad: one gradient API for TensorFlow, PyTorch and JAX.

Importing unigrad imports no ML framework; a backend's framework is imported the first time it is
used.

Example:
    >>> import numpy as np, unigrad as ug
    >>> ug.grad(lambda p: (p["x"] ** 2).sum(), {"x": np.array([1.0, 3.0])}, backend="torch")
    {'x': array([2., 6.])}
"""

import importlib
from typing import TYPE_CHECKING, Any

# NumPy before unigrad's other dependencies. Imported after them (optree, dataclasses...), NumPy's
# typing modules took about 70 ms more on the project's CPU machine (`python -X importtime -c
# "import unigrad"`: numpy._typing._char_codes 45 ms instead of 1.7 ms); imported first, `import
# unigrad` costs ~5 ms over NumPy, optree and array-api-compat. unigrad's first module imports
# NumPy anyway; why the order matters is not understood yet.
import numpy  # noqa: F401

from unigrad._api import grad, reference_grad, value_and_grad
from unigrad._errors import (
    BackendNotInstalledError,
    BackendRequiredError,
    CompileFallbackWarning,
    ConversionError,
    CyclicTreeError,
    DistributedSetupError,
    DtypeMismatchError,
    EmptyParamsError,
    InvalidAuxError,
    InvalidDataError,
    InvalidDeviceError,
    InvalidLossError,
    InvalidOutputError,
    InvalidParamsError,
    MixedBackendsError,
    NotCallableError,
    NotImportableError,
    PerExampleLossError,
    PrecisionError,
    PrecisionWarning,
    StructureMismatchError,
    UnigradError,
    UnknownBackendError,
    UnsupportedTransformError,
)
from unigrad.backends import installed_backends

if TYPE_CHECKING:
    from unigrad._compiled import ValueAndGradFn, value_and_grad_fn
    from unigrad._compiled_hvp import HvpFn, hvp_fn
    from unigrad._convert import precision_scope, to_backend, to_numpy
    from unigrad._namespace import namespace
    from unigrad._transforms import hessian, hvp, jacobian, jvp, per_example_grads, vjp
    from unigrad.distributed import DataParallelValueAndGradFn, data_parallel_value_and_grad_fn

# Loaded on first use (PEP 562): `import unigrad` stays within its import-time budget, and only code
# that compiles steps, takes transforms or builds namespaces pays for those modules.
_LAZY = {
    "ValueAndGradFn": "unigrad._compiled",
    "DataParallelValueAndGradFn": "unigrad.distributed",
    "data_parallel_value_and_grad_fn": "unigrad.distributed",
    "value_and_grad_fn": "unigrad._compiled",
    **dict.fromkeys(["HvpFn", "hvp_fn"], "unigrad._compiled_hvp"),
    "namespace": "unigrad._namespace",
    **dict.fromkeys(["precision_scope", "to_backend", "to_numpy"], "unigrad._convert"),
    **dict.fromkeys(["hessian", "hvp", "jacobian", "jvp", "per_example_grads", "vjp"], "unigrad._transforms"),
}

__version__ = "0.1.0"

__all__ = [
    "BackendNotInstalledError",
    "BackendRequiredError",
    "CompileFallbackWarning",
    "ConversionError",
    "CyclicTreeError",
    "DataParallelValueAndGradFn",
    "DistributedSetupError",
    "DtypeMismatchError",
    "EmptyParamsError",
    "HvpFn",
    "InvalidAuxError",
    "InvalidDataError",
    "InvalidDeviceError",
    "InvalidLossError",
    "InvalidOutputError",
    "InvalidParamsError",
    "MixedBackendsError",
    "NotCallableError",
    "NotImportableError",
    "PerExampleLossError",
    "PrecisionError",
    "PrecisionWarning",
    "StructureMismatchError",
    "UnigradError",
    "UnknownBackendError",
    "UnsupportedTransformError",
    "ValueAndGradFn",
    "__version__",
    "data_parallel_value_and_grad_fn",
    "grad",
    "hessian",
    "hvp",
    "hvp_fn",
    "installed_backends",
    "jacobian",
    "jvp",
    "namespace",
    "per_example_grads",
    "precision_scope",
    "reference_grad",
    "to_backend",
    "to_numpy",
    "value_and_grad",
    "value_and_grad_fn",
    "vjp",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'unigrad' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain module attributes
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
