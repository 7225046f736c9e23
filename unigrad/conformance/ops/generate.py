"""Conformance cases from the op table: what each row of :mod:`unigrad.conformance.ops.table` becomes.

For a row ``op`` (name ``n``, slug ``s``) whose name is in ``GUARANTEED``:

- ``op_s`` — reverse mode at the default sample (the default suite's case when the row is the
  first of its name): the loss is ``sum(w * op(inputs))`` with seeded
  weights ``w`` (``sum(w_re * Re(out) + w_im * Im(out))`` for a complex output), compared with the
  float64 finite-difference reference and across backends like every gradient case;
- ``op_s_<label>`` — the same at each other sample (0-d, empty, broadcast, batched...);
- ``op_s_<label>`` — each special point, against the row's stated convention and valid set;
- ``op_s_jvp`` — forward mode, ``ug.jvp`` of the op's outputs with a seeded tangent;
- ``op_s_hvp`` — second order, ``ug.hvp`` of the weighted loss with a seeded vector.

Tags: ``op_<family>`` first (the report's grouping), ``op``, then ``full`` on every case outside
the default suite (all but one per name), and ``special``, ``sample``, ``transform`` with ``op_jvp`` or
``op_hvp``.
A call a backend cannot differentiate (a declared gap, ``unigrad._namespace.gap_for``) raises
:class:`~unigrad.conformance.devices.NotDifferentiableError` inside the loss, before the framework
is asked: the runner reports it ``n/a`` with the gap's reason.

Example:
    >>> from unigrad.conformance.ops.generate import gradient_cases
    >>> from unigrad.conformance.ops.table import unary
    >>> [(case.name, case.tags) for case in gradient_cases([unary("exp")])][:2]
    [('op_exp', ('op_elementwise', 'op')), ('op_exp_scalar', ('op_elementwise', 'op', 'full', 'sample'))]
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unigrad import _namespace
from unigrad._namespace import namespace
from unigrad.backends import get_adapter
from unigrad.conformance.case import Case
from unigrad.conformance.devices import NotDifferentiableError
from unigrad.conformance.ops.table import KEYS, Op, Special
from unigrad.conformance.subgradients import Subdifferential, one_of
from unigrad.conformance.transform_case import TransformCase

#: The tag of every case outside the default suite.
FULL = "full"


def guaranteed(op: Op) -> bool:
    """Whether the row's name is in the namespace today (rows may land before their function)."""
    return op.name in _namespace.GUARANTEED


def cases_per_row(op: Op) -> int:
    """How many cases (gradient and transform) a row generates: samples, special points, jvp, hvp."""
    return len(op.samples) + len(op.special) + int(op.jvp) + int(op.hvp)


# -- the functions every case of a row shares --------------------------------------------------------


_COLUMN_OF_COMPLEX = {"complex128": "float64", "complex64": "float32"}


def _column(backend: str, leaf: Any) -> str:
    """The dtype column of a params leaf: ``float64`` for float64 and complex128, ``float32``..."""
    name = get_adapter(backend).dtype_name(leaf)
    return _COLUMN_OF_COMPLEX.get(name, name)


def _refuse_gap(op: Op, backend: str, params: Any, mode: str) -> None:
    """Raise NotDifferentiableError for a declared gap or a row's :class:`Unavailable` (``n/a``)."""
    if backend == "numpy":  # the reference
        return
    if op.unavailable:
        column = _column(backend, params[KEYS[0]])
        for unavailable in op.unavailable:
            if unavailable.applies(backend, mode, column):
                raise NotDifferentiableError(f"{backend}: {op.name} unavailable: {unavailable.reason}")
    gap_for = getattr(_namespace, "gap_for", None)
    if gap_for is None:
        return
    shape = tuple(int(size) for size in params[KEYS[0]].shape)
    gap = gap_for(backend, op.name, **op.gap, shape=shape)
    if gap is not None:
        raise NotDifferentiableError(f"{backend} cannot differentiate {op.name}: {gap.describe()}")


def _outputs(result: Any) -> list[Any]:
    return list(result) if isinstance(result, tuple | list) else [result]


def _apply(op: Op, params: Any, mode: str) -> tuple[Any, list[Any]]:
    xp = namespace(params)
    _refuse_gap(op, xp.name, params, mode)
    return xp, _outputs(op.fn(xp, *(params[key] for key in KEYS[: len(op.domains)])))


def _weighted_loss(op: Op, mode: str = "grad") -> Any:
    def loss(params: Any, data: Any) -> Any:
        xp, outputs = _apply(op, params, mode)
        total = None
        for out, weight in zip(outputs, data["w"], strict=True):
            if isinstance(weight, dict):  # a complex output: weights on its real and imaginary parts
                term = xp.sum(xp.real(out) * weight["re"]) + xp.sum(xp.imag(out) * weight["im"])
            else:
                term = xp.sum(out * weight)
            total = term if total is None else total + term
        return total

    loss.__qualname__ = loss.__name__ = f"op_{op.slug}_loss"
    return loss


def _real_outputs(op: Op) -> Any:
    """The op's outputs as a list of real arrays (a complex output as ``{'re', 'im'}``), for jvp."""

    def outputs(params: Any, data: Any) -> Any:
        xp, found = _apply(op, params, "jvp")
        if xp.name == "numpy":
            # The reference's finite differences perturb the params in place: an output that is a
            # view of them (reshape, transpose...) would move with them and difference to zero.
            found = [np.array(out, copy=True) for out in found]
        return [
            {"re": xp.real(out), "im": xp.imag(out)} if isinstance(weight, dict) else out
            for out, weight in zip(found, data["w"], strict=True)
        ]

    outputs.__qualname__ = outputs.__name__ = f"op_{op.slug}_outputs"
    return outputs


@functools.cache
def _numpy() -> Any:
    return namespace("numpy")


def _weights_for(op: Op, params: dict[str, np.ndarray], rng: np.random.Generator | None) -> list[Any]:
    """Seeded weights shaped like each output (ones without ``rng``), found by running the op in NumPy."""
    with np.errstate(all="ignore"):
        found = _outputs(op.fn(_numpy(), *params.values()))
    weights: list[Any] = []
    for out in found:
        out = np.asarray(out)

        def draw(shape: tuple[int, ...] = out.shape) -> np.ndarray:
            return np.ones(shape) if rng is None else rng.uniform(0.5, 1.5, size=shape)

        weights.append({"re": draw(), "im": draw()} if np.iscomplexobj(out) else draw())
    return weights


def _draw_inputs(op: Op, shapes: Sequence[tuple[int, ...]], rng: np.random.Generator) -> tuple[Any, Any]:
    drawn = [np.asarray(domain.draw(rng, shape)) for domain, shape in zip(op.domains, shapes, strict=True)]
    params = dict(zip(KEYS, drawn, strict=False))
    return params, {"w": _weights_for(op, params, rng)}


# -- gradient cases ----------------------------------------------------------------------------------


def _tags(op: Op, *more: str) -> tuple[str, ...]:
    return (f"op_{op.family}", "op", *more)


def _sample_cases(op: Op, first_of_name: bool) -> list[Case]:
    loss = _weighted_loss(op)
    found = []
    for index, sample in enumerate(op.samples):
        name = f"op_{op.slug}" + (f"_{sample.label}" if sample.label else "")
        # The default suite: the default sample of the first row of each name.
        tags = _tags(op) if index == 0 and first_of_name else _tags(op, FULL, "sample")
        found.append(
            Case(
                name, tags, loss, functools.partial(_draw_inputs, op, sample.shapes), dtypes=op.dtypes,
                tolerances=op.tolerances, tolerance_reason=op.tolerance_reason, known_differences=op.known,
            )
        )  # fmt: skip
    return found


def _keyed(op: Op, arrays: Iterable[Any]) -> dict[str, Any]:
    return {KEYS[i]: np.asarray(array, dtype=np.float64) for i, array in enumerate(arrays)}


def _valid_of(special: Special, points: tuple[np.ndarray, ...]) -> Any:
    if special.valid is not None:
        stated = special.valid(*points)
        return stated if isinstance(stated, Subdifferential) else dict(zip(KEYS, stated, strict=False))
    return {KEYS[i]: one_of(np.asarray(g, np.float64)) for i, g in enumerate(special.grad(*points))}


def _special_inputs(op: Op, special: Special) -> tuple[Any, Any]:
    """The special point's params and data (weights one unless stated): the same for every seed."""
    params = _keyed(op, special.points)
    if special.weights is None:
        weights = _weights_for(op, params, None)
    else:
        weights = [np.asarray(w, dtype=np.float64) for w in special.weights]
    return params, {"w": weights}


def _convention(special: Special, params: Any) -> dict[str, np.ndarray]:
    with np.errstate(all="ignore"):
        return {KEYS[i]: np.asarray(g, np.float64) for i, g in enumerate(special.grad(*params.values()))}


def _special_case(op: Op, special: Special) -> Case:
    # Nothing is computed here: importing the catalogue stays cheap (the weights need NumPy's namespace).
    points = tuple(np.asarray(point, dtype=np.float64) for point in special.points)
    with np.errstate(all="ignore"):
        stated_nan = any(np.isnan(np.asarray(g, np.float64)).any() for g in special.grad(*points))
    # nan is never in a valid set: a nan convention is compared as it is (nan equals nan).
    stated = special.valid is not None or not stated_nan
    return Case(
        f"op_{op.slug}_{special.label}",
        _tags(op, FULL, "special"),
        _weighted_loss(op),
        lambda rng: _special_inputs(op, special),
        dtypes=special.dtypes or op.dtypes,
        known_differences=special.known,
        expected_grad=lambda p, d: _convention(special, p),
        convention=special.convention,
        valid_grads=(lambda p, d: _valid_of(special, tuple(p.values()))) if stated else None,
    )


def gradient_cases(rows: Iterable[Op]) -> list[Case]:
    """Every gradient case of the rows whose name is guaranteed, samples first, then special points."""
    found: list[Case] = []
    seen: set[str] = set()
    for op in rows:
        if guaranteed(op):
            found += _sample_cases(op, first_of_name=op.name not in seen)
            seen.add(op.name)
            found += [_special_case(op, special) for special in op.special]
    return found


# -- transform cases (forward mode, second order) ----------------------------------------------------


@functools.cache
def _transform_case_type() -> type:
    @dataclass(frozen=True)
    class OpTransformCase(TransformCase):
        """A transform case of the op table, tagged like the op's gradient cases."""

        op_tags: tuple[str, ...] = ()

        @property
        def tags(self) -> tuple[str, ...]:
            return self.op_tags

    return OpTransformCase


def _like(params: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A seeded tangent or vector shaped like the params (complex where they are)."""
    drawn = {}
    for key, value in params.items():
        vector = rng.normal(size=value.shape)
        if np.iscomplexobj(value):
            vector = vector + 1j * rng.normal(size=value.shape)
        drawn[key] = vector
    return drawn


def _transform_inputs(op: Op, rng: np.random.Generator) -> tuple[Any, Any, Any]:
    params, data = _draw_inputs(op, op.samples[0].shapes, rng)
    return params, data, _like(params, rng)


def transform_cases(rows: Iterable[Op]) -> list[Any]:
    """The ``jvp`` and ``hvp`` cases of the rows whose name is guaranteed, at each default sample."""
    case_type = _transform_case_type()
    found = []
    for op in rows:
        if not guaranteed(op):
            continue
        inputs = functools.partial(_transform_inputs, op)
        common = dict(dtypes=op.dtypes, tolerances=op.tolerances, tolerance_reason=op.tolerance_reason)
        if op.jvp:
            tags = _tags(op, FULL, "transform", "op_jvp")
            found.append(
                case_type(f"op_{op.slug}_jvp", "jvp", _real_outputs(op), inputs, **common, op_tags=tags)
            )
        if op.hvp:
            tags = _tags(op, FULL, "transform", "op_hvp")
            found.append(
                case_type(
                    f"op_{op.slug}_hvp", "hvp", _weighted_loss(op, "hvp"), inputs, **common, op_tags=tags
                )
            )
    return found
