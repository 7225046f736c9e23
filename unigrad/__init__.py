"""unigrad: one gradient API for TensorFlow, PyTorch and JAX.

Importing unigrad imports no ML framework; a backend's framework is imported the first time it is
used.

Example:
    >>> import numpy as np, unigrad as ug
    >>> ug.grad(lambda p: (p["x"] ** 2).sum(), {"x": np.array([1.0, 3.0])}, backend="torch")
    {'x': array([2., 6.])}
"""

from unigrad._api import grad, reference_grad, value_and_grad
from unigrad._errors import (
    BackendNotInstalledError,
    BackendRequiredError,
    EmptyParamsError,
    InvalidAuxError,
    InvalidLossError,
    InvalidParamsError,
    MixedBackendsError,
    NotCallableError,
    PrecisionError,
    UnigradError,
    UnknownBackendError,
)
from unigrad._namespace import namespace
from unigrad.backends import installed_backends

__version__ = "0.1.0"

__all__ = [
    "BackendNotInstalledError",
    "BackendRequiredError",
    "EmptyParamsError",
    "InvalidAuxError",
    "InvalidLossError",
    "InvalidParamsError",
    "MixedBackendsError",
    "NotCallableError",
    "PrecisionError",
    "UnigradError",
    "UnknownBackendError",
    "__version__",
    "grad",
    "installed_backends",
    "namespace",
    "reference_grad",
    "value_and_grad",
]
