"""What one conformance case of a transformation is (:class:`TransformCase`) and what each
transformation computes for it, on a backend or on the float64 oracle.

The catalogue of these cases is :mod:`unigrad.conformance.transform_cases`; the op table
(:mod:`unigrad.conformance.ops`) makes more of them. This module imports neither, so both can
import it.

Example:
    >>> import numpy as np
    >>> from unigrad.conformance.transform_case import TransformCase
    >>> case = TransformCase(
    ...     "transform_hvp_square", "hvp", lambda p, d: (p**2).sum(),
    ...     lambda rng: (np.ones(2), None, np.ones(2)), dtypes=("float64",),
    ... )
    >>> case.compute(*case.make_inputs(0), backend="torch")["hvp"]
    array([2., 2.])
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import unigrad as ug
from unigrad.conformance.case import ALL_DTYPES, Tolerance
from unigrad.conformance.tolerances import tolerance_for

#: ``inputs(rng) -> (params, data, extra)``: float64 NumPy pytrees; ``extra`` is the tangents,
#: cotangent or vector the transformation takes (``None`` for the others). For
#: ``per_example_grads``, ``data`` is the batch.
TransformInputs = Callable[[np.random.Generator], tuple[Any, Any, Any]]


@dataclass(frozen=True)
class TransformCase:
    """One conformance case of a transformation.

    Attributes:
        name: unique, ``transform_<transformation>_<what>``.
        transform: ``'value_and_grad_fn'`` (compiled, ``jit=True``), ``'jvp'``, ``'vjp'``,
            ``'jacobian'``, ``'hessian'``, ``'hvp'`` or ``'per_example_grads'``.
        fn: ``fn(params, data)`` (``fn(params, example)`` for ``per_example_grads``), written with
            ``ug.namespace``; ``data`` is ``None`` when the case has none.
        inputs: see :data:`TransformInputs`.
        tags: ``('transform', transform)``; cases are selectable by name, glob or tag.
        dtypes: dtypes the case runs in.
        tolerances: per-dtype overrides of the default table, with ``tolerance_reason``.
    """

    name: str
    transform: str
    fn: Callable[[Any, Any], Any]
    inputs: TransformInputs
    dtypes: tuple[str, ...] = ALL_DTYPES
    tolerances: Mapping[str, Tolerance] = field(default_factory=dict)
    tolerance_reason: str = ""

    def __post_init__(self) -> None:
        if self.transform not in _TRANSFORMS:
            raise ValueError(f"case {self.name!r}: unknown transform {self.transform!r}")
        if self.tolerances and not self.tolerance_reason:
            raise ValueError(f"case {self.name!r} overrides tolerances without a tolerance_reason")
        unknown = set(self.dtypes) - set(ALL_DTYPES)
        if unknown:
            raise ValueError(f"case {self.name!r} names unknown dtypes {sorted(unknown)}")

    @property
    def tags(self) -> tuple[str, ...]:
        return ("transform", self.transform)

    def make_inputs(self, seed: int) -> tuple[Any, Any, Any]:
        """Params, data and the extra argument for ``seed``: the same on every run and machine."""
        rng = np.random.default_rng([seed, zlib.crc32(self.name.encode())])
        return self.inputs(rng)

    def tolerance(self, dtype: str) -> Tolerance:
        """The case's override for ``dtype``, else the default table's."""
        return self.tolerances.get(dtype) or tolerance_for(dtype)

    def compute(self, params: Any, data: Any, extra: Any, backend: str | None) -> dict[str, Any]:
        """The case's transformation on ``backend`` (``'numpy'``: the oracle), as named result trees."""
        return _TRANSFORMS[self.transform](self, params, data, extra, backend)


# -- what each transformation computes, as a dict of named result trees ------------------------------


def _call_fn(case: TransformCase, data: Any) -> Callable[..., Any]:
    if data is None:
        return lambda params: case.fn(params, None)
    return case.fn


def _compiled(case: TransformCase, params: Any, data: Any, extra: Any, backend: str | None) -> dict[str, Any]:
    if backend == "numpy":  # the oracle: finite differences of the loss, nothing to compile
        loss = np.asarray(case.fn(params, data), dtype=np.float64).reshape(())
        return {"loss": loss, "grads": ug.reference_grad(_call_fn(case, data), params, data)}
    step = ug.value_and_grad_fn(_call_fn(case, data), backend=backend, jit=True)
    step(params, data)
    loss, grads = step(params, data)  # the second call runs what the first one compiled
    return {"loss": loss, "grads": grads}


def _jvp(case: TransformCase, params: Any, data: Any, extra: Any, backend: str | None) -> dict[str, Any]:
    out, tangent = ug.jvp(_call_fn(case, data), params, extra, data, backend=backend)
    return {"out": out, "tangent": tangent}


def _vjp(case: TransformCase, params: Any, data: Any, extra: Any, backend: str | None) -> dict[str, Any]:
    out, cotangent = ug.vjp(_call_fn(case, data), params, extra, data, backend=backend)
    return {"out": out, "params_cotangent": cotangent}


def _jacobian(case: TransformCase, params: Any, data: Any, extra: Any, backend: str | None) -> dict[str, Any]:
    return {"jacobian": ug.jacobian(_call_fn(case, data), params, data, backend=backend)}


def _hessian(case: TransformCase, params: Any, data: Any, extra: Any, backend: str | None) -> dict[str, Any]:
    return {"hessian": ug.hessian(_call_fn(case, data), params, data, backend=backend)}


def _hvp(case: TransformCase, params: Any, data: Any, extra: Any, backend: str | None) -> dict[str, Any]:
    return {"hvp": ug.hvp(_call_fn(case, data), params, extra, data, backend=backend)}


def _per_example(
    case: TransformCase, params: Any, data: Any, extra: Any, backend: str | None
) -> dict[str, Any]:
    return {"grads": ug.per_example_grads(case.fn, params, data, backend=backend)}


_TRANSFORMS: dict[str, Callable[[TransformCase, Any, Any, Any, str | None], dict[str, Any]]] = {
    "value_and_grad_fn": _compiled,
    "jvp": _jvp,
    "vjp": _vjp,
    "jacobian": _jacobian,
    "hessian": _hessian,
    "hvp": _hvp,
    "per_example_grads": _per_example,
}
