"""unigrad: one gradient API for TensorFlow, PyTorch and JAX.

Importing unigrad imports no ML framework; a backend's framework is imported the first time it is
used.

Example:
    >>> import numpy as np, unigrad as ug
    >>> ug.grad(lambda p: (p["x"] ** 2).sum(), {"x": np.array([1.0, 3.0])}, backend="torch")
    {'x': array([2., 6.])}
"""

from unigrad._api import grad, reference_grad, value_and_grad
from unigrad._compiled import ValueAndGradFn, value_and_grad_fn
from unigrad._errors import (
    BackendNotInstalledError,
    BackendRequiredError,
    CompileFallbackWarning,
    DtypeMismatchError,
    EmptyParamsError,
    InvalidAuxError,
    InvalidDataError,
    InvalidLossError,
    InvalidOutputError,
    InvalidParamsError,
    MixedBackendsError,
    NotCallableError,
    PrecisionError,
    StructureMismatchError,
    UnigradError,
    UnknownBackendError,
    UnsupportedTransformError,
)
from unigrad._namespace import namespace
from unigrad._transforms import hessian, hvp, jacobian, jvp, per_example_grads, vjp
from unigrad.backends import installed_backends

__version__ = "0.1.0"

__all__ = [
    "BackendNotInstalledError",
    "BackendRequiredError",
    "CompileFallbackWarning",
    "DtypeMismatchError",
    "EmptyParamsError",
    "InvalidAuxError",
    "InvalidDataError",
    "InvalidLossError",
    "InvalidOutputError",
    "InvalidParamsError",
    "MixedBackendsError",
    "NotCallableError",
    "PrecisionError",
    "StructureMismatchError",
    "UnigradError",
    "UnknownBackendError",
    "UnsupportedTransformError",
    "ValueAndGradFn",
    "__version__",
    "grad",
    "hessian",
    "hvp",
    "installed_backends",
    "jacobian",
    "jvp",
    "namespace",
    "per_example_grads",
    "reference_grad",
    "value_and_grad",
    "value_and_grad_fn",
    "vjp",
]
