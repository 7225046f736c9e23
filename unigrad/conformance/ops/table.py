"""The op table's row type: one :class:`Op` per namespace function, in the manner of PyTorch's OpInfo.

A row says how to call the function (``fn(xp, *inputs)``, constants such as axes and indices
included), where its inputs come from (a :class:`~unigrad.conformance.ops.domains.Domain` per
differentiable input), which shapes to try (:class:`Sample`: the first is the default suite's, the
others 0-d, empty, broadcast, batched...), the dtypes it makes sense in, and its special points
(:class:`Special`: domain edges, zeros, ties, infinities) with the gradient unigrad takes as the
convention there and the set of valid gradients (``unigrad.conformance.subgradients``).
:mod:`unigrad.conformance.ops.generate` turns each row into conformance cases. The rows themselves
live in ``rows_*.py``, one module per family.

Example:
    >>> from unigrad.conformance.ops.table import Op, unary
    >>> row = unary("exp")
    >>> row.name, row.family, [sample.label for sample in row.samples]
    ('exp', 'elementwise', ['', 'scalar', 'empty'])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unigrad.conformance.case import ALL_DTYPES, KnownDifference, Tolerance
from unigrad.conformance.ops.domains import REAL, Domain, Shape

#: The params' names of an op's differentiable inputs, in order (``fn(xp, x, y, z)``).
KEYS = ("x", "y", "z")

#: The families, in report order (``op_<family>`` is the first tag of every generated case).
FAMILIES = (
    "creation",
    "elementwise",
    "predicate",
    "reduction",
    "manipulation",
    "linalg",
    "fft",
)

FLOAT_DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class Sample:
    """One set of input shapes: ``label`` ``''`` is the default sample (every suite runs it)."""

    label: str
    shapes: tuple[Shape, ...]


@dataclass(frozen=True)
class Special:
    """A special point of an op: where a derivative is a convention, a limit or a one-sided value.

    Attributes:
        label: ``at_zero``, ``ties``, ``at_inf``...: the case is ``op_<name>_<label>``.
        points: the value of each differentiable input (float64 arrays, ±inf and nan allowed).
        grad: ``grad(*points) -> tuple`` of the gradient of ``sum(weights * op(*points))`` with
            respect to each input: the convention unigrad takes as the reference.
        convention: that convention in words (shown in reports and the docs).
        valid: ``valid(*points)`` → every correct gradient: a tuple with one
            :class:`~unigrad.conformance.subgradients.ValidSet` per input, or a
            :class:`~unigrad.conformance.subgradients.Subdifferential` over the params
            (``{'x': ..., 'y': ...}``); ``None``: only the convention (no set where it holds nan).
        weights: the weight of each output element in the loss (``None``: ones), one array per output.
        known: declared differences at this point, each with its reason.
        dtypes: the dtypes the point makes sense in (default: the row's).
    """

    label: str
    points: tuple[np.ndarray, ...]
    grad: Callable[..., tuple[Any, ...]]
    convention: str
    valid: Callable[..., Any] | None = None
    weights: tuple[np.ndarray, ...] | None = None
    known: tuple[KnownDifference, ...] = ()
    dtypes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Unavailable:
    """A result a backend cannot give for this row, beyond the namespace's declared gaps: ``n/a``.

    Found by this table and reported upstream (the reason says where); the case's cell reads ``n/a``
    with the reason instead of failing, and the declaration is removed when the cause is fixed.

    Attributes:
        backend: the backend concerned.
        reason: why, naming the framework (or unigrad's adapter) and its version.
        modes: ``'grad'`` (reverse mode), ``'jvp'``, ``'hvp'``; empty: all of them.
        dtypes: dtype columns concerned (``float64`` is complex128 for complex inputs); empty: all.
    """

    backend: str
    reason: str
    modes: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ()

    def applies(self, backend: str, mode: str, dtype: str) -> bool:
        """Whether this covers ``backend`` in ``mode`` at the ``dtype`` column."""
        return (
            backend == self.backend
            and (not self.modes or mode in self.modes)
            and (not self.dtypes or dtype in self.dtypes)
        )


@dataclass(frozen=True)
class Op:
    """One row: a namespace function and everything needed to check its derivatives.

    Attributes:
        name: the guaranteed name (``'exp'``, ``'linalg.inv'``, ``'fft.rfft'``); a row whose name is
            not (yet) in ``GUARANTEED`` generates nothing.
        family: ``elementwise``, ``reduction``, ``manipulation``, ``linalg``, ``fft``... (:data:`FAMILIES`).
        fn: ``fn(xp, *inputs)`` → an array or a tuple of arrays (complex outputs are fine).
        domains: where each differentiable input is drawn (one per input, params ``x``, ``y``, ``z``).
        samples: input shapes; the first is the default suite's.
        dtypes: dtype columns it runs in (``float64``/``float32`` mean complex128/complex64 for
            complex inputs).
        special: special points, each a case of the full suite.
        jvp: generate a forward-mode case (``ug.jvp`` of the op's outputs).
        hvp: generate a second-order case (``ug.hvp`` of the weighted loss); off for piecewise-linear
            ops, whose Hessian is zero almost everywhere, and where the op is not twice
            differentiable on its domain.
        label: tells two rows of one name apart (``matrix_norm`` ``fro`` and ``nuc``).
        gap: the call's keyword arguments that decide a declared gap (``unigrad._namespace.gap_for``,
            e.g. ``{'ord': 2}``); the input's shape is added.
        tolerances: per-dtype overrides, with ``tolerance_reason``.
        known: declared differences of the ordinary (non-special) cases, each with its reason.
        unavailable: results a backend cannot give beyond the namespace's declared gaps
            (:class:`Unavailable`): ``n/a`` there, with the reason.
    """

    name: str
    family: str
    fn: Callable[..., Any]
    domains: tuple[Domain, ...] = (REAL,)
    samples: tuple[Sample, ...] = ()
    dtypes: tuple[str, ...] = ALL_DTYPES
    special: tuple[Special, ...] = ()
    jvp: bool = True
    hvp: bool = True
    label: str = ""
    gap: Mapping[str, Any] = field(default_factory=dict)
    tolerances: Mapping[str, Tolerance] = field(default_factory=dict)
    tolerance_reason: str = ""
    known: tuple[KnownDifference, ...] = ()
    unavailable: tuple[Unavailable, ...] = ()

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"op {self.slug!r}: unknown family {self.family!r}")
        if not self.samples:
            raise ValueError(f"op {self.slug!r} has no sample")
        for sample in self.samples:
            if len(sample.shapes) != len(self.domains):
                raise ValueError(f"op {self.slug!r}: sample {sample.label!r} has the wrong number of shapes")
        if self.samples[0].label:
            raise ValueError(f"op {self.slug!r}: the first sample is the default one, labelled ''")

    @property
    def slug(self) -> str:
        """``linalg.matrix_norm`` with label ``nuc`` → ``linalg_matrix_norm_nuc``."""
        base = self.name.replace(".", "_")
        return f"{base}_{self.label}" if self.label else base


def call(name: str) -> Callable[..., Any]:
    """The namespace function ``name`` (dotted for ``linalg.*`` / ``fft.*``), looked up on ``xp``."""
    parts = name.split(".")

    def function(xp: Any, *args: Any, **kwargs: Any) -> Any:
        target = xp
        for part in parts:
            target = getattr(target, part)
        return target(*args, **kwargs)

    return function


def samples(*shapes: tuple[Shape, ...], **labelled: tuple[Shape, ...]) -> tuple[Sample, ...]:
    """``samples(((2, 3),), scalar=((),))``: the default shapes first, then labelled ones."""
    (default,) = shapes
    return (Sample("", default), *(Sample(label, value) for label, value in labelled.items()))


#: Elementwise, one input: a 3×4 matrix (default: the hand-written cases' shape, so JAX compiles are
#: shared), a 0-d array, an empty array.
UNARY_SAMPLES = samples(((3, 4),), scalar=((),), empty=((0, 4),))
#: Elementwise, two inputs: equal shapes (default), broadcasting, a 0-d operand, empty.
BINARY_SAMPLES = samples(
    ((3, 4), (3, 4)), broadcast=((3, 4), (4,)), scalar=((), (3, 4)), empty=((0, 4), (4,))
)


def unary(name: str, domain: Domain = REAL, fn: Callable[..., Any] | None = None, **options: Any) -> Op:
    """An elementwise function of one input, with the unary samples."""
    options.setdefault("samples", UNARY_SAMPLES)
    return Op(name, options.pop("family", "elementwise"), fn or call(name), (domain,), **options)


def binary(
    name: str,
    domains: tuple[Domain, Domain] = (REAL, REAL),
    fn: Callable[..., Any] | None = None,
    **options: Any,
) -> Op:
    """An elementwise function of two inputs, with the binary samples (broadcasting included)."""
    options.setdefault("samples", BINARY_SAMPLES)
    return Op(name, options.pop("family", "elementwise"), fn or call(name), domains, **options)


def values(*numbers: float) -> np.ndarray:
    """A float64 vector of special values."""
    return np.array(numbers, dtype=np.float64)
