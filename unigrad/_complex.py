"""What unigrad does with complex parameters, in the one place where the transformations ask it.

A real loss ``L`` of a complex parameter ``z = x + iy`` is a function of the real pair ``(x, y)``.
Every backend returns the gradient as ``∂L/∂x + i·∂L/∂y`` (``unigrad.backends._jax`` conjugates
JAX's own convention to this); ``jvp``, ``vjp``, ``jacobian`` and ``hvp`` read complex tangents,
cotangents and vectors the same way: a complex number stands for the real pair of its parts. Two
things have no such reading and are refused here with what to do instead (see docs/complex.md):

- a complex *output* of ``jvp``, ``vjp`` or ``jacobian`` (the functions are taken as real-valued);
- the ``hessian`` of complex parameters: a real matrix over ``(x, y)`` that one complex array of
  shape ``p.shape + q.shape`` cannot hold (``hvp`` can: it is ``H`` times the vector's real pair).

Example:
    >>> import numpy as np, unigrad as ug
    >>> try:
    ...     ug.hessian(lambda z: (abs(z) ** 2).sum(), np.array([1j]), backend="numpy")
    ... except ug.InvalidParamsError as err:
    ...     print(str(err)[:53])
    params is a complex128 numpy array on backend 'numpy'
"""

from __future__ import annotations

from typing import Any

from unigrad import _tree
from unigrad._errors import InvalidOutputError, InvalidParamsError
from unigrad.backends import COMPLEX_DTYPES, Adapter


def refuse_complex_params(params: Any, leaves: list[Any], adapter: Adapter, transform: str) -> None:
    """Raise :class:`InvalidParamsError` naming the first complex leaf of ``leaves`` (``params``' flat
    leaves, as ``adapter`` sees them), for a ``transform`` that has no complex form."""
    for index, leaf in enumerate(leaves):
        dtype = adapter.dtype_name(leaf)
        if dtype in COMPLEX_DTYPES:
            path = _tree.leaf_paths(params)[index]
            raise InvalidParamsError(
                f"{path} is a {dtype} {adapter.name} array on backend {adapter.name!r}: {transform} is "
                f"not defined for complex parameters (the Hessian of a real loss in z = x + iy is a real "
                f"matrix over x and y, which no complex array of shape p.shape + q.shape holds). Use "
                f"ug.hvp(loss_fn, params, vector), whose complex vector is a direction in the real "
                f"sense, or pass the real and imaginary parts as two float params and build "
                f"z = re + 1j * im inside loss_fn to get that real Hessian"
            )


def complex_output_error(transform: str, path: str, dtype: str, backend: str) -> InvalidOutputError:
    """The error for a complex output of ``jvp``, ``vjp`` or ``jacobian`` (at ``path`` of the output)."""
    return InvalidOutputError(
        f"{transform}: fn's {path} is {dtype} on backend {backend!r}; fn must return real floating "
        f"arrays (complex parameters are fine): return its real and imaginary parts as two outputs, "
        f"e.g. (xp.real(out), xp.imag(out))"
    )
