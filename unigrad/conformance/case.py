"""What one conformance case is: a neutral loss, seeded inputs, and what is known about it.

A case is a small frozen record. Its loss is written once against ``ug.namespace`` and runs on every
backend; its input generator returns float64 NumPy params and data inside the loss's domain.

Example:
    >>> import numpy as np
    >>> from unigrad.conformance.case import Case
    >>> case = Case(
    ...     name="square",
    ...     tags=("elementwise",),
    ...     loss=lambda p, d: (p["x"] ** 2).sum(),
    ...     inputs=lambda rng: ({"x": rng.normal(size=3)}, None),
    ... )
    >>> params, data = case.make_inputs(seed=0)
    >>> params["x"].dtype
    dtype('float64')
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Every dtype the runner knows, in the order reports show them.
ALL_DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")


@dataclass(frozen=True)
class Tolerance:
    """Elementwise bound ``|got - want| <= atol + rtol * |want|`` (NumPy's ``allclose`` rule)."""

    rtol: float
    atol: float


@dataclass(frozen=True)
class KnownDifference:
    """A declared, explained disagreement: these backends differ from the reference on purpose.

    Attributes:
        backends: backends whose gradient follows another convention.
        reason: the convention, in one sentence (shown in reports and the docs).
        dtypes: dtypes it applies to (empty: all).
        devices: device kinds it applies to, ``'cpu'`` / ``'gpu'`` (empty: all).
    """

    backends: tuple[str, ...]
    reason: str
    dtypes: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()

    def applies(self, backend: str, dtype: str, device: str) -> bool:
        """Whether this difference covers ``backend`` at ``dtype`` on ``device``."""
        kind = device.split(":")[0]
        return (
            backend in self.backends
            and (not self.dtypes or dtype in self.dtypes)
            and (not self.devices or kind in self.devices)
        )


Inputs = Callable[[np.random.Generator], tuple[Any, Any]]


@dataclass(frozen=True)
class Case:
    """One conformance case.

    Attributes:
        name: unique, ``snake_case``; cases are selected by name, glob or tag.
        tags: areas (``elementwise``, ``kink``, ``linalg``, ``model``...).
        loss: ``loss(params, data) -> scalar`` written with ``ug.namespace``.
        inputs: ``inputs(rng) -> (params, data)`` with float64 NumPy floating leaves.
        dtypes: dtypes the case makes sense in (e.g. no float16 for ill-conditioned linear algebra).
        tolerances: per-dtype overrides of the default table, with ``tolerance_reason`` saying why.
        known_differences: declared disagreements with the reference, each with its reason.
        expected_grad: closed-form gradient ``(params, data) -> grads`` used as the reference instead
            of finite differences, for points where finite differences are meaningless (kinks, ties).
        convention: what ``expected_grad`` encodes, for the docs (e.g. "abs'(0) = 0").
        reference_name: how reports name the reference when ``expected_grad`` is given
            (default ``"closed form"``).
        valid_grads: at kinks, ties and bounds, every gradient that is correct:
            ``(params, data) -> tree like params`` of per-element sets built with
            :func:`~unigrad.conformance.subgradients.interval` (a closed interval ``[lo, hi]``, a
            single value where ``lo == hi``) or :func:`~unigrad.conformance.subgradients.one_of`
            (finitely many values), or a :class:`~unigrad.conformance.subgradients.Subdifferential`
            adding conditions across elements (ties sum to 1, a norm's unit ball). A backend that
            departs from ``expected_grad`` but stays in this set is ``known``, with its version and
            choice in the reason, not ``fail``; ``expected_grad`` must lie in the set.

    Example of a valid set (relu: ``[0, 1]`` at 0, the ordinary derivative elsewhere):
        >>> from unigrad.conformance.subgradients import interval
        >>> relu_valid = lambda p, d: {"x": interval(p["x"] > 0, p["x"] >= 0)}
    """

    name: str
    tags: tuple[str, ...]
    loss: Callable[[Any, Any], Any]
    inputs: Inputs
    dtypes: tuple[str, ...] = ALL_DTYPES
    tolerances: Mapping[str, Tolerance] = field(default_factory=dict)
    tolerance_reason: str = ""
    known_differences: tuple[KnownDifference, ...] = ()
    expected_grad: Callable[[Any, Any], Any] | None = None
    convention: str = ""
    reference_name: str = "closed form"
    valid_grads: Callable[[Any, Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.tolerances and not self.tolerance_reason:
            raise ValueError(f"case {self.name!r} overrides tolerances without a tolerance_reason")
        unknown = set(self.dtypes) - set(ALL_DTYPES)
        if unknown:
            raise ValueError(f"case {self.name!r} names unknown dtypes {sorted(unknown)}")

    def make_inputs(self, seed: int) -> tuple[Any, Any]:
        """Params and data for ``seed``: the same for every run, backend and machine."""
        # crc32, not hash(): str hashes are salted per process, and results must be reproducible.
        rng = np.random.default_rng([seed, zlib.crc32(self.name.encode())])
        return self.inputs(rng)

    def known_difference(self, backend: str, dtype: str, device: str) -> KnownDifference | None:
        """The declared difference covering this combination, if any."""
        for difference in self.known_differences:
            if difference.applies(backend, dtype, device):
                return difference
        return None
