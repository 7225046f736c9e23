"""Typed exceptions raised by unigrad.

Every error unigrad raises on bad input is a subclass of :class:`UnigradError`, and also of the builtin
exception a Python user would expect (``TypeError``, ``ValueError`` or ``ImportError``), so both
``except UnigradError`` and ``except TypeError`` work.

Example:
    >>> import numpy as np, unigrad as ug
    >>> try:
    ...     ug.grad(lambda p: (p ** 2).sum(), np.ones(3))
    ... except ug.BackendRequiredError as err:
    ...     print(type(err).__name__)
    BackendRequiredError
"""

from __future__ import annotations


class UnigradError(Exception):
    """Base class of every error unigrad raises on bad input."""


class UnknownBackendError(UnigradError, ValueError):
    """``backend=`` names no backend unigrad knows."""


class BackendNotInstalledError(UnigradError, ImportError):
    """The backend is known but its framework cannot be imported."""


class MixedBackendsError(UnigradError, TypeError):
    """Parameter leaves belong to two frameworks and no ``backend=`` says which one computes."""


class BackendRequiredError(UnigradError, TypeError):
    """Parameters are NumPy arrays, so ``backend=`` must say which framework differentiates."""


class InvalidParamsError(UnigradError, TypeError):
    """A parameter leaf cannot be differentiated (not an array, integer, bool, complex, ...)."""


class EmptyParamsError(UnigradError, ValueError):
    """``params`` holds no array leaves, so there is nothing to differentiate."""


class InvalidLossError(UnigradError, TypeError):
    """The loss function returned something that is not a real floating scalar array."""


class InvalidAuxError(UnigradError, TypeError):
    """``has_aux=True`` but the loss function did not return a ``(loss, aux)`` pair."""


class NotCallableError(UnigradError, TypeError):
    """``loss_fn`` is not callable."""


class PrecisionError(UnigradError, TypeError):
    """A parameter would silently lose precision on the chosen backend (e.g. float64 on JAX without x64)."""


class StructureMismatchError(UnigradError, ValueError):
    """A pytree argument (tangents, cotangent, vector, batch) lacks the structure or shapes it must have."""


class DtypeMismatchError(UnigradError, TypeError):
    """A tangent, cotangent or vector leaf is not an array of the dtype of the value it pairs with."""


class InvalidOutputError(UnigradError, TypeError):
    """A function given to ``jvp``, ``vjp`` or ``jacobian`` returned something other than floating arrays."""


class InvalidDataError(UnigradError, TypeError):
    """A data leaf cannot be used as given (e.g. an unhashable non-array leaf in a compiled step)."""


class CyclicTreeError(InvalidParamsError, InvalidDataError):
    """A container in ``params`` or ``data`` (or another pytree argument) holds itself, directly or
    through others, so the tree has no finite list of leaves.

    Both an :class:`InvalidParamsError` and an :class:`InvalidDataError`: whichever argument holds
    the cycle, the ``except`` that catches that argument's errors catches this one.
    """


class ConversionError(UnigradError, TypeError):
    """``ug.to_backend`` or ``ug.to_numpy`` could not convert a leaf (its path is in the message)."""


class UnsupportedTransformError(UnigradError, NotImplementedError):
    """The backend does not implement this transformation."""


class CompileFallbackWarning(UnigradError, UserWarning):
    """A compiled step could not be compiled on this platform and runs eagerly instead.

    A warning, not an error; it derives from :class:`UnigradError` too, so that with warnings turned
    into errors (``-W error``) ``except UnigradError`` still catches everything unigrad raises.
    """


class InvalidDeviceError(UnigradError, ValueError):
    """``device=`` names a device the backend does not have, or is given where nothing is placed."""


class PrecisionWarning(UnigradError, UserWarning):
    """A cross-framework call computes float32 matrix products at less precision than the params'
    own framework would (TF32 on a GPU), and unigrad cannot raise it for the call alone.

    A warning, not an error (see :class:`CompileFallbackWarning`); docs/gpu.md says what to set.
    """


class PerExampleLossError(InvalidLossError):
    """A data-parallel loss did not return one loss per example (shape ``(n,)`` for a batch of ``n``)."""


class NotImportableError(UnigradError, TypeError):
    """A function handed to worker processes cannot be imported by them (a lambda, a closure, or a
    function defined in ``__main__``)."""


class DistributedSetupError(UnigradError, RuntimeError):
    """A framework's distributed engine is not set up as the data-parallel step needs it."""
